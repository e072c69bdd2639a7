import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// A real `redis-server` on a free loopback port, started by the test and stopped by PID.
/// The package's scripts/install-deps.sh installs it; a missing binary fails the test loudly.
final class RedisProcess {
    let port: Int
    let process: Process
    var url: String { "redis://127.0.0.1:\(self.port)/0" }

    /// Starts a server on `port` (a fresh free port when nil; reuse one to "restart" Redis).
    init(port: Int? = nil) throws {
        self.port = try port ?? freePort()
        let binary = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let binary else {
            throw RawHTTPConnection.Failure.malformed("redis-server is not installed: run scripts/install-deps.sh")
        }
        self.process = Process()
        self.process.executableURL = URL(fileURLWithPath: binary)
        self.process.arguments = ["--port", "\(self.port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"]
        self.process.standardOutput = FileHandle.nullDevice
        self.process.standardError = FileHandle.nullDevice
        try self.process.run()
        try waitUntilAccepting(port: self.port, process: self.process)
    }

    /// Runs one command through redis-cli and returns its output.
    func cli(_ arguments: [String]) throws -> String {
        try runCommand(URL(fileURLWithPath: "/usr/bin/redis-cli"), ["-p", "\(self.port)"] + arguments).1
    }

    /// Stops the server at once: a test's Redis holds nothing worth a graceful shutdown.
    func stop() {
        guard self.process.isRunning else { return }
        kill(self.process.processIdentifier, SIGKILL)
        let deadline = Date().addingTimeInterval(10)
        while self.process.isRunning, Date() < deadline { usleep(10_000) }
    }

    deinit { self.stop() }
}
