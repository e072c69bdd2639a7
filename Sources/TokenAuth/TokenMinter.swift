import CJWT
import COpenSSL
import JSONText
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A claim value a minted token can carry.
public enum ClaimValue: Sendable, Hashable {
    case string(String)
    case integer(Int64)
    case strings([String])
}

extension ClaimValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByArrayLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .integer(value) }
    public init(arrayLiteral elements: String...) { self = .strings(elements) }
}

/// Signs tokens with libjwt, for `erp-gateway token mint`, tests and benchmarks.
///
/// The gateway itself never mints: it only verifies. libjwt reads the private key PEM on each
/// call, which is fine at this rate. The header carries `alg`, `typ: JWT` and, when given, `kid`.
public enum TokenMinter {
    /// RS*, PS*, ES* or EdDSA with a private key PEM (PKCS #8 or the traditional form).
    public static func mint(
        claims: [String: ClaimValue], algorithm: SigningAlgorithm, kid: String?, privateKeyPEM: String
    ) throws(MintError) -> String {
        if case .hmac = algorithm.family { throw .wrongKeyKind }
        return try mint(claims: claims, algorithm: algorithm, kid: kid, key: Array(privateKeyPEM.utf8))
    }

    /// HS256/384/512 with a shared secret. The length is not checked here, so tests can mint
    /// what a careless issuer would.
    public static func mint(
        claims: [String: ClaimValue], algorithm: SigningAlgorithm, kid: String?, secret: [UInt8]
    ) throws(MintError) -> String {
        guard case .hmac = algorithm.family else { throw .wrongKeyKind }
        return try mint(claims: claims, algorithm: algorithm, kid: kid, key: secret)
    }

    private static func mint(
        claims: [String: ClaimValue], algorithm: SigningAlgorithm, kid: String?, key: [UInt8]
    ) throws(MintError) -> String {
        guard !key.isEmpty, key.count <= Int(Int32.max) else { throw .invalidKey }
        var handle: OpaquePointer?
        guard jwt_new(&handle) == 0, let jwt = handle else { throw .encodingFailed }
        defer { jwt_free(jwt) }

        // libjwt reads names and values as C strings: an embedded NUL would cut them short.
        for (name, value) in claims.sorted(by: { $0.key < $1.key }) {
            guard !name.isEmpty, !name.utf8.contains(0) else { throw .invalidClaim }
            let status: Int32
            switch value {
            case .string(let text):
                guard !text.utf8.contains(0) else { throw .invalidClaim }
                status = jwt_add_grant(jwt, name, text)
            case .integer(let number):
                status = jwt_add_grant_int(jwt, name, Int(number))
            case .strings(let texts):
                guard !texts.contains(where: { $0.utf8.contains(0) }) else { throw .invalidClaim }
                let json = "{\(JSONText.quote(name)):[\(texts.map { JSONText.quote($0) }.joined(separator: ","))]}"
                status = jwt_add_grants_json(jwt, json)
            }
            guard status == 0 else { throw .invalidClaim }
        }
        if let kid {
            guard !kid.isEmpty, !kid.utf8.contains(0), jwt_add_header(jwt, "kid", kid) == 0 else { throw .invalidClaim }
        }
        if algorithm.unknownToLibJWT {
            return try signWithOpenSSL(jwt, algorithm: algorithm, kid: kid, privateKeyPEM: key)
        }
        let status = key.withUnsafeBufferPointer { jwt_set_alg(jwt, jwtAlgorithm(algorithm), $0.baseAddress, Int32($0.count)) }
        guard status == 0 else { throw .invalidKey }
        // libjwt signs here; a key it cannot read fails here too.
        guard let encoded = jwt_encode_str(jwt) else { throw .invalidKey }
        // libjwt 1.10 has no jwt_free_str; the string comes from malloc.
        defer { free(encoded) }
        return String(cString: encoded)
    }

    /// PS* and EdDSA, which libjwt 1.10 cannot sign: libjwt still renders the claims (so they
    /// are encoded exactly as for the other algorithms), the header is written here and
    /// `header.payload` is signed with OpenSSL's EVP.
    private static func signWithOpenSSL(
        _ jwt: OpaquePointer, algorithm: SigningAlgorithm, kid: String?, privateKeyPEM: [UInt8]
    ) throws(MintError) -> String {
        guard let claimsText = jwt_get_grants_json(jwt, nil) else { throw .encodingFailed }
        let claims = String(cString: claimsText)
        free(claimsText)
        var header = "{\"alg\":\(JSONText.quote(algorithm.rawValue)),\"typ\":\"JWT\""
        if let kid { header += ",\"kid\":\(JSONText.quote(kid))" }
        header += "}"
        let signingInput = Base64URL.encode(Array(header.utf8)) + "." + Base64URL.encode(Array(claims.utf8))

        let key: OpaquePointer? = privateKeyPEM.withUnsafeBufferPointer { bytes in
            guard let bio = BIO_new_mem_buf(bytes.baseAddress, Int32(bytes.count)) else { return nil }
            defer { BIO_free(bio) }
            return PEM_read_bio_PrivateKey(bio, nil, nil, nil)
        }
        guard let key else {
            ERR_clear_error()
            throw .invalidKey
        }
        defer { EVP_PKEY_free(key) }
        let fits: Bool
        switch algorithm.family {
        case .rsaPSS: fits = EVP_PKEY_get_base_id(key) == erp_evp_pkey_rsa()
        case .eddsa: fits = EVP_PKEY_get_base_id(key) == erp_evp_pkey_ed25519()
        default: fits = false
        }
        guard fits, let context = EVP_MD_CTX_new() else { throw .invalidKey }
        defer { EVP_MD_CTX_free(context) }
        var keyContext: OpaquePointer?
        guard EVP_DigestSignInit_ex(context, &keyContext, algorithm.digestName, nil, nil, key, nil) == 1 else {
            ERR_clear_error()
            throw .invalidKey
        }
        if case .rsaPSS = algorithm.family {
            guard let keyContext, erp_set_rsa_pss(keyContext) == 1 else {
                ERR_clear_error()
                throw .invalidKey
            }
        }
        let input = Array(signingInput.utf8)
        var length = 0
        guard EVP_DigestSign(context, nil, &length, input, input.count) == 1 else {
            ERR_clear_error()
            throw .invalidKey
        }
        var signature = [UInt8](repeating: 0, count: length)
        guard EVP_DigestSign(context, &signature, &length, input, input.count) == 1 else {
            ERR_clear_error()
            throw .invalidKey
        }
        return signingInput + "." + Base64URL.encode(signature[..<length])
    }

    private static func jwtAlgorithm(_ algorithm: SigningAlgorithm) -> jwt_alg_t {
        switch algorithm {
        case .RS256: JWT_ALG_RS256
        case .RS384: JWT_ALG_RS384
        case .RS512: JWT_ALG_RS512
        case .ES256: JWT_ALG_ES256
        case .ES384: JWT_ALG_ES384
        case .ES512: JWT_ALG_ES512
        case .HS256: JWT_ALG_HS256
        case .HS384: JWT_ALG_HS384
        case .HS512: JWT_ALG_HS512
        // Signed by `signWithOpenSSL`, never handed to libjwt.
        case .PS256, .PS384, .PS512, .EdDSA: JWT_ALG_TERM
        }
    }
}

/// Why a token could not be minted. Fixed descriptions: never the key or a claim.
public struct MintError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Reason: Hashable, Sendable {
        case invalidClaim
        case invalidKey
        case wrongKeyKind
        case encodingFailed
    }

    private let reason: Reason

    private init(_ reason: Reason) { self.reason = reason }

    /// An empty name or kid, an embedded NUL, or a claim libjwt refused.
    public static let invalidClaim = MintError(.invalidClaim)
    /// libjwt could not sign with the key (unreadable PEM, wrong key type for the algorithm).
    public static let invalidKey = MintError(.invalidKey)
    /// A secret for RS*/PS*/ES*/EdDSA, or a PEM key for HS*.
    public static let wrongKeyKind = MintError(.wrongKeyKind)
    public static let encodingFailed = MintError(.encodingFailed)

    public var slug: String {
        switch reason {
        case .invalidClaim: "invalid-claim"
        case .invalidKey: "invalid-key"
        case .wrongKeyKind: "wrong-key-kind"
        case .encodingFailed: "encoding-failed"
        }
    }

    public var description: String {
        switch reason {
        case .invalidClaim: "a claim or the key id cannot be encoded"
        case .invalidKey: "the key cannot sign with the requested algorithm"
        case .wrongKeyKind: "HS algorithms take a secret, RS, PS, ES and EdDSA algorithms a private key PEM"
        case .encodingFailed: "libjwt could not encode the token"
        }
    }
}
