import GatewayConfig
import Quotas

extension QuotaFailMode {
    /// The fail mode the settings give customers on cells of `tier` (`quotas.failMode`);
    /// `open` when the settings name none.
    init(settings: GatewaySettings, tier: GatewaySettings.Cell.Kind) {
        switch settings.quotaFailModes[tier] ?? .open {
        case .open: self = .open
        case .closed: self = .closed
        case .local: self = .local
        }
    }
}
