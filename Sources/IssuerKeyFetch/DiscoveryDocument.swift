import Foundation

/// The two members of an OpenID Provider's configuration (OpenID Connect Discovery 1.0 §3) the
/// gateway uses: who the provider says it is, and where its keys are.
public struct DiscoveryDocument: Sendable, Hashable {
    public var issuer: String
    public var jwksURI: String

    public static func parse(_ bytes: [UInt8]) throws(FetchFailure) -> DiscoveryDocument {
        struct Members: Decodable {
            let issuer: String
            let jwks_uri: String
        }
        guard let members = try? JSONDecoder().decode(Members.self, from: Data(bytes)) else { throw .notADiscoveryDocument }
        return DiscoveryDocument(issuer: members.issuer, jwksURI: members.jwks_uri)
    }

    /// The JWKS URL, once the document is checked against the configured issuer: OpenID
    /// Connect Discovery §4.3 requires `issuer` to be exactly the issuer the configuration was
    /// asked for, and the keys are fetched over HTTPS only.
    public func jwksURL(forIssuer expected: String) throws(FetchFailure) -> String {
        guard self.issuer == expected else { throw .issuerMismatch }
        guard URLText.isHTTPS(self.jwksURI) else { throw .insecureKeySetURL }
        return self.jwksURI
    }
}

enum URLText {
    static func isHTTPS(_ text: String) -> Bool {
        guard let url = URL(string: text), url.scheme?.lowercased() == "https", let host = url.host, !host.isEmpty else { return false }
        return true
    }
}

/// Why a fetch gave no usable key set. A struct-like enum with fixed descriptions: safe as a
/// log field and a metrics label, never quoting what the provider sent.
public enum FetchFailure: Error, Sendable, Hashable, CustomStringConvertible {
    /// No answer: connection refused or reset, TLS failed (an untrusted certificate too),
    /// or the timeout passed.
    case unreachable
    /// An answer other than 200.
    case httpStatus(Int)
    /// More than `KeySetDownload.maxDocumentBytes`.
    case documentTooLarge
    case notADiscoveryDocument
    /// The discovery document names another issuer than the configured `iss`.
    case issuerMismatch
    /// The discovery document's `jwks_uri` is not an https URL.
    case insecureKeySetURL
    case notAKeySet
    /// The JWKS document holds no key usable under the issuer's pinned algorithms.
    case noUsableKey
    /// The URL's host is not in `authentication.keyFetch.allowedHosts`; nothing was requested.
    case hostNotAllowed

    /// A bounded label value (`erp_gateway_issuer_key_fetches_total{result}`).
    public var slug: String {
        switch self {
        case .unreachable: "unreachable"
        case .httpStatus: "http-status"
        case .documentTooLarge: "document-too-large"
        case .notADiscoveryDocument: "not-a-discovery-document"
        case .issuerMismatch: "issuer-mismatch"
        case .insecureKeySetURL: "insecure-jwks-uri"
        case .notAKeySet: "not-a-key-set"
        case .noUsableKey: "no-usable-key"
        case .hostNotAllowed: "host-not-allowed"
        }
    }

    public var description: String {
        switch self {
        case .unreachable: "the identity provider could not be reached (connection, TLS or timeout)"
        case .httpStatus(let code): "the identity provider answered with status \(code)"
        case .documentTooLarge: "the document is larger than \(KeySetDownload.maxDocumentBytes) bytes"
        case .notADiscoveryDocument: "not an OpenID discovery document (a JSON object with issuer and jwks_uri)"
        case .issuerMismatch: "the discovery document's issuer is not the configured iss"
        case .insecureKeySetURL: "the discovery document's jwks_uri is not an https URL"
        case .notAKeySet: "not a JWKS document (a JSON object with a keys array)"
        case .noUsableKey: "the JWKS document holds no key usable with the issuer's algorithms"
        case .hostNotAllowed: "the URL's host is not in the gateway's authentication.keyFetch.allowedHosts"
        }
    }
}
