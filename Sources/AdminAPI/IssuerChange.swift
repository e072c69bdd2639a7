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
        var node = target.source
        node.issuers = issuers.map(\.issuer)
        var document = self.tree.document
        document.tree.nodes[self.tree.position(of: node.id)] = node
        // In place of the old list, so the stored file keeps its order.
        let position = document.issuers.firstIndex { $0.node == node.id } ?? document.issuers.count
        document.issuers.removeAll { $0.node == node.id }
        document.issuers.insert(contentsOf: issuers, at: min(position, document.issuers.count))
        guard IssuerJSON.etag(issuers) != etag else { return self.unchanged(IssuerJSON.encode(issuers), etag: etag) }
        let change = AuditRecord.FieldChange(field: "issuers", before: IssuerJSON.summary(current), after: IssuerJSON.summary(issuers))
        return self.commit(
            document, touching: [node.id], node: nil, path: target.path, action: .update, changes: [change], status: 200,
            body: (IssuerJSON.encode(issuers), IssuerJSON.etag(issuers))
        )
    }
}
