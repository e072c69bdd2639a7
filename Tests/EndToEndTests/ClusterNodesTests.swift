import Foundation
import RedisTestServer
import XCTest

/// Three real gateway processes on one real Redis Cluster (three primaries, one replica each)
/// act as one: quotas exact across the nodes, an admin change and a token revocation seen by all
/// three within a second, and a primary lost under load — its replica promoted — costing its
/// tenants the tier's fail mode for the failover only, the other shards' tenants nothing, and no
/// gateway a restart. Leases are off (every admission is a script on the cluster), so what is
/// counted is what the store decided.
final class ClusterNodesTests: AdminTestCase {
    var cluster: RedisTestCluster!

    /// acme's keys (`{acme}`) and umbrella's (`{umbrella}`) live on different shards of a
    /// three-primary cluster made by `redis-cli --cluster create`; the admin keys (`{admin}`)
    /// on the third.
    static let clusterTree = """
        catalog:
          features: [ledger]
          packages: { basic: [ledger] }
          routes: [{ path: /v1/ledger, feature: ledger }]
        tenants:
          - { id: acme, kind: oem, placement: { tier: pooled, region: test }, portalDomains: [erp.acme.test] }
          - { id: pa, kind: partner, parent: acme, portalDomains: [portal.pa.test] }
          - { id: exact, kind: customer, parent: pa, package: basic, limits: { perDay: 300 } }
          - { id: steady, kind: customer, parent: pa, package: basic, limits: { perDay: 1000000000 } }
          - { id: umbrella, kind: oem, placement: { tier: pooled, region: test } }
          - { id: pu, kind: partner, parent: umbrella }
          - { id: other, kind: customer, parent: pu, package: basic, limits: { perDay: 1000000000 } }

        """

    static let quotas = """
        quotas:
          failMode: { pooled: closed }
          leases: { refreshInterval: 0ms }

        """

    override func setUp() async throws {
        try await super.setUp()
        self.cluster = try RedisTestCluster(primaries: 3, replicas: 1)
        for _ in 0..<3 {
            let adminPort = try freePort()
            let gateway = try self.addNode(
                adminPort: adminPort, settings: self.adminSettings(adminPort: adminPort, ["listener": ["eventLoops": "2"]], extra: Self.quotas, redisURL: self.cluster.url),
                files: ["tenants.yaml": Self.clusterTree]
            )
            XCTAssertTrue(gateway.waitForLog("revocation feed started"), gateway.log)
        }
    }

    override func tearDown() async throws {
        self.stopNodes(expectCleanExit: false)
        self.cluster?.stop()
        try await super.tearDown()
    }

    func bearer(_ customer: String, claims: [String] = []) throws -> String {
        try TestIdentity.mint(issuer: "https://id.platform.test", key: TestIdentity.platform.privateKey, kid: "platform-1", tenant: customer, claims: claims)
    }

    func status(_ port: Int, _ token: String) -> (Int, String?) {
        guard let response = try? request(port: port, "GET", "/v1/ledger", headers: [("Authorization", "Bearer \(token)")]) else { return (0, nil) }
        return (response.status, (try? response.json()["type"] as? String) ?? nil)
    }

    /// Seconds until `probe` holds, polled every 10 ms for at most 5 s; nil if it never does.
    func secondsUntil(_ probe: () throws -> Bool) rethrows -> Double? {
        let start = Date()
        while Date().timeIntervalSince(start) < 5 {
            if try probe() { return Date().timeIntervalSince(start) }
            usleep(10_000)
        }
        return nil
    }

    var day: String {
        let formatter = DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd"
        return formatter.string(from: Date())
    }

    /// A customer's day counter, read on the primary serving it now.
    func dayCounter(_ customer: String, oem: String = "acme") throws -> Int {
        let key = "erp-admin-test:q:{\(oem)}:\(customer):day:\(self.day)"
        return Int(try self.cluster.cli(try self.cluster.primary(forKey: key).port, ["GET", key])) ?? 0
    }

    func testQuotasAdminChangesAndRevocationsActAsOneAcrossThreeNodes() throws {
        XCTAssertNotEqual(try self.cluster.primary(forKey: "{acme}").port, try self.cluster.primary(forKey: "{umbrella}").port)

        // Quotas: 300 a day, demand of 330 spread over the three nodes: exactly 300 admitted.
        // (A connection refused again and again is slowed: few refusals a worker keep it short.)
        let workers = self.nodes.flatMap { node in [(port: node.gateway.port, customers: ["exact"]), (port: node.gateway.port, customers: ["exact"])] }
        let tally = try self.load(workers, requests: 55, seconds: 30, token: { try self.bearer($0) })
        print("quota over three nodes on a cluster: \(tally.statuses)")
        XCTAssertEqual(tally.admitted["exact"], 300, "exactly the day's quota, not one more")
        XCTAssertEqual(tally.refused, 30)
        XCTAssertEqual(tally.failed, 0)
        XCTAssertEqual(try self.dayCounter("exact"), 300)

        // An admin change on node 1 is served by the others within a second.
        let admin = try self.token("platform-admin", nil)
        let changed = try self.admin(
            "PATCH", "/admin/v1/nodes/pa", token: admin, ifMatch: try self.etag("pa", port: self.nodes[0].adminPort),
            body: #"{"branding":{"displayName":"Northwind Cloud"}}"#, port: self.nodes[0].adminPort
        )
        XCTAssertEqual(changed.status, 200, changed.text)
        for node in self.nodes {
            let seconds = try XCTUnwrap(try self.secondsUntil {
                try request(port: node.gateway.port, "GET", "/v1/branding", headers: [("Host", "portal.pa.test")]).json()["displayName"] as? String == "Northwind Cloud"
            }, "node on \(node.gateway.port) never served the change")
            print(String(format: "admin change served by node %d after %.3f s", node.gateway.port, seconds))
            XCTAssertLessThan(seconds, 1.0)
        }

        // A token revoked through one node's settings is refused by all three within a second,
        // cached copies included; a node started afterwards reads it from every shard.
        let expiresAt = Int(Date().timeIntervalSince1970) + 600
        let revoked = try self.bearer("steady", claims: ["jti=cluster-session", "exp=\(expiresAt)"])
        let kept = try self.bearer("steady", claims: ["jti=other-session", "exp=\(expiresAt)"])
        for node in self.nodes { XCTAssertEqual(self.status(node.gateway.port, revoked).0, 200) }
        let (status, output) = try runCommand(GatewayProcess.binary, [
            "token", "revoke", "--config", self.nodes[1].gateway.configPath, "--jti", "cluster-session", "--expires-at", "\(expiresAt)",
        ])
        XCTAssertEqual(status, 0, output)
        for node in self.nodes {
            let seconds = try XCTUnwrap(self.secondsUntil { self.status(node.gateway.port, revoked) == (401, "urn:erp-gateway:problem:token-revoked") },
                                        "node on \(node.gateway.port) never refused the revoked token")
            print(String(format: "revocation observed by node %d after %.3f s", node.gateway.port, seconds))
            XCTAssertLessThan(seconds, 1.0)
            XCTAssertEqual(self.status(node.gateway.port, kept).0, 200)
        }
        self.nodes[2].gateway.stop()
        let restarted = try GatewayProcess(
            settings: self.adminSettings(adminPort: self.nodes[2].adminPort, extra: Self.quotas, redisURL: self.cluster.url), files: ["tenants.yaml": Self.clusterTree]
        )
        self.nodes[2].gateway = restarted
        XCTAssertTrue(restarted.waitForLog("revocation feed started"))
        XCTAssertNotNil(self.secondsUntil { self.status(restarted.port, revoked) == (401, "urn:erp-gateway:problem:token-revoked") }, "a new node knows earlier revocations")
    }

    func testAPrimaryFailingOverUnderLoadCostsItsTenantsTheFailModeForTheFailoverOnly() throws {
        let acme = try self.cluster.primary(forKey: "{acme}")
        XCTAssertNotEqual(acme.port, try self.cluster.primary(forKey: "{umbrella}").port)
        let workers = self.nodes.flatMap { node in [(port: node.gateway.port, customers: ["steady", "other"]), (port: node.gateway.port, customers: ["other", "steady"])] }
        let tokens = ["steady": try self.bearer("steady"), "other": try self.bearer("other")]
        let token = { (customer: String) in tokens[customer]! }

        let before = try self.load(workers, requests: 50, seconds: 20, token: token)
        XCTAssertEqual(before.statuses["steady"], [200: 150])
        XCTAssertEqual(before.statuses["other"], [200: 150])

        // Under load: acme's primary is killed and its replica promoted.
        let during = LeasedQuotaNodesTests.Tally()
        let loadDone = DispatchSemaphore(value: 0)
        nonisolated(unsafe) let test = self
        Thread.detachNewThread {
            _ = try? test.load(workers, requests: 100_000, seconds: 6, tally: during, afterEach: { usleep(2_000) }, token: { tokens[$0]! })
            loadDone.signal()
        }
        usleep(300_000)
        let killedAt = Date()
        let promoted = try self.cluster.failOver(primaryPort: acme.port)
        print(String(format: "replica on %d promoted %.2f s after the primary was killed", promoted.port, Date().timeIntervalSince(killedAt)))
        XCTAssertEqual(loadDone.wait(timeout: .now() + 30), .success)
        print("during the failover: \(during.statuses)")
        XCTAssertEqual(Set(during.statuses["other", default: [:]].keys), [200], "the other shards' tenants never noticed")
        XCTAssertEqual(Set(during.statuses["steady", default: [:]].keys).subtracting([200, 503]), [], "acme's tenants: admitted, or the closed fail mode")
        XCTAssertGreaterThan(during.statuses["steady"]?[503] ?? 0, 0, "the closed fail mode answered while acme's shard was away")

        // Recovered, no restart: every node admits acme's customers through the store again.
        let probe = try self.bearer("steady")
        for node in self.nodes {
            let seconds = try XCTUnwrap(self.secondsUntil { self.status(node.gateway.port, probe).0 == 200 }, "node on \(node.gateway.port) never recovered")
            print(String(format: "node %d admits through the promoted replica %.2f s after the promotion", node.gateway.port, seconds))
        }
        let counterBefore = try self.dayCounter("steady")
        let after = try self.load(workers, requests: 50, seconds: 20, token: token)
        XCTAssertEqual(after.statuses["steady"], [200: 150])
        XCTAssertEqual(after.statuses["other"], [200: 150])
        XCTAssertGreaterThanOrEqual(try self.dayCounter("steady") - counterBefore, 150, "counted by the promoted replica")

        // What the failover cost the quota's exactness: admissions the store acknowledged that
        // the promoted replica does not count (written on the old primary, not yet replicated),
        // less requests in flight at the kill that ran but were answered by the fail mode.
        let admitted = (before.statuses["steady"]?[200] ?? 0) + (during.statuses["steady"]?[200] ?? 0) + (after.statuses["steady"]?[200] ?? 0)
        let probes = self.nodes.count
        let counted = try self.dayCounter("steady")
        print("failover: \(admitted + probes) admitted by the store, \(counted) counted after it: \(admitted + probes - counted) lost")
    }
}
