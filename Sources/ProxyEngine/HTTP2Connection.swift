import GatewayConfig
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTP2

/// HTTP/2 connections: NIOHTTP2 speaks the protocol and enforces its limits; each stream is one
/// request, served by the same `ClientConnectionHandler` (and so the same phases, exchange and
/// upstream pools) as an HTTP/1.1 request, behind NIOHTTP2's HTTP/1-style codec.
///
/// A connection's pipeline: `NIOHTTP2Handler` (frames, flow control, HPACK, the DoS limits of
/// `listener.http2`, the stream multiplexer), `HTTP2ConnectionGuard` (preface deadline, close on
/// connection errors, bound on a graceful close), `NIOHTTP2ServerConnectionManagementHandler`
/// (GOAWAY after `timeouts.keepAliveIdle` without streams, and on shutdown). A stream's:
/// `HTTP2FramePayloadToHTTP1ServerCodec`, `ClientConnectionHandler`.
extension GatewayServer {
    /// Makes `channel` an HTTP/2 server connection. Called on the channel's event loop, once it
    /// is known to speak HTTP/2: by the h2c preface detector on a plain listener, and by the TLS
    /// listener when ALPN chose `h2`. Nothing of HTTP/1.1 may be in the pipeline; handlers in
    /// front (TLS) stay.
    ///
    /// - Parameter transport: how clients reach this listener (`X-Forwarded-Proto`): TLS, or
    ///   plain for h2c.
    static func configureHTTP2Connection(_ channel: any Channel, environment: ProxyEnvironment, transport: ClientTransport) throws {
        let settings = environment.configuration.settings
        let configuration = Self.http2Configuration(settings)
        let connectionGuard = HTTP2ConnectionGuard(timeout: .milliseconds(settings.timeouts.headerRead.milliseconds), logger: environment.logger)
        let manager = NIOHTTP2ServerConnectionManagementHandler(
            eventLoop: channel.eventLoop,
            configuration: .init(
                maxIdleTime: .milliseconds(settings.timeouts.keepAliveIdle.milliseconds),
                // Requests in flight are bounded by their own timeouts, and a shutdown by
                // `timeouts.shutdownGrace`.
                maxAge: nil, maxGraceTime: nil, keepalive: nil
            )
        )
        let shared = NIOLoopBound((environment, HTTP2Connection()), eventLoop: channel.eventLoop)
        let handler = NIOHTTP2Handler(
            mode: .server, eventLoop: channel.eventLoop, connectionConfiguration: configuration.connection,
            streamConfiguration: configuration.stream, streamDelegate: manager.http2StreamDelegate
        ) { stream in
            stream.eventLoop.makeCompletedFuture {
                let (environment, connection) = shared.value
                try Self.configureHTTP2Stream(stream.pipeline.syncOperations, environment: environment, transport: transport, connection: connection)
            }
        }
        let sync = channel.pipeline.syncOperations
        try sync.addHandler(handler)
        try sync.addHandler(connectionGuard)
        try sync.addHandler(manager)
        if channel.isActive {
            // The manager starts its idle timer on channelActive, which went by before the
            // connection turned out to be HTTP/2 (a preface read, an ALPN handshake done).
            try sync.context(handler: connectionGuard).fireChannelActive()
        }
    }

    /// The handlers of one HTTP/2 stream of `connection`.
    static func configureHTTP2Stream(
        _ sync: ChannelPipeline.SynchronousOperations, environment: ProxyEnvironment, transport: ClientTransport, connection: HTTP2Connection
    ) throws {
        try sync.addHandler(HTTP2FramePayloadToHTTP1ServerCodec())
        try sync.addHandler(
            ClientConnectionHandler(environment: environment, carrier: .http2Stream(connection), transport: transport, identifiers: connection.streamIdentifiers())
        )
    }

    /// `listener.http2` as NIOHTTP2's configuration: the SETTINGS the gateway announces and the
    /// limits it enforces.
    static func http2Configuration(_ settings: GatewaySettings) -> NIOHTTP2Handler.Configuration {
        let http2 = settings.listener.http2
        var connection = NIOHTTP2Handler.ConnectionConfiguration()
        connection.initialSettings = [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: http2.maxConcurrentStreams),
            HTTP2Setting(parameter: .maxHeaderListSize, value: Self.maxHeaderListSize(settings)),
            HTTP2Setting(parameter: .initialWindowSize, value: http2.initialWindowSize),
            // The gateway never pushes.
            HTTP2Setting(parameter: .enablePush, value: 0),
        ]
        connection.maximumSequentialContinuationFrames = http2.maxContinuationFrames
        connection.maximumBufferedControlFrames = http2.maxBufferedControlFrames
        connection.maximumConnectionGlitches = http2.maxGlitches
        connection.controlFrameRateLimit.maximumCount = http2.controlFrames.max
        connection.controlFrameRateLimit.windowLength = .milliseconds(http2.controlFrames.per.milliseconds)
        // The connection's window is given back as data arrives, not as it is read, so it bounds
        // nothing (the streams' windows bound what waits to be read); it only must not be
        // smaller than one stream's.
        connection.targetWindowSize = max(65_535, http2.initialWindowSize)
        var stream = NIOHTTP2Handler.StreamConfiguration()
        stream.targetWindowSize = http2.initialWindowSize
        stream.streamResetFrameRateLimit.maximumCount = http2.resetFrames.max
        stream.streamResetFrameRateLimit.windowLength = .milliseconds(http2.resetFrames.per.milliseconds)
        stream.streamErrorRateLimit.maximumCount = http2.streamErrors.max
        stream.streamErrorRateLimit.windowLength = .milliseconds(http2.streamErrors.per.milliseconds)
        return NIOHTTP2Handler.Configuration(connection: connection, stream: stream)
    }

    /// `listener.http2.maxHeaderListSize`, or the HTTP/1.1 decoder's bound on a head: above
    /// `limits`, so that a head over them is still answered with the precise 414 or 431.
    static func maxHeaderListSize(_ settings: GatewaySettings) -> Int {
        settings.listener.http2.maxHeaderListSize ?? RequestHeadValidation.decoderLimit(for: settings.limits)
    }
}

/// One HTTP/2 connection as its streams see it: what is the connection's, not a stream's. Made
/// per connection, touched only on its event loop.
final class HTTP2Connection {
    /// Quota refusals in a row over all the connection's streams: the pause after them is the
    /// connection's, as on HTTP/1.1 (a stream carries one request, so a stream alone never
    /// sees a second refusal).
    var pacing = RefusalPacing()
    /// Until when streams opened now wait before their request is served.
    var pausedUntil: NIODeadline?
    /// Seeds each stream's request-id generator: one system random number per connection, not
    /// one per stream.
    private var identifiers = IdentifierGenerator()

    /// The request-id generator of a new stream.
    func streamIdentifiers() -> IdentifierGenerator {
        IdentifierGenerator(seed: self.identifiers.next())
    }
}
