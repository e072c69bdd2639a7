import Cells
import GatewayConfig
import NIOCore

/// An endpoint of a cell, as health checks know it: the same address in two cells is two
/// targets (each cell has its own check path and thresholds).
public struct CellEndpoint: Sendable, Hashable, CustomStringConvertible {
    public var cell: String
    public var endpoint: GatewaySettings.Endpoint

    public init(cell: String, endpoint: GatewaySettings.Endpoint) {
        self.cell = cell
        self.endpoint = endpoint
    }

    public var description: String { "\(self.cell)/\(self.endpoint)" }
}

/// The routing state of one event loop: for every cell its load bounds, retry budget, and per
/// endpoint the requests outstanding and the passive outlier detector; plus the endpoints the
/// process's health checker last reported unhealthy. Only touched on its loop: the decisions
/// are the `Cells` state machines, this class holds them and the waiting requests.
///
/// Bounds are per process: each of the process's `loopCount` loops enforces its share, rounded
/// up, so no request takes a lock and the process stays within `loopCount - 1` of a bound.
final class CellRouter {
    /// What a cell is on this loop. Requests keep a reference to the cells they use, so a
    /// reload that drops a cell lets their accounting finish on the object they started on.
    final class CellState {
        private(set) var cell: GatewaySettings.Cell
        /// The cell's TLS context (`https` endpoints); part of every attempt's upstream target.
        private(set) var tls: UpstreamTLSContext?
        var load: CellLoad
        var budget: RetryBudget
        private(set) var endpoints: [EndpointState]
        var waiting = CircularBuffer<Waiter>()

        init(cell: GatewaySettings.Cell, tls: UpstreamTLSContext?, load: CellLoad, budget: RetryBudget, endpoints: [EndpointState]) {
            self.cell = cell
            self.tls = tls
            self.load = load
            self.budget = budget
            self.endpoints = endpoints
        }

        func reconfigure(
            cell: GatewaySettings.Cell, tls: UpstreamTLSContext?, load: CellLoad.Configuration, budget: RetryBudget.Configuration,
            outlier: OutlierDetector.Configuration
        ) {
            var endpoints: [EndpointState] = []
            for endpoint in cell.endpoints {
                if let kept = self.endpoints.first(where: { $0.endpoint == endpoint }), kept.outlier.configuration == outlier {
                    endpoints.append(kept)
                } else {
                    endpoints.append(EndpointState(endpoint: endpoint, outlier: OutlierDetector(configuration: outlier)))
                }
            }
            self.cell = cell
            self.tls = tls
            self.load = self.load.reconfigured(load)
            self.budget = self.budget.reconfigured(budget)
            self.endpoints = endpoints
        }

        var ejectedCount: Int { self.endpoints.reduce(0) { $0 + ($1.outlier.isEjected ? 1 : 0) } }
    }

    final class EndpointState {
        let endpoint: GatewaySettings.Endpoint
        var outstanding = 0
        var outlier: OutlierDetector
        var healthy = true

        init(endpoint: GatewaySettings.Endpoint, outlier: OutlierDetector) {
            self.endpoint = endpoint
            self.outlier = outlier
        }

        func isEligible(now: UInt64) -> Bool { self.healthy && self.outlier.isEligible(now: now) }
    }

    /// A request waiting for an in-flight slot of a full cell.
    struct Waiter {
        let id: Int
        let route: CellRoute
        let requester: any CellSlotWaiter
        let timeout: Scheduled<Void>
    }

    /// Where an upstream attempt goes, or why there is none.
    enum AttemptStart {
        case go(target: UpstreamTarget, connectTimeout: Duration, responseTimeout: Duration)
        /// Queued for an in-flight slot; the waiter is told the outcome later.
        case wait
        case overloaded(retryAfterSeconds: Int)
        /// Nothing left to try: every endpoint of every allowed cell is unhealthy, ejected, or
        /// already failed this request.
        case noEndpoint
    }

    let eventLoop: any EventLoop
    private let loopCount: Int
    private var cells: [String: CellState] = [:]
    private var settings: GatewaySettings
    private var unhealthy: Set<CellEndpoint> = []
    private var nextWaiterID = 0
    private var generator = SystemRandomNumberGenerator()
    /// Counts ejections; nil without metrics.
    var metrics: LoopMetrics?

    /// `tls`: the TLS context of every cell with `https` endpoints, by cell id
    /// (`GatewayConfiguration.upstreamTLS`).
    init(eventLoop: any EventLoop, settings: GatewaySettings, tls: [String: UpstreamTLSContext] = [:], loopCount: Int) {
        self.eventLoop = eventLoop
        self.loopCount = max(1, loopCount)
        self.settings = settings
        self.reconfigure(settings, tls: tls)
    }

    /// Installs the cells of a new configuration. A cell that keeps its id keeps its counts and
    /// the state of endpoints it keeps; requests in flight finish on the state they started on.
    func reconfigure(_ settings: GatewaySettings, tls: [String: UpstreamTLSContext] = [:]) {
        self.settings = settings
        let budget = RetryBudget.Configuration(
            minRetriesInFlight: Self.share(settings.retries.minRetriesInFlight, of: self.loopCount, atLeast: 0),
            ratio: Double(settings.retries.budgetPercent) / 100
        )
        let detection = settings.outlierDetection
        let outlier = OutlierDetector.Configuration(
            consecutiveFailures: detection.consecutiveFailures,
            baseEjectionNanoseconds: detection.baseEjection.wholeNanoseconds,
            maxEjectionNanoseconds: detection.maxEjection.wholeNanoseconds,
            maxEjectedPercent: detection.maxEjectedPercent
        )
        var next: [String: CellState] = [:]
        for cell in settings.cells {
            let load = CellLoad.Configuration(
                maxPending: Self.share(cell.limits.maxPending, of: self.loopCount, atLeast: 1),
                maxInFlight: Self.share(cell.limits.maxInFlight, of: self.loopCount, atLeast: 1),
                retryAfterSeconds: max(1, Int(cell.limits.retryAfter.components.seconds))
            )
            assert(cell.tls == nil || tls[cell.id] != nil, "an https cell without its compiled TLS context")
            let state: CellState
            if let existing = self.cells[cell.id] {
                existing.reconfigure(cell: cell, tls: tls[cell.id], load: load, budget: budget, outlier: outlier)
                state = existing
            } else {
                state = CellState(
                    cell: cell, tls: tls[cell.id], load: CellLoad(configuration: load), budget: RetryBudget(configuration: budget),
                    endpoints: cell.endpoints.map { EndpointState(endpoint: $0, outlier: OutlierDetector(configuration: outlier)) }
                )
            }
            next[cell.id] = state
        }
        self.cells = next
        self.applyHealth()
    }

    /// The health checker's latest verdict: every endpoint not in `unhealthy` is healthy.
    func setUnhealthy(_ unhealthy: Set<CellEndpoint>) {
        self.unhealthy = unhealthy
        self.applyHealth()
    }

    private func applyHealth() {
        for state in self.cells.values {
            for endpoint in state.endpoints {
                endpoint.healthy = !self.unhealthy.contains(CellEndpoint(cell: state.cell.id, endpoint: endpoint.endpoint))
            }
        }
    }

    /// `value / parts` rounded up, so the parts together never allow less than `value`.
    static func share(_ value: Int, of parts: Int, atLeast minimum: Int) -> Int {
        max(minimum, (value + parts - 1) / parts)
    }

    // MARK: - Routing one request

    /// The cells a request of a customer placed in `cell` may use, in order: its own, then each
    /// configured fallback that lies inside the customer's residency. A dedicated cell is never
    /// a fallback (the settings refuse it), so no other customer's request can reach one.
    func route(forCell id: String, residency: Set<String>?) -> CellRoute? {
        guard let primary = self.cells[id] else { return nil }
        var fallbacks: [CellState] = []
        for name in primary.cell.fallback {
            guard let fallback = self.cells[name], fallback.cell.kind == .pooled else { continue }
            if let residency, !residency.contains(fallback.cell.region) { continue }
            fallbacks.append(fallback)
        }
        primary.budget.requestStarted()
        return CellRoute(primary: primary, fallbacks: fallbacks)
    }

    /// Starts the request's next attempt: the first cell of its chain with an endpoint it may
    /// use, that cell's load bound, then power of two choices among its eligible endpoints.
    /// `waiter` is kept only when the answer is `.wait`, and told the outcome later; nothing is
    /// allocated for it otherwise (a closure here cost allocations on every request).
    func startAttempt(_ route: CellRoute, now: UInt64, waiter: any CellSlotWaiter) -> AttemptStart {
        assert(route.current == nil && route.waiterID == nil, "an attempt is already running")
        if route.current != nil || route.waiterID != nil {
            // Never expected; ending the running attempt keeps the counts right in release builds.
            self.endAttempt(route, now: now)
        }
        guard let state = self.hasCandidate(route.primary, for: route, now: now)
            ? route.primary : route.fallbacks.first(where: { self.hasCandidate($0, for: route, now: now) })
        else {
            return .noEndpoint
        }
        switch state.load.admit() {
        case .overloaded(let seconds):
            return .overloaded(retryAfterSeconds: seconds)
        case .admitted:
            route.pendingOn = state
        }
        if state.load.connectionAcquired() {
            return self.dispatch(route, on: state, now: now)
        }
        let id = self.nextWaiterID
        self.nextWaiterID += 1
        let retryAfter = state.load.configuration.retryAfterSeconds
        // Waiting is bounded like connecting: a cell that stays full answers in time.
        let wait = TimeAmount.milliseconds((state.cell.connectTimeout ?? self.settings.timeouts.upstreamConnect).milliseconds)
        let timeout = self.eventLoop.assumeIsolated().scheduleTask(in: wait) { [weak self, weak state] in
            guard let self, let state, let index = state.waiting.firstIndex(where: { $0.id == id }) else { return }
            let waiter = state.waiting.remove(at: index)
            self.leavePending(waiter.route)
            waiter.requester.cellSlotGranted(waiter.route, .overloaded(retryAfterSeconds: retryAfter))
        }
        state.waiting.append(Waiter(id: id, route: route, requester: waiter, timeout: timeout))
        route.waiterID = id
        return .wait
    }

    private func hasCandidate(_ state: CellState, for route: CellRoute, now: UInt64) -> Bool {
        state.endpoints.contains { $0.isEligible(now: now) && !route.hasTried($0, in: state) }
    }

    /// The request holds an in-flight slot of `state`: pick its endpoint.
    private func dispatch(_ route: CellRoute, on state: CellState, now: UInt64) -> AttemptStart {
        route.pendingOn = nil
        route.waiterID = nil
        let endpoints = state.endpoints
        // The candidates live on the stack for the choice: an array of them was an allocation
        // per request (`bench/allocations.sh`).
        let picked = withUnsafeTemporaryAllocation(of: PowerOfTwoChoices.Candidate.self, capacity: endpoints.count) { candidates -> Int? in
            for (index, endpoint) in endpoints.enumerated() {
                candidates.initializeElement(
                    at: index, to: .init(isEligible: endpoint.isEligible(now: now) && !route.hasTried(endpoint, in: state), outstanding: endpoint.outstanding)
                )
            }
            // An expired ejection lets exactly one probe through: a candidate whose probe was
            // taken meanwhile is dropped and the choice made again.
            while let index = PowerOfTwoChoices.pick(candidates, using: &self.generator) {
                guard endpoints[index].outlier.admit(now: now) else {
                    candidates[index].isEligible = false
                    continue
                }
                return index
            }
            return nil
        }
        if let picked {
            let endpoint = endpoints[picked]
            endpoint.outstanding += 1
            route.begin(on: state, endpoint: endpoint)
            return .go(
                target: UpstreamTarget(endpoint.endpoint, tls: state.tls),
                connectTimeout: state.cell.connectTimeout ?? self.settings.timeouts.upstreamConnect,
                responseTimeout: state.cell.responseTimeout ?? self.settings.timeouts.upstreamResponse
            )
        }
        // Everything became ineligible while this request waited for its slot.
        state.load.finished(.inFlight)
        self.grantWaiters(state, now: now)
        return .noEndpoint
    }

    /// What the attempt's upstream told about its endpoint, for passive outlier detection:
    /// a connect failure, a 5xx or a connection lost before the answer is a failure.
    func report(_ route: CellRoute, failed: Bool, now: UInt64) {
        guard let (state, endpoint) = route.current, !route.reported else { return }
        route.reported = true
        let action = endpoint.outlier.record(failed: failed, now: now, ejectedInCell: state.ejectedCount, endpointsInCell: state.endpoints.count)
        if case .ejected = action { self.metrics?.endpointEjected(cell: state.cell.id) }
    }

    /// The attempt is over (its connection released or never made): frees its slot and hands
    /// the slot to the next waiting request.
    func endAttempt(_ route: CellRoute, now: UInt64) {
        if let id = route.waiterID, let state = route.pendingOn {
            if let index = state.waiting.firstIndex(where: { $0.id == id }) {
                state.waiting.remove(at: index).timeout.cancel()
            }
            route.waiterID = nil
        }
        if route.pendingOn != nil { self.leavePending(route) }
        guard let (state, endpoint) = route.current else { return }
        if !route.reported { endpoint.outlier.abandon() }
        endpoint.outstanding = max(0, endpoint.outstanding - 1)
        state.load.finished(.inFlight)
        if route.isRetry { route.primary.budget.retryFinished() }
        route.end()
        self.grantWaiters(state, now: now)
    }

    /// Whether the request may try again, as far as the retry budget of its own cell goes;
    /// counts the retry when it may.
    func startRetry(_ route: CellRoute) -> Bool {
        guard route.primary.budget.retryStarted() else { return false }
        route.nextIsRetry = true
        return true
    }

    /// The request is over: its attempt (if any) ends and it leaves its cell's live requests.
    func finish(_ route: CellRoute, now: UInt64) {
        guard !route.finished else { return }
        self.endAttempt(route, now: now)
        if route.nextIsRetry {
            // A retry was granted but never started.
            route.primary.budget.retryFinished()
            route.nextIsRetry = false
        }
        route.primary.budget.requestFinished()
        route.finished = true
    }

    private func leavePending(_ route: CellRoute) {
        guard let state = route.pendingOn else { return }
        state.load.finished(.pending)
        route.pendingOn = nil
        route.waiterID = nil
    }

    private func grantWaiters(_ state: CellState, now: UInt64) {
        while state.load.canAcquire, let waiter = state.waiting.popFirst() {
            waiter.timeout.cancel()
            _ = state.load.connectionAcquired()
            waiter.requester.cellSlotGranted(waiter.route, self.dispatch(waiter.route, on: state, now: now))
        }
    }
}

/// Who waits for a slot of a full cell: told once, with the attempt's start (`.go`, or
/// `.overloaded` when the wait ran out).
protocol CellSlotWaiter: AnyObject {
    func cellSlotGranted(_ route: CellRoute, _ start: CellRouter.AttemptStart)
}

/// One request's way through its cells: the cells it may use, the endpoints it already tried
/// and the attempt running now. Owned by the request's exchange, changed only by `CellRouter`.
final class CellRoute {
    /// The customer's own cell: its retry budget counts the request.
    let primary: CellRouter.CellState
    /// Then these, in order. Apart from `primary` so that a cell without fallbacks — nearly
    /// every request's — builds no list (an allocation per request).
    let fallbacks: [CellRouter.CellState]
    fileprivate(set) var current: (CellRouter.CellState, CellRouter.EndpointState)?
    fileprivate var pendingOn: CellRouter.CellState?
    fileprivate var waiterID: Int?
    fileprivate var reported = false
    fileprivate var isRetry = false
    fileprivate var nextIsRetry = false
    fileprivate var finished = false
    /// The endpoints already tried: the first inline (nearly every request makes one attempt,
    /// and a list cost an allocation per request), any others after it.
    private var firstTried: CellEndpoint?
    private var moreTried: [CellEndpoint] = []
    private(set) var attempts = 0

    fileprivate init(primary: CellRouter.CellState, fallbacks: [CellRouter.CellState]) {
        self.primary = primary
        self.fallbacks = fallbacks
    }

    /// The cells the request may use, in order.
    var chain: [CellRouter.CellState] { [self.primary] + self.fallbacks }

    /// The cell of the attempt running now, for logs.
    var currentCell: GatewaySettings.Cell? { self.current?.0.cell }
    /// Its kind, for the tenant context: read without copying the cell's settings, which the
    /// upstream head of every request did (its endpoints, fallbacks and TLS settings retained
    /// and released).
    var currentCellKind: GatewaySettings.Cell.Kind? { self.current?.0.cell.kind }

    fileprivate func hasTried(_ endpoint: CellRouter.EndpointState, in state: CellRouter.CellState) -> Bool {
        guard let first = self.firstTried else { return false }
        let candidate = CellEndpoint(cell: state.cell.id, endpoint: endpoint.endpoint)
        return first == candidate || self.moreTried.contains(candidate)
    }

    fileprivate func begin(on state: CellRouter.CellState, endpoint: CellRouter.EndpointState) {
        self.current = (state, endpoint)
        let tried = CellEndpoint(cell: state.cell.id, endpoint: endpoint.endpoint)
        if self.firstTried == nil { self.firstTried = tried } else { self.moreTried.append(tried) }
        self.reported = false
        self.isRetry = self.nextIsRetry
        self.nextIsRetry = false
        self.attempts += 1
    }

    fileprivate func end() {
        self.current = nil
    }
}
