import GatewayConfig
import Logging
import NIOCore

/// What every client connection on one event loop shares: the settings snapshot, the loop's
/// upstream pool and the logger. Created once per loop.
struct ProxyEnvironment {
    var settings: GatewaySettings
    var pool: UpstreamPool
    var logger: Logger
    /// The scheme clients use to reach this listener, for X-Forwarded-Proto.
    var scheme: String
}
