@testable import GatewayConfig
import NIOCore
import NIOEmbedded
import XCTest

@testable import ProxyEngine

/// The per-loop router driven as a value with an embedded loop: no sockets, time passed in.
final class CellRouterTests: XCTestCase {
    private let loop = EmbeddedEventLoop()
    private let second: UInt64 = 1_000_000_000

    private func endpoint(_ port: Int) -> GatewaySettings.Endpoint { .init(host: "127.0.0.1", port: port) }

    private func settings(
        cells: [GatewaySettings.Cell], retries: GatewaySettings.Retries = .init(maxAttempts: 3, budgetPercent: 0, minRetriesInFlight: 10),
        outliers: GatewaySettings.OutlierDetection = .init(consecutiveFailures: 2, baseEjection: .seconds(10), maxEjection: .seconds(60), maxEjectedPercent: 100)
    ) -> GatewaySettings {
        var settings = GatewaySettings(
            listener: .init(address: "127.0.0.1", port: 0, eventLoops: 1), limits: SettingsLoader.defaultLimits,
            timeouts: SettingsLoader.defaultTimeouts, upstreamPool: SettingsLoader.defaultPool, forwarding: SettingsLoader.defaultForwarding,
            cells: cells, defaultCell: cells[0].id
        )
        settings.retries = retries
        settings.outlierDetection = outliers
        return settings
    }

    private func cell(
        _ id: String, _ ports: [Int], kind: GatewaySettings.Cell.Kind = .pooled, region: String = "eu", fallback: [String] = [],
        limits: GatewaySettings.CellLimits = .default
    ) -> GatewaySettings.Cell {
        .init(id: id, kind: kind, region: region, endpoints: ports.map(endpoint), limits: limits, fallback: fallback)
    }

    private func start(_ router: CellRouter, _ route: CellRoute, now: UInt64 = 0, resumed: ((CellRouter.AttemptStart) -> Void)? = nil) -> CellRouter.AttemptStart {
        router.startAttempt(route, now: now, waiter: SlotWaiter(resumed))
    }

    private func port(_ start: CellRouter.AttemptStart) -> Int? {
        if case .go(let target, _, _) = start { return target.endpoint.port }
        return nil
    }

    // MARK: - Cells a request may use

    func testFallbacksOutsideTheResidencyAreNotInTheRoute() {
        let cells = [
            cell("eu-1", [1], fallback: ["us-1", "eu-2"]), cell("us-1", [2], region: "us"), cell("eu-2", [3]),
        ]
        let router = CellRouter(eventLoop: self.loop, settings: settings(cells: cells), loopCount: 1)
        XCTAssertEqual(router.route(forCell: cells[0].id, residency: ["eu"])?.chain.map(\.cell.id), ["eu-1", "eu-2"])
        XCTAssertEqual(router.route(forCell: cells[0].id, residency: nil)?.chain.map(\.cell.id), ["eu-1", "us-1", "eu-2"])
        XCTAssertEqual(router.route(forCell: cells[0].id, residency: ["us"])?.chain.map(\.cell.id), ["eu-1", "us-1"])
    }

    func testADedicatedCellIsNeverAFallbackEvenIfConfiguredAsOne() {
        // The settings loader refuses this; the router does not rely on it.
        let cells = [cell("eu-1", [1], fallback: ["acme"]), cell("acme", [2], kind: .dedicated)]
        let router = CellRouter(eventLoop: self.loop, settings: settings(cells: cells), loopCount: 1)
        XCTAssertEqual(router.route(forCell: cells[0].id, residency: nil)?.chain.map(\.cell.id), ["eu-1"])
    }

    func testAnUnknownCellHasNoRoute() {
        let router = CellRouter(eventLoop: self.loop, settings: settings(cells: [cell("eu-1", [1])]), loopCount: 1)
        XCTAssertNil(router.route(forCell: cell("gone", [9]).id, residency: nil))
    }

    // MARK: - Endpoint choice

    func testTheLessLoadedEndpointIsChosen() {
        let cells = [cell("eu-1", [1, 2])]
        let router = CellRouter(eventLoop: self.loop, settings: settings(cells: cells), loopCount: 1)
        for _ in 0..<20 {
            let first = router.route(forCell: cells[0].id, residency: nil)!
            let busy = port(start(router, first))!
            // With two endpoints both are drawn: the idle one always wins.
            let second = router.route(forCell: cells[0].id, residency: nil)!
            XCTAssertEqual(port(start(router, second)), busy == 1 ? 2 : 1)
            router.finish(first, now: 0)
            router.finish(second, now: 0)
        }
    }

    func testUnhealthyEndpointsAreSkippedAndNoneLeftMeansNoEndpoint() {
        let cells = [cell("eu-1", [1, 2])]
        let router = CellRouter(eventLoop: self.loop, settings: settings(cells: cells), loopCount: 1)
        router.setUnhealthy([CellEndpoint(cell: "eu-1", endpoint: endpoint(1))])
        for _ in 0..<10 {
            let route = router.route(forCell: cells[0].id, residency: nil)!
            XCTAssertEqual(port(start(router, route)), 2)
            router.finish(route, now: 0)
        }
        router.setUnhealthy([CellEndpoint(cell: "eu-1", endpoint: endpoint(1)), CellEndpoint(cell: "eu-1", endpoint: endpoint(2))])
        let route = router.route(forCell: cells[0].id, residency: nil)!
        guard case .noEndpoint = start(router, route) else { return XCTFail("every endpoint is unhealthy") }
        router.setUnhealthy([])
        XCTAssertNotNil(port(start(router, route)), "healthy again")
    }

    func testHealthIsPerCellNotPerAddress() {
        let cells = [cell("eu-1", [1]), cell("eu-2", [1])]
        let router = CellRouter(eventLoop: self.loop, settings: settings(cells: cells), loopCount: 1)
        router.setUnhealthy([CellEndpoint(cell: "eu-1", endpoint: endpoint(1))])
        guard case .noEndpoint = start(router, router.route(forCell: cells[0].id, residency: nil)!) else { return XCTFail() }
        XCTAssertEqual(port(start(router, router.route(forCell: cells[1].id, residency: nil)!)), 1)
    }

    func testFailuresEjectAnEndpointThenOneProbeBringsItBack() {
        let cells = [cell("eu-1", [1, 2])]
        let router = CellRouter(eventLoop: self.loop, settings: settings(cells: cells), loopCount: 1)
        // Two failures in a row on port 1 (consecutiveFailures: 2).
        var failures = 0
        while failures < 2 {
            let route = router.route(forCell: cells[0].id, residency: nil)!
            let chosen = port(start(router, route))
            router.report(route, failed: chosen == 1, now: 0)
            if chosen == 1 { failures += 1 }
            router.finish(route, now: 0)
        }
        for _ in 0..<10 {
            let route = router.route(forCell: cells[0].id, residency: nil)!
            XCTAssertEqual(port(start(router, route, now: 9 * second)), 2, "ejected for 10 s")
            router.finish(route, now: 9 * second)
        }
        // Once the ejection expired, the idle endpoint 1 is probed by exactly one request.
        let probe = router.route(forCell: cells[0].id, residency: nil)!
        let other = router.route(forCell: cells[0].id, residency: nil)!
        let probePort = port(start(router, probe, now: 10 * second))
        let otherPort = port(start(router, other, now: 10 * second))
        XCTAssertEqual(Set([probePort, otherPort]), [1, 2])
        let prober = probePort == 1 ? probe : other
        let third = router.route(forCell: cells[0].id, residency: nil)!
        XCTAssertEqual(port(start(router, third, now: 10 * second)), 2, "one probe at a time")
        router.report(prober, failed: false, now: 10 * second)
        for route in [probe, other, third] { router.finish(route, now: 10 * second) }
        var seen: Set<Int> = []
        for _ in 0..<40 {
            let route = router.route(forCell: cells[0].id, residency: nil)!
            seen.insert(port(start(router, route, now: 11 * second))!)
            router.finish(route, now: 11 * second)
        }
        XCTAssertEqual(seen, [1, 2], "restored after a successful probe")
    }

    func testAnAbandonedProbeLetsTheNextRequestProbe() {
        let cells = [cell("eu-1", [1])]
        let router = CellRouter(eventLoop: self.loop, settings: settings(cells: cells), loopCount: 1)
        for _ in 0..<2 {
            let route = router.route(forCell: cells[0].id, residency: nil)!
            _ = start(router, route)
            router.report(route, failed: true, now: 0)
            router.finish(route, now: 0)
        }
        let probe = router.route(forCell: cells[0].id, residency: nil)!
        XCTAssertEqual(port(start(router, probe, now: 10 * second)), 1)
        router.finish(probe, now: 10 * second)  // the client left: nothing learned
        let next = router.route(forCell: cells[0].id, residency: nil)!
        XCTAssertEqual(port(start(router, next, now: 10 * second)), 1)
    }

    // MARK: - Retries

    func testARetryAvoidsTriedEndpointsThenMovesToTheFallbackCell() {
        let cells = [cell("eu-1", [1, 2], fallback: ["eu-2"]), cell("eu-2", [3])]
        let router = CellRouter(eventLoop: self.loop, settings: settings(cells: cells), loopCount: 1)
        let route = router.route(forCell: cells[0].id, residency: nil)!
        var ports: [Int] = []
        for _ in 0..<3 {
            guard let chosen = port(start(router, route)) else { return XCTFail("expected an endpoint") }
            ports.append(chosen)
            router.report(route, failed: true, now: 0)
            router.endAttempt(route, now: 0)
            XCTAssertTrue(router.startRetry(route))
        }
        XCTAssertEqual(Set(ports.prefix(2)), [1, 2])
        XCTAssertEqual(ports.last, 3)
        XCTAssertEqual(route.currentCell?.id, nil)
        guard case .noEndpoint = start(router, route) else { return XCTFail("every endpoint tried") }
        router.finish(route, now: 0)
        XCTAssertEqual(route.chain[0].budget.retriesInFlight, 0)
        XCTAssertEqual(route.chain[0].budget.activeRequests, 0)
    }

    func testTheRetryBudgetStopsRetriesBeyondItsShare() {
        let cells = [cell("eu-1", [1, 2, 3])]
        let router = CellRouter(
            eventLoop: self.loop, settings: settings(cells: cells, retries: .init(maxAttempts: 3, budgetPercent: 0, minRetriesInFlight: 1)), loopCount: 1
        )
        let a = router.route(forCell: cells[0].id, residency: nil)!
        let b = router.route(forCell: cells[0].id, residency: nil)!
        for route in [a, b] {
            _ = start(router, route)
            router.report(route, failed: true, now: 0)
            router.endAttempt(route, now: 0)
        }
        XCTAssertTrue(router.startRetry(a))
        _ = start(router, a)
        XCTAssertFalse(router.startRetry(b), "one retry in flight is the budget")
        router.finish(a, now: 0)
        XCTAssertTrue(router.startRetry(b), "the retry ended: budget back")
        router.finish(b, now: 0)
    }

    // MARK: - Load bounds

    func testFullCellQueuesThenRefusesAndGrantsSlotsInOrder() {
        let limits = GatewaySettings.CellLimits(maxPending: 2, maxInFlight: 1, retryAfter: .seconds(7))
        let cells = [cell("eu-1", [1], limits: limits), cell("eu-2", [2])]
        let router = CellRouter(eventLoop: self.loop, settings: settings(cells: cells), loopCount: 1)
        let first = router.route(forCell: cells[0].id, residency: nil)!
        XCTAssertEqual(port(start(router, first)), 1)
        var resumed: [String] = []
        let second = router.route(forCell: cells[0].id, residency: nil)!
        let third = router.route(forCell: cells[0].id, residency: nil)!
        guard case .wait = start(router, second, resumed: { resumed.append("second \(self.port($0) ?? 0)") }) else { return XCTFail() }
        guard case .wait = start(router, third, resumed: { resumed.append("third \(self.port($0) ?? 0)") }) else { return XCTFail() }
        guard case .overloaded(7) = start(router, router.route(forCell: cells[0].id, residency: nil)!) else { return XCTFail("pending is full") }
        // Another cell is not affected by this one being full.
        XCTAssertEqual(port(start(router, router.route(forCell: cells[1].id, residency: nil)!)), 2)

        router.endAttempt(first, now: 0)
        XCTAssertEqual(resumed, ["second 1"])
        router.finish(second, now: 0)
        XCTAssertEqual(resumed, ["second 1", "third 1"])
        router.finish(third, now: 0)
        XCTAssertEqual(first.chain[0].load.pending, 0)
        XCTAssertEqual(first.chain[0].load.inFlight, 0)
    }

    func testAWaitingRequestGivesUpAfterTheConnectTimeout() {
        var full = cell("eu-1", [1], limits: .init(maxPending: 5, maxInFlight: 1, retryAfter: .seconds(3)))
        full.connectTimeout = .milliseconds(200)
        let router = CellRouter(eventLoop: self.loop, settings: settings(cells: [full]), loopCount: 1)
        let holder = router.route(forCell: full.id, residency: nil)!
        _ = start(router, holder)
        var outcome: CellRouter.AttemptStart?
        let waiter = router.route(forCell: full.id, residency: nil)!
        _ = start(router, waiter, resumed: { outcome = $0 })
        self.loop.advanceTime(by: .milliseconds(199))
        XCTAssertNil(outcome)
        self.loop.advanceTime(by: .milliseconds(1))
        guard case .overloaded(3) = outcome else { return XCTFail("\(String(describing: outcome))") }
        XCTAssertEqual(holder.chain[0].load.pending, 0)
        router.finish(waiter, now: 0)
        router.finish(holder, now: 0)
        XCTAssertEqual(holder.chain[0].load.inFlight, 0)
    }

    func testAClientLeavingWhileQueuedFreesItsPlace() {
        let full = cell("eu-1", [1], limits: .init(maxPending: 1, maxInFlight: 1, retryAfter: .seconds(1)))
        let router = CellRouter(eventLoop: self.loop, settings: settings(cells: [full]), loopCount: 1)
        let holder = router.route(forCell: full.id, residency: nil)!
        _ = start(router, holder)
        let leaving = router.route(forCell: full.id, residency: nil)!
        guard case .wait = start(router, leaving, resumed: { _ in XCTFail("a request that left is never resumed") }) else { return XCTFail() }
        router.finish(leaving, now: 0)
        let next = router.route(forCell: full.id, residency: nil)!
        guard case .wait = start(router, next) else { return XCTFail("the place in the queue is free again") }
        router.finish(holder, now: 0)
        router.finish(next, now: 0)
        XCTAssertEqual(holder.chain[0].load.pending + holder.chain[0].load.inFlight, 0)
        self.loop.advanceTime(by: .seconds(10))
    }

    func testBoundsAreSharedOutOverTheLoopsRoundedUp() {
        XCTAssertEqual(CellRouter.share(10, of: 4, atLeast: 1), 3)
        XCTAssertEqual(CellRouter.share(1, of: 4, atLeast: 1), 1)
        XCTAssertEqual(CellRouter.share(0, of: 4, atLeast: 0), 0)
        XCTAssertEqual(CellRouter.share(8, of: 2, atLeast: 1), 4)
    }

    func testAReloadKeepsTheLoadOfACellThatStays() {
        let before = cell("eu-1", [1, 2], limits: .init(maxPending: 5, maxInFlight: 5, retryAfter: .seconds(1)))
        let router = CellRouter(eventLoop: self.loop, settings: settings(cells: [before]), loopCount: 1)
        let running = router.route(forCell: before.id, residency: nil)!
        _ = start(router, running)
        let after = cell("eu-1", [1, 2], limits: .init(maxPending: 1, maxInFlight: 1, retryAfter: .seconds(2)))
        router.reconfigure(settings(cells: [after]))
        let next = router.route(forCell: after.id, residency: nil)!
        guard case .wait = start(router, next) else { return XCTFail("the request in flight still counts under the new bound") }
        router.finish(running, now: 0)
        XCTAssertNotNil(next.currentCell, "granted when the old request finished")
        router.finish(next, now: 0)
    }
}

/// Hands a granted slot to the test's closure.
private final class SlotWaiter: CellSlotWaiter {
    let resumed: ((CellRouter.AttemptStart) -> Void)?
    init(_ resumed: ((CellRouter.AttemptStart) -> Void)?) { self.resumed = resumed }
    func cellSlotGranted(_ route: CellRoute, _ start: CellRouter.AttemptStart) { self.resumed?(start) }
}
