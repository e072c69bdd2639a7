import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

// A copy of the RedisClientTests helper, trimmed: test targets cannot import one another, and
// a shared testing module is not this module's to add.

/// A real `redis-server` on a free loopback port, started for one test and killed by PID
/// (SIGKILL: SIGTERM may be blocked in children spawned from test threads). No persistence.
/// Without the binary the tests fail: a skipped suite would hide every regression.
final class RedisServer {
    static let binary = "/usr/bin/redis-server"

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    let port: Int
    private let process: Process
    private let directory: URL

    /// Starts a server and waits (bounded, 10 s) until it answers PING.
    init() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
            throw Failure(description: "\(Self.binary) is missing: the quota tests need a real redis-server; run scripts/install-deps.sh")
        }
        self.port = try freeLoopbackPort()
        self.directory = FileManager.default.temporaryDirectory.appendingPathComponent("erp-quota-redis-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: self.directory, withIntermediateDirectories: true)
        self.process = Process()
        self.process.executableURL = URL(fileURLWithPath: Self.binary)
        self.process.currentDirectoryURL = self.directory
        self.process.arguments = ["--port", "\(self.port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process.standardOutput = FileHandle.nullDevice
        self.process.standardError = FileHandle.nullDevice
        try self.process.run()
        let deadline = Date().addingTimeInterval(10)
        while rawExchange(port: self.port, send: "PING\r\n")?.hasPrefix("+PONG") != true {
            guard self.process.isRunning, Date() < deadline else {
                self.stop()
                throw Failure(description: "redis-server on port \(self.port) did not answer PING within 10 s")
            }
            usleep(20_000)
        }
    }

    func stop() {
        if self.process.isRunning {
            Glibc.kill(self.process.processIdentifier, SIGKILL)
            self.process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: self.directory)
    }

    deinit { self.stop() }
}

/// A port nothing listens on right now (the kernel picks it; the socket is closed at once).
func freeLoopbackPort() throws -> Int {
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
func rawExchange(port: Int, send request: String) -> String? {
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
