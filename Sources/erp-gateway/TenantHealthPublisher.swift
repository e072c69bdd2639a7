import GatewayConfig
import Hierarchy
import Logging
import NIOCore
import ProxyEngine
import Quotas
import TenantHealth
import TenantHealthStore
import TokenAuth

#if canImport(Glibc)
import Glibc
#endif

/// Counts every request that ends on its event loop into the loop's `HealthRecorder` (per
/// partner and OEM, per minute), and its 5xx answers per customer for the usage meter. Loop-
/// confined: no locks; the publisher reads it on its loop.
final class TenantHealthObserver: RequestObserver {
    var recorder = HealthRecorder()
    var errors = PendingUsage(counting: .errors)

    func requestEnded(_ record: RequestRecord) {
        guard let tenant = record.tenant else { return }
        // The end on the wall clock: its start plus the loop clock's time between the two.
        let endedMicroseconds = record.startedWallMicroseconds + record.total.nanoseconds / 1000
        self.recorder.record(
            tenant, minute: MinuteFigures.minute(ofMicroseconds: endedMicroseconds), status: record.status,
            gatewayMicroseconds: record.gatewayTime.nanoseconds / 1000, upstreamMicroseconds: record.upstreamTime.map { $0.nanoseconds / 1000 }
        )
        if let status = record.status, status >= 500, let customer = tenant.customer {
            self.errors.add(oem: tenant.oem, customer: customer, now: endedMicroseconds)
        }
    }
}

/// One process's tenant health: an observer per event loop, whose figures it takes, merges
/// and writes to the shared store under this node's id every `publishInterval` (aligned to
/// the interval, so the default minute falls just after each minute boundary) and once more on
/// shutdown; and, once a second per loop, the 5xx counts to the usage meter.
final class TenantHealthPublisher: Sendable {
    private let publication: Publication
    private let usage: UsageMeter
    private let tasks: [RepeatedTask]

    var node: String { self.publication.node }

    private init(publication: Publication, usage: UsageMeter, tasks: [RepeatedTask]) {
        self.publication = publication
        self.usage = usage
        self.tasks = tasks
    }

    static func start(
        group: any EventLoopGroup, settings: GatewaySettings.TenantHealth, store: TenantHealthStore, usage: UsageMeter, logger: Logger
    ) async throws -> TenantHealthPublisher {
        var observers: [ObjectIdentifier: NIOLoopBound<TenantHealthObserver>] = [:]
        var tasks: [RepeatedTask] = []
        for loop in group.makeIterator() {
            let bound = try await loop.submit { NIOLoopBound(TenantHealthObserver(), eventLoop: loop) }.get()
            observers[ObjectIdentifier(loop)] = bound
            tasks.append(loop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
                if !bound.value.errors.isEmpty { bound.value.errors.flush(to: usage, on: loop) }
            })
        }
        let loop = group.next()
        let unpublished = try await loop.submit { NIOLoopBound(UnpublishedMinutesBox(), eventLoop: loop) }.get()
        let publication = Publication(observers: observers, store: store, node: Self.nodeName(), loop: loop, unpublished: unpublished, logger: logger)
        let interval = max(Int64(settings.publishInterval.milliseconds), 1)
        // The first tick falls on the next multiple of the interval (plus a little, so that
        // requests ending on the boundary are counted before it), then every interval.
        let initialDelay = interval - (UnixTime.nowMicroseconds() / 1000) % interval + 100
        tasks.append(publication.loop.scheduleRepeatedAsyncTask(initialDelay: .milliseconds(initialDelay), delay: .milliseconds(interval)) { _ in
            publication.publish(finishing: false).recover { _ in }
        })
        logger.notice("tenant health publishing", metadata: ["node": "\(publication.node)", "interval-ms": "\(interval)"])
        return TenantHealthPublisher(publication: publication, usage: usage, tasks: tasks)
    }

    /// The observer of `loop`; call on that loop.
    func observer(on loop: any EventLoop) -> TenantHealthObserver? {
        self.publication.observers[ObjectIdentifier(loop)]?.value
    }

    /// Stops the ticks, writes the last figures and the last 5xx counts; returns once written
    /// (or failed).
    func shutdown() async {
        for task in self.tasks { task.cancel() }
        let usage = self.usage
        for bound in self.publication.observers.values {
            try? await bound.eventLoop.submit { bound.value.errors.flush(to: usage, on: bound.eventLoop) }.get()
        }
        try? await self.publication.publish(finishing: true).get()
    }

    static func nodeName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        let host = gethostname(&buffer, buffer.count) == 0 ? String(cString: buffer) : "node"
        return "\(host)-\(getpid())"
    }

    /// Taking, merging and writing: what a tick does.
    private struct Publication: Sendable {
        let observers: [ObjectIdentifier: NIOLoopBound<TenantHealthObserver>]
        let store: TenantHealthStore
        let node: String
        let loop: any EventLoop
        /// Finished minutes a failed write left, on `loop`.
        let unpublished: NIOLoopBound<UnpublishedMinutesBox>
        let logger: Logger

        /// Takes every loop's figures (all of them when `finishing`), merges and writes them.
        func publish(finishing: Bool) -> EventLoopFuture<Void> {
            let nowMinute = finishing ? Int64.max : MinuteFigures.minute(ofMicroseconds: UnixTime.nowMicroseconds())
            let takes = self.observers.values.map { bound in
                bound.eventLoop.submit { bound.value.recorder.take(nowMinute: nowMinute) }
            }
            let (store, node, logger, loop, unpublished) = (self.store, self.node, self.logger, self.loop, self.unpublished)
            return EventLoopFuture.whenAllSucceed(takes, on: loop).flatMap { tables in
                let merged = unpublished.value.minutes.takeMerged(with: tables.flatMap { $0 })
                guard !merged.isEmpty else { return loop.makeSucceededVoidFuture() }
                return store.publish(merged, node: node, on: loop).flatMapErrorThrowing { error in
                    unpublished.value.minutes.keep(failed: merged, nowMinute: nowMinute)
                    logger.warning("cannot publish tenant health", metadata: [
                        "error": "\(error)", "kept-minutes": "\(unpublished.value.minutes.minutes.count)",
                        "dropped-minutes": "\(unpublished.value.minutes.droppedMinutes)",
                    ])
                    throw error
                }
            }
        }
    }
}

/// The publisher loop's `UnpublishedMinutes`, mutable in place through its `NIOLoopBound`.
final class UnpublishedMinutesBox {
    var minutes = UnpublishedMinutes()
}
