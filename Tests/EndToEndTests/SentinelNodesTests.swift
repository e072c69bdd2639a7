import Foundation
import RedisTestServer
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Three real gateway processes on Redis behind Sentinel (`RedisTestSentinel`: a primary, a
/// replica, three Sentinels; `redis.url` is `redis-sentinel://…`): they share quotas, admin
/// changes and revocations as they do on one server, and when the primary is killed under load
/// requests keep flowing in the tier's fail mode and admission through Redis comes back on the
/// promoted replica with no gateway restarted. Loads are bounded in requests and time.
final class SentinelNodesTests: AdminTestCase {
    var sentinel: RedisTestSentinel!

    override var redisURL: String { self.sentinel.url }

    /// `q1`: a day quota to share exactly; `q2`: limits high enough never to refuse, so that its
    /// every request is admitted through Redis (leases off) and the fail mode shows; its day
    /// counter counts its admissions.
    static let sentinelTree = AdminTestCase.tree + """
          - { id: q1, kind: customer, parent: gp, package: full, limits: { perDay: 300 } }
          - { id: q2, kind: customer, parent: gp, package: full, limits: { rate: 100000, burst: 100000, perDay: 1000000000 } }

        """

    /// Leases off: each admission asks Redis, so the nodes share every count exactly. The pooled
    /// tier fails closed, so requests admitted while no primary is reachable are visible (503).
    static let extraSettings = """
        quotas:
          failMode: { pooled: closed }
          leases: { refreshInterval: 0ms }

        """

    override func setUp() async throws {
        try await super.setUp()
        self.sentinel = try RedisTestSentinel()
        for adminPort in [self.adminPort, try freePort(), try freePort()] {
            try self.addNode(
                adminPort: adminPort, settings: self.adminSettings(adminPort: adminPort, extra: Self.extraSettings), files: ["tenants.yaml": Self.sentinelTree]
            )
        }
    }

    override func tearDown() async throws {
        self.stopNodes()
        if (self.testRun?.totalFailureCount ?? 0) > 0 { print(self.sentinel.sentinelLogs) }
        self.sentinel.stop()
        try await super.tearDown()
    }

    func dataToken(_ tenant: String, jti: String? = nil) throws -> String {
        let claims = jti.map { ["jti=\($0)", "exp=\(Int(Date().timeIntervalSince1970) + 600)"] } ?? []
        return try TestIdentity.mint(issuer: "https://id.platform.test", key: TestIdentity.platform.privateKey, kid: "platform-1", tenant: tenant, claims: claims)
    }

    func status(_ port: Int, _ token: String) -> Int {
        (try? request(port: port, "GET", "/v1/ledger", headers: [("Authorization", "Bearer \(token)")]).status) ?? 0
    }

    func portalName(_ port: Int) -> String? {
        guard let response = try? request(port: port, "GET", "/v1/branding", headers: [("Host", "portal.p1.test")]) else { return nil }
        return (try? response.json()["displayName"]) as? String
    }

    /// Seconds from now until `seen` holds on every node (polled every 10 ms), nil after 5 s.
    func secondsUntilEveryNode(_ seen: (Int) -> Bool) -> Double? {
        let start = Date()
        var pending = Set(self.nodes.map(\.gateway.port))
        while Date().timeIntervalSince(start) < 5 {
            pending = pending.filter { !seen($0) }
            if pending.isEmpty { return Date().timeIntervalSince(start) }
            usleep(10_000)
        }
        return nil
    }

    /// A branding change made on node 0's admin API, then the seconds until all three serve it.
    func changeBrandingAndWait(to name: String) throws -> Double {
        let token = try self.token("partner-admin", "p1")
        let changed = try self.admin("PATCH", "/admin/v1/nodes/p1", token: token, ifMatch: try self.etag("p1"), body: #"{"branding":{"displayName":"\#(name)"}}"#)
        XCTAssertEqual(changed.status, 200, changed.text)
        return try XCTUnwrap(self.secondsUntilEveryNode { self.portalName($0) == name }, "not every node served \(name)")
    }

    /// A token used (and cached) on every node, revoked with `erp-gateway token revoke`, then the
    /// seconds until all three refuse it.
    func revokeAndWait(jti: String) throws -> Double {
        let token = try self.dataToken("c1", jti: jti)
        for node in self.nodes { XCTAssertEqual(self.status(node.gateway.port, token), 200) }
        let (exit, output) = try runCommand(GatewayProcess.binary, ["token", "revoke", "--config", self.nodes[0].gateway.configPath, "--jti", jti, "--expires-at", "\(Int(Date().timeIntervalSince1970) + 600)"])
        XCTAssertEqual(exit, 0, output)
        return try XCTUnwrap(self.secondsUntilEveryNode { self.status($0, token) == 401 }, "not every node refused the revoked token")
    }

    /// Statuses seen by the load, with when they were seen.
    final class Timeline: @unchecked Sendable {
        private let lock = NSLock()
        private(set) var answers: [(at: Date, status: Int)] = []

        func add(_ status: Int) {
            self.lock.lock()
            defer { self.lock.unlock() }
            self.answers.append((Date(), status))
        }

        var all: [(at: Date, status: Int)] {
            self.lock.lock()
            defer { self.lock.unlock() }
            return self.answers
        }
    }

    /// A flag the test thread sets and the load threads read.
    final class Flag: @unchecked Sendable {
        private let lock = NSLock()
        private var set = false
        var isSet: Bool {
            self.lock.lock()
            defer { self.lock.unlock() }
            return self.set
        }
        func raise() {
            self.lock.lock()
            self.set = true
            self.lock.unlock()
        }
    }

    /// A thread per port sending `token`'s request until `stop` is raised, at most `requests`
    /// each and 30 s: on one keep-alive connection, or on a new connection per request
    /// (`fresh`: quota refusals then cost no pause, see operations.md). Returns when all are done.
    static func load(ports: [Int], token: String, requests: Int, fresh: Bool = false, pacing: useconds_t = 0, into timeline: Timeline, stop: Flag = Flag()) {
        let text = requestText("GET", "/v1/ledger", headers: [("Authorization", "Bearer \(token)")] + (fresh ? [("Connection", "close")] : []))
        let group = DispatchGroup()
        for port in ports {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                let deadline = Date().addingTimeInterval(30)
                var client: RawHTTPConnection?
                for _ in 0..<requests where Date() < deadline && !stop.isSet {
                    if client == nil || fresh { client = try? RawHTTPConnection(port: port, receiveTimeout: 5) }
                    guard let connection = client, (try? connection.send(text)) != nil, let response = try? connection.readResponse() else {
                        timeline.add(0)
                        client = nil
                        continue
                    }
                    timeline.add(response.status)
                    if pacing > 0 { usleep(pacing) }
                }
            }
        }
        group.wait()
    }

    func testThreeNodesShareQuotasAdminChangesAndRevocationsThroughSentinel() throws {
        // 360 requests at once for a customer allowed 300 a day, spread over the three nodes.
        let timeline = Timeline()
        Self.load(ports: self.nodes.map(\.gateway.port), token: try self.dataToken("q1"), requests: 120, fresh: true, into: timeline)
        let statuses = Dictionary(grouping: timeline.all, by: \.status).mapValues(\.count)
        print("q1 over three nodes through sentinel: \(statuses)")
        XCTAssertEqual(statuses[200], 300, "exactly the day quota admitted, over all nodes")
        XCTAssertEqual(statuses[429], 60)

        let changed = try self.changeBrandingAndWait(to: "Northwind Cloud")
        let revoked = try self.revokeAndWait(jti: "sentinel-1")
        print(String(format: "through sentinel: admin change on all 3 nodes after %.3f s, revocation after %.3f s", changed, revoked))
        XCTAssertLessThan(changed, 1.0, "an admin change reaches every node within a second")
        XCTAssertLessThan(revoked, 1.0, "a revocation reaches every node within a second")
    }

    func testThePrimaryKilledUnderLoadFailsClosedThenRecoversWithoutARestart() throws {
        let pids = self.nodes.map(\.gateway.process.processIdentifier)
        let (ports, token) = (self.nodes.map(\.gateway.port), try self.dataToken("q2"))
        let timeline = Timeline()
        let stop = Flag()
        let loadDone = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            Self.load(ports: ports, token: token, requests: 20_000, pacing: 2_000, into: timeline, stop: stop)
            loadDone.signal()
        }
        usleep(1_000_000)
        let (_, failover) = try self.sentinel.killPrimaryAndAwaitFailover()
        let killedAt = Date().addingTimeInterval(-failover)
        // Recovered once 30 answers in a row are admissions again; the load goes on a second.
        let recovered = self.eventually(20) {
            let answers = timeline.all
            guard let lastRefusal = answers.lastIndex(where: { $0.status != 200 }) else { return false }
            return answers.count - lastRefusal > 30
        }
        usleep(1_000_000)
        stop.raise()
        XCTAssertEqual(loadDone.wait(timeout: .now() + 40), .success)
        XCTAssertTrue(recovered, "admission through Redis never came back")

        let answers = timeline.all
        let before = answers.filter { $0.at < killedAt }
        let refusals = answers.filter { $0.status != 200 }
        let counts = Dictionary(grouping: answers, by: \.status).mapValues(\.count)
        let firstRefusal = refusals.first.map { $0.at.timeIntervalSince(killedAt) } ?? 0
        let lastRefusal = refusals.last.map { $0.at.timeIntervalSince(killedAt) } ?? 0
        print(String(
            format: "primary killed under load: sentinels failed over after %.2f s; 503 from %.2f s to %.2f s after the kill; statuses %@",
            failover, firstRefusal, lastRefusal, "\(counts)"
        ))
        XCTAssertFalse(before.isEmpty)
        XCTAssertTrue(before.allSatisfy { $0.status == 200 }, "all admitted before the kill")
        XCTAssertEqual(Set(counts.keys), [200, 503], "only admissions and the closed fail mode: no hang, no other error (\(counts))")
        let after = answers.filter { $0.at.timeIntervalSince(killedAt) > lastRefusal }
        XCTAssertGreaterThanOrEqual(after.count, 30)
        XCTAssertTrue(after.allSatisfy { $0.status == 200 })
        // Replication is asynchronous: what the primary counted just before it died may not have
        // reached the replica. The day counter on the new primary against the admissions seen.
        let day = DateFormatter()
        day.timeZone = TimeZone(identifier: "UTC")
        day.dateFormat = "yyyyMMdd"
        let counterKey = "erp-admin-test:q:{globex}:q2:day:\(day.string(from: Date()))"
        let counted = try XCTUnwrap(self.sentinel.primary.flatMap { Int(RedisTestSentinel.command(port: $0.port, ["GET", counterKey]).first ?? "") })
        print("q2's day counter on the new primary: \(counted) for \(counts[200] ?? 0) admissions answered (\((counts[200] ?? 0) - counted) not counted)")
        XCTAssertEqual(self.nodes.map(\.gateway.process.processIdentifier), pids)
        XCTAssertTrue(self.nodes.allSatisfy { $0.gateway.process.isRunning }, "no gateway restarted")
        for node in self.nodes {
            XCTAssertTrue(node.gateway.waitForLog("redis primary switched"), node.gateway.log.suffix(3_000).description)
        }

        // The subscriptions moved too: admin changes and revocations still reach every node.
        let changed = try self.changeBrandingAndWait(to: "After Failover")
        let revoked = try self.revokeAndWait(jti: "sentinel-after")
        print(String(format: "after the failover: admin change on all 3 nodes after %.3f s, revocation after %.3f s", changed, revoked))
        XCTAssertLessThan(changed, 1.0)
        XCTAssertLessThan(revoked, 1.0)
    }
}
