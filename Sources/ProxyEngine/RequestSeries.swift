import GatewayConfig

/// The labels of one request's series, taken from its `RequestRecord` and bounded by
/// construction: the OEM (never the partner or customer), the cell and its tier, the catalog
/// route (a path prefix of the catalog, never the request's path), the outcome, the status
/// class, and the problem's slug and phase (fixed sets). Nothing a client chooses freely can
/// become a label value: the OEM and the route are only ever what the configuration resolved.
///
/// Small and hashable: the per-loop observer keys its cached metric handles by it, so a request
/// costs one hash lookup and no label formatting.
struct RequestSeries: Hashable {
    var oem: String
    var cell: String
    var tier: String
    var route: String
    var outcome: RequestRecord.Outcome
    /// 1…5 for 1xx…5xx; 0 when the client left before a response head.
    var statusClass: UInt8
    var problem: String
    var phase: String

    /// The label value of every label a series does not have: Prometheus treats an empty value
    /// as an absent label, so queries can still match on it.
    static let none = ""
    /// Stands for OEMs and routes past the per-loop bound of series (`RequestMetrics.defaultMaxSeries`).
    static let other = "other"

    init(_ record: RequestRecord) {
        self.oem = record.tenant?.oem.rawValue ?? Self.none
        self.cell = record.cell ?? Self.none
        self.tier = record.tier?.rawValue ?? Self.none
        self.route = record.route ?? Self.none
        self.outcome = record.outcome
        self.statusClass = record.status.map { UInt8(clamping: $0 / 100) } ?? 0
        self.problem = record.problem?.slug ?? Self.none
        self.phase = record.problem?.phase.rawValue ?? Self.none
    }

    /// The same series with the labels that grow with the configuration folded into `other`:
    /// what a loop records once it holds its bound of series, so a misconfiguration (thousands
    /// of OEMs or routes) cannot grow the scrape without bound.
    var folded: RequestSeries {
        var folded = self
        folded.oem = Self.other
        folded.route = Self.other
        folded.cell = Self.other
        return folded
    }

    var statusLabel: String { self.statusClass == 0 ? Self.none : "\(self.statusClass)xx" }

    /// The labels of `erp_gateway_requests_total`, in a fixed order.
    var requestLabels: [(String, String)] {
        [
            ("oem", self.oem), ("cell", self.cell), ("tier", self.tier), ("route", self.route), ("outcome", self.outcome.rawValue),
            ("status", self.statusLabel), ("problem", self.problem), ("phase", self.phase),
        ]
    }

    /// The labels of the latency histograms and the retry counter: where, not how it ended.
    var placementLabels: [(String, String)] {
        [("oem", self.oem), ("cell", self.cell), ("tier", self.tier)]
    }
}
