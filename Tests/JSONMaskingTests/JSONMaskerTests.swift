import JSONMasking
import XCTest

final class JSONMaskerTests: XCTestCase {
    private func mask(_ json: String, names: [String] = [], pointers: [String] = []) throws -> String {
        let mask = try FieldMask(names: names, pointers: pointers, passesNonJSON: false)
        return String(decoding: try JSONMasker.masked(Array(json.utf8), mask: mask).bytes, as: UTF8.self)
    }

    func testAFieldNameIsMaskedAtEveryDepthAndInArrays() throws {
        let json = #"{"salary":1,"team":{"lead":{"salary":2.5,"name":"a"}},"list":[{"salary":"x"},{"other":3}]}"#
        XCTAssertEqual(
            try self.mask(json, names: ["salary"]),
            #"{"salary":null,"team":{"lead":{"salary":null,"name":"a"}},"list":[{"salary":"***"},{"other":3}]}"#
        )
    }

    func testStringsBecomeStarsEverythingElseNull() throws {
        let json = #"{"a":"text","b":12,"c":true,"d":null,"e":{"x":1},"f":[1,2]}"#
        XCTAssertEqual(
            try self.mask(json, names: ["a", "b", "c", "d", "e", "f"]),
            #"{"a":"***","b":null,"c":null,"d":null,"e":null,"f":null}"#
        )
    }

    func testPointersWithWildcardsOverArraysAndObjects() throws {
        let json = #"{"employees":[{"name":"a","salary":1,"bank":{"iban":"DE1"}},{"name":"b","salary":2,"bank":{"iban":"DE2"}}],"by":{"x":{"pin":1},"y":{"pin":2}},"salary":9}"#
        XCTAssertEqual(
            try self.mask(json, pointers: ["/employees/*/salary", "/employees/1/bank/iban", "/by/*/pin"]),
            #"{"employees":[{"name":"a","salary":null,"bank":{"iban":"DE1"}},{"name":"b","salary":null,"bank":{"iban":"***"}}],"by":{"x":{"pin":null},"y":{"pin":null}},"salary":9}"#
        )
    }

    func testAPointerTakesItsEscapesAndAMemberNameItsJSONEscapes() throws {
        XCTAssertEqual(try self.mask(#"{"a/b":1,"c~d":2,"e":3}"#, pointers: ["/a~1b", "/c~0d"]), #"{"a/b":null,"c~d":null,"e":3}"#)
        // A backend spelling a name with escapes is read as its client would read it.
        XCTAssertEqual(try self.mask(#"{"sal\u0061ry":5,"x":{"sal\u0061ry":"s"}}"#, names: ["salary"], pointers: ["/x/salary"]), #"{"sal\u0061ry":null,"x":{"sal\u0061ry":"***"}}"#)
    }

    func testEverythingNotMaskedIsCopiedAsWritten() throws {
        let json = " {\n  \"n\": 1.10,\n  \"big\": 18446744073709551616,\n  \"s\": \"caf\\u00e9 \\\"q\\\"\",\n  \"secret\" : [ 1 , 2 ]\n}\n"
        XCTAssertEqual(
            try self.mask(json, names: ["secret"]),
            " {\n  \"n\": 1.10,\n  \"big\": 18446744073709551616,\n  \"s\": \"caf\\u00e9 \\\"q\\\"\",\n  \"secret\" : null\n}\n"
        )
    }

    func testNothingInsideAMaskedValueIsReplacedTwice() throws {
        XCTAssertEqual(try self.mask(#"{"secret":{"secret":1,"a":[{"secret":2}]}}"#, names: ["secret"], pointers: ["/secret/a"]), #"{"secret":null}"#)
    }

    func testATopLevelArrayAndEveryTopLevelMember() throws {
        XCTAssertEqual(try self.mask(#"[{"a":1},{"a":2,"b":3}]"#, pointers: ["/*/a"]), #"[{"a":null},{"a":null,"b":3}]"#)
        XCTAssertEqual(try self.mask(#"{"a":1,"b":"x"}"#, pointers: ["/*"]), #"{"a":null,"b":"***"}"#)
    }

    func testInvalidDocumentsAreRefused() {
        let mask = try! FieldMask(names: ["a"], pointers: [], passesNonJSON: false)
        for text in [#"{"a":1"#, #"{"a":01}"#, #"{"a":1} x"#, "{\"a\":\"\u{01}\"}", #"{"a":"\q"}"#, #"{a:1}"#, #"[1,]"#, "", #"{"a":tru}"#, #"{"a":-}"#, #"{"a":1.}"#] {
            XCTAssertThrowsError(try JSONMasker.masked(Array(text.utf8), mask: mask), text)
        }
        let deep = String(repeating: "[", count: JSONMasker.maxDepth + 1) + String(repeating: "]", count: JSONMasker.maxDepth + 1)
        XCTAssertThrowsError(try JSONMasker.masked(Array(deep.utf8), mask: mask)) { XCTAssertEqual($0 as? JSONMasker.Failure, .tooDeep) }
        let fine = String(repeating: "[", count: JSONMasker.maxDepth) + String(repeating: "]", count: JSONMasker.maxDepth)
        XCTAssertNoThrow(try JSONMasker.masked(Array(fine.utf8), mask: mask))
    }

    func testPointerSyntax() {
        XCTAssertThrowsError(try FieldMask(names: [], pointers: ["salary"], passesNonJSON: false)) { XCTAssertEqual($0 as? FieldMask.PointerProblem, .notAPointer) }
        XCTAssertThrowsError(try FieldMask(names: [], pointers: [""], passesNonJSON: false)) { XCTAssertEqual($0 as? FieldMask.PointerProblem, .wholeDocument) }
        XCTAssertThrowsError(try FieldMask(names: [], pointers: ["/a~2"], passesNonJSON: false)) { XCTAssertEqual($0 as? FieldMask.PointerProblem, .badEscape) }
        XCTAssertEqual(try FieldMask.segments(of: "/employees/*/a~1b/~0"), ["employees", nil, "a/b", "~"])
    }

    func testAnEmptyMaskChangesNothingAndTwoEqualMasksAreEqual() throws {
        XCTAssertTrue(FieldMask.none.isEmpty)
        let json = #"{"a":[1,{"b":2}]}"#
        XCTAssertEqual(String(decoding: try JSONMasker.masked(Array(json.utf8), mask: .none).bytes, as: UTF8.self), json)
        XCTAssertEqual(try FieldMask(names: ["x"], pointers: ["/a/*", "/b"], passesNonJSON: false), try FieldMask(names: ["x"], pointers: ["/b", "/a/*"], passesNonJSON: false))
    }
}
