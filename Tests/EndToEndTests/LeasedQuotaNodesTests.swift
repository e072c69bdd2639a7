import Foundation
import XCTest

/// Quota leases across three real gateway processes on one real Redis: steady load on one
/// customer and on a partner's day budget shared by several customers. What the nodes admit
/// together never passes a level's limit, nearly all of it is used when demand exceeds it,
/// Redis sees few commands per admitted request, and a node killed mid-run strands at most
/// the documented bound. Every load loop is bounded in requests and time; nothing asserts on
/// time.
final class LeasedQuotaNodesTests: GatewayTestCase {
    var redis: RedisProcess!
    var nodes: [GatewayProcess] = []

    /// `quotas.leases.maxUnits` on every node.
    static let maxUnits = 100

    static let tree = """
        catalog:
          features: [ledger]
          packages: { basic: [ledger] }
          routes: [{ path: /v1/ledger, feature: ledger }]
        tenants:
          - id: acme
            kind: oem
            placement: { tier: pooled, region: test }
            issuers:
              - iss: https://id.acme.test
                audience: erp-gateway
                keys: [{ kid: acme-1, alg: RS256, pemFile: \(TestIdentity.acmeOld.publicKey) }]
          - { id: pa, kind: partner, parent: acme }
          - { id: solo, kind: customer, parent: pa, package: basic, limits: { rate: 100000, burst: 100000, perDay: 2500 } }
          - { id: steady, kind: customer, parent: pa, package: basic, limits: { rate: 100000, burst: 100000, perDay: 1000000000 } }
          - { id: pb, kind: partner, parent: acme, limits: { perDay: 3000 } }
          - { id: b1, kind: customer, parent: pb, package: basic, limits: { rate: 100000, burst: 100000 } }
          - { id: b2, kind: customer, parent: pb, package: basic, limits: { rate: 100000, burst: 100000 } }
          - { id: b3, kind: customer, parent: pb, package: basic, limits: { rate: 100000, burst: 100000 } }
          - { id: b4, kind: customer, parent: pb, package: basic, limits: { rate: 100000, burst: 100000 } }

        """

    override func setUp() async throws {
        try await super.setUp()
        self.redis = try RedisProcess()
        try await self.startBackends(1)
        let leases = "quotas:\n  leases:\n    refreshInterval: 500ms\n    maxUnits: \(Self.maxUnits)\n"
        for _ in 0..<3 {
            self.nodes.append(try self.treeGateway(Self.tree, ["listener": ["eventLoops": "1"]], extra: self.redis.settings + leases))
        }
    }

    override func tearDown() async throws {
        for node in self.nodes where (self.testRun?.totalFailureCount ?? 0) > 0 {
            print("--- node \(node.port) log ---\n\(node.log.suffix(4_000))")
        }
        for node in self.nodes { node.stop() }
        self.nodes = []
        try await super.tearDown()
        self.redis.stop()
    }

    /// Answers seen by the load, per customer.
    final class Tally: @unchecked Sendable {
        private let lock = NSLock()
        private(set) var admitted: [String: Int] = [:]
        private(set) var refused = 0
        private(set) var failed = 0
        /// Every answer by customer and status (0: no answer).
        private(set) var statuses: [String: [Int: Int]] = [:]

        func add(_ customer: String, status: Int) {
            self.lock.lock()
            defer { self.lock.unlock() }
            self.statuses[customer, default: [:]][status, default: 0] += 1
            switch status {
            case 200: self.admitted[customer, default: 0] += 1
            case 429: self.refused += 1
            default: self.failed += 1
            }
        }

        var totalAdmitted: Int {
            self.lock.lock()
            defer { self.lock.unlock() }
            return self.admitted.values.reduce(0, +)
        }
    }

    private var day: String {
        let formatter = DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd"
        return formatter.string(from: Date())
    }

    private func dayCounter(_ node: String) throws -> Int {
        Int(try self.redis.cli(["GET", "erp-test:q:{acme}:\(node):day:\(self.day)"]).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }

    private func meteredRequests(_ customer: String) throws -> Int {
        let reply = try self.redis.cli(["HGET", "erp-test:usage:{acme}:\(customer):\(self.day)", "requests"])
        return Int(reply.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }

    /// Stops every node gracefully: each gives its unused units back.
    private func stopNodes() {
        for node in self.nodes { XCTAssertEqual(node.stop(), 0) }
    }

    func testSteadyLoadOnOneCustomerCostsRedisFewCommandsPerRequest() throws {
        let workers = self.nodes.map { (port: $0.port, customers: ["steady"]) }
        // Warm up: k is measured over a refresh interval.
        _ = try self.load(workers, requests: 400, seconds: 20)
        let before = try self.redis.scriptRuns()
        let tally = try self.load(workers, requests: 1_500, seconds: 60)
        let commands = try self.redis.scriptRuns() - before
        let admitted = tally.totalAdmitted
        print("steady, 3 nodes: \(commands) scripts for \(admitted) admitted requests (\(Double(commands) / Double(max(admitted, 1))) per request)")
        XCTAssertEqual(tally.refused + tally.failed, 0)
        XCTAssertEqual(admitted, 4_500)
        XCTAssertLessThan(Double(commands) / Double(admitted), 0.05, "Redis commands per admitted request at steady state")
        self.stopNodes()
        XCTAssertEqual(try self.dayCounter("steady"), 5_700, "every unused unit went back; the day counts what was admitted")
        XCTAssertEqual(try self.meteredRequests("steady"), 5_700, "usage counts every admitted request")
    }

    func testDemandPastOneCustomersDayQuotaUsesItAndNeverMore() throws {
        let workers = self.nodes.map { (port: $0.port, customers: ["solo"]) }
        let tally = try self.load(workers, requests: 20_000, seconds: 90, untilRefusedFor: 4)
        self.stopNodes()
        let admitted = tally.admitted["solo"] ?? 0
        print("one customer, 3 nodes: admitted \(admitted) of 2500, \(tally.refused) refused")
        XCTAssertEqual(tally.failed, 0)
        XCTAssertLessThanOrEqual(admitted, 2_500, "over the customer's day quota")
        XCTAssertGreaterThanOrEqual(admitted, 2_450, "98 % of the quota used")
        XCTAssertEqual(try self.dayCounter("solo"), admitted, "the day counts exactly what was admitted once leases are back")
        XCTAssertEqual(try self.meteredRequests("solo"), admitted)
    }

    func testDemandPastAPartnersSharedBudgetUsesItAndNeverMore() throws {
        // Two workers a node, each cycling through the four customers.
        let customers = ["b1", "b2", "b3", "b4"]
        let workers = self.nodes.flatMap { node in [(port: node.port, customers: customers), (port: node.port, customers: customers.reversed())] }
        let tally = try self.load(workers, requests: 20_000, seconds: 90, untilRefusedFor: 4)
        self.stopNodes()
        let admitted = tally.totalAdmitted
        print("partner budget, 3 nodes x 4 customers: admitted \(admitted) of 3000 (\(tally.admitted)), \(tally.refused) refused")
        XCTAssertEqual(tally.failed, 0)
        XCTAssertLessThanOrEqual(admitted, 3_000, "over the partner's day budget")
        XCTAssertGreaterThanOrEqual(admitted, 2_940, "98 % of the budget used")
        XCTAssertEqual(try self.dayCounter("pb"), admitted)
        XCTAssertEqual(try customers.map(self.meteredRequests).reduce(0, +), admitted)
    }

    func testANodeKilledMidRunStrandsAtMostItsLeases() throws {
        let customers = ["b1", "b2"]
        let victim = self.nodes[2].process.processIdentifier
        let tally = Tally()
        // Every node under load; once a third of the budget is admitted, the third node is
        // killed with whatever it holds. The others go on until the budget is used.
        let killed = NSLock()
        nonisolated(unsafe) var done = false
        _ = try self.load(self.nodes.map { (port: $0.port, customers: customers) }, requests: 20_000, seconds: 90, untilRefusedFor: 4, tally: tally) {
            killed.lock()
            defer { killed.unlock() }
            if !done, tally.totalAdmitted >= 1_000 {
                done = true
                kill(victim, SIGKILL)
            }
        }
        XCTAssertTrue(done)
        self.nodes.removeLast()
        self.stopNodes()
        // Admitted requests whose answer the kill lost count as stranded here, never as missing.
        let admitted = tally.totalAdmitted
        let stranded = try self.dayCounter("pb") - admitted
        // The bound (docs/operations.md): per customer and event loop, two leases' worth and one
        // request's cost (one event loop here; every request costs 1).
        let bound = customers.count * 1 * (2 * Self.maxUnits + 1)
        print("node killed: admitted \(admitted) of 3000, \(stranded) units stranded (bound \(bound))")
        XCTAssertLessThanOrEqual(admitted, 3_000)
        XCTAssertGreaterThanOrEqual(stranded, 0)
        XCTAssertLessThanOrEqual(stranded, bound, "the killed node stranded more than its leases")
        XCTAssertGreaterThanOrEqual(admitted, 3_000 - bound)
    }
}

extension GatewayTestCase {
    /// One worker per entry, each on its own keep-alive connection to `port`, cycling through
    /// `customers`: at most `requests` requests and `seconds` each. With `untilRefusedFor`, a
    /// worker also stops once it has seen nothing but refusals that long (demand past the
    /// limit, all of it used: longer than the over-limit memory trusts a day refusal, and than
    /// the gateway pauses a connection refused again and again); refused requests are paced
    /// 2 ms apart. `afterEach` runs in
    /// every worker after each answer. `token` mints a customer's bearer token (by default from
    /// the `https://id.acme.test` issuer of the multi-node trees).
    func load(
        _ workers: [(port: Int, customers: [String])], requests: Int, seconds: Double, untilRefusedFor: Double? = nil,
        tally: LeasedQuotaNodesTests.Tally = LeasedQuotaNodesTests.Tally(), afterEach: @escaping @Sendable () -> Void = {},
        token: (_ customer: String) throws -> String = { try TestIdentity.mint(issuer: "https://id.acme.test", key: TestIdentity.acmeOld.privateKey, kid: "acme-1", tenant: $0) }
    ) throws -> LeasedQuotaNodesTests.Tally {
        var tokens: [String: String] = [:]
        for customer in Set(workers.flatMap(\.customers)) {
            tokens[customer] = try token(customer)
        }
        let texts = tokens.mapValues { requestText("GET", "/v1/ledger", headers: [("Authorization", "Bearer \($0)")]) }
        // A thread each: all workers at once, whatever the number of cores.
        let group = DispatchGroup()
        for index in workers.indices {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                work(index)
            }
        }
        group.wait()
        return tally

        @Sendable func work(_ index: Int) {
            let (port, customers) = workers[index]
            guard let client = try? RawHTTPConnection(port: port, receiveTimeout: 10) else { return }
            let deadline = Date().addingTimeInterval(seconds)
            var lastAdmitted = Date()
            for sent in 0..<requests where Date() < deadline {
                let customer = customers[sent % customers.count]
                guard (try? client.send(texts[customer]!)) != nil, let response = try? client.readResponse() else {
                    tally.add(customer, status: 0)
                    return
                }
                tally.add(customer, status: response.status)
                afterEach()
                if response.status == 200 {
                    lastAdmitted = Date()
                } else if let quiet = untilRefusedFor {
                    if Date().timeIntervalSince(lastAdmitted) > quiet { return }
                    usleep(2_000)
                }
            }
        }
    }
}
