import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// A loopback web server that plays an app's origin for browser tests: it serves a fixed set of
/// pages and scripts, and takes the results a page posts back to `POST /result`.
///
/// One server is two origins: `http://127.0.0.1:<port>` and `http://localhost:<port>` differ
/// to a browser, so a test can open the same page from an origin the tenant registered and
/// from one it did not.
public final class PageServer: Sendable {
    /// One file the server answers `GET <path>` with.
    public struct Page: Sendable {
        public var contentType: String
        public var body: String

        public init(contentType: String = "text/html; charset=utf-8", body: String) {
            self.contentType = contentType
            self.body = body
        }

        public static func html(_ body: String) -> Page { Page(body: body) }
        public static func javascript(_ body: String) -> Page { Page(contentType: "text/javascript; charset=utf-8", body: body) }
    }

    private let channel: any Channel
    private let results: NIOLockedValueBox<[String]>

    public var port: Int { self.channel.localAddress?.port ?? 0 }
    /// The origin a page served as `http://127.0.0.1:<port>` runs in.
    public var origin: String { "http://127.0.0.1:\(self.port)" }
    /// The same server under another origin (`http://localhost:<port>`).
    public var otherOrigin: String { "http://localhost:\(self.port)" }

    public init(pages: [String: Page], group: any EventLoopGroup) async throws {
        let results = NIOLockedValueBox<[String]>([])
        self.results = results
        self.channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(PageHandler(pages: pages, results: results))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    /// Every body posted to `/result` so far, oldest first.
    public var postedResults: [String] { self.results.withLockedValue { $0 } }

    public func stop() async {
        try? await self.channel.close()
    }
}

private final class PageHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let pages: [String: PageServer.Page]
    private let results: NIOLockedValueBox<[String]>
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()

    init(pages: [String: PageServer.Page], results: NIOLockedValueBox<[String]>) {
        self.pages = pages
        self.results = results
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            self.body.clear()
        case .body(var part):
            self.body.writeBuffer(&part)
        case .end:
            guard let head = self.head else { return }
            self.head = nil
            self.answer(head, context: context)
        }
    }

    private func answer(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        switch (head.method, path) {
        case (.POST, "/result"):
            let text = self.body.readString(length: self.body.readableBytes) ?? ""
            self.results.withLockedValue { $0.append(text) }
            self.write(status: .noContent, contentType: nil, body: "", context: context)
        case (.GET, _):
            if let page = self.pages[path] {
                self.write(status: .ok, contentType: page.contentType, body: page.body, context: context)
            } else {
                self.write(status: .notFound, contentType: "text/plain", body: "no such page\n", context: context)
            }
        default:
            self.write(status: .methodNotAllowed, contentType: "text/plain", body: "GET or POST /result\n", context: context)
        }
    }

    private func write(status: HTTPResponseStatus, contentType: String?, body: String, context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        if let contentType { headers.add(name: "Content-Type", value: contentType) }
        headers.add(name: "Content-Length", value: String(body.utf8.count))
        headers.add(name: "Cache-Control", value: "no-store")
        context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        if !body.isEmpty {
            context.write(self.wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
        }
        context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
    }
}
