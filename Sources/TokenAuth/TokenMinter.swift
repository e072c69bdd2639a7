import CJWT
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
    /// RS256/384/512 or ES256/384/512 with a private key PEM (PKCS #8 or the traditional form).
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
        let status = key.withUnsafeBufferPointer { jwt_set_alg(jwt, jwtAlgorithm(algorithm), $0.baseAddress, Int32($0.count)) }
        guard status == 0 else { throw .invalidKey }
        // libjwt signs here; a key it cannot read fails here too.
        guard let encoded = jwt_encode_str(jwt) else { throw .invalidKey }
        // libjwt 1.10 has no jwt_free_str; the string comes from malloc.
        defer { free(encoded) }
        return String(cString: encoded)
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
    /// A secret for RS*/ES*, or a PEM key for HS*.
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
        case .wrongKeyKind: "HS algorithms take a secret, RS and ES algorithms a private key PEM"
        case .encodingFailed: "libjwt could not encode the token"
        }
    }
}
