import GatewayConfig
import Quotas

extension QuotaFailMode {
    /// The fail mode the settings give customers on cells of `tier` (`quotas.failMode`);
    /// `open` when the settings name none.
    init(configuration: GatewayConfiguration, tier: GatewaySettings.Cell.Kind) {
        // Read through the configuration object: a `GatewaySettings` argument was a copy of
        // the whole settings value per admitted request.
        switch configuration.settings.quotaFailModes[tier] ?? .open {
        case .open: self = .open
        case .closed: self = .closed
        case .local: self = .local
        }
    }
}

extension QuotaLeaseSettings {
    /// The leases the settings ask for (`quotas.leases`).
    init(settings: GatewaySettings) {
        let interval = settings.quotaLeases.refreshInterval
        let microseconds = interval.components.seconds * 1_000_000 + interval.components.attoseconds / 1_000_000_000_000
        self.init(
            refreshInterval: microseconds, maxUnits: settings.quotaLeases.maxUnits, idleAfter: max(1_000_000, 4 * microseconds),
            capacity: settings.quotaLeases.maxLeases
        )
    }
}
