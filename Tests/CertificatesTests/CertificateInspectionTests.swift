import Certificates
import Foundation
import TestCertificateAuthority
import XCTest

final class CertificateInspectionTests: XCTestCase {
    private static let authority = try! TestCertificateAuthority()
    private var now: Int64 { Int64(Date().timeIntervalSince1970) }

    func testAChainAndItsKeyAreReadWithNamesDatesAndIssuer() throws {
        let issued = try Self.authority.issueServer(domains: ["Portal.Example.test", "*.apps.example.test"], validUntil: Date(timeIntervalSinceNow: 10 * 86400))
        let summary = try CertificateInspection.inspect(chainPEM: issued.chainPEM, keyPEM: issued.keyPEM, now: self.now)
        XCTAssertEqual(summary.names, ["portal.example.test", "*.apps.example.test"])
        XCTAssertEqual(summary.chainLength, 2)
        XCTAssertTrue(summary.subject.contains("CN=Portal.Example.test"), summary.subject)
        XCTAssertTrue(summary.issuer.contains("CN=erp-gateway test CA"), summary.issuer)
        XCTAssertEqual(summary.fingerprint.count, 64)
        XCTAssertEqual(Double(summary.secondsToExpiry(now: self.now)), 10 * 86400, accuracy: 120)
        XCTAssertEqual(Double(summary.notBefore), Date().timeIntervalSince1970 - 3600, accuracy: 120)
    }

    func testRSAKeysAndALeafAloneAreAccepted() throws {
        let issued = try Self.authority.issueServer(domains: ["rsa.example.test"], key: .rsa2048)
        XCTAssertEqual(try CertificateInspection.inspect(chainPEM: issued.certificatePEM, keyPEM: issued.keyPEM, now: self.now).chainLength, 1)
    }

    func testEachProblemIsNamed() throws {
        let issued = try Self.authority.issueServer(domains: ["portal.example.test"])
        let other = try Self.authority.unrelatedKey()
        XCTAssertThrowsProblem(try CertificateInspection.inspect(chainPEM: "", keyPEM: issued.keyPEM, now: self.now), .noCertificate)
        XCTAssertThrowsProblem(try CertificateInspection.inspect(chainPEM: issued.chainPEM, keyPEM: "nonsense", now: self.now), .unreadableKey)
        XCTAssertThrowsProblem(try CertificateInspection.inspect(chainPEM: issued.chainPEM, keyPEM: other.pem, now: self.now), .keyDoesNotMatch)
        // The outer SEQUENCE's tag and length zeroed: no DER left to read.
        let broken = issued.certificatePEM.replacingOccurrences(of: "-----BEGIN CERTIFICATE-----\nMII", with: "-----BEGIN CERTIFICATE-----\nAAA")
        XCTAssertThrowsProblem(try CertificateInspection.inspect(chainPEM: broken, keyPEM: issued.keyPEM, now: self.now), .unreadableCertificate(position: 0))
        // The CA first, then the leaf: the key matches neither order's expectation.
        let reversed = Self.authority.certificatePEM + issued.certificatePEM
        XCTAssertThrowsProblem(try CertificateInspection.inspect(chainPEM: reversed, keyPEM: issued.keyPEM, now: self.now), .keyDoesNotMatch)
        // The leaf followed by a certificate that did not issue it.
        let stranger = try TestCertificateAuthority(commonName: "another CA")
        let misordered = issued.certificatePEM + stranger.certificatePEM
        XCTAssertThrowsProblem(try CertificateInspection.inspect(chainPEM: misordered, keyPEM: issued.keyPEM, now: self.now), .chainOutOfOrder(position: 0))

        let expired = try Self.authority.issueServer(domains: ["old.example.test"], validFrom: Date(timeIntervalSinceNow: -30 * 86400), validUntil: Date(timeIntervalSinceNow: -60))
        guard case .expired = self.problem(try CertificateInspection.inspect(chainPEM: expired.chainPEM, keyPEM: expired.keyPEM, now: self.now)) else {
            return XCTFail("an expired certificate was accepted")
        }
        let future = try Self.authority.issueServer(domains: ["new.example.test"], validFrom: Date(timeIntervalSinceNow: 86400), validUntil: Date(timeIntervalSinceNow: 9 * 86400))
        guard case .notYetValid = self.problem(try CertificateInspection.inspect(chainPEM: future.chainPEM, keyPEM: future.keyPEM, now: self.now)) else {
            return XCTFail("a certificate not yet valid was accepted")
        }
        XCTAssertThrowsProblem(
            try CertificateInspection.check(chainPEM: issued.chainPEM, keyPEM: issued.keyPEM, covering: ["Shop.Example.test"], now: self.now),
            .doesNotCover(domain: "shop.example.test", names: ["portal.example.test"])
        )
        XCTAssertEqual(CertificateProblem.keyDoesNotMatch.field, "key")
        XCTAssertEqual(CertificateProblem.noCertificate.field, "certificate")
    }

    func testWildcardsCoverOneLeftmostLabel() throws {
        let summary = CertificateSummary(names: ["*.apps.example.test", "portal.example.test", "*.test"], subject: "", issuer: "", notBefore: 0, notAfter: 1, chainLength: 1, fingerprint: "")
        XCTAssertTrue(summary.covers("a.apps.example.test"))
        XCTAssertTrue(summary.covers("PORTAL.example.test"))
        XCTAssertFalse(summary.covers("apps.example.test"))
        XCTAssertFalse(summary.covers("a.b.apps.example.test"))
        XCTAssertFalse(summary.covers(".apps.example.test"))
        XCTAssertFalse(summary.covers("example.test"), "a wildcard over one label covers nothing")
        XCTAssertFalse(summary.covers("shop.example.test"))
    }

    private func problem(_ body: @autoclosure () throws -> CertificateSummary) -> CertificateProblem? {
        do {
            _ = try body()
            return nil
        } catch let problem as CertificateProblem {
            return problem
        } catch {
            return nil
        }
    }

    private func XCTAssertThrowsProblem(
        _ body: @autoclosure () throws -> CertificateSummary, _ expected: CertificateProblem, file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertEqual(self.problem(try body()), expected, file: file, line: line)
    }
}

final class KeyEncryptionKeyTests: XCTestCase {
    func testASealedKeyOpensOnlyUnderTheSameKeyAndContext() throws {
        let key = try KeyEncryptionKey(fileContents: Array("\(Data(repeating: 7, count: 32).base64EncodedString())\n".utf8))
        let secret = Array("-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----\n".utf8)
        let sealed = key.seal(secret, context: "portal.example.test|p-1")
        XCTAssertFalse(sealed.contains("PRIVATE"))
        XCTAssertNotEqual(sealed, key.seal(secret, context: "portal.example.test|p-1"), "a fresh nonce per seal")
        XCTAssertEqual(try key.open(sealed, context: "portal.example.test|p-1"), secret)
        XCTAssertThrowsError(try key.open(sealed, context: "other.example.test|p-1")) { XCTAssertEqual($0 as? KeyEncryptionKey.OpenFailure, .tampered) }

        var bytes = Array(Data(base64Encoded: String(sealed.split(separator: ".")[2]))!)
        bytes[14] ^= 1
        let flipped = "aes256gcm.\(key.identifier).\(Data(bytes).base64EncodedString())"
        XCTAssertThrowsError(try key.open(flipped, context: "portal.example.test|p-1")) { XCTAssertEqual($0 as? KeyEncryptionKey.OpenFailure, .tampered) }

        let other = try KeyEncryptionKey(fileContents: Array(String(repeating: "ab", count: 32).utf8))
        XCTAssertNotEqual(other.identifier, key.identifier)
        XCTAssertThrowsError(try other.open(sealed, context: "portal.example.test|p-1")) {
            XCTAssertEqual($0 as? KeyEncryptionKey.OpenFailure, .otherKey(key.identifier))
        }
        XCTAssertThrowsError(try key.open("plain text", context: "")) { XCTAssertEqual($0 as? KeyEncryptionKey.OpenFailure, .malformed) }
    }

    func testTheKeyFileIsThirtyTwoBytesRawBase64OrHex() throws {
        let raw = [UInt8](repeating: 0xAB, count: 32)
        XCTAssertEqual(try KeyEncryptionKey(fileContents: raw).identifier, try KeyEncryptionKey(fileContents: Array(String(repeating: "ab", count: 32).utf8)).identifier)
        XCTAssertEqual(try KeyEncryptionKey(fileContents: raw).identifier, try KeyEncryptionKey(fileContents: Array(Data(raw).base64EncodedString().utf8)).identifier)
        XCTAssertThrowsError(try KeyEncryptionKey(fileContents: Array("short".utf8))) { XCTAssertEqual($0 as? KeyEncryptionKey.Problem, .wrongLength(5)) }
    }
}
