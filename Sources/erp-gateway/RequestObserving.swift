import AccessLog
import GatewayConfig
import Logging
import NIOCore
import ProxyEngine
import TraceExport

/// What is told of every request that ends: the access log and the trace exporter, as the
/// settings ask. Neither on: no observer, and the data plane builds no request record at all.
struct RequestObserving {
    let accessLog: GatewaySettings.AccessLog
    let exporter: OTLPHTTPExporter?

    init(settings: GatewaySettings, logger: Logger) {
        self.accessLog = settings.accessLog
        self.exporter = settings.tracing.map { OTLPHTTPExporter(settings: $0, logger: logger) }
    }

    func start(logger: Logger) {
        if self.accessLog.enabled {
            logger.notice("access log on", metadata: [
                "sampling": "\(self.accessLog.sampling)", "problem-sampling": "\(self.accessLog.problemSampling)",
            ])
        }
        guard let exporter = self.exporter else { return }
        exporter.start()
        logger.notice("trace export on", metadata: ["protocol": "otlp/http json"])
    }

    /// The per-loop factory for `GatewayServer.start`; nil when nothing observes.
    var factory: (@Sendable (any EventLoop) -> (any RequestObserver)?)? {
        let accessLog = self.accessLog
        let queue = self.exporter?.queue
        guard accessLog.enabled || queue != nil else { return nil }
        let accessLogger = Logger(label: AccessLogObserver.label)
        return { _ in
            var observers: [any RequestObserver] = []
            if accessLog.enabled { observers.append(AccessLogObserver(settings: accessLog, logger: accessLogger)) }
            if let queue { observers.append(TraceObserver(queue: queue)) }
            return observers.count == 1 ? observers[0] : RequestObservers(observers)
        }
    }

    /// Sends the spans still queued (each batch within the export timeout).
    func shutdown() async {
        await self.exporter?.shutdown()
    }
}
