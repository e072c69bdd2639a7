/// What Sentinels and the servers they name answer, read as values: the replies the primary
/// locator acts on, parsed without I/O so that every shape is testable on its own.
enum SentinelReplies {
    /// The address in a `SENTINEL get-master-addr-by-name` reply: `[ip, port]`. `nil` for the
    /// null reply (this Sentinel monitors no master set of that name) and for anything else.
    static func primaryAddress(_ reply: RESPValue) -> RedisURL.Node? {
        guard let elements = reply.elements, elements.count == 2,
              let host = elements[0].string, !host.isEmpty,
              let port = elements[1].int64, (1...65535).contains(port)
        else { return nil }
        return RedisURL.Node(host: host, port: Int(port))
    }

    /// True when a `ROLE` reply says `master`. A replica answers `slave` (also while it is
    /// being promoted: Sentinel only announces the switch once the role has changed), a
    /// Sentinel `sentinel`.
    static func isPrimary(_ reply: RESPValue) -> Bool {
        reply.elements?.first?.string == "master"
    }

    /// A `+switch-master` announcement: `<master name> <old ip> <old port> <new ip> <new port>`.
    struct Switch: Hashable, Sendable {
        var masterName: String
        var old: RedisURL.Node
        var new: RedisURL.Node

        /// `nil` for a payload of any other shape.
        init?(payload: [UInt8]) {
            guard let text = String(validating: payload, as: UTF8.self) else { return nil }
            let words = text.split(separator: " ", omittingEmptySubsequences: true)
            guard words.count == 5,
                  let oldPort = Int(words[2]), (1...65535).contains(oldPort),
                  let newPort = Int(words[4]), (1...65535).contains(newPort)
            else { return nil }
            self.masterName = String(words[0])
            self.old = RedisURL.Node(host: String(words[1]), port: oldPort)
            self.new = RedisURL.Node(host: String(words[3]), port: newPort)
        }
    }
}

/// The Sentinels of a URL in the order they are asked: the first to answer moves to the front
/// (the guidelines' rule), so a Sentinel that is down costs one failed attempt, not one per
/// resolution.
struct SentinelList: Hashable, Sendable {
    private(set) var nodes: [RedisURL.Node]

    init(_ nodes: [RedisURL.Node]) {
        precondition(!nodes.isEmpty, "no Sentinels")
        self.nodes = nodes
    }

    /// `sentinel` answered: ask it first from now on.
    mutating func answered(_ sentinel: RedisURL.Node) {
        guard let index = self.nodes.firstIndex(of: sentinel), index != 0 else { return }
        self.nodes.remove(at: index)
        self.nodes.insert(sentinel, at: 0)
    }
}
