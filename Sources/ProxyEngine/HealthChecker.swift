import Cells
import GatewayConfig
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// Active health checks of one gateway process: one probe series per endpoint of every cell
/// that configures `healthCheck`, run on a single event loop so that each endpoint is checked
/// once per interval whatever the number of loops. Verdicts (`EndpointHealth`) change only
/// after a run of results; each change hands the whole set of unhealthy endpoints to
/// `publish`, which installs it on every loop's router.
///
/// A probe is `GET <path>` on a fresh connection with `Connection: close`, over TLS with the
/// cell's context when its endpoints are `https` (as the traffic travels); a 2xx head within
/// the timeout is a success, anything else (refused, reset, a failed handshake, timeout, other
/// status) a failure.
/// The next probe is scheduled an interval after the previous one ended, so probes of one
/// endpoint never overlap.
final class HealthChecker {
    private final class Target {
        let check: GatewaySettings.HealthCheck
        /// The endpoint as probed: with the cell's TLS context for an `https` cell.
        let upstream: UpstreamTarget
        var health: EndpointHealth
        /// Bumped on removal so a probe still running does not reschedule itself.
        var active = true
        var next: Scheduled<Void>?

        init(check: GatewaySettings.HealthCheck, upstream: UpstreamTarget) {
            self.check = check
            self.upstream = upstream
            self.health = EndpointHealth(thresholds: .init(healthy: check.healthyThreshold, unhealthy: check.unhealthyThreshold))
        }
    }

    let eventLoop: any EventLoop
    private let logger: Logger
    private let publish: (Set<CellEndpoint>) -> Void
    private var targets: [CellEndpoint: Target] = [:]
    private let metrics: HealthMetrics?

    init(eventLoop: any EventLoop, logger: Logger, metrics: HealthMetrics? = nil, publish: @escaping (Set<CellEndpoint>) -> Void) {
        self.eventLoop = eventLoop
        self.logger = logger
        self.metrics = metrics
        self.publish = publish
    }

    /// Hands the verdicts to every loop's router, and counts them.
    private func published() {
        self.publish(self.unhealthy)
        guard let metrics = self.metrics else { return }
        var counts: [String: (healthy: Int, unhealthy: Int)] = [:]
        for (key, target) in self.targets {
            var count = counts[key.cell] ?? (0, 0)
            if target.health.isHealthy { count.healthy += 1 } else { count.unhealthy += 1 }
            counts[key.cell] = count
        }
        metrics.verdicts(counts)
    }

    var unhealthy: Set<CellEndpoint> {
        Set(self.targets.filter { !$0.value.health.isHealthy }.keys)
    }

    /// Starts checking the endpoints of `cells` (`tls`: the contexts of the `https` cells, by
    /// cell id). An endpoint whose cell keeps the same check and TLS context keeps its verdict
    /// and schedule; removed ones stop; new ones, and ones whose check or TLS settings changed,
    /// start healthy (see `EndpointHealth` for why) and are probed at once.
    func configure(_ cells: [GatewaySettings.Cell], tls: [String: UpstreamTLSContext] = [:]) {
        var wanted: [CellEndpoint: (check: GatewaySettings.HealthCheck, upstream: UpstreamTarget)] = [:]
        for cell in cells {
            guard let check = cell.healthCheck else { continue }
            for endpoint in cell.endpoints {
                wanted[CellEndpoint(cell: cell.id, endpoint: endpoint)] = (check, UpstreamTarget(endpoint, tls: tls[cell.id]))
            }
        }
        for (key, target) in self.targets where wanted[key]?.check != target.check || wanted[key]?.upstream != target.upstream {
            target.active = false
            target.next?.cancel()
            self.targets[key] = nil
        }
        for (key, (check, upstream)) in wanted where self.targets[key] == nil {
            let target = Target(check: check, upstream: upstream)
            self.targets[key] = target
            self.probe(key, target)
        }
        self.published()
    }

    func stop() {
        for target in self.targets.values {
            target.active = false
            target.next?.cancel()
        }
        self.targets = [:]
    }

    private func probe(_ key: CellEndpoint, _ target: Target) {
        Self.probe(target.upstream, check: target.check, on: self.eventLoop).assumeIsolated().whenComplete { [weak self] result in
            guard let self, target.active else { return }
            let succeeded: Bool
            switch result {
            case .success(let status): succeeded = (200..<300).contains(status)
            case .failure: succeeded = false
            }
            switch target.health.recordCheck(succeeded: succeeded) {
            case .unchanged:
                break
            case .becameUnhealthy:
                self.logger.warning("endpoint unhealthy; no longer routed to", metadata: ["cell": "\(key.cell)", "endpoint": "\(key.endpoint)", "result": "\(result)"])
                self.metrics?.changed(cell: key.cell, healthy: false)
                self.published()
            case .becameHealthy:
                self.logger.notice("endpoint healthy again", metadata: ["cell": "\(key.cell)", "endpoint": "\(key.endpoint)"])
                self.metrics?.changed(cell: key.cell, healthy: true)
                self.published()
            }
            target.next = self.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(target.check.interval.milliseconds)) { [weak self] in
                guard let self, target.active else { return }
                self.probe(key, target)
            }
        }
    }

    /// One probe: the status of the answer's head, or an error.
    static func probe(_ target: UpstreamTarget, check: GatewaySettings.HealthCheck, on loop: any EventLoop) -> EventLoopFuture<UInt> {
        let status = loop.makePromise(of: UInt.self)
        let timeout = TimeAmount.milliseconds(check.timeout.milliseconds)
        let deadline = loop.assumeIsolated().scheduleTask(in: timeout) {
            status.fail(HealthProbeError.timedOut)
        }
        // The HTTP handlers join once connected: a failed TLS handshake fails the probe with
        // its reason (logged when the endpoint turns unhealthy), not as a connection closed.
        let connecting = UpstreamChannel.connect(target, timeout: timeout, on: loop, noDelay: false) { _ in }
        connecting.assumeIsolated().whenComplete { result in
            switch result {
            case .success(let channel):
                status.futureResult.whenComplete { _ in channel.close(promise: nil) }
                do {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(HealthProbeHandler(status: status))
                } catch {
                    status.fail(error)
                    return
                }
                channel.write(HTTPClientRequestPart.head(Self.probeHead(target.endpoint, check: check)), promise: nil)
                channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
            case .failure(let error):
                status.fail(error)
            }
        }
        status.futureResult.whenComplete { _ in deadline.cancel() }
        return status.futureResult
    }

    /// The probe's request head; no body follows. It carries no tenant context and no signature
    /// (docs/backend-contract.md, "Health probes arrive unsigned").
    static func probeHead(_ endpoint: GatewaySettings.Endpoint, check: GatewaySettings.HealthCheck) -> HTTPRequestHead {
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: check.path)
        head.headers.add(name: "host", value: endpoint.authority)
        head.headers.add(name: "user-agent", value: "erp-gateway-health-check")
        head.headers.add(name: "connection", value: "close")
        return head
    }
}

enum HealthProbeError: Error {
    case timedOut
    case closedWithoutAnswer
}

/// Completes the probe with the status of the first response head.
private final class HealthProbeHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    private let status: EventLoopPromise<UInt>

    init(status: EventLoopPromise<UInt>) {
        self.status = status
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = self.unwrapInboundIn(data) {
            self.status.succeed(head.status.code)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.status.fail(HealthProbeError.closedWithoutAnswer)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.status.fail(error)
        context.close(promise: nil)
    }
}
