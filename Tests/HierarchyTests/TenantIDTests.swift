import XCTest
@testable import Hierarchy

final class NodeIDTests: XCTestCase {
    func testAcceptsValidIDs() throws {
        let valid = ["a", "z", "acme", "direct", "a1", "a-b", "a-1-b", "n0rthwind-eu-2", String(repeating: "x", count: 63)]
        for text in valid {
            let id = try NodeID(text)
            XCTAssertEqual(id.rawValue, text)
            XCTAssertEqual(id.description, text)
        }
    }

    func testAcceptsSubstrings() throws {
        let header = "tenant=contoso;x"
        let value = header.split(separator: "=")[1].split(separator: ";")[0]
        XCTAssertEqual(try NodeID(value).rawValue, "contoso")
    }

    func testRejectsEmpty() {
        assertRejects("", .empty)
    }

    func testRejectsTooLongByByteCount() {
        assertRejects(String(repeating: "a", count: 64), .tooLong(length: 64))
        assertRejects(String(repeating: "a", count: 100_000), .tooLong(length: 100_000))
        // 32 two-byte characters are 64 bytes: too long before the characters are looked at.
        assertRejects(String(repeating: "é", count: 32), .tooLong(length: 64))
    }

    func testRejectsCharactersOutsideTheAlphabetWithTheirOffset() {
        assertRejects("Acme", .invalidCharacter("A", offset: 0))
        assertRejects("acMe", .invalidCharacter("M", offset: 2))
        assertRejects("ac_me", .invalidCharacter("_", offset: 2))
        assertRejects("a.b", .invalidCharacter(".", offset: 1))
        assertRejects("a/b", .invalidCharacter("/", offset: 1))
        assertRejects("a b", .invalidCharacter(" ", offset: 1))
        assertRejects("ab\n", .invalidCharacter("\n", offset: 2))
        assertRejects("a\0", .invalidCharacter("\0", offset: 1))
        assertRejects("acmé", .invalidCharacter("é", offset: 3))
        // Offsets count characters, so a multi-scalar character is one step.
        assertRejects("ae\u{301}x", .invalidCharacter("e\u{301}", offset: 1))
        assertRejects("a\r\nb", .invalidCharacter("\r\n", offset: 1))
        assertRejects("a🙂", .invalidCharacter("🙂", offset: 1))
    }

    func testEveryASCIICharacterIsClassifiedAsSpecified() {
        for byte in UInt8(0)...UInt8(127) {
            let character = Character(Unicode.Scalar(byte))
            let allowed = ("a"..."z").contains(character) || ("0"..."9").contains(character) || character == "-"
            let text = "a\(character)b"
            if allowed {
                XCTAssertNoThrow(try NodeID(text), "byte \(byte)")
            } else {
                assertRejects(text, .invalidCharacter(character, offset: 1))
            }
        }
    }

    func testRejectsIDsNotStartingWithALetter() {
        assertRejects("1acme", .mustStartWithLetter)
        assertRejects("0", .mustStartWithLetter)
        assertRejects("-acme", .mustStartWithLetter)
        assertRejects("-", .mustStartWithLetter)
    }

    func testRejectsTrailingHyphen() {
        assertRejects("a-", .trailingHyphen)
        assertRejects("acme-eu-", .trailingHyphen)
    }

    func testRejectsDoubleHyphen() {
        assertRejects("a--b", .doubleHyphen)
        assertRejects("xn--acme", .doubleHyphen)
        assertRejects("a---", .doubleHyphen)
    }

    func testReportsTheFirstProblemInReadingOrder() {
        assertRejects("a--B", .doubleHyphen)
        assertRejects("aB--", .invalidCharacter("B", offset: 1))
        assertRejects("-A", .mustStartWithLetter)
        assertRejects("A-", .invalidCharacter("A", offset: 0))
        assertRejects("ab-C-", .invalidCharacter("C", offset: 3))
    }

    func testRawRepresentableIsFailable() {
        XCTAssertEqual(NodeID(rawValue: "acme")?.rawValue, "acme")
        XCTAssertNil(NodeID(rawValue: "Acme"))
        XCTAssertNil(NodeID(rawValue: ""))
    }

    func testOrdersByBytes() throws {
        let ids = try ["b", "a1", "a-b", "a", "ab"].map { try NodeID($0) }
        XCTAssertEqual(ids.sorted().map(\.rawValue), ["a", "a-b", "a1", "ab", "b"])
        XCTAssertFalse(try NodeID("a") < NodeID("a"))
    }

    func testEqualityAndHashingFollowTheText() throws {
        let set: Set<NodeID> = try [NodeID("acme"), NodeID("acme"), NodeID("globex")]
        XCTAssertEqual(set.count, 2)
        XCTAssertTrue(set.contains(try NodeID("acme")))
    }

    func testErrorDescriptionsAreDistinctAndSayWhatIsWrong() {
        let errors: [NodeIDError] = [
            .empty, .tooLong(length: 64), .invalidCharacter("A", offset: 0),
            .mustStartWithLetter, .trailingHyphen, .doubleHyphen,
        ]
        XCTAssertEqual(Set(errors.map(\.description)).count, errors.count)
        XCTAssertTrue(NodeIDError.tooLong(length: 70).description.contains("70"))
        XCTAssertTrue(NodeIDError.tooLong(length: 70).description.contains("63"))
        let invalid = NodeIDError.invalidCharacter("A", offset: 5).description
        XCTAssertTrue(invalid.contains("'A'"), invalid)
        XCTAssertTrue(invalid.contains("offset 5"), invalid)
    }

    func testErrorDescriptionEscapesTheOffendingCharacter() {
        for character: Character in ["\n", "\u{7}", "\u{1B}", "'", "\r\n"] {
            let description = NodeIDError.invalidCharacter(character, offset: 0).description
            XCTAssertTrue(description.unicodeScalars.allSatisfy { $0.isASCII && $0.value >= 0x20 && $0.value != 0x7F }, description)
        }
        XCTAssertTrue(NodeIDError.invalidCharacter("\n", offset: 0).description.contains("'\\n'"))
        XCTAssertTrue(NodeIDError.invalidCharacter("é", offset: 0).description.contains("'\\u{00E9}'"))
    }

    private func assertRejects(
        _ text: String, _ expected: NodeIDError, file: StaticString = #filePath, line: UInt = #line
    ) {
        do throws(NodeIDError) {
            let id = try NodeID(text)
            XCTFail("accepted \(id)", file: file, line: line)
        } catch {
            XCTAssertEqual(error, expected, file: file, line: line)
        }
    }
}
