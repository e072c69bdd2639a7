import Certificates

/// The static settings of one gateway process, read from the settings file, validated once and
/// never mutated afterwards. Everything the data plane needs to know about listeners, limits,
/// timeouts and backend cells is here; tenant policy lives in the Hierarchy snapshot.
public struct GatewaySettings: Sendable, Hashable {
    public var listener: Listener
    public var limits: RequestLimits
    public var timeouts: Timeouts
    public var upstreamPool: UpstreamPool
    public var forwarding: Forwarding
    public var cells: [Cell]
    /// The cell that serves requests until tenant placement decides per customer.
    public var defaultCell: String
    /// Absolute path of the tenant-tree file (`TenantTreeLoader`) when loaded with
    /// `SettingsLoader.load(path:)`; nil when the gateway runs without tenants, as a plain proxy.
    public var tenantTreePath: String?
    /// Issuers that may speak for any customer (the platform's own identity service).
    public var platformIssuers: [IssuerDefinition] = []
    public var authentication = SettingsLoader.defaultAuthentication
    /// How the tenant context sent upstream is signed; required with a tenant tree.
    public var upstreamContext: UpstreamContext?
    /// The shared store every gateway node uses (revocations now; quotas and admin changes).
    public var redis: Redis?
    /// What quotas do while Redis cannot be reached, per isolation tier of the customer's cell.
    public var quotaFailModes: [Cell.Kind: QuotaFailMode] = [.pooled: .open, .dedicated: .open]
    /// Days of per-customer usage kept in Redis.
    public var usageRetentionDays = 400
    /// How quota units are leased to each event loop ahead of its requests (`quotas.leases`).
    public var quotaLeases = QuotaLeases()
    public var retries = SettingsLoader.defaultRetries
    public var outlierDetection = SettingsLoader.defaultOutlierDetection
    /// The admin API's listener and the issuers of admin tokens; nil: no admin API, and the
    /// tenant-tree file is the only source of the tree.
    public var admin: Admin?
    /// How each node publishes its per-minute tenant figures to the shared store (with `redis`).
    public var tenantHealth = TenantHealth()
    /// The ops listener (`/metrics`, `/healthz`, `/readyz`): its own address and port, apart
    /// from the data plane's and the admin API's. Unauthenticated by design, so bind it to a
    /// private interface. Nil: no ops listener, and no metrics are kept.
    public var ops: Ops?
    /// One JSON line per request (`accessLog`); off by default.
    public var accessLog = AccessLog.off
    /// Spans exported over OTLP/HTTP (`tracing`); nil: none.
    public var tracing: Tracing?
    /// Portal certificates uploaded through the admin API (`certificateUploads`); nil: uploads
    /// are refused and no node serves an uploaded certificate.
    public var certificateUploads: CertificateUploads?
    /// What browser apps on allowed origins may read of the answers (`cors`).
    public var cors = CORSSettings()

    /// Just-in-time support access (`supportAccess`); nil: support grants are refused and no
    /// support token is honoured.
    public var supportAccess: SupportAccess?

    /// Lifetimes and frame size of the WebSockets relayed on routes marked `websocket: true`.
    public var webSockets = WebSockets()

    /// Field masking of JSON responses (`masking`).
    public var masking = Masking()

    /// `masking`: a response whose fields are masked for its caller is held whole, parsed and
    /// written again, so its size is bounded; a larger one is refused (502
    /// `masked-response-too-large`), never passed on unmasked.
    public struct Masking: Sendable, Hashable {
        /// The largest response body masked.
        public var maxBodyBytes: Int = 1 << 20
        public static let maxBodyBytesRange = 1024...(64 << 20)

        public init() {}
    }

    /// `webSockets`: how long a relayed WebSocket may live. A socket holds a connection at each
    /// end and an in-flight unit of its tenant for its whole life, so none lives unbounded.
    public struct WebSockets: Sendable, Hashable {
        /// No frame either way for this long: the gateway closes the socket (1001).
        public var idleTimeout: Duration = .seconds(300)
        /// Open this long: the gateway closes the socket (1001), whatever its traffic.
        public var maxLifetime: Duration = .seconds(24 * 3600)
        /// On drain and when the customer's placement changes, how long an open socket keeps
        /// running before its close frame (1001); and, once the gateway sent a close frame, how
        /// long the two ends have to answer it before their connections are cut.
        public var closeGrace: Duration = .seconds(5)
        /// The largest frame relayed; a larger one closes the socket (1009). The relay holds a
        /// frame whole before passing it on, so this bounds its memory per direction.
        public var maxFrameBytes: Int = 1 << 20

        public init() {}
    }

    /// `certificateUploads`: the key-encryption key that seals uploaded private keys in the
    /// shared store and opens them on every node. Read and checked when the settings load, so a
    /// node never starts (or reloads) with a key it cannot use.
    public struct CertificateUploads: Sendable, Hashable, CustomStringConvertible, CustomReflectable {
        /// The key file, resolved against the settings file's directory; watched like key files.
        public var keyEncryptionKeyFile: String
        public var keyEncryptionKey: KeyEncryptionKey

        public init(keyEncryptionKeyFile: String, keyEncryptionKey: KeyEncryptionKey) {
            self.keyEncryptionKeyFile = keyEncryptionKeyFile
            self.keyEncryptionKey = keyEncryptionKey
        }

        // Two settings are the same when they name the same file holding the same key: the key's
        // identifier (a digest prefix) stands for its bytes, which never leave `KeyEncryptionKey`.
        public static func == (lhs: Self, rhs: Self) -> Bool {
            lhs.keyEncryptionKeyFile == rhs.keyEncryptionKeyFile && lhs.keyEncryptionKey.identifier == rhs.keyEncryptionKey.identifier
        }

        public func hash(into hasher: inout Hasher) {
            hasher.combine(self.keyEncryptionKeyFile)
            hasher.combine(self.keyEncryptionKey.identifier)
        }

        /// The file and the key's identifier: printing the settings never prints the key.
        public var description: String { "certificateUploads(\(self.keyEncryptionKeyFile), key \(self.keyEncryptionKey.identifier))" }
        public var customMirror: Mirror {
            Mirror(self, children: ["keyEncryptionKeyFile": self.keyEncryptionKeyFile, "keyEncryptionKeyIdentifier": self.keyEncryptionKey.identifier])
        }
    }

    /// `tenantHealth`: the per-partner and per-OEM figures every node keeps per minute and
    /// publishes to the shared store, which the admin API's health endpoint reads.
    public struct TenantHealth: Sendable, Hashable {
        /// How often a node writes its figures: the minutes that ended, and the current one so
        /// far. At most a minute, so that every minute is written after it ends.
        public var publishInterval: Duration = .seconds(60)
        /// How long published figures are kept.
        public var retentionMinutes = 60

        public init(publishInterval: Duration = .seconds(60), retentionMinutes: Int = 60) {
            self.publishInterval = publishInterval
            self.retentionMinutes = retentionMinutes
        }
    }

    /// `ops`: where the ops listener binds. One event loop serves it (scrapes and probes are few).
    public struct Ops: Sendable, Hashable {
        public var address: String
        public var port: Int

        public init(address: String, port: Int) {
            self.address = address
            self.port = port
        }
    }

    /// Delegated administration (docs/admin-api.md). With it, the tenant tree lives in the
    /// shared store: the file only seeds an empty store.
    public struct Admin: Sendable, Hashable {
        /// Its own address and port, apart from the data plane's.
        public var listener: Listener
        /// Issuers of admin tokens. Their tokens name a role and, except for platform admins,
        /// the node administered; they are never accepted on the data plane.
        public var issuers: [IssuerDefinition]
        /// The claim that carries the admin role.
        public var roleClaim: String
    }

    /// `quotas.failMode.<tier>` as the settings file spells it. What each mode does is the
    /// Quotas module's (`Quotas.QuotaFailMode`, applied by its `QuotaGate`); this module does
    /// not depend on Quotas, so the data plane maps one to the other.
    public enum QuotaFailMode: String, Sendable, Hashable, CaseIterable {
        case open
        case closed
        case local
    }

    /// `quotas.leases`: what the Quotas module's leases are sized by (`Quotas.QuotaLeaseSettings`,
    /// mapped by the data plane like `QuotaFailMode`).
    public struct QuotaLeases: Sendable, Hashable {
        /// A customer's lease holds about this long of its observed rate (or a third of the
        /// shortest rate window on its path, when that is shorter); 0 turns leases off.
        public var refreshInterval: Duration = .milliseconds(500)
        /// The most units one lease asks for at once.
        public var maxUnits = 1_000
        /// The most customers holding a lease on one event loop (about 4 KB each).
        public var maxLeases = 20_000

        public init(refreshInterval: Duration = .milliseconds(500), maxUnits: Int = 1_000, maxLeases: Int = 20_000) {
            self.refreshInterval = refreshInterval
            self.maxUnits = maxUnits
            self.maxLeases = maxLeases
        }
    }

    public struct Redis: Sendable, Hashable {
        /// `redis://[user[:password]@]host[:port][/db]` or `redis-sentinel://…/master[/db]`, or
        /// their TLS forms `rediss://`, `rediss-sentinel://`. Never logged: it may hold a password.
        public var url: String
        /// Prefix of every key and channel the gateway uses, so several deployments can share
        /// one Redis.
        public var keyPrefix: String
        /// With a `rediss` URL: trusted CAs, server name, client certificate (a cell's `tls`
        /// keys); `nil` there: the system's trust store and the URL's host.
        public var tls: CellTLS? = nil
    }

    public struct Authentication: Sendable, Hashable {
        /// Longer bearer tokens are refused before any parsing.
        public var maxTokenBytes: Int
        /// Verified tokens kept per event loop (0 disables the cache).
        public var tokenCacheEntries: Int
        /// How issuers' keys are fetched from their identity providers (`jwksUri`, `discovery`).
        public var keyFetch = KeyFetch()

        public init(maxTokenBytes: Int, tokenCacheEntries: Int, keyFetch: KeyFetch = KeyFetch()) {
            self.maxTokenBytes = maxTokenBytes
            self.tokenCacheEntries = tokenCacheEntries
            self.keyFetch = keyFetch
        }

        /// `authentication.keyFetch`: bounds on how often a provider is asked and how long its
        /// last keys are trusted without it.
        public struct KeyFetch: Sendable, Hashable {
            /// A PEM bundle of the CAs trusted for these fetches; nil: the system's trust store.
            public var caFile: String?
            /// Time for one fetch (connect, TLS, answer).
            public var timeout: Duration = .seconds(10)
            /// Refresh interval when the answer has no `Cache-Control: max-age`.
            public var defaultRefresh: Duration = .seconds(600)
            /// No provider is asked more often than this: a shorter `max-age` is raised to it, a
            /// failed fetch is retried after it, and an unknown `kid` refreshes early only when the
            /// last fetch started at least this long ago.
            public var minimumRefresh: Duration = .seconds(60)
            /// A longer `max-age` is lowered to this.
            public var maximumRefresh: Duration = .seconds(86_400)
            /// How long the last good keys still verify after their refresh was due and could not
            /// be made; then the issuer's tokens are refused (`issuer-keys-unavailable`).
            public var staleKeysFor: Duration = .seconds(6 * 3600)
            /// The providers' hosts keys may be fetched from; nil: any HTTPS host.
            public var allowedHosts: ProviderHosts?

            public init() {}
        }
    }

    /// HMAC-SHA256 keys for the context signature. The active key signs; backends accept every
    /// listed key, which is how a key is rotated without a flag day.
    public struct UpstreamContext: Sendable, Hashable {
        public struct SigningKey: Sendable, Hashable {
            public var id: String
            public var secret: [UInt8]
        }

        public var signingKeys: [SigningKey]
        public var activeKey: String

        public var active: SigningKey { self.signingKeys.first { $0.id == self.activeKey }! }
    }

    public struct Listener: Sendable, Hashable {
        public var address: String
        public var port: Int
        /// Number of event loops (threads) serving connections; defaults to the core count.
        public var eventLoops: Int?
        /// `listener.tls`: TLS is terminated on this listener; nil: plain HTTP. Only the data
        /// plane's listener takes it.
        public var tls: TLS? = nil

        /// `listener.tls`: the certificates the data-plane listener presents, chosen per handshake
        /// by the name the client asks for (SNI), and the oldest protocol version accepted. The
        /// files are read by the EdgeTLS module, at start and at every reload; here they are
        /// only named (paths resolved against the settings file's directory).
        public struct TLS: Sendable, Hashable {
            /// `minimumVersion`: nothing older than TLS 1.2 is ever accepted.
            public enum Version: String, Sendable, Hashable, CaseIterable {
                case tls12 = "1.2"
                case tls13 = "1.3"
            }

            /// One certificate chain (leaf first) and its private key, as PEM files.
            public struct CertificateFiles: Sendable, Hashable {
                /// Absolute path of the chain: the leaf certificate first, then its intermediates.
                public var certificate: String
                /// Absolute path of the leaf's private key (unencrypted PEM).
                public var key: String
                /// Where the pair is written in the settings file (`listener.tls`,
                /// `listener.tls.certificates[1]`) and its line, so a file that fails to load is
                /// reported where it is named.
                public var settingsKey: String
                public var line: Int?

                public init(certificate: String, key: String, settingsKey: String, line: Int? = nil) {
                    self.certificate = certificate
                    self.key = key
                    self.settingsKey = settingsKey
                    self.line = line
                }
            }

            /// Presented when no other certificate covers the name asked for, or none is asked.
            public var defaultCertificate: CertificateFiles
            /// Chosen by the names of their subjectAltName DNS entries.
            public var certificates: [CertificateFiles]
            public var minimumVersion: Version

            public init(defaultCertificate: CertificateFiles, certificates: [CertificateFiles] = [], minimumVersion: Version = .tls12) {
                self.defaultCertificate = defaultCertificate
                self.certificates = certificates
                self.minimumVersion = minimumVersion
            }

            /// The default first, then the others in the order written.
            public var allCertificates: [CertificateFiles] { [self.defaultCertificate] + self.certificates }

            /// Every certificate and key file, for change detection: a renewed file reloads.
            public var files: [String] { self.allCertificates.flatMap { [$0.certificate, $0.key] } }
        }

        /// HTTP/2 on the data plane's listener (`listener.http2`); the admin and ops listeners
        /// speak HTTP/1.1 only and ignore it.
        public var http2 = HTTP2()

        public init(address: String, port: Int, eventLoops: Int? = nil, tls: TLS? = nil, http2: HTTP2 = HTTP2()) {
            self.address = address
            self.port = port
            self.eventLoops = eventLoops
            self.tls = tls
            self.http2 = http2
        }

        /// `listener.http2`: whether HTTP/2 is spoken, and the bounds every HTTP/2 connection
        /// runs under. Each stream is one request through the same phases as an HTTP/1.1
        /// request; these bound what a connection may hold and how hard it may push.
        public struct HTTP2: Sendable, Hashable {
            /// HTTP/2 at all: offered through ALPN on a TLS listener, and the precondition of
            /// `cleartext`.
            public var enabled = true
            /// Accept HTTP/2 with prior knowledge (h2c) on a plain listener, told from HTTP/1.1
            /// by the connection preface. For deployments behind an L4 balancer.
            public var cleartext = false
            /// SETTINGS_MAX_CONCURRENT_STREAMS: requests one connection may have open at once.
            public var maxConcurrentStreams = 100
            /// SETTINGS_MAX_HEADER_LIST_SIZE in bytes (names, values and 32 per field, as
            /// RFC 9113 counts); nil: the HTTP/1.1 decoder's bound, derived from
            /// `limits.maxHeaderBytes` and `limits.maxURIBytes`.
            public var maxHeaderListSize: Int?
            /// SETTINGS_INITIAL_WINDOW_SIZE: request body bytes a stream may send ahead of the
            /// gateway reading them. What one connection can make the gateway hold is about
            /// `maxConcurrentStreams × initialWindowSize`.
            public var initialWindowSize = 65_535
            /// CONTINUATION frames allowed after one HEADERS frame.
            public var maxContinuationFrames = 5
            /// Outbound control frames (SETTINGS and PING acknowledgements) queued for a client
            /// that does not read them.
            public var maxBufferedControlFrames = 10_000
            /// Stream errors one connection may cause in its life.
            public var maxGlitches = 200
            /// RST_STREAM frames from the client (rapid reset, CVE-2023-44487).
            public var resetFrames = Rate(max: 200, per: .seconds(30))
            /// PING, SETTINGS and PRIORITY frames from the client.
            public var controlFrames = Rate(max: 200, per: .seconds(30))
            /// Stream errors the client causes.
            public var streamErrors = Rate(max: 200, per: .seconds(30))

            /// At most `max` events within any `per`; one more closes the connection with GOAWAY
            /// (ENHANCE_YOUR_CALM).
            public struct Rate: Sendable, Hashable {
                public var max: Int
                public var per: Duration

                public init(max: Int, per: Duration) {
                    self.max = max
                    self.per = per
                }
            }

            public init() {}
        }
    }

    public struct RequestLimits: Sendable, Hashable {
        /// Request line excluded: names and values of all header fields plus ": " and CRLF each.
        public var maxHeaderBytes: Int
        /// Length of the request target as sent (path and query).
        public var maxURIBytes: Int
        /// Largest request body accepted, declared or streamed.
        public var maxRequestBodyBytes: Int
    }

    public struct Timeouts: Sendable, Hashable {
        /// From the first byte of a request (or the connection's accept) to its complete head.
        public var headerRead: Duration
        /// While a request body streams in: the longest gap between two reads of it.
        public var requestBodyIdle: Duration
        /// How long a client connection may sit idle between requests; an HTTP/2 connection
        /// without open streams is closed with GOAWAY after as long.
        public var keepAliveIdle: Duration
        /// Establishing a TCP connection to an upstream endpoint.
        public var upstreamConnect: Duration
        /// From the request being fully sent upstream to the response head arriving.
        public var upstreamResponse: Duration
        /// On SIGTERM/SIGINT, how long in-flight requests may take to finish.
        public var shutdownGrace: Duration
        /// While a response streams out: the longest the client may take none of it (its
        /// connection, or its HTTP/2 stream's flow-control window, stays full).
        public var responseBodyIdle: Duration = .seconds(60)

        public init(
            headerRead: Duration, requestBodyIdle: Duration, keepAliveIdle: Duration, upstreamConnect: Duration, upstreamResponse: Duration,
            shutdownGrace: Duration, responseBodyIdle: Duration = .seconds(60)
        ) {
            self.headerRead = headerRead
            self.requestBodyIdle = requestBodyIdle
            self.keepAliveIdle = keepAliveIdle
            self.upstreamConnect = upstreamConnect
            self.upstreamResponse = upstreamResponse
            self.shutdownGrace = shutdownGrace
            self.responseBodyIdle = responseBodyIdle
        }
    }

    public struct UpstreamPool: Sendable, Hashable {
        /// Open connections to one endpoint from one event loop, leased and idle together.
        public var maxConnectionsPerEndpoint: Int
        /// An idle pooled connection is closed after this long; keep it below the upstream's own
        /// keep-alive timeout so the gateway, not the upstream, closes idle connections.
        public var idleTimeout: Duration
    }

    public struct Forwarding: Sendable, Hashable {
        /// When false (the default) client-sent X-Forwarded-* headers are replaced, since a client
        /// at the edge can claim any address. Set true only behind a trusted load balancer.
        public var trustClientForwardedHeaders: Bool
    }

    public struct Cell: Sendable, Hashable {
        public enum Kind: String, Sendable, Hashable { case pooled, dedicated }
        public var id: String
        public var kind: Kind
        public var region: String
        public var endpoints: [Endpoint]
        /// Active checks; nil leaves endpoint health to passive outlier detection alone.
        public var healthCheck: HealthCheck?
        public var limits: CellLimits
        /// Overrides `timeouts.upstreamConnect` for this cell's endpoints.
        public var connectTimeout: Duration?
        /// Overrides `timeouts.upstreamResponse` for this cell's endpoints.
        public var responseTimeout: Duration?
        /// Cells tried in order when none of this cell's endpoints can take a request. Never a
        /// dedicated cell; filtered per request by the customer's residency.
        public var fallback: [String]
        /// TLS to every endpoint (they are `https://` URLs); nil: plain HTTP to every endpoint.
        /// A cell is one or the other, never a mix.
        public var tls: CellTLS?

        public init(
            id: String, kind: Kind, region: String, endpoints: [Endpoint], healthCheck: HealthCheck? = nil,
            limits: CellLimits = CellLimits.default, connectTimeout: Duration? = nil, responseTimeout: Duration? = nil, fallback: [String] = [],
            tls: CellTLS? = nil
        ) {
            self.tls = tls
            self.id = id
            self.kind = kind
            self.region = region
            self.endpoints = endpoints
            self.healthCheck = healthCheck
            self.limits = limits
            self.connectTimeout = connectTimeout
            self.responseTimeout = responseTimeout
            self.fallback = fallback
        }
    }

    /// An HTTP GET sent to every endpoint of a cell, every `interval`; a 2xx answer within
    /// `timeout` is a success. The endpoint changes state after a run of results.
    public struct HealthCheck: Sendable, Hashable {
        public var path: String
        public var interval: Duration
        public var timeout: Duration
        public var healthyThreshold: Int
        public var unhealthyThreshold: Int

        public init(path: String, interval: Duration, timeout: Duration, healthyThreshold: Int, unhealthyThreshold: Int) {
            self.path = path
            self.interval = interval
            self.timeout = timeout
            self.healthyThreshold = healthyThreshold
            self.unhealthyThreshold = unhealthyThreshold
        }
    }

    /// Bounds on one cell's load, for the whole gateway process.
    public struct CellLimits: Sendable, Hashable {
        /// Requests waiting for an in-flight slot or a connection.
        public var maxPending: Int
        /// Requests sent to the cell and not yet answered.
        public var maxInFlight: Int
        /// `Retry-After` of a `cell-overloaded` answer.
        public var retryAfter: Duration

        public static let `default` = CellLimits(maxPending: 1000, maxInFlight: 10_000, retryAfter: .seconds(1))

        public init(maxPending: Int, maxInFlight: Int, retryAfter: Duration) {
            self.maxPending = maxPending
            self.maxInFlight = maxInFlight
            self.retryAfter = retryAfter
        }
    }

    /// When and how often a failed upstream attempt is tried again.
    public struct Retries: Sendable, Hashable {
        /// Attempts per request, the first included (1 never retries).
        public var maxAttempts: Int
        /// Retries in flight per cell, as a percentage of its live requests.
        public var budgetPercent: Int
        /// Retries always allowed in flight per cell, however quiet it is.
        public var minRetriesInFlight: Int

        public init(maxAttempts: Int, budgetPercent: Int, minRetriesInFlight: Int) {
            self.maxAttempts = maxAttempts
            self.budgetPercent = budgetPercent
            self.minRetriesInFlight = minRetriesInFlight
        }
    }

    /// Passive ejection of endpoints that fail real requests.
    public struct OutlierDetection: Sendable, Hashable {
        /// Connect failures or 5xx answers in a row that eject an endpoint.
        public var consecutiveFailures: Int
        /// First ejection; each further one in a row doubles, up to `maxEjection`.
        public var baseEjection: Duration
        public var maxEjection: Duration
        /// Most endpoints of a cell ejected at once, in percent (rounded down).
        public var maxEjectedPercent: Int

        public init(consecutiveFailures: Int, baseEjection: Duration, maxEjection: Duration, maxEjectedPercent: Int) {
            self.consecutiveFailures = consecutiveFailures
            self.baseEjection = baseEjection
            self.maxEjection = maxEjection
            self.maxEjectedPercent = maxEjectedPercent
        }
    }

    public struct Endpoint: Sendable, Hashable, CustomStringConvertible {
        public var host: String
        public var port: Int
        public var description: String { "\(self.host):\(self.port)" }
        /// `host:port` as a `Host` field spells it (RFC 3986 §3.2.2): an IPv6 address in brackets.
        public var authority: String { self.host.contains(":") ? "[\(self.host)]:\(self.port)" : self.description }

        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
    }

    public func cell(named id: String) -> Cell? {
        self.cells.first { $0.id == id }
    }
}
