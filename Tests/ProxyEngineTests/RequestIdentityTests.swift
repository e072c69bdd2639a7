import XCTest
@testable import ProxyEngine

final class RequestIdentityTests: XCTestCase {
    private static let traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
    private static let parentID = "00f067aa0ba902b7"
    private static let valid = "00-\(traceID)-\(parentID)-01"

    // MARK: - TraceParent

    func testValidVersion00() throws {
        let parsed = try XCTUnwrap(TraceParent(Self.valid))
        XCTAssertEqual(parsed.version, "00")
        XCTAssertEqual(parsed.traceID, Self.traceID)
        XCTAssertEqual(parsed.parentID, Self.parentID)
        XCTAssertEqual(parsed.flags, "01")
        XCTAssertEqual(parsed.header, Self.valid)
    }

    func testUppercaseHexIsRejected() {
        XCTAssertNil(TraceParent("00-\(Self.traceID.uppercased())-\(Self.parentID)-01"))
        XCTAssertNil(TraceParent("00-\(Self.traceID)-00F067AA0BA902B7-01"))
        XCTAssertNil(TraceParent("00-\(Self.traceID)-\(Self.parentID)-0A"))
        XCTAssertNil(TraceParent("0A-\(Self.traceID)-\(Self.parentID)-01"))
    }

    func testNonHexIsRejected() {
        XCTAssertNil(TraceParent("00-4bf92f3577b34da6a3ce929d0e0e473g-\(Self.parentID)-01"))
        XCTAssertNil(TraceParent("00-\(Self.traceID)-00f067aa0ba902b7-0x"))
        XCTAssertNil(TraceParent("00-\(Self.traceID)-00f067aa 0ba902b-01"))
    }

    func testAllZeroIDsAreRejected() {
        XCTAssertNil(TraceParent("00-\(String(repeating: "0", count: 32))-\(Self.parentID)-01"))
        XCTAssertNil(TraceParent("00-\(Self.traceID)-\(String(repeating: "0", count: 16))-01"))
    }

    func testVersionFFIsRejected() {
        XCTAssertNil(TraceParent("ff-\(Self.traceID)-\(Self.parentID)-01"))
        XCTAssertNil(TraceParent("ff-\(Self.traceID)-\(Self.parentID)-01-extra"))
    }

    func testVersion00MustBeExactly55Characters() {
        XCTAssertEqual(Self.valid.utf8.count, 55)
        XCTAssertNil(TraceParent(String(Self.valid.dropLast())))
        XCTAssertNil(TraceParent(Self.valid + "-"))
        XCTAssertNil(TraceParent(Self.valid + "-extra"))
        XCTAssertNil(TraceParent(Self.valid + "1"))
        XCTAssertNil(TraceParent("00-\(Self.traceID)a-\(Self.parentID)-01"))
        XCTAssertNil(TraceParent(""))
    }

    func testMisplacedSeparatorsAreRejected() {
        XCTAssertNil(TraceParent("00_\(Self.traceID)-\(Self.parentID)-01"))
        XCTAssertNil(TraceParent("00-\(Self.traceID)_\(Self.parentID)-01"))
        XCTAssertNil(TraceParent("00-\(Self.traceID)-\(Self.parentID)_01"))
        XCTAssertNil(TraceParent("00-\(Self.traceID.dropLast())-0\(Self.parentID)-01"))
    }

    func testFutureVersionMayCarryMoreAfterADash() throws {
        let withSuffix = try XCTUnwrap(TraceParent("cc-\(Self.traceID)-\(Self.parentID)-03-what-the-future-holds"))
        XCTAssertEqual(withSuffix.version, "cc")
        XCTAssertEqual(withSuffix.traceID, Self.traceID)
        XCTAssertEqual(withSuffix.parentID, Self.parentID)
        XCTAssertEqual(withSuffix.flags, "03")
        // Re-emitted as the version this gateway implements.
        XCTAssertEqual(withSuffix.header, "00-\(Self.traceID)-\(Self.parentID)-03")

        XCTAssertNotNil(TraceParent("01-\(Self.traceID)-\(Self.parentID)-01"))
        XCTAssertNil(TraceParent("01-\(Self.traceID)-\(Self.parentID)-01x"))
    }

    // MARK: - TraceDecision

    func testValidIncomingTraceIsContinuedWithANewParent() throws {
        var generator = IdentifierGenerator(seed: 7)
        let decision = TraceDecision.decide(incoming: Self.valid, generator: &generator)

        XCTAssertTrue(decision.continuesClientTrace)
        XCTAssertEqual(decision.outgoing.version, "00")
        XCTAssertEqual(decision.outgoing.traceID, Self.traceID)
        XCTAssertEqual(decision.outgoing.flags, "01")
        XCTAssertNotEqual(decision.outgoing.parentID, Self.parentID)
        Self.assertLowercaseHex(decision.outgoing.parentID, count: 16)
        XCTAssertEqual(try XCTUnwrap(TraceParent(decision.outgoing.header)), decision.outgoing)
    }

    func testFlagsOfAFutureVersionAreKept() {
        var generator = IdentifierGenerator(seed: 7)
        let decision = TraceDecision.decide(incoming: "01-\(Self.traceID)-\(Self.parentID)-03-x", generator: &generator)
        XCTAssertTrue(decision.continuesClientTrace)
        XCTAssertEqual(decision.outgoing.traceID, Self.traceID)
        XCTAssertEqual(decision.outgoing.flags, "03")
        XCTAssertTrue(decision.outgoing.header.hasPrefix("00-\(Self.traceID)-"))
    }

    func testMissingOrInvalidIncomingTraceStartsANewOne() throws {
        for incoming in [nil, "", "garbage", "00-\(Self.traceID.uppercased())-\(Self.parentID)-01", "ff-\(Self.traceID)-\(Self.parentID)-01"] {
            var generator = IdentifierGenerator(seed: 11)
            let decision = TraceDecision.decide(incoming: incoming, generator: &generator)

            XCTAssertFalse(decision.continuesClientTrace, "\(String(describing: incoming))")
            XCTAssertEqual(decision.outgoing.version, "00")
            XCTAssertEqual(decision.outgoing.flags, "00")
            XCTAssertNotEqual(decision.outgoing.traceID.lowercased(), Self.traceID)
            Self.assertLowercaseHex(decision.outgoing.traceID, count: 32)
            Self.assertLowercaseHex(decision.outgoing.parentID, count: 16)
            // What the gateway emits must itself be a valid traceparent.
            XCTAssertEqual(try XCTUnwrap(TraceParent(decision.outgoing.header)), decision.outgoing)
        }
    }

    func testNewTracesDiffer() {
        var generator = IdentifierGenerator(seed: 3)
        let first = TraceDecision.decide(incoming: nil, generator: &generator).outgoing
        let second = TraceDecision.decide(incoming: nil, generator: &generator).outgoing
        XCTAssertNotEqual(first.traceID, second.traceID)
        XCTAssertNotEqual(first.parentID, second.parentID)
    }

    // MARK: - RequestID

    func testAcceptableRequestIDs() {
        let accepted = ["a", "Z", "0", "abc-DEF_123.456:789", "f47ac10b-58cc-4372-a567-0e02b2c3d479", String(repeating: "x", count: 128)]
        for id in accepted {
            XCTAssertTrue(RequestID.isAcceptable(id), "'\(id)' should be accepted")
        }
    }

    func testUnacceptableRequestIDs() {
        let rejected = [
            "", String(repeating: "x", count: 129), "a b", "a/b", "a\nb", "a\rb", "a\"b", "a,b", "a;b", "a=b", "a+b", "ä", "a\u{0}",
            "<script>", "id\u{7f}",
        ]
        for id in rejected {
            XCTAssertFalse(RequestID.isAcceptable(id), "'\(id.debugDescription)' should be rejected")
        }
    }

    // MARK: - IdentifierGenerator

    func testRequestIDsAre32LowercaseHexDigitsAndDistinct() {
        var generator = IdentifierGenerator(seed: 42)
        var seen: Set<String> = []
        for _ in 0..<1000 {
            let id = generator.requestID()
            Self.assertLowercaseHex(id, count: 32)
            XCTAssertTrue(RequestID.isAcceptable(id))
            seen.insert(id)
        }
        XCTAssertEqual(seen.count, 1000)
    }

    func testUnseededGeneratorsDiffer() {
        var first = IdentifierGenerator()
        var second = IdentifierGenerator()
        XCTAssertNotEqual(first.requestID(), second.requestID())
    }

    func testSameSeedSameSequence() {
        var first = IdentifierGenerator(seed: 99)
        var second = IdentifierGenerator(seed: 99)
        XCTAssertEqual((0..<10).map { _ in first.requestID() }, (0..<10).map { _ in second.requestID() })
    }

    func testSpanAndTraceIDsAreNonZeroHex() {
        var generator = IdentifierGenerator(seed: 5)
        for _ in 0..<100 {
            let span = Hex.encode(generator.spanBits())
            let (high, low) = generator.traceBits()
            let trace = Hex.encode(high, low)
            Self.assertLowercaseHex(span, count: 16)
            Self.assertLowercaseHex(trace, count: 32)
            XCTAssertNotEqual(span, String(repeating: "0", count: 16))
            XCTAssertNotEqual(trace, String(repeating: "0", count: 32))
        }
    }

    func testHexEncodingIsFixedWidthBigEndian() {
        XCTAssertEqual(Hex.encode(0), "0000000000000000")
        XCTAssertEqual(Hex.encode(0xDEAD_BEEF), "00000000deadbeef")
        XCTAssertEqual(Hex.encode(.max), "ffffffffffffffff")
        XCTAssertEqual(Hex.encode(0x0123_4567_89AB_CDEF), "0123456789abcdef")
        XCTAssertEqual(Hex.encode(0x0123_4567_89AB_CDEF, 0xFEDC_BA98_7654_3210), "0123456789abcdeffedcba9876543210")
    }

    /// The ids are kept as bits and written out when asked: every value reads back as itself,
    /// through its header and through its ids as text.
    func testIdsKeptAsBitsReadBackAsTheHeaderSaysThem() throws {
        var random = SeededRandom(seed: 0x7AC3)
        for _ in 0..<1_000 {
            let value = TraceParent(
                traceIDHigh: random.next(), traceIDLow: random.next() | 1, parentID: random.next() | 1, flags: UInt8.random(in: 0...255, using: &random)
            )
            XCTAssertEqual(value.header, "00-\(value.traceID)-\(value.parentID)-\(value.flags)")
            XCTAssertEqual(value.header.utf8.count, 55)
            XCTAssertEqual(TraceParent(value.header), value)
            XCTAssertEqual(TraceParent(traceID: value.traceID, parentID: value.parentID, flags: value.flags), value)
        }
        XCTAssertEqual(TraceParent(traceIDHigh: 0xA, traceIDLow: 0xB, parentID: 0xC, flags: 0xA3).header, "00-000000000000000a000000000000000b-000000000000000c-a3")
    }

    // MARK: - Helpers

    private static func assertLowercaseHex(_ text: String, count: Int, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(text.utf8.count, count, "'\(text)'", file: file, line: line)
        XCTAssertTrue(text.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }, "'\(text)'", file: file, line: line)
    }
}

/// Which traces the gateway records (`tracing.sampling` and the client's sampled flag), and
/// that the decision never changes what a client's trace forwards.
final class TraceSamplingTests: XCTestCase {
    private static let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-"

    func testAClientsTraceFollowsItsSampledFlagUnlessTracingIsOff() {
        var generator = IdentifierGenerator(seed: 5)
        for (flags, ratio, sampled) in [("01", 0.5, true), ("00", 1.0, false), ("03", 0.01, true), ("0b", 1.0, true), ("0a", 1.0, false), ("01", 0.0, false)] {
            let decision = TraceDecision.decide(incoming: Self.incoming + flags, sampleRatio: ratio, generator: &generator)
            XCTAssertEqual(decision.sampled, sampled, "flags \(flags) at \(ratio)")
            XCTAssertEqual(decision.outgoing.flags, flags, "the client's flags are forwarded as they came")
            XCTAssertEqual(decision.clientParentID, "00f067aa0ba902b7")
        }
    }

    func testATraceTheGatewayStartsIsSampledByRatioAndSaysSoUpstream() {
        var generator = IdentifierGenerator(seed: 8)
        let none = (0..<500).map { _ in TraceDecision.decide(incoming: nil, sampleRatio: 0, generator: &generator) }
        XCTAssertTrue(none.allSatisfy { !$0.sampled && $0.outgoing.flags == "00" && $0.clientParentID == nil })
        let all = (0..<500).map { _ in TraceDecision.decide(incoming: nil, sampleRatio: 1, generator: &generator) }
        XCTAssertTrue(all.allSatisfy { $0.sampled && $0.outgoing.flags == "01" })
        let some = (0..<10_000).filter { _ in TraceDecision.decide(incoming: nil, sampleRatio: 0.1, generator: &generator).sampled }.count
        XCTAssertTrue((800...1200).contains(some), "\(some) of 10000 at 0.1")
    }

    func testTheRatioDecisionIsTheTraceIDsLowBitsAgainstTheRatio() {
        XCTAssertTrue(TraceDecision.samples(0, ratio: 0.001))
        XCTAssertFalse(TraceDecision.samples(.max, ratio: 0.999))
        XCTAssertTrue(TraceDecision.samples(.max, ratio: 1))
        XCTAssertFalse(TraceDecision.samples(0, ratio: 0))
        XCTAssertTrue(TraceDecision.samples(UInt64.max / 4, ratio: 0.5))
        XCTAssertFalse(TraceDecision.samples(UInt64.max / 4 * 3, ratio: 0.5))
    }
}
