import GatewayConfig
import Logging
import ProxyEngine

/// Writes the access-log line of each request that ends on its event loop, one observer per
/// loop (its sampler is loop-local state, no lock). Installed only when `accessLog.enabled`:
/// off, the data plane builds no record for it.
public final class AccessLogObserver: RequestObserver {
    /// The logger label of access-log lines; `LogOutput` writes their message, already a JSON
    /// object, as the line itself.
    public static let label = "erp-gateway.access"

    private let logger: Logger
    private let settings: GatewaySettings.AccessLog
    private var sampler: RatioSampler

    public init(settings: GatewaySettings.AccessLog, logger: Logger, seed: UInt64 = .random(in: .min ... .max)) {
        self.settings = settings
        self.logger = logger
        self.sampler = RatioSampler(seed: seed)
    }

    public func requestEnded(_ record: RequestRecord) {
        let ratio: Double
        switch record.outcome {
        case .relayed, .answered: ratio = self.settings.sampling
        case .refused, .failed, .clientClosed: ratio = self.settings.problemSampling
        }
        // Decided before anything is formatted: a line sampled out costs one random draw.
        guard self.sampler.admits(ratio: ratio) else { return }
        self.logger.info(Logger.Message(stringLiteral: AccessLogLine.render(record)))
    }
}

/// Admits a share of calls, from a loop-local `SplitMix64` (sampling needs an even spread, not
/// secrecy).
struct RatioSampler {
    private var random: SplitMix64

    init(seed: UInt64) {
        self.random = SplitMix64(seed: seed)
    }

    mutating func admits(ratio: Double) -> Bool {
        if ratio >= 1 { return true }
        guard ratio > 0 else { return false }
        return self.random.next() < UInt64(ratio * 18_446_744_073_709_551_616.0)
    }
}
