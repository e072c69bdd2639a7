import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import XCTest
@testable import GatewayConfig
@testable import ProxyEngine

/// The record every request leaves when it ends (`RequestRecord`), read by metrics, the access
/// log, traces and tenant health: one per request, whatever its end, with the times the
/// request reached on the loop's virtual clock.
final class RequestRecordTests: XCTestCase {
    private final class Recorder: RequestObserver {
        var records: [RequestRecord] = []
        func requestEnded(_ record: RequestRecord) { self.records.append(record) }
    }

    private static let endpoint = GatewaySettings.Endpoint(host: "127.0.0.1", port: 9001)
    private var loop: EmbeddedEventLoop!
    private var client: EmbeddedChannel!
    private var upstreams: EmbeddedUpstreams!
    private var recorder: Recorder!

    override func setUpWithError() throws {
        self.loop = EmbeddedEventLoop()
        self.upstreams = EmbeddedUpstreams(loop: self.loop)
        self.client = EmbeddedChannel(loop: self.loop)
        self.recorder = Recorder()
        var timeouts = SettingsLoader.defaultTimeouts
        timeouts.upstreamResponse = .seconds(30)
        let settings = GatewaySettings(
            listener: .init(address: "127.0.0.1", port: 0, eventLoops: 1),
            limits: .init(maxHeaderBytes: 4096, maxURIBytes: 1024, maxRequestBodyBytes: 1 << 20),
            timeouts: timeouts, upstreamPool: SettingsLoader.defaultPool, forwarding: SettingsLoader.defaultForwarding,
            cells: [.init(id: "cell-a", kind: .dedicated, region: "local", endpoints: [Self.endpoint])], defaultCell: "cell-a"
        )
        let environment = ProxyEnvironment(
            configuration: GatewayConfiguration(settings: settings, tenants: nil, files: []), generation: 1,
            pool: UpstreamPool(eventLoop: self.loop, settings: settings.upstreamPool, connector: self.upstreams),
            logger: Logger(label: "record-test") { _ in SwiftLogNoOpLogHandler() },
            wallClock: .following(self.loop, from: 1_800_000_000_000_000), observer: self.recorder
        )
        try GatewayServer.configureClientPipeline(self.client.pipeline.syncOperations, environment: environment)
        try self.client.connect(to: SocketAddress(ipAddress: "198.51.100.7", port: 40000)).wait()
    }

    override func tearDownWithError() throws {
        _ = try self.client?.finish(acceptAlreadyClosed: true)
        for (_, upstream) in self.upstreams?.opened ?? [] { _ = try? upstream.finish(acceptAlreadyClosed: true) }
    }

    func testARelayedRequestRecordsItsUpstreamAndGatewayTimes() throws {
        self.loop.advanceTime(by: .milliseconds(5))
        try self.client.writeInbound(ByteBuffer(string: "POST /ledger/7?token=secret HTTP/1.1\r\nHost: erp.test\r\nContent-Length: 3\r\n\r\nabc"))
        let upstream = try XCTUnwrap(self.upstreams.opened.first)
        self.loop.advanceTime(by: .milliseconds(40))
        try upstream.channel.writeInbound(ByteBuffer(string: "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n"))
        self.loop.advanceTime(by: .milliseconds(10))
        XCTAssertTrue(self.recorder.records.isEmpty, "nothing recorded before the request ends")
        try upstream.channel.writeInbound(ByteBuffer(string: "ok"))
        XCTAssertEqual(try self.client.responses().map(\.status), [201])

        let record = try XCTUnwrap(self.recorder.records.first)
        XCTAssertEqual(self.recorder.records.count, 1)
        XCTAssertEqual(record.outcome, .relayed)
        XCTAssertEqual(record.status, 201)
        XCTAssertNil(record.problem)
        XCTAssertEqual(record.method, "POST")
        XCTAssertEqual(record.path, "/ledger/7", "never the query")
        XCTAssertEqual(record.cell, "cell-a")
        XCTAssertEqual(record.tier, .dedicated)
        XCTAssertEqual(record.endpoint, Self.endpoint)
        XCTAssertEqual(record.attempts, 1)
        XCTAssertEqual(record.bytesIn, 3)
        XCTAssertEqual(record.bytesOut, 2)
        XCTAssertEqual(record.traceID?.count, 32)
        XCTAssertFalse(record.continuesClientTrace)
        XCTAssertEqual(record.total, .milliseconds(50))
        XCTAssertEqual(record.upstreamTime, .milliseconds(50))
        XCTAssertEqual(record.upstreamHead.map { $0 - record.started }, .milliseconds(40))
        XCTAssertEqual(record.gatewayTime, .zero)
        XCTAssertEqual(record.startedWallMicroseconds, 1_800_000_000_000_000 + 5_000)
    }

    func testAFailedUpstreamRecordsTheProblemAndItsPhase() throws {
        self.upstreams.refuse = [9001]
        try self.client.writeInbound(ByteBuffer(string: "GET /ledger HTTP/1.1\r\nHost: erp.test\r\n\r\n"))
        XCTAssertEqual(try self.client.responses().map(\.status), [502])
        let record = try XCTUnwrap(self.recorder.records.first)
        XCTAssertEqual(record.outcome, .failed)
        XCTAssertEqual(record.status, 502)
        XCTAssertEqual(record.problem?.phase, .forward)
        XCTAssertNil(record.upstreamTime, "nothing was sent upstream")
    }

    func testARequestRefusedAtDecodeIsRecordedWithoutAnExchange() throws {
        try self.client.writeInbound(ByteBuffer(string: "GET /a;b HTTP/1.1\r\nHost: erp.test\r\n\r\n"))
        XCTAssertEqual(try self.client.responses().map(\.status), [400])
        let record = try XCTUnwrap(self.recorder.records.first)
        XCTAssertEqual(record.outcome, .refused)
        XCTAssertEqual(record.problem?.slug, "ambiguous-path")
        XCTAssertEqual(record.problem?.phase, .decode)
        XCTAssertTrue(self.upstreams.opened.isEmpty)
    }

    func testAClientThatLeavesMidResponseIsRecordedOnce() throws {
        try self.client.writeInbound(ByteBuffer(string: "GET /ledger HTTP/1.1\r\nHost: erp.test\r\n\r\n"))
        let upstream = try XCTUnwrap(self.upstreams.opened.first)
        try upstream.channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf"))
        try self.client.close().wait()
        XCTAssertEqual(self.recorder.records.map(\.outcome), [.clientClosed])
        XCTAssertEqual(self.recorder.records.first?.status, 200, "the status the client had received")
    }
}
