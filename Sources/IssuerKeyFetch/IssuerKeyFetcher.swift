import AsyncHTTPClient
import CoreMetrics
import Foundation
import GatewayConfig
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import TokenAuth

/// The one place in a process that fetches issuers' keys from their identity providers.
///
/// It runs on a thread of its own (never an event loop of the data plane): a timer drives one
/// `KeyRefreshSchedule` per issuer, fetches go through `KeySetDownload`, and every change to
/// the usable key sets is handed whole to `publish` as a new immutable `FetchedKeySets` — the
/// data plane swaps it in per event loop, the way it swaps configurations. The request path
/// never waits for it: an unknown `kid` is only signalled (`unknownKey`), and the schedule
/// decides whether that earns an early fetch.
public final class IssuerKeyFetcher: Sendable {
    /// Metric names (docs/operations.md, "Metrics").
    public static let fetchesMetric = "erp_gateway_issuer_key_fetches_total"
    public static let ageMetric = "erp_gateway_issuer_key_set_age_seconds"
    public static let keysMetric = "erp_gateway_issuer_keys"

    private let thread: MultiThreadedEventLoopGroup
    private let loop: any EventLoop
    private let client: HTTPClient
    /// Touched only on `loop` (built before the loop runs anything of it).
    private let state: StateBox
    private let ticker: NIOLockedValueBox<RepeatedTask?> = NIOLockedValueBox(nil)

    /// How often schedules are looked at; well below any refresh bound.
    static let tickInterval = TimeAmount.milliseconds(200)

    /// `value` is read and written on the fetcher's loop only.
    private final class StateBox: @unchecked Sendable {
        let value: State
        init(_ value: State) { self.value = value }
    }

    private final class State {
        var settings: GatewaySettings.Authentication.KeyFetch
        var issuers: [String: IssuerState] = [:]
        var published = FetchedKeySets.none
        /// Each issuer's age gauge, made once (the tick records into it five times a second).
        var ageGauges: [String: Gauge] = [:]
        let publish: @Sendable (FetchedKeySets) -> Void
        let logger: Logger
        let metrics: (any MetricsFactory)?

        init(settings: GatewaySettings.Authentication.KeyFetch, publish: @escaping @Sendable (FetchedKeySets) -> Void, logger: Logger, metrics: (any MetricsFactory)?) {
            self.settings = settings
            self.publish = publish
            self.logger = logger
            self.metrics = metrics
        }
    }

    private struct IssuerState {
        var issuer: FetchedIssuer
        var schedule: KeyRefreshSchedule
        var keys: IssuerKeySet?
        /// What the current keys were made from, to tell a rotation from a plain refresh.
        var fingerprint: Set<String> = []
        var lastSuccess: Double?
    }

    /// - Parameter publish: called on the fetcher's thread with every new set of key sets.
    public init(
        settings: GatewaySettings.Authentication.KeyFetch, logger: Logger, metrics: (any MetricsFactory)? = nil,
        publish: @escaping @Sendable (FetchedKeySets) -> Void
    ) throws {
        let thread = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        do {
            self.client = try KeySetDownload.makeClient(caFile: settings.caFile, group: thread)
        } catch {
            try? thread.syncShutdownGracefully()
            throw error
        }
        self.thread = thread
        self.loop = thread.next()
        self.state = StateBox(State(settings: settings, publish: publish, logger: logger, metrics: metrics))
        let task = self.loop.scheduleRepeatedTask(initialDelay: .zero, delay: Self.tickInterval) { [self] _ in
            self.tick()
        }
        self.ticker.withLockedValue { $0 = task }
    }

    /// Fetches for exactly `issuers` from now on. An issuer whose source and algorithms are
    /// unchanged keeps its keys and schedule; a new or changed one is fetched at once; one that
    /// is gone is forgotten. Changed bounds apply from each issuer's next fetch.
    public func configure(_ issuers: [FetchedIssuer], settings: GatewaySettings.Authentication.KeyFetch) {
        let state = self.state
        self.loop.execute {
            let now = Date().timeIntervalSince1970
            let value = state.value
            let boundsChanged = value.settings != settings
            value.settings = settings
            var next: [String: IssuerState] = [:]
            for issuer in issuers {
                if var kept = value.issuers[issuer.issuer], kept.issuer == issuer {
                    // Fetch times kept: a reload neither fetches at once nor forgets when keys were last good.
                    if boundsChanged { kept.schedule = kept.schedule.rebounded(Self.bounds(settings)) }
                    next[issuer.issuer] = kept
                } else {
                    next[issuer.issuer] = IssuerState(issuer: issuer, schedule: KeyRefreshSchedule(bounds: Self.bounds(settings), now: now))
                }
            }
            value.issuers = next
            value.ageGauges = value.ageGauges.filter { next[$0.key] != nil }
            self.publishIfChanged(value)
            self.tick()
        }
    }

    /// A token of `issuer` named a `kid` its key set does not hold. Never blocks: the fetch,
    /// if the schedule allows one, happens on the fetcher's thread.
    public func unknownKey(issuer: String) {
        let state = self.state
        self.loop.execute {
            let now = Date().timeIntervalSince1970
            guard var entry = state.value.issuers[issuer] else { return }
            let action = entry.schedule.unknownKey(now: now)
            state.value.issuers[issuer] = entry
            if action == .fetch {
                state.value.logger.info("unknown key id: fetching the issuer's keys early", metadata: ["issuer": "\(issuer)"])
                self.startFetch(entry.issuer)
            }
        }
    }

    public func shutdown() async {
        self.ticker.withLockedValue { $0?.cancel() }
        try? await self.client.shutdown()
        try? await self.thread.shutdownGracefully()
    }

    // MARK: - On the fetcher's thread

    private func tick() {
        let value = self.state.value
        let now = Date().timeIntervalSince1970
        var expired = false
        for (name, var entry) in value.issuers {
            if entry.keys != nil, entry.schedule.keysExpired(now: now) {
                entry.keys = nil
                entry.fingerprint = []
                expired = true
                value.logger.error("the issuer's keys are past staleKeysFor without a successful fetch; its tokens are refused until one succeeds", metadata: [
                    "issuer": "\(name)",
                ])
            }
            let action = entry.schedule.tick(now: now)
            value.issuers[name] = entry
            if action == .fetch { self.startFetch(entry.issuer) }
            if let factory = value.metrics {
                let gauge = value.ageGauges[name] ?? Gauge(label: Self.ageMetric, dimensions: [("issuer", name)], factory: factory)
                value.ageGauges[name] = gauge
                gauge.record(entry.lastSuccess.map { now - $0 } ?? -1)
            }
        }
        if expired { self.publishIfChanged(value) }
    }

    private func startFetch(_ issuer: FetchedIssuer) {
        let settings = self.state.value.settings
        let download = KeySetDownload(client: self.client, timeout: settings.timeout, allowedHosts: settings.allowedHosts)
        let state = self.state
        let loop = self.loop
        Task {
            let outcome = await download.outcome(of: issuer)
            loop.execute { self.finished(issuer, outcome, state: state.value) }
        }
    }

    private func finished(_ issuer: FetchedIssuer, _ outcome: Result<KeySetDownload.Result, FetchFailure>, state value: State) {
        // Configured away, or changed, while the fetch ran: its answer is for another issuer.
        guard var entry = value.issuers[issuer.issuer], entry.issuer == issuer else { return }
        let now = Date().timeIntervalSince1970
        switch outcome {
        case .success(let result):
            entry.schedule.succeeded(now: now, maxAge: result.maxAge)
            entry.lastSuccess = now
            let usableUntil = Int64((entry.schedule.usableUntil ?? now).rounded(.down))
            let fingerprint = Set(result.keys.map { "\($0.kid) \($0.algorithm.rawValue)" }).union(result.fingerprint)
            if let current = entry.keys, fingerprint == entry.fingerprint {
                entry.keys = current.extended(until: usableUntil)
            } else {
                let before = entry.keys?.keyIDs ?? []
                entry.keys = IssuerKeySet(keys: result.keys, usableUntil: usableUntil)
                entry.fingerprint = fingerprint
                value.logger.notice("issuer keys fetched", metadata: [
                    "issuer": "\(issuer.issuer)", "kids": "\(result.keys.map(\.kid).sorted().joined(separator: ","))",
                    "added": "\(entry.keys!.keyIDs.subtracting(before).sorted().joined(separator: ","))",
                    "removed": "\(before.subtracting(entry.keys!.keyIDs).sorted().joined(separator: ","))",
                    "next-refresh-s": "\(Int(entry.schedule.nextRefresh - now))",
                ])
            }
            for (kid, reason) in result.ignored {
                value.logger.warning("published key ignored", metadata: ["issuer": "\(issuer.issuer)", "kid": "\(kid ?? "-")", "reason": "\(reason)"])
            }
            self.count(value, issuer: issuer.issuer, result: "success")
            if let factory = value.metrics {
                Gauge(label: Self.keysMetric, dimensions: [("issuer", issuer.issuer)], factory: factory).record(entry.keys?.keys.count ?? 0)
            }
        case .failure(let failure):
            entry.schedule.failed(now: now)
            value.logger.warning("issuer keys not fetched; the last good keys stay in use within staleKeysFor", metadata: [
                "issuer": "\(issuer.issuer)", "url": "\(issuer.source.url ?? "-")", "error": "\(failure)",
                "keys-usable-for-s": "\(entry.schedule.usableUntil.map { max(0, Int($0 - now)) } ?? 0)",
            ])
            self.count(value, issuer: issuer.issuer, result: failure.slug)
        }
        value.issuers[issuer.issuer] = entry
        self.publishIfChanged(value)
    }

    private func count(_ value: State, issuer: String, result: String) {
        guard let factory = value.metrics else { return }
        Counter(label: Self.fetchesMetric, dimensions: [("issuer", issuer), ("result", result)], factory: factory).increment()
    }

    /// Publishes the issuers' key sets when any differs from what was published last.
    private func publishIfChanged(_ value: State) {
        var sets: [String: IssuerKeySet] = [:]
        for (name, entry) in value.issuers {
            if let keys = entry.keys { sets[name] = keys }
        }
        let previous = value.published.byIssuer
        let same = previous.count == sets.count && sets.allSatisfy { previous[$0.key] === $0.value }
        guard !same else { return }
        value.published = FetchedKeySets(sets)
        value.publish(value.published)
    }

    static func bounds(_ settings: GatewaySettings.Authentication.KeyFetch) -> KeyRefreshSchedule.Bounds {
        func seconds(_ duration: Duration) -> Double {
            Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        }
        return KeyRefreshSchedule.Bounds(
            minimumRefresh: seconds(settings.minimumRefresh), defaultRefresh: seconds(settings.defaultRefresh),
            maximumRefresh: seconds(settings.maximumRefresh), staleKeysFor: seconds(settings.staleKeysFor)
        )
    }
}
