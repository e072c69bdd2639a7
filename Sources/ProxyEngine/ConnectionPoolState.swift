/// The keep-alive pool of one upstream endpoint on one event loop, as a pure state machine:
/// events in, actions out, no I/O. The driver (`UpstreamPool`) opens and closes connections and
/// completes waiting requests as the actions say.
///
/// Invariant: idle + leased + connecting ≤ maxConnections. Requests beyond the bound wait, first
/// come first served, and are handed the next connection that becomes free.
struct ConnectionPoolState {
    typealias ConnectionID = Int
    typealias WaiterID = Int

    let maxConnections: Int
    /// Most recently used last: reusing the warmest connection lets the coldest time out.
    private(set) var idle: [ConnectionID] = []
    private(set) var leased: Set<ConnectionID> = []
    private(set) var connecting = 0
    private(set) var waiters: [WaiterID] = []

    init(maxConnections: Int) {
        precondition(maxConnections > 0)
        self.maxConnections = maxConnections
    }

    var openCount: Int { self.idle.count + self.leased.count + self.connecting }

    enum LeaseAction: Equatable {
        /// Use this idle connection; it is now leased.
        case useIdle(ConnectionID)
        /// Open a new connection for the requester (a connecting slot is reserved).
        case connect
        /// At the bound: the requester waits.
        case wait
    }

    mutating func lease(waiter: WaiterID) -> LeaseAction {
        if let connection = self.idle.popLast() {
            self.leased.insert(connection)
            return .useIdle(connection)
        }
        if self.openCount < self.maxConnections {
            self.connecting += 1
            return .connect
        }
        self.waiters.append(waiter)
        return .wait
    }

    /// A connection opened for a requester is established and leased to it.
    mutating func connected(_ connection: ConnectionID) {
        precondition(self.connecting > 0)
        self.connecting -= 1
        self.leased.insert(connection)
    }

    enum SlotAction: Equatable {
        /// Nothing to do.
        case none
        /// A slot freed up and a requester is waiting: open a connection for it.
        case connectFor(WaiterID)
    }

    mutating func connectFailed() -> SlotAction {
        precondition(self.connecting > 0)
        self.connecting -= 1
        return self.slotFreed()
    }

    enum ReleaseAction: Equatable {
        /// Keep the connection idle in the pool (the driver arms its idle timer).
        case keepIdle(ConnectionID)
        /// Hand the connection straight to a waiting requester.
        case handOver(ConnectionID, to: WaiterID)
        /// Close the connection; optionally open a new one for a waiter.
        case close(ConnectionID, then: SlotAction)
    }

    /// A leased connection comes back. Only a connection whose last exchange completed cleanly on
    /// both sides may be reused.
    mutating func release(_ connection: ConnectionID, reusable: Bool) -> ReleaseAction {
        guard self.leased.remove(connection) != nil else {
            return .close(connection, then: .none)
        }
        guard reusable else {
            return .close(connection, then: self.slotFreed())
        }
        if !self.waiters.isEmpty {
            let waiter = self.waiters.removeFirst()
            self.leased.insert(connection)
            return .handOver(connection, to: waiter)
        }
        self.idle.append(connection)
        return .keepIdle(connection)
    }

    /// An idle connection closed (the upstream hung up, or its idle timer fired).
    mutating func idleClosed(_ connection: ConnectionID) -> SlotAction {
        guard let index = self.idle.firstIndex(of: connection) else { return .none }
        self.idle.remove(at: index)
        return self.slotFreed()
    }

    /// A waiting requester gave up (timed out or its client went away).
    mutating func cancel(waiter: WaiterID) -> Bool {
        guard let index = self.waiters.firstIndex(of: waiter) else { return false }
        self.waiters.remove(at: index)
        return true
    }

    /// Whether the connection is idle in the pool (for the idle timer to check).
    func isIdle(_ connection: ConnectionID) -> Bool {
        self.idle.contains(connection)
    }

    private mutating func slotFreed() -> SlotAction {
        guard !self.waiters.isEmpty, self.openCount < self.maxConnections else { return .none }
        self.connecting += 1
        return .connectFor(self.waiters.removeFirst())
    }
}
