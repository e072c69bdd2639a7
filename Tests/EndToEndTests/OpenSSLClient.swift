import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// `openssl s_client` against the gateway's TLS listener: one-shot handshakes (which
/// certificate, which version, whether a session resumed) and a long-lived connection the
/// test writes requests into and reads answers from, as a browser keeps one open. What it
/// printed is guarded by a lock (the pipe is read on a thread of its own).
final class OpenSSLClient: @unchecked Sendable {
    static let openssl = URL(fileURLWithPath: "/usr/bin/openssl")

    /// Runs `s_client` to completion with `input` on its standard input (then end of input),
    /// and returns everything it printed. `-ign_eof` keeps it reading until the server closes.
    static func run(port: Int, serverName: String?, arguments: [String] = [], input: String = "") throws -> String {
        let process = Process()
        process.executableURL = Self.openssl
        process.arguments = Self.arguments(port: port, serverName: serverName) + arguments
        let stdin = Pipe(), output = Pipe()
        process.standardInput = stdin
        process.standardOutput = output
        process.standardError = output
        try process.run()
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    static func arguments(port: Int, serverName: String?) -> [String] {
        ["s_client", "-connect", "127.0.0.1:\(port)"] + (serverName.map { ["-servername", $0] } ?? ["-noservername"])
    }

    /// The server certificate's PEM block as `s_client` prints it.
    static func servedCertificate(_ output: String) -> String? {
        guard let start = output.range(of: "-----BEGIN CERTIFICATE-----"),
            let end = output.range(of: "-----END CERTIFICATE-----", range: start.upperBound..<output.endIndex)
        else { return nil }
        return String(output[start.lowerBound..<end.upperBound])
    }

    // MARK: - A connection kept open

    private let process = Process()
    private let stdin = Pipe()
    private let output = Pipe()
    private let lock = NSLock()
    private var printed = Data()

    /// Connects and handshakes; `arguments` are added to `s_client`'s (`-msg` prints alerts).
    init(port: Int, serverName: String?, arguments: [String] = []) throws {
        self.process.executableURL = Self.openssl
        self.process.arguments = Self.arguments(port: port, serverName: serverName) + ["-ign_eof"] + arguments
        self.process.standardInput = self.stdin
        self.process.standardOutput = self.output
        self.process.standardError = self.output
        self.output.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self else { return }
            self.lock.lock()
            self.printed.append(data)
            self.lock.unlock()
        }
        try self.process.run()
    }

    deinit {
        if self.process.isRunning {
            kill(self.process.processIdentifier, SIGKILL)
            self.process.waitUntilExit()
        }
        self.output.fileHandleForReading.readabilityHandler = nil
    }

    var text: String {
        self.lock.lock()
        defer { self.lock.unlock() }
        return String(decoding: self.printed, as: UTF8.self)
    }

    var isRunning: Bool { self.process.isRunning }

    func send(_ text: String) {
        self.stdin.fileHandleForWriting.write(Data(text.utf8))
    }

    /// Waits until the output holds `text` `count` times; false on timeout.
    func waitFor(_ text: String, count: Int = 1, timeout: Double = 10) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if self.text.components(separatedBy: text).count - 1 >= count { return true }
            usleep(20_000)
        }
        return false
    }

    /// Waits until `s_client` exits (the server closed the connection); false on timeout.
    func waitForExit(timeout: Double = 10) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while self.process.isRunning, Date() < deadline { usleep(20_000) }
        return !self.process.isRunning
    }
}

/// `curl` over HTTPS to the gateway, trusting `caFile` and resolving `host` to loopback, so
/// the name is checked against the certificate as a browser checks it.
/// `http2`: nil lets curl choose (HTTP/2 through ALPN when the server offers it), true insists on
/// it, false speaks HTTP/1.1.
func curlHTTPS(
    port: Int, host: String, path: String, caFile: String, headers: [(String, String)] = [], http2: Bool? = nil
) throws -> (status: Int32, output: String) {
    var arguments = ["-sS", "--cacert", caFile, "--resolve", "\(host):\(port):127.0.0.1", "-D", "-"]
    if let http2 { arguments.append(http2 ? "--http2" : "--http1.1") }
    for (name, value) in headers { arguments += ["-H", "\(name): \(value)"] }
    arguments.append("https://\(host):\(port)\(path)")
    return try runCommand(URL(fileURLWithPath: "/usr/bin/curl"), arguments)
}
