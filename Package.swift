// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "erp-gateway",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "erp-gateway", targets: ["erp-gateway"]),
        .executable(name: "demo-backend", targets: ["demo-backend"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
    ],
    targets: [
        // C shims over the system libraries (Debian: libjwt-dev, libhiredis-dev).
        .systemLibrary(name: "CJWT", path: "Sources/CJWT", pkgConfig: "libjwt", providers: [.apt(["libjwt-dev"])]),
        // hiredis's .pc carries -D_FILE_OFFSET_BITS=64, which SwiftPM drops with a warning; the
        // module map links it directly instead.
        .systemLibrary(name: "CHiredis", path: "Sources/CHiredis", providers: [.apt(["libhiredis-dev"])]),
        // OpenSSL's libcrypto: token signatures checked with keys parsed once (TokenAuth).
        .systemLibrary(name: "COpenSSL", path: "Sources/COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),

        // X.509 chains and keys checked before they are served (pairing, validity, names), and
        // uploaded private keys sealed at rest; libcrypto, no I/O.
        .target(name: "Certificates", dependencies: ["COpenSSL"]),

        // JSON string literals for the few small documents rendered without an encoder.
        .target(name: "JSONText"),

        // Backend cells: endpoint health, outlier ejection, P2C choice, retry budget, cell load.
        // Pure value-type state machines; no I/O, no clock of their own.
        .target(name: "Cells"),

        // Field masking of JSON responses: the compiled field selectors and the one-pass masker.
        .target(name: "JSONMasking"),

        // Domain modules: pure Swift, no I/O.
        .target(name: "Hierarchy", dependencies: ["JSONText", "JSONMasking"]),
        .target(name: "TokenAuth", dependencies: ["CJWT", "COpenSSL", "JSONText"]),
        // Support grants as values (the grant's state machine, its scope, a session record),
        // shared by the admin API that decides them and the data plane that honours them.
        .target(name: "SupportAccess", dependencies: ["Hierarchy", "JSONText"]),
        .target(name: "Quotas", dependencies: [
            "Hierarchy", "RedisClient",
            .product(name: "NIOCore", package: "swift-nio"),
        ]),
        // Pipelined Redis client: hiredis parses and formats RESP under a SwiftNIO channel.
        .target(name: "RedisClient", dependencies: [
            "CHiredis",
            .product(name: "CoreMetrics", package: "swift-metrics"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        // Where revocations live in the shared store, and the feed that keeps every event loop's
        // `RevocationList` in step with it. TokenAuth keeps the list itself, and stays free of I/O.
        .target(name: "Revocations", dependencies: [
            "TokenAuth", "RedisClient",
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        // Per-tenant health: per-minute figures per partner and OEM in mergeable histograms.
        // Pure values, no I/O; the shared store's side is TenantHealthStore.
        .target(name: "TenantHealth", dependencies: ["Hierarchy"]),
        // Where every node publishes its per-minute tenant figures, and the admin API reads them.
        .target(name: "TenantHealthStore", dependencies: [
            "TenantHealth", "Hierarchy", "RedisClient",
            .product(name: "NIOCore", package: "swift-nio"),
        ]),

        // Static settings: YAML → validated, immutable GatewaySettings; the TLS client contexts of
        // `https` cells are compiled with the configuration (NIOSSL), once per set of settings.
        .target(name: "GatewayConfig", dependencies: [
            "Hierarchy", "TokenAuth", "Certificates", "RedisClient",
            .product(name: "Yams", package: "Yams"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
        ]),

        // Issuers' keys fetched from their identity providers (JWKS, OpenID discovery) over HTTPS,
        // off the request path; the refresh schedule and the documents are pure values.
        .target(name: "IssuerKeyFetch", dependencies: [
            "GatewayConfig", "TokenAuth",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "CoreMetrics", package: "swift-metrics"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        // Portal certificates uploaded through the admin API: where they live in the shared store,
        // which of them a node serves (owned by their node in its tree, key opened with its
        // key-encryption key), and the feed that brings every node the current set.
        .target(name: "CertificateUploads", dependencies: [
            "Certificates", "Hierarchy", "RedisClient",
            .product(name: "CoreMetrics", package: "swift-metrics"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        // The brand portal console's HTML, CSS and JavaScript modules, compiled into the binary
        // (the packaged gateway is one file); served by the admin listener at /console/.
        .target(name: "ConsoleAssets", resources: [.embedInCode("console")]),

        // Delegated administration: roles, subtree authorization, changes validated by the one
        // tree compiler, persisted and audited in the shared store; its own small HTTP listener.
        .target(name: "AdminAPI", dependencies: [
            "GatewayConfig", "Hierarchy", "TokenAuth", "Quotas", "RedisClient", "JSONText", "TenantHealth", "TenantHealthStore",
            "Certificates", "CertificateUploads", "ConsoleAssets", "SupportAccess",
            .product(name: "CoreMetrics", package: "swift-metrics"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        // TLS at the data-plane listener: the certificates of every configured and uploaded name,
        // one immutable snapshot swapped whole, chosen per handshake by the client's SNI.
        .target(name: "EdgeTLS", dependencies: [
            "Certificates", "GatewayConfig",
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "CoreMetrics", package: "swift-metrics"),
        ]),

        // The data plane on SwiftNIO: HTTP/1.1, and HTTP/2 streams run through the same phases.
        .target(name: "ProxyEngine", dependencies: [
            "GatewayConfig", "Hierarchy", "TokenAuth", "Quotas", "Cells", "COpenSSL", "RedisClient", "JSONText", "EdgeTLS", "SupportAccess", "JSONMasking",
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "NIOTLS", package: "swift-nio"),
            .product(name: "CoreMetrics", package: "swift-metrics"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOWebSocket", package: "swift-nio"),
            .product(name: "NIOHTTP2", package: "swift-nio-http2"),
            .product(name: "NIOExtras", package: "swift-nio-extras"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        // The access log: one JSON line per request from its `RequestRecord`, and the process's
        // log formats (text, JSON lines).
        .target(name: "AccessLog", dependencies: [
            "ProxyEngine", "GatewayConfig", "Quotas", "JSONText", "TokenAuth",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "NIOCore", package: "swift-nio"),
        ]),
        // Spans of each sampled request, built from its `RequestRecord` and exported over
        // OTLP/HTTP (JSON) by a batching exporter on a thread of its own.
        .target(name: "TraceExport", dependencies: [
            "ProxyEngine", "GatewayConfig", "JSONText",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),

        // Support engineers' requests under a grant, written to the customer's audit stream off
        // the request path through one bounded buffer.
        .target(name: "SupportSessionLog", dependencies: [
            "ProxyEngine", "SupportAccess", "Hierarchy", "RedisClient",
            .product(name: "CoreMetrics", package: "swift-metrics"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "NIOCore", package: "swift-nio"),
        ]),

        // The executable: command line and wiring only.
        .executableTarget(name: "erp-gateway", dependencies: [
            "AdminAPI", "Certificates", "GatewayConfig", "ProxyEngine", "EdgeTLS", "Hierarchy", "TokenAuth", "Quotas", "RedisClient", "Revocations", "AccessLog", "TraceExport",
            "TenantHealth", "TenantHealthStore", "CertificateUploads", "IssuerKeyFetch", "SupportAccess", "SupportSessionLog",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),

        // Loopback HTTP backends used by the tests and by the demo cells.
        .target(name: "UpstreamFixtures", dependencies: [
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOWebSocket", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "NIOTLS", package: "swift-nio"),
        ]),
        // Debian's chromium, headless, driving pages served from a loopback origin (browser tests).
        // DevToolsBrowser drives it over the DevTools protocol (a WebSocket) for the console's tests.
        .target(name: "BrowserHarness", dependencies: [
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOWebSocket", package: "swift-nio"),
        ]),
        // A real redis-server for the tests of every module that talks to Redis.
        .target(name: "RedisTestServer", dependencies: [
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
        ]),
        // Log lines kept in memory, for tests that search them.
        .target(name: "LogCapture", dependencies: [
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
        ]),
        // A certificate authority made at test time with the openssl tool (TLS tests).
        .target(name: "TestCertificateAuthority"),
        .executableTarget(name: "demo-backend", dependencies: [
            "UpstreamFixtures",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        // Compile time and memory of a generated 100,000-customer tree (bench/tree-compile.sh).
        .executableTarget(name: "tree-benchmark", dependencies: ["Hierarchy", "GatewayConfig"]),
        // Cost of a cold token verify, a cache hit, and libjwt's own verify (bench/token-verify.sh).
        .executableTarget(name: "token-benchmark", dependencies: ["TokenAuth", "CJWT"]),
        // CPU per KiB of masking JSON responses, against Foundation's parser (bench/masking.sh).
        .executableTarget(name: "masking-benchmark", dependencies: ["JSONMasking"]),
        // CPU per request of the client side's request decoder against SwiftNIO's
        // (bench/request-decode.sh).
        .executableTarget(name: "request-decode-benchmark", dependencies: [
            "ProxyEngine",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
        // SwiftNIO's HTTP/1 codecs relaying requests with none of the gateway's own work: the
        // floor under the gateway's proxy-only CPU per request (bench/compare.sh).
        .executableTarget(name: "nio-proxy-floor", dependencies: [
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),

        .testTarget(name: "HierarchyTests", dependencies: [
            "Hierarchy", "JSONMasking",
            .product(name: "PropertyBased", package: "swift-property-based"),
        ]),
        .testTarget(name: "TokenAuthTests", dependencies: ["TokenAuth"]),
        .testTarget(name: "JSONMaskingTests", dependencies: ["JSONMasking"]),
        .testTarget(name: "IssuerKeyFetchTests", dependencies: ["IssuerKeyFetch"]),
        .testTarget(name: "CertificatesTests", dependencies: ["Certificates", "TestCertificateAuthority"]),
        .testTarget(name: "CertificateUploadsTests", dependencies: [
            "CertificateUploads", "Certificates", "GatewayConfig", "Hierarchy", "RedisClient", "RedisTestServer", "TestCertificateAuthority", "LogCapture",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        .testTarget(name: "CellsTests", dependencies: ["Cells"]),
        .testTarget(name: "QuotasTests", dependencies: [
            "Quotas", "Hierarchy", "RedisClient", "RedisTestServer",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        .testTarget(name: "RedisClientTests", dependencies: [
            "RedisClient", "RedisTestServer", "TestCertificateAuthority",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        .testTarget(name: "RevocationsTests", dependencies: [
            "Revocations", "TokenAuth", "RedisClient", "RedisTestServer",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        .testTarget(name: "TenantHealthTests", dependencies: [
            "TenantHealth", "TenantHealthStore", "Hierarchy", "RedisClient", "RedisTestServer",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
        ]),
        .testTarget(name: "EdgeTLSTests", dependencies: [
            "EdgeTLS", "GatewayConfig", "TestCertificateAuthority", "LogCapture",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ]),
                .testTarget(name: "GatewayConfigTests", dependencies: [
            "GatewayConfig", "Hierarchy", "TestCertificateAuthority", "TokenAuth", .product(name: "Yams", package: "Yams"),
        ]),
        .testTarget(name: "AdminAPITests", dependencies: [
            "AdminAPI", "GatewayConfig", "Hierarchy", "TokenAuth", "RedisClient", "RedisTestServer", "TenantHealth",
            "Certificates", "CertificateUploads", "TestCertificateAuthority", "LogCapture", "ConsoleAssets", "SupportAccess", "SupportSessionLog",
            "ProxyEngine",
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "Yams", package: "Yams"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "ProxyEngineTests", dependencies: [
            "ProxyEngine", "GatewayConfig", "Hierarchy", "TokenAuth", "Quotas", "TestCertificateAuthority", "UpstreamFixtures", "LogCapture",
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "NIOTLS", package: "swift-nio"),
            .product(name: "NIOHTTP2", package: "swift-nio-http2"),
            .product(name: "NIOHPACK", package: "swift-nio-http2"),
        ]),
        .testTarget(name: "ObservabilityTests", dependencies: [
            "AccessLog", "TraceExport", "ProxyEngine", "GatewayConfig", "Hierarchy",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
        ]),
        .testTarget(name: "EndToEndTests", dependencies: [
            "UpstreamFixtures", "BrowserHarness", "RedisTestServer", "TestCertificateAuthority",
            // The deploy files (compose, Kubernetes manifests, settings) are read as YAML.
            .product(name: "Yams", package: "Yams"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            // The raw HTTP/2 client of the attack tests reads the gateway's header blocks with it.
            .product(name: "NIOHPACK", package: "swift-nio-http2"),
        ]),
    ],
    swiftLanguageModes: [.v6]
)

// Release builds leave out Swift's run-time exclusivity checks (`swift_beginAccess` around each
// access to a class's stored property, a global or a captured variable): the data plane's
// handlers are classes whose state is touched at every step. Measured with `bench/ab.sh`
// (medians of 10 alternating rounds of 5 s), this package's own modules without them: proxy-only
// 28.3 -> 26.7 µs of CPU per request, full pipeline 45.0 -> 42.5 µs; SwiftNIO and the other
// packages without them too: 27.1 -> 25.8 and 44.9 -> 41.2 µs more. The compile-time checks
// stay, and debug builds — the ones the test suite builds and runs — keep the run-time checks, so
// a conflicting access on any path the suite drives still traps there.
// Set here, the flag reaches this package's own targets only; the Dockerfile and every script in
// bench/ build the release binary with `-Xswiftc -enforce-exclusivity=unchecked` for the
// packages' modules too (`ReleaseBuildCommandTests`), as Swift server images commonly are built.
for target in package.targets where target.type != .system && target.type != .test {
    target.swiftSettings = (target.swiftSettings ?? []) + [
        .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))
    ]
}
