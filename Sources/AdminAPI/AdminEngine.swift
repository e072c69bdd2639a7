import GatewayConfig
import Hierarchy
import Quotas
import TokenAuth

/// A change the engine has validated, for the store to commit atomically with its audit record.
public struct AdminCommit: Sendable {
    /// The revision the change was computed on, number and commit id; the store refuses it if
    /// that is no longer the latest (or was lost in a failover), and the request is evaluated
    /// again on the store's tree.
    public let base: StoreRevision
    public var baseRevision: Int64 { self.base.number }
    public let next: StoredTree
    /// What the store keeps of the change: the delta every node applies (or the whole tree).
    let write: StoredTree.Write
    public let audit: AuditRecord
    /// The OEM whose audit log records the change.
    public let oem: String
    /// A soft-deleted node, kept in the store's record of deleted nodes.
    public let deleted: (id: String, record: JSONValue)?
    /// The answer once committed.
    public let response: AdminResponse
}

/// A token revocation the engine has authorized, for the shared store's revocation list.
public struct AdminRevocation: Sendable {
    public let message: RevocationMessage
    public let audit: AuditRecord
    public let oem: String
    public let response: AdminResponse
}

/// What the driver does with a request the engine has looked at.
public enum AdminOutcome: Sendable {
    case respond(AdminResponse)
    case commit(AdminCommit)
    /// Read the audit log of `oem` and answer with the records inside `subtree`.
    case readAudit(oem: String, subtree: NodePath, limit: Int)
    case revoke(AdminRevocation)
    /// Read one UTC day's usage (`yyyymmdd`) of each customer and answer with it and the total.
    case readUsage(customers: [NodePath], day: String)
    /// Read a node's per-minute figures and a page of its customers' usage.
    case readHealth(HealthRead)
    /// Read the node's uploaded certificates (or one of them) and answer with them.
    case readCertificates(CertificateRead)
    /// Read the domain's stored certificate, judge the change against it and commit it.
    case changeCertificate(CertificateChange)
    /// Read the grant(s) the operation is about, judge it, and store what it decides.
    case supportGrant(SupportGrantOperation)
    /// Read the customer's support sessions from its OEM's audit log.
    case readSupportSessions(oem: String, customer: NodePath, limit: Int)
    /// Fetch the keys of these issuers from their identity providers; then judge the request
    /// again with `AdminRequest.fetchedIssuerKeys` set, or refuse naming the field that failed.
    case fetchIssuerKeys([IssuerKeyFetchRequest])
}

/// One issuer whose identity provider a change names, to be fetched before the change is judged.
public struct IssuerKeyFetchRequest: Sendable {
    public let issuer: FetchedIssuer
    /// The field that named it (`issuers[0].jwksUri`), and the node's label, for the refusal.
    public let field: String
    public let node: String
}

/// The admin API's logic, as one pure function of the request, the current stored tree and the
/// time: authentication, routing, authorization, optimistic concurrency, change validation.
/// It performs no I/O; `AdminService` carries out what it decides.
public enum AdminEngine {
    /// Largest request body accepted, in bytes.
    public static let maxBodyBytes = 1 << 20

    public static func handle(_ request: AdminRequest, tree: StoredTree, now: Int64) -> AdminOutcome {
        let id = request.requestID
        // Routing before authentication answers unknown paths without a token; routes carry no
        // tenant data, so that reveals nothing.
        let route: AdminRoute
        switch AdminRoute.match(method: request.method, path: request.path) {
        case .success(let matched): route = matched
        case .failure(.notFound): return .respond(AdminProblem.routeNotFound.response(requestID: id))
        case .failure(.methodNotAllowed(let allowed)): return .respond(AdminProblem.methodNotAllowed.response(requestID: id, allow: allowed))
        }
        guard let snapshot = tree.snapshot, let verifier = tree.configuration.adminVerifier else {
            return .respond(AdminProblem.storeUnavailable.response(requestID: id))
        }
        guard let authorization = request.header("authorization") else { return .respond(AdminProblem.tokenMissing.response(requestID: id)) }
        guard authorization.count > 7, authorization.prefix(7).lowercased() == "bearer " else {
            return .respond(AdminProblem.tokenRejected.response(requestID: id))
        }
        guard case .success(let token) = verifier.verify(authorization.dropFirst(7), now: now) else {
            return .respond(AdminProblem.tokenRejected.response(requestID: id))
        }
        if token.tenant == AdminRole.support.rawValue {
            // A support engineer administers nothing: it asks for grants and uses them.
            guard let engineer = SupportCaller(supportToken: token, tree: snapshot) else {
                return .respond(AdminProblem.tokenRejected.response(requestID: id))
            }
            switch route {
            case .me:
                let oem = token.node.flatMap { try? NodeID($0) }.flatMap { snapshot.policy($0)?.path }
                return .respond(.json(200, .object([
                    "subject": .string(token.subject), "role": .string(AdminRole.support.rawValue),
                    "node": oem.map { JSONValue.string($0.leaf.rawValue) } ?? .null, "path": oem.map { JSONValue.string($0.description) } ?? .null,
                    "kind": oem.map { JSONValue.string($0.kind.rawValue) } ?? .null,
                    "managesOwnIssuers": .bool(false),
                ])))
            case .listSupportGrants, .requestSupportGrant, .supportGrant, .supportSessions:
                return Self.supportGrants(route, caller: engineer, request: request, tree: tree, snapshot: snapshot, now: now)
            default:
                return .respond(AdminProblem.actionForbidden.response(requestID: id))
            }
        }
        guard let principal = AdminPrincipal(token: token, tree: snapshot) else {
            return .respond(AdminProblem.tokenRejected.response(requestID: id))
        }

        let context = Context(request: request, tree: tree, principal: principal, now: now)
        guard let nodeID = route.nodeID else {
            if route == .createOEM { return context.createOEM() }
            if route == .me { return .respond(.json(200, Self.me(principal, tree: tree))) }
            let roots = tree.document.tree.nodes.filter { node in
                guard let path = tree.node(node.id)?.path else { return false }
                return principal.scope.map { $0 == path } ?? (node.kind == .oem)
            }
            return .respond(.json(200, .object(["nodes": .array(roots.map(NodeJSON.encode))])))
        }
        // One lookup, whatever follows: hidden and unknown nodes are answered alike.
        let target = tree.node(nodeID)
        guard AdminAuthorization.decide(principal, .read, target: target?.path) == .allowed, let target else {
            return .respond(AdminProblem.nodeNotFound.response(requestID: id))
        }
        switch route {
        case .listRoots, .createOEM, .me:
            return .respond(AdminProblem.routeNotFound.response(requestID: id))  // answered above
        case .getNode:
            return .respond(.json(200, NodeJSON.encode(target.source), etag: NodeJSON.etag(target.source)))
        case .listChildren(let parent):
            let children = tree.children(of: parent).map { NodeJSON.encode($0) }
            return .respond(.json(200, .object(["children": .array(children)])))
        case .effectivePolicy:
            return .respond(.json(200, Self.effective(snapshot.policy(target.path.leaf)!, catalog: snapshot.catalog)))
        case .explain:
            guard let attribute = request.query("attribute"), !attribute.isEmpty else {
                return .respond(AdminProblem.missingAttribute.response(requestID: id))
            }
            guard let explanation = try? snapshot.explain(target.path.leaf, attribute: attribute) else {
                return .respond(AdminProblem.unknownAttribute.response(requestID: id))
            }
            return .respond(.json(200, Self.explanation(explanation)))
        case .audit:
            let limit = request.query("limit").flatMap(Int.init).map { min(max($0, 1), 1000) } ?? 100
            return .readAudit(oem: target.path.oem.rawValue, subtree: target.path, limit: limit)
        case .exportTree:
            let text = Self.export(tree, root: target.path)
            let headers = [(name: "content-type", value: "application/yaml"), (name: "etag", value: JSONValue.string(text).etag)]
            return .respond(AdminResponse(status: 200, headers: headers, body: text))
        case .applySubtree:
            return context.applySubtree(target)
        case .updateNode:
            return context.update(target)
        case .createChild:
            return context.create(under: target)
        case .deleteNode:
            return context.delete(target)
        case .revokeTokens:
            return context.revoke(target)
        case .usage:
            let day: String
            if let text = request.query("day") {
                guard let stamp = Self.dayStamp(text) else { return .respond(AdminProblem.badDay.response(requestID: id)) }
                day = stamp
            } else {
                day = UTCCalendarPeriod(now: now * 1_000_000).dayStamp
            }
            let customers = tree.document.tree.nodes.compactMap { node -> NodePath? in
                guard node.kind == .customer, let path = tree.node(node.id)?.path, target.path.contains(path) else { return nil }
                return path
            }
            return .readUsage(customers: customers, day: day)
        case .health:
            return context.health(of: target.path)
        case .getIssuers(let node):
            let issuers = tree.document.issuers.filter { $0.node == node }
            return .respond(.json(200, IssuerJSON.encode(issuers), etag: IssuerJSON.etag(issuers)))
        case .replaceIssuers:
            return context.replaceIssuers(target)
        case .listCertificates:
            return .readCertificates(CertificateRead(node: target.source.id, path: target.path, domain: nil, tree: snapshot, now: now, requestID: id))
        case .getCertificate(_, let domain):
            return .readCertificates(CertificateRead(node: target.source.id, path: target.path, domain: domain, tree: snapshot, now: now, requestID: id))
        case .putCertificate(_, let domain):
            return context.putCertificate(target, domain: domain, tree: snapshot)
        case .deleteCertificate(_, let domain):
            return context.deleteCertificate(target, domain: domain, tree: snapshot)
        case .listSupportGrants, .requestSupportGrant, .supportGrant, .supportSessions:
            return Self.supportGrants(route, caller: .admin(principal), request: request, tree: tree, snapshot: snapshot, now: now)
        }
    }

    /// `GET /admin/v1/me`: what the verified token says, and nothing the caller could not read
    /// about its own node anyway.
    static func me(_ principal: AdminPrincipal, tree: StoredTree) -> JSONValue {
        var members: [String: JSONValue] = [
            "subject": .string(principal.actor), "role": .string(principal.role.rawValue),
            "node": .null, "path": .null, "kind": .null, "managesOwnIssuers": .bool(principal.managesOwnIssuers),
        ]
        if let scope = principal.scope {
            members["node"] = .string(scope.leaf.rawValue)
            members["path"] = .string(scope.description)
            members["kind"] = .string(scope.kind.rawValue)
        }
        return .object(members)
    }

    /// The state one write is judged in.
    struct Context {
        let request: AdminRequest
        let tree: StoredTree
        let principal: AdminPrincipal
        let now: Int64

        var requestID: String { self.request.requestID }

        func refuse(_ problem: AdminProblem, _ errors: [FieldProblem] = []) -> AdminOutcome {
            .respond(problem.response(requestID: self.requestID, errors: errors))
        }

        /// `?dryRun=true`: validate and tell, store nothing.
        var isDryRun: Bool { self.request.query("dryRun") == "true" }

        /// A dry run's answer: what the change would leave (the node, or what the route answers
        /// instead of one) and every field it would change, at the current revision.
        func dryRun(_ result: JSONValue, changes: [AuditRecord.FieldChange]) -> AdminOutcome {
            .respond(.json(200, .object([
                "dryRun": .bool(true), "node": result, "changes": .array(changes.map(\.json)), "revision": .integer(self.tree.revision),
            ])))
        }

        /// A change that changes nothing: `result` as stored, with its ETag — or, in a dry run,
        /// the dry run's answer with no changes, like any other dry run.
        func unchanged(_ result: JSONValue, etag: String) -> AdminOutcome {
            self.isDryRun ? self.dryRun(result, changes: []) : .respond(.json(200, result, etag: etag))
        }

        /// `If-Match` must name the node's current ETag (or `*`).
        func precondition(_ node: NodeSource) -> AdminProblem? {
            self.precondition(etag: NodeJSON.etag(node))
        }

        /// `If-Match` must name `etag` (or `*`).
        func precondition(etag: String) -> AdminProblem? {
            guard let ifMatch = self.request.header("if-match") else { return .preconditionRequired }
            let candidates = ifMatch.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            return candidates.contains("*") || candidates.contains(etag) ? nil : .preconditionFailed
        }

        /// The body, when it is a JSON object.
        func body() -> JSONValue? {
            guard let json = JSONValue.parse(self.request.body), case .object = json else { return nil }
            return json
        }

        func update(_ target: (source: NodeSource, path: NodePath)) -> AdminOutcome {
            if let problem = self.precondition(target.source) { return self.refuse(problem) }
            guard let patch = self.body() else { return self.refuse(.malformedBody) }
            let before = NodeJSON.encode(target.source)
            let merged = before.merging(patch)
            let label = target.path.description
            var problems: [FieldProblem] = []
            for field in NodeJSON.readOnlyFields.sorted() where merged[field] != before[field] {
                problems.append(FieldProblem(node: label, field: field, message: "cannot be changed"))
            }
            let decoded = NodeJSON.decode(
                merged, id: target.source.id, kind: target.source.kind, parent: target.source.parent, issuers: target.source.issuers, label: label
            )
            guard case .success(let node) = decoded, problems.isEmpty else {
                if case .failure(let shape) = decoded { problems += shape.list }
                return self.refuse(.invalidChange, problems)
            }
            let after = NodeJSON.encode(node)
            let changes = AuditRecord.diff(before: before, after: after)
            guard !changes.isEmpty else { return self.unchanged(after, etag: NodeJSON.etag(node)) }
            for action in Self.actions(for: changes) where AdminAuthorization.decide(self.principal, action, target: target.path) != .allowed {
                return self.refuse(.actionForbidden)
            }
            var document = self.tree.document
            document.tree.nodes[self.tree.position(of: node.id)] = node
            return self.commit(document, touching: [node.id], node: node, path: target.path, action: .update, changes: changes, status: 200)
        }

        func create(under parent: (source: NodeSource, path: NodePath)) -> AdminOutcome {
            if let problem = self.precondition(parent.source) { return self.refuse(problem) }
            guard let json = self.body() else { return self.refuse(.malformedBody) }
            guard AdminAuthorization.decide(self.principal, .createChild, target: parent.path) == .allowed,
                let kind: NodeKind = parent.source.kind == .oem ? .partner : (parent.source.kind == .partner ? .customer : nil)
            else {
                return self.refuse(.actionForbidden)
            }
            let parentLabel = parent.path.description
            guard let idText = json["id"]?.string else {
                return self.refuse(.invalidChange, [FieldProblem(node: parentLabel, field: "id", message: "the new node needs an id")])
            }
            guard let childID = try? NodeID(idText), let childPath = parent.path.appending(childID) else {
                return self.refuse(.invalidChange, [FieldProblem(node: parentLabel, field: "id", message: "'\(idText)' is not a valid id (lowercase letters, digits and '-', starting with a letter)")])
            }
            var problems: [FieldProblem] = []
            if let kindText = json["kind"]?.string, kindText != kind.rawValue {
                problems.append(FieldProblem(node: childPath.description, field: "kind", message: "a child of a \(parent.source.kind.rawValue) is a \(kind.rawValue)"))
            }
            if let parentText = json["parent"]?.string, parentText != parent.source.id {
                problems.append(FieldProblem(node: childPath.description, field: "parent", message: "is the node the child is created under"))
            }
            if json["issuers"] != nil {
                problems.append(FieldProblem(node: childPath.description, field: "issuers", message: "cannot be set here"))
            }
            var fields = json.object ?? [:]
            for field in NodeJSON.readOnlyFields { fields[field] = nil }
            let decoded = NodeJSON.decode(.object(fields), id: idText, kind: kind, parent: parent.source.id, issuers: [], label: childPath.description)
            guard case .success(let node) = decoded, problems.isEmpty else {
                if case .failure(let shape) = decoded { problems += shape.list }
                return self.refuse(.invalidChange, problems)
            }
            let after = NodeJSON.encode(node)
            let changes = AuditRecord.diff(before: nil, after: after)
            // What the new node is given is judged as if it were changed on the node itself.
            for action in Self.actions(for: changes) where AdminAuthorization.decide(self.principal, action, target: childPath) != .allowed {
                return self.refuse(.actionForbidden)
            }
            var document = self.tree.document
            // Right after its last sibling (or its parent): the stored file stays readable.
            let siblings = document.tree.nodes.indices.filter { document.tree.nodes[$0].parent == parent.source.id || document.tree.nodes[$0].id == parent.source.id }
            document.tree.nodes.insert(node, at: (siblings.last ?? document.tree.nodes.count - 1) + 1)
            return self.commit(document, touching: [node.id], node: node, path: childPath, action: .create, changes: changes, status: 201)
        }

        /// A new OEM: the platform's alone. Nothing exists that could be stale, so no `If-Match`;
        /// an id already in use is refused by validation like any other.
        func createOEM() -> AdminOutcome {
            guard self.principal.role == .platformAdmin else { return self.refuse(.actionForbidden) }
            guard let json = self.body() else { return self.refuse(.malformedBody) }
            guard let idText = json["id"]?.string, let id = try? NodeID(idText) else {
                return self.refuse(.invalidChange, [FieldProblem(node: "", field: "id", message: "the new OEM needs a valid id (lowercase letters, digits and '-', starting with a letter)")])
            }
            var fields = json.object ?? [:]
            var problems: [FieldProblem] = []
            if let kind = fields["kind"]?.string, kind != NodeKind.oem.rawValue {
                problems.append(FieldProblem(node: idText, field: "kind", message: "a root of the tree is an OEM"))
            }
            if fields["parent"] != nil { problems.append(FieldProblem(node: idText, field: "parent", message: "an OEM has no parent")) }
            if fields["issuers"] != nil { problems.append(FieldProblem(node: idText, field: "issuers", message: "register issuers with PUT …/issuers")) }
            for field in NodeJSON.readOnlyFields { fields[field] = nil }
            let decoded = NodeJSON.decode(.object(fields), id: idText, kind: .oem, parent: nil, issuers: [], label: idText)
            guard case .success(let node) = decoded, problems.isEmpty else {
                if case .failure(let shape) = decoded { problems += shape.list }
                return self.refuse(.invalidChange, problems)
            }
            var document = self.tree.document
            document.tree.nodes.append(node)
            let after = NodeJSON.encode(node)
            return self.commit(document, touching: [node.id], node: node, path: NodePath(oem: id), action: .create, changes: AuditRecord.diff(before: nil, after: after), status: 201)
        }

        func delete(_ target: (source: NodeSource, path: NodePath)) -> AdminOutcome {
            if let problem = self.precondition(target.source) { return self.refuse(problem) }
            guard AdminAuthorization.decide(self.principal, .delete, target: target.path) == .allowed else { return self.refuse(.actionForbidden) }
            guard self.tree.children(of: target.source.id).isEmpty else { return self.refuse(.hasChildren) }
            var document = self.tree.document
            document.tree.nodes.remove(at: self.tree.position(of: target.source.id))
            document.issuers.removeAll { $0.node == target.source.id }
            let before = NodeJSON.encode(target.source)
            return self.commit(
                document, touching: [target.source.id], node: nil, path: target.path, action: .delete, changes: AuditRecord.diff(before: before, after: nil), status: 200,
                deleted: (target.source.id, JSONValue.object([
                    "node": before, "path": .string(target.path.description), "deletedAt": .integer(self.now), "deletedBy": .string(self.principal.actor),
                ]))
            )
        }

        /// `body`: what to answer instead of the node (the issuers list and its ETag).
        /// `touched`: every node whose declaration or issuers the change may alter (or remove).
        func commit(
            _ document: TenantTreeDocument, touching touched: Set<String>, node: NodeSource?, path: NodePath, action: AuditRecord.Action, changes: [AuditRecord.FieldChange], status: Int,
            deleted: (id: String, record: JSONValue)? = nil, body: (json: JSONValue, etag: String?)? = nil
        ) -> AdminOutcome {
            switch self.tree.compile(document, touching: touched, revision: self.tree.revision + 1) {
            case .failure(let failure):
                return self.refuse(.invalidChange, ProblemAudience(scope: self.principal.scope, document: failure.document).problems(failure.issues))
            case .success(let (next, write)):
                if self.isDryRun {
                    // Validated exactly like a real change; nothing is stored or announced.
                    return self.dryRun(body?.json ?? node.map(NodeJSON.encode) ?? .null, changes: changes)
                }
                let audit = AuditRecord(
                    time: self.now, actor: self.principal.actor, role: self.principal.role, node: path, action: action, changes: changes,
                    requestID: self.requestID
                )
                let response: AdminResponse
                if let body {
                    response = .json(status, body.json, etag: body.etag)
                } else if let node {
                    response = .json(status, NodeJSON.encode(node), etag: NodeJSON.etag(node))
                } else {
                    response = AdminResponse(status: 204, body: "")
                }
                return .commit(AdminCommit(
                    base: self.tree.storeRevision, next: next, write: write, audit: audit, oem: path.oem.rawValue, deleted: deleted, response: response
                ))
            }
        }

        /// What changing these fields amounts to, for authorization.
        static func actions(for changes: [AuditRecord.FieldChange]) -> Set<AdminAction> {
            var actions: Set<AdminAction> = []
            for change in changes {
                switch change.field {
                case "branding", "portalDomains": actions.insert(.editPresentation)
                case "placement": actions.insert(.editPlacement)
                case "partnerIssuerSelfService": actions.insert(.delegateIssuers)
                case "supportAccess": actions.insert(.editSupportAccess)
                case "status": actions.insert(change.after == .string(TenantStatus.suspended.rawValue) ? .suspend : .reactivate)
                default: actions.insert(.editEntitlements)
                }
            }
            return actions
        }
    }
}
