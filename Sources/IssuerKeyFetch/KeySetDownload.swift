import AsyncHTTPClient
import Foundation
import GatewayConfig
import NIOCore
import NIOHTTP1
import NIOSSL
import TokenAuth

/// One fetch of one issuer's keys over HTTPS: the discovery document first when the issuer
/// names one, then the JWKS document, parsed into OpenSSL keys under the issuer's pinned
/// algorithms. Used by the process's fetcher and by the admin API's validation alike, so a key
/// set is judged the same way wherever it is fetched.
public struct KeySetDownload: Sendable {
    /// What one successful fetch gives.
    public struct Result: Sendable {
        /// The usable keys (one per `kid` and algorithm).
        public var keys: [VerificationKey]
        /// Published keys not used, with why (for logs and dry runs).
        public var ignored: [(kid: String?, reason: IgnoredKey)]
        /// The JWKS answer's `max-age`, if it had one.
        public var maxAge: Int64?
        /// The JWKS URL the keys came from (the discovery document's, with `discovery`).
        public var jwksURL: String
        /// The published numbers of the keys used, to tell a key replaced under its old `kid`
        /// from a plain refresh.
        public var fingerprint: Set<String>
    }

    /// Discovery and JWKS documents are small; a larger answer is refused unread.
    public static let maxDocumentBytes = 1 << 20

    let client: HTTPClient
    let timeout: TimeAmount
    /// Hosts keys may come from (`keyFetch.allowedHosts`); nil: any.
    let allowedHosts: ProviderHosts?

    public init(client: HTTPClient, timeout: Duration, allowedHosts: ProviderHosts?) {
        self.client = client
        self.allowedHosts = allowedHosts
        self.timeout = .nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000)
    }

    /// An HTTP client for these fetches on `group`: TLS trusting `caFile` (PEM bundle), or the
    /// system's roots without one; no redirects followed (a provider's keys are where its
    /// configuration says). The caller shuts it down.
    public static func makeClient(caFile: String?, group: any EventLoopGroup) throws -> HTTPClient {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let caFile { tls.trustRoots = .file(caFile) }
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls, redirectConfiguration: .disallow)
        configuration.httpVersion = .http1Only
        return HTTPClient(eventLoopGroupProvider: .shared(group), configuration: configuration)
    }

    public func fetch(_ issuer: FetchedIssuer) async throws(FetchFailure) -> Result {
        let jwksURL: String
        switch issuer.source {
        case .configured:
            throw .notAKeySet
        case .jwks(let url):
            jwksURL = url
        case .discovery(let url):
            let (body, _) = try await self.get(url)
            jwksURL = try DiscoveryDocument.parse(body).jwksURL(forIssuer: issuer.issuer)
        }
        let (body, cacheControl) = try await self.get(jwksURL)
        let set: JSONWebKeySet
        do {
            set = try JSONWebKeySet.parse(body)
        } catch {
            throw .notAKeySet
        }
        var keys: [VerificationKey] = []
        var ignored: [(kid: String?, reason: IgnoredKey)] = []
        var fingerprint: Set<String> = []
        for jwk in set.keys {
            switch jwk.verificationKeys(pinned: issuer.algorithms) {
            case .keys(let usable):
                keys += usable
                fingerprint.insert([jwk.kid, jwk.alg, jwk.n, jwk.e, jwk.crv, jwk.x, jwk.y].map { $0 ?? "" }.joined(separator: " "))
            case .ignored(let reason): ignored.append((jwk.kid, reason))
            }
        }
        guard !keys.isEmpty else { throw .noUsableKey }
        return Result(keys: keys, ignored: ignored, maxAge: CacheControl.maxAge(cacheControl), jwksURL: jwksURL, fingerprint: fingerprint)
    }

    /// `fetch` as a value.
    public func outcome(of issuer: FetchedIssuer) async -> Swift.Result<Result, FetchFailure> {
        do throws(FetchFailure) {
            return .success(try await self.fetch(issuer))
        } catch {
            return .failure(error)
        }
    }

    private func get(_ url: String) async throws(FetchFailure) -> (body: [UInt8], cacheControl: String?) {
        // Checked before any request, for the discovery URL and for the JWKS URL a discovery
        // document names alike: a provider cannot point the gateway at a host outside the list.
        if let allowedHosts = self.allowedHosts {
            guard let host = URL(string: url)?.host, allowedHosts.allows(host: host) else { throw .hostNotAllowed }
        }
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "accept", value: "application/json")
        let response: HTTPClientResponse
        do {
            response = try await self.client.execute(request, timeout: self.timeout)
        } catch {
            throw .unreachable
        }
        guard response.status == .ok else {
            // The body is not read; dropping the response ends the exchange.
            throw .httpStatus(Int(response.status.code))
        }
        do {
            let body = try await response.body.collect(upTo: Self.maxDocumentBytes)
            return (Array(body.readableBytesView), response.headers.first(name: "cache-control"))
        } catch is NIOTooManyBytesError {
            throw .documentTooLarge
        } catch {
            throw .unreachable
        }
    }
}
