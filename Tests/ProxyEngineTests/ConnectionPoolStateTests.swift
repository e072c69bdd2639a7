import XCTest
@testable import ProxyEngine

final class ConnectionPoolStateTests: XCTestCase {
    // MARK: - Leasing and releasing

    func testFirstLeaseOpensAConnection() {
        var pool = ConnectionPoolState(maxConnections: 2)
        XCTAssertEqual(pool.lease(waiter: 1), .connect)
        XCTAssertEqual(pool.connecting, 1)
        XCTAssertEqual(pool.openCount, 1)

        pool.connected(10)
        XCTAssertEqual(pool.connecting, 0)
        XCTAssertEqual(pool.leased, [10])
        XCTAssertEqual(pool.openCount, 1)
    }

    func testReusableReleaseKeepsTheConnectionIdleAndTheNextLeaseUsesIt() {
        var pool = ConnectionPoolState(maxConnections: 2)
        _ = pool.lease(waiter: 1)
        pool.connected(10)

        XCTAssertEqual(pool.release(10, reusable: true), .keepIdle(10))
        XCTAssertTrue(pool.isIdle(10))
        XCTAssertEqual(pool.leased, [])
        XCTAssertEqual(pool.openCount, 1)

        XCTAssertEqual(pool.lease(waiter: 2), .useIdle(10))
        XCTAssertFalse(pool.isIdle(10))
        XCTAssertEqual(pool.leased, [10])
        XCTAssertEqual(pool.openCount, 1)
    }

    func testIdleConnectionsAreReusedMostRecentlyReleasedFirst() {
        var pool = ConnectionPoolState(maxConnections: 3)
        for waiter in 1...3 { XCTAssertEqual(pool.lease(waiter: waiter), .connect) }
        pool.connected(10)
        pool.connected(20)
        pool.connected(30)
        XCTAssertEqual(pool.release(20, reusable: true), .keepIdle(20))
        XCTAssertEqual(pool.release(10, reusable: true), .keepIdle(10))
        XCTAssertEqual(pool.release(30, reusable: true), .keepIdle(30))

        XCTAssertEqual(pool.lease(waiter: 4), .useIdle(30))
        XCTAssertEqual(pool.lease(waiter: 5), .useIdle(10))
        XCTAssertEqual(pool.lease(waiter: 6), .useIdle(20))
        XCTAssertEqual(pool.lease(waiter: 7), .wait)
    }

    func testNonReusableReleaseWithoutWaitersClosesAndFreesTheSlot() {
        var pool = ConnectionPoolState(maxConnections: 1)
        _ = pool.lease(waiter: 1)
        pool.connected(10)

        XCTAssertEqual(pool.release(10, reusable: false), .close(10, then: .none))
        XCTAssertEqual(pool.openCount, 0)
        XCTAssertFalse(pool.isIdle(10))
        XCTAssertEqual(pool.lease(waiter: 2), .connect)
    }

    func testReleasingAConnectionThatIsNotLeasedClosesItWithoutChangingTheCounts() {
        var pool = ConnectionPoolState(maxConnections: 2)
        _ = pool.lease(waiter: 1)
        pool.connected(10)
        XCTAssertEqual(pool.release(10, reusable: true), .keepIdle(10))

        // A second release of the same connection must not count it twice.
        XCTAssertEqual(pool.release(10, reusable: true), .close(10, then: .none))
        XCTAssertEqual(pool.release(99, reusable: true), .close(99, then: .none))
        XCTAssertEqual(pool.idle, [10])
        XCTAssertEqual(pool.openCount, 1)
    }

    // MARK: - The bound and the waiters

    func testLeaseBeyondTheBoundWaits() {
        var pool = ConnectionPoolState(maxConnections: 2)
        XCTAssertEqual(pool.lease(waiter: 1), .connect)
        XCTAssertEqual(pool.lease(waiter: 2), .connect)
        XCTAssertEqual(pool.lease(waiter: 3), .wait)
        XCTAssertEqual(pool.waiters, [3])
        XCTAssertEqual(pool.openCount, 2)

        // Connecting slots count against the bound as much as established ones.
        pool.connected(10)
        XCTAssertEqual(pool.lease(waiter: 4), .wait)
        XCTAssertEqual(pool.waiters, [3, 4])
        XCTAssertEqual(pool.openCount, 2)
    }

    func testReusableReleaseHandsTheConnectionToTheFirstWaiter() {
        var pool = Self.poolAtBound(max: 2, leased: [10, 20], waiters: [3, 4, 5])

        XCTAssertEqual(pool.release(20, reusable: true), .handOver(20, to: 3))
        XCTAssertEqual(pool.waiters, [4, 5])
        XCTAssertEqual(pool.leased, [10, 20])
        XCTAssertEqual(pool.idle, [])

        XCTAssertEqual(pool.release(10, reusable: true), .handOver(10, to: 4))
        XCTAssertEqual(pool.release(20, reusable: true), .handOver(20, to: 5))
        XCTAssertEqual(pool.waiters, [])
        XCTAssertEqual(pool.release(10, reusable: true), .keepIdle(10))
        XCTAssertEqual(pool.openCount, 2)
    }

    func testNonReusableReleaseWithWaitersClosesAndConnectsForTheFirstWaiter() {
        var pool = Self.poolAtBound(max: 2, leased: [10, 20], waiters: [3, 4])

        XCTAssertEqual(pool.release(10, reusable: false), .close(10, then: .connectFor(3)))
        XCTAssertEqual(pool.waiters, [4])
        XCTAssertEqual(pool.leased, [20])
        XCTAssertEqual(pool.connecting, 1)
        XCTAssertEqual(pool.openCount, 2)
    }

    func testFailedConnectWithWaitersConnectsForTheFirstWaiter() {
        var pool = ConnectionPoolState(maxConnections: 1)
        XCTAssertEqual(pool.lease(waiter: 1), .connect)
        XCTAssertEqual(pool.lease(waiter: 2), .wait)
        XCTAssertEqual(pool.lease(waiter: 3), .wait)

        XCTAssertEqual(pool.connectFailed(), .connectFor(2))
        XCTAssertEqual(pool.waiters, [3])
        XCTAssertEqual(pool.connecting, 1)

        XCTAssertEqual(pool.connectFailed(), .connectFor(3))
        XCTAssertEqual(pool.connectFailed(), .none)
        XCTAssertEqual(pool.openCount, 0)
        XCTAssertEqual(pool.waiters, [])
    }

    func testIdleCloseFreesASlotForTheNextLease() {
        var pool = ConnectionPoolState(maxConnections: 1)
        _ = pool.lease(waiter: 1)
        pool.connected(10)
        XCTAssertEqual(pool.release(10, reusable: true), .keepIdle(10))

        XCTAssertEqual(pool.idleClosed(10), .none)
        XCTAssertFalse(pool.isIdle(10))
        XCTAssertEqual(pool.openCount, 0)
        // The slot is free again: the next requester connects instead of waiting (or reusing 10).
        XCTAssertEqual(pool.lease(waiter: 2), .connect)
        XCTAssertEqual(pool.lease(waiter: 3), .wait)
    }

    // A requester only waits when no connection is idle, and a reusable release goes to a waiter
    // before it goes idle, so idle connections and waiters never coexist. An idle close therefore
    // never has a waiter to connect for; what matters is that the slot it frees is usable.
    func testIdleCloseOfAConnectionThatIsNotIdleChangesNothing() {
        var pool = Self.poolAtBound(max: 2, leased: [10, 20], waiters: [3])
        XCTAssertEqual(pool.idleClosed(10), .none)
        XCTAssertEqual(pool.idleClosed(99), .none)
        XCTAssertEqual(pool.leased, [10, 20])
        XCTAssertEqual(pool.waiters, [3])
        XCTAssertEqual(pool.openCount, 2)
    }

    func testCancelledWaiterIsSkipped() {
        var pool = Self.poolAtBound(max: 1, leased: [10], waiters: [2, 3, 4])

        XCTAssertTrue(pool.cancel(waiter: 3))
        XCTAssertEqual(pool.waiters, [2, 4])
        XCTAssertFalse(pool.cancel(waiter: 3))
        XCTAssertFalse(pool.cancel(waiter: 99))

        XCTAssertEqual(pool.release(10, reusable: true), .handOver(10, to: 2))
        XCTAssertEqual(pool.release(10, reusable: false), .close(10, then: .connectFor(4)))
        XCTAssertEqual(pool.waiters, [])
    }

    // MARK: - Invariant under random events

    /// Drives the state machine with a long seeded sequence of every event a driver can send, and
    /// after each step checks the bound, the bookkeeping against a model of the driver, and that
    /// waiters are served in arrival order.
    func testBoundAndBookkeepingHoldUnderARandomSequenceOfEvents() {
        for seed: UInt64 in [1, 2, 3, 0xC0FFEE] {
            self.runRandomEvents(seed: seed, maxConnections: 3, steps: 4000)
        }
    }

    private func runRandomEvents(seed: UInt64, maxConnections: Int, steps: Int) {
        var random = SeededRandom(seed: seed)
        var pool = ConnectionPoolState(maxConnections: maxConnections)
        // What the driver believes: which connections it holds leased or idle, who waits.
        var leased: Set<Int> = []
        var idle: Set<Int> = []
        var waiters: [Int] = []
        var nextWaiter = 1
        var nextConnection = 1000
        var served = 0

        func serveFirstWaiter(_ waiter: Int) -> Bool {
            guard waiters.first == waiter else { return false }
            waiters.removeFirst()
            served += 1
            return true
        }

        for step in 0..<steps {
            let context = "seed \(seed), step \(step)"
            switch Int.random(in: 0..<100, using: &random) {
            case 0..<35:
                let waiter = nextWaiter
                nextWaiter += 1
                switch pool.lease(waiter: waiter) {
                case .useIdle(let connection):
                    guard idle.remove(connection) != nil else { return XCTFail("\(context): reused \(connection), not idle") }
                    leased.insert(connection)
                case .connect:
                    break
                case .wait:
                    waiters.append(waiter)
                }
            case 35..<50 where pool.connecting > 0:
                if Bool.random(using: &random) {
                    pool.connected(nextConnection)
                    leased.insert(nextConnection)
                    nextConnection += 1
                } else if case .connectFor(let waiter) = pool.connectFailed() {
                    guard serveFirstWaiter(waiter) else { return XCTFail("\(context): connectFor(\(waiter)) out of order") }
                }
            case 50..<80 where !leased.isEmpty:
                let connection = leased.randomElement(using: &random)!
                let reusable = Int.random(in: 0..<4, using: &random) != 0
                switch pool.release(connection, reusable: reusable) {
                case .keepIdle(let kept):
                    guard reusable, kept == connection, waiters.isEmpty else { return XCTFail("\(context): keepIdle \(kept)") }
                    leased.remove(connection)
                    idle.insert(connection)
                case .handOver(let handed, to: let waiter):
                    guard reusable, handed == connection, serveFirstWaiter(waiter) else {
                        return XCTFail("\(context): handOver(\(handed), to: \(waiter))")
                    }
                case .close(let closed, then: let then):
                    guard !reusable, closed == connection else { return XCTFail("\(context): closed \(closed)") }
                    leased.remove(connection)
                    if case .connectFor(let waiter) = then, !serveFirstWaiter(waiter) {
                        return XCTFail("\(context): connectFor(\(waiter)) out of order")
                    }
                }
            case 80..<90 where !idle.isEmpty:
                let connection = idle.randomElement(using: &random)!
                idle.remove(connection)
                if case .connectFor(let waiter) = pool.idleClosed(connection), !serveFirstWaiter(waiter) {
                    return XCTFail("\(context): connectFor(\(waiter)) out of order")
                }
            case 90..<97 where !waiters.isEmpty:
                let waiter = waiters.randomElement(using: &random)!
                guard pool.cancel(waiter: waiter) else { return XCTFail("\(context): cancel(\(waiter)) not found") }
                waiters.removeAll { $0 == waiter }
            default:
                // A stale event for a connection the pool does not hold must change nothing.
                XCTAssertEqual(pool.release(-1, reusable: true), .close(-1, then: .none), context)
                XCTAssertEqual(pool.idleClosed(-1), .none, context)
            }

            guard pool.openCount <= maxConnections else {
                return XCTFail("\(context): \(pool.openCount) open, bound \(maxConnections)")
            }
            guard pool.leased == leased, Set(pool.idle) == idle, pool.idle.count == idle.count, pool.waiters == waiters else {
                return XCTFail("\(context): pool \(pool) disagrees with the driver \(leased) \(idle) \(waiters)")
            }
            guard pool.openCount == leased.count + idle.count + pool.connecting else {
                return XCTFail("\(context): openCount \(pool.openCount)")
            }
            // Nobody waits while a connection is idle or a slot is free.
            if !waiters.isEmpty {
                guard idle.isEmpty, pool.openCount == maxConnections else {
                    return XCTFail("\(context): waiters \(waiters) with idle \(idle), \(pool.openCount) open")
                }
            }
        }
        // The sequence must have exercised the interesting paths, or the test proves little.
        XCTAssertGreaterThan(served, 50, "seed \(seed)")
    }

    // MARK: - Helpers

    /// A pool with `leased` connections established and leased, and `waiters` queued in order.
    private static func poolAtBound(max: Int, leased: [Int], waiters: [Int]) -> ConnectionPoolState {
        precondition(leased.count == max)
        var pool = ConnectionPoolState(maxConnections: max)
        for (index, connection) in leased.enumerated() {
            precondition(pool.lease(waiter: -1 - index) == .connect)
            pool.connected(connection)
        }
        for waiter in waiters {
            precondition(pool.lease(waiter: waiter) == .wait)
        }
        return pool
    }
}

/// A deterministic random source, so a failing sequence can be replayed from its seed.
struct SeededRandom: RandomNumberGenerator {
    private var generator: IdentifierGenerator

    init(seed: UInt64) {
        self.generator = IdentifierGenerator(seed: seed)
    }

    mutating func next() -> UInt64 {
        self.generator.next()
    }
}
