#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One key of an identity provider's JWKS document (RFC 7517), as published: text fields only.
/// Turning it into `VerificationKey`s is pure — the numbers become a DER SubjectPublicKeyInfo
/// OpenSSL parses once, like a configured PEM key.
public struct JSONWebKey: Sendable, Hashable, Decodable {
    public var kty: String
    public var kid: String?
    public var alg: String?
    public var use: String?
    /// RSA modulus and exponent (base64url, big-endian).
    public var n: String?
    public var e: String?
    /// EC / OKP curve and coordinates.
    public var crv: String?
    public var x: String?
    public var y: String?

    public init(kty: String, kid: String?, alg: String? = nil, use: String? = nil, n: String? = nil, e: String? = nil, crv: String? = nil, x: String? = nil, y: String? = nil) {
        self.kty = kty
        self.kid = kid
        self.alg = alg
        self.use = use
        self.n = n
        self.e = e
        self.crv = crv
        self.x = x
        self.y = y
    }

    /// What became of one published key under an issuer's pinned algorithms.
    public enum Outcome: Sendable {
        /// One key per algorithm it is used with (a key without `alg` serves every pinned
        /// algorithm its type fits).
        case keys([VerificationKey])
        case ignored(IgnoredKey)
    }

    /// The keys this JWK verifies with, under `pinned` — the algorithms the issuer's
    /// configuration allows. A JWK's `alg` may narrow that set to one, never widen it: a key
    /// published for an algorithm the configuration does not pin is ignored.
    public func verificationKeys(pinned: Set<SigningAlgorithm>) -> Outcome {
        guard let kid, !kid.isEmpty else { return .ignored(.noKeyID) }
        if let use, use != "sig" { return .ignored(.notForSignatures) }
        let fitting = Self.algorithms(kty: kty, crv: crv)
        guard !fitting.isEmpty else { return .ignored(.unsupportedKeyType) }
        var candidates: [SigningAlgorithm]
        if let alg {
            guard let declared = SigningAlgorithm(rawValue: alg), declared.isAsymmetric else { return .ignored(.unknownAlgorithm) }
            guard pinned.contains(declared) else { return .ignored(.algorithmNotPinned) }
            guard fitting.contains(declared) else { return .ignored(.unreadable(.keyTypeMismatch)) }
            candidates = [declared]
        } else {
            candidates = fitting.filter(pinned.contains)
            guard !candidates.isEmpty else { return .ignored(.algorithmNotPinned) }
        }
        let der: [UInt8]
        do {
            der = try self.subjectPublicKeyInfo()
        } catch {
            return .ignored(.unreadable(error))
        }
        var keys: [VerificationKey] = []
        for algorithm in candidates {
            do {
                keys.append(try VerificationKey(kid: kid, algorithm: algorithm, subjectPublicKeyInfo: der))
            } catch {
                return .ignored(.unreadable(error))
            }
        }
        return .keys(keys)
    }

    /// The asymmetric algorithms a key of this type and curve can verify, in `allCases` order.
    static func algorithms(kty: String, crv: String?) -> [SigningAlgorithm] {
        switch (kty, crv) {
        case ("RSA", _): [.RS256, .RS384, .RS512, .PS256, .PS384, .PS512]
        case ("EC", "P-256"): [.ES256]
        case ("EC", "P-384"): [.ES384]
        case ("EC", "P-521"): [.ES512]
        case ("OKP", "Ed25519"): [.EdDSA]
        default: []
        }
    }

    /// The key as DER SubjectPublicKeyInfo (RFC 5280 §4.1, RFC 3279, RFC 5480, RFC 8410).
    func subjectPublicKeyInfo() throws(KeyError) -> [UInt8] {
        func number(_ text: String?) throws(KeyError) -> [UInt8] {
            guard let text, let bytes = try? Base64URL.decode(Array(text.utf8), padding: .rejected), !bytes.isEmpty else {
                throw .unreadableKey
            }
            return bytes
        }
        switch (kty, crv) {
        case ("RSA", _):
            let modulus = try number(n)
            let exponent = try number(e)
            let rsaPublicKey = DER.sequence(DER.unsignedInteger(modulus) + DER.unsignedInteger(exponent))
            return DER.sequence(DER.sequence(DER.rsaEncryption + DER.null) + DER.bitString(rsaPublicKey))
        case ("EC", let curve?):
            let (oid, size): ([UInt8], Int)
            switch curve {
            case "P-256": (oid, size) = (DER.prime256v1, 32)
            case "P-384": (oid, size) = (DER.secp384r1, 48)
            case "P-521": (oid, size) = (DER.secp521r1, 66)
            default: throw .keyTypeMismatch
            }
            let xBytes = try number(x)
            let yBytes = try number(y)
            // RFC 7518 §6.2.1.2: each coordinate is exactly the curve's size, never shortened.
            guard xBytes.count == size, yBytes.count == size else { throw .unreadableKey }
            return DER.sequence(DER.sequence(DER.ecPublicKey + oid) + DER.bitString([0x04] + xBytes + yBytes))
        case ("OKP", "Ed25519"):
            let point = try number(x)
            guard point.count == 32 else { throw .unreadableKey }
            return DER.sequence(DER.sequence(DER.ed25519) + DER.bitString(point))
        default:
            throw .keyTypeMismatch
        }
    }
}

/// Why a published key is not used. Fixed descriptions (a log field, a dry run's answer).
public enum IgnoredKey: Sendable, Hashable, CustomStringConvertible {
    /// No `kid`: tokens select keys by `kid`, so a key without one could never be chosen.
    case noKeyID
    /// `use` is not `sig` (an encryption key).
    case notForSignatures
    /// A `kty`/`crv` the gateway does not verify with (`oct`, Ed448, secp256k1…).
    case unsupportedKeyType
    /// An `alg` that is no asymmetric JWS algorithm the gateway knows.
    case unknownAlgorithm
    /// The key's `alg` (or, without one, every algorithm its type fits) is not pinned for
    /// the issuer: a published key never widens the configured set.
    case algorithmNotPinned
    /// The numbers make no key OpenSSL accepts for the algorithm (too short, off the curve…).
    case unreadable(KeyError)

    public var description: String {
        switch self {
        case .noKeyID: "the key has no kid"
        case .notForSignatures: "the key's use is not sig"
        case .unsupportedKeyType: "the key type or curve is not supported"
        case .unknownAlgorithm: "the key's alg is not a supported signature algorithm"
        case .algorithmNotPinned: "the key's algorithm is not one the issuer's configuration allows"
        case .unreadable(let error): "\(error)"
        }
    }
}

/// The few DER encodings a SubjectPublicKeyInfo needs. Hand-written: swift-certificates'
/// SwiftASN1 would do it, but TokenAuth keeps to libcrypto and this is five shapes.
enum DER {
    static let rsaEncryption: [UInt8] = [0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01]
    static let null: [UInt8] = [0x05, 0x00]
    static let ecPublicKey: [UInt8] = [0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01]
    static let prime256v1: [UInt8] = [0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07]
    static let secp384r1: [UInt8] = [0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22]
    static let secp521r1: [UInt8] = [0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x23]
    static let ed25519: [UInt8] = [0x06, 0x03, 0x2B, 0x65, 0x70]

    static func sequence(_ content: [UInt8]) -> [UInt8] { [0x30] + length(content.count) + content }

    static func bitString(_ content: [UInt8]) -> [UInt8] { [0x03] + length(content.count + 1) + [0x00] + content }

    /// A non-negative INTEGER from big-endian bytes: leading zeros dropped, one added back when
    /// the high bit is set.
    static func unsignedInteger(_ bytes: [UInt8]) -> [UInt8] {
        var value = Array(bytes.drop { $0 == 0 })
        if value.isEmpty { value = [0] }
        if value[0] & 0x80 != 0 { value.insert(0, at: 0) }
        return [0x02] + length(value.count) + value
    }

    static func length(_ count: Int) -> [UInt8] {
        if count < 0x80 { return [UInt8(count)] }
        var bytes: [UInt8] = []
        var rest = count
        while rest > 0 {
            bytes.insert(UInt8(rest & 0xFF), at: 0)
            rest >>= 8
        }
        return [0x80 | UInt8(bytes.count)] + bytes
    }
}

/// A JWKS document (`{"keys": [...]}`). Entries that are not JWK objects are skipped rather
/// than failing the document: a provider publishing one odd key must not take the others away.
public struct JSONWebKeySet: Sendable, Hashable {
    public var keys: [JSONWebKey]

    public init(keys: [JSONWebKey]) { self.keys = keys }

    public static func parse(_ bytes: [UInt8]) throws(DocumentError) -> JSONWebKeySet {
        struct Lossy: Decodable {
            let key: JSONWebKey?
            init(from decoder: any Decoder) throws { self.key = try? JSONWebKey(from: decoder) }
        }
        struct Document: Decodable { let keys: [Lossy] }
        guard let document = try? JSONDecoder().decode(Document.self, from: Data(bytes)) else { throw .notAKeySet }
        return JSONWebKeySet(keys: document.keys.compactMap(\.key))
    }
}

/// Why a fetched document cannot be used. Fixed descriptions.
public enum DocumentError: Error, Sendable, Hashable, CustomStringConvertible {
    case notAKeySet
    case notADiscoveryDocument

    public var description: String {
        switch self {
        case .notAKeySet: "not a JWKS document (a JSON object with a keys array)"
        case .notADiscoveryDocument: "not an OpenID discovery document (a JSON object with issuer and jwks_uri)"
        }
    }
}
