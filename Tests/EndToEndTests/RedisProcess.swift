import Foundation
import RedisTestServer

/// The tests' Redis, as the gateway sees it: a real `redis-server` on a free loopback port
/// (see `RedisServer`), its URL for the settings, and redis-cli for looking inside.
final class RedisProcess {
    let server: RedisServer

    var port: Int { self.server.port }
    var url: String { "redis://127.0.0.1:\(self.port)/0" }

    /// Starts a server on `port` (a fresh free port when nil; reuse one to "restart" Redis).
    init(port: Int? = nil) throws {
        self.server = try RedisServer(port: port)
    }

    /// The gateway's `redis` settings section for this server (key prefix `erp-test`).
    var settings: String { "redis:\n  url: \(self.url)\n  keyPrefix: erp-test\n" }

    /// Runs one command through redis-cli and returns its output.
    func cli(_ arguments: [String]) throws -> String {
        try runCommand(URL(fileURLWithPath: "/usr/bin/redis-cli"), ["-p", "\(self.port)"] + arguments).1
    }

    /// Script runs so far (`EVAL` and `EVALSHA`: quota admissions and releases), from Redis's
    /// own command statistics.
    func scriptRuns() throws -> Int {
        let stats = try self.cli(["INFO", "commandstats"])
        var total = 0
        // INFO ends lines with CRLF, one Character in Swift: split on any newline.
        for line in stats.split(whereSeparator: \.isNewline) where line.hasPrefix("cmdstat_evalsha:") || line.hasPrefix("cmdstat_eval:") {
            let calls = line.split(separator: ",").first?.split(separator: "=").last.flatMap { Int($0) } ?? 0
            total += calls
        }
        return total
    }

    /// Stops the server at once (SIGKILL): a test's Redis holds nothing worth a graceful
    /// shutdown, and children spawned from test threads may have SIGTERM blocked.
    func stop() {
        self.server.stop()
    }
}
