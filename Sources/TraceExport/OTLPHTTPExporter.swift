import GatewayConfig
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// Builds the spans of queued requests and sends them to the collector in batches, on a thread
/// of its own: the event loops only append finished requests' records to the bounded `queue`
/// and never wait for the exporter, its span building, its encoding or the network. One export request at a time; a batch the collector refuses or
/// that times out is dropped and counted, not retried (spans are diagnostics, and a retry
/// would hold memory while the collector is struggling).
///
/// Why not swift-otel (1.6.0, even with only its `OTLPHTTP` trait): measured on this project's
/// 2-core machine, a clean debug build went from 192 to 587 CPU-seconds (6 min to 22 min wall
/// on a busy machine) and the binary from 49 to 123 MB, for async-http-client, swift-nio-ssl's
/// BoringSSL, swift-protobuf and the rest; CI builds from a clean clone every run. And its
/// tracer mints its own span ids, while the gateway's hop span must carry the id already
/// forwarded upstream in `traceparent`. OTLP/HTTP's JSON encoding needs neither protobuf nor
/// an HTTP client library (docs/operations.md, "Traces").
public final class OTLPHTTPExporter: Sendable {
    public struct Counts: Sendable, Equatable {
        public var exported = 0
        /// Spans in batches the collector refused or did not answer in time.
        public var failed = 0
        /// Requests whose spans were dropped because the queue was full (`TraceQueue`).
        public var dropped = 0
    }

    public let queue: TraceQueue
    private let settings: GatewaySettings.Tracing
    private let logger: Logger
    private let group: MultiThreadedEventLoopGroup
    private let loop: any EventLoop
    private let state: NIOLockedValueBox<State>

    private struct State {
        var counts = Counts()
        /// The export request on its way, if any: at most one at a time.
        var inFlight: EventLoopFuture<Bool>?
        var timer: RepeatedTask?
        /// Ids of the spans under each hop; used on the exporter's loop only.
        var ids = SpanIDSource()
        /// Dropped and failed spans already reported in the log.
        var reportedLosses = 0
    }

    public init(settings: GatewaySettings.Tracing, logger: Logger) {
        self.settings = settings
        self.logger = logger
        self.queue = TraceQueue(capacity: settings.queueSize)
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

    /// Stops the timer, lets the export on its way finish, and sends what is still queued, one
    /// batch after another, each within the export timeout; then stops the exporter's thread.
    public func shutdown() async {
        let drained = self.loop.flatSubmit { () -> EventLoopFuture<Void> in
            // On the exporter's loop: no tick runs after this cancel.
            self.state.withLockedValue { $0.timer?.cancel() }
            let inFlight = self.state.withLockedValue { $0.inFlight } ?? self.loop.makeSucceededFuture(true)
            return inFlight.flatMap { _ in self.drain() }
        }
        try? await drained.get()
        self.reportLosses()
        try? await self.group.shutdownGracefully()
    }

    private func drain() -> EventLoopFuture<Void> {
        guard self.queue.count > 0 else { return self.loop.makeSucceededVoidFuture() }
        return self.exportBatch().flatMap { accepted in accepted ? self.drain() : self.loop.makeSucceededVoidFuture() }
    }

    /// One batch, unless one is on its way; the next follows at once while a full batch waits.
    /// Runs on the exporter's loop only.
    private func exportNext() {
        guard self.state.withLockedValue({ $0.inFlight }) == nil else { return }
        let sent = self.exportBatch()
        self.state.withLockedValue { $0.inFlight = sent }
        sent.whenComplete { [self] result in
            self.state.withLockedValue { $0.inFlight = nil }
            if case .success(true) = result, self.queue.count >= self.settings.batchSize { self.exportNext() }
        }
    }

    /// Sends up to a batch; true when it was accepted (or there was nothing to send).
    private func exportBatch() -> EventLoopFuture<Bool> {
        let records = self.queue.take(self.settings.batchSize)
        guard !records.isEmpty else { return self.loop.makeSucceededFuture(true) }
        let batch = self.state.withLockedValue { state in records.flatMap { RequestSpans.build($0, ids: &state.ids) } }
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
