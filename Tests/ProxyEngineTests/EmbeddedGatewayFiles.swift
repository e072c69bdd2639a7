import Foundation
import GatewayConfig
import Logging
import NIOCore
import NIOEmbedded
import Quotas
@testable import ProxyEngine

/// The settings and tenant tree the embedded-channel tests load: one pooled cell, the tree file
/// beside the settings, the context signed with `TenantAccessTests.secret` (which also signs
/// the tests' HS256 tokens), plus what a test adds (`extraSettings`, YAML at the top level).
enum EmbeddedGatewayFiles {
    static func load(in directory: URL, endpoint: String = "127.0.0.1:9001", extraSettings: String = "", tree: String) throws -> GatewayConfiguration {
        let secret = Data(TenantAccessTests.secret).base64EncodedString()
        try """
            listener: { port: 1 }
            cells:
              - { id: pool, kind: pooled, region: eu, endpoints: [\(endpoint)] }
            defaultCell: pool
            tenantTree: tree.yaml
            upstreamContext:
              signingKeys: [{ id: ctx, secret: \(secret) }]
              activeKey: ctx
            \(extraSettings)
            """.write(to: directory.appendingPathComponent("gateway.yaml"), atomically: true, encoding: .utf8)
        try tree.write(to: directory.appendingPathComponent("tree.yaml"), atomically: true, encoding: .utf8)
        return try GatewayConfiguration.load(path: directory.appendingPathComponent("gateway.yaml").path)
    }

}

/// One gateway's client pipeline on an `EmbeddedEventLoop`: its files in a directory of its own
/// (`EmbeddedGatewayFiles`), embedded upstreams, the requests' records and a connected client —
/// what the embedded-channel tests drive. `finish` closes everything and removes the files.
final class EmbeddedGateway {
    let directory: URL
    let loop = EmbeddedEventLoop()
    let upstreams: EmbeddedUpstreams
    let records = RecordedRequests()
    let environment: ProxyEnvironment
    private(set) var client: EmbeddedChannel

    init(_ name: String, extraSettings: String, quotas: (any QuotaStore)? = nil, epoch: Int64, tree: String) throws {
        self.directory = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: self.directory, withIntermediateDirectories: true)
        let configuration = try EmbeddedGatewayFiles.load(in: self.directory, extraSettings: extraSettings, tree: tree)
        self.upstreams = EmbeddedUpstreams(loop: self.loop)
        self.environment = ProxyEnvironment(
            configuration: configuration, generation: 1,
            pool: UpstreamPool(eventLoop: self.loop, settings: configuration.settings.upstreamPool, connector: self.upstreams), quotas: quotas,
            logger: Logger(label: "\(name)-test") { _ in SwiftLogNoOpLogHandler() },
            wallClock: .following(self.loop, from: epoch * 1_000_000), observer: self.records
        )
        self.client = EmbeddedChannel(loop: self.loop)
        try self.connectClient(port: 40000)
    }

    /// A second client connection on the same loop (the first one finished, unless
    /// `keepingPrevious`: then the caller holds it and finishes it).
    func reconnect(keepingPrevious: Bool = false) throws {
        if !keepingPrevious { _ = try self.client.finish(acceptAlreadyClosed: true) }
        self.client = EmbeddedChannel(loop: self.loop)
        try self.connectClient(port: 40001)
    }

    /// Throws what finishing the client throws; the upstreams and the files go in any case.
    func finish() throws {
        defer {
            for (_, upstream) in self.upstreams.opened { _ = try? upstream.finish(acceptAlreadyClosed: true) }
            try? FileManager.default.removeItem(at: self.directory)
        }
        _ = try self.client.finish(acceptAlreadyClosed: true)
    }

    private func connectClient(port: Int) throws {
        try GatewayServer.configureClientPipeline(self.client.pipeline.syncOperations, environment: self.environment)
        try self.client.connect(to: SocketAddress(ipAddress: "198.51.100.7", port: port)).wait()
    }
}
