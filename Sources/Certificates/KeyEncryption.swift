import COpenSSL
import Foundation

/// The key that encrypts uploaded private keys at rest (AES-256-GCM), from the settings' key
/// file. libcrypto is already linked for token signatures; swift-crypto would add a second
/// crypto library to the build for two functions.
public struct KeyEncryptionKey: Sendable {
    public enum Problem: Error, Hashable, Sendable, CustomStringConvertible {
        /// Neither 32 raw bytes, nor 32 bytes in base64 or hex.
        case wrongLength(Int)
        public var description: String {
            switch self {
            case .wrongLength(let count):
                "a key-encryption key is 32 bytes: raw, base64 or hex (read \(count) bytes); make one with `openssl rand -base64 32`"
            }
        }
    }

    /// Why a sealed value cannot be opened.
    public enum OpenFailure: Error, Hashable, Sendable, CustomStringConvertible {
        /// Not a value this type sealed.
        case malformed
        /// Sealed under another key-encryption key (named by its identifier).
        case otherKey(String)
        /// The key is right but the value or its context was changed.
        case tampered
        public var description: String {
            switch self {
            case .malformed: "not a sealed key"
            case .otherKey(let identifier): "sealed under another key-encryption key (\(identifier))"
            case .tampered: "the sealed key or what it is bound to was changed"
            }
        }
    }

    static let prefix = "aes256gcm"
    private let bytes: [UInt8]
    /// The first 8 bytes of the key's SHA-256, hex: stored with each sealed value so that a
    /// value sealed under another key is named as such instead of failing as tampered.
    public let identifier: String

    /// From a key file's contents: 32 raw bytes, or their base64 or hex text (surrounding
    /// whitespace ignored).
    public init(fileContents: [UInt8]) throws(Problem) {
        let text = String(decoding: fileContents, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        if let decoded = Data(base64Encoded: text), decoded.count == 32 {
            self.init(bytes: Array(decoded))
        } else if text.count == 64, let decoded = Self.hex(text) {
            self.init(bytes: decoded)
        } else if fileContents.count == 32 {
            self.init(bytes: fileContents)
        } else {
            throw .wrongLength(fileContents.count)
        }
    }

    init(bytes: [UInt8]) {
        self.bytes = bytes
        var digest = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        _ = EVP_Digest(bytes, bytes.count, &digest, &length, EVP_sha256(), nil)
        self.identifier = digest.prefix(8).map { String(format: "%02x", $0) }.joined()
    }

    /// `plaintext` encrypted under a fresh random nonce, bound to `context` (say, the domain and
    /// node a key belongs to: a sealed key copied to another record fails to open there).
    /// Text form: `aes256gcm.<key id>.<base64 of nonce | ciphertext | tag>`.
    public func seal(_ plaintext: [UInt8], context: String) -> String {
        var nonce = [UInt8](repeating: 0, count: 12)
        precondition(RAND_bytes(&nonce, 12) == 1, "the system's random source failed")
        var output = nonce
        output += self.crypt(encrypt: true, nonce: nonce, input: plaintext, context: context, tag: nil)!
        return "\(Self.prefix).\(self.identifier).\(Data(output).base64EncodedString())"
    }

    public func open(_ sealed: String, context: String) throws(OpenFailure) -> [UInt8] {
        let parts = sealed.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == Self.prefix, let data = Data(base64Encoded: String(parts[2])), data.count >= 12 + 16 else {
            throw .malformed
        }
        guard parts[1] == self.identifier else { throw .otherKey(String(parts[1])) }
        let bytes = Array(data)
        let nonce = Array(bytes[0..<12]), tag = Array(bytes[(bytes.count - 16)...]), body = Array(bytes[12..<(bytes.count - 16)])
        guard let plaintext = self.crypt(encrypt: false, nonce: nonce, input: body, context: context, tag: tag) else { throw .tampered }
        return plaintext
    }

    /// Encrypts (returns ciphertext + tag) or decrypts (returns plaintext, nil when the tag does
    /// not verify).
    private func crypt(encrypt: Bool, nonce: [UInt8], input: [UInt8], context: String, tag: [UInt8]?) -> [UInt8]? {
        guard let cipher = EVP_CIPHER_CTX_new() else { return nil }
        defer { EVP_CIPHER_CTX_free(cipher) }
        let aad = Array(context.utf8)
        var output = [UInt8](repeating: 0, count: input.count + 16)
        var length: Int32 = 0, total = 0
        let initialized = encrypt
            ? EVP_EncryptInit_ex(cipher, EVP_aes_256_gcm(), nil, self.bytes, nonce)
            : EVP_DecryptInit_ex(cipher, EVP_aes_256_gcm(), nil, self.bytes, nonce)
        guard initialized == 1 else { return nil }
        let update = encrypt ? EVP_EncryptUpdate : EVP_DecryptUpdate
        guard update(cipher, nil, &length, aad, Int32(aad.count)) == 1 else { return nil }
        if !input.isEmpty {
            guard update(cipher, &output, &length, input, Int32(input.count)) == 1 else { return nil }
            total = Int(length)
        }
        if encrypt {
            guard output.withUnsafeMutableBufferPointer({ EVP_EncryptFinal_ex(cipher, $0.baseAddress! + total, &length) }) == 1 else { return nil }
            total += Int(length)
            var tag = [UInt8](repeating: 0, count: 16)
            guard erp_gcm_get_tag(cipher, &tag, 16) == 1 else { return nil }
            return Array(output.prefix(total)) + tag
        }
        var expected = tag ?? []
        guard erp_gcm_set_tag(cipher, &expected, 16) == 1,
              output.withUnsafeMutableBufferPointer({ EVP_DecryptFinal_ex(cipher, $0.baseAddress! + total, &length) }) == 1
        else {
            ERR_clear_error()
            return nil
        }
        return Array(output.prefix(total + Int(length)))
    }

    private static func hex(_ text: String) -> [UInt8]? {
        var bytes: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        while let high = iterator.next(), let low = iterator.next() {
            guard let h = Self.nibble(high), let l = Self.nibble(low) else { return nil }
            bytes.append(h << 4 | l)
        }
        return bytes
    }

    private static func nibble(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
