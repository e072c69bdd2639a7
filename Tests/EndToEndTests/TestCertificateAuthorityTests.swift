import Foundation
import TestCertificateAuthority
import XCTest

/// The test CA itself: what it issues verifies against it, with the names and dates asked for.
final class TestCertificateAuthorityTests: XCTestCase {
    func testIssuedChainsVerifyAndCarryTheirNamesAndDates() throws {
        let authority = try TestCertificateAuthority()
        let server = try authority.issueServer(domains: ["portal.example.test", "*.apps.example.test"])
        XCTAssertTrue(try openssl(["verify", "-CAfile", authority.certificatePath, server.certificatePath]).contains("OK"))
        let text = try openssl(["x509", "-in", server.certificatePath, "-noout", "-ext", "subjectAltName"])
        XCTAssertTrue(text.contains("DNS:portal.example.test") && text.contains("DNS:*.apps.example.test"), text)

        let expired = try authority.issueServer(
            domains: ["old.example.test"], validFrom: Date(timeIntervalSinceNow: -20 * 86400), validUntil: Date(timeIntervalSinceNow: -86400)
        )
        XCTAssertTrue(try openssl(["verify", "-CAfile", authority.certificatePath, expired.certificatePath], mayFail: true).contains("expired"))
        let client = try authority.issueClient(commonName: "gateway")
        XCTAssertTrue(try openssl(["verify", "-CAfile", authority.certificatePath, "-purpose", "sslclient", client.certificatePath]).contains("OK"))
        XCTAssertEqual(server.chainPEM.components(separatedBy: "BEGIN CERTIFICATE").count - 1, 2)
    }

    private func openssl(_ arguments: [String], mayFail: Bool = false) throws -> String {
        let (status, output) = try TestCertificateAuthority.openssl(arguments)
        if !mayFail { XCTAssertEqual(status, 0, output) }
        return output
    }
}
