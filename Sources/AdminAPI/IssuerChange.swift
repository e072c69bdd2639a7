import GatewayConfig
import Hierarchy

/// `PUT …/issuers`: a node's token issuers replaced as one list.
extension AdminEngine.Context {
    /// The node's whole list of issuers, replaced: `If-Match` names the list's ETag (from
    /// `GET …/issuers`), which changes with any key.
    func replaceIssuers(_ target: (source: NodeSource, path: NodePath)) -> AdminOutcome {
        let current = self.tree.document.issuers.filter { $0.node == target.source.id }
        let etag = IssuerJSON.etag(current)
        if let problem = self.precondition(etag: etag) { return self.refuse(problem) }
        guard let json = self.body() else { return self.refuse(.malformedBody) }
        guard AdminAuthorization.decide(self.principal, .manageIssuers, target: target.path) == .allowed else { return self.refuse(.actionForbidden) }
        let issuers: [IssuerDefinition]
        switch IssuerJSON.decode(json, node: target.source.id, label: target.path.description) {
        case .success(let decoded): issuers = decoded
        case .failure(let problems): return self.refuse(.invalidChange, problems.list)
        }
        // Each identity provider the list names anew (or every one, in a dry run, to show its
        // keys) is fetched first: a change that would leave an issuer without keys is refused.
        let before = Dictionary(current.map { ($0.issuer, $0) }, uniquingKeysWith: { first, _ in first })
        let toFetch = IssuerJSON.fetched(issuers).filter { entry in
            self.isDryRun || before[entry.issuer.issuer].map { $0.keySource != entry.issuer.source || $0.algorithms != issuers[entry.index].algorithms } ?? true
        }
        if !toFetch.isEmpty, self.request.fetchedIssuerKeys == nil {
            return .fetchIssuerKeys(toFetch.map { entry in
                var name = "jwksUri"
                if case .discovery = entry.issuer.source { name = "discovery" }
                return IssuerKeyFetchRequest(issuer: entry.issuer, field: "issuers[\(entry.index)].\(name)", node: target.path.description)
            })
        }
        var node = target.source
        node.issuers = issuers.map(\.issuer)
        var document = self.tree.document
        document.tree.nodes[self.tree.position(of: node.id)] = node
        // In place of the old list, so the stored file keeps its order.
        let position = document.issuers.firstIndex { $0.node == node.id } ?? document.issuers.count
        document.issuers.removeAll { $0.node == node.id }
        document.issuers.insert(contentsOf: issuers, at: min(position, document.issuers.count))
        var answer = IssuerJSON.encode(issuers)
        if self.isDryRun, let fetched = self.request.fetchedIssuerKeys, case .object(var members) = answer {
            // What the gateway would verify with: the keys each provider publishes that fit.
            members["fetchedKeys"] = .object(fetched.mapValues { .strings($0) })
            answer = .object(members)
        }
        guard IssuerJSON.etag(issuers) != etag else { return self.unchanged(answer, etag: etag) }
        let change = AuditRecord.FieldChange(field: "issuers", before: IssuerJSON.summary(current), after: IssuerJSON.summary(issuers))
        return self.commit(
            document, touching: [node.id], node: nil, path: target.path, action: .update, changes: [change], status: 200,
            body: (answer, IssuerJSON.etag(issuers))
        )
    }
}
