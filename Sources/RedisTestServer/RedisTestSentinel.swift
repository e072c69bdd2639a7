import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A real Redis Sentinel setup on loopback for one test: a primary, a replica and three
/// Sentinels (`redis-server <conf> --sentinel`), all on free ports, each killed by PID.
///
/// Quorum 2 and short timings (`down-after-milliseconds` 500, `failover-timeout` 3000), so a
/// killed primary is replaced in about 1–3 s. `init` returns once every Sentinel monitors the
/// primary, knows the replica and the two other Sentinels — before that a failover could not
/// happen. No persistence, like `RedisServer`.
public final class RedisTestSentinel {
    public static let masterName = "erp-test-primary"

    /// The servers: `servers[0]` starts as the primary, `servers[1]` as its replica.
    public let servers: [RedisServer]
    public let sentinelPorts: [Int]
    private var sentinels: [Process] = []
    private let directory: URL

    public typealias Failure = RedisServer.Failure

    /// Starts everything and waits (bounded) until the Sentinels agree.
    public init(downAfterMilliseconds: Int = 500, failoverTimeoutMilliseconds: Int = 3_000) throws {
        self.directory = FileManager.default.temporaryDirectory.appendingPathComponent("erp-sentinel-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: self.directory, withIntermediateDirectories: true)
        // Full syncs start at once (diskless replication waits 5 s by default for more replicas).
        let sync = ["--repl-diskless-sync-delay", "0"]
        let primary = try RedisServer(arguments: sync)
        let replica = try RedisServer(arguments: sync + ["--replicaof", "127.0.0.1", "\(primary.port)"])
        self.servers = [primary, replica]
        self.sentinelPorts = try (0..<3).map { _ in try freeLoopbackPort() }
        // The replica is in sync before the Sentinels first ask the primary (INFO lists it then,
        // instead of at the next 10 s refresh).
        try Self.waitFor("the replica to sync", within: 10) {
            Self.info(port: replica.port, section: "replication").contains("master_link_status:up")
        }
        for (index, port) in self.sentinelPorts.enumerated() {
            try self.startSentinel(index: index, port: port, primaryPort: primary.port, downAfter: downAfterMilliseconds, failoverTimeout: failoverTimeoutMilliseconds)
        }
        try Self.waitFor("the sentinels to agree", within: 15) {
            self.sentinelPorts.allSatisfy { port in
                let master = Self.command(port: port, ["SENTINEL", "MASTER", Self.masterName])
                return Self.field("num-other-sentinels", in: master) == "2" && Self.field("num-slaves", in: master) == "1"
                    && Self.field("flags", in: master) == "master"
            }
        }
    }

    deinit {
        self.stop()
    }

    /// `redis-sentinel://127.0.0.1:a,127.0.0.1:b,127.0.0.1:c/<masterName>`, Sentinels in order.
    public var url: String {
        "redis-sentinel://" + self.sentinelPorts.map { "127.0.0.1:\($0)" }.joined(separator: ",") + "/\(Self.masterName)"
    }

    /// The primary the first Sentinel that answers names; nil when none does.
    public var primaryPort: Int? {
        for port in self.sentinelPorts {
            if let primary = self.primaryPort(askingSentinelAt: port) { return primary }
        }
        return nil
    }

    public func primaryPort(askingSentinelAt port: Int) -> Int? {
        let reply = Self.command(port: port, ["SENTINEL", "GET-MASTER-ADDR-BY-NAME", Self.masterName])
        guard reply.count == 2 else { return nil }
        return Int(reply[1])
    }

    /// The server now named primary.
    public var primary: RedisServer? {
        guard let port = self.primaryPort else { return nil }
        return self.servers.first { $0.port == port }
    }

    /// Kills the current primary (SIGKILL, a crash) and waits until every Sentinel still
    /// running names the replica instead and the replica says it is a primary. Returns the new
    /// primary and the seconds from the kill until then.
    @discardableResult
    public func killPrimaryAndAwaitFailover(within seconds: Double = 20) throws -> (primary: RedisServer, seconds: Double) {
        guard let old = self.primary else { throw Failure(description: "no primary to kill") }
        let started = Date()
        old.kill()
        let new = try self.awaitPrimary(other: old, within: seconds)
        return (new, Date().timeIntervalSince(started))
    }

    /// `SENTINEL FAILOVER`: a planned switch; the old primary stays up. Waits until the
    /// Sentinels name the other server and it says `master`. The Sentinels turn the old primary
    /// into a replica only at their next look at it (their 10 s `INFO` period), so right after
    /// this returns it may still say `master`: `awaitReplica` waits for that.
    @discardableResult
    public func failOver(within seconds: Double = 20) throws -> (old: RedisServer, new: RedisServer) {
        guard let old = self.primary else { throw Failure(description: "no primary") }
        let runningSentinel = try self.runningSentinelPort()
        let reply = Self.command(port: runningSentinel, ["SENTINEL", "FAILOVER", Self.masterName])
        guard reply == ["OK"] else { throw Failure(description: "SENTINEL FAILOVER answered \(reply)") }
        return (old, try self.awaitPrimary(other: old, within: seconds))
    }

    /// Waits until `server` says it is a replica.
    public func awaitReplica(_ server: RedisServer, within seconds: Double = 20) throws {
        try Self.waitFor("\(server.port) to become a replica", within: seconds) {
            Self.command(port: server.port, ["ROLE"]).first == "slave"
        }
    }

    /// Kills Sentinel `index` (SIGKILL).
    public func killSentinel(_ index: Int) {
        let process = self.sentinels[index]
        guard process.isRunning else { return }
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// Kills every process started here, by PID, and removes the files.
    public func stop() {
        for index in self.sentinels.indices { self.killSentinel(index) }
        for server in self.servers { server.stop() }
        try? FileManager.default.removeItem(at: self.directory)
    }

    /// The logs of the Sentinels, for a failing test's output.
    public var sentinelLogs: String {
        self.sentinelPorts.indices.map { index in
            let log = (try? String(contentsOf: self.logFile(index), encoding: .utf8)) ?? ""
            return "--- sentinel \(index) ---\n\(log.suffix(3_000))"
        }.joined(separator: "\n")
    }

    // MARK: - Private

    private func runningSentinelPort() throws -> Int {
        guard let index = self.sentinels.indices.first(where: { self.sentinels[$0].isRunning }) else { throw Failure(description: "no sentinel running") }
        return self.sentinelPorts[index]
    }

    private func awaitPrimary(other old: RedisServer, within seconds: Double) throws -> RedisServer {
        var new: RedisServer?
        try Self.waitFor("the sentinels to name a new primary", within: seconds) {
            let named = self.sentinels.indices.filter { self.sentinels[$0].isRunning }.map { self.primaryPort(askingSentinelAt: self.sentinelPorts[$0]) }
            guard let port = named.first ?? nil, port != old.port, named.allSatisfy({ $0 == port }),
                  let server = self.servers.first(where: { $0.port == port }),
                  Self.command(port: port, ["ROLE"]).first == "master"
            else { return false }
            new = server
            return true
        }
        return new!
    }

    private func logFile(_ index: Int) -> URL { self.directory.appendingPathComponent("sentinel-\(index).log") }

    private func startSentinel(index: Int, port: Int, primaryPort: Int, downAfter: Int, failoverTimeout: Int) throws {
        // A Sentinel rewrites its configuration file: one writable file each.
        let configuration = self.directory.appendingPathComponent("sentinel-\(index).conf")
        try """
            port \(port)
            bind 127.0.0.1
            daemonize no
            logfile \(self.logFile(index).path)
            dir \(self.directory.path)
            sentinel monitor \(Self.masterName) 127.0.0.1 \(primaryPort) 2
            sentinel down-after-milliseconds \(Self.masterName) \(downAfter)
            sentinel failover-timeout \(Self.masterName) \(failoverTimeout)
            sentinel parallel-syncs \(Self.masterName) 1

            """.write(to: configuration, atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: RedisServer.binary)
        process.currentDirectoryURL = self.directory
        process.arguments = [configuration.path, "--sentinel"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.sentinels.append(process)
        try Self.waitFor("sentinel \(index) to answer", within: 10) {
            guard process.isRunning else {
                throw Failure(description: "redis sentinel exited with status \(process.terminationStatus) on port \(port): \(self.sentinelLogs)")
            }
            return rawExchange(port: port, send: "PING\r\n")?.hasPrefix("+PONG") ?? false
        }
    }

    private static func waitFor(_ what: String, within seconds: Double, _ condition: () throws -> Bool) throws {
        try waitUntil(within: seconds, failure: "timed out after \(seconds) s waiting for \(what)", condition)
    }

    private static func info(port: Int, section: String) -> String {
        command(port: port, ["INFO", section]).joined(separator: "\n")
    }

    /// Runs one command through redis-cli (plain output: one line per element) — independent of
    /// the client under test. Empty when the server does not answer.
    public static func command(port: Int, _ arguments: [String]) -> [String] {
        guard let (status, output) = try? RedisCLI.run(["-h", "127.0.0.1", "-p", "\(port)"] + arguments), status == 0 else { return [] }
        return output.split(whereSeparator: \.isNewline).map(String.init)
    }

    /// The value after `name` in a flat `SENTINEL MASTER` reply.
    private static func field(_ name: String, in reply: [String]) -> String? {
        guard let index = reply.firstIndex(of: name), index + 1 < reply.count else { return nil }
        return reply[index + 1]
    }
}
