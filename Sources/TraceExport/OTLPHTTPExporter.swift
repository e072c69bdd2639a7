import GatewayConfig
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// Sends queued spans to the collector in batches, on a thread of its own: the event loops
/// only append finished spans to the bounded `queue` and never wait for the exporter, its
/// encoding or the network. One export request at a time; a batch the collector refuses or
/// that times out is dropped and counted, not retried (spans are diagnostics, and a retry
/// would hold memory while the collector is struggling).
///
/// Why not swift-otel: measured on the 2-core CI machine, building it and its dependencies
/// (async-http-client, swift-nio-ssl, swift-protobuf…) added minutes to every clean build, and
/// its tracer mints its own span ids while the gateway's hop span must carry the id already
/// forwarded upstream in `traceparent` (docs/operations.md, "Traces").
public final class OTLPHTTPExporter: Sendable {
    public struct Counts: Sendable, Equatable {
        public var exported = 0
        /// Spans in batches the collector refused or did not answer in time.
        public var failed = 0
        /// Spans dropped because the queue was full (`SpanQueue`).
        public var dropped = 0
    }

    public let queue: SpanQueue
    private let settings: GatewaySettings.Tracing
    private let logger: Logger
    private let group: MultiThreadedEventLoopGroup
    private let loop: any EventLoop
    private let state: NIOLockedValueBox<State>

    private struct State {
        var counts = Counts()
        var exporting = false
        var timer: RepeatedTask?
        /// Dropped and failed spans already reported in the log.
        var reportedLosses = 0
    }

    public init(settings: GatewaySettings.Tracing, logger: Logger) {
        self.settings = settings
        self.logger = logger
        self.queue = SpanQueue(capacity: settings.queueSize)
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.loop = self.group.next()
        self.state = NIOLockedValueBox(State())
    }

    public var counts: Counts {
        var counts = self.state.withLockedValue { $0.counts }
        counts.dropped = self.queue.counts.dropped
        return counts
    }

    public func start() {
        let interval = TimeAmount.milliseconds(self.settings.exportInterval.milliseconds)
        let timer = self.loop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [self] _ in
            self.exportNext()
            self.reportLosses()
        }
        self.state.withLockedValue { $0.timer = timer }
    }

    /// Stops the timer and sends what is queued, one batch after another, each within the
    /// export timeout; then stops the exporter's thread.
    public func shutdown() async {
        self.state.withLockedValue { $0.timer?.cancel() }
        while self.queue.count > 0 {
            let sent = self.loop.flatSubmit { self.exportBatch() }
            guard (try? await sent.get()) == true else { break }
        }
        self.reportLosses()
        try? await self.group.shutdownGracefully()
    }

    /// One batch, unless one is on its way; the next follows at once while a full batch waits.
    private func exportNext() {
        let exporting = self.state.withLockedValue { state in
            defer { state.exporting = true }
            return state.exporting
        }
        guard !exporting else { return }
        self.exportBatch().whenComplete { [self] result in
            self.state.withLockedValue { $0.exporting = false }
            if case .success(true) = result, self.queue.count >= self.settings.batchSize { self.exportNext() }
        }
    }

    /// Sends up to a batch; true when it was accepted (or there was nothing to send).
    private func exportBatch() -> EventLoopFuture<Bool> {
        let batch = self.queue.take(self.settings.batchSize)
        guard !batch.isEmpty else { return self.loop.makeSucceededFuture(true) }
        let body = OTLPJSON.exportRequest(batch, serviceName: self.settings.serviceName)
        let timeout = TimeAmount.milliseconds(self.settings.exportTimeout.milliseconds)
        return HTTPPost.send(
            host: self.settings.endpoint.host, port: self.settings.endpoint.port, path: self.settings.path, contentType: OTLPJSON.contentType,
            body: body, timeout: timeout, on: self.loop
        ).map { status -> Bool in
            let accepted = (200..<300).contains(status.code)
            self.state.withLockedValue { state in
                if accepted { state.counts.exported += batch.count } else { state.counts.failed += batch.count }
            }
            return accepted
        }.recover { _ in
            self.state.withLockedValue { $0.counts.failed += batch.count }
            return false
        }
    }

    /// Spans lost since the last report, at most one warning per export interval.
    private func reportLosses() {
        let counts = self.counts
        let lost = counts.dropped + counts.failed
        let reported = self.state.withLockedValue { state in
            defer { state.reportedLosses = lost }
            return state.reportedLosses
        }
        guard lost > reported else { return }
        self.logger.warning("trace spans lost", metadata: [
            "dropped-queue-full": "\(counts.dropped)", "failed-export": "\(counts.failed)", "exported": "\(counts.exported)",
            "collector": "\(self.settings.endpoint)",
        ])
    }
}
