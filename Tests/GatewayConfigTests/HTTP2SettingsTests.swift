import XCTest
@testable import GatewayConfig

/// `listener.http2` and `timeouts.responseBodyIdle`: defaults, values read, and every refusal.
final class HTTP2SettingsTests: XCTestCase {
    private func withHTTP2(_ lines: String) -> String {
        minimalSettingsYAML.replacingOccurrences(of: "  port: 8080", with: "  port: 8080\n  http2:\n" + lines)
    }

    func testDefaults() throws {
        let settings = try SettingsLoader.parse(minimalSettingsYAML)
        let http2 = settings.listener.http2
        XCTAssertTrue(http2.enabled)
        XCTAssertFalse(http2.cleartext)
        XCTAssertEqual(http2.maxConcurrentStreams, 100)
        XCTAssertNil(http2.maxHeaderListSize, "derived from the limits by the data plane")
        XCTAssertEqual(http2.initialWindowSize, 65_535)
        XCTAssertEqual(http2.maxContinuationFrames, 5)
        XCTAssertEqual(http2.maxBufferedControlFrames, 10_000)
        XCTAssertEqual(http2.maxGlitches, 200)
        XCTAssertEqual(http2.resetFrames, .init(max: 200, per: .seconds(30)))
        XCTAssertEqual(http2.controlFrames, .init(max: 200, per: .seconds(30)))
        XCTAssertEqual(http2.streamErrors, .init(max: 200, per: .seconds(30)))
        XCTAssertEqual(settings.timeouts.responseBodyIdle, .seconds(60))
    }

    func testEveryKeyIsRead() throws {
        let settings = try SettingsLoader.parse(self.withHTTP2("""
                enabled: true
                cleartext: true
                maxConcurrentStreams: 250
                maxHeaderListSize: 32KiB
                initialWindowSize: 1MiB
                maxContinuationFrames: 8
                maxBufferedControlFrames: 500
                maxGlitches: 50
                resetFrames: { max: 100, per: 10s }
                controlFrames: { max: 50, per: 5s }
                streamErrors: { max: 20, per: 1m }
            """).replacingOccurrences(of: "cells:", with: "timeouts:\n  responseBodyIdle: 15s\ncells:"))
        let http2 = settings.listener.http2
        XCTAssertTrue(http2.cleartext)
        XCTAssertEqual(http2.maxConcurrentStreams, 250)
        XCTAssertEqual(http2.maxHeaderListSize, 32 << 10)
        XCTAssertEqual(http2.initialWindowSize, 1 << 20)
        XCTAssertEqual(http2.maxContinuationFrames, 8)
        XCTAssertEqual(http2.maxBufferedControlFrames, 500)
        XCTAssertEqual(http2.maxGlitches, 50)
        XCTAssertEqual(http2.resetFrames, .init(max: 100, per: .seconds(10)))
        XCTAssertEqual(http2.controlFrames, .init(max: 50, per: .seconds(5)))
        XCTAssertEqual(http2.streamErrors, .init(max: 20, per: .seconds(60)))
        XCTAssertEqual(settings.timeouts.responseBodyIdle, .seconds(15))
    }

    func testH2cNeedsHTTP2() {
        assertIssue(singleIssue(of: self.withHTTP2("    enabled: false\n    cleartext: true\n")), path: "listener.http2.cleartext", line: 5, mentioning: "'enabled' is false")
    }

    func testValuesOutOfRange() {
        let cases: [(line: String, path: String, mentioning: String)] = [
            ("maxConcurrentStreams: 0", "listener.http2.maxConcurrentStreams", "between 1 and 10000"),
            ("initialWindowSize: 4GiB", "listener.http2.initialWindowSize", "between 1024 and 2147483647"),
            ("maxHeaderListSize: 100", "listener.http2.maxHeaderListSize", "between 1024"),
            ("resetFrames: { max: 0, per: 30s }", "listener.http2.resetFrames.max", "between 1 and"),
            ("controlFrames: { max: 10, per: 10ms }", "listener.http2.controlFrames.per", "between 100ms and"),
            ("streamErrors: { max: 10 }", "listener.http2.streamErrors", "needs both 'max' and 'per'"),
            ("pushEnabled: true", "listener.http2.pushEnabled", "unknown key 'pushEnabled'"),
        ]
        for (line, path, mentioning) in cases {
            assertIssue(singleIssue(of: self.withHTTP2("    \(line)\n")), path: path, line: 4, mentioning: mentioning)
        }
    }

    /// Only the data plane's listener speaks HTTP/2.
    func testTheOpsListenerTakesNoHTTP2() {
        let yaml = minimalSettingsYAML + "\nops:\n  address: 127.0.0.1\n  port: 9090\n  http2: { cleartext: true }\n"
        XCTAssertFalse(rejectionIssues(of: yaml).isEmpty)
    }
}
