import Foundation
import UpstreamFixtures
import XCTest

/// Cells through the real binary, with real upstream servers the tests stop and start: endpoint
/// loss and recovery, health checks, outlier ejection, residency of fallbacks, dedicated cells,
/// per-cell limits and moving a customer between cells under load.
final class CellRoutingTests: GatewayTestCase {
    // MARK: - One cell, no tenants

    /// Backends run as their own processes, for tests that kill and restart them.
    private var processes: [BackendProcess] = []

    override func tearDown() async throws {
        for process in self.processes { process.kill() }
        self.processes = []
        try await super.tearDown()
    }

    /// One pooled cell over every backend (in-process ones, or `processes` when there are any),
    /// with fast health checks and quick ejections.
    private func singleCell(healthCheck: Bool, outliers: String = "") -> String {
        let check = healthCheck ? "    healthCheck: { path: /healthz, interval: 100ms, timeout: 100ms, healthyThreshold: 1, unhealthyThreshold: 1 }\n" : ""
        return """
            cells:
              - id: test-cell
                kind: pooled
                region: test
                endpoints: [\((self.processes.isEmpty ? self.backends.map(\.port) : self.processes.map(\.port)).map { "127.0.0.1:\($0)" }.joined(separator: ", "))]
            \(check)defaultCell: test-cell
            outlierDetection: { consecutiveFailures: 2, baseEjection: 300ms, maxEjection: 1s, maxEjectedPercent: 50 }
            \(outliers)
            """
    }

    private func startSingleCellGateway(backends count: Int, healthCheck: Bool, asProcesses: Bool = false) async throws {
        if asProcesses {
            self.processes = try (0..<count).map { try BackendProcess(name: "backend-\($0)") }
        } else {
            try await self.startBackends(count)
        }
        self.gateway = try GatewayProcess(settings: gatewaySettings(endpoints: [], cells: self.singleCell(healthCheck: healthCheck)))
    }

    func testAnEndpointGoingDownLosesNoRequestAndComesBackWhenRestarted() async throws {
        try await self.startSingleCellGateway(backends: 2, healthCheck: false, asProcesses: true)
        self.processes[0].kill()
        // Fresh connections spread over both event loops; every request is retried off the
        // dead endpoint (a refused connection never reached it, so even POST is safe).
        for index in 0..<30 {
            let method = index.isMultiple(of: 3) ? "POST" : "GET"
            let response = try request(port: self.port, method, "/orders/\(index)", body: method == "POST" ? "{\"n\":\(index)}" : nil)
            XCTAssertEqual(response.status, 200, "request \(index): \(response.text)")
            XCTAssertEqual(try SeenRequest(response).backend, "backend-1")
        }
        XCTAssertTrue(self.gateway.waitForLog("retrying on another endpoint"))

        try self.processes[0].start()
        // Ejections last 300 ms at first; then a probe request puts the endpoint back.
        let recovered = try self.eventually(10) {
            try SeenRequest(request(port: self.port, "GET", "/after-restart")).backend == "backend-0"
        }
        XCTAssertTrue(recovered, "traffic reaches the restarted endpoint again")
    }

    func testKillingAnEndpointUnderLoadFailsNoRequestSentAfterwards() async throws {
        try await self.startSingleCellGateway(backends: 2, healthCheck: false, asProcesses: true)
        let port = self.port
        let killed = LockedFlag()
        let stop = LockedFlag()
        let failedAfterKill = LockedCounter()
        let failedDuringKill = LockedCounter()
        let servedAfterKill = LockedCounter()
        let served = LockedCounter()
        let workers = (0..<4).map { worker in
            Thread {
                defer { stop.workerDone() }
                var client = try? RawHTTPConnection(port: port)
                // Bounded: at most 3,000 requests per worker, and only until the test says stop.
                for index in 0..<3000 where !stop.isSet {
                    let afterKill = killed.isSet
                    do {
                        guard let connection = client else { throw RawHTTPConnection.Failure.timeout }
                        try connection.send(requestText("GET", "/load/\(worker)-\(index)"))
                        let response = try connection.readResponse()
                        guard response.status == 200 else { throw RawHTTPConnection.Failure.malformed("status \(response.status)") }
                        served.add()
                        if afterKill { servedAfterKill.add() }
                    } catch {
                        (afterKill ? failedAfterKill : failedDuringKill).add()
                        client = try? RawHTTPConnection(port: port)
                    }
                }
            }
        }
        stop.expectWorkers(workers.count)
        workers.forEach { $0.start() }
        XCTAssertTrue(self.eventually(5) { served.value >= 200 })
        self.processes[0].kill()
        killed.set()
        XCTAssertTrue(self.eventually(10) { servedAfterKill.value >= 400 })
        stop.set()
        stop.waitForWorkers()
        // A request whose response had started when the process died cannot be saved by any
        // proxy (its client connection is closed); every request sent after the kill is served.
        XCTAssertEqual(failedAfterKill.value, 0)
        XCTAssertLessThanOrEqual(failedDuringKill.value, 4, "at most the requests in flight at the kill")
        print("endpoint killed under load: \(served.value) served, \(servedAfterKill.value) after the kill, \(failedAfterKill.value) failed after it, \(failedDuringKill.value) in flight at the kill failed")
    }

    func testEveryEndpointDownAnswers503UntilOneRecovers() async throws {
        try await self.startSingleCellGateway(backends: 2, healthCheck: true, asProcesses: true)
        XCTAssertEqual(try request(port: self.port, "GET", "/").status, 200)
        self.processes[0].kill()
        self.processes[1].kill()
        var last: RawHTTPConnection.Response?
        let unavailable = try self.eventually(5) {
            last = try request(port: self.port, "GET", "/")
            return last?.status == 503
        }
        XCTAssertTrue(unavailable, "health checks take the endpoints out: \(last?.text ?? "")")
        let answer = try request(port: self.port, "GET", "/")
        try self.assertProblem(answer, status: 503, slug: "no-healthy-upstream")
        XCTAssertEqual(answer.header("retry-after"), "1")
        XCTAssertTrue(self.gateway.waitForLog("endpoint unhealthy"))

        try self.processes[1].start()
        let recovered = try self.eventually(5) { try request(port: self.port, "GET", "/").status == 200 }
        XCTAssertTrue(recovered, "a passing health check brings the endpoint back")
        XCTAssertTrue(self.gateway.waitForLog("endpoint healthy again"))
    }

    func testAnEndpointFailingItsHealthCheckGetsNoTraffic() async throws {
        try await self.startSingleCellGateway(backends: 2, healthCheck: true)
        // Still accepting connections, but answering 503 to everything, health checks included.
        self.backends[0].answer(withStatus: 503)
        let out = try self.eventually(5) { self.gateway.log.contains("endpoint unhealthy") }
        XCTAssertTrue(out)
        let before = self.backends[0].statistics.requests
        for index in 0..<20 {
            let response = try request(port: self.port, "GET", "/after-check/\(index)")
            XCTAssertEqual(response.status, 200)
            XCTAssertEqual(try SeenRequest(response).backend, "backend-1")
        }
        // Only health checks (every 100 ms) reach the failing endpoint now.
        XCTAssertLessThan(self.backends[0].statistics.requests - before, 20)
    }

    func testAnEndpointAnswering5xxIsEjectedByRealTraffic() async throws {
        try await self.startSingleCellGateway(backends: 2, healthCheck: false)
        self.backends[0].answer(withStatus: 500)
        // One connection: one event loop, whose outlier detector ejects after 2 failures in a row.
        let client = try RawHTTPConnection(port: self.port)
        var failures = 0
        for index in 0..<40 {
            try client.send(requestText("GET", "/ejection/\(index)"))
            let response = try client.readResponse()
            if response.status == 500 {
                failures += 1
            } else {
                XCTAssertEqual(try SeenRequest(response).backend, "backend-1")
            }
        }
        // A 5xx answer has been relayed, so it is not retried; the ejection stops the next ones.
        // The ejection (300 ms, doubling) may expire during the run: each expiry lets one probe
        // through, and each failed probe ejects for longer.
        XCTAssertGreaterThanOrEqual(failures, 2)
        XCTAssertLessThanOrEqual(failures, 6, "ejected after two failures in a row")
    }

    // MARK: - Tenants in several cells

    /// eu-1 (backend 0) falls back to us-1 (backend 1, another region) and eu-2 (backend 2);
    /// dedicated-c2 (backend 3) serves c2 only; dedicated-c1 (backend 4) is empty until c1 moves.
    private func multiCellSettings(euLimits: String = "") -> String {
        let ports = self.backends.map(\.port)
        return """
            cells:
              - id: eu-1
                kind: pooled
                region: eu
                endpoints: [127.0.0.1:\(ports[0])]
                fallback: [us-1, eu-2]
            \(euLimits)  - id: us-1
                kind: pooled
                region: us
                endpoints: [127.0.0.1:\(ports[1])]
              - id: eu-2
                kind: pooled
                region: eu
                endpoints: [127.0.0.1:\(ports[2])]
              - id: dedicated-c2
                kind: dedicated
                region: eu
                endpoints: [127.0.0.1:\(ports[3])]
              - id: dedicated-c1
                kind: dedicated
                region: eu
                endpoints: [127.0.0.1:\(ports[4])]
            defaultCell: eu-1

            """
    }

    private static func tree(c1Placement: String = "") -> String {
        """
        catalog:
          features: [ledger]
          packages: { full: [ledger] }
          routes:
            - { path: /v1/ledger, feature: ledger }
            - { path: /delay }
        tenants:
          - id: acme
            kind: oem
            placement: { cell: eu-1 }
            residency: [eu, us]
            issuers:
              - iss: https://id.acme.test
                audience: erp-gateway
                keys: [{ kid: acme-1, alg: RS256, pemFile: \(TestIdentity.acmeOld.publicKey) }]
          - { id: p1, kind: partner, parent: acme }
          - { id: c1, kind: customer, parent: p1, package: full, residency: [eu]\(c1Placement) }
          - { id: c2, kind: customer, parent: p1, package: full, placement: { cell: dedicated-c2 } }
          - { id: c3, kind: customer, parent: p1, package: full }
        """
    }

    private func startMultiCellGateway(eventLoops: Int = 2, euLimits: String = "") async throws {
        try await self.startBackends(5)
        self.gateway = try GatewayProcess(
            settings: gatewaySettings(
                endpoints: [], ["listener": ["eventLoops": "\(eventLoops)", "http2": "{ cleartext: true }"]], tenantTree: "tenants.yaml",
                cells: self.multiCellSettings(euLimits: euLimits)
            ),
            files: ["tenants.yaml": Self.tree()]
        )
    }

    private func token(_ tenant: String, claims: [String] = []) throws -> String {
        try TestIdentity.mint(issuer: "https://id.acme.test", key: TestIdentity.acmeOld.privateKey, kid: "acme-1", tenant: tenant, claims: claims)
    }

    /// `wire`: through curl; else raw HTTP/1.1.
    private func get(_ target: String, token: String, headers: [(String, String)] = [], over wire: WireProtocol? = nil) throws -> RawHTTPConnection.Response {
        let headers = [("Authorization", "Bearer \(token)")] + headers
        guard let wire else { return try request(port: self.port, "GET", target, headers: headers) }
        return try curlRequest(wire, port: self.port, "GET", target, headers: headers)
    }

    func testFallbackCellsOutsideTheCustomersResidencyAreNeverUsed() async throws {
        try await self.startMultiCellGateway()
        let c1 = try self.token("c1")
        let c3 = try self.token("c3")
        XCTAssertEqual(try SeenRequest(self.get("/v1/ledger", token: c1)).backend, "backend-0")
        await self.backends[0].stop()
        for index in 0..<20 {
            // c1 may only be served in the EU: eu-1 is down, us-1 is skipped, eu-2 serves.
            let response = try self.get("/v1/ledger/\(index)", token: c1)
            XCTAssertEqual(response.status, 200, response.text)
            XCTAssertEqual(try SeenRequest(response).backend, "backend-2")
        }
        XCTAssertEqual(self.backends[1].statistics.requests, 0, "the US cell never saw an EU-only customer's request")
        // c3 inherits the OEM's residency (eu and us): its first fallback is us-1.
        XCTAssertEqual(try SeenRequest(self.get("/v1/ledger", token: c3)).backend, "backend-1")
    }

    func testADedicatedCellServesOnlyItsOwnCustomer() async throws {
        try await self.startMultiCellGateway()
        for wire in [nil, WireProtocol.http2] {
            try self.assertDedicatedCellServesOnlyItsCustomer(over: wire)
        }
    }

    private func assertDedicatedCellServesOnlyItsCustomer(over wire: WireProtocol?) throws {
        let dedicatedBefore = self.backends[3].statistics.requests
        let attempts: [(target: String, token: String, headers: [(String, String)])] = [
            ("/v1/ledger", try self.token("c1"), [("X-ERP-Cell", "dedicated-c2")]),
            ("/v1/ledger", try self.token("c1"), [("X-ERP-Tenant", "c2"), ("X-ERP-Tier", "dedicated")]),
            ("/v1/ledger", try self.token("c1"), [("X-Cell", "dedicated-c2"), ("X-Tenant-Id", "c2"), ("X-Customer", "c2")]),
            ("/v1/ledger", try self.token("c1"), [("Host", "dedicated-c2"), ("X-Forwarded-Host", "dedicated-c2")]),
            ("/v1/ledger", try self.token("c1"), [("X-Original-URL", "/dedicated-c2"), ("X-Rewrite-URL", "/dedicated-c2")]),
            ("/v1/ledger?cell=dedicated-c2&tenant=c2", try self.token("c1"), []),
            ("/v1/ledger;cell=dedicated-c2", try self.token("c1"), []),
            ("/dedicated-c2/v1/ledger", try self.token("c1"), []),
            ("/v1/ledger/../../dedicated-c2", try self.token("c1"), []),
            ("/v1/ledger", try self.token("c1", claims: ["cell=dedicated-c2", "placement=dedicated-c2", "customer=c2"]), []),
            ("/v1/ledger", try self.token("c3", claims: ["cell=dedicated-c2"]), [("X-ERP-Cell", "dedicated-c2")]),
        ]
        let over = wire?.rawValue ?? "raw HTTP/1.1"
        for (index, attempt) in attempts.enumerated() {
            let response = try self.get(attempt.target, token: attempt.token, headers: attempt.headers, over: wire)
            if response.status == 200 {
                XCTAssertEqual(try SeenRequest(response).backend, "backend-0", "attempt \(index) over \(over) stays in the pooled cell")
            } else {
                XCTAssertTrue((400..<500).contains(response.status), "attempt \(index) over \(over): \(response.status) \(response.text)")
            }
        }
        XCTAssertEqual(self.backends[3].statistics.requests, dedicatedBefore, "no other tenant's request reached the dedicated cell over \(over)")
        XCTAssertEqual(try SeenRequest(self.get("/v1/ledger", token: self.token("c2"), over: wire)).backend, "backend-3")
    }

    /// Streams of different customers interleaved on one HTTP/2 connection: each goes to its
    /// customer's cell, whatever the streams before and beside it.
    func testConcurrentStreamsOnOneConnectionAreEachRoutedToTheirCell() async throws {
        try await self.startMultiCellGateway()
        let tokens = ["c1": try self.token("c1"), "c2": try self.token("c2"), "c3": try self.token("c3")]
        let expected = ["c1": "backend-0", "c2": "backend-3", "c3": "backend-0"]
        let connection = try RawHTTP2Connection(port: self.port)
        try connection.handshake()
        var streams: [(id: UInt32, tenant: String)] = []
        for index in 0..<24 {
            let tenant = ["c1", "c2", "c3"][index % 3]
            // Slow and fast requests mixed, so that the answers come back out of order.
            let target = index % 2 == 0 ? "/delay/\(50 * (index % 5))" : "/v1/ledger/\(index)"
            streams.append((try connection.sendRequest("GET", target, headers: [("authorization", "Bearer \(tokens[tenant]!)")]), tenant))
        }
        for (id, tenant) in streams.reversed() {
            let response = try connection.readResponse(id)
            XCTAssertEqual(response.status, 200, response.text)
            let seen = try SeenRequest(response)
            XCTAssertEqual(seen.backend, expected[tenant], "stream \(id) of \(tenant)")
            XCTAssertEqual(seen.value("x-erp-tenant"), tenant)
        }
    }

    func testAFullCellAnswers503WhileOtherCellsServeAsUsual() async throws {
        // One event loop so that the cell's bounds are exactly those configured.
        let limits = "    limits: { maxPending: 1, maxInFlight: 1, retryAfter: 2s }\n    timeouts: { connect: 10s }\n"
        try await self.startMultiCellGateway(eventLoops: 1, euLimits: limits)
        let c1 = try self.token("c1")
        let c2 = try self.token("c2")
        let port = self.port
        let slow = (0..<3).map { _ in SlowRequest() }
        slow[0].start(port: port, target: "/delay/1500", token: c1)
        XCTAssertTrue(self.eventually(5) { self.backends[0].statistics.requests == 1 }, "the first request is in flight")
        slow[1].start(port: port, target: "/delay/1500", token: c1)
        usleep(300_000)
        slow[2].start(port: port, target: "/delay/1500", token: c1)

        // The dedicated cell of c2 is not held up by eu-1 being full.
        for index in 0..<5 {
            let response = try self.get("/v1/ledger/\(index)", token: c2)
            XCTAssertEqual(response.status, 200)
            XCTAssertEqual(try SeenRequest(response).backend, "backend-3")
        }
        XCTAssertFalse(slow[0].isDone, "c2 was served while eu-1's first request was still running")

        let answers = slow.map { $0.wait() }
        XCTAssertEqual(answers[0]?.status, 200)
        // One of the two later ones waited for the slot (pending) and was served; the other
        // found pending full and was refused at once.
        let refused = answers[1...].compactMap { $0 }.filter { $0.status == 503 }
        let served = answers[1...].compactMap { $0 }.filter { $0.status == 200 }
        XCTAssertEqual(refused.count, 1, answers.map { $0?.text ?? "none" }.joined(separator: "\n"))
        XCTAssertEqual(served.count, 1)
        if let refusal = refused.first {
            try self.assertProblem(refusal, status: 503, slug: "cell-overloaded")
            XCTAssertEqual(refusal.header("retry-after"), "2")
        }
    }

    func testMovingACustomerToADedicatedCellUnderLoadLosesNothing() async throws {
        try await self.startMultiCellGateway()
        let c1 = try self.token("c1")
        let port = self.port
        let auth = [("Authorization", "Bearer \(c1)")]
        let failures = LockedCounter()
        let servedAfterMove = LockedCounter()
        let oldCellAfterMove = LockedCounter()
        let moved = LockedFlag()
        let stop = LockedFlag()
        let paused = LockedFlag()
        let parked = LockedCounter()
        let workers = (0..<4).map { worker in
            Thread {
                defer { stop.workerDone() }
                guard let client = try? RawHTTPConnection(port: port) else { return failures.add() }
                // Bounded: at most 3,000 requests per worker, and only until the test says stop.
                var wasParked = false
                for index in 0..<3000 where !stop.isSet {
                    // Parked while the test sets up requests in flight, so it can count them.
                    if paused.isSet {
                        if !wasParked { parked.add() }
                        wasParked = true
                        while paused.isSet, !stop.isSet { usleep(1_000) }
                    }
                    let startedAfterMove = moved.isSet
                    do {
                        try client.send(requestText("GET", "/v1/ledger/\(worker)-\(index)", headers: auth))
                        let response = try client.readResponse()
                        guard response.status == 200 else {
                            failures.add()
                            continue
                        }
                        if startedAfterMove {
                            servedAfterMove.add()
                            if (try? SeenRequest(response).backend) != "backend-4" { oldCellAfterMove.add() }
                        }
                    } catch {
                        failures.add()
                        return
                    }
                }
            }
        }
        stop.expectWorkers(workers.count)
        workers.forEach { $0.start() }
        XCTAssertTrue(self.eventually(5) { self.backends[0].statistics.requests > 50 })

        // Requests in flight on the old cell when the move happens.
        paused.set()
        XCTAssertTrue(self.eventually(5) { parked.value == workers.count })
        let before = self.backends[0].statistics.requests
        let inFlight = (0..<3).map { _ in SlowRequest() }
        for request in inFlight { request.start(port: port, target: "/delay/800", token: c1) }
        XCTAssertTrue(self.eventually(5) { self.backends[0].statistics.requests == before + 3 }, "the slow requests reached the old cell")
        paused.clear()

        try self.gateway.replaceFile("tenants.yaml", with: Self.tree(c1Placement: ", placement: { cell: dedicated-c1 }"))
        self.gateway.signal(SIGHUP)
        XCTAssertTrue(self.gateway.waitForLog("configuration reloaded"))
        moved.set()
        XCTAssertTrue(self.eventually(10) { servedAfterMove.value >= 200 }, "traffic continues after the move")
        stop.set()
        stop.waitForWorkers()

        for (index, request) in inFlight.enumerated() {
            let answer = request.wait()
            XCTAssertEqual(answer?.status, 200, "in-flight request \(index) completed")
            XCTAssertEqual(answer.flatMap { try? SeenRequest($0).backend }, "backend-0", "in-flight request \(index) finished on the old cell")
        }
        XCTAssertEqual(failures.value, 0, "no request failed during the move")
        XCTAssertEqual(oldCellAfterMove.value, 0, "every request sent after the reload went to the new cell")
        print("cell move under load: \(servedAfterMove.value) requests served after the move, \(failures.value) failed")
    }
}

/// A request on its own thread, to hold a slot while the test does something else.
final class SlowRequest: @unchecked Sendable {
    private let lock = NSLock()
    private var response: RawHTTPConnection.Response?
    private var finished = false
    private let done = DispatchSemaphore(value: 0)

    func start(port: Int, target: String, token: String) {
        Thread {
            let answer = try? request(port: port, "GET", target, headers: [("Authorization", "Bearer \(token)")])
            self.lock.withLock {
                self.response = answer
                self.finished = true
            }
            self.done.signal()
        }.start()
    }

    var isDone: Bool { self.lock.withLock { self.finished } }

    /// The answer, or nil if the request failed at the socket; waits at most 20 s.
    func wait() -> RawHTTPConnection.Response? {
        _ = self.done.wait(timeout: .now() + 20)
        return self.lock.withLock { self.response }
    }
}
