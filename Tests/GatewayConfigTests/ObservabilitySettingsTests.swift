import XCTest
@testable import GatewayConfig

/// `accessLog` and `tracing`: both off unless asked for, and every bad value reported.
final class ObservabilitySettingsTests: XCTestCase {
    func testBothAreOffByDefault() throws {
        let settings = try SettingsLoader.parse(minimalSettingsYAML)
        XCTAssertFalse(settings.accessLog.enabled)
        XCTAssertNil(settings.tracing)
    }

    func testValuesAreRead() throws {
        let settings = try SettingsLoader.parse(minimalSettingsYAML + """

            accessLog:
              enabled: true
              sampling: 0.25
              problemSampling: 0.5
            tracing:
              endpoint: http://collector.local:4318/v1/traces
              sampling: 0.05
              serviceName: erp-gateway-eu
              queueSize: 100
              batchSize: 10
              exportInterval: 200ms
              exportTimeout: 2s
            """)
        XCTAssertEqual(settings.accessLog, .init(enabled: true, sampling: 0.25, problemSampling: 0.5))
        let tracing = try XCTUnwrap(settings.tracing)
        XCTAssertEqual(tracing.endpoint, .init(host: "collector.local", port: 4318))
        XCTAssertEqual(tracing.path, "/v1/traces")
        XCTAssertEqual(tracing.sampling, 0.05)
        XCTAssertEqual(tracing.serviceName, "erp-gateway-eu")
        XCTAssertEqual(tracing.queueSize, 100)
        XCTAssertEqual(tracing.batchSize, 10)
        XCTAssertEqual(tracing.exportInterval, .milliseconds(200))
        XCTAssertEqual(tracing.exportTimeout, .seconds(2))
    }

    func testAnEndpointWithoutAPathPostsToTheOTLPTracesPath() throws {
        let settings = try SettingsLoader.parse(minimalSettingsYAML + "\ntracing:\n  endpoint: http://127.0.0.1:4318\n")
        XCTAssertEqual(settings.tracing?.path, "/v1/traces")
        XCTAssertEqual(settings.tracing?.sampling, 1)
    }

    func testBadValuesAreReported() {
        assertIssue(
            singleIssue(of: minimalSettingsYAML + "\naccessLog:\n  sampling: 1.5\n"), path: "accessLog.sampling", line: 11,
            mentioning: "between 0 and 1"
        )
        assertIssue(
            singleIssue(of: minimalSettingsYAML + "\ntracing:\n  endpoint: https://collector:4318/v1/traces\n"), path: "tracing.endpoint",
            line: 11, mentioning: "http://HOST:PORT/PATH"
        )
        assertIssue(singleIssue(of: minimalSettingsYAML + "\ntracing:\n  sampling: 0.1\n"), path: "tracing", line: 11, mentioning: "'endpoint'")
        assertIssue(
            singleIssue(of: minimalSettingsYAML + "\ntracing:\n  endpoint: http://127.0.0.1:4318\n  queueSize: 10\n  batchSize: 20\n"),
            path: "tracing.batchSize", line: 13, mentioning: "queueSize"
        )
    }
}
