import XCTest

@testable import GatewayConfig

/// The routing part of the settings: per-cell health checks, limits, timeouts and fallbacks, and
/// the process-wide retry and outlier-detection sections.
final class CellSettingsTests: XCTestCase {
    private func document(cells: String, extra: String = "") -> String {
        "listener:\n  port: 8080\ncells:\n" + cells + "defaultCell: pooled-eu-1\n" + extra
    }

    private let pooledEU2 = """
          - id: pooled-eu-2
            kind: pooled
            region: eu-west
            endpoints: [127.0.0.1:9102]

        """

    func testDefaultsWhenNothingIsSaid() throws {
        let settings = try SettingsLoader.parse(minimalSettingsYAML)
        let cell = try XCTUnwrap(settings.cells.first)
        XCTAssertNil(cell.healthCheck)
        XCTAssertEqual(cell.limits, GatewaySettings.CellLimits(maxPending: 1000, maxInFlight: 10_000, retryAfter: .seconds(1)))
        XCTAssertNil(cell.connectTimeout)
        XCTAssertNil(cell.responseTimeout)
        XCTAssertEqual(cell.fallback, [])
        XCTAssertEqual(settings.retries, GatewaySettings.Retries(maxAttempts: 3, budgetPercent: 20, minRetriesInFlight: 3))
        XCTAssertEqual(
            settings.outlierDetection,
            GatewaySettings.OutlierDetection(consecutiveFailures: 5, baseEjection: .seconds(10), maxEjection: .seconds(300), maxEjectedPercent: 50)
        )
    }

    func testEveryCellKeyIsRead() throws {
        let yaml = document(cells: """
              - id: pooled-eu-1
                kind: pooled
                region: eu-west
                endpoints: [127.0.0.1:9101, 127.0.0.1:9103]
                healthCheck: { path: /ready, interval: 2s, timeout: 500ms, healthyThreshold: 1, unhealthyThreshold: 4 }
                limits: { maxPending: 50, maxInFlight: 200, retryAfter: 3s }
                timeouts: { connect: 250ms, response: 9s }
                fallback: [pooled-eu-2]

            """ + pooledEU2, extra: """
            retries: { maxAttempts: 2, budgetPercent: 10, minRetriesInFlight: 1 }
            outlierDetection: { consecutiveFailures: 3, baseEjection: 5s, maxEjection: 1m, maxEjectedPercent: 34 }

            """)
        let settings = try SettingsLoader.parse(yaml)
        let cell = settings.cells[0]
        XCTAssertEqual(cell.healthCheck, .init(path: "/ready", interval: .seconds(2), timeout: .milliseconds(500), healthyThreshold: 1, unhealthyThreshold: 4))
        XCTAssertEqual(cell.limits, .init(maxPending: 50, maxInFlight: 200, retryAfter: .seconds(3)))
        XCTAssertEqual(cell.connectTimeout, .milliseconds(250))
        XCTAssertEqual(cell.responseTimeout, .seconds(9))
        XCTAssertEqual(cell.fallback, ["pooled-eu-2"])
        XCTAssertEqual(settings.retries, .init(maxAttempts: 2, budgetPercent: 10, minRetriesInFlight: 1))
        XCTAssertEqual(settings.outlierDetection, .init(consecutiveFailures: 3, baseEjection: .seconds(5), maxEjection: .seconds(60), maxEjectedPercent: 34))
    }

    func testAHealthCheckWithOnlyAPathTakesTheDefaults() throws {
        let yaml = document(cells: """
              - id: pooled-eu-1
                kind: pooled
                region: eu-west
                endpoints: [127.0.0.1:9101]
                healthCheck: { path: /healthz }

            """)
        XCTAssertEqual(
            try SettingsLoader.parse(yaml).cells[0].healthCheck,
            .init(path: "/healthz", interval: .seconds(5), timeout: .seconds(1), healthyThreshold: 2, unhealthyThreshold: 3)
        )
    }

    func testFallbackProblemsAreReportedWhereTheyAreWritten() {
        let yaml = document(cells: """
              - id: pooled-eu-1
                kind: pooled
                region: eu-west
                endpoints: [127.0.0.1:9101]
                fallback: [pooled-eu-1, nowhere, acme]
              - id: acme
                kind: dedicated
                region: eu-west
                endpoints: [127.0.0.1:9103]

            """)
        let issues = rejectionIssues(of: yaml)
        XCTAssertEqual(issues.count, 3, "\(issues)")
        XCTAssertTrue(issues.contains { $0.path == "cells[0].fallback[0]" && $0.message.contains("its own fallback") })
        XCTAssertTrue(issues.contains { $0.path == "cells[0].fallback[1]" && $0.message.contains("'nowhere', which is not defined") })
        XCTAssertTrue(issues.contains { $0.path == "cells[0].fallback[2]" && $0.message.contains("dedicated cell") && $0.line == 8 })
    }

    func testAFallbackListedTwiceIsRefused() {
        let yaml = document(cells: """
              - id: pooled-eu-1
                kind: pooled
                region: eu-west
                endpoints: [127.0.0.1:9101]
                fallback: [pooled-eu-2, pooled-eu-2]

            """ + pooledEU2)
        assertIssue(singleIssue(of: yaml), path: "cells[0].fallback[0]", line: 8, mentioning: "listed twice")
    }

    func testAnEndpointListedTwiceIsRefused() {
        let yaml = document(cells: """
              - id: pooled-eu-1
                kind: pooled
                region: eu-west
                endpoints: [127.0.0.1:9101, 127.0.0.1:9101]

            """)
        assertIssue(singleIssue(of: yaml), path: "cells[0].endpoints[1]", line: 7, mentioning: "listed twice")
    }

    func testHealthCheckTimeoutLongerThanItsIntervalIsRefused() {
        let yaml = document(cells: """
              - id: pooled-eu-1
                kind: pooled
                region: eu-west
                endpoints: [127.0.0.1:9101]
                healthCheck: { path: /healthz, interval: 1s, timeout: 2s }

            """)
        assertIssue(singleIssue(of: yaml), path: "cells[0].healthCheck.timeout", line: 8, mentioning: "not be longer than the interval")
    }

    func testHealthCheckPathMustBeAbsolute() {
        let yaml = document(cells: """
              - id: pooled-eu-1
                kind: pooled
                region: eu-west
                endpoints: [127.0.0.1:9101]
                healthCheck: { path: healthz }

            """)
        assertIssue(singleIssue(of: yaml), path: "cells[0].healthCheck.path", line: 8, mentioning: "absolute path")
    }

    func testOutOfRangeValuesAreRefused() {
        let yaml = document(cells: """
              - id: pooled-eu-1
                kind: pooled
                region: eu-west
                endpoints: [127.0.0.1:9101]
                limits: { maxPending: 0, maxInFlight: 1, retryAfter: 0s }

            """, extra: """
            retries: { maxAttempts: 0, budgetPercent: 101 }
            outlierDetection: { baseEjection: 10s, maxEjection: 5s, maxEjectedPercent: 200 }

            """)
        let paths = Set(rejectionIssues(of: yaml).map(\.path))
        XCTAssertEqual(paths, [
            "cells[0].limits.maxPending", "cells[0].limits.retryAfter", "retries.maxAttempts", "retries.budgetPercent",
            "outlierDetection.maxEjection", "outlierDetection.maxEjectedPercent",
        ])
    }
}
