/// Where Redis is and how to log in. Three forms, one per topology:
///
/// - `redis://[user[:password]@]host[:port][/db]` — one Redis server (or a proxy in front of one).
/// - `redis-cluster://[user[:password]@]host[:port][,host[:port]…]` — a Redis Cluster; the hosts
///   are seeds the slot map is first read from (any reachable one will do). No `/db`: a cluster
///   has database 0 only.
/// - `redis-sentinel://[user[:password]@]host[:port][,host[:port]…]/master[/db]` — a primary
///   found through the Sentinels listed (default port 26379) under the master set name `master`.
///   The credentials log in to the primary, not to the Sentinels.
/// - `rediss://…` and `rediss-sentinel://…` — the same over TLS (`tls`): to the server, or to
///   the Sentinels and the primary they name.
///
/// Parsed once from configuration so that a typo fails at startup, not at the first request.
/// Defaults: port 6379 (26379 for a Sentinel), database 0. User and password are
/// percent-decoded (a password with `@`, `:`, `/` or `,` must be percent-encoded). An IPv6 host
/// is written in brackets (`[::1]:6379`).
///
/// Never reveals the password: `description` masks it and the mirror (`dump`, debuggers)
/// omits it, so a URL can be logged as it is.
public struct RedisURL: Hashable, Sendable, CustomStringConvertible, CustomReflectable {
    /// How the servers the URL names are to be used.
    public enum Topology: Hashable, Sendable {
        /// One server: `host`:`port`.
        case standalone
        /// A Redis Cluster; `nodes` are the seeds of the slot map.
        case cluster
        /// `nodes` are Sentinels that know the primary of the master set `masterName`.
        case sentinel(masterName: String)
    }

    /// One `host:port` of the URL.
    public struct Node: Hashable, Sendable, CustomStringConvertible {
        /// A host name or an IP address, without brackets.
        public var host: String
        /// In `1...65535`.
        public var port: Int

        public init(host: String, port: Int) {
            precondition((1...65535).contains(port), "port out of range")
            self.host = host
            self.port = port
        }

        public var description: String { self.host.contains(":") ? "[\(self.host)]:\(self.port)" : "\(self.host):\(self.port)" }
    }

    /// A host name or an IP address, without brackets: the first of `nodes`.
    public var host: String
    /// In `1...65535`: the port of the first of `nodes`.
    public var port: Int
    /// Redis 6 ACL user; `nil` logs in as `default` (plain `AUTH password`).
    public var username: String?
    /// `nil`: no `AUTH` is sent.
    public var password: String?
    /// `SELECT`ed on every new connection when not 0.
    public var database: Int
    public var topology: Topology
    /// Every server the URL names, in its order (at least one; exactly one when standalone).
    public var nodes: [Node]
    /// `nil`: plain TCP. `rediss://` sets the default (system trust store, the host's name);
    /// the owner may put a configured context and server name in its place.
    public var tls: RedisTLS?

    public static let defaultPort = 6379
    public static let defaultSentinelPort = 26379

    public init(host: String, port: Int = RedisURL.defaultPort, username: String? = nil, password: String? = nil, database: Int = 0) {
        self.init(nodes: [Node(host: host, port: port)], topology: .standalone, username: username, password: password, database: database)
    }

    public init(nodes: [Node], topology: Topology, username: String? = nil, password: String? = nil, database: Int = 0) {
        precondition(!nodes.isEmpty, "a Redis URL names at least one server")
        precondition(topology != .standalone || nodes.count == 1, "a standalone Redis is one server")
        precondition(topology != .cluster || database == 0, "a Redis Cluster has database 0 only")
        precondition(database >= 0, "negative database index")
        precondition(username == nil || password != nil, "a username needs a password")
        self.host = nodes[0].host
        self.port = nodes[0].port
        self.nodes = nodes
        self.topology = topology
        self.username = username
        self.password = password
        self.database = database
    }

    /// The same login and database on one other server (a cluster shard, the primary a Sentinel
    /// named): what a connection to that server is opened with.
    public func standalone(at node: Node) -> RedisURL {
        var url = RedisURL(nodes: [node], topology: .standalone, username: self.username, password: self.password, database: self.database)
        url.tls = self.tls
        return url
    }

    /// - Throws: `RedisClientError.unsupportedURLScheme` for a scheme other than `redis`,
    ///   `rediss`, `redis-cluster`, `redis-sentinel` and `rediss-sentinel`; `RedisClientError.invalidURL` for anything else
    ///   that does not fit the grammar above.
    public init(_ string: String) throws(RedisClientError) {
        guard let schemeEnd = string.firstRange(of: "://") else { throw .invalidURL }
        let written = string[..<schemeEnd.lowerBound].lowercased()
        // The TLS schemes read like their plain ones.
        let scheme = ["rediss": "redis", "rediss-sentinel": "redis-sentinel"][written] ?? written
        let tls = scheme != written
        let defaultPort: Int
        switch scheme {
        case "redis", "redis-cluster": defaultPort = Self.defaultPort
        case "redis-sentinel": defaultPort = Self.defaultSentinelPort
        default: throw .unsupportedURLScheme
        }
        let rest = string[schemeEnd.upperBound...]
        guard !rest.contains("?"), !rest.contains("#") else { throw .invalidURL }

        let authority: Substring
        let path: Substring
        if let slash = rest.firstIndex(of: "/") {
            authority = rest[..<slash]
            path = rest[rest.index(after: slash)...]
        } else {
            authority = rest
            path = ""
        }

        var username: String?
        var password: String?
        let hostList: Substring
        // The last `@`: an unencoded `@` in a password is forgiven, an unencoded `@` in a host
        // cannot occur.
        if let at = authority.lastIndex(of: "@") {
            let userInfo = authority[..<at]
            hostList = authority[authority.index(after: at)...]
            if let colon = userInfo.firstIndex(of: ":") {
                let user = try Self.percentDecoded(userInfo[..<colon])
                username = user.isEmpty ? nil : user
                password = try Self.percentDecoded(userInfo[userInfo.index(after: colon)...])
            } else {
                // `user@host` names an ACL user with nothing to authenticate it: refuse rather
                // than silently connect as `default`.
                throw .invalidURL
            }
        } else {
            hostList = authority
        }

        let nodes = try hostList.split(separator: ",", omittingEmptySubsequences: false).map { text throws(RedisClientError) in
            try Self.node(text, defaultPort: defaultPort)
        }

        switch scheme {
        case "redis":
            guard nodes.count == 1 else { throw .invalidURL }
            var database = 0
            if !path.isEmpty {
                guard let parsed = Self.decimal(path), parsed <= Int(Int32.max) else { throw .invalidURL }
                database = parsed
            }
            self.init(nodes: nodes, topology: .standalone, username: username, password: password, database: database)
        case "redis-cluster":
            guard path.isEmpty else { throw .invalidURL }
            self.init(nodes: nodes, topology: .cluster, username: username, password: password)
        default:
            // `master` or `master/db`.
            let parts = path.split(separator: "/", omittingEmptySubsequences: false)
            guard (1...2).contains(parts.count), !parts[0].isEmpty else { throw .invalidURL }
            let masterName = try Self.percentDecoded(parts[0])
            var database = 0
            if parts.count == 2, !parts[1].isEmpty {
                guard let parsed = Self.decimal(parts[1]), parsed <= Int(Int32.max) else { throw .invalidURL }
                database = parsed
            }
            self.init(nodes: nodes, topology: .sentinel(masterName: masterName), username: username, password: password, database: database)
        }
        if tls { self.tls = RedisTLS() }
    }

    /// `host`, `host:port`, `[v6]` or `[v6]:port`.
    private static func node(_ text: Substring, defaultPort: Int) throws(RedisClientError) -> Node {
        let host: Substring
        let portText: Substring?
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw .invalidURL }
            host = text[text.index(after: text.startIndex)..<close]
            let after = text[text.index(after: close)...]
            if after.isEmpty {
                portText = nil
            } else if after.hasPrefix(":") {
                portText = after.dropFirst()
            } else {
                throw .invalidURL
            }
        } else if let colon = text.firstIndex(of: ":") {
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        } else {
            host = text
            portText = nil
        }
        guard !host.isEmpty else { throw .invalidURL }
        var port = defaultPort
        if let portText {
            guard let parsed = Self.decimal(portText), (1...65535).contains(parsed) else { throw .invalidURL }
            port = parsed
        }
        return Node(host: String(host), port: port)
    }

    /// The URL with the password replaced by `***` when there is one, e.g.
    /// `redis://user:***@host:port/db`.
    public var description: String {
        var text: String
        switch self.topology {
        case .standalone: text = self.tls == nil ? "redis://" : "rediss://"
        case .cluster: text = "redis-cluster://"
        case .sentinel: text = self.tls == nil ? "redis-sentinel://" : "rediss-sentinel://"
        }
        if password != nil {
            text += (username ?? "") + ":***@"
        }
        text += self.nodes.map(\.description).joined(separator: ",")
        switch self.topology {
        case .standalone: text += "/\(database)"
        case .cluster: break
        case .sentinel(let masterName): text += "/\(masterName)/\(database)"
        }
        return text
    }

    public var customMirror: Mirror {
        Mirror(self, children: ["nodes": nodes, "topology": topology, "username": username as Any, "database": database, "tls": tls != nil], displayStyle: .struct)
    }

    /// ASCII digits only (no sign, no spaces), at most 9 of them so the value cannot overflow.
    private static func decimal(_ text: Substring) -> Int? {
        guard !text.isEmpty, text.count <= 9, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        return Int(text)
    }

    private static func percentDecoded(_ text: Substring) throws(RedisClientError) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(Self.hexValue), let low = iterator.next().flatMap(Self.hexValue) else {
                throw .invalidURL
            }
            bytes.append(high << 4 | low)
        }
        guard let decoded = String(validating: bytes, as: UTF8.self) else { throw .invalidURL }
        return decoded
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
