import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A real `redis-server` on a loopback port, started for one test and killed by PID. Shared by
/// every test target that needs Redis, so the tests run against the same thing CI installs.
///
/// No persistence (`--save ""`, `--appendonly no`), so a restart on the same port comes back
/// empty, like a Redis that lost its memory. The binary comes from `scripts/install-deps.sh`;
/// without it the tests fail — a skipped Redis suite would hide every regression in CI.
public final class RedisServer {
    public static let binary = "/usr/bin/redis-server"

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public let port: Int
    public let extraArguments: [String]
    public private(set) var process: Process?
    private let directory: URL

    /// Starts a server and waits (bounded) until it answers PING.
    public init(port: Int? = nil, arguments: [String] = []) throws {
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
            throw Failure(description: "\(Self.binary) is missing: the Redis client tests need a real redis-server; run scripts/install-deps.sh")
        }
        self.port = try port ?? freeLoopbackPort()
        self.extraArguments = arguments
        self.directory = FileManager.default.temporaryDirectory.appendingPathComponent("erp-redis-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: self.directory, withIntermediateDirectories: true)
        try self.start()
    }

    public var pid: Int32 { self.process?.processIdentifier ?? 0 }
    private var logFile: URL { self.directory.appendingPathComponent("redis.log") }
    public var log: String { (try? String(contentsOf: self.logFile, encoding: .utf8)) ?? "" }

    /// Starts (or restarts, after `kill()`) the server on the same port.
    public func start() throws {
        precondition(self.process?.isRunning != true, "already running")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.currentDirectoryURL = self.directory
        process.arguments = ["--port", "\(self.port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--logfile", self.logFile.path] + self.extraArguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
        try self.waitUntilAnswering(process)
    }

    /// SIGKILL: no goodbye on the connections, exactly like a crash. Waits for the exit.
    public func kill() {
        guard let process = self.process, process.isRunning else { return }
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    public func signal(_ number: Int32) {
        guard let process = self.process, process.isRunning else { return }
        Glibc.kill(process.processIdentifier, number)
    }

    public func stop() {
        self.signal(SIGCONT)
        self.kill()
        try? FileManager.default.removeItem(at: self.directory)
    }

    deinit {
        self.stop()
    }

    /// PING over a plain blocking socket until a RESP reply comes back (`-NOAUTH` counts: the
    /// server is up), for at most 10 s.
    private func waitUntilAnswering(_ process: Process) throws {
        try waitUntil(within: 10, failure: "redis-server on port \(self.port) did not answer PING within 10 s: \(self.log.suffix(600))") {
            guard process.isRunning else {
                throw Failure(description: "redis-server exited with status \(process.terminationStatus) on port \(self.port): \(self.log.suffix(600))")
            }
            guard let reply = rawExchange(port: self.port, send: "PING\r\n") else { return false }
            return reply.hasPrefix("+PONG") || reply.hasPrefix("-NOAUTH")
        }
    }
}

/// A port nothing listens on right now (the kernel picks it; the socket is closed at once).
public func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = loopbackAddress(port: 0)
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Int32 in
            guard bind(fd, pointer, length) == 0 else { return -1 }
            return getsockname(fd, pointer, &length)
        }
    }
    guard bound == 0 else { throw RedisServer.Failure(description: "no free port: errno \(errno)") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// One request and the first bytes of the answer over a blocking socket, 200 ms at most per
/// step; nil when nothing listens or nothing answers. Independent of the client under test.
public func rawExchange(port: Int, send request: String) -> String? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var address = loopbackAddress(port: port)
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { return nil }
    let bytes = Array(request.utf8)
    guard Glibc.send(fd, bytes, bytes.count, Int32(MSG_NOSIGNAL)) == bytes.count else { return nil }
    var buffer = [UInt8](repeating: 0, count: 256)
    let count = recv(fd, &buffer, buffer.count, 0)
    guard count > 0 else { return nil }
    return String(decoding: buffer[..<count], as: UTF8.self)
}

private func loopbackAddress(port: Int) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    return address
}
