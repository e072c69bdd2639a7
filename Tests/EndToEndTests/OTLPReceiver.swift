import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// A stand-in for an OpenTelemetry collector on loopback: accepts OTLP/HTTP JSON export
/// requests, answers 200, and keeps every span it was sent.
final class OTLPReceiver: Sendable {
    struct Span {
        var traceID: String
        var spanID: String
        var parentSpanID: String?
        var name: String
        var kind: Int
        var start: UInt64
        var end: UInt64
        var attributes: [String: Any]
        var statusCode: Int
        var statusMessage: String?
        var serviceName: String?
    }

    struct Export {
        var path: String
        var contentType: String?
        var body: Data
    }

    private let channel: any Channel
    private let exports = NIOLockedValueBox<[Export]>([])
    var port: Int { self.channel.localAddress?.port ?? 0 }

    init(group: any EventLoopGroup) async throws {
        let exports = self.exports
        self.channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(ExportHandler(exports: exports))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    func stop() async {
        try? await self.channel.close()
    }

    var received: [Export] { self.exports.withLockedValue { $0 } }

    /// Every span of every export so far, decoded from the OTLP JSON encoding.
    func spans() throws -> [Span] {
        var spans: [Span] = []
        for export in self.received {
            let document = try JSONSerialization.jsonObject(with: export.body) as? [String: Any] ?? [:]
            for resourceSpans in document["resourceSpans"] as? [[String: Any]] ?? [] {
                let resource = Self.attributes((resourceSpans["resource"] as? [String: Any])?["attributes"])
                for scopeSpans in resourceSpans["scopeSpans"] as? [[String: Any]] ?? [] {
                    for span in scopeSpans["spans"] as? [[String: Any]] ?? [] {
                        let status = span["status"] as? [String: Any]
                        spans.append(Span(
                            traceID: span["traceId"] as? String ?? "", spanID: span["spanId"] as? String ?? "",
                            parentSpanID: span["parentSpanId"] as? String, name: span["name"] as? String ?? "", kind: span["kind"] as? Int ?? 0,
                            start: UInt64(span["startTimeUnixNano"] as? String ?? "") ?? 0, end: UInt64(span["endTimeUnixNano"] as? String ?? "") ?? 0,
                            attributes: Self.attributes(span["attributes"]), statusCode: status?["code"] as? Int ?? 0,
                            statusMessage: status?["message"] as? String, serviceName: resource["service.name"] as? String
                        ))
                    }
                }
            }
        }
        return spans
    }

    /// OTLP's `KeyValue` list as a dictionary: strings as `String`, integers as `Int`.
    private static func attributes(_ list: Any?) -> [String: Any] {
        var attributes: [String: Any] = [:]
        for entry in list as? [[String: Any]] ?? [] {
            guard let key = entry["key"] as? String, let value = entry["value"] as? [String: Any] else { continue }
            if let text = value["stringValue"] as? String { attributes[key] = text }
            if let number = value["intValue"] as? String { attributes[key] = Int(number) }
        }
        return attributes
    }

    private final class ExportHandler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        private let exports: NIOLockedValueBox<[Export]>
        private var head: HTTPRequestHead?
        private var body = Data()

        init(exports: NIOLockedValueBox<[Export]>) {
            self.exports = exports
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch self.unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
                self.body = Data()
            case .body(var buffer):
                self.body.append(contentsOf: buffer.readBytes(length: buffer.readableBytes) ?? [])
            case .end:
                guard let head = self.head else { return }
                let export = Export(path: head.uri, contentType: head.headers.first(name: "content-type"), body: self.body)
                self.exports.withLockedValue { $0.append(export) }
                var headers = HTTPHeaders([("content-type", "application/json"), ("content-length", "2")])
                if !head.isKeepAlive { headers.add(name: "connection", value: "close") }
                context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .ok, headers: headers))), promise: nil)
                context.write(self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "{}")))), promise: nil)
                context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
    }
}
