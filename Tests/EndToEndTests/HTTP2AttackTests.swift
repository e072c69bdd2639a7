import Foundation
import XCTest

/// The known HTTP/2 denial-of-service classes, each written frame by frame against the real
/// binary: the attacking connection is ended (and what it made the gateway hold is given back),
/// memory stays bounded, and another client on its own connection goes on being served.
final class HTTP2AttackTests: HTTP2TestCase {
    typealias Frame = RawHTTP2Connection.Frame
    typealias Code = RawHTTP2Connection.ErrorCode
    static let growthLimit = 48 << 20

    // MARK: - Rapid reset (CVE-2023-44487)

    /// HEADERS then RST_STREAM, again and again: NIOHTTP2 counts the resets (`resetFrames`) and
    /// ends the connection with ENHANCE_YOUR_CALM. Every reset request gives back its cell slot
    /// and its in-flight quota, and drops its upstream connection: afterwards the same customer,
    /// whose concurrency limit is 1, on a cell that takes 2 requests at a time, is served again.
    func testRapidResetEndsTheConnectionAndLeaksNothing() async throws {
        let redis = try RedisProcess()
        defer { redis.stop() }
        try await self.startBackends(1)
        let cells = """
            cells:
              - id: test-cell
                kind: pooled
                region: test
                endpoints: [127.0.0.1:\(self.backends[0].port)]
                limits: { maxPending: 2, maxInFlight: 2, retryAfter: 1s }
            defaultCell: test-cell

            """
        self.gateway = try GatewayProcess(
            settings: gatewaySettings(
                endpoints: [], ["listener": ["eventLoops": "1", "http2": "{ cleartext: true }"]], tenantTree: "tenants.yaml", cells: cells,
                extra: SecurityMatrixTests.platformIssuer + redis.settings
            ),
            files: ["tenants.yaml": QuotaTests.tree]
        )
        let token = try TestIdentity.mint(issuer: "https://id.globex.test", key: TestIdentity.globex.privateKey, alg: "ES256", kid: "g-1", tenant: "g1")
        let bearer = [("authorization", "Bearer \(token)")]
        let bystander = try self.connect()
        let served = try bystander.sendRequest("GET", "/v1/ledger", headers: bearer)
        XCTAssertEqual(try bystander.readResponse(served).status, 200)

        let attacker = try self.connect()
        // Reset while forwarded: two requests the backend is working on (both of the cell's
        // slots) are reset; their upstream connections, mid-message, are closed at once.
        let other = try TestIdentity.mint(issuer: "https://id.acme.test", key: TestIdentity.acmeOld.privateKey, kid: "acme-1", tenant: "c1basic")
        let requestsBefore = self.backends[0].statistics.requests
        let held = try (0..<2).map { _ in try attacker.sendRequest("GET", "/delay/5000", headers: [("authorization", "Bearer \(other)")]) }
        XCTAssertTrue(self.eventually(5) { self.backends[0].statistics.requests == requestsBefore + 2 }, "both reached the backend")
        try attacker.send(held.flatMap { RawHTTP2Connection.rstStream($0) })
        XCTAssertTrue(self.eventually(3) { self.backends[0].openConnections == 0 }, "\(self.backends[0].openConnections) upstream connections still open")

        let before = self.gateway.residentBytes
        var pairs = 0
        sending: for _ in 0..<40 {
            var batch: [UInt8] = []
            for _ in 0..<25 {
                let stream = attacker.newStream()
                batch += RawHTTP2Connection.frame(
                    .headers, flags: RawHTTP2Connection.Flag.endHeaders | RawHTTP2Connection.Flag.endStream, stream: stream,
                    RawHTTP2Connection.headerBlock(RawHTTP2Connection.requestFields("GET", "/delay/3000", headers: bearer))
                )
                batch += RawHTTP2Connection.rstStream(stream)
            }
            do { try attacker.send(batch) } catch { break sending }
            pairs += 25
        }
        self.assertClosedWithGoAway(attacker, code: Code.enhanceYourCalm)
        print("rapid reset: \(pairs) HEADERS+RST_STREAM pairs sent before the gateway ended the connection")
        XCTAssertLessThan(self.gateway.residentBytes - before, Self.growthLimit)

        // Nothing held by the reset requests stays held: no in-flight quota (concurrency 1), no
        // cell slot (2 at a time), no upstream connection in use.
        let freed = try self.eventually(10) {
            let stream = try bystander.sendRequest("GET", "/v1/ledger", headers: bearer)
            return try bystander.readResponse(stream).status == 200
        }
        XCTAssertTrue(freed, "the customer's in-flight unit and the cell's slots came back")
        for index in 0..<6 {
            let stream = try bystander.sendRequest("GET", "/v1/ledger/\(index)", headers: bearer)
            XCTAssertEqual(try bystander.readResponse(stream).status, 200, "request \(index) after the attack")
        }
        XCTAssertTrue(self.eventually(10) { self.backends[0].openConnections <= 1 }, "upstream connections of reset requests are closed: \(self.backends[0].openConnections) open")
        XCTAssertTrue(self.gateway.waitForLog("error=ExcessiveRSTFrames"), "the log names the cause")
    }

    // MARK: - CONTINUATION flood

    /// A header block that never ends, in empty CONTINUATION frames: refused after
    /// `maxContinuationFrames`.
    func testEndlessContinuationFramesEndTheConnection() async throws {
        try await self.startHTTP2Gateway()
        let bystander = try self.connect()
        let attacker = try self.connect()
        let before = self.gateway.residentBytes
        let stream = attacker.newStream()
        var flood = RawHTTP2Connection.frame(
            .headers, stream: stream, RawHTTP2Connection.headerBlock(RawHTTP2Connection.requestFields("GET", "/never-ends"))
        )
        for _ in 0..<10_000 { flood += RawHTTP2Connection.frame(.continuation, stream: stream) }
        try? attacker.send(flood)
        self.assertClosedWithGoAway(attacker, code: Code.enhanceYourCalm)
        XCTAssertLessThan(self.gateway.residentBytes - before, Self.growthLimit)
        try self.assertServed(on: bystander)
    }

    /// Full CONTINUATION frames, with the count allowed high: the block's size bounds it
    /// (`maxHeaderListSize`).
    func testAHeaderBlockGrowingInContinuationFramesIsBoundedBySize() async throws {
        try await self.startHTTP2Gateway(http2: "maxContinuationFrames: 1000")
        let bystander = try self.connect()
        let attacker = try self.connect()
        let before = self.gateway.residentBytes
        let stream = attacker.newStream()
        try attacker.send(RawHTTP2Connection.frame(.headers, stream: stream, RawHTTP2Connection.headerBlock(RawHTTP2Connection.requestFields("GET", "/big"))))
        let filler = [UInt8](repeating: 0x61, count: 16_000)
        for _ in 0..<1000 {
            do { try attacker.send(RawHTTP2Connection.frame(.continuation, stream: stream, filler)) } catch { break }
        }
        self.assertClosedWithGoAway(attacker, code: Code.protocolError)
        XCTAssertLessThan(self.gateway.residentBytes - before, Self.growthLimit)
        try self.assertServed(on: bystander)
    }

    // MARK: - SETTINGS and PING floods

    func testASettingsFloodEndsTheConnection() async throws {
        try await self.startHTTP2Gateway()
        let bystander = try self.connect()
        // Without reading the acknowledgements: all at once.
        let blind = try self.connect()
        try? blind.send((0..<2000).flatMap { _ in RawHTTP2Connection.settingsFrame([]) })
        self.assertClosedWithGoAway(blind, code: Code.enhanceYourCalm)
        // Reading each acknowledgement before the next.
        let polite = try self.connect()
        let sent = self.floodReadingAcknowledgements(polite, RawHTTP2Connection.settingsFrame([])) { $0.kind == .settings && $0.has(RawHTTP2Connection.Flag.ack) }
        XCTAssertEqual(polite.goAway?.code, Code.enhanceYourCalm, "after \(sent) SETTINGS frames")
        XCTAssertLessThan(sent, 1000)
        try self.assertServed(on: bystander)
    }

    func testAPingFloodEndsTheConnection() async throws {
        try await self.startHTTP2Gateway()
        let bystander = try self.connect()
        let blind = try self.connect()
        try? blind.send((0..<2000).flatMap { RawHTTP2Connection.ping(UInt64($0)) })
        self.assertClosedWithGoAway(blind, code: Code.enhanceYourCalm)
        let polite = try self.connect()
        let sent = self.floodReadingAcknowledgements(polite, RawHTTP2Connection.ping(7)) { $0.kind == .ping && $0.has(RawHTTP2Connection.Flag.ack) }
        XCTAssertEqual(polite.goAway?.code, Code.enhanceYourCalm, "after \(sent) PING frames")
        XCTAssertLessThan(sent, 1000)
        try self.assertServed(on: bystander)
    }

    /// Sends `frame` and reads its acknowledgement, at most 1,000 times, until the gateway ends
    /// the connection; returns how many were sent.
    private func floodReadingAcknowledgements(_ connection: RawHTTP2Connection, _ frame: [UInt8], isAcknowledgement: (Frame) -> Bool) -> Int {
        for sent in 1...1000 {
            do {
                try connection.send(frame)
                while true {
                    let received = try connection.readFrame()
                    if received.kind == .goAway { return sent }
                    if isAcknowledgement(received) { break }
                }
            } catch {
                _ = connection.readUntilClosed(seconds: 2)
                return sent
            }
        }
        return 1000
    }

    // MARK: - Zero-window stall

    /// A client that announces a window of 0 and never opens it, on a 1 GiB download: the
    /// response is cut after `timeouts.responseBodyIdle` (RST_STREAM), the upstream connection is
    /// dropped, and nothing of the gigabyte is held.
    func testAStreamWhoseWindowStaysShutIsCutAndItsUpstreamReleased() async throws {
        try await self.startHTTP2Gateway(["timeouts": ["responseBodyIdle": "1s"]])
        let attacker = try self.connect(settings: [(RawHTTP2Connection.Setting.initialWindowSize, 0)])
        attacker.opensWindows = false
        let before = self.gateway.residentBytes
        let stream = try attacker.sendRequest("GET", "/bytes/\(1 << 30)")
        XCTAssertThrowsError(try attacker.readResponse(stream)) { error in
            guard case RawHTTP2Connection.Failure.reset(_, let code) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(code, Code.cancel)
        }
        XCTAssertLessThan(self.gateway.residentBytes - before, Self.growthLimit)
        XCTAssertTrue(self.eventually(10) { self.backends[0].openConnections == 0 }, "the download's upstream connection is closed")
        XCTAssertTrue(self.gateway.waitForLog("client took none of the response"), self.gateway.log)
        // The connection itself goes on: a request that fits in no window at all is answered
        // once the client opens one.
        let bystander = try self.connect()
        try self.assertServed(on: bystander)
    }

    /// The default window, never given back: the first 64 KiB arrive, then the same cut.
    func testAStreamWhoseWindowIsNeverGivenBackIsCut() async throws {
        try await self.startHTTP2Gateway(["timeouts": ["responseBodyIdle": "1s"]])
        let attacker = try self.connect()
        attacker.opensWindows = false
        let stream = try attacker.sendRequest("GET", "/bytes/\(1 << 30)")
        var received = 0
        XCTAssertThrowsError(try attacker.readResponse(stream, onData: { received += $0.count }, keepBody: false)) { error in
            guard case RawHTTP2Connection.Failure.reset(_, let code) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(code, Code.cancel)
        }
        XCTAssertEqual(received, 65_535, "exactly one window")
        XCTAssertTrue(self.eventually(10) { self.backends[0].openConnections == 0 }, "the download's upstream connection is closed")
        try self.assertServed(on: try self.connect())
    }

    // MARK: - Streams and headers

    /// Beyond `maxConcurrentStreams`: NIOHTTP2 treats the extra HEADERS as a connection error
    /// (GOAWAY PROTOCOL_ERROR), and the connection closes; other connections are unaffected.
    func testMoreStreamsThanAllowedEndTheConnection() async throws {
        try await self.startHTTP2Gateway(http2: "maxConcurrentStreams: 4")
        let bystander = try self.connect()
        let attacker = try self.connect()
        XCTAssertEqual(attacker.serverSettings[RawHTTP2Connection.Setting.maxConcurrentStreams], 4)
        for _ in 0..<5 { try attacker.sendRequest("GET", "/delay/3000") }
        self.assertClosedWithGoAway(attacker, code: Code.protocolError)
        try self.assertServed(on: bystander)
        XCTAssertTrue(self.gateway.waitForLog("error=MaxStreamsViolation"), self.gateway.log)
    }

    /// A head over `limits.maxHeaderBytes` but within the header list size is the same 431
    /// problem as over HTTP/1.1, and the connection goes on; a header block over
    /// `maxHeaderListSize` ends the connection.
    func testOversizedHeadersAreRefused() async throws {
        try await self.startHTTP2Gateway()
        let client = try self.connect()
        XCTAssertEqual(client.serverSettings[RawHTTP2Connection.Setting.maxHeaderListSize], 65_536, "derived from the limits")
        let large = try client.sendRequest("GET", "/large", headers: [("x-large", String(repeating: "a", count: 12_000))])
        try self.assertProblem(try client.readResponse(large), status: 431, slug: "header-fields-too-large")
        try self.assertServed(on: client)

        let bystander = try self.connect()
        let stream = client.newStream()
        let block = RawHTTP2Connection.headerBlock(RawHTTP2Connection.requestFields("GET", "/huge", headers: [("x-huge", String(repeating: "b", count: 70_000))]))
        var frames = RawHTTP2Connection.frame(.headers, stream: stream, Array(block[0..<16_000]))
        var offset = 16_000
        while offset < block.count {
            let end = min(offset + 16_000, block.count)
            frames += RawHTTP2Connection.frame(.continuation, flags: end == block.count ? RawHTTP2Connection.Flag.endHeaders : 0, stream: stream, Array(block[offset..<end]))
            offset = end
        }
        try? client.send(frames)
        self.assertClosedWithGoAway(client, code: Code.protocolError)
        try self.assertServed(on: bystander)
    }
}
