import COpenSSL
import GatewayConfig
import TokenAuth

/// HMAC-SHA256 of the tenant context under one signing key, kept keyed: OpenSSL's MAC context
/// gets the key once, when the signer is made, and is re-initialised for each message, which
/// allocates nothing. The one-shot `HMAC()` it replaces allocated 15 times per forwarded request,
/// and building the canonical text first another dozen (`SITES=1 bench/allocations.sh`).
///
/// Confined to one event loop (`ProxyEnvironment` holds one per loop): an OpenSSL context is
/// not to be used by two threads at once.
final class ContextSigner {
    let keyID: String
    /// `v1;key=<id>;sig=`: what the signature field's value says before the MAC.
    private let fieldPrefix: String
    private let key: [UInt8]
    private let mac: OpaquePointer?
    private let context: OpaquePointer?

    init(key: GatewaySettings.UpstreamContext.SigningKey) {
        self.keyID = key.id
        self.fieldPrefix = "v1;key=\(key.id);sig="
        self.key = key.secret
        let mac = EVP_MAC_fetch(nil, "HMAC", nil)
        var context = mac.flatMap { EVP_MAC_CTX_new($0) }
        if let keyed = context {
            let ready = "digest".withCString { name in
                "SHA256".withCString { digest in
                    var parameters = [
                        OSSL_PARAM_construct_utf8_string(name, UnsafeMutablePointer(mutating: digest), 0),
                        OSSL_PARAM_construct_end(),
                    ]
                    return key.secret.withUnsafeBufferPointer { secret in
                        EVP_MAC_init(keyed, secret.baseAddress, secret.count, &parameters) == 1
                    }
                }
            }
            if !ready {
                EVP_MAC_CTX_free(keyed)
                context = nil
            }
        }
        self.mac = mac
        self.context = context
    }

    /// Whether this signer holds `key` (an id can be given a new secret on reload).
    func matches(_ key: GatewaySettings.UpstreamContext.SigningKey) -> Bool {
        self.keyID == key.id && self.key == key.secret
    }

    deinit {
        EVP_MAC_CTX_free(self.context)
        EVP_MAC_free(self.mac)
    }

    /// The MAC of the lines `write` passes to its argument, each followed by `\n`.
    func signature(_ write: (_ line: (String) -> Void) -> Void) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: 32)
        guard let length = output.withUnsafeMutableBufferPointer({ self.mac(write, into: $0) }) else { return self.oneShot(write) }
        return length == 32 ? output : []
    }

    /// Without a usable MAC context (never seen): the one-shot HMAC over the whole text.
    private func oneShot(_ write: (_ line: (String) -> Void) -> Void) -> [UInt8] {
        var text = ""
        write { text += $0 + "\n" }
        return UpstreamContext.hmacSHA256(key: self.key, message: Array(text.utf8))
    }

    /// The `X-ERP-Context-Signature` value for those lines: `v1;key=<id>;sig=<base64url MAC>`,
    /// written into one string — the MAC kept on the stack, not in an array, and neither it
    /// nor the whole value made a string of its own first (three allocations per forwarded
    /// request, `SITES=1 bench/allocations.sh`).
    func signatureField(_ write: (_ line: (String) -> Void) -> Void) -> String {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { mac in
            guard let length = self.mac(write, into: mac) else { return self.fieldPrefix + Base64URL.encode(self.oneShot(write)) }
            let bytes = UnsafeBufferPointer(rebasing: mac[..<(length == 32 ? 32 : 0)])
            var prefix = self.fieldPrefix
            return prefix.withUTF8 { prefix in
                String(unsafeUninitializedCapacity: prefix.count + Base64URL.encodedCount(bytes.count)) { output in
                    _ = output.initialize(from: prefix)
                    return prefix.count + Base64URL.encode(bytes, into: UnsafeMutableBufferPointer(rebasing: output[prefix.count...]))
                }
            }
        }
    }

    /// Writes the MAC of the lines into `output` (32 bytes at least) and returns its length;
    /// nil without a usable MAC context.
    private func mac(_ write: (_ line: (String) -> Void) -> Void, into output: UnsafeMutableBufferPointer<UInt8>) -> Int? {
        guard let context = self.context, EVP_MAC_init(context, nil, 0, nil) == 1 else { return nil }
        var newline = UInt8(ascii: "\n")
        write { line in
            var line = line
            line.withUTF8 { bytes in _ = EVP_MAC_update(context, bytes.baseAddress, bytes.count) }
            _ = EVP_MAC_update(context, &newline, 1)
        }
        var length = 0
        _ = EVP_MAC_final(context, output.baseAddress, &length, output.count)
        return length
    }
}

/// The loop's signers, one per signing key in use: the exchange signs with the key of the
/// configuration it started with, which after a reload may not be the newest one.
struct ContextSigners {
    private var signers: [String: ContextSigner] = [:]

    mutating func signer(for key: GatewaySettings.UpstreamContext.SigningKey) -> ContextSigner {
        if let signer = self.signers[key.id], signer.matches(key) { return signer }
        let signer = ContextSigner(key: key)
        self.signers[key.id] = signer
        return signer
    }

    /// Keeps only the signers of `keys` (after a reload): a retired key's context is freed.
    mutating func keep(only keys: [GatewaySettings.UpstreamContext.SigningKey]) {
        self.signers = self.signers.filter { id, signer in keys.contains { $0.id == id && signer.matches($0) } }
    }
}
