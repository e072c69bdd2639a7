import TokenAuth
import XCTest
@testable import GatewayConfig
@testable import ProxyEngine

final class ContextSignerTests: XCTestCase {
    private static let key = GatewaySettings.UpstreamContext.SigningKey(id: "ctx-1", secret: Array("a secret of thirty-two bytes....".utf8))

    /// Message by message, the keyed context gives what the one-shot HMAC over the canonical
    /// text gives (RFC 4231's construction, as docs/backend-contract.md tells backends to check).
    func testTheKeyedSignerAgreesWithTheOneShotHMAC() {
        let signer = ContextSigner(key: Self.key)
        // Lines gathered on the stack, beyond its room too: a text that fills it exactly, one
        // that ends a byte short of it (its newline fills it), lines longer than it.
        let room = ContextSigner.textCapacity
        let long: [[String]] = [
            [String(repeating: "a", count: room - 1)], [String(repeating: "b", count: room - 2), "c"], [String(repeating: "d", count: room)],
            [String(repeating: "e", count: room + 1), "f"], (0..<300).map { "line \($0)" }, ["g", String(repeating: "h", count: 3 * room), "i"],
        ]
        for message in [["v1", "GET", "/v1/ledger/7", "c1", "p1", "acme"], [""], ["é", String(repeating: "x", count: 300)], []] + long {
            let text = message.map { $0 + "\n" }.joined()
            let expected = UpstreamContext.hmacSHA256(key: Self.key.secret, message: Array(text.utf8))
            XCTAssertEqual(signer.signature { line in message.forEach(line) }, expected, "\(message.map(\.count))")
            XCTAssertEqual(expected.count, 32)
        }
    }

    /// The signature field's value is the documented `v1;key=<id>;sig=<base64url MAC>`, made in
    /// one string.
    func testTheSignatureFieldSaysTheKeyAndTheMACInBase64URL() throws {
        let signer = ContextSigner(key: Self.key)
        for message in [["v1", "GET", "/v1/ledger/7", "c1", "p1", "acme"], [""], ["é", String(repeating: "x", count: 300)], []] {
            let text = message.map { $0 + "\n" }.joined()
            let mac = UpstreamContext.hmacSHA256(key: Self.key.secret, message: Array(text.utf8))
            let field = signer.signatureField { line in message.forEach(line) }
            XCTAssertEqual(field, "v1;key=ctx-1;sig=" + Base64URL.encode(mac), "\(message)")
            XCTAssertEqual(try Base64URL.decode(field.dropFirst("v1;key=ctx-1;sig=".count).utf8), mac)
        }
    }

    /// The documented vector: HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog").
    func testAKnownVector() {
        let signer = ContextSigner(key: .init(id: "k", secret: Array("key".utf8)))
        let signature = signer.signature { line in line("The quick brown fox jumps over the lazy dog") }
        // The signer appends "\n" to each line, so the vector is taken over the text with it.
        let expected = UpstreamContext.hmacSHA256(key: Array("key".utf8), message: Array("The quick brown fox jumps over the lazy dog\n".utf8))
        XCTAssertEqual(signature, expected)
        let plain = UpstreamContext.hmacSHA256(key: Array("key".utf8), message: Array("The quick brown fox jumps over the lazy dog".utf8))
        XCTAssertEqual(plain.map { String(format: "%02x", $0) }.joined(), "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8")
    }

    func testSignersAreKeptPerKeyAndRenewedWhenASecretChanges() {
        var signers = ContextSigners()
        let first = signers.signer(for: Self.key)
        XCTAssertTrue(signers.signer(for: Self.key) === first)
        let rotated = GatewaySettings.UpstreamContext.SigningKey(id: "ctx-1", secret: Array("another secret".utf8))
        XCTAssertFalse(signers.signer(for: rotated) === first)
        signers.keep(only: [])
        XCTAssertFalse(signers.signer(for: rotated) === first)
    }
}
