import GatewayConfig
import NIOCore
import NIOHTTP1
import NIOPosix

/// The upstream connections of one event loop: a `ConnectionPoolState` per target (an endpoint,
/// and the TLS context of an `https` cell), driven here. Only ever touched on its own event loop, so it needs no locks; every client connection
/// served by the loop leases from it, which is what makes connections reusable across clients.
final class UpstreamPool {
    typealias LeaseResult = Result<UpstreamConnection, LeaseFailure>

    /// Why no connection was leased: the problem for the client, and the error behind it for
    /// the operator's log (a TLS handshake failure says which check failed; the client is never
    /// told).
    struct LeaseFailure: Error {
        let problem: GatewayProblem
        let cause: (any Error)?

        init(_ problem: GatewayProblem, cause: (any Error)? = nil) {
            self.problem = problem
            self.cause = cause
        }
    }

    /// Who asked for a connection, and for what: `requester` is told once, with `token`. A
    /// closure per lease cost allocations (its context, and a side table for each weak capture)
    /// on every request.
    struct LeaseRequest {
        let requester: any UpstreamLeaseRequester
        let token: AnyObject

        func complete(_ result: LeaseResult) {
            self.requester.upstreamLeaseCompleted(result, for: self.token)
        }
    }

    let eventLoop: any EventLoop
    private let settings: GatewaySettings.UpstreamPool
    /// `settings.idleTimeout`, converted once (a `Duration`'s parts take a 128-bit division).
    private let idleTimeout: TimeAmount
    private let connector: any UpstreamConnector
    private var pools: [UpstreamTarget: EndpointPool] = [:]
    private var nextConnectionID = 0
    private var nextWaiterID = 0
    /// Closes connections idle for `idleTimeout`. One timer for the whole pool, set for the
    /// earliest such moment; a release whose moment is later (nearly all) schedules nothing.
    private var idleSweep: (task: Scheduled<Void>, at: NIODeadline)?

    /// What the pool keeps per endpoint next to its pure state: the live objects.
    private final class EndpointPool {
        var state: ConnectionPoolState
        var connections: [Int: UpstreamConnection] = [:]
        var waiters: [Int: (request: LeaseRequest, timeout: Scheduled<Void>, connectTimeout: TimeAmount)] = [:]

        init(maxConnections: Int) {
            self.state = ConnectionPoolState(maxConnections: maxConnections)
        }
    }

    /// Handle for a lease waiting for a free connection, to withdraw it when the client goes
    /// away first.
    struct LeaseTicket {
        fileprivate var target: UpstreamTarget
        fileprivate var waiter: Int
    }

    /// Connections over every endpoint: open (idle, leased or connecting), idle, and lease
    /// requests waiting for one (the pool gauges).
    struct Occupancy: Equatable {
        var open = 0
        var idle = 0
        var waiting = 0
    }

    /// The targets the pool holds connections or waiters for.
    var targets: Set<UpstreamTarget> { Set(self.pools.keys) }

    var occupancy: Occupancy {
        var total = Occupancy()
        for pool in self.pools.values {
            total.open += pool.state.openCount
            total.idle += pool.state.idle.count
            total.waiting += pool.state.waiters.count
        }
        return total
    }

    init(eventLoop: any EventLoop, settings: GatewaySettings.UpstreamPool, connector: any UpstreamConnector = TCPUpstreamConnector()) {
        self.eventLoop = eventLoop
        self.settings = settings
        self.idleTimeout = .milliseconds(settings.idleTimeout.milliseconds)
        self.connector = connector
    }

    /// Leases a connection to `target`, connecting (or waiting for a free connection) for at
    /// most `connectTimeout`. The request is completed on this loop, possibly before `lease`
    /// returns (an idle connection is handed over at once). Returns a ticket when the request
    /// waits for a free connection.
    @discardableResult
    func lease(_ target: UpstreamTarget, connectTimeout: Duration, for request: LeaseRequest) -> LeaseTicket? {
        let connectTimeout = TimeAmount.milliseconds(connectTimeout.milliseconds)
        let pool = self.pool(for: target)
        let waiterID = self.nextWaiterID
        self.nextWaiterID += 1
        switch pool.state.lease(waiter: waiterID) {
        case .useIdle(let id):
            let connection = pool.connections[id]!
            connection.idleUntil = nil
            request.complete(.success(connection))
            return nil
        case .connect:
            self.connect(target, pool: pool, timeout: connectTimeout, for: request)
            return nil
        case .wait:
            // Waiting for a free connection is bounded like connecting: a saturated endpoint
            // answers quickly rather than queueing without limit.
            let timeout = self.eventLoop.assumeIsolated().scheduleTask(in: connectTimeout) { [weak pool] in
                guard let pool, pool.state.cancel(waiter: waiterID), let waiter = pool.waiters.removeValue(forKey: waiterID) else { return }
                waiter.request.complete(.failure(LeaseFailure(.upstreamBusy)))
            }
            pool.waiters[waiterID] = (request, timeout, connectTimeout)
            return LeaseTicket(target: target, waiter: waiterID)
        }
    }

    func cancel(_ ticket: LeaseTicket) {
        guard let pool = self.pools[ticket.target], pool.state.cancel(waiter: ticket.waiter) else { return }
        pool.waiters.removeValue(forKey: ticket.waiter)?.timeout.cancel()
    }

    /// Returns a leased connection. `reusable` means the last exchange ended cleanly on both
    /// sides and the upstream allowed keep-alive.
    func release(_ connection: UpstreamConnection, reusable: Bool) {
        connection.delegate = nil
        guard let pool = self.pools[connection.target] else { return }
        let keep = reusable && !connection.isClosed
        if keep { connection.completedExchanges += 1 }
        switch pool.state.release(connection.id, reusable: keep) {
        case .keepIdle:
            let until = self.eventLoop.now + self.idleTimeout
            connection.idleUntil = until
            self.sweepIdle(by: until)
        case .handOver(let id, let waiterID):
            if let waiter = pool.waiters.removeValue(forKey: waiterID) {
                waiter.timeout.cancel()
                waiter.request.complete(.success(pool.connections[id]!))
            }
        case .close(let id, let then):
            pool.connections.removeValue(forKey: id)
            connection.onIdleClose = nil
            connection.close()
            self.apply(then, target: connection.target, pool: pool)
        }
    }

    /// A leased connection that switched protocols (a WebSocket's `101`) leaves the pool for
    /// good, open: it is no HTTP/1.1 connection any more, and it no longer counts against the
    /// endpoint's bound.
    func handOff(_ connection: UpstreamConnection) {
        connection.delegate = nil
        connection.onIdleClose = nil
        guard let pool = self.pools[connection.target], pool.connections.removeValue(forKey: connection.id) != nil else { return }
        if case .close(_, let then) = pool.state.release(connection.id, reusable: false) {
            self.apply(then, target: connection.target, pool: pool)
        }
    }

    private func idleClosed(_ id: Int, pool: EndpointPool) {
        guard let connection = pool.connections.removeValue(forKey: id) else { return }
        self.apply(pool.state.idleClosed(id), target: connection.target, pool: pool)
    }

    /// Makes sure the idle sweep runs by `deadline`.
    private func sweepIdle(by deadline: NIODeadline) {
        if let sweep = self.idleSweep, sweep.at <= deadline { return }
        self.idleSweep?.task.cancel()
        let task = self.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [weak self] () -> Void in self?.idleSweepFired() }
        self.idleSweep = (task, deadline)
    }

    /// Closes every connection whose idle time ran out, then waits for the next to run out.
    private func idleSweepFired() {
        self.idleSweep = nil
        let now = self.eventLoop.now
        var next: NIODeadline?
        for pool in self.pools.values {
            for connection in pool.connections.values {
                guard let until = connection.idleUntil else { continue }
                if until <= now {
                    connection.idleUntil = nil
                    connection.close()
                } else {
                    next = min(next ?? until, until)
                }
            }
        }
        if let next { self.sweepIdle(by: next) }
    }

    private func apply(_ action: ConnectionPoolState.SlotAction, target: UpstreamTarget, pool: EndpointPool) {
        guard case .connectFor(let waiterID) = action, let waiter = pool.waiters.removeValue(forKey: waiterID) else {
            self.forgetIfUnused(target, pool: pool)
            return
        }
        waiter.timeout.cancel()
        self.connect(target, pool: pool, timeout: waiter.connectTimeout, for: waiter.request)
    }

    /// A pool with no connection and no waiter is dropped: the next lease makes a new one. Pools
    /// of targets no configuration names any more — an endpoint removed by a reload, or one
    /// under a TLS context a reload replaced (which the target holds on to) — go once their
    /// last connection closes, instead of piling up with every reload.
    private func forgetIfUnused(_ target: UpstreamTarget, pool: EndpointPool) {
        guard pool.state.openCount == 0, pool.state.waiters.isEmpty, self.pools[target] === pool else { return }
        self.pools[target] = nil
    }

    /// The pool of `target`. `maxConnectionsPerEndpoint` bounds each target: for a moment after a
    /// reload changed a cell's `tls`, connections made under the old context (finishing their
    /// exchanges, or idle until their timeout) are open next to new ones.
    private func pool(for target: UpstreamTarget) -> EndpointPool {
        if let pool = self.pools[target] { return pool }
        let pool = EndpointPool(maxConnections: self.settings.maxConnectionsPerEndpoint)
        self.pools[target] = pool
        return pool
    }

    private func connect(_ target: UpstreamTarget, pool: EndpointPool, timeout: TimeAmount, for request: LeaseRequest) {
        let id = self.nextConnectionID
        self.nextConnectionID += 1
        let connecting = self.connector.connect(to: target, timeout: timeout, on: self.eventLoop) { channel in
            // Speaks HTTP/1.1 itself; bytes behind a `101` belong to the new protocol and are
            // handed on when a WebSocket takes the connection over (`WebSocketTunnel`).
            try channel.pipeline.syncOperations.addHandler(UpstreamConnection(id: id, target: target))
        }
        connecting.assumeIsolated().whenComplete { result in
            switch result {
            case .success(let channel):
                guard let connection = try? channel.pipeline.syncOperations.handler(type: UpstreamConnection.self) else {
                    channel.close(promise: nil)
                    self.apply(pool.state.connectFailed(), target: target, pool: pool)
                    request.complete(.failure(LeaseFailure(.upstreamFailed)))
                    return
                }
                pool.state.connected(id)
                pool.connections[id] = connection
                // Set once: the connection may close while idle in the pool at any later time.
                connection.onIdleClose = { [weak self, weak pool] in
                    guard let self, let pool else { return }
                    self.idleClosed(id, pool: pool)
                }
                request.complete(.success(connection))
            case .failure(let error):
                self.apply(pool.state.connectFailed(), target: target, pool: pool)
                request.complete(.failure(LeaseFailure(Self.problem(forConnectError: error), cause: error)))
            }
        }
    }

    static func problem(forConnectError error: any Error) -> GatewayProblem {
        if let channelError = error as? ChannelError, case .connectTimeout = channelError {
            return .upstreamConnectTimeout
        }
        if error is UpstreamTLSHandshakeError {
            return .upstreamTlsFailed
        }
        return .upstreamUnreachable
    }
}

/// Who leases upstream connections: told once per lease, with the token it leased for.
protocol UpstreamLeaseRequester: AnyObject {
    func upstreamLeaseCompleted(_ result: UpstreamPool.LeaseResult, for token: AnyObject)
}
