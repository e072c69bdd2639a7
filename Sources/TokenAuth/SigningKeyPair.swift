import COpenSSL

/// A private key the gateway signs with itself (support tokens), and the public key its own
/// verifier checks those tokens with, derived from it once when the settings are read — so an
/// operator configures one key file, and the two can never disagree.
public enum SigningKeyPair {
    /// The SubjectPublicKeyInfo PEM of a private key PEM (PKCS #8 or the traditional form);
    /// nil when the text is no private key OpenSSL reads.
    public static func publicKeyPEM(ofPrivateKeyPEM pem: String) -> String? {
        let bytes = Array(pem.utf8)
        let key: OpaquePointer? = bytes.withUnsafeBufferPointer { buffer in
            guard let bio = BIO_new_mem_buf(buffer.baseAddress, Int32(buffer.count)) else { return nil }
            defer { BIO_free(bio) }
            return PEM_read_bio_PrivateKey(bio, nil, nil, nil)
        }
        guard let key else {
            ERR_clear_error()
            return nil
        }
        defer { EVP_PKEY_free(key) }
        guard let output = BIO_new(BIO_s_mem()) else { return nil }
        defer { BIO_free(output) }
        guard PEM_write_bio_PUBKEY(output, key) == 1 else {
            ERR_clear_error()
            return nil
        }
        let length = Int(BIO_ctrl_pending(output))
        var text = [UInt8](repeating: 0, count: length)
        guard length > 0, BIO_read(output, &text, Int32(length)) == Int32(length) else { return nil }
        return String(decoding: text, as: UTF8.self)
    }
}
