import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The real `erp-gateway` binary, started on a settings file written for the test and stopped
/// by signal, the way an operator runs it.
final class GatewayProcess {
    let port: Int
    let process: Process
    let directory: URL
    let configPath: String
    private let logFile: URL

    /// The built binaries sit next to the test bundle (`.build/<triple>/<config>/`).
    static var buildDirectory: URL {
        if let override = ProcessInfo.processInfo.environment["ERP_GATEWAY_BUILD_DIR"] {
            return URL(fileURLWithPath: override)
        }
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        while url.pathComponents.count > 1, !FileManager.default.fileExists(atPath: url.appendingPathComponent("erp-gateway").path) {
            url.deleteLastPathComponent()
        }
        return url
    }

    static var binary: URL { self.buildDirectory.appendingPathComponent("erp-gateway") }

    /// Writes `settings` (YAML with `PORT` standing for the listener port) and starts the gateway,
    /// with `environment` added to the test's own.
    init(
        settings: String, files: [String: String] = [:], arguments: [String] = [], environment: [String: String] = [:],
        file: StaticString = #filePath, line: UInt = #line
    ) throws {
        self.port = try freePort()
        self.directory = FileManager.default.temporaryDirectory.appendingPathComponent("erp-gateway-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: self.directory, withIntermediateDirectories: true)
        let config = self.directory.appendingPathComponent("gateway.yaml")
        try settings.replacingOccurrences(of: "PORT", with: "\(self.port)").write(to: config, atomically: true, encoding: .utf8)
        for (name, contents) in files {
            let url = self.directory.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try contents.write(to: url, atomically: true, encoding: .utf8)
        }
        self.configPath = config.path
        self.logFile = self.directory.appendingPathComponent("gateway.log")
        FileManager.default.createFile(atPath: self.logFile.path, contents: nil)
        let log = try FileHandle(forWritingTo: self.logFile)

        self.process = Process()
        self.process.executableURL = Self.binary
        self.process.arguments = ["serve", "--config", config.path] + arguments
        if !environment.isEmpty {
            self.process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, added in added }
        }
        self.process.standardOutput = log
        self.process.standardError = log
        try self.process.run()
        try waitUntilAccepting(port: self.port, process: self.process)
    }

    var log: String { (try? String(contentsOf: self.logFile, encoding: .utf8)) ?? "" }

    /// Replaces a file next to the settings the way deployment tools do: write aside, rename over.
    func replaceFile(_ name: String, with contents: String) throws {
        try contents.write(to: self.directory.appendingPathComponent(name), atomically: true, encoding: .utf8)
    }

    /// Waits until the log contains `text`; false on timeout.
    func waitForLog(_ text: String, timeout: Double = 10) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if self.log.contains(text) { return true }
            usleep(20_000)
        }
        return false
    }

    /// Peak resident memory of the gateway process so far, in bytes (VmHWM).
    var peakResidentBytes: Int { self.memoryStatus("VmHWM:") }

    /// Resident memory of the gateway process now, in bytes (VmRSS).
    var residentBytes: Int { self.memoryStatus("VmRSS:") }

    private func memoryStatus(_ field: String) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(self.process.processIdentifier)/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix(field) {
            let kilobytes = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
            return kilobytes * 1024
        }
        return 0
    }

    func signal(_ number: Int32) {
        kill(self.process.processIdentifier, number)
    }

    /// Sends SIGTERM and waits for the exit; returns the exit status.
    @discardableResult
    func stop(timeout: Double = 30) -> Int32 {
        if self.process.isRunning { self.signal(SIGTERM) }
        let deadline = Date().addingTimeInterval(timeout)
        while self.process.isRunning, Date() < deadline { usleep(20_000) }
        if self.process.isRunning {
            self.signal(SIGKILL)
            self.process.waitUntilExit()
        }
        return self.process.terminationStatus
    }

    deinit {
        if self.process.isRunning {
            kill(self.process.processIdentifier, SIGKILL)
            self.process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: self.directory)
    }
}

/// A port nothing listens on right now (the kernel picks it; the socket is closed at once).
func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Int32 in
            guard bind(fd, pointer, length) == 0 else { return -1 }
            return getsockname(fd, pointer, &length)
        }
    }
    guard bound == 0 else { throw RawHTTPConnection.Failure.connect(errno) }
    return Int(UInt16(bigEndian: address.sin_port))
}

func waitUntilAccepting(port: Int, process: Process? = nil, timeout: Double = 20) throws {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if let process, !process.isRunning {
            throw RawHTTPConnection.Failure.malformed("the gateway exited with status \(process.terminationStatus) before listening")
        }
        if (try? RawHTTPConnection(port: port)) != nil { return }
        usleep(20_000)
    }
    throw RawHTTPConnection.Failure.timeout
}

/// Settings for a test gateway in front of the given upstream ports. `overrides` replaces single
/// keys per section, e.g. `["timeouts": ["headerRead": "300ms"]]`.
func gatewaySettings(
    endpoints: [Int], _ overrides: [String: [String: String]] = [:], tenantTree: String? = nil, cells: String? = nil, extra: String = ""
) -> String {
    let defaults: [(section: String, values: [(String, String)])] = [
        ("listener", [("address", "127.0.0.1"), ("port", "PORT"), ("eventLoops", "2")]),
        ("limits", [("maxHeaderBytes", "8KiB"), ("maxURIBytes", "2KiB"), ("maxRequestBodyBytes", "2GiB")]),
        ("timeouts", [
            ("headerRead", "2s"), ("keepAliveIdle", "10s"), ("upstreamConnect", "1s"), ("upstreamResponse", "5s"),
            ("shutdownGrace", "10s"),
        ]),
        ("upstreamPool", [("maxConnectionsPerEndpoint", "8"), ("idleTimeout", "30s")]),
        ("forwarding", [("trustClientForwardedHeaders", "false")]),
    ]
    var text = ""
    for (section, values) in defaults {
        text += "\(section):\n"
        var merged = values
        for (key, value) in overrides[section] ?? [:] {
            if let index = merged.firstIndex(where: { $0.0 == key }) { merged[index].1 = value } else { merged.append((key, value)) }
        }
        for (key, value) in merged { text += "  \(key): \(value)\n" }
    }
    // `cells` replaces the one-cell default (its text includes `defaultCell`).
    text += cells ?? """
        cells:
          - id: test-cell
            kind: pooled
            region: test
            endpoints: [\(endpoints.map { "127.0.0.1:\($0)" }.joined(separator: ", "))]
        defaultCell: test-cell

        """
    if let tenantTree { text += "tenantTree: \(tenantTree)\n" + TestIdentity.upstreamContextSettings }
    return text + extra
}

/// A new temporary directory holding settings (`gateway.yaml`) that name `tenants.yaml` next to
/// them, for `check` and `explain`, which open no listener. The caller writes the tree and
/// removes the directory.
func treeFileDirectory() throws -> (directory: URL, settings: URL) {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("erp-gateway-tree-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let settings = directory.appendingPathComponent("gateway.yaml")
    try gatewaySettings(endpoints: [9], tenantTree: "tenants.yaml").replacingOccurrences(of: "PORT", with: "1")
        .write(to: settings, atomically: true, encoding: .utf8)
    return (directory, settings)
}

/// A `demo-backend` process on loopback: an upstream the test can kill like a crashed server and
/// start again on the same port.
final class BackendProcess {
    let name: String
    let port: Int
    private var process: Process?

    init(name: String, port: Int? = nil) throws {
        self.name = name
        self.port = try port ?? freePort()
        try self.start()
    }

    func start() throws {
        let process = Process()
        process.executableURL = GatewayProcess.buildDirectory.appendingPathComponent("demo-backend")
        process.arguments = ["--name", self.name, "--port", "\(self.port)"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
        try waitUntilAccepting(port: self.port, process: process)
    }

    /// SIGKILL: the process dies with its connections, as in a crash.
    func kill() {
        guard let process = self.process, process.isRunning else { return }
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        self.process = nil
    }

    deinit { self.kill() }
}
