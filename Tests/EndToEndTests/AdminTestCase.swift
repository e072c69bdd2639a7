import Foundation
import XCTest

/// Gateways with the admin API on, against a real redis-server: the tree they start from, admin
/// tokens minted with `erp-gateway token mint`, and admin requests on the admin port.
class AdminTestCase: GatewayTestCase {
    var redis: RedisProcess!
    var adminPort = 0
    private var tokens: [String: String] = [:]

    static let tree = """
        catalog:
          features: [ledger, payroll]
          packages:
            basic: [ledger]
            full: [ledger, payroll]
          routes:
            - { path: /v1/ledger, feature: ledger }
        tenants:
          - id: acme
            kind: oem
            features: [ledger, payroll]
            limits: { rate: 1000 }
            placement: { tier: pooled, region: test }
            branding: { displayName: Acme ERP, termsUrl: "https://acme.test/terms", locked: [termsUrl] }
            portalDomains: [erp.acme.test]
          - id: p1
            kind: partner
            parent: acme
            features: [ledger]
            limits: { rate: 100 }
            portalDomains: [portal.p1.test]
          - { id: c1, kind: customer, parent: p1, package: basic }
          - { id: c1b, kind: customer, parent: p1, package: basic }
          - { id: p2, kind: partner, parent: acme }
          - { id: c2, kind: customer, parent: p2, package: full }
          - { id: globex, kind: oem, placement: { tier: pooled, region: test }, portalDomains: [erp.globex.test] }
          - { id: gp, kind: partner, parent: globex }
          - { id: g1, kind: customer, parent: gp, package: full }

        """

    /// `redis.url` of the settings: the test's one server unless a subclass points elsewhere.
    var redisURL: String { self.redis.url }

    /// The gateway nodes a test started on the one store with `addNode`.
    var nodes: [(gateway: GatewayProcess, adminPort: Int)] = []

    /// Starts one more gateway node whose admin listener is on `adminPort` (the settings must say
    /// so) and waits until it accepts there.
    @discardableResult
    func addNode(
        adminPort: Int, settings: String, files: [String: String], arguments: [String] = []
    ) throws -> GatewayProcess {
        let gateway = try GatewayProcess(settings: settings, files: files, arguments: arguments)
        try waitUntilAccepting(port: adminPort, process: gateway.process)
        self.nodes.append((gateway, adminPort))
        return gateway
    }

    /// Stops every node (each must exit 0 when `expectCleanExit`), printing their logs' ends when
    /// the test failed. Subclasses call it before stopping the store the nodes share.
    func stopNodes(expectCleanExit: Bool = true) {
        let failed = (self.testRun?.totalFailureCount ?? 0) > 0
        for (index, node) in self.nodes.enumerated() {
            if failed { print("--- node \(index + 1) (port \(node.gateway.port)) log ---\n\(node.gateway.log.suffix(4_000))") }
            let status = node.gateway.stop()
            if expectCleanExit { XCTAssertEqual(status, 0, "node \(index + 1)") }
        }
        self.nodes = []
    }

    /// Settings with `redis` and `admin`, and `extra` after them; the admin port is fixed per
    /// test so restarts keep it.
    /// `adminListener`: more keys of the admin listener's mapping (e.g. `, tls: { … }`).
    /// `redisURL`: another store than `redis` (a Redis Cluster's URL).
    func adminSettings(
        adminPort: Int, _ overrides: [String: [String: String]] = [:], adminListener: String = "", extra: String = "", redisURL: String? = nil
    ) -> String {
        gatewaySettings(
            endpoints: self.backends.map(\.port), overrides, tenantTree: "tenants.yaml",
            extra: SecurityMatrixTests.platformIssuer + """
                redis:
                  url: \(redisURL ?? self.redisURL)
                  keyPrefix: erp-admin-test
                admin:
                  listener: { address: 127.0.0.1, port: \(adminPort)\(adminListener) }
                  issuers:
                    - iss: https://admin.platform.test
                      audience: erp-admin
                      keys: [{ kid: admin-1, alg: ES256, pemFile: \(TestIdentity.admin.publicKey) }]

                """ + extra
        )
    }

    func startAdminGateway(tree: String = AdminTestCase.tree) throws -> GatewayProcess {
        let gateway = try GatewayProcess(settings: self.adminSettings(adminPort: self.adminPort), files: ["tenants.yaml": tree])
        try waitUntilAccepting(port: self.adminPort, process: gateway.process)
        return gateway
    }

    override func setUp() async throws {
        try await super.setUp()
        self.redis = try RedisProcess()
        self.adminPort = try freePort()
        try await self.startBackends(1)
    }

    override func tearDown() async throws {
        try await super.tearDown()
        self.redis.stop()
    }

    /// An admin token for `role` on `node` (none for platform admins), minted once per test.
    func token(_ role: String, _ node: String?) throws -> String {
        let key = "\(role)@\(node ?? "-")"
        if let token = self.tokens[key] { return token }
        var arguments = [
            "token", "mint", "--issuer", "https://admin.platform.test", "--key", TestIdentity.admin.privateKey, "--alg", "ES256", "--kid", "admin-1",
            "--tenant-claim", "role", "--tenant", role, "--audience", "erp-admin", "--ttl", "600", "--subject", "\(role)-user",
        ]
        if let node { arguments += ["--claim", "node=\(node)"] }
        let (status, output) = try runCommand(GatewayProcess.binary, arguments)
        XCTAssertEqual(status, 0, output)
        let token = output.trimmingCharacters(in: .whitespacesAndNewlines)
        self.tokens[key] = token
        return token
    }

    func admin(
        _ method: String, _ target: String, token: String?, ifMatch: String? = nil, body: String? = nil, port: Int? = nil
    ) throws -> RawHTTPConnection.Response {
        var headers: [(String, String)] = [("Connection", "close")]
        if let token { headers.append(("Authorization", "Bearer \(token)")) }
        if let ifMatch { headers.append(("If-Match", ifMatch)) }
        if body != nil { headers.append(("Content-Type", "application/json")) }
        return try request(port: port ?? self.adminPort, method, target, headers: headers, body: body)
    }

    /// The node's current ETag, read as the platform admin.
    func etag(_ id: String, port: Int? = nil) throws -> String {
        let response = try self.admin("GET", "/admin/v1/nodes/\(id)", token: try self.token("platform-admin", nil), port: port)
        XCTAssertEqual(response.status, 200, response.text)
        return try XCTUnwrap(response.header("etag"))
    }
}
