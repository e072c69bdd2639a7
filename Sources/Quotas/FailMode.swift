/// What quotas do for a tier while the shared store cannot be reached. `QuotaGate` applies it.
///
/// Quotas owns the meaning; `GatewaySettings.QuotaFailMode` is only its spelling in the
/// settings file, mapped to this one by the data plane. GatewayConfig does not depend on Quotas
/// (that would link the Redis client, hiredis and NIO into every reader of the settings file,
/// `check` and the tree benchmark among them), and Quotas does not depend on GatewayConfig (a
/// domain module does not read settings files).
public enum QuotaFailMode: String, Sendable, Hashable, CaseIterable {
    /// Admit: the ERP stays available; limits are not enforced until the store returns.
    case open
    /// Refuse with 503: nothing is admitted that could not be counted.
    case closed
    /// Enforce every level's rate and burst in each event loop's memory (`LocalRateLimiter`;
    /// calendar and concurrency limits are not enforced): a flood is still cut, approximately.
    case local
}

/// Whether the shared store can be asked now, as the Redis client knows it without sending
/// anything (`QuotaAdmission.storeState(on:)`).
public enum QuotaStoreState: Sendable, Hashable {
    case reachable
    /// Known to be down; `reason` is logged with the fail mode's warning.
    case unreachable(reason: String)
}
