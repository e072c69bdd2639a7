import Foundation
import XCTest

/// The ops listener of the real binary: a real Prometheus scrapes it while traffic runs, and
/// `/readyz` follows endpoint health and the quota store under each fail mode.
final class OpsListenerTests: GatewayTestCase {
    var redis: RedisProcess?
    var prometheus: PrometheusProcess?
    var processes: [BackendProcess] = []
    var opsPort = 0

    override func tearDown() async throws {
        self.prometheus?.stop()
        try await super.tearDown()
        self.redis?.stop()
        for process in self.processes { process.kill() }
    }

    func opsSettings() throws -> String {
        self.opsPort = try freePort()
        return "ops:\n  address: 127.0.0.1\n  port: \(self.opsPort)\n"
    }

    func ops(_ target: String, method: String = "GET") throws -> RawHTTPConnection.Response {
        try request(port: self.opsPort, method, target)
    }

    func get(_ tenant: String, path: String = "/v1/ledger") throws -> RawHTTPConnection.Response {
        let token = try TestIdentity.mint(issuer: "https://id.acme.test", key: TestIdentity.acmeOld.privateKey, kid: "acme-1", tenant: tenant)
        return try request(port: self.port, "GET", path, headers: [("Authorization", "Bearer \(token)")])
    }

    /// Polls `/readyz` until it answers `status`, for at most `seconds`; returns the last answer.
    func readyz(becomes status: Int, within seconds: Double = 15) throws -> RawHTTPConnection.Response {
        let deadline = Date().addingTimeInterval(seconds)
        var last = try self.ops("/readyz")
        while last.status != status, Date() < deadline {
            usleep(100_000)
            last = try self.ops("/readyz")
        }
        return last
    }

    func testPrometheusScrapesTheRequestLatencyAndQuotaSeries() async throws {
        let redis = try RedisProcess()
        self.redis = redis
        try await self.startBackends(1)
        self.gateway = try self.treeGateway(QuotaTests.tree, extra: SecurityMatrixTests.platformIssuer + redis.settings + self.opsSettings())
        let prometheus = try PrometheusProcess(scraping: self.opsPort)
        self.prometheus = prometheus

        // c2's partner allows 3 a day: three relayed, then its sibling c2b is refused twice.
        for _ in 0..<3 { XCTAssertEqual(try self.get("c2").status, 200) }
        for _ in 0..<2 { try self.assertProblem(try self.get("c2b"), status: 429, slug: "quota-exceeded") }
        // Refused before any quota: a route no catalog entry serves.
        XCTAssertEqual(try self.get("c2", path: "/v2/nothing").status, 404)

        let expectations: [(String, Double)] = [
            (#"sum(erp_gateway_requests_total{oem="acme",outcome="relayed",status="2xx",route="/v1/ledger",cell="test-cell",tier="pooled"})"#, 3),
            (#"sum(erp_gateway_requests_total{oem="acme",outcome="refused",status="4xx",problem="quota-exceeded",phase="admit"})"#, 2),
            (#"sum(erp_gateway_requests_total{problem="route-not-found",phase="route"})"#, 1),
            (#"sum(erp_gateway_added_latency_seconds_count{oem="acme",cell="test-cell",tier="pooled"})"#, 3),
            (#"sum(erp_gateway_upstream_latency_seconds_count{oem="acme",cell="test-cell",tier="pooled"})"#, 3),
            (#"sum(erp_gateway_quota_decisions_total{tier="pooled",decision="admitted"})"#, 3),
            (#"sum(erp_gateway_quota_decisions_total{tier="pooled",decision="refused"})"#, 2),
            (#"sum(erp_gateway_token_verifications_total{result="verified"})"#, 5),
            (#"erp_gateway_ready"#, 1),
            (#"erp_gateway_configuration_generation"#, 1),
        ]
        for (query, expected) in expectations {
            XCTAssertEqual(try prometheus.eventually(query, equals: expected), expected, query)
        }
        // Every added latency lies under the top bucket, and the upstream's time is not in it.
        let addedBelowOneSecond = try prometheus.value(#"sum(erp_gateway_added_latency_seconds_bucket{oem="acme",le="1.0"})"#)
        XCTAssertEqual(addedBelowOneSecond, 3)
        XCTAssertEqual(try prometheus.value(#"up{job="erp-gateway"}"#), 1)
    }

    /// Requests admitted from units the loop leased are counted as `source="lease"`; only
    /// those that waited for a round trip are `source="store"`.
    func testAdmissionsFromALeaseAreCountedApartFromRoundTrips() async throws {
        let redis = try RedisProcess()
        self.redis = redis
        try await self.startBackends(1)
        self.gateway = try self.treeGateway(AllocationBudgetTests.tree, extra: redis.settings + self.opsSettings())
        let requests = 200
        for _ in 0..<requests { XCTAssertEqual(try self.get("c1").status, 200) }

        let metrics = try self.ops("/metrics").text
        func admitted(from source: String) throws -> Int {
            let prefix = #"erp_gateway_quota_decisions_total{tier="pooled",decision="admitted",source="\#(source)"} "#
            let line = try XCTUnwrap(metrics.split(separator: "\n").first { $0.hasPrefix(prefix) }, "no \(source) series in \(metrics)")
            return try XCTUnwrap(Int(line.dropFirst(prefix.count)))
        }
        let fromLease = try admitted(from: "lease")
        let fromStore = try admitted(from: "store")
        XCTAssertEqual(fromLease + fromStore, requests)
        // At this test's pace (a new connection and token per request) a lease holds a few
        // units: about 40 % of the requests are admitted from one here.
        XCTAssertGreaterThan(fromLease, requests / 10, "a customer sending back to back is admitted from its lease")
        XCTAssertLessThanOrEqual(fromStore, try redis.scriptRuns(), "every admission counted as the store's was a script Redis ran")
    }

    func testTheOpsListenerAnswersItsThreePathsOnly() async throws {
        try await self.startBackends(1)
        self.gateway = try GatewayProcess(settings: gatewaySettings(endpoints: self.backends.map(\.port), extra: self.opsSettings()))
        XCTAssertEqual(try self.ops("/healthz").status, 200)
        XCTAssertEqual(try self.ops("/readyz").status, 200)
        let metrics = try self.ops("/metrics")
        XCTAssertEqual(metrics.status, 200)
        XCTAssertTrue(metrics.header("content-type")?.hasPrefix("text/plain; version=0.0.4") ?? false)
        XCTAssertTrue(metrics.text.contains("erp_gateway_ready 1"), metrics.text)
        let families = metrics.text.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }.map { String($0.split(separator: " ")[2]) }
        XCTAssertFalse(families.isEmpty)
        XCTAssertEqual(Set(families).subtracting(try DeployFilesTests.documentedMetrics()), [], "series docs/operations.md does not list")
        // Prometheus's own linter: names, types and a HELP line for every family.
        let exposition = FileManager.default.temporaryDirectory.appendingPathComponent("metrics-\(UUID().uuidString).txt")
        try metrics.text.write(to: exposition, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: exposition) }
        let (lintStatus, lint) = try runCommand(URL(fileURLWithPath: "/bin/sh"), ["-c", "/usr/bin/promtool check metrics < '\(exposition.path)'"])
        XCTAssertEqual(lintStatus, 0, lint)
        XCTAssertEqual(lint.trimmingCharacters(in: .whitespacesAndNewlines), "", lint)
        XCTAssertEqual(try self.ops("/v1/ledger").status, 404)
        XCTAssertEqual(try self.ops("/metrics", method: "POST").status, 405)
        XCTAssertEqual(try self.ops("/readyz", method: "DELETE").status, 405)
        // The data listener serves no ops path.
        XCTAssertNotEqual(try request(port: self.port, "GET", "/readyz").text, try self.ops("/readyz").text)
    }

    func testReloadsAreCountedAndTheGenerationFollows() async throws {
        try await self.startBackends(1)
        // Reloads on SIGHUP only, so that each one here is counted once.
        self.gateway = try GatewayProcess(
            settings: gatewaySettings(endpoints: self.backends.map(\.port), extra: self.opsSettings()), arguments: ["--watch-interval-ms", "0"]
        )
        func metrics() throws -> String { try self.ops("/metrics").text }
        XCTAssertTrue(try metrics().contains("erp_gateway_configuration_generation 1"))
        XCTAssertTrue(try metrics().contains(#"erp_gateway_configuration_reloads_total{result="applied"} 0"#))

        self.gateway.signal(SIGHUP)
        XCTAssertTrue(self.gateway.waitForLog("configuration reloaded"), self.gateway.log)
        XCTAssertTrue(try metrics().contains("erp_gateway_configuration_generation 2"))
        XCTAssertTrue(try metrics().contains(#"erp_gateway_configuration_reloads_total{result="applied"} 1"#))

        try self.gateway.replaceFile("gateway.yaml", with: "listener: { port: 1 }\n")
        self.gateway.signal(SIGHUP)
        XCTAssertTrue(self.gateway.waitForLog("configuration rejected"), self.gateway.log)
        XCTAssertTrue(try metrics().contains(#"erp_gateway_configuration_reloads_total{result="rejected"} 1"#))
        XCTAssertTrue(try metrics().contains("erp_gateway_configuration_generation 2"), "the previous configuration keeps serving")
    }

    func testReadinessFollowsTheHealthOfACellsEndpoints() async throws {
        self.processes = [try BackendProcess(name: "only")]
        let cells = """
            cells:
              - id: solo
                kind: pooled
                region: test
                endpoints: [127.0.0.1:\(self.processes[0].port)]
                healthCheck: { path: /healthz, interval: 100ms, timeout: 100ms, healthyThreshold: 1, unhealthyThreshold: 1 }
            defaultCell: solo

            """
        self.gateway = try GatewayProcess(settings: gatewaySettings(endpoints: [], cells: cells, extra: self.opsSettings()))
        XCTAssertEqual(try self.readyz(becomes: 200).status, 200)

        self.processes[0].kill()
        let down = try self.readyz(becomes: 503)
        XCTAssertEqual(down.status, 503, down.text)
        let reasons = try XCTUnwrap(try down.json()["reasons"] as? [[String: Any]])
        XCTAssertEqual(reasons.map { $0["reason"] as? String }, ["cell-unavailable"])
        XCTAssertEqual(reasons.first?["cell"] as? String, "solo")
        XCTAssertTrue(try self.ops("/metrics").text.contains(#"erp_gateway_endpoints{cell="solo",state="unhealthy"} 1"#))

        try self.processes[0].start()
        let back = try self.readyz(becomes: 200)
        XCTAssertEqual(back.status, 200, back.text)
    }

    /// A quota store that dies makes the gateway unready only where it refuses traffic.
    func startWithQuotaStore(failMode: String) async throws -> RedisProcess {
        let redis = try RedisProcess()
        self.redis = redis
        try await self.startBackends(1)
        self.gateway = try self.treeGateway(
            QuotaTests.tree, extra: SecurityMatrixTests.platformIssuer + redis.settings + "quotas:\n  failMode:\n    pooled: \(failMode)\n" + self.opsSettings()
        )
        // A request opens its loop's connection to the store, which is what sees it go.
        XCTAssertEqual(try self.get("c1").status, 200)
        XCTAssertEqual(try self.ops("/readyz").status, 200)
        return redis
    }

    func testAQuotaStoreThatDiesUnderAClosedFailModeMakesTheGatewayUnready() async throws {
        let redis = try await self.startWithQuotaStore(failMode: "closed")
        redis.stop()
        let unready = try self.readyz(becomes: 503)
        XCTAssertEqual(unready.status, 503, unready.text)
        let reasons = try XCTUnwrap(try unready.json()["reasons"] as? [[String: Any]])
        XCTAssertEqual(reasons.map { $0["reason"] as? String }, ["quota-store-unreachable"])
        XCTAssertEqual(reasons.first?["tier"] as? String, "pooled")
    }

    func testAGatewayStartedWithoutItsQuotaStoreUnderAClosedFailModeIsUnreadyBeforeAnyRequest() async throws {
        let redis = try RedisProcess()
        let port = redis.port
        redis.stop()
        try await self.startBackends(1)
        self.gateway = try self.treeGateway(
            QuotaTests.tree, extra: SecurityMatrixTests.platformIssuer + redis.settings + "quotas:\n  failMode:\n    pooled: closed\n" + self.opsSettings()
        )
        let unready = try self.readyz(becomes: 503)
        XCTAssertEqual(unready.status, 503, unready.text)
        XCTAssertTrue(unready.text.contains("quota-store-unreachable"), unready.text)

        self.redis = try RedisProcess(port: port)
        let ready = try self.readyz(becomes: 200)
        XCTAssertEqual(ready.status, 200, ready.text)
    }

    func testAQuotaStoreThatDiesUnderAnOpenFailModeLeavesTheGatewayReady() async throws {
        let redis = try await self.startWithQuotaStore(failMode: "open")
        redis.stop()
        // Once the data plane admits by its fail mode, the gateway knows the store is away.
        XCTAssertEqual(try self.get("c2").status, 200)
        XCTAssertTrue(self.gateway.waitForLog("quota store unavailable; admitting"), self.gateway.log)
        let ready = try self.ops("/readyz")
        XCTAssertEqual(ready.status, 200, ready.text)
        XCTAssertTrue(try self.ops("/metrics").text.contains(#"erp_gateway_quota_decisions_total{tier="pooled",decision="admitted",source="fail-open"} 1"#))
    }
}
