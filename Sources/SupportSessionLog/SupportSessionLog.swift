import CoreMetrics
import Hierarchy
import Logging
import NIOConcurrencyHelpers
import NIOCore
import ProxyEngine
import RedisClient
import SupportAccess

/// Records every request a support engineer makes under a grant in the customer's audit stream
/// (its OEM's, as a `session` entry), off the request path: each loop's observer only appends to
/// one bounded buffer; a task on the log's own loop writes what is buffered every
/// `flushInterval`. Nothing is lost silently: a record the buffer has no room for, or the
/// store refused, is counted (`erp_gateway_support_sessions_total{result="dropped"}`) and
/// logged once per flush.
public final class SupportSessionLog: Sendable {
    static let metricName = MetricCatalog.supportSessions
    public static let flushInterval = TimeAmount.milliseconds(100)
    /// Records written in one flush at most; the rest wait for the next.
    static let batch = 1000

    private let client: RedisClient
    /// The audit stream of an OEM (`AdminStore.auditKey(oem:)`).
    private let streamKey: @Sendable (String) -> String
    private let capacity: Int
    private let loop: any EventLoop
    private let logger: Logger
    private let buffer = NIOLockedValueBox<[SupportSession]>([])
    private let task = NIOLockedValueBox<RepeatedTask?>(nil)
    private let written: CoreMetrics.Counter
    private let dropped: CoreMetrics.Counter

    public init(
        client: RedisClient, streamKey: @escaping @Sendable (String) -> String, capacity: Int, loop: any EventLoop, logger: Logger,
        metrics: (any MetricsFactory)? = nil
    ) {
        self.client = client
        self.streamKey = streamKey
        self.capacity = capacity
        self.loop = loop
        self.logger = logger
        let factory = metrics ?? MetricsSystem.factory
        self.written = CoreMetrics.Counter(label: Self.metricName, dimensions: [("result", "written")], factory: factory)
        self.dropped = CoreMetrics.Counter(label: Self.metricName, dimensions: [("result", "dropped")], factory: factory)
    }

    public func start() {
        let task = self.loop.scheduleRepeatedAsyncTask(initialDelay: Self.flushInterval, delay: Self.flushInterval) { [self] _ in
            self.flush()
        }
        self.task.withLockedValue { $0 = task }
    }

    /// Writes what is still buffered, then stops.
    public func shutdown() async {
        self.task.withLockedValue { $0?.cancel() }
        while !(self.buffer.withLockedValue { $0.isEmpty }) {
            try? await self.loop.flatSubmit { self.flush() }.get()
        }
    }

    /// One observer per event loop of the data plane.
    public func observer() -> any RequestObserver { Observer(log: self) }

    func record(_ session: SupportSession) {
        let accepted = self.buffer.withLockedValue { buffer -> Bool in
            guard buffer.count < self.capacity else { return false }
            buffer.append(session)
            return true
        }
        if !accepted { self.dropped.increment() }
    }

    private func flush() -> EventLoopFuture<Void> {
        let sessions = self.buffer.withLockedValue { buffer -> ArraySlice<SupportSession> in
            let taken = buffer.prefix(Self.batch)
            buffer.removeFirst(taken.count)
            return taken
        }
        guard !sessions.isEmpty else { return self.loop.makeSucceededVoidFuture() }
        let writes = sessions.map { session in
            self.client.send(on: self.loop, ["XADD", self.streamKey(session.customer.oem.rawValue), "*", "session", session.json]).map { reply in
                reply.errorMessage == nil
            }.recover { _ in false }
        }
        return EventLoopFuture.whenAllSucceed(writes, on: self.loop).map { results in
            let failed = results.filter { !$0 }.count
            self.written.increment(by: results.count - failed)
            if failed > 0 {
                self.dropped.increment(by: failed)
                self.logger.warning("support session records not written to the shared store", metadata: ["dropped": "\(failed)"])
            }
        }
    }

    /// Keeps the requests made under a grant; every other record passes by.
    final class Observer: RequestObserver {
        let log: SupportSessionLog

        init(log: SupportSessionLog) {
            self.log = log
        }

        func requestEnded(_ record: RequestRecord) {
            guard let support = record.support, let customer = record.tenant else { return }
            self.log.record(SupportSession(
                time: record.startedWallMicroseconds / 1000, customer: customer, grant: support.grant, ticket: support.ticket,
                engineer: support.engineer, method: record.method, path: record.path ?? "", status: record.status, problem: record.problem?.slug,
                requestID: record.requestID
            ))
        }
    }
}
