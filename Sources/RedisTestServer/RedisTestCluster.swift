import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A real Redis Cluster on loopback for one test: `primaries` primaries with `replicas` replicas
/// each, every node a `RedisServer` started with `--cluster-enabled yes`, joined by
/// `redis-cli --cluster create`, and waited for until every node reports `cluster_state:ok`
/// and every replica has synchronized. Each node's port and its cluster bus port (port + 10000)
/// are both free when picked. Killed by PID, one node (`kill`) or all (`stop`).
///
/// `nodeTimeout` is the cluster's `cluster-node-timeout`: a primary killed is declared failed
/// after it, and its replica promoted shortly after that (with
/// `cluster-replica-validity-factor 0`, whatever its replication lag).
public final class RedisTestCluster {
    public static let cli = RedisCLI.path

    /// One node as the cluster describes it (`CLUSTER NODES`).
    public struct Node: Sendable, Hashable {
        public var id: String
        public var port: Int
        public var isPrimary: Bool
        /// A replica's primary; nil for a primary.
        public var primaryID: String?
        /// The node is flagged `fail` (or `fail?`) by the node asked.
        public var isFailing: Bool
        public var slotRanges: [ClosedRange<Int>]
    }

    public let servers: [RedisServer]
    public let nodeTimeoutMilliseconds: Int

    /// Every node's port, primaries first (the ports given to `--cluster create`).
    public var ports: [Int] { self.servers.map(\.port) }

    /// `redis-cluster://` with every node as a seed.
    public var url: String { "redis-cluster://" + self.ports.map { "127.0.0.1:\($0)" }.joined(separator: ",") }

    public init(primaries: Int = 3, replicas: Int = 1, nodeTimeoutMilliseconds: Int = 1000) throws {
        guard FileManager.default.isExecutableFile(atPath: Self.cli) else {
            throw RedisServer.Failure(description: "\(Self.cli) is missing: the Redis Cluster tests need redis-cli; run scripts/install-deps.sh")
        }
        self.nodeTimeoutMilliseconds = nodeTimeoutMilliseconds
        var servers: [RedisServer] = []
        var taken = Set<Int>()
        do {
            for _ in 0..<(primaries * (1 + replicas)) {
                let port = try Self.freeClusterPort(avoiding: taken)
                taken.formUnion([port, port + 10_000])
                servers.append(try RedisServer(port: port, arguments: [
                    "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                    "--cluster-node-timeout", "\(nodeTimeoutMilliseconds)",
                    "--cluster-replica-validity-factor", "0",
                    "--cluster-require-full-coverage", "no",
                ]))
            }
            self.servers = servers
            let (status, output) = try RedisCLI.run(["--cluster", "create"] + servers.map { "127.0.0.1:\($0.port)" } + ["--cluster-replicas", "\(replicas)", "--cluster-yes"])
            guard status == 0 else {
                throw RedisServer.Failure(description: "redis-cli --cluster create failed (\(status)): \(output.suffix(800))")
            }
            try self.waitUntilHealthy(expectedNodes: servers.count)
        } catch {
            for server in servers { server.stop() }
            throw error
        }
    }

    deinit {
        self.stop()
    }

    /// Kills every node by PID and removes their directories.
    public func stop() {
        for server in self.servers { server.stop() }
    }

    /// The server listening on `port`.
    public func server(_ port: Int) -> RedisServer? {
        self.servers.first { $0.port == port }
    }

    /// SIGKILL to the node on `port`, like a crash; waits for its exit.
    public func kill(_ port: Int) {
        self.server(port)?.kill()
    }

    /// One command through redis-cli to the node on `port` (no `-c`: redirects come back as
    /// they are); its output, trimmed.
    @discardableResult
    public func cli(_ port: Int, _ arguments: [String]) throws -> String {
        let (status, output) = try RedisCLI.run(["-p", "\(port)"] + arguments)
        guard status == 0 else {
            throw RedisServer.Failure(description: "redis-cli -p \(port) \(arguments.joined(separator: " ")) failed (\(status)): \(output.prefix(400))")
        }
        return output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The cluster's nodes as a live node sees them (`CLUSTER NODES`), asked of `port` or of
    /// the first node that answers.
    public func nodes(askingPort port: Int? = nil) throws -> [Node] {
        let ports = port.map { [$0] } ?? self.ports.filter { self.server($0)?.process?.isRunning == true }
        for port in ports {
            guard let text = try? self.cli(port, ["CLUSTER", "NODES"]), !text.isEmpty, !text.hasPrefix("ERR") else { continue }
            return text.split(separator: "\n").compactMap(Self.node)
        }
        throw RedisServer.Failure(description: "no cluster node answered CLUSTER NODES")
    }

    /// The slot of `key`, as Redis computes it.
    public func slot(of key: String) throws -> Int {
        guard let slot = Int(try self.cli(self.livePorts[0], ["CLUSTER", "KEYSLOT", key])) else {
            throw RedisServer.Failure(description: "CLUSTER KEYSLOT gave no number")
        }
        return slot
    }

    /// The primary serving `slot` now.
    public func primary(forSlot slot: Int) throws -> Node {
        guard let node = try self.nodes().first(where: { $0.isPrimary && !$0.isFailing && $0.slotRanges.contains { $0.contains(slot) } }) else {
            throw RedisServer.Failure(description: "no primary serves slot \(slot)")
        }
        return node
    }

    public func primary(forKey key: String) throws -> Node {
        try self.primary(forSlot: try self.slot(of: key))
    }

    /// The primary among `primaries` (as `primaries()` gave them) whose slots hold `slot`:
    /// without asking the cluster again, for tests that place many keys.
    public static func primary(forSlot slot: Int, among primaries: [Node]) -> Node? {
        primaries.first { $0.slotRanges.contains { $0.contains(slot) } }
    }

    /// Primaries serving slots, by port.
    public func primaries() throws -> [Node] {
        try self.nodes().filter { $0.isPrimary && !$0.isFailing && !$0.slotRanges.isEmpty }.sorted { $0.port < $1.port }
    }

    /// Ports of the nodes still running.
    public var livePorts: [Int] {
        self.servers.filter { $0.process?.isRunning == true }.map(\.port)
    }

    /// Kills the primary on `port` and waits (bounded) until one of its replicas serves its
    /// slots and every live node reports `cluster_state:ok`. Returns the new primary.
    @discardableResult
    public func failOver(primaryPort port: Int, within seconds: Double = 20) throws -> Node {
        let before = try self.nodes()
        guard let old = before.first(where: { $0.port == port && $0.isPrimary }) else {
            throw RedisServer.Failure(description: "no primary on port \(port)")
        }
        self.kill(port)
        return try self.waitForPromotion(of: old, within: seconds)
    }

    /// Waits until a former replica of `old` is a primary serving slots, seen so by every live node.
    public func waitForPromotion(of old: Node, within seconds: Double = 20) throws -> Node {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            var promoted: Node?
            var agreed = true
            for port in self.livePorts {
                guard let nodes = try? self.nodes(askingPort: port),
                      let replacement = nodes.first(where: { $0.isPrimary && !$0.isFailing && $0.port != old.port && $0.slotRanges == old.slotRanges }),
                      (try? self.cli(port, ["CLUSTER", "INFO"]))?.contains("cluster_state:ok") == true
                else {
                    agreed = false
                    break
                }
                if promoted == nil { promoted = replacement } else if promoted != replacement { agreed = false }
            }
            if agreed, let promoted { return promoted }
            usleep(50_000)
        }
        throw RedisServer.Failure(description: "no replica of the primary on port \(old.port) took over within \(seconds) s")
    }

    /// Waits (bounded) until every replica of the primary on `port` has acknowledged all it
    /// wrote, so a test that kills it next loses nothing it has written.
    public func waitUntilReplicated(primaryPort port: Int, within seconds: Double = 10) throws {
        try waitUntil(within: seconds, failure: "the replicas of the primary on port \(port) did not catch up within \(seconds) s") {
            let info = try self.cli(port, ["INFO", "replication"])
            let lines = info.split(whereSeparator: \.isNewline)
            let offset = lines.first { $0.hasPrefix("master_repl_offset:") }.map { $0.dropFirst("master_repl_offset:".count) }
            let replicas = lines.filter { $0.hasPrefix("slave") && $0.contains("state=online") }
            guard let offset, !replicas.isEmpty else { return false }
            return replicas.allSatisfy { $0.contains(",offset=\(offset),") }
        }
    }

    /// Moves `slot` to the primary `target` the way `redis-cli --cluster reshard` does, one step
    /// at a time so a test can look in between: `beginMigration`, `migrate` each key, then
    /// `finishMigration`.
    public func beginMigration(slot: Int, from source: Node, to target: Node) throws {
        try self.expectOK(self.cli(target.port, ["CLUSTER", "SETSLOT", "\(slot)", "IMPORTING", source.id]))
        try self.expectOK(self.cli(source.port, ["CLUSTER", "SETSLOT", "\(slot)", "MIGRATING", target.id]))
    }

    /// `MIGRATE` one key of a slot being migrated from `source` to `target`.
    public func migrate(key: String, from source: Node, to target: Node) throws {
        try self.expectOK(self.cli(source.port, ["MIGRATE", "127.0.0.1", "\(target.port)", key, "0", "5000"]))
    }

    /// Assigns `slot` to `target` on every primary (the migration done): the source answers
    /// `MOVED` from now on.
    public func finishMigration(slot: Int, to target: Node) throws {
        for primary in try self.primaries() {
            try self.expectOK(self.cli(primary.port, ["CLUSTER", "SETSLOT", "\(slot)", "NODE", target.id]))
        }
    }

    private func expectOK(_ reply: String) throws {
        guard reply == "OK" else { throw RedisServer.Failure(description: "expected OK, got \(reply.prefix(200))") }
    }

    private func waitUntilHealthy(expectedNodes: Int) throws {
        try waitUntil(within: 30, every: 50_000, failure: "the cluster did not become healthy within 30 s") {
            try self.isHealthy(expectedNodes: expectedNodes)
        }
    }

    /// Every node: `cluster_state:ok`, knows every other node; every replica synchronized.
    private func isHealthy(expectedNodes: Int) throws -> Bool {
        for port in self.ports {
            let info = try self.cli(port, ["CLUSTER", "INFO"])
            guard info.contains("cluster_state:ok"), info.contains("cluster_known_nodes:\(expectedNodes)") else { return false }
        }
        for node in try self.nodes() where !node.isPrimary {
            let replication = try self.cli(node.port, ["INFO", "replication"])
            guard replication.contains("master_link_status:up") else { return false }
        }
        return true
    }

    /// `<id> <ip:port@bus> <flags> <primary> <ping> <pong> <epoch> <link> <slot>…`
    private static func node(_ line: Substring) -> Node? {
        let fields = line.split(separator: " ")
        guard fields.count >= 8,
              let address = fields[1].split(separator: "@").first,
              let colon = address.lastIndex(of: ":"),
              let port = Int(address[address.index(after: colon)...])
        else { return nil }
        let flags = fields[2].split(separator: ",")
        var ranges: [ClosedRange<Int>] = []
        for field in fields.dropFirst(8) where !field.hasPrefix("[") {
            let bounds = field.split(separator: "-").compactMap { Int($0) }
            if bounds.count == 1 { ranges.append(bounds[0]...bounds[0]) } else if bounds.count == 2 { ranges.append(bounds[0]...bounds[1]) }
        }
        return Node(
            id: String(fields[0]), port: port, isPrimary: flags.contains("master"),
            primaryID: fields[3] == "-" ? nil : String(fields[3]),
            isFailing: flags.contains("fail") || flags.contains("fail?"), slotRanges: ranges
        )
    }

    /// A free loopback port whose cluster bus port (+10000) is free too, and neither in `taken`.
    private static func freeClusterPort(avoiding taken: Set<Int>) throws -> Int {
        for _ in 0..<200 {
            let port = try freeLoopbackPort()
            let bus = port + 10_000
            if bus <= 65_535, !taken.contains(port), !taken.contains(bus), Self.isFree(bus) { return port }
        }
        throw RedisServer.Failure(description: "no free port pair (port, port + 10000) found")
    }

    private static func isFree(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}
