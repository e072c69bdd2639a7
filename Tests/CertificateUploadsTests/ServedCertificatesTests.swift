import CertificateUploads
import Certificates
import Hierarchy
import TestCertificateAuthority
import XCTest

/// Which stored certificates a node serves, as values: owned by their node in the tree, and a
/// key that opens with the node's key-encryption key under the record's own domain and node.
final class ServedCertificatesTests: XCTestCase {
    static let authority = try! TestCertificateAuthority()
    static let p1 = try! authority.issueServer(domains: ["portal.p1.test"])
    static let p2 = try! authority.issueServer(domains: ["portal.p2.test"])

    func testARecordOwnedByItsNodeIsServedWithItsKeyOpened() throws {
        let kek = try CertificateFixtures.keyEncryptionKey()
        let record = try CertificateFixtures.record(Self.p1, domain: "portal.p1.test", node: "p1", with: kek)
        let selection = ServedCertificates.select([record], tree: try CertificateFixtures.tree(), keyEncryptionKey: kek)
        XCTAssertEqual(selection.skipped, [])
        XCTAssertEqual(selection.served.map(\.domain), ["portal.p1.test"])
        XCTAssertEqual(selection.served.first?.keyPEM, Self.p1.keyPEM)
        XCTAssertEqual(selection.served.first?.chainPEM, Self.p1.chainPEM)
        XCTAssertEqual(selection.served.first?.summary, record.summary)
    }

    func testADomainRemovedFromItsNodeOrMovedToAnotherIsNotServed() throws {
        let kek = try CertificateFixtures.keyEncryptionKey()
        let record = try CertificateFixtures.record(Self.p1, domain: "portal.p1.test", node: "p1", with: kek)
        let removed = try CertificateFixtures.tree(CertificateFixtures.treeYAML.replacingOccurrences(of: ", portalDomains: [portal.p1.test]", with: ""))
        let moved = try CertificateFixtures.tree(
            CertificateFixtures.treeYAML.replacingOccurrences(of: ", portalDomains: [portal.p1.test]", with: "")
                .replacingOccurrences(of: "[portal.p2.test]", with: "[portal.p2.test, portal.p1.test]")
        )
        for tree in [removed, moved] {
            XCTAssertFalse(ServedCertificates.isOwned(record, in: tree))
            let selection = ServedCertificates.select([record], tree: tree, keyEncryptionKey: kek)
            XCTAssertEqual(selection.served, [])
            XCTAssertEqual(selection.skipped.map(\.reason), [.notOwned])
        }
        XCTAssertTrue(ServedCertificates.isOwned(record, in: try CertificateFixtures.tree()))
        XCTAssertFalse(ServedCertificates.isOwned(record, in: nil), "no tree, no owner")
    }

    func testAKeySealedUnderAnotherKeyEncryptionKeyIsSkippedNotFatal() throws {
        let (old, new) = (try CertificateFixtures.keyEncryptionKey(), try CertificateFixtures.keyEncryptionKey())
        let sealedBefore = try CertificateFixtures.record(Self.p1, domain: "portal.p1.test", node: "p1", with: old)
        let sealedAfter = try CertificateFixtures.record(Self.p2, domain: "portal.p2.test", node: "p2", with: new)
        let selection = ServedCertificates.select([sealedBefore, sealedAfter], tree: try CertificateFixtures.tree(), keyEncryptionKey: new)
        XCTAssertEqual(selection.served.map(\.domain), ["portal.p2.test"])
        XCTAssertEqual(selection.skipped.map(\.domain), ["portal.p1.test"])
        XCTAssertEqual(selection.skipped.first?.reason, .keyDoesNotOpen(.otherKey(old.identifier)))
        XCTAssertEqual(
            ServedCertificates.select([sealedAfter], tree: try CertificateFixtures.tree(), keyEncryptionKey: nil).skipped.map(\.reason),
            [.noKeyEncryptionKey]
        )
    }

    func testASealedKeyIsBoundToItsDomainAndNode() throws {
        let kek = try CertificateFixtures.keyEncryptionKey()
        let p1 = try CertificateFixtures.record(Self.p1, domain: "portal.p1.test", node: "p1", with: kek)
        var p2 = try CertificateFixtures.record(Self.p2, domain: "portal.p2.test", node: "p2", with: kek)
        // p1's sealed key copied into p2's record, or the record moved to another node.
        p2.sealedKey = p1.sealedKey
        var moved = p1
        moved.node = "c1"
        XCTAssertThrowsError(try p2.openKey(with: kek)) { XCTAssertEqual($0 as? KeyEncryptionKey.OpenFailure, .tampered) }
        XCTAssertThrowsError(try moved.openKey(with: kek)) { XCTAssertEqual($0 as? KeyEncryptionKey.OpenFailure, .tampered) }
        XCTAssertEqual(try p1.openKey(with: kek), Self.p1.keyPEM)
        let selection = ServedCertificates.select([p1, p2], tree: try CertificateFixtures.tree(), keyEncryptionKey: kek)
        XCTAssertEqual(selection.served.map(\.domain), ["portal.p1.test"])
        XCTAssertEqual(selection.skipped.map(\.reason), [.keyDoesNotOpen(.tampered)])
    }

    func testTheStoredTextReadsBackAndNothingPrintsAKey() throws {
        let kek = try CertificateFixtures.keyEncryptionKey()
        let record = try CertificateFixtures.record(Self.p1, domain: "portal.p1.test", node: "p1", with: kek, version: 7)
        XCTAssertEqual(StoredCertificate(storedText: record.storedText), record)
        XCTAssertFalse(record.storedText.contains("PRIVATE KEY"), "the key is stored sealed only")
        XCTAssertNil(StoredCertificate(storedText: "{\"domain\":\"x\"}"))
        let served = try XCTUnwrap(ServedCertificates.select([record], tree: try CertificateFixtures.tree(), keyEncryptionKey: kek).served.first)
        for text in ["\(record)", String(reflecting: record), "\(served)", String(reflecting: served), "\([served])"] {
            XCTAssertFalse(text.contains(record.sealedKey), text)
            XCTAssertFalse(text.contains("PRIVATE KEY"), text)
            XCTAssertTrue(text.contains(record.summary.fingerprint), text)
        }
    }
}
