import Foundation
import XCTest
@testable import TokenAuth

final class Base64URLTests: XCTestCase {
    /// RFC 4648 §10.
    private let rfc4648Vectors: [(plain: String, encoded: String, padded: String)] = [
        ("", "", ""),
        ("f", "Zg", "Zg=="),
        ("fo", "Zm8", "Zm8="),
        ("foo", "Zm9v", "Zm9v"),
        ("foob", "Zm9vYg", "Zm9vYg=="),
        ("fooba", "Zm9vYmE", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy", "Zm9vYmFy"),
    ]

    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    func testRFC4648Vectors() throws {
        for vector in rfc4648Vectors {
            let plain = Array(vector.plain.utf8)
            XCTAssertEqual(Base64URL.encode(plain), vector.encoded)
            XCTAssertEqual(try Base64URL.decode(vector.encoded.utf8), plain, vector.encoded)
            XCTAssertEqual(try Base64URL.decode(vector.padded.utf8), plain, vector.padded)
            XCTAssertEqual(try Base64URL.validate(vector.encoded.utf8), plain.count)
        }
    }

    func testUsesTheURLSafeAlphabet() throws {
        XCTAssertEqual(Base64URL.encode([0xFB, 0xFF]), "-_8")
        XCTAssertEqual(Base64URL.encode([0xFB, 0xEF, 0xBE]), "----")
        XCTAssertEqual(Base64URL.encode([0xFF, 0xFF, 0xFF]), "____")
        XCTAssertEqual(try Base64URL.decode("-_8".utf8), [0xFB, 0xFF])
        XCTAssertEqual(try Base64URL.decode("____".utf8), [0xFF, 0xFF, 0xFF])
        // The standard alphabet's 62 and 63 are not in this one.
        assertRejects("+/8", .invalidCharacter(UInt8(ascii: "+"), offset: 0))
        assertRejects("A/8", .invalidCharacter(UInt8(ascii: "/"), offset: 1))
    }

    func testDecodesEveryCharacterOfTheAlphabetToItsValue() throws {
        // 64 characters = 48 bytes holding the values 0...63 as consecutive 6-bit fields.
        let decoded = try Base64URL.decode(Self.alphabet)
        var bits = 0
        var accumulated = 0
        var values: [Int] = []
        for byte in decoded {
            accumulated = accumulated << 8 | Int(byte)
            bits += 8
            while bits >= 6 {
                bits -= 6
                values.append(accumulated >> bits & 0x3F)
            }
        }
        XCTAssertEqual(values, Array(0..<64))
        XCTAssertEqual(Base64URL.encode(decoded), String(decoding: Self.alphabet, as: UTF8.self))
    }

    func testRoundTripsRandomBytesOfEveryLengthAgainstFoundation() throws {
        var generator = SplitMix64(seed: 0x5EED_BA5E_64)
        for length in 0...64 {
            for _ in 0..<8 {
                let bytes = (0..<length).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
                let standard = Data(bytes).base64EncodedString()
                let urlPadded = standard
                    .replacingOccurrences(of: "+", with: "-")
                    .replacingOccurrences(of: "/", with: "_")
                let urlUnpadded = urlPadded.replacingOccurrences(of: "=", with: "")

                let encoded = Base64URL.encode(bytes)
                XCTAssertEqual(encoded, urlUnpadded, "length \(length)")
                // Into a caller's buffer, behind what it already holds, exactly as many bytes.
                var buffer = [UInt8](repeating: UInt8(ascii: "#"), count: 3 + Base64URL.encodedCount(length) + 2)
                let written = bytes.withUnsafeBufferPointer { bytes in
                    buffer.withUnsafeMutableBufferPointer { Base64URL.encode(bytes, into: UnsafeMutableBufferPointer(rebasing: $0[3...])) }
                }
                XCTAssertEqual(written, Base64URL.encodedCount(length))
                XCTAssertEqual(buffer, Array("###\(urlUnpadded)##".utf8), "length \(length)")
                XCTAssertEqual(try Base64URL.decode(encoded.utf8), bytes, "length \(length)")
                XCTAssertEqual(try Base64URL.decode(urlPadded.utf8), bytes, "length \(length)")
                XCTAssertEqual(try Base64URL.validate(encoded.utf8), length)
                XCTAssertEqual(try Base64URL.validate(urlPadded.utf8), length)
                let foundation = Data(base64Encoded: standard).map { Array($0) }
                XCTAssertEqual(foundation, bytes, "Foundation disagrees with itself at length \(length)")
            }
        }
    }

    func testAcceptsContiguousAndNonContiguousInputs() throws {
        let text = "prefix.Zm9vYmFy.suffix"
        let segment = text.split(separator: ".")[1]
        let expected = Array("foobar".utf8)
        XCTAssertEqual(try Base64URL.decode(segment.utf8), expected)
        XCTAssertEqual(try Base64URL.decode("Zm9vYmFy".utf8), expected)
        XCTAssertEqual(try Base64URL.decode(Array("Zm9vYmFy".utf8)), expected)
        XCTAssertEqual(try Base64URL.decode(Array("xZm9vYmFyx".utf8)[1..<9]), expected)
        // A lazy map has no contiguous storage, so this takes the copying path.
        let lazy = Array("Zm9vYmFy".utf8).lazy.map { $0 }
        XCTAssertEqual(try Base64URL.decode(lazy), expected)
        XCTAssertEqual(try Base64URL.validate(lazy), expected.count)
        XCTAssertThrowsError(try Base64URL.decode(Array("Zm9v!mFy".utf8).lazy.map { $0 })) { error in
            XCTAssertEqual(error as? Base64URLError, .invalidCharacter(UInt8(ascii: "!"), offset: 4))
        }
        XCTAssertEqual(Base64URL.encode(expected.lazy.map { $0 }), "Zm9vYmFy")
    }

    func testRejectsEveryByteOutsideTheAlphabetAtItsOffset() {
        let valid = Set(Self.alphabet)
        for byte in UInt8.min...UInt8.max where !valid.contains(byte) {
            for position in 0..<4 {
                var input = Array("QUJD".utf8)
                input[position] = byte
                let later = Array("QUJD".utf8) + input
                assertRejects(input, .invalidCharacter(byte, offset: position), padding: .rejected)
                assertRejects(later, .invalidCharacter(byte, offset: 4 + position), padding: .rejected)
                // With padding accepted a trailing "=" is padding; the padding tests cover "=".
                if byte == UInt8(ascii: "=") { continue }
                assertRejects(input, .invalidCharacter(byte, offset: position))
                assertRejects(later, .invalidCharacter(byte, offset: 4 + position))
                if position < 3 {
                    assertRejects(Array(input[..<3]), .invalidCharacter(byte, offset: position))
                }
            }
        }
    }

    func testReportsTheFirstInvalidByte() {
        assertRejects(Array("QU!D!A".utf8), .invalidCharacter(UInt8(ascii: "!"), offset: 2))
        assertRejects(Array("QUJDQUJD QUJD".utf8), .invalidCharacter(UInt8(ascii: " "), offset: 8))
        assertRejects([0x51, 0x55, 0x4A, 0x44, 0x00, 0x80], .invalidCharacter(0x00, offset: 4))
    }

    func testRejectsImpossibleLengths() {
        assertRejects("A", .impossibleLength)
        assertRejects("QUJDA", .impossibleLength)
        assertRejects("QUJDQUJDQ", .impossibleLength)
        assertRejects("QUJDA", .impossibleLength, padding: .rejected)
        // A bad character is the more useful report, wherever it is.
        assertRejects("!", .invalidCharacter(UInt8(ascii: "!"), offset: 0))
        assertRejects("QU!DA", .invalidCharacter(UInt8(ascii: "!"), offset: 2))
    }

    func testAcceptsOnlyPaddingThatCompletesTheLastGroup() throws {
        XCTAssertEqual(try Base64URL.decode("Zg==".utf8), Array("f".utf8))
        XCTAssertEqual(try Base64URL.decode("Zm8=".utf8), Array("fo".utf8))
        XCTAssertEqual(try Base64URL.decode("Zm9vYg==".utf8), Array("foob".utf8))

        for bad in ["=", "==", "===", "====", "Zg=", "Zg===", "Zg====", "Zm8==", "Zm9v=", "Zm9v==", "Zm9vY==="] {
            assertRejects(bad, .invalidPadding)
        }
        // Padding anywhere but the end is an invalid character.
        assertRejects("Zg==Zg==", .invalidCharacter(UInt8(ascii: "="), offset: 2))
        assertRejects("Z=g=", .invalidCharacter(UInt8(ascii: "="), offset: 1))
    }

    func testPaddingCanBeRefused() {
        assertRejects("Zg==", .invalidCharacter(UInt8(ascii: "="), offset: 2), padding: .rejected)
        assertRejects("Zm8=", .invalidCharacter(UInt8(ascii: "="), offset: 3), padding: .rejected)
        XCTAssertEqual(try Base64URL.decode("Zm8".utf8, padding: .rejected), Array("fo".utf8))
    }

    func testRejectsNonZeroTrailingBits() throws {
        // Two characters carry 12 bits for one byte: the low 4 bits of the second must be zero.
        // Three carry 18 bits for two bytes: the low 2 bits of the third must be zero.
        for (value, character) in Self.alphabet.enumerated() {
            let two = [UInt8(ascii: "Q"), character]
            let three = [UInt8(ascii: "Q"), UInt8(ascii: "U"), character]
            if value & 0x0F == 0 {
                XCTAssertEqual(try Base64URL.decode(two), [0x40 | UInt8(value >> 4)])
            } else {
                assertRejects(two, .nonZeroTrailingBits)
            }
            if value & 0x03 == 0 {
                XCTAssertEqual(try Base64URL.decode(three), [0x41, 0x40 | UInt8(value >> 2)])
            } else {
                assertRejects(three, .nonZeroTrailingBits)
            }
        }
        assertRejects("Zh", .nonZeroTrailingBits)
        assertRejects("Zh==", .nonZeroTrailingBits)
        assertRejects("Zm9", .nonZeroTrailingBits)
    }

    func testEncodesEveryTwoByteValueToATextThatDecodesBack() throws {
        // Exhaustive over all 65 536 two-byte inputs: covers every bit of a partial group.
        for high in UInt8.min...UInt8.max {
            for low in UInt8.min...UInt8.max {
                let encoded = Base64URL.encode([high, low])
                let decoded = try Base64URL.decode(encoded.utf8)
                if decoded != [high, low] {
                    XCTFail("\(high), \(low) -> \(encoded) -> \(decoded)")
                    return
                }
            }
        }
    }

    func testErrorDescriptionsAreDistinctAndNameTheByte() {
        let errors: [Base64URLError] = [
            .invalidCharacter(0x21, offset: 3), .impossibleLength, .invalidPadding, .nonZeroTrailingBits,
        ]
        XCTAssertEqual(Set(errors.map(\.description)).count, errors.count)
        XCTAssertTrue(Base64URLError.invalidCharacter(0x0A, offset: 7).description.contains("0x0A at offset 7"))
        XCTAssertTrue(Base64URLError.invalidCharacter(0xFF, offset: 0).description.contains("0xFF"))
    }

    private func assertRejects(
        _ text: String, _ expected: Base64URLError, padding: Base64URL.Padding = .accepted,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        assertRejects(Array(text.utf8), expected, padding: padding, file: file, line: line)
    }

    /// Checks `decode` and `validate` agree on the rejection.
    private func assertRejects(
        _ input: [UInt8], _ expected: Base64URLError, padding: Base64URL.Padding = .accepted,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        do throws(Base64URLError) {
            let decoded = try Base64URL.decode(input, padding: padding)
            XCTFail("decoded \(input) to \(decoded)", file: file, line: line)
        } catch {
            XCTAssertEqual(error, expected, "decode \(input)", file: file, line: line)
        }
        do throws(Base64URLError) {
            let count = try Base64URL.validate(input, padding: padding)
            XCTFail("validated \(input) as \(count) bytes", file: file, line: line)
        } catch {
            XCTAssertEqual(error, expected, "validate \(input)", file: file, line: line)
        }
    }
}

/// A small seeded generator so that "random" inputs are the same on every run.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
