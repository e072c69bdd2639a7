/// The level of a node in the tenant tree. The platform itself is not a node: the tree's roots
/// are OEMs, and the platform's own direct channel is an ordinary OEM.
public enum NodeKind: String, Sendable, CaseIterable {
    case oem
    case partner
    case customer

    /// The number of ids in the path of a node of this kind.
    public var depth: Int {
        switch self {
        case .oem: return 1
        case .partner: return 2
        case .customer: return 3
        }
    }
}

/// The ids from the OEM down to one node: `acme`, `acme/northwind` or `acme/northwind/contoso`.
///
/// The depth alone says what kind of node the path names, so a path can never claim a
/// customer sits directly under an OEM. Ids are stored inline rather than in an array: a
/// path travels with every request (quota keys, upstream context, logs) and should not cost
/// an allocation.
public struct NodePath: Hashable, Sendable, CustomStringConvertible {
    public let oem: NodeID
    public let partner: NodeID?
    /// Non-nil only together with `partner`; every initializer keeps that invariant.
    public let customer: NodeID?

    public static let separator: Character = "/"

    public init(oem: NodeID) {
        self.oem = oem
        self.partner = nil
        self.customer = nil
    }

    public init(oem: NodeID, partner: NodeID) {
        self.oem = oem
        self.partner = partner
        self.customer = nil
    }

    public init(oem: NodeID, partner: NodeID, customer: NodeID) {
        self.oem = oem
        self.partner = partner
        self.customer = customer
    }

    /// `nil` unless `ids` holds one to three ids, the OEM's first.
    public init?(_ ids: some Collection<NodeID>) {
        var iterator = ids.makeIterator()
        guard ids.count <= 3, let oem = iterator.next() else { return nil }
        switch (iterator.next(), iterator.next()) {
        case (nil, _): self.init(oem: oem)
        case (let partner?, nil): self.init(oem: oem, partner: partner)
        case (let partner?, let customer?): self.init(oem: oem, partner: partner, customer: customer)
        }
    }

    /// Parses the `description` form, `oem/partner/customer`. No leading, trailing or doubled
    /// `/`, and no whitespace: a path in configuration is written exactly one way.
    public init(parsing text: some StringProtocol) throws(NodePathError) {
        if text.isEmpty { throw .empty }
        var parsed: [NodeID] = []
        parsed.reserveCapacity(3)
        for (index, segment) in text.split(separator: Self.separator, omittingEmptySubsequences: false).enumerated() {
            // Counted before parsing so a long hostile path is refused without parsing it all.
            if index == 3 { throw .tooDeep }
            do {
                parsed.append(try NodeID(segment))
            } catch {
                throw .invalidSegment(index: index, error)
            }
        }
        switch parsed.count {
        case 1: self.init(oem: parsed[0])
        case 2: self.init(oem: parsed[0], partner: parsed[1])
        default: self.init(oem: parsed[0], partner: parsed[1], customer: parsed[2])
        }
    }

    public var kind: NodeKind {
        if customer != nil { return .customer }
        if partner != nil { return .partner }
        return .oem
    }

    public var depth: Int { kind.depth }

    /// The id of the node this path names.
    public var leaf: NodeID { customer ?? partner ?? oem }

    /// The ids from the OEM down to and including `leaf`.
    public var ids: [NodeID] { [oem] + [partner, customer].compactMap { $0 } }

    /// Whether `id` names a node of this path (`ids.contains(id)` without building the list:
    /// asked of every request a token scoped to a node authorizes).
    public func contains(_ id: NodeID) -> Bool {
        self.oem == id || self.partner == id || self.customer == id
    }

    /// The path of the parent node; `nil` for an OEM.
    public var parent: NodePath? {
        switch (partner, customer) {
        case (nil, _): return nil
        case (_?, nil): return NodePath(oem: oem)
        case (let partner?, _?): return NodePath(oem: oem, partner: partner)
        }
    }

    /// Every proper ancestor, the OEM first; empty for an OEM. A customer's quota is checked
    /// at `ancestors + [self]`.
    public var ancestors: [NodePath] {
        var result: [NodePath] = []
        var next = parent
        while let path = next {
            result.append(path)
            next = path.parent
        }
        return result.reversed()
    }

    /// The path of the child `id` of this node; `nil` for a customer, which has no children.
    public func appending(_ id: NodeID) -> NodePath? {
        switch (partner, customer) {
        case (nil, _): return NodePath(oem: oem, partner: id)
        case (let partner?, nil): return NodePath(oem: oem, partner: partner, customer: id)
        case (_?, _?): return nil
        }
    }

    /// Whether `other` lies strictly below this node.
    public func isAncestor(of other: NodePath) -> Bool {
        depth < other.depth && contains(other)
    }

    /// Whether `other` is this node or lies below it: the subtree test behind issuer scopes
    /// and delegated administration.
    public func contains(_ other: NodePath) -> Bool {
        guard oem == other.oem else { return false }
        if let partner, partner != other.partner { return false }
        if let customer, customer != other.customer { return false }
        return true
    }

    /// `oem/partner/customer`, built in one buffer: it is rendered for every forwarded request
    /// (the tenant context), where mapping and joining cost ten allocations.
    public var description: String {
        let partner = self.partner?.rawValue ?? ""
        let customer = self.customer?.rawValue ?? ""
        var text = ""
        text.reserveCapacity(self.oem.rawValue.utf8.count + partner.utf8.count + customer.utf8.count + 2)
        text += self.oem.rawValue
        if self.partner != nil { text += "/" + partner }
        if self.customer != nil { text += "/" + customer }
        return text
    }
}

/// Why a string is not a valid `NodePath`.
public struct NodePathError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Code: Hashable, Sendable {
        case empty
        case tooDeep
        case invalidSegment(index: Int, NodeIDError)
    }

    private let code: Code

    private init(_ code: Code) { self.code = code }

    public static let empty = NodePathError(.empty)
    /// More than three segments: the tree has OEMs, partners and customers, nothing below.
    /// A trailing `/` after a customer counts as a fourth segment.
    public static let tooDeep = NodePathError(.tooDeep)
    /// `index` counts segments from the OEM, starting at 0. An empty segment (`a//b`, a
    /// leading `/`, a trailing `/` within the first three) is reported here with
    /// `NodeIDError.empty`.
    public static func invalidSegment(index: Int, _ error: NodeIDError) -> NodePathError {
        NodePathError(.invalidSegment(index: index, error))
    }

    public var description: String {
        switch code {
        case .empty:
            return "node path is empty"
        case .tooDeep:
            return "node path has more than 3 ids (oem/partner/customer)"
        case .invalidSegment(let index, let error):
            return "node path segment \(index): \(error)"
        }
    }
}
