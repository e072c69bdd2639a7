import XCTest
@testable import Hierarchy

final class NodePathTests: XCTestCase {
    func testKindDepthAndLeafFollowTheNumberOfIDs() throws {
        let oem = NodePath(oem: try id("acme"))
        let partner = NodePath(oem: try id("acme"), partner: try id("northwind"))
        let customer = NodePath(oem: try id("acme"), partner: try id("northwind"), customer: try id("contoso"))

        XCTAssertEqual([oem.kind, partner.kind, customer.kind], [.oem, .partner, .customer])
        XCTAssertEqual([oem.depth, partner.depth, customer.depth], [1, 2, 3])
        XCTAssertEqual([oem.leaf, partner.leaf, customer.leaf].map(\.rawValue), ["acme", "northwind", "contoso"])
        XCTAssertEqual(customer.oem.rawValue, "acme")
        XCTAssertEqual(customer.partner?.rawValue, "northwind")
        XCTAssertEqual(customer.customer?.rawValue, "contoso")
        XCTAssertNil(partner.customer)
        XCTAssertNil(oem.partner)
        XCTAssertEqual(customer.ids.map(\.rawValue), ["acme", "northwind", "contoso"])
        XCTAssertEqual(oem.ids.map(\.rawValue), ["acme"])
    }

    func testAPathContainsExactlyItsIDs() throws {
        let paths = [
            NodePath(oem: try id("acme")), NodePath(oem: try id("acme"), partner: try id("northwind")),
            NodePath(oem: try id("acme"), partner: try id("northwind"), customer: try id("contoso")),
        ]
        for path in paths {
            for name in ["acme", "northwind", "contoso", "other"] {
                XCTAssertEqual(path.contains(try id(name)), path.ids.contains(try id(name)), "\(path) \(name)")
            }
        }
    }

    func testNodeKindDepthAndRawValues() {
        XCTAssertEqual(NodeKind.allCases.map(\.depth), [1, 2, 3])
        XCTAssertEqual(NodeKind.allCases.map(\.rawValue), ["oem", "partner", "customer"])
        XCTAssertEqual(NodeKind(rawValue: "partner"), .partner)
        XCTAssertNil(NodeKind(rawValue: "platform"))
    }

    func testDescriptionJoinsIDsWithSlashes() throws {
        XCTAssertEqual(try path("acme").description, "acme")
        XCTAssertEqual(try path("acme/northwind").description, "acme/northwind")
        XCTAssertEqual(try path("acme/northwind/contoso").description, "acme/northwind/contoso")
    }

    func testParsingRoundTripsTheDescription() throws {
        for text in ["direct", "acme/northwind", "acme/northwind/contoso", "a/a/a"] {
            let parsed = try NodePath(parsing: text)
            XCTAssertEqual(parsed.description, text)
            XCTAssertEqual(try NodePath(parsing: parsed.description), parsed)
        }
        XCTAssertEqual(try path("a/a/a").kind, .customer)
    }

    func testParsingRejectsMalformedPathsWithTheSegmentIndex() {
        assertRejects("", .empty)
        assertRejects("a/b/c/d", .tooDeep)
        assertRejects("a/b/c/", .tooDeep)
        assertRejects("/a", .invalidSegment(index: 0, .empty))
        assertRejects("/", .invalidSegment(index: 0, .empty))
        assertRejects("a/", .invalidSegment(index: 1, .empty))
        assertRejects("a//b", .invalidSegment(index: 1, .empty))
        assertRejects("acme/North", .invalidSegment(index: 1, .invalidCharacter("N", offset: 0)))
        assertRejects("acme/n/c-", .invalidSegment(index: 2, .trailingHyphen))
        assertRejects(" acme", .invalidSegment(index: 0, .invalidCharacter(" ", offset: 0)))
        assertRejects("acme\\b", .invalidSegment(index: 0, .invalidCharacter("\\", offset: 4)))
    }

    func testParsingStopsAtTheFourthSegment() {
        // The fifth segment is invalid, but the path is refused for its depth first.
        assertRejects(String(repeating: "a/", count: 10_000) + "B", .tooDeep)
    }

    func testPathErrorDescriptionNamesTheSegment() {
        let description = NodePathError.invalidSegment(index: 2, .trailingHyphen).description
        XCTAssertTrue(description.contains("segment 2"), description)
        XCTAssertTrue(description.contains(NodeIDError.trailingHyphen.description), description)
        XCTAssertNotEqual(NodePathError.empty.description, NodePathError.tooDeep.description)
    }

    func testInitFromIDsAcceptsOneToThree() throws {
        let ids = try ["acme", "northwind", "contoso", "extra"].map(id)
        XCTAssertNil(NodePath([NodeID]()))
        XCTAssertEqual(NodePath(ids.prefix(1)), try path("acme"))
        XCTAssertEqual(NodePath(ids.prefix(2)), try path("acme/northwind"))
        XCTAssertEqual(NodePath(ids.prefix(3)), try path("acme/northwind/contoso"))
        XCTAssertNil(NodePath(ids))
    }

    func testParentAndAncestorsAreOrderedFromTheOEM() throws {
        let customer = try path("acme/northwind/contoso")
        XCTAssertEqual(customer.parent, try path("acme/northwind"))
        XCTAssertEqual(customer.parent?.parent, try path("acme"))
        XCTAssertNil(try path("acme").parent)

        XCTAssertEqual(customer.ancestors, [try path("acme"), try path("acme/northwind")])
        XCTAssertEqual(try path("acme/northwind").ancestors, [try path("acme")])
        XCTAssertEqual(try path("acme").ancestors, [])
    }

    func testAppendingDescendsOneLevelAndStopsAtCustomers() throws {
        let child = try id("child")
        XCTAssertEqual(try path("acme").appending(child), try path("acme/child"))
        XCTAssertEqual(try path("acme/northwind").appending(child), try path("acme/northwind/child"))
        XCTAssertNil(try path("acme/northwind/contoso").appending(child))
    }

    func testContainsIsTheSubtreeTest() throws {
        let acme = try path("acme")
        let northwind = try path("acme/northwind")
        let contoso = try path("acme/northwind/contoso")

        XCTAssertTrue(acme.contains(acme))
        XCTAssertTrue(acme.contains(northwind))
        XCTAssertTrue(acme.contains(contoso))
        XCTAssertTrue(northwind.contains(northwind))
        XCTAssertTrue(northwind.contains(contoso))
        XCTAssertTrue(contoso.contains(contoso))

        XCTAssertFalse(northwind.contains(acme))
        XCTAssertFalse(contoso.contains(northwind))
        XCTAssertFalse(contoso.contains(acme))
    }

    func testContainsComparesEveryLevelNotJustTheLeaf() throws {
        // Same partner id under another OEM, and the same customer id under a sibling partner.
        XCTAssertFalse(try path("acme/northwind").contains(path("globex/northwind")))
        XCTAssertFalse(try path("acme/northwind").contains(path("globex/northwind/contoso")))
        XCTAssertFalse(try path("acme/northwind").contains(path("acme/fabrikam/contoso")))
        XCTAssertFalse(try path("acme/northwind/contoso").contains(path("acme/fabrikam/contoso")))
        XCTAssertFalse(try path("acme").contains(path("globex")))
        // A prefix of the text is not a prefix of the path.
        XCTAssertFalse(try path("acme").contains(path("acme-eu/northwind")))
    }

    func testIsAncestorIsStrict() throws {
        let acme = try path("acme")
        let northwind = try path("acme/northwind")
        let contoso = try path("acme/northwind/contoso")

        XCTAssertTrue(acme.isAncestor(of: northwind))
        XCTAssertTrue(acme.isAncestor(of: contoso))
        XCTAssertTrue(northwind.isAncestor(of: contoso))
        XCTAssertFalse(acme.isAncestor(of: acme))
        XCTAssertFalse(contoso.isAncestor(of: contoso))
        XCTAssertFalse(contoso.isAncestor(of: northwind))
        XCTAssertFalse(try path("globex").isAncestor(of: contoso))
        for ancestor in contoso.ancestors {
            XCTAssertTrue(ancestor.isAncestor(of: contoso), "\(ancestor)")
        }
    }

    func testEqualityDistinguishesLevels() throws {
        let paths: Set<NodePath> = try [path("a"), path("a/a"), path("a/a/a"), path("a/a")]
        XCTAssertEqual(paths.count, 3)
        XCTAssertNotEqual(try path("a/b"), try path("b/a"))
    }

    private func id(_ text: String) throws -> NodeID { try NodeID(text) }

    private func path(_ text: String) throws -> NodePath { try NodePath(parsing: text) }

    private func assertRejects(
        _ text: String, _ expected: NodePathError, file: StaticString = #filePath, line: UInt = #line
    ) {
        do throws(NodePathError) {
            let path = try NodePath(parsing: text)
            XCTFail("accepted \(path)", file: file, line: line)
        } catch {
            XCTAssertEqual(error, expected, file: file, line: line)
        }
    }
}
