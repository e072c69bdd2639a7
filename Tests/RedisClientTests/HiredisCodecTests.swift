import NIOCore
import XCTest
@testable import RedisClient

/// hiredis's reader and formatter through our wrappers, without a socket.
final class HiredisCodecTests: XCTestCase {
    private func formatted(_ command: RedisCommand) -> String {
        String(decoding: command.bytes.readableBytesView, as: UTF8.self)
    }

    func testCommandsAreFormattedBinarySafe() throws {
        XCTAssertEqual(formatted(try RedisCommand(["GET", "k"])), "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")
        XCTAssertEqual(formatted(try RedisCommand(["SET", "é", ""])), "*3\r\n$3\r\nSET\r\n$2\r\né\r\n$0\r\n\r\n")
        let binary = try RedisCommand([Array("SET".utf8), [0, 13, 10, 0], []])
        XCTAssertEqual(Array(binary.bytes.readableBytesView), Array("*3\r\n$3\r\nSET\r\n$4\r\n".utf8) + [0, 13, 10, 0] + Array("\r\n$0\r\n\r\n".utf8))
    }

    func testIntegersAreWrittenAsTheirDecimalText() throws {
        let integers: [Int64] = [0, 7, -1, 10, -10, 1_764_000_000_000_000, .max, .min]
        var size = RedisArgumentSize()
        var call = RedisScriptCall(sha: "abc", keyCount: 0, argumentCount: integers.count, payload: 0)
        for integer in integers {
            size.append(integer)
            call.append(integer)
        }
        let text = integers.map { String($0) }
        XCTAssertEqual(size.bytes, text.reduce(0) { $0 + $1.utf8.count })
        XCTAssertEqual(formatted(RedisCommand(call)), formatted(try RedisCommand(["EVALSHA", "abc", "0"] + text)))
    }

    func testAnEmptyCommandIsRefused() {
        XCTAssertThrowsError(try RedisCommand([String]())) { XCTAssertEqual($0 as? RedisClientError, .emptyCommand) }
        XCTAssertThrowsError(try RedisCommand([[UInt8]]())) { XCTAssertEqual($0 as? RedisClientError, .emptyCommand) }
    }

    private func replies(_ wire: [UInt8], chunk: Int) -> [RESPValue] {
        let reader = HiredisReader()
        var values: [RESPValue] = []
        var start = 0
        while start < wire.count {
            let end = min(start + chunk, wire.count)
            XCTAssertTrue(wire[start..<end].withUnsafeBytes { reader.feed($0) })
            start = end
            while let output = reader.next() {
                guard case .reply(let value) = output else {
                    XCTFail("unexpected \(output)")
                    return values
                }
                values.append(value)
            }
        }
        return values
    }

    func testEveryReplyTypeWholeOrByteByByte() {
        let wire = Array("+OK\r\n-ERR no\r\n:-42\r\n$-1\r\n$0\r\n\r\n$3\r\na".utf8) + [0] + Array("b\r\n*3\r\n:1\r\n$-1\r\n*1\r\n+x\r\n*0\r\n*-1\r\n".utf8)
        let expected: [RESPValue] = [
            .simpleString("OK"), .error("ERR no"), .integer(-42), .bulkString(nil), .bulkString([]),
            .bulkString([97, 0, 98]),
            .array([.integer(1), .bulkString(nil), .array([.simpleString("x")])]),
            .array([]),
            .bulkString(nil),  // *-1: hiredis 0.14 reports the null array as its nil reply
        ]
        XCTAssertEqual(replies(wire, chunk: wire.count), expected)
        XCTAssertEqual(replies(wire, chunk: 1), expected)
        XCTAssertTrue(expected.last!.isNull)
    }

    /// Replies are built in arrays the reader keeps between replies: one far larger than they
    /// keep (3,000 elements, 96 KiB of strings, nested) grows them and gives the memory back,
    /// and the replies before and after it, split anywhere, still read whole and in order.
    func testALargeReplyBetweenSmallOnesReadsWhole() {
        let strings = (0..<3_000).map { index in Array(String(format: "%032d", index).utf8) }
        var wire = Array(":1\r\n*2\r\n*3000\r\n".utf8)
        for string in strings { wire += Array("$32\r\n".utf8) + string + Array("\r\n".utf8) }
        wire += Array("+tail\r\n:2\r\n$2\r\nok\r\n".utf8)
        let expected: [RESPValue] = [
            .integer(1), .array([.array(strings.map { .bulkString($0) }), .simpleString("tail")]), .integer(2), .bulkString(Array("ok".utf8)),
        ]
        XCTAssertEqual(replies(wire, chunk: wire.count), expected)
        XCTAssertEqual(replies(wire, chunk: 997), expected)
        let reader = HiredisReader()
        for _ in 0..<3 {
            wire.withUnsafeBytes { XCTAssertTrue(reader.feed($0)) }
            var read: [RESPValue] = []
            while case .reply(let value)? = reader.next() { read.append(value) }
            XCTAssertEqual(read, expected)
        }
    }

    func testGarbageIsAProtocolError() {
        let reader = HiredisReader()
        _ = Array("?what\r\n".utf8).withUnsafeBytes { reader.feed($0) }
        guard case .protocolError(let message)? = reader.next() else { return XCTFail("expected a protocol error") }
        XCTAssertFalse(message.isEmpty)
    }

    func testValueAccessors() {
        XCTAssertEqual(RESPValue.bulk("12").int64, 12)
        XCTAssertEqual(RESPValue.integer(7).int64, 7)
        XCTAssertEqual(RESPValue.simpleString("OK").string, "OK")
        XCTAssertNil(RESPValue.bulkString([0xFF]).string)
        XCTAssertEqual(RESPValue.bulkString([0xFF]).bytes, [0xFF])
        XCTAssertEqual(RESPValue.error("NOSCRIPT x").errorMessage, "NOSCRIPT x")
        XCTAssertTrue(RESPValue.array(nil).isNull)
        XCTAssertFalse(RESPValue.bulkString([]).isNull)
    }

    func testErrorSlugsAreDistinctAndDescriptionsFixed() {
        let slugs = RedisClientError.allReasons.map(\.slug)
        XCTAssertEqual(Set(slugs).count, slugs.count)
        XCTAssertTrue(slugs.allSatisfy { $0.hasPrefix("redis-") })
        XCTAssertEqual(RedisClientError.connectionClosed.description, "Redis connection closed before the reply arrived")
    }
}
