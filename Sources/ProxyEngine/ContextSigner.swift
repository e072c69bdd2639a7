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

    /// Room on the stack for the lines of a usual context; a longer one goes to the MAC in
    /// pieces of this size.
    static let textCapacity = 1_024

    /// Writes the MAC of the lines into `output` (32 bytes at least) and returns its length;
    /// nil without a usable MAC context.
    ///
    /// The lines are gathered on the stack and given to the MAC in one update: each of the
    /// twenty or so it took them in (a line, its newline) passed through OpenSSL's provider
    /// layers to the digest, which cost the signer more than hashing the text did
    /// (`PERF_CALLGRAPH="--call-graph dwarf,16384" bench/profile.sh full`).
    private func mac(_ write: (_ line: (String) -> Void) -> Void, into output: UnsafeMutableBufferPointer<UInt8>) -> Int? {
        guard let context = self.context, EVP_MAC_init(context, nil, 0, nil) == 1 else { return nil }
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Self.textCapacity) { text in
            var lines = GatheredText(context: context, text: text)
            write { line in
                var line = line
                line.withUTF8 { lines.add($0) }
                lines.addNewline()
            }
            lines.flush()
        }
        var length = 0
        _ = EVP_MAC_final(context, output.baseAddress, &length, output.count)
        return length
    }

    /// Bytes bound for a MAC, gathered in `text` and given to it when `text` is full or at the end.
    private struct GatheredText {
        let context: OpaquePointer
        let text: UnsafeMutableBufferPointer<UInt8>
        var used = 0

        mutating func add(_ bytes: UnsafeBufferPointer<UInt8>) {
            guard let source = bytes.baseAddress, bytes.count > 0 else { return }
            if self.used + bytes.count > self.text.count {
                self.flush()
                if bytes.count > self.text.count {
                    _ = EVP_MAC_update(self.context, source, bytes.count)
                    return
                }
            }
            (self.text.baseAddress! + self.used).initialize(from: source, count: bytes.count)
            self.used += bytes.count
        }

        mutating func addNewline() {
            if self.used == self.text.count { self.flush() }
            self.text[self.used] = UInt8(ascii: "\n")
            self.used += 1
        }

        mutating func flush() {
            if self.used > 0 { _ = EVP_MAC_update(self.context, self.text.baseAddress, self.used) }
            self.used = 0
        }
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
