import Foundation
import GatewayConfig
import Logging
import NIOCore
import ProxyEngine
import XCTest
@testable import AccessLog

final class AccessLogLineTests: XCTestCase {
    private func parse(_ line: String) throws -> [String: Any] {
        XCTAssertFalse(line.contains("\n"), "one line")
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], line)
    }

    func testARelayedRequestsLineHasEveryField() throws {
        let line = AccessLogLine.render(try RecordFixtures.relayed())
        let json = try self.parse(line)
        XCTAssertTrue(line.hasPrefix(#"{"time":"2026-12-03T07:12:00.123Z","requestId":"req-1","#), line)
        XCTAssertEqual(json["traceId"] as? String, "4bf92f3577b34da6a3ce929d0e0e4736")
        XCTAssertEqual(json["spanId"] as? String, "1111111111111111")
        XCTAssertEqual(json["method"] as? String, "GET")
        XCTAssertEqual(json["path"] as? String, "/v1/ledger/7")
        XCTAssertEqual(json["route"] as? String, "/v1/ledger")
        XCTAssertEqual(json["oem"] as? String, "acme")
        XCTAssertEqual(json["partner"] as? String, "p1")
        XCTAssertEqual(json["customer"] as? String, "c1")
        XCTAssertEqual(json["outcome"] as? String, "relayed")
        XCTAssertEqual(json["status"] as? Int, 200)
        XCTAssertEqual(json["cell"] as? String, "eu-1")
        XCTAssertEqual(json["tier"] as? String, "pooled")
        XCTAssertEqual(json["endpoint"] as? String, "10.0.0.7:8080")
        XCTAssertEqual(json["attempts"] as? Int, 1)
        XCTAssertEqual(json["bytesIn"] as? Int, 3)
        XCTAssertEqual(json["bytesOut"] as? Int, 1234)
        // Total 3.007 ms, of which the upstream took 2.5 ms (head sent to response complete).
        XCTAssertTrue(line.contains(#""gatewayMs":0.507,"upstreamMs":2.500}"#), line)
        XCTAssertNil(json["phase"])
        XCTAssertNil(json["problem"])
        XCTAssertEqual(json.count, 20)
    }

    func testARefusedRequestsLineNamesThePhaseAndProblemAndLeavesOutWhatItNeverReached() throws {
        let json = try self.parse(AccessLogLine.render(RecordFixtures.refused(.tokenMissing)))
        XCTAssertEqual(json["outcome"] as? String, "refused")
        XCTAssertEqual(json["status"] as? Int, 401)
        XCTAssertEqual(json["phase"] as? String, "authenticate")
        XCTAssertEqual(json["problem"] as? String, "token-missing")
        XCTAssertEqual(json["gatewayMs"] as? Double, 0.095)
        for absent in ["route", "oem", "partner", "customer", "cell", "tier", "endpoint", "attempts", "upstreamMs"] {
            XCTAssertNil(json[absent], absent)
        }
    }

    func testTextIsEscaped() throws {
        let record = RequestRecord(
            requestID: "r", traceID: nil, spanID: nil, continuesClientTrace: false, method: "GET", path: "/a\"b\\c\u{1}d\né", route: nil,
            tenant: nil, outcome: .refused, status: 400, problem: .ambiguousPath, cell: nil, tier: nil, endpoint: nil, attempts: 0, bytesIn: 0,
            bytesOut: 0, started: RecordFixtures.started, authorized: nil, admitted: nil, upstreamStarted: nil, upstreamHead: nil, upstreamEnded: nil,
            ended: RecordFixtures.started, startedWallMicroseconds: 0
        )
        let line = AccessLogLine.render(record)
        XCTAssertTrue(line.contains(#""path":"/a\"b\\c\u0001d\né""#), line)
        XCTAssertEqual(try self.parse(line)["path"] as? String, "/a\"b\\c\u{1}d\né")
        XCTAssertTrue(line.hasPrefix(#"{"time":"1970-01-01T00:00:00.000Z""#))
    }

    func testTimestampsAndMilliseconds() {
        var text = ""
        UTCTimestamp.appendRFC3339Milliseconds(951_782_400_999_999, to: &text)  // a leap day, the last µs of its second
        XCTAssertEqual(text, "2000-02-29T00:00:00.999Z")
        for (microseconds, expected) in [(0, "0.000"), (7, "0.007"), (12_345, "12.345"), (1_000_000, "1000.000"), (-5, "0.000")] {
            var line: [UInt8] = []
            AccessLogLine.appendMilliseconds(.microseconds(Int64(microseconds)), to: &line)
            XCTAssertEqual(String(decoding: line, as: UTF8.self), expected)
        }
    }

    func testSamplingAdmitsNoneAllOrAboutTheShare() {
        var sampler = RatioSampler(seed: 42)
        XCTAssertFalse((0..<1000).contains { _ in sampler.admits(ratio: 0) })
        XCTAssertTrue((0..<1000).allSatisfy { _ in sampler.admits(ratio: 1) })
        let admitted = (0..<10_000).filter { _ in sampler.admits(ratio: 0.1) }.count
        XCTAssertTrue((800...1200).contains(admitted), "\(admitted) of 10000 at 0.1")
    }

    func testProblemsFollowTheirOwnSamplingRatio() throws {
        let lines = LinesHandler.Box()
        let logger = Logger(label: AccessLogObserver.label) { _ in LinesHandler(box: lines) }
        let observer = AccessLogObserver(settings: .init(enabled: true, sampling: 0, problemSampling: 1), logger: logger, seed: 1)
        observer.requestEnded(try RecordFixtures.relayed())
        observer.requestEnded(RecordFixtures.refused(.quotaExceeded))
        XCTAssertEqual(lines.lines.count, 1)
        XCTAssertTrue(lines.lines.first?.contains(#""problem":"quota-exceeded""#) ?? false)

        let quiet = AccessLogObserver(settings: .init(enabled: true, sampling: 1, problemSampling: 0), logger: logger, seed: 1)
        quiet.requestEnded(RecordFixtures.refused(.quotaExceeded))
        quiet.requestEnded(try RecordFixtures.relayed())
        XCTAssertEqual(lines.lines.count, 2)
        XCTAssertTrue(lines.lines.last?.contains(#""outcome":"relayed""#) ?? false)
    }

    func testJSONLogLinesKeepTheirFixedFieldsAndNestMetadata() throws {
        let handler = JSONLogHandler(label: "erp-gateway", level: .info, wallClock: { 0 })
        let event = LogEvent(
            level: .warning, message: "upstream \"slow\"", metadata: ["message": "not the message", "status": "502"], source: "ProxyEngine",
            file: #fileID, function: #function, line: #line
        )
        let line = handler.render(event)
        let json = try self.parse(line)
        XCTAssertEqual(json["time"] as? String, "1970-01-01T00:00:00.000Z")
        XCTAssertEqual(json["level"] as? String, "warning")
        XCTAssertEqual(json["label"] as? String, "erp-gateway")
        XCTAssertEqual(json["message"] as? String, "upstream \"slow\"")
        XCTAssertEqual(json["metadata"] as? [String: String], ["message": "not the message", "status": "502"])
    }

    func testLinesAreWrittenInWholeLinesOfAtMostFourKiB() {
        let writes = LinesHandler.Box()
        let output = BufferedLines(flushInterval: nil) { writes.lines.append($0) }
        let lines = (0..<40).map { index in String(repeating: "x", count: 150 + index * 7) + "\(index)" }
        for line in lines { output.append(line: line) }
        XCTAssertFalse(writes.lines.isEmpty, "a full buffer is written without waiting")
        output.flush()
        output.flush()
        XCTAssertTrue(writes.lines.allSatisfy { $0.utf8.count <= 4096 && $0.hasSuffix("\n") }, "\(writes.lines.map(\.utf8.count))")
        XCTAssertEqual(writes.lines.joined(), lines.map { $0 + "\n" }.joined(), "every line once, in order")

        let long = String(repeating: "y", count: 5000)
        output.append(line: "short")
        output.append(line: long)
        output.flush()
        XCTAssertEqual(Array(writes.lines.suffix(2)), ["short\n", long + "\n"], "a line longer than a write goes alone")
    }

    func testIntoARegularFileWritesCarryUpToSixtyFourKiB() {
        let writes = LinesHandler.Box()
        let output = BufferedLines(flushInterval: nil, writeLimit: 64 << 10) { writes.lines.append($0) }
        let lines = (0..<400).map { index in String(repeating: "z", count: 380) + "\(index)" }
        for line in lines { output.append(line: line) }
        output.flush()
        XCTAssertTrue(writes.lines.allSatisfy { $0.utf8.count <= 64 << 10 && $0.hasSuffix("\n") })
        XCTAssertEqual(writes.lines.count, 3, "about 150 KiB of lines in three writes: \(writes.lines.map(\.utf8.count))")
        XCTAssertEqual(writes.lines.joined(), lines.map { $0 + "\n" }.joined(), "every line once, in order")
    }

    func testAccessLinesAreWrittenAsTheyAreInBothFormats() {
        let lines = BufferedLines(flushInterval: nil)
        for format in LogFormat.allCases {
            let handler = format.handler(label: AccessLogObserver.label, level: .critical, accessLines: lines)
            XCTAssertTrue(handler is PreformattedLineHandler, "\(format)")
            XCTAssertEqual(handler.logLevel, .info, "--log-level does not silence it")
        }
        XCTAssertTrue(LogFormat.json.handler(label: "erp-gateway", level: .info, accessLines: lines) is JSONLogHandler)
        XCTAssertTrue(LogFormat.text.handler(label: "erp-gateway", level: .info, accessLines: lines) is StreamLogHandler)
    }
}

/// Keeps the messages logged through it.
private struct LinesHandler: LogHandler {
    final class Box: @unchecked Sendable {
        var lines: [String] = []
    }

    let box: Box
    var logLevel: Logger.Level = .trace
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        self.box.lines.append(event.message.description)
    }
}
