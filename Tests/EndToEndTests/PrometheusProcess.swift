import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// A real Prometheus server (Debian's `prometheus`) on a free loopback port, scraping one
/// target every second into a temporary TSDB; queried through its HTTP API and stopped by PID.
/// The package's own systemd service plays no part.
final class PrometheusProcess {
    static let binary = URL(fileURLWithPath: "/usr/bin/prometheus")
    let port: Int
    private let process: Process
    private let directory: URL

    /// Starts scraping `127.0.0.1:<target>/metrics`; returns once Prometheus answers `/-/ready`.
    init(scraping target: Int) throws {
        self.port = try freePort()
        self.directory = FileManager.default.temporaryDirectory.appendingPathComponent("erp-gateway-prometheus-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: self.directory, withIntermediateDirectories: true)
        let config = self.directory.appendingPathComponent("prometheus.yml")
        try """
            global:
              scrape_interval: 1s
              evaluation_interval: 1s
            scrape_configs:
              - job_name: erp-gateway
                static_configs:
                  - targets: ['127.0.0.1:\(target)']

            """.write(to: config, atomically: true, encoding: .utf8)
        self.process = Process()
        self.process.executableURL = Self.binary
        self.process.arguments = [
            "--config.file=\(config.path)", "--storage.tsdb.path=\(self.directory.appendingPathComponent("data").path)",
            "--web.listen-address=127.0.0.1:\(self.port)",
        ]
        let log = self.directory.appendingPathComponent("prometheus.log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        self.process.standardOutput = handle
        self.process.standardError = handle
        try self.process.run()
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if let response = try? request(port: self.port, "GET", "/-/ready"), response.status == 200 { return }
            guard self.process.isRunning else { break }
            usleep(100_000)
        }
        throw RawHTTPConnection.Failure.malformed("prometheus did not become ready:\n\(self.log)")
    }

    var log: String { (try? String(contentsOf: self.directory.appendingPathComponent("prometheus.log"), encoding: .utf8)) ?? "" }

    /// The value of an instant query whose answer is one sample (`sum(...)`, say); nil when it
    /// has none yet.
    func value(_ query: String) throws -> Double? {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        let encoded = query.addingPercentEncoding(withAllowedCharacters: allowed) ?? query
        let response = try request(port: self.port, "GET", "/api/v1/query?query=\(encoded)")
        let json = try response.json()
        guard let data = json["data"] as? [String: Any], let result = data["result"] as? [[String: Any]], let sample = result.first,
            let value = sample["value"] as? [Any], value.count == 2, let text = value[1] as? String
        else { return nil }
        return Double(text)
    }

    /// Polls `query` until it answers `expected`, for at most `seconds`; returns the last answer.
    func eventually(_ query: String, equals expected: Double, within seconds: Double = 20) throws -> Double? {
        let deadline = Date().addingTimeInterval(seconds)
        var last: Double?
        while Date() < deadline {
            last = try self.value(query)
            if last == expected { return last }
            usleep(250_000)
        }
        return last
    }

    func stop() {
        if self.process.isRunning {
            kill(self.process.processIdentifier, SIGTERM)
            let deadline = Date().addingTimeInterval(10)
            while self.process.isRunning, Date() < deadline { usleep(20_000) }
            if self.process.isRunning { kill(self.process.processIdentifier, SIGKILL) }
            self.process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: self.directory)
    }

    deinit { self.stop() }
}
