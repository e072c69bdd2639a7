import Foundation
import XCTest

/// The Prometheus rules and the Grafana dashboard in deploy/: valid for the real tools, over
/// documented series only, and every alert with its runbook.
final class DeployFilesTests: XCTestCase {
    static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    static func text(_ path: String) throws -> String {
        try String(contentsOf: self.packageRoot.appendingPathComponent(path), encoding: .utf8)
    }

    /// The series of docs/operations.md's "Metrics" table.
    static func documentedMetrics() throws -> Set<String> {
        let operations = try self.text("docs/operations.md")
        return Set(operations.split(separator: "\n").compactMap { line -> String? in
            guard line.hasPrefix("| `erp_gateway_") else { return nil }
            return line.dropFirst(3).split(separator: "`").first.map(String.init)
        })
    }

    /// `erp_gateway_…` names in `text`, histogram suffixes taken off.
    static func metricNames(in text: String) -> Set<String> {
        let regex = try! NSRegularExpression(pattern: "erp_gateway_[a-z_]+")
        let names = regex.matches(in: text, range: NSRange(text.startIndex..., in: text)).map { String(text[Range($0.range, in: text)!]) }
        return Set(names.map { name in
            for suffix in ["_bucket", "_count", "_sum"] where name.hasSuffix(suffix) { return String(name.dropLast(suffix.count)) }
            return name
        })
    }

    func testPromtoolAcceptsTheAlertingRules() throws {
        let (status, output) = try runCommand(URL(fileURLWithPath: "/usr/bin/promtool"), [
            "check", "rules", Self.packageRoot.appendingPathComponent("deploy/prometheus/alerts.yml").path,
        ])
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(output.contains("SUCCESS: 6 rules found"), output)
    }

    func testTheAlertsAndTheDashboardUseDocumentedSeriesOnly() throws {
        let documented = try Self.documentedMetrics()
        XCTAssertGreaterThanOrEqual(documented.count, 20)
        let dashboard = try Self.text("deploy/grafana/erp-gateway.json")
        XCTAssertNoThrow(try JSONSerialization.jsonObject(with: Data(dashboard.utf8)))
        for file in ["deploy/prometheus/alerts.yml", "deploy/grafana/erp-gateway.json"] {
            let used = Self.metricNames(in: try Self.text(file))
            XCTAssertFalse(used.isEmpty, file)
            XCTAssertEqual(used.subtracting(documented), [], "\(file) uses series docs/operations.md does not list")
        }
    }

    func testEveryAlertHasARunbookSection() throws {
        let rules = try Self.text("deploy/prometheus/alerts.yml")
        let operations = try Self.text("docs/operations.md")
        let alerts = rules.split(separator: "\n").compactMap { line -> String? in
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            return trimmed.hasPrefix("- alert: ") ? String(trimmed.dropFirst("- alert: ".count)) : nil
        }
        XCTAssertEqual(alerts.count, 6)
        for alert in alerts {
            XCTAssertTrue(operations.contains("\n### \(alert)\n"), "no runbook section for \(alert)")
            XCTAssertTrue(rules.contains("docs/operations.md#\(alert.lowercased())"), "\(alert) does not link its runbook")
        }
    }
}
