import COpenSSL
import Foundation

/// What a certificate chain says about itself, read once from its PEM text: the names its leaf
/// covers, its validity and who issued it. A value; no OpenSSL object outlives the inspection.
public struct CertificateSummary: Sendable, Hashable {
    /// The leaf's subjectAltName DNS entries, lowercased, in certificate order.
    public var names: [String]
    /// The leaf's subject and issuer, one line each (OpenSSL's RFC 2253 form).
    public var subject: String
    public var issuer: String
    /// The leaf's validity, in seconds since the Unix epoch.
    public var notBefore: Int64
    public var notAfter: Int64
    /// Certificates in the chain, leaf included.
    public var chainLength: Int
    /// SHA-256 of the leaf's DER encoding, lowercase hex: names one certificate in logs and reads.
    public var fingerprint: String

    public init(names: [String], subject: String, issuer: String, notBefore: Int64, notAfter: Int64, chainLength: Int, fingerprint: String) {
        self.names = names
        self.subject = subject
        self.issuer = issuer
        self.notBefore = notBefore
        self.notAfter = notAfter
        self.chainLength = chainLength
        self.fingerprint = fingerprint
    }

    /// Whether `domain` is one of the names, exactly or through a wildcard in the leftmost label
    /// (`*.example.com` covers `a.example.com`, not `example.com` nor `a.b.example.com`) — the
    /// rule clients apply (RFC 6125 §6.4.3), so a certificate accepted here is one browsers accept.
    public func covers(_ domain: String) -> Bool {
        let domain = domain.lowercased()
        return self.names.contains { CertificateSummary.name($0, covers: domain) }
    }

    static func name(_ name: String, covers domain: String) -> Bool {
        if name == domain { return true }
        guard name.hasPrefix("*."), let dot = domain.firstIndex(of: ".") else { return false }
        let base = name.dropFirst(2)
        // A wildcard over a single label (`*.com`) covers nothing.
        guard base.contains(".") else { return false }
        return dot != domain.startIndex && domain[domain.index(after: dot)...] == base
    }

    /// `2026-12-08T10:17:43Z`: how certificate dates are written in problems, logs and `check`.
    public static func utc(_ seconds: Int64) -> String {
        Date(timeIntervalSince1970: TimeInterval(seconds)).ISO8601Format()
    }

    /// Seconds left before the leaf expires at `now` (negative once expired).
    public func secondsToExpiry(now: Int64) -> Int64 { self.notAfter - now }
}

/// Why a chain and key cannot be served, each naming what is wrong without repeating the key.
public enum CertificateProblem: Error, Hashable, Sendable, CustomStringConvertible {
    case noCertificate
    case unreadableCertificate(position: Int)
    case unreadableKey
    case keyDoesNotMatch
    /// The certificate at `position` (0 = leaf) is not issued by the one after it.
    case chainOutOfOrder(position: Int)
    case notYetValid(notBefore: Int64)
    case expired(notAfter: Int64)
    case doesNotCover(domain: String, names: [String])

    /// The part of an upload the problem is about: `certificate` or `key`.
    public var field: String {
        switch self {
        case .unreadableKey, .keyDoesNotMatch: "key"
        default: "certificate"
        }
    }

    public var description: String {
        switch self {
        case .noCertificate: "no PEM certificate found"
        case .unreadableCertificate(let position): "certificate \(position + 1) of the chain is not a readable PEM X.509 certificate"
        case .unreadableKey: "the key is not a readable PEM private key (unencrypted PKCS#8, RSA or EC)"
        case .keyDoesNotMatch: "the key does not belong to the chain's first certificate"
        case .chainOutOfOrder(let position): "certificate \(position + 1) of the chain is not issued by certificate \(position + 2); put the leaf first, then each issuer"
        case .notYetValid(let notBefore): "the certificate is not valid before \(CertificateSummary.utc(notBefore))"
        case .expired(let notAfter): "the certificate expired at \(CertificateSummary.utc(notAfter))"
        case .doesNotCover(let domain, let names):
            "the certificate does not cover '\(domain)' (it covers \(names.isEmpty ? "no DNS name" : names.map { "'\($0)'" }.joined(separator: ", ")))"
        }
    }
}

/// Parses PEM chains and keys with libcrypto and checks that they can be served.
public enum CertificateInspection {
    /// Reads `chainPEM` (leaf first, then its issuers) and `keyPEM`; checks that the key belongs
    /// to the leaf, that each certificate is issued by the next, and that the leaf is valid at
    /// `now` (seconds since the epoch).
    public static func inspect(chainPEM: String, keyPEM: String, now: Int64) throws(CertificateProblem) -> CertificateSummary {
        let chain = try Self.readChain(chainPEM)
        defer { chain.forEach { X509_free($0) } }
        guard let key = Self.readKey(keyPEM) else { throw .unreadableKey }
        defer { EVP_PKEY_free(key) }
        guard X509_check_private_key(chain[0], key) == 1 else {
            ERR_clear_error()
            throw .keyDoesNotMatch
        }
        for position in chain.indices.dropLast() where X509_check_issued(chain[position + 1], chain[position]) != X509_V_OK {
            throw .chainOutOfOrder(position: position)
        }
        let summary = Self.summary(of: chain[0], chainLength: chain.count)
        if now < summary.notBefore { throw .notYetValid(notBefore: summary.notBefore) }
        if now >= summary.notAfter { throw .expired(notAfter: summary.notAfter) }
        return summary
    }

    /// `inspect`, and the leaf must cover every one of `domains`.
    public static func check(chainPEM: String, keyPEM: String, covering domains: [String], now: Int64) throws(CertificateProblem) -> CertificateSummary {
        let summary = try Self.inspect(chainPEM: chainPEM, keyPEM: keyPEM, now: now)
        if let uncovered = domains.first(where: { !summary.covers($0) }) {
            throw .doesNotCover(domain: uncovered.lowercased(), names: summary.names)
        }
        return summary
    }

    /// The chain's summary without a key or a validity check (to list what a file holds).
    public static func summary(chainPEM: String) throws(CertificateProblem) -> CertificateSummary {
        let chain = try Self.readChain(chainPEM)
        defer { chain.forEach { X509_free($0) } }
        return Self.summary(of: chain[0], chainLength: chain.count)
    }

    static func readChain(_ pem: String) throws(CertificateProblem) -> [OpaquePointer] {
        let blocks = Self.pemBlocks(pem, label: "CERTIFICATE")
        guard !blocks.isEmpty else { throw .noCertificate }
        var chain: [OpaquePointer] = []
        for (position, block) in blocks.enumerated() {
            guard let certificate = Self.withBIO(block, { PEM_read_bio_X509($0, nil, nil, nil) }) else {
                chain.forEach { X509_free($0) }
                ERR_clear_error()
                throw .unreadableCertificate(position: position)
            }
            chain.append(certificate)
        }
        return chain
    }

    static func readKey(_ pem: String) -> OpaquePointer? {
        // Only unencrypted keys: no passphrase callback, and a null passphrase never prompts.
        let key = Self.withBIO(pem) { PEM_read_bio_PrivateKey($0, nil, nil, nil) }
        if key == nil { ERR_clear_error() }
        return key
    }

    /// Each `-----BEGIN label-----` … `-----END label-----` block of `pem`, whole.
    static func pemBlocks(_ pem: String, label: String) -> [String] {
        let begin = "-----BEGIN \(label)-----", end = "-----END \(label)-----"
        var blocks: [String] = []
        var rest = pem[...]
        while let start = rest.range(of: begin), let stop = rest.range(of: end, range: start.upperBound..<rest.endIndex) {
            blocks.append(String(rest[start.lowerBound..<stop.upperBound]) + "\n")
            rest = rest[stop.upperBound...]
        }
        return blocks
    }

    static func withBIO<T>(_ text: String, _ body: (OpaquePointer) -> T?) -> T? {
        var bytes = Array(text.utf8)
        return bytes.withUnsafeMutableBytes { buffer -> T? in
            guard let bio = BIO_new_mem_buf(buffer.baseAddress, Int32(buffer.count)) else { return nil }
            defer { BIO_free(bio) }
            return body(bio)
        }
    }

    static func summary(of leaf: OpaquePointer, chainLength: Int) -> CertificateSummary {
        CertificateSummary(
            names: Self.dnsNames(leaf), subject: Self.oneLine(X509_get_subject_name(leaf)), issuer: Self.oneLine(X509_get_issuer_name(leaf)),
            notBefore: Self.seconds(X509_get0_notBefore(leaf)), notAfter: Self.seconds(X509_get0_notAfter(leaf)), chainLength: chainLength,
            fingerprint: Self.fingerprint(leaf)
        )
    }

    static func dnsNames(_ certificate: OpaquePointer) -> [String] {
        guard let names = erp_x509_subject_alt_names(certificate) else { return [] }
        defer { erp_general_names_free(names) }
        var result: [String] = []
        for index in 0..<erp_general_names_count(names) {
            var length: Int32 = 0
            guard let bytes = erp_general_name_dns(names, index, &length) else { continue }
            result.append(String(decoding: UnsafeBufferPointer(start: bytes, count: Int(length)), as: UTF8.self).lowercased())
        }
        return result
    }

    static func oneLine(_ name: OpaquePointer?) -> String {
        guard let name, let bio = BIO_new(BIO_s_mem()) else { return "" }
        defer { BIO_free(bio) }
        X509_NAME_print_ex(bio, name, 0, erp_xn_flag_rfc2253())
        var pointer: UnsafeMutablePointer<CChar>?
        let length = BIO_ctrl(bio, BIO_CTRL_INFO, 0, &pointer)
        guard let pointer, length > 0 else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: pointer, count: length), as: UTF8.self)
    }

    static func seconds(_ time: UnsafePointer<ASN1_TIME>?) -> Int64 {
        var parts = tm()
        guard let time, ASN1_TIME_to_tm(time, &parts) == 1 else { return 0 }
        return Int64(timegm(&parts))
    }

    static func fingerprint(_ certificate: OpaquePointer) -> String {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        guard X509_digest(certificate, EVP_sha256(), &digest, &length) == 1 else { return "" }
        return digest.prefix(Int(length)).map { String(format: "%02x", $0) }.joined()
    }
}
