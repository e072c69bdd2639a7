/// Which shard of a Redis Cluster serves each of the 16384 slots, as a value read from one node's
/// `CLUSTER SLOTS` reply: the shards (a primary and its replicas) and, per slot, the index of
/// the shard owning it.
///
/// Why `CLUSTER SLOTS` rather than `CLUSTER SHARDS`: every Redis Cluster since 3.0 answers it,
/// and its first node per range is the primary by definition, where `CLUSTER SHARDS` (7.0+) needs
/// its role and health fields interpreted. It is what redis-rs and go-redis read too.
///
/// The lookup is an array of 16384 shard indices (32 KiB), shared by every copy of the map:
/// routing a command costs one array read.
struct RedisSlotMap: Sendable, Equatable {
    struct Shard: Sendable, Hashable {
        var primary: RedisURL.Node
        var replicas: [RedisURL.Node]
    }

    /// Ordered by primary (host, then port), so the same cluster gives equal maps.
    let shards: [Shard]
    /// Slot → index in `shards`; `unassigned` when no shard serves it (a cluster being built, or
    /// a shard lost with no replica: Redis answers `CLUSTERDOWN` for it).
    private let owners: [UInt16]
    static let unassigned = UInt16.max

    init(shards: [Shard], owners: [UInt16]) {
        precondition(owners.count == RedisKeySlot.count, "one owner per slot")
        self.shards = shards
        self.owners = owners
    }

    /// The index in `shards` of the shard serving `slot`; nil while no shard serves it.
    func shardIndex(forSlot slot: Int) -> Int? {
        let owner = self.owners[slot]
        return owner == Self.unassigned ? nil : Int(owner)
    }

    /// Every node named, primaries first: where a new map can be read from.
    var nodes: [RedisURL.Node] {
        self.shards.map(\.primary) + self.shards.flatMap(\.replicas)
    }

    /// Slots served, out of 16384.
    var assignedSlots: Int { self.owners.reduce(0) { $0 + ($1 == Self.unassigned ? 0 : 1) } }

    struct Malformed: Error, CustomStringConvertible {
        let description: String
    }

    /// Reads a `CLUSTER SLOTS` reply: `[[start, end, [host, port, id, …], replica…], …]`.
    /// - Parameter askedHost: the host the reply came from, standing in for a node whose
    ///   address is empty or `?` (Redis's "the address you reached me at").
    init(clusterSlots reply: RESPValue, askedHost: String) throws {
        guard let ranges = reply.elements else {
            throw Malformed(description: reply.errorMessage.map { "CLUSTER SLOTS refused: \($0.prefix(80))" } ?? "CLUSTER SLOTS reply is not an array")
        }
        var shardIndex: [RedisURL.Node: Int] = [:]
        var shards: [Shard] = []
        var assignments: [(range: ClosedRange<Int>, primary: RedisURL.Node)] = []
        for range in ranges {
            guard let parts = range.elements, parts.count >= 3,
                  let start = parts[0].int64, let end = parts[1].int64,
                  0 <= start, start <= end, end < Int64(RedisKeySlot.count)
            else { throw Malformed(description: "CLUSTER SLOTS range is malformed") }
            let nodes = try parts[2...].map { try Self.node($0, askedHost: askedHost) }
            let primary = nodes[0]
            if shardIndex[primary] == nil {
                shardIndex[primary] = shards.count
                shards.append(Shard(primary: primary, replicas: Array(nodes.dropFirst())))
            }
            assignments.append((Int(start)...Int(end), primary))
        }
        // Stable order, whatever order the node listed its ranges in.
        let sorted = shards.sorted { ($0.primary.host, $0.primary.port) < ($1.primary.host, $1.primary.port) }
        let index = Dictionary(uniqueKeysWithValues: sorted.enumerated().map { ($1.primary, UInt16($0)) })
        var owners = [UInt16](repeating: Self.unassigned, count: RedisKeySlot.count)
        for (range, primary) in assignments {
            let owner = index[primary]!
            for slot in range { owners[slot] = owner }
        }
        self.init(shards: sorted, owners: owners)
    }

    private static func node(_ value: RESPValue, askedHost: String) throws -> RedisURL.Node {
        guard let fields = value.elements, fields.count >= 2, let host = fields[0].string, let port = fields[1].int64, (1...65535).contains(port) else {
            throw Malformed(description: "CLUSTER SLOTS node is malformed")
        }
        return RedisURL.Node(host: host.isEmpty || host == "?" ? askedHost : host, port: Int(port))
    }
}

/// What a cluster node's error reply asks of the client, from its first word.
enum RedisClusterRedirect: Equatable {
    /// `MOVED <slot> <host:port>`: the slot lives there now; the map is out of date.
    case moved(slot: Int, to: RedisURL.Node)
    /// `ASK <slot> <host:port>`: during a migration this key is already there: ask it once,
    /// after `ASKING`, and keep the map.
    case ask(slot: Int, to: RedisURL.Node)
    /// `CLUSTERDOWN …` (slots unserved) or `TRYAGAIN …` (a multi-key command during a
    /// migration): the command cannot run now.
    case unavailable

    /// - Parameter askedHost: the host of the node that answered, standing in for an empty one
    ///   (`MOVED 3999 :6381`: "the address you reached me at").
    init?(errorReply message: String, askedHost: String) {
        if message.hasPrefix("CLUSTERDOWN") || message.hasPrefix("TRYAGAIN") {
            self = .unavailable
            return
        }
        let isMoved = message.hasPrefix("MOVED ")
        guard isMoved || message.hasPrefix("ASK ") else { return nil }
        let words = message.split(separator: " ")
        guard words.count == 3, let slot = Int(words[1]), (0..<RedisKeySlot.count).contains(slot),
              let colon = words[2].lastIndex(of: ":"), let port = Int(words[2][words[2].index(after: colon)...]), (1...65535).contains(port)
        else { return nil }
        var host = String(words[2][..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host.isEmpty { host = askedHost }
        let node = RedisURL.Node(host: host, port: port)
        self = isMoved ? .moved(slot: slot, to: node) : .ask(slot: slot, to: node)
    }
}
