import COpenSSL

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One issuer key, pinned to one algorithm, parsed once.
///
/// libjwt re-reads a PEM key on every verify (about 320 µs for RS256, DESIGN.md "Tokens");
/// here the PEM is parsed into an OpenSSL `EVP_PKEY` when the configuration is compiled and the
/// digest is fetched once, so a verify costs the signature arithmetic alone.
///
/// OpenSSL allows one `EVP_PKEY` and one fetched `EVP_MD` to be used by any number of threads at
/// once as long as nobody modifies them, and nothing here does. The contexts a verify needs are
/// not shareable: each verify takes one from `contexts` (a pool behind a mutex) and puts it back
/// — hence `@unchecked Sendable`.
public final class VerificationKey: @unchecked Sendable {
    /// The `kid` a token's header must carry to be checked with this key.
    public let kid: String
    /// The only algorithm tokens checked with this key may use.
    public let algorithm: SigningAlgorithm

    private let material: Material
    /// The algorithm's digest, fetched once (`EVP_MD *`); nil for EdDSA, which has none.
    private let digest: OpaquePointer?
    /// Verify contexts set up for this key and digest, reused: a fresh `EVP_DigestVerifyInit`
    /// per token cost 28 allocations and a provider lookup (`bench/allocations.sh`, cold).
    private let contexts = VerifyContextPool()

    private enum Material {
        /// `EVP_PKEY *` of an RSA, EC or Ed25519 public key.
        case publicKey(OpaquePointer)
        /// An HMAC secret, wiped on deinit.
        case secret(UnsafeMutableBufferPointer<UInt8>)
    }

    /// RSA moduli below this are refused (NIST SP 800-131A; RFC 7518 §3.3 requires 2048).
    public static let minimumRSABits = 2048
    /// HMAC secrets must be at least this long, and at least as long as the hash output
    /// (RFC 7518 §3.2): 32 bytes for HS256, 48 for HS384, 64 for HS512.
    public static let minimumSecretBytes = 32

    /// A key for RS*, PS*, ES* or EdDSA from a SubjectPublicKeyInfo PEM
    /// (`-----BEGIN PUBLIC KEY-----`).
    ///
    /// The key type must fit the algorithm: RSA (at least 2048 bits) for RS* and PS*, EC on
    /// P-256 for ES256, P-384 for ES384, P-521 for ES512, Ed25519 for EdDSA. Text that contains a
    /// private key is refused outright, so private material never sits in the gateway's
    /// configuration.
    public convenience init(kid: String, algorithm: SigningAlgorithm, pem: String) throws(KeyError) {
        guard !kid.isEmpty else { throw .emptyKeyID }
        if case .hmac = algorithm.family { throw .secretRequired }
        guard !pem.contains("PRIVATE KEY") else { throw .privateKeyGiven }
        try self.init(kid: kid, algorithm: algorithm, takingOwnershipOf: try Self.readPublicKey(pem))
    }

    /// A key from a DER SubjectPublicKeyInfo (what `JSONWebKey` builds from a JWK), with the same
    /// rules as the PEM initializer.
    public convenience init(kid: String, algorithm: SigningAlgorithm, subjectPublicKeyInfo der: [UInt8]) throws(KeyError) {
        guard !kid.isEmpty else { throw .emptyKeyID }
        if case .hmac = algorithm.family { throw .secretRequired }
        let key: OpaquePointer? = der.withUnsafeBufferPointer { bytes in
            var cursor: UnsafePointer<UInt8>? = bytes.baseAddress
            return d2i_PUBKEY(nil, &cursor, bytes.count)
        }
        guard let key else {
            ERR_clear_error()
            throw .unreadableKey
        }
        try self.init(kid: kid, algorithm: algorithm, takingOwnershipOf: key)
    }

    /// Checks `key` fits `algorithm` and keeps it; frees it when it does not.
    private init(kid: String, algorithm: SigningAlgorithm, takingOwnershipOf key: OpaquePointer) throws(KeyError) {
        do {
            try Self.check(key, fits: algorithm)
        } catch {
            EVP_PKEY_free(key)
            throw error
        }
        var digest: OpaquePointer?
        if algorithm.digestName != nil {
            digest = Self.fetchDigest(algorithm)
            if digest == nil {
                EVP_PKEY_free(key)
                throw .unsupportedAlgorithm
            }
        }
        self.kid = kid
        self.algorithm = algorithm
        self.material = .publicKey(key)
        self.digest = digest
    }

    /// A key for HS256/384/512. The secret is copied; the copy is wiped when the key is freed.
    public init(kid: String, algorithm: SigningAlgorithm, secret: [UInt8]) throws(KeyError) {
        guard !kid.isEmpty else { throw .emptyKeyID }
        guard case .hmac = algorithm.family else { throw .publicKeyRequired }
        guard let digest = Self.fetchDigest(algorithm) else { throw .unsupportedAlgorithm }
        let minimum = max(Self.minimumSecretBytes, Int(EVP_MD_get_size(digest)))
        guard secret.count >= minimum else {
            EVP_MD_free(digest)
            throw .secretTooShort
        }
        let copy = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: secret.count)
        _ = copy.initialize(from: secret)
        self.kid = kid
        self.algorithm = algorithm
        self.material = .secret(copy)
        self.digest = digest
    }

    deinit {
        switch material {
        case .publicKey(let key):
            EVP_PKEY_free(key)
        case .secret(let secret):
            OPENSSL_cleanse(secret.baseAddress, secret.count)
            secret.deallocate()
        }
        if let digest { EVP_MD_free(digest) }
    }

    // MARK: - Checking a signature

    /// Checks `token`'s signature over its exact `header.payload` bytes with this key and its
    /// declared algorithm, and returns the proof `UnverifiedToken` asks for before it hands out
    /// claims. `nil` when the signature does not verify — or when the header names another
    /// algorithm: the verifier refuses that first, and it is checked again here so no path can
    /// reach the proof without it.
    func checkSignature(of token: UnverifiedToken) -> CheckedSignature? {
        guard token.headerAlgorithm == algorithm.rawValue else { return nil }
        let valid = token.withSignatureAndSigningInput { signature, signingInput in
            verify(signature, over: signingInput)
        }
        return valid ? CheckedSignature(token: token.identity) : nil
    }

    private func verify(_ signature: UnsafeBufferPointer<UInt8>, over input: UnsafeBufferPointer<UInt8>) -> Bool {
        guard !signature.isEmpty else { return false }
        switch (material, algorithm.family) {
        case (.publicKey(let key), .rsa), (.publicKey(let key), .rsaPSS):
            return self.digestVerify(key: key, derSignature: signature, input: input)
        case (.publicKey(let key), .eddsa):
            return Self.ed25519Verify(key: key, signature: signature, input: input)
        case (.publicKey(let key), .ecdsa(_, let coordinateBytes)):
            // JWS carries r || s, each exactly as long as the curve's order (RFC 7518 §3.4);
            // OpenSSL wants DER. Any other length is a wrong signature, never padded or cut.
            guard signature.count == 2 * coordinateBytes else { return false }
            return Self.withDERSignature(rawECDSA: signature) { der in
                self.digestVerify(key: key, derSignature: der, input: input)
            } ?? false
        case (.secret(let secret), .hmac):
            guard let digest else { return false }
            return Self.hmacMatches(signature, secret: secret, digest: digest, input: input)
        default:
            // The initializers never pair material with another family.
            return false
        }
    }

    /// Hashes `input` and checks the signature over the hash with a pooled context. For an RSA
    /// key the default padding is PKCS #1 v1.5, which is what RS* means (PS* contexts are set to
    /// PSS when made); the context checks the DigestInfo names this key's digest.
    private func digestVerify(key: OpaquePointer, derSignature: UnsafeBufferPointer<UInt8>, input: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let digest = self.digest else { return false }
        var pss = false
        if case .rsaPSS = self.algorithm.family { pss = true }
        guard let context = self.contexts.take() ?? VerifyContext(key: key, digest: digest, pss: pss) else {
            ERR_clear_error()
            return false
        }
        let valid = withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Int(EVP_MAX_MD_SIZE)) { hash in
            var hashLength: UInt32 = 0
            guard EVP_DigestInit_ex2(context.hashing, digest, nil) == 1,
                  EVP_DigestUpdate(context.hashing, input.baseAddress, input.count) == 1,
                  EVP_DigestFinal_ex(context.hashing, hash.baseAddress, &hashLength) == 1
            else { return false }
            return EVP_PKEY_verify(context.verifying, derSignature.baseAddress, derSignature.count, hash.baseAddress, Int(hashLength)) == 1
        }
        if valid {
            self.contexts.put(context)
        } else {
            // A failed verify leaves entries in this thread's error queue (an event loop thread
            // must not accumulate them), and its context is not trusted again.
            ERR_clear_error()
        }
        return valid
    }

    /// Ed25519 signs the message itself (one-shot `EVP_DigestVerify`); a signature is 64 bytes.
    /// The context is made per verify: OpenSSL's one-shot EdDSA contexts are not reusable.
    private static func ed25519Verify(key: OpaquePointer, signature: UnsafeBufferPointer<UInt8>, input: UnsafeBufferPointer<UInt8>) -> Bool {
        guard signature.count == 64, let context = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(context) }
        guard EVP_DigestVerifyInit_ex(context, nil, nil, nil, nil, key, nil) == 1,
              EVP_DigestVerify(context, signature.baseAddress, signature.count, input.baseAddress, input.count) == 1
        else {
            ERR_clear_error()
            return false
        }
        return true
    }

    /// Re-encodes a raw `r || s` ECDSA signature as the DER `ECDSA-Sig-Value` OpenSSL verifies.
    private static func withDERSignature(
        rawECDSA signature: UnsafeBufferPointer<UInt8>, _ body: (UnsafeBufferPointer<UInt8>) -> Bool
    ) -> Bool? {
        guard let ecdsaSignature = ECDSA_SIG_new() else { return nil }
        defer { ECDSA_SIG_free(ecdsaSignature) }
        let half = signature.count / 2
        let r = BN_bin2bn(signature.baseAddress, Int32(half), nil)
        let s = BN_bin2bn(signature.baseAddress! + half, Int32(half), nil)
        // ECDSA_SIG_set0 takes ownership of r and s only when it succeeds.
        guard let r, let s, ECDSA_SIG_set0(ecdsaSignature, r, s) == 1 else {
            BN_free(r)
            BN_free(s)
            ERR_clear_error()
            return nil
        }
        let length = i2d_ECDSA_SIG(ecdsaSignature, nil)
        // SEQUENCE of two INTEGERs of at most 66 bytes (P-521) plus headers: under 160.
        guard length > 0, length <= 160 else {
            ERR_clear_error()
            return nil
        }
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Int(length)) { der in
            var cursor = der.baseAddress
            guard i2d_ECDSA_SIG(ecdsaSignature, &cursor) == length else {
                ERR_clear_error()
                return false
            }
            return body(UnsafeBufferPointer(der))
        }
    }

    private static func hmacMatches(
        _ signature: UnsafeBufferPointer<UInt8>, secret: UnsafeMutableBufferPointer<UInt8>,
        digest: OpaquePointer, input: UnsafeBufferPointer<UInt8>
    ) -> Bool {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Int(EVP_MAX_MD_SIZE)) { mac in
            var macLength: UInt32 = 0
            guard HMAC(digest, secret.baseAddress, Int32(secret.count), input.baseAddress, input.count,
                       mac.baseAddress, &macLength) != nil
            else {
                ERR_clear_error()
                return false
            }
            // The length is public (it is the algorithm's); the bytes are compared in constant
            // time so a forger learns nothing from how long a wrong guess took.
            guard Int(macLength) == signature.count else { return false }
            return CRYPTO_memcmp(mac.baseAddress, signature.baseAddress, signature.count) == 0
        }
    }

    // MARK: - Reading keys

    private static func readPublicKey(_ pem: String) throws(KeyError) -> OpaquePointer {
        var pem = pem
        let key: OpaquePointer? = pem.withUTF8 { bytes in
            guard bytes.count > 0, bytes.count <= Int(Int32.max),
                  let bio = BIO_new_mem_buf(bytes.baseAddress, Int32(bytes.count))
            else { return nil }
            defer { BIO_free(bio) }
            return PEM_read_bio_PUBKEY(bio, nil, nil, nil)
        }
        guard let key else {
            ERR_clear_error()
            throw .unreadablePEM
        }
        return key
    }

    private static func check(_ key: OpaquePointer, fits algorithm: SigningAlgorithm) throws(KeyError) {
        let type = EVP_PKEY_get_base_id(key)
        switch algorithm.family {
        case .rsa, .rsaPSS:
            // Keys restricted to RSA-PSS (a distinct type, with parameters of their own) are
            // refused: an rsaEncryption key is what JWKs and IdPs publish, for RS* and PS* alike.
            guard type == erp_evp_pkey_rsa() else { throw .keyTypeMismatch }
            guard EVP_PKEY_get_bits(key) >= minimumRSABits else { throw .rsaKeyTooShort }
        case .eddsa:
            guard type == erp_evp_pkey_ed25519() else { throw .keyTypeMismatch }
        case .ecdsa(let curveName, _):
            guard type == erp_evp_pkey_ec() else { throw .keyTypeMismatch }
            var name = [CChar](repeating: 0, count: 80)
            var nameLength = 0
            guard EVP_PKEY_get_group_name(key, &name, name.count, &nameLength) == 1,
                  String(decoding: name[..<nameLength].map { UInt8(bitPattern: $0) }, as: UTF8.self) == curveName
            else {
                ERR_clear_error()
                throw .curveMismatch
            }
        case .hmac:
            throw .secretRequired
        }
    }

    private static func fetchDigest(_ algorithm: SigningAlgorithm) -> OpaquePointer? {
        guard let name = algorithm.digestName, let digest = EVP_MD_fetch(nil, name, nil) else {
            ERR_clear_error()
            return nil
        }
        return digest
    }
}

/// Proof that one token's signature verified with a pinned key under the key's declared
/// algorithm. Only `VerificationKey.checkSignature(of:)` can create one (the initializer is
/// private to this file), and `UnverifiedToken` hands out claims only against a proof made for
/// that very token — so no code can read claims that were not signature-checked.
struct CheckedSignature {
    let token: ObjectIdentifier

    fileprivate init(token: ObjectIdentifier) {
        self.token = token
    }
}

/// Why a key could not be configured. Fixed descriptions: never the key text.
public struct KeyError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Reason: Hashable, Sendable {
        case emptyKeyID
        case unreadablePEM
        case unreadableKey
        case privateKeyGiven
        case keyTypeMismatch
        case curveMismatch
        case rsaKeyTooShort
        case secretTooShort
        case secretRequired
        case publicKeyRequired
        case unsupportedAlgorithm
    }

    private let reason: Reason

    private init(_ reason: Reason) { self.reason = reason }

    public static let emptyKeyID = KeyError(.emptyKeyID)
    /// Not a PEM `PUBLIC KEY` (SubjectPublicKeyInfo) OpenSSL can read.
    public static let unreadablePEM = KeyError(.unreadablePEM)
    /// Not a DER SubjectPublicKeyInfo OpenSSL can read (a JWK's numbers that make no key).
    public static let unreadableKey = KeyError(.unreadableKey)
    /// The text contains a private key; only public keys belong in the gateway.
    public static let privateKeyGiven = KeyError(.privateKeyGiven)
    /// RSA key for ES*, EC key for RS*/PS*, anything but Ed25519 for EdDSA, or any other key type.
    public static let keyTypeMismatch = KeyError(.keyTypeMismatch)
    /// EC key on another curve than the algorithm's (P-256 / P-384 / P-521).
    public static let curveMismatch = KeyError(.curveMismatch)
    public static let rsaKeyTooShort = KeyError(.rsaKeyTooShort)
    public static let secretTooShort = KeyError(.secretTooShort)
    /// An HS* algorithm was declared for a PEM key.
    public static let secretRequired = KeyError(.secretRequired)
    /// An RS*/ES* algorithm was declared for a secret.
    public static let publicKeyRequired = KeyError(.publicKeyRequired)
    /// This OpenSSL cannot provide the algorithm's digest.
    public static let unsupportedAlgorithm = KeyError(.unsupportedAlgorithm)

    public var slug: String {
        switch reason {
        case .emptyKeyID: "empty-key-id"
        case .unreadablePEM: "unreadable-pem"
        case .unreadableKey: "unreadable-key"
        case .privateKeyGiven: "private-key-given"
        case .keyTypeMismatch: "key-type-mismatch"
        case .curveMismatch: "curve-mismatch"
        case .rsaKeyTooShort: "rsa-key-too-short"
        case .secretTooShort: "secret-too-short"
        case .secretRequired: "secret-required"
        case .publicKeyRequired: "public-key-required"
        case .unsupportedAlgorithm: "unsupported-algorithm"
        }
    }

    public var description: String {
        switch reason {
        case .emptyKeyID: "key id is empty"
        case .unreadablePEM: "key is not a PEM public key"
        case .unreadableKey: "key material is not a public key OpenSSL can read"
        case .privateKeyGiven: "key text contains a private key"
        case .keyTypeMismatch: "key type does not fit the declared algorithm"
        case .curveMismatch: "EC key curve does not fit the declared algorithm"
        case .rsaKeyTooShort: "RSA key is shorter than 2048 bits"
        case .secretTooShort: "HMAC secret is shorter than the algorithm requires"
        case .secretRequired: "HS algorithms take a secret, not a PEM key"
        case .publicKeyRequired: "RS, PS, ES and EdDSA algorithms take a public key, not a secret"
        case .unsupportedAlgorithm: "OpenSSL does not provide the algorithm's digest"
        }
    }
}

/// An `EVP_PKEY_CTX` initialized to verify with one key and digest, and an `EVP_MD_CTX` to hash
/// the signing input: both reused, one verify at a time.
final class VerifyContext {
    let verifying: OpaquePointer
    let hashing: OpaquePointer

    init?(key: OpaquePointer, digest: OpaquePointer, pss: Bool) {
        guard let verifying = EVP_PKEY_CTX_new_from_pkey(nil, key, nil) else { return nil }
        guard EVP_PKEY_verify_init(verifying) == 1, !pss || erp_set_rsa_pss(verifying) == 1,
              EVP_PKEY_CTX_set_signature_md(verifying, digest) == 1,
              let hashing = EVP_MD_CTX_new()
        else {
            EVP_PKEY_CTX_free(verifying)
            return nil
        }
        self.verifying = verifying
        self.hashing = hashing
    }

    deinit {
        EVP_PKEY_CTX_free(self.verifying)
        EVP_MD_CTX_free(self.hashing)
    }
}

/// The verify contexts of one key not in use right now. Each event loop takes one, uses it and
/// puts it back, so the pool holds about one per loop; the mutex is uncontended but for the
/// rare moment two loops verify with the same key at once.
final class VerifyContextPool: @unchecked Sendable {
    private var idle: [VerifyContext] = []
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    /// More than this many idle contexts (more loops than that verifying at once) are freed.
    private static let maxIdle = 64

    init() {
        pthread_mutex_init(self.mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(self.mutex)
        self.mutex.deallocate()
    }

    func take() -> VerifyContext? {
        pthread_mutex_lock(self.mutex)
        defer { pthread_mutex_unlock(self.mutex) }
        return self.idle.popLast()
    }

    func put(_ context: VerifyContext) {
        pthread_mutex_lock(self.mutex)
        defer { pthread_mutex_unlock(self.mutex) }
        if self.idle.count < Self.maxIdle { self.idle.append(context) }
    }
}
