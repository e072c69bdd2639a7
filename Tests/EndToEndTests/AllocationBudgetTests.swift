import Foundation
import XCTest

/// Heap allocations per proxied request, counted in the real gateway binary (see
/// `AllocationCounter`), held to a committed budget per configuration and build: the test fails
/// when a change makes every request allocate more. Counts, not times: the same requests allocate
/// the same blocks on every run, so the figure is stable to a fraction of an allocation.
///
/// The load is the benchmarks' (bench/allocations.sh): one keep-alive connection, one event loop,
/// `--log-level error`, after a warm-up that fills the upstream pool and the token cache.
final class AllocationBudgetTests: GatewayTestCase {
    /// Allocations per request, measured with this test's load.
    struct Budget {
        var debug: Double
        var release: Double
    }

    // Budget = the count measured when the budget was last set, rounded up, + a margin of 2
    // allocations per request. Over ten runs the debug build varied by less than 1 per request
    // (proxy-only 241.0 to 241.1, full pipeline 778.3 to 779.4) and the release build not at
    // all, so the margin keeps the test from flaking on a loaded machine, while 3 or 4 more
    // allocations per request fail it.
    // First set 2026-12-03, before the data-plane redesign, from 241.0 / 779.4 (debug) and
    // 82.0 / 286.0 (release) allocations per request, proxy-only / full pipeline. Lowered when
    // the connection's timeouts became deadlines of one timer (no timer scheduled per keep-alive
    // request) and canonical paths skipped normalization: 214.1 / 745.2 and 57.0 / 261.1. Lowered
    // again when the tenant context was signed by a keyed MAC context line by line, its path and
    // features rendered in one buffer each, and client X-ERP-* names found without lower-casing
    // every name: 204.0 / 651.4 and 53.0 / 193.0; client X-ERP-* copies then removed once, not
    // twice: debug full pipeline 633.4 (release unchanged). Lowered when the data plane became
    // phases over state machines and lost its per-request closures, weak references, idle
    // timers, logger copies, hop-by-hop lists and header regrowth: 170.0 / 579.1 and 27.0 / 155.0.
    // Lowered when quota units were leased to each event loop, so that a request admitted from
    // a lease builds no plan and sends no script: full pipeline 382.3 (debug) and 60.0 (release).
    // Raised when the decoded and the admitted request became one object each (copies of them
    // retained and released every field: 16 % of the full pipeline's CPU, `bench/ab.sh`), 2
    // allocations per request; the RateLimit fields of an admission from a lease lost their
    // candidate lists and formatted policy names at the same time: proxy-only 173.1 (debug) and
    // 29.0 (release), full pipeline 369.7–385.1 (debug, over four runs on a loaded machine) and
    // 57.6 (release).
    // A keep-alive response's end written without a promise (the future is only needed to
    // close after it): 172.0 (debug) and 28.0 (release).
    // Lowered (debug) when the upstream connection came to speak HTTP/1.1 itself, without
    // SwiftNIO's client codec and header validator (`UpstreamResponseParser`): 165.0 debug,
    // release unchanged at 28.0 (the codec allocated as much, optimized).
    // Lowered when client responses were written by the connection handler itself, without
    // SwiftNIO's response encoder and header validator: 160.0 debug, 27.0 release.
    // Lowered when the upstream's keep-alive verdict, `Expect`, the head's framing fields, the
    // fields a `Connection` names and a canonical target were read in place (SwiftNIO's lookups
    // by name build arrays), a request's first endpoint was kept inline, an upstream head's
    // fields made `HTTPHeaders` whole and the upstream head built without copying the client's:
    // 103.0 debug, 23.0 release.
    // The client side's requests read by the gateway's own parser rather than SwiftNIO's
    // llhttp decoder: 104.0 debug (one allocation the unoptimized build makes), release
    // unchanged at 23.0; the debug budget keeps its 2 over.
    // Each HTTP/1.1 writer writing a head into the buffer of the one before, once the channel
    // has written that one out (`HTTP1Writing.HeadBuffer`): 100.0 debug, 19.0 release.
    // A route without fallbacks built without a list of cells, and the decoder handing its parts
    // to the connection handler directly: 91.0 debug, 18.0 release.
    // An upstream's response fields relayed as the bytes it sent (`FieldSection`), no string
    // made of them: 86.0 debug, 16.0 release. The trace context's ids kept as bits, made text
    // only for the forwarded `traceparent` (one string where there were three), and a relayed
    // head's added fields given room once: 84.0 debug, 14.0 release.
    // An endpoint chosen among candidates on the stack, and a relayed response head's fields
    // edited in place rather than copied first: 83.0 debug, 12.0 release.
    // A client's request fields kept as the bytes it sent (`RelayedRequestHead`): no string per
    // field, no copy of them for the upstream head: 76.0 debug, 10.0 release.
    static let proxyOnly = Budget(debug: 78, release: 12)
    // The bearer token read in place, not split and lower-cased: full pipeline 377.7 and 57.0.
    // Raised when a node with Redis kept per-tenant health: the observer that makes every
    // request build its RequestRecord costs 2.7 (debug), the health figures nothing more once a
    // tenant has been seen in the minute: 381.0 and 57.6.
    // Raised (debug only) with TLS, HTTP/2 and TLS to the cells in the build: 379.9–383.3
    // debug over four runs (timers and lease refills move it), while the release build is
    // unchanged (57.0, `BUILDS=release bench/allocations.sh`): an allocation the debug build
    // adds (not traced to its site), none the shipped build makes.
    // Lowered (debug) when the loop stopped waking every 10 ms for lease work and the count
    // stopped including what timers allocate while the requests are served: 367.2–371.1 over
    // five runs, two of them beside two processes spinning on both cores; release 53.5, and
    // 52.4 once a keep-alive response's end was written without a promise. With the snapshot
    // and cache entries as objects, leases re-sized every 100 ms (a lease sized over 10 s kept
    // the size a rate diluted by the idle measurement gave it, so runs differed by up to 20),
    // the timers' share taken as the median of five idle seconds and the lower of two batches
    // kept: 366.2–367.5 debug over three runs, 52.3 release; 367.6 beside two processes
    // spinning on both cores and 368.5 within the whole suite, so the debug budget keeps 6
    // over the quiet figure (a CI machine is slower still); the release budget stays tight.
    // Lowered when a lease refill's script call was written straight into the bytes sent (no
    // arrays of key and argument strings, no hiredis formatting): 356.1 debug, 49.6 release;
    // and when hiredis built its replies into arrays the reader keeps, not an object per
    // element: 355.7 and 48.0 (351.9–358.7 debug from run to run: budget 360).
    // Lowered (debug) with the upstream connection's own HTTP/1.1: 331.9 debug, 47.9 release
    // (the granted request an object of its own: one more allocation, no longer one past
    // malloc's per-thread cache).
    // A debug count with Redis moves with the timing of lease refills and timers: 351.9–358.7
    // over runs before, so the debug budgets with Redis keep 8 over the quiet figure and their
    // floor 20 below; release counts repeat to the allocation.
    // With client responses written by the connection handler: 323.9 debug, 46.9 release.
    // With fields read in place, the first endpoint inline and the upstream head built without
    // a copy: 255.5 debug, 42.9 release; with a token's scope checked without building the
    // path's list of ids: 248.9 and 38.9. With a lease's RateLimit counts added as the fields
    // are written, not in a list made per admission: 246.5 and 38.0. With each head written into
    // the buffer of the one before: 241.8 and 33.9. With a route's cells and the decoder's hand-
    // over as proxy-only's: 232.7 and 32.8–32.9. With the upstream's response fields relayed as
    // the bytes it sent: 222.4 debug, release unchanged at 32.8 (the benchmark backend's fields
    // fit in strings kept inline). With the trace ids kept as bits: 219.6 and 30.8. With the
    // context's signature field written into one string (no MAC array, no base64 string, no
    // interpolation): 221.6 debug (within its run-to-run spread), 27.1 release. With a tenant's
    // policy held by reference, the bearer token found over the header's bytes, the token cache
    // hashing a token's tail, `Authorization` removed before the gateway's fields are added and
    // the context's lines given to the MAC in one update: 182.2 debug (the debug build's walks
    // over characters and captured variables allocated), release unchanged at 27.1. With an
    // endpoint chosen among candidates on the stack and a relayed response head's fields edited
    // in place: 181.7 debug, 25.1 release. With the client's request fields kept as received:
    // 168.2 debug, 24.1 release.
    static let fullPipeline = Budget(debug: 175, release: 27)
    // The full pipeline with an ops listener, so that every request leaves a `RequestRecord` and
    // is counted into its metric series (handles kept per loop: no label formatting, no
    // allocation per request). Set 2026-12-03 from 379.6 (debug) and 57.0 (release): in the
    // release build metrics on cost no allocation per request at all (57.0 without them too).
    // That was measured before tenant health (on wherever Redis is) joined the same record: with
    // both, 381.0–382.7 (debug) over four runs, so the debug budget keeps the margin the others
    // have (about 3 over the measured figure). With TLS, HTTP/2 and TLS to the cells in the
    // build: 382.5–386.0 debug, release unchanged (57.0), hence 388.
    // With the two request objects: 372.2–386.3 debug, 57.8 release.
    // Without the timers' share and the 10 ms lease tick: 369.9–370.7 debug over five runs,
    // 53.4 release; 52.2 without the end's promise. Then as the full pipeline above:
    // 368.3–368.5 debug (370.0 beside two spinning processes, 370.1 within the whole suite),
    // 52.3 release.
    // With the script calls written straight into the bytes sent: 359.7 debug, 49.7 release;
    // with replies built into the reader's arrays, 358.1 and 47.9 (355.5 debug within the
    // whole suite, so the debug budget is the full pipeline's).
    // With the upstream connection's own HTTP/1.1: 334.3 debug, 47.9 release.
    // With client responses written by the connection handler: 324.6 debug, 46.9 release.
    // With fields read in place, the first endpoint inline and the upstream head built without
    // a copy: 257.7 debug, 42.9 release; with the scope check in place: 251.1 and 38.9; with a
    // lease's RateLimit counts added as the fields are written: 247.8 and 38.1; with each head
    // written into the buffer of the one before: 243.5 and 33.9; with a route's cells and the
    // decoder's hand-over as proxy-only's: 235.7 and 32.9; with the response fields relayed as
    // received: 225.0 and 32.8; with the trace ids kept as bits: 221.9 and 30.8; with the
    // signature field in one string: 223.7 and 27.1; with the authenticated path's copies and
    // passes trimmed (as the full pipeline above): 184.4 and 27.1.
    // With the endpoint's candidates on the stack and the response head edited in place: 184.1
    // debug, 25.1 release. With the client's request fields kept as received: 170.4 and 24.1.
    static let fullPipelineObserved = Budget(debug: 177, release: 27)
    // The full pipeline with leases off: every request builds its quota plan, sends the
    // admission script and reads its reply — the path of every customer whose lease is a single
    // unit (a few requests a second or fewer), which most customers of a large tree are.
    // Set 2026-12-04 after the script call came to be written straight into the bytes sent,
    // from 401.0 (debug) and 88.0 (release); before that change 566.0 and 143.0: the plan's key
    // strings (five per level), the arrays of keys and arguments, the concatenated command
    // line, hiredis's formatting and its copy, and the reply's per-level arrays regrowing.
    // Lowered when hiredis built each reply into arrays the reader keeps rather than a
    // `malloc`ed object per element (19 per quota script reply): 383.0 and 70.0.
    // Lowered (debug) with the upstream connection's own HTTP/1.1: 362.1 debug, 69.0 release.
    // With client responses written by the connection handler: 355.0 debug, 68.0 release.
    // With fields read in place, the first endpoint inline and the upstream head built without
    // a copy: 287.0 debug, 64.0 release; with the scope check in place: 279.0 and 60.0; with
    // each head written into the buffer of the one before: 277.0 and 56.0; with a route's cells
    // and the decoder's hand-over as proxy-only's: 267.0 and 55.0; with the response fields
    // relayed as received: 258.0 and 55.0; with the trace ids kept as bits: 256.0 and 53.0;
    // with the signature field in one string: 253.0 and 49.0; with the authenticated path's
    // copies and passes trimmed (as the full pipeline above): 214.0 and 49.0; with the
    // endpoint's candidates on the stack and the response head edited in place: 213.0 and 47.0;
    // with the client's request fields kept as received: 200.0 and 46.0.
    static let fullPipelineLeasesOff = Budget(debug: 207, release: 48)
    static let margin = 2.0
    /// A count this far below the budget fails too, as in SwiftNIO's allocation tests: an
    /// improvement lands with its lower budget, so the budget keeps guarding what was won.
    /// Release counts repeat within about one allocation per request; a debug count with Redis
    /// moves by up to 7 from run to run, so its floor is further below.
    static let slack = Budget(debug: 20, release: 10)

    static let warmUpRequests = 200
    /// The idle rate's windows: each takes in one of the once-a-second timers at least.
    static let idleWindows = 5
    static let idleWindow: TimeInterval = 1
    static let measuredRequests = 1_000

    var redis: RedisProcess?

    override func tearDown() async throws {
        try await super.tearDown()
        self.redis?.stop()
    }

    /// The gateway's arguments and environment for every run here.
    private func startCountedGateway(_ counter: AllocationCounter, settings: String, files: [String: String] = [:]) throws {
        self.gateway = try GatewayProcess(
            settings: settings, files: files, arguments: ["--log-level", "error", "--watch-interval-ms", "0"], environment: counter.environment
        )
    }

    func testProxyOnlyRequestsStayWithinTheAllocationBudget() async throws {
        let counter = try AllocationCounter()
        try await self.startBackends(1)
        try self.startCountedGateway(counter, settings: gatewaySettings(endpoints: self.backends.map(\.port), ["listener": ["eventLoops": "1"]]))
        let perRequest = try self.allocationsPerRequest(counter, headers: [])
        self.assertWithinBudget(perRequest, Self.proxyOnly, configuration: "proxy-only")
    }

    func testFullPipelineRequestsStayWithinTheAllocationBudget() async throws {
        try await self.measureFullPipeline(extra: "", budget: Self.fullPipeline, configuration: "full pipeline")
    }

    func testFullPipelineWithMetricsOnStaysWithinTheAllocationBudget() async throws {
        let ops = "ops:\n  address: 127.0.0.1\n  port: \(try freePort())\n"
        try await self.measureFullPipeline(extra: ops, budget: Self.fullPipelineObserved, configuration: "full pipeline, metrics on")
    }

    func testFullPipelineWithLeasesOffStaysWithinTheAllocationBudget() async throws {
        try await self.measureFullPipeline(
            leases: "quotas:\n  leases:\n    refreshInterval: 0ms\n", extra: "", budget: Self.fullPipelineLeasesOff, configuration: "full pipeline, leases off"
        )
    }

    /// Leases re-sized every 100 ms to the rate seen reach their largest size (20 units) at any
    /// rate above 200 requests a second, which both builds serve: the measured requests take one
    /// lease per 20 however fast this machine is. (Sized over 10 s, a lease kept for the whole
    /// run the size a rate diluted by the idle measurement gave it — a count that moved with the
    /// timing.)
    static let measuredLeases = "quotas:\n  leases:\n    refreshInterval: 100ms\n    maxUnits: 20\n"

    private func measureFullPipeline(leases: String = measuredLeases, extra: String, budget: Budget, configuration: String) async throws {
        let counter = try AllocationCounter()
        let redis = try RedisProcess()
        self.redis = redis
        try await self.startBackends(1)
        try self.startCountedGateway(
            counter,
            settings: gatewaySettings(
                endpoints: self.backends.map(\.port), ["listener": ["eventLoops": "1"]], tenantTree: "tenants.yaml",
                extra: redis.settings + leases + extra
            ),
            files: ["tenants.yaml": Self.tree]
        )
        // One token for every request: after the first, a hit in the verified-token cache.
        let token = try TestIdentity.mint(issuer: "https://id.acme.test", key: TestIdentity.acmeOld.privateKey, kid: "acme-1", tenant: "c1")
        let perRequest = try self.allocationsPerRequest(counter, headers: [("Authorization", "Bearer \(token)")])
        self.assertWithinBudget(perRequest, budget, configuration: configuration)
        XCTAssertGreaterThan(try redis.scriptRuns(), 0, "the quota scripts ran: every level was charged in Redis, a lease at a time")
    }

    /// One OEM, partner and customer, each with limits far above the load: every request is
    /// checked and charged at three levels, as in the benchmarks' tree.
    static let tree = """
        catalog:
          features: [ledger]
          packages: { basic: [ledger] }
          routes: [{ path: /v1/ledger, feature: ledger }]
        tenants:
          - id: acme
            kind: oem
            placement: { tier: pooled, region: test }
            limits: { rate: 900000, burst: 900000, perDay: 1000000000000, perMonth: 1000000000000 }
            issuers:
              - iss: https://id.acme.test
                audience: erp-gateway
                keys: [{ kid: acme-1, alg: RS256, pemFile: \(TestIdentity.acmeOld.publicKey) }]
          - { id: p1, kind: partner, parent: acme, limits: { rate: 500000, burst: 500000, perDay: 1000000000000 } }
          - { id: c1, kind: customer, parent: p1, package: basic, limits: { rate: 100000, burst: 100000, perDay: 1000000000000 } }

        """

    /// Sends the warm-up, then the measured requests, one after another on one connection, and
    /// returns the gateway's allocations while they were served, less what its timers allocate
    /// in the same time (tenant health once a second, lease sweeps: counts that follow the clock,
    /// not the requests), divided by the measured requests. Without that subtraction the figure
    /// followed the machine's speed: a loaded machine serving the same requests in twice the
    /// time counted several allocations per request more.
    ///
    /// Timers that fire rarely but allocate a lot (tenant health's publication, on each minute)
    /// land in a window now and then: the idle rate is the median of several short windows, and
    /// the requests are measured in two batches, the lower count kept, so one such burst moves
    /// neither.
    private func allocationsPerRequest(_ counter: AllocationCounter, headers: [(String, String)]) throws -> Double {
        // Idle first, then the connection, the warm-up (pools, the token cache, leases sized)
        // and right after it the measured requests.
        let idle = try counter.idleRate(windows: Self.idleWindows, of: Self.idleWindow)
        print(String(format: "allocations while idle: %.0f per second", idle))
        let client = try RawHTTPConnection(port: self.port)
        let text = requestText("GET", "/v1/ledger", headers: headers)
        func send(_ count: Int) throws {
            for _ in 0..<count {
                try client.send(text)
                let response = try client.readResponse()
                guard response.status == 200 else { throw RawHTTPConnection.Failure.malformed("status \(response.status): \(response.text)") }
            }
        }
        try send(Self.warmUpRequests)
        var batches: [Double] = []
        for _ in 0..<2 {
            let before = try counter.reading()
            try send(Self.measuredRequests)
            // What the last response set off (the exchange released, the upstream connection
            // back in the pool) is done well within this wait; the timers' share is subtracted.
            usleep(300_000)
            let after = try counter.reading()
            let served = Double(after.counts.allocations - before.counts.allocations)
            batches.append((served - idle * after.at.timeIntervalSince(before.at)) / Double(Self.measuredRequests))
        }
        print("allocations per request in each batch: \(batches.map { String(format: "%.1f", $0) }.joined(separator: ", "))")
        return batches.min()!
    }

    private func assertWithinBudget(_ perRequest: Double, _ budget: Budget, configuration: String, file: StaticString = #filePath, line: UInt = #line) {
        let build = GatewayProcess.buildDirectory.lastPathComponent
        let limit = build == "release" ? budget.release : budget.debug
        let measured = String(format: "%.1f", perRequest)
        print("heap allocations per request, \(configuration), \(build) build: \(measured) (budget \(limit))")
        XCTAssertLessThanOrEqual(
            perRequest, limit, "\(configuration) requests allocate more than the budget: \(measured) per request", file: file, line: line
        )
        XCTAssertGreaterThanOrEqual(
            perRequest, limit - (build == "release" ? Self.slack.release : Self.slack.debug),
            "\(configuration) requests allocate \(measured) per request, far below the budget of \(limit): lower the budget to the new count + \(Self.margin)",
            file: file, line: line
        )
    }
}
