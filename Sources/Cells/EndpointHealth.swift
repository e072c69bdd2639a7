/// The result of active health checks against one endpoint.
///
/// Why a hysteresis of two thresholds: a single timed-out probe on a busy endpoint must not take
/// it out of rotation, and a single lucky answer from a crashing one must not put it back. The
/// endpoint flips only after `unhealthyThreshold` consecutive failed checks, and back only after
/// `healthyThreshold` consecutive successful ones; any opposite result resets the run.
///
/// Why it starts healthy: a gateway that starts (or reloads its configuration) with every endpoint
/// unhealthy would answer 503 for a whole check interval × `healthyThreshold`, for every cell, on
/// every deploy. Passive outlier ejection (`OutlierDetector`) removes a dead endpoint after its
/// first few real failures, so optimism costs at most a handful of retried connect failures.
///
/// No clock: the check scheduler owns the interval and timeout and reports each outcome here, so
/// this type needs no time at all. A timed-out check is a failed check.
public struct EndpointHealth: Sendable, Hashable {
    public struct Thresholds: Sendable, Hashable {
        /// Consecutive successful checks that bring an unhealthy endpoint back. At least 1.
        public var healthy: Int
        /// Consecutive failed checks that take a healthy endpoint out. At least 1.
        public var unhealthy: Int

        public init(healthy: Int, unhealthy: Int) {
            precondition(healthy >= 1 && unhealthy >= 1, "health thresholds must be at least 1")
            self.healthy = healthy
            self.unhealthy = unhealthy
        }
    }

    /// What a check result changed; the driver logs and counts transitions, nothing else.
    public enum Transition: Sendable, Hashable {
        case unchanged
        case becameHealthy
        case becameUnhealthy
    }

    public let thresholds: Thresholds
    public private(set) var isHealthy: Bool = true
    /// Length of the current run of identical results that goes against `isHealthy`.
    /// Always below the threshold that would flip the state.
    public private(set) var opposingRun: Int = 0

    public init(thresholds: Thresholds) {
        self.thresholds = thresholds
    }

    public mutating func recordCheck(succeeded: Bool) -> Transition {
        if succeeded == isHealthy {
            // A result confirming the current state breaks any run towards the other state.
            opposingRun = 0
            return .unchanged
        }
        opposingRun += 1
        let needed = isHealthy ? thresholds.unhealthy : thresholds.healthy
        guard opposingRun >= needed else { return .unchanged }
        isHealthy.toggle()
        opposingRun = 0
        return isHealthy ? .becameHealthy : .becameUnhealthy
    }
}
