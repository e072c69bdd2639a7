import CJWT
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A bearer token split, base64url-checked and decoded by libjwt — and **not verified**.
///
/// libjwt's `jwt_decode` given no key checks no signature at all, so nothing decoded here is
/// trusted. The only things readable before the signature check are those that select the key:
/// `issuer`, `kid` and the header's `alg`. The claims are handed out only against a
/// `CheckedSignature` for this very token, which only `VerificationKey.checkSignature(of:)` can
/// make; so the type system, not a convention, keeps unchecked claims out of every decision.
///
/// Not `Sendable`: it owns a libjwt object and lives for the duration of one verify call.
public struct UnverifiedToken {
    /// `iss`, when it is a string. Untrusted: selects the issuer policy, nothing more.
    public let issuer: String?
    /// The `kid` header, when it is a string. Untrusted: selects the key.
    public let kid: String?
    /// The `alg` header as written (`none` included; libjwt refuses names it does not know).
    /// Compared with the key's declared algorithm; it never selects one.
    public let headerAlgorithm: String

    private let compact: CompactToken
    private let decoded: DecodedJWT

    /// Splits and decodes `token`. The length limit is checked first, so an oversized token costs
    /// one comparison.
    public static func parse(_ token: Substring, maxBytes: Int) throws(TokenRejection) -> UnverifiedToken {
        guard token.utf8.count <= maxBytes else { throw .tokenTooLarge }
        let compact: CompactToken
        do {
            compact = try CompactToken(token, maxLength: maxBytes, allowingEmptySignature: true)
        } catch {
            throw .malformed
        }
        // After CompactToken, every byte is a base64url character or a dot: no NUL, so the C
        // string libjwt reads is exactly the token.
        guard let handle = decodeWithoutKey(token) else {
            // libjwt 1.10 refuses a header whose `alg` it cannot sign with (PS*, EdDSA).
            return try parseBeyondLibJWT(token, compact: compact)
        }
        let decoded = DecodedJWT(handle)
        // libjwt takes a JSON array for the claims set too; RFC 7519 §7.2 requires an object.
        guard claimsAreAnObject(compact) else { throw .malformed }

        // With no key, libjwt resets its own algorithm to `none`; the header's text is what
        // the token claims.
        guard let algorithm = jwt_get_header(handle, "alg") else { throw .malformed }
        // Critical extensions (RFC 7515 §4.1.11) — `b64: false` among them, which changes what is
        // signed — are understood by nobody here, so a token that declares any is refused.
        if let critical = jwt_get_headers_json(handle, "crit") {
            free(critical)
            throw .malformed
        }
        return UnverifiedToken(
            issuer: jwt_get_grant(handle, "iss").map { String(cString: $0) },
            kid: jwt_get_header(handle, "kid").map { String(cString: $0) },
            headerAlgorithm: String(cString: algorithm),
            compact: compact,
            decoded: decoded
        )
    }

    /// The header of a token libjwt would not decode, read with the same rules: a JSON object
    /// with a string `alg`, a `kid` used only when it is a string, no `crit`. Only the algorithms
    /// the gateway verifies and libjwt 1.10 does not know (PS*, EdDSA) get this far; anything
    /// else stays malformed. The claims are then decoded by libjwt under a fixed `{"alg":"none"}`
    /// header — the signature is still checked over the bytes as received (`compact`).
    private static func parseBeyondLibJWT(_ token: Substring, compact: CompactToken) throws(TokenRejection) -> UnverifiedToken {
        struct Header: Decodable {
            let alg: String
            let kid: String?
            let hasCritical: Bool

            enum Keys: String, CodingKey { case alg, kid, crit }

            init(from decoder: any Decoder) throws {
                let container = try decoder.container(keyedBy: Keys.self)
                self.alg = try container.decode(String.self, forKey: .alg)
                self.kid = try? container.decode(String.self, forKey: .kid)
                self.hasCritical = container.contains(.crit)
            }
        }
        guard let headerBytes = try? Base64URL.decode(compact.encodedHeader, padding: .rejected),
              let header = try? JSONDecoder().decode(Header.self, from: Data(headerBytes)),
              !header.hasCritical,
              let algorithm = SigningAlgorithm(rawValue: header.alg), algorithm.unknownToLibJWT,
              claimsAreAnObject(compact)
        else { throw .malformed }
        let substitute = "eyJhbGciOiJub25lIn0." + String(decoding: compact.encodedPayload, as: UTF8.self) + "."
        guard let handle = decodeWithoutKey(Substring(substitute)) else { throw .malformed }
        return UnverifiedToken(
            issuer: jwt_get_grant(handle, "iss").map { String(cString: $0) },
            kid: header.kid,
            headerAlgorithm: header.alg,
            compact: compact,
            decoded: DecodedJWT(handle)
        )
    }

    private init(issuer: String?, kid: String?, headerAlgorithm: String, compact: CompactToken, decoded: DecodedJWT) {
        self.issuer = issuer
        self.kid = kid
        self.headerAlgorithm = headerAlgorithm
        self.compact = compact
        self.decoded = decoded
    }

    /// The claims, once `proof` shows that this token's signature verified.
    func claims(checkedBy proof: CheckedSignature) -> SignedClaims {
        precondition(proof.token == identity, "claims asked for with the signature check of another token")
        return SignedClaims(decoded: decoded)
    }

    /// Names this token for `CheckedSignature`.
    var identity: ObjectIdentifier { ObjectIdentifier(decoded) }

    /// Runs `body` with the decoded signature and the exact `header.payload` bytes as received.
    func withSignatureAndSigningInput<Result>(
        _ body: (UnsafeBufferPointer<UInt8>, UnsafeBufferPointer<UInt8>) -> Result
    ) -> Result {
        compact.signature.withUnsafeBufferPointer { signature in
            let input = compact.signingInput
            if let result = input.withContiguousStorageIfAvailable({ body(signature, $0) }) {
                return result
            }
            return Array(input).withUnsafeBufferPointer { body(signature, $0) }
        }
    }

    /// Whether the payload's first non-blank byte is `{`. Decodes groups of four base64url
    /// characters (three bytes) from the front until it finds one; usually the first group.
    private static func claimsAreAnObject(_ compact: CompactToken) -> Bool {
        var rest = compact.encodedPayload[...]
        while !rest.isEmpty {
            let group = rest.prefix(4)
            rest = rest.dropFirst(4)
            guard let bytes = try? Base64URL.decode(group, padding: .rejected) else { return false }
            for byte in bytes {
                switch byte {
                case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"): continue
                default: return byte == UInt8(ascii: "{")
                }
            }
        }
        return false
    }

    /// `jwt_decode(&jwt, token, NULL, 0)`: decodes header and claims and checks nothing else.
    private static func decodeWithoutKey(_ token: Substring) -> OpaquePointer? {
        let count = token.utf8.count
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: count + 1) { buffer in
            let copied = buffer.initialize(fromContentsOf: token.utf8)
            precondition(copied == count)
            buffer[count] = 0
            var jwt: OpaquePointer?
            let status = buffer.withMemoryRebound(to: CChar.self) { jwt_decode(&jwt, $0.baseAddress, nil, 0) }
            guard status == 0, let jwt else {
                if let jwt { jwt_free(jwt) }
                return nil
            }
            return jwt
        }
    }
}

/// Owns one `jwt_t`.
private final class DecodedJWT {
    let handle: OpaquePointer

    init(_ handle: OpaquePointer) {
        self.handle = handle
    }

    deinit {
        jwt_free(handle)
    }
}

/// Reads the claims of a token whose signature verified. Obtainable only through
/// `UnverifiedToken.claims(checkedBy:)`.
struct SignedClaims {
    /// One claim, told apart by presence and JSON type, since "absent" and "present but not an
    /// integer" are different rejections.
    enum Claim<Value> {
        case absent
        case wrongType
        case present(Value)
    }

    fileprivate let decoded: DecodedJWT

    private var handle: OpaquePointer { decoded.handle }

    /// A claim that must be a JSON string.
    func string(_ name: String) -> Claim<String> {
        if let value = jwt_get_grant(handle, name) {
            return .present(String(cString: value))
        }
        return json(name) == nil ? .absent : .wrongType
    }

    /// A claim that must be a JSON integer (a NumericDate, for the time claims).
    func integer(_ name: String) -> Claim<Int64> {
        // libjwt answers -1 for an absent claim and 0 for a present one that is not an integer
        // (a real, a string, `true`), without telling which. Any other answer is the integer
        // itself; for those two the JSON text decides.
        let value = jwt_get_grant_int(handle, name)
        if value != 0, value != -1 { return .present(Int64(value)) }
        guard let text = json(name) else { return .absent }
        guard Self.isJSONInteger(text), let integer = Int64(text) else { return .wrongType }
        return .present(integer)
    }

    /// `aud`: one string or an array of strings (RFC 7519 §4.1.3).
    func audience() -> Claim<[String]> {
        switch string("aud") {
        case .present(let single):
            return .present([single])
        case .absent:
            return .absent
        case .wrongType:
            // Arrays are rarer and libjwt reads them only as JSON text.
            guard let text = json("aud"),
                  let list = try? JSONDecoder().decode([String].self, from: Data(text.utf8))
            else { return .wrongType }
            return .present(list)
        }
    }

    /// The claim's JSON text, or nil when absent.
    private func json(_ name: String) -> String? {
        guard let text = jwt_get_grants_json(handle, name) else { return nil }
        // libjwt 1.10 has no jwt_free_str; its JSON text comes from jansson's malloc.
        defer { free(text) }
        return String(cString: text)
    }

    /// `-?(0|[1-9][0-9]*)`: jansson prints reals with a `.` or an exponent, so this is exactly
    /// the JSON integers.
    private static func isJSONInteger(_ text: String) -> Bool {
        var digits = Substring(text).utf8
        if digits.first == UInt8(ascii: "-") { digits = digits.dropFirst() }
        guard let first = digits.first else { return false }
        if first == UInt8(ascii: "0") { return digits.count == 1 }
        return digits.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
    }
}
