import Foundation
import GatewayConfig
import Hierarchy
import Logging
import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP1
import NIOHTTP2
@testable import Quotas
import TokenAuth
import XCTest
@testable import ProxyEngine

/// The tenant phases and admission, driven through the real client pipeline on one
/// `EmbeddedEventLoop`: a signed token, the quota store's answers given by the test (admitted,
/// refused, failed, late) and each fail mode while the store is away — on a virtual clock.
final class AdmissionOnEmbeddedChannelTests: XCTestCase {
    static let secret = TenantAccessTests.secret
    /// Unix seconds when each test starts; the gateway's wall clock follows the loop from here.
    static let epoch: Int64 = 1_800_000_000

    private var gateway: EmbeddedGateway!
    private var loop: EmbeddedEventLoop { self.gateway.loop }
    private var client: EmbeddedChannel { self.gateway.client }
    private var upstreams: EmbeddedUpstreams { self.gateway.upstreams }
    private var records: RecordedRequests { self.gateway.records }
    private var store: ScriptedQuotaStore!
    private var environment: ProxyEnvironment { self.gateway.environment }

    override func tearDownWithError() throws {
        try self.gateway?.finish()
    }

    private func start(failMode: String = "open", storeReachable: Bool = true) throws {
        let secret = Data(Self.secret).base64EncodedString()
        self.store = ScriptedQuotaStore(reachable: storeReachable)
        self.gateway = try EmbeddedGateway("admission", extraSettings: "quotas: { failMode: { pooled: \(failMode) } }", quotas: self.store, epoch: Self.epoch, tree: """
            catalog:
              features: [ledger, payroll]
              packages: { basic: [ledger] }
              routes:
                - { path: /v1/ledger, feature: ledger }
                - { path: /v1/payroll, feature: payroll }
            tenants:
              - id: acme
                kind: oem
                placement: { tier: pooled, region: eu }
                issuers:
                  - iss: https://id.acme.test
                    audience: erp
                    allowHMAC: true
                    keys: [{ kid: k1, alg: HS256, secret: \(secret) }]
              - { id: north, kind: partner, parent: acme }
              - { id: shop, kind: customer, parent: north, package: basic, limits: { rate: 1, burst: 2, concurrency: 1 } }
              - { id: mall, kind: customer, parent: north, package: basic }
              - { id: dock, kind: customer, parent: north, package: basic, limits: { rate: 100, burst: 100 } }
            """)
    }

    /// A second client connection on the same loop.
    private func reconnect() throws {
        try self.gateway.reconnect()
    }

    private func token(_ tenant: String) throws -> String {
        try TokenMinter.mint(
            claims: ["iss": "https://id.acme.test", "sub": "u", "aud": "erp", "iat": .integer(Self.epoch), "exp": .integer(Self.epoch + 3600),
                     "jti": .string("t-\(tenant)"), "tenant": .string(tenant)],
            algorithm: .HS256, kid: "k1", secret: Self.secret
        )
    }

    private func send(
        _ method: String = "GET", path: String = "/v1/ledger", body: String? = nil, tenant: String = "shop", token: String? = nil, closing: Bool = false
    ) throws {
        let minted = try self.token(tenant)
        let framing = body.map { "Content-Length: \($0.utf8.count)\r\n" } ?? ""
        let credential = token ?? minted
        let connection = closing ? "Connection: close\r\n" : ""
        try self.client.writeInbound(ByteBuffer(string: "\(method) \(path) HTTP/1.1\r\nHost: erp.test\r\nAuthorization: Bearer \(credential)\r\n\(connection)\(framing)\r\n\(body ?? "")"))
    }

    /// The upstream connection that received the request answers 200.
    private func answer(_ upstream: EmbeddedChannel) throws {
        try upstream.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
    }

    private static let admitted = QuotaDecision.admitted([
        LevelRemaining(node: try! NodeID("shop"), kind: .customer, rate: 1, rateResetMilliseconds: 1000, day: nil, month: nil, concurrency: 0),
    ])

    private static let refused = QuotaDecision.refused(
        level: try! NodeID("shop"), kind: .rate, retryAfterMilliseconds: 1000, limit: 1, remaining: 0, resetAfterMicroseconds: 2_000_000
    )

    // MARK: - Through the store

    func testAnAdmittedRequestIsForwardedWithItsTenantContextAndGivesItsInFlightSlotBackAtTheEnd() throws {
        try self.start()
        try self.send()
        XCTAssertEqual(self.store.asked.count, 1)
        XCTAssertTrue(self.upstreams.opened.isEmpty, "nothing is forwarded before the store admits it")

        self.store.answer(0, with: .success(Self.admitted))
        let upstream = try XCTUnwrap(self.upstreams.opened.first)
        let forwarded = try upstream.channel.text()
        XCTAssertTrue(forwarded.contains("x-erp-tenant: shop"), forwarded)
        XCTAssertTrue(forwarded.contains("x-erp-context-signature: v1;key=ctx;"), forwarded)
        XCTAssertFalse(forwarded.lowercased().contains("authorization"), "the caller's credential stays at the gateway")
        XCTAssertTrue(self.store.released.isEmpty, "the slot is held while the request runs")

        try self.answer(upstream.channel)
        let responses = try self.client.responses()
        XCTAssertEqual(responses.map(\.status), [200])
        XCTAssertNotNil(responses.first?.value("ratelimit"), "admitted responses carry the remaining budget")
        XCTAssertEqual(self.store.released.count, 1, "the in-flight slot goes back when the exchange ends")
    }

    func testARefusalByTheStoreIs429AndTheNextIsRefusedFromMemory() throws {
        try self.start()
        try self.send()
        self.store.answer(0, with: .success(Self.refused))
        var responses = try self.client.responses()
        XCTAssertEqual(responses.map(\.status), [429])
        XCTAssertTrue(responses.first?.body.contains("quota-exceeded") == true)
        XCTAssertEqual(responses.first?.value("retry-after"), "1")

        try self.send()
        responses = try self.client.responses()
        XCTAssertEqual(responses.map(\.status), [429])
        XCTAssertEqual(self.store.asked.count, 1, "a customer known to be over its limit is refused without the store")
        XCTAssertTrue(self.upstreams.opened.isEmpty)
        XCTAssertTrue(self.store.released.isEmpty, "a refusal charged nothing to give back")
    }

    func testAClientThatLeavesWhileTheStoreAnswersHasItsChargeGivenBack() throws {
        try self.start()
        try self.send()
        try self.client.close().wait()
        self.store.answer(0, with: .success(Self.admitted))
        XCTAssertTrue(self.upstreams.opened.isEmpty)
        XCTAssertEqual(self.store.released.count, 1)
    }

    func testALeaseGrantedAfterItsClientLeftServesTheCustomersNextRequests() throws {
        try self.start()
        try self.send(tenant: "dock")
        let asked = try XCTUnwrap(self.store.asked.first)
        XCTAssertNotNil(asked.plan.lease, "a customer with a rate limit and no concurrency limit asks for a lease")
        try self.client.close().wait()
        let now = Self.epoch * 1_000_000
        self.store.answer(0, with: .success(.leased(QuotaLeaseGrant(
            units: 5,
            remaining: [LevelRemaining(node: try NodeID("dock"), kind: .customer, rate: 95, rateResetMilliseconds: 50, day: nil, month: nil, concurrency: nil)],
            rateBases: [now]
        ))))
        XCTAssertTrue(self.upstreams.opened.isEmpty, "nothing is forwarded for a client that left")

        try self.reconnect()
        try self.send(tenant: "dock")
        XCTAssertEqual(self.store.asked.count, 1, "the grant the departed request asked for admits the next request without the store")
        let upstream = try XCTUnwrap(self.upstreams.opened.first)
        try self.answer(upstream.channel)
        XCTAssertEqual(try self.client.responses().map(\.status), [200])
    }

    func testTheLoopWakesForLeaseWorkOnlyWhileALeaseIsHeld() throws {
        try self.start()
        self.loop.advanceTime(by: .seconds(5))
        XCTAssertNil(self.environment.leaseWorkAt, "a loop holding no lease never wakes for lease work")
        XCTAssertTrue(self.store.leaseTraffic.isEmpty)

        try self.send(tenant: "dock")
        let now = Self.epoch * 1_000_000 + 5_000_000
        self.store.answer(0, with: .success(.leased(QuotaLeaseGrant(
            units: 5,
            remaining: [LevelRemaining(node: try NodeID("dock"), kind: .customer, rate: 95, rateResetMilliseconds: 50, day: nil, month: nil, concurrency: nil)],
            rateBases: [now]
        ))))
        try self.answer(try XCTUnwrap(self.upstreams.opened.first).channel)
        XCTAssertEqual(try self.client.responses().map(\.status), [200])
        XCTAssertNotNil(self.environment.leaseWorkAt, "a held lease is swept for idleness")

        // Unused for `idleAfter` (2 s: four refresh intervals of 500 ms), the lease's 4 units
        // left go back at the next sweep (every second), and then nothing is due.
        self.loop.advanceTime(by: .milliseconds(1_900))
        XCTAssertTrue(self.store.leaseTraffic.isEmpty, "a lease used 1.9 s ago is kept")
        self.loop.advanceTime(by: .milliseconds(1_200))
        XCTAssertEqual(self.store.leaseTraffic.map { $0.plan.lease?.want }, [0], "the idle lease is given back")
        XCTAssertEqual(self.environment.quotaGate.leases.count, 0)
        XCTAssertNil(self.environment.leaseWorkAt, "with no lease held the loop stops waking")
        self.loop.advanceTime(by: .seconds(5))
        XCTAssertEqual(self.store.leaseTraffic.count, 1)
    }

    /// A refill goes to the store 3 ms after the request that found its lease running low: each
    /// batch of lease work is a stretch of work on the loop (and on the store) that requests
    /// arriving meanwhile wait behind, so batches are kept small rather than gathered for 10 ms.
    func testARefillLeavesThreeMillisecondsAfterTheRequestThatQueuedIt() throws {
        try self.start()
        try self.send(tenant: "dock")
        let granted = Self.epoch * 1_000_000
        self.store.answer(0, with: .success(.leased(QuotaLeaseGrant(
            units: 20,
            remaining: [LevelRemaining(node: try NodeID("dock"), kind: .customer, rate: 80, rateResetMilliseconds: 200, day: nil, month: nil, concurrency: nil)],
            rateBases: [granted]
        ))))
        let upstream = try XCTUnwrap(self.upstreams.opened.first).channel
        try self.answer(upstream)
        XCTAssertEqual(try self.client.responses().map(\.status), [200])
        // Requests 5 ms apart, from the lease, until one leaves it running low.
        let dock = try NodeID("dock")
        var requests = 1
        while self.environment.quotaGate.leases.lease(of: dock)?.refillQueued != true {
            XCTAssertLessThan(requests, 20, "the lease ran low before its units ran out")
            guard requests < 20 else { return }
            self.loop.advanceTime(by: .milliseconds(5))
            try self.send(tenant: "dock")
            _ = try upstream.text()
            try self.answer(upstream)
            XCTAssertEqual(try self.client.responses().map(\.status), [200])
            requests += 1
        }
        let sentBefore = self.store.leaseTraffic.count
        XCTAssertEqual(self.store.asked.count, 1, "every request after the first came from the lease")
        self.loop.advanceTime(by: .microseconds(2_999))
        XCTAssertEqual(self.store.leaseTraffic.count, sentBefore)
        self.loop.advanceTime(by: .microseconds(1))
        XCTAssertEqual(self.store.leaseTraffic.count, sentBefore + 1)
        XCTAssertGreaterThan(self.store.leaseTraffic.last?.plan.lease?.want ?? 0, 0, "a refill, not a give-back")
    }

    func testATenantsOwnRefusalIsRecordedWithItsTenantAndRoute() throws {
        try self.start()
        try self.send(path: "/v1/payroll")
        XCTAssertEqual(try self.client.responses().map(\.status), [403])
        let refused = try XCTUnwrap(self.records.records.last)
        XCTAssertEqual(refused.problem?.slug, "feature-not-enabled")
        XCTAssertEqual(refused.tenant?.description, "acme/north/shop", "the tenant's figures count its refusals")
        XCTAssertEqual(refused.route, "/v1/payroll")

        try self.send(token: "not-a-token")
        XCTAssertEqual(try self.client.responses().map(\.status), [401])
        let unauthenticated = try XCTUnwrap(self.records.records.last)
        XCTAssertNil(unauthenticated.tenant, "no tenant before the token is verified")
        XCTAssertEqual(unauthenticated.route, "/v1/ledger")
    }

    func testABodyArrivingWhileTheStoreDecidesIsHeldAndForwarded() throws {
        try self.start()
        try self.send("POST", body: "{\"amount\":1}")
        XCTAssertTrue(self.upstreams.opened.isEmpty)
        self.store.answer(0, with: .success(Self.admitted))
        let upstream = try XCTUnwrap(self.upstreams.opened.first)
        XCTAssertTrue(try upstream.channel.text().hasSuffix("\r\n\r\n{\"amount\":1}"))
    }

    func testAConnectionThatKeepsBeingRefusedIsReadAfterTheRetryAfter() throws {
        try self.start()
        try self.send()
        self.store.answer(0, with: .success(Self.refused))
        try self.send()
        XCTAssertEqual(try self.client.responses().map(\.status), [429, 429], "refused at once, from memory")
        try self.send()
        XCTAssertEqual(try self.client.responses().map(\.status), [429], "the third refusal is answered too")
        // Its next request waits for the refusal's Retry-After (1 s) before it is even read.
        try self.send()
        XCTAssertTrue(try self.client.responses().isEmpty)
        self.loop.advanceTime(by: .milliseconds(999))
        XCTAssertTrue(try self.client.responses().isEmpty)
        XCTAssertEqual(self.store.asked.count, 1, "refusals during the flood stay cheap: no store round trip")
        self.loop.advanceTime(by: .milliseconds(1))
        // Read and served now; the refusal's time is up, so the store decides again.
        XCTAssertEqual(self.store.asked.count, 2)
        self.store.answer(1, with: .success(Self.refused))
        XCTAssertEqual(try self.client.responses().map(\.status), [429])
    }

    /// HTTP/2: each stream carries one request, so the refusals in a row are counted over the
    /// connection's streams — also those whose stream is reset after the answer, the body of its
    /// request still coming — and streams opened during the pause wait.
    func testAnHTTP2ConnectionThatKeepsBeingRefusedPausesItsNewStreams() throws {
        try self.start()
        let connection = HTTP2Connection()
        func stream(withBodyToCome: Bool = false) throws -> EmbeddedChannel {
            let stream = EmbeddedChannel(loop: self.loop)
            try GatewayServer.configureHTTP2Stream(stream.pipeline.syncOperations, environment: self.environment, transport: .tls(acceptedAt: .now()), connection: connection)
            try stream.connect(to: SocketAddress(ipAddress: "198.51.100.7", port: 40000)).wait()
            var fields = [(":method", withBodyToCome ? "POST" : "GET"), (":scheme", "https"), (":authority", "erp.test"), (":path", "/v1/ledger")]
            fields.append(("authorization", "Bearer \(try self.token("shop"))"))
            if withBodyToCome { fields.append(("content-length", "5")) }
            try stream.writeInbound(HTTP2Frame.FramePayload.headers(.init(headers: HPACKHeaders(fields), endStream: !withBodyToCome)))
            return stream
        }
        func statuses(_ stream: EmbeddedChannel) throws -> [String] {
            var statuses: [String] = []
            while let payload = try stream.readOutbound(as: HTTP2Frame.FramePayload.self) {
                if case .headers(let block) = payload, let status = block.headers.first(name: ":status") { statuses.append(status) }
            }
            return statuses
        }
        let first = try stream()
        self.store.answer(0, with: .success(Self.refused))
        XCTAssertEqual(try statuses(first), ["429"])
        XCTAssertEqual(try statuses(try stream(withBodyToCome: true)), ["429"], "refused at once, from memory")
        XCTAssertEqual(try statuses(try stream(withBodyToCome: true)), ["429"], "the third refusal in a row is answered too")
        // A stream opened now waits for the refusal's Retry-After (1 s) before it is served.
        let waiting = try stream()
        XCTAssertEqual(try statuses(waiting), [])
        self.loop.advanceTime(by: .milliseconds(999))
        XCTAssertEqual(try statuses(waiting), [])
        XCTAssertEqual(self.store.asked.count, 1)
        self.loop.advanceTime(by: .milliseconds(1))
        XCTAssertEqual(self.store.asked.count, 2, "served now; the refusal's time is up, so the store decides again")
        self.store.answer(1, with: .success(Self.refused))
        XCTAssertEqual(try statuses(waiting), ["429"])
    }

    /// A client that opens a new connection for every request (and closes it after the answer)
    /// is paced per customer: from its third refusal in a row the answer waits for the refusal's
    /// Retry-After; another customer's requests meanwhile are answered at once; a client that
    /// leaves while its answer is held gives its place back; an admitted closing request of the
    /// customer ends the streak.
    func testAClientThatReconnectsForEveryRefusedRequestGetsItsAnswerAfterTheRetryAfter() throws {
        try self.start()
        try self.send(closing: true)
        self.store.answer(0, with: .success(Self.refused))
        XCTAssertEqual(try self.client.responses().map(\.status), [429])
        try self.reconnect()
        try self.send(closing: true)
        XCTAssertEqual(try self.client.responses().map(\.status), [429], "the second refusal in a row is answered at once")
        try self.reconnect()
        try self.send(closing: true)
        XCTAssertTrue(try self.client.responses().isEmpty, "the third waits for the refusal's Retry-After (1 s)")
        XCTAssertEqual(self.environment.closingRefusals.held, 1)
        let held = self.client
        try self.gateway.reconnect(keepingPrevious: true)
        try self.send(tenant: "mall", closing: true)
        let upstream = try XCTUnwrap(self.upstreams.opened.last)
        try self.answer(upstream.channel)
        XCTAssertEqual(try self.client.responses().map(\.status), [200], "another customer's request is not held")
        self.loop.advanceTime(by: .milliseconds(999))
        XCTAssertTrue(try held.responses().isEmpty)
        self.loop.advanceTime(by: .milliseconds(1))
        let answered = try held.responses()
        XCTAssertEqual(answered.map(\.status), [429])
        XCTAssertEqual(answered.first?.value("retry-after"), "1")
        XCTAssertFalse(held.isActive, "the connection closes after the answer, as the client asked")
        XCTAssertEqual(self.environment.closingRefusals.held, 0)
        XCTAssertEqual(self.store.asked.count, 1, "refusals stay cheap while held: no store round trip")
        _ = try held.finish(acceptAlreadyClosed: true)

        // A client that leaves while its answer is held: nothing is written, its place is freed.
        // (The first refusal's time is up: the store decides, and refuses again.)
        try self.reconnect()
        try self.send(closing: true)
        XCTAssertEqual(self.store.asked.count, 2)
        self.store.answer(1, with: .success(Self.refused))
        XCTAssertEqual(self.environment.closingRefusals.held, 1, "the fourth refusal in a row is held too")
        try self.client.close().wait()
        self.loop.advanceTime(by: .seconds(1))
        XCTAssertEqual(self.environment.closingRefusals.held, 0)
        try self.reconnect()

        // Once the customer's closing request is admitted, its refusals start a new streak.
        try self.send(closing: true)
        XCTAssertEqual(self.store.asked.count, 3)
        self.store.answer(2, with: .success(Self.admitted))
        try self.answer(try XCTUnwrap(self.upstreams.opened.last).channel)
        XCTAssertEqual(try self.client.responses().map(\.status), [200])
        XCTAssertTrue(self.environment.closingRefusals.isEmpty)
    }

    /// A refused request whose body is still coming is answered at once even in a streak: held,
    /// its body would be buffered while the answer waits.
    func testARefusalWhoseBodyIsStillComingIsNeverHeld() throws {
        try self.start()
        try self.send(closing: true)
        self.store.answer(0, with: .success(Self.refused))
        for _ in 0..<2 {
            try self.reconnect()
            try self.send(closing: true)
        }
        XCTAssertEqual(self.environment.closingRefusals.held, 1, "the third closing GET in a row is held")
        let held = self.client
        try self.gateway.reconnect(keepingPrevious: true)
        let token = try self.token("shop")
        try self.client.writeInbound(ByteBuffer(string: "POST /v1/ledger HTTP/1.1\r\nHost: erp.test\r\nAuthorization: Bearer \(token)\r\nConnection: close\r\nContent-Length: 5\r\n\r\nab"))
        XCTAssertEqual(try self.client.responses().map(\.status), [429], "answered at once, its body still coming")
        XCTAssertEqual(self.environment.closingRefusals.held, 1)
        self.loop.advanceTime(by: .seconds(1))
        XCTAssertEqual(try held.responses().map(\.status), [429])
        XCTAssertEqual(self.environment.closingRefusals.held, 0)
        _ = try held.finish(acceptAlreadyClosed: true)
    }

    func testRefusalsBetweenAdmittedRequestsNeverPauseTheConnection() throws {
        try self.start()
        try self.send()
        self.store.answer(0, with: .success(Self.refused))
        XCTAssertEqual(try self.client.responses().map(\.status), [429])
        // One connection carrying two tenants: refusals of one between admitted requests of the
        // other are not "in a row", and nothing waits.
        for _ in 0..<4 {
            try self.send(tenant: "mall")
            let upstream = try XCTUnwrap(self.upstreams.opened.last)
            try self.answer(upstream.channel)
            try self.send()
            XCTAssertEqual(try self.client.responses().map(\.status), [200, 429], "each answered at once")
        }
    }

    // MARK: - Fail modes

    func testClosedRefusesWith503WhileTheStoreIsAway() throws {
        try self.start(failMode: "closed", storeReachable: false)
        try self.send()
        let responses = try self.client.responses()
        XCTAssertEqual(responses.map(\.status), [503])
        XCTAssertTrue(responses.first?.body.contains("quota-store-unavailable") == true)
        XCTAssertEqual(responses.first?.value("retry-after"), "1")
        XCTAssertTrue(self.store.asked.isEmpty, "no request waits on a store known to be away")
        XCTAssertTrue(self.upstreams.opened.isEmpty)
    }

    func testClosedAlsoAppliesWhenTheStoreFailsMidAdmission() throws {
        try self.start(failMode: "closed")
        try self.send()
        self.store.answer(0, with: .failure(ScriptedQuotaStore.Lost()))
        XCTAssertEqual(try self.client.responses().map(\.status), [503])
        XCTAssertTrue(self.upstreams.opened.isEmpty)
    }

    func testOpenForwardsWhileTheStoreIsAwayAndHoldsNothing() throws {
        try self.start(failMode: "open", storeReachable: false)
        try self.send()
        let upstream = try XCTUnwrap(self.upstreams.opened.first)
        try self.answer(upstream.channel)
        XCTAssertEqual(try self.client.responses().map(\.status), [200])
        XCTAssertTrue(self.store.asked.isEmpty)
        XCTAssertTrue(self.store.released.isEmpty, "nothing was charged, nothing is given back")
    }

    func testLocalEnforcesTheRateInTheLoopsMemoryWhileTheStoreIsAway() throws {
        try self.start(failMode: "local", storeReachable: false)
        // The burst of 2 passes, the third is refused; a second later one more passes.
        for expected in [200, 200] {
            try self.send()
            let upstream = try XCTUnwrap(self.upstreams.opened.last)
            try self.answer(upstream.channel)
            XCTAssertEqual(try self.client.responses().map(\.status), [UInt(expected)])
        }
        try self.send()
        XCTAssertEqual(try self.client.responses().map(\.status), [429])
        self.loop.advanceTime(by: .seconds(1))
        try self.send()
        let upstream = try XCTUnwrap(self.upstreams.opened.last)
        try self.answer(upstream.channel)
        XCTAssertEqual(try self.client.responses().map(\.status), [200])
        XCTAssertTrue(self.store.asked.isEmpty)
    }
}

/// A quota store whose answers the test gives: each admission waits until `answer` is called.
/// Every request's record, in the order the requests ended.
final class RecordedRequests: RequestObserver {
    private(set) var records: [RequestRecord] = []
    func requestEnded(_ record: RequestRecord) { self.records.append(record) }
}

final class ScriptedQuotaStore: QuotaStore {
    struct Lost: Error {}

    var reachable: Bool
    private(set) var asked: [(plan: QuotaPlan, promise: EventLoopPromise<QuotaDecision>)] = []
    private(set) var released: [QuotaPlan] = []

    init(reachable: Bool) {
        self.reachable = reachable
    }

    func answer(_ index: Int, with result: Result<QuotaDecision, any Error>) {
        self.asked[index].promise.completeWith(result)
    }

    func storeState(on loop: any EventLoop) -> QuotaStoreState {
        self.reachable ? .reachable : .unreachable(reason: "scripted away")
    }

    func plan(levels: [LevelLimits], oem: NodeID, cost: Int, now: Int64, meter customer: NodeID?) throws(RateLimitError) -> QuotaPlan {
        try QuotaPlan(levels: levels, oem: oem, cost: cost, now: now)
    }

    func admit(_ plan: QuotaPlan, on loop: any EventLoop) -> EventLoopFuture<QuotaDecision> {
        let promise = loop.makePromise(of: QuotaDecision.self)
        self.asked.append((plan, promise))
        return promise.futureResult
    }

    func release(_ plan: QuotaPlan, on loop: any EventLoop) -> EventLoopFuture<Void> {
        self.released.append(plan)
        return loop.makeSucceededVoidFuture()
    }

    /// Lease refills and give-backs sent, each with what its answer is handed to.
    private(set) var leaseTraffic: [(plan: QuotaPlan, answered: @Sendable (Result<QuotaDecision, any Error>, QuotaPlan) -> Void)] = []

    func send(
        _ plans: [QuotaPlan], on loop: any EventLoop, answered: @escaping @Sendable (Result<QuotaDecision, any Error>, QuotaPlan) -> Void
    ) -> EventLoopFuture<Void> {
        self.leaseTraffic += plans.map { ($0, answered) }
        return loop.makeSucceededVoidFuture()
    }
}

extension EmbeddedChannel {
    /// Everything the channel wrote so far, as text.
    func text() throws -> String {
        var wire = ByteBuffer()
        while let chunk = try self.readOutbound(as: IOData.self) {
            switch chunk {
            case .byteBuffer(let buffer): wire.writeImmutableBuffer(buffer)
            case .fileRegion: XCTFail("no file regions are written")
            }
        }
        return String(buffer: wire)
    }

    /// The responses the channel wrote so far.
    func responses() throws -> [WireResponse] {
        var wire = ByteBuffer()
        while let chunk = try self.readOutbound(as: ByteBuffer.self) {
            wire.writeImmutableBuffer(chunk)
        }
        return try WireResponse.parseAll(Array(wire.readableBytesView))
    }
}
