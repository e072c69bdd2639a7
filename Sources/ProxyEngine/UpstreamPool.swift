import GatewayConfig
import NIOCore
import NIOHTTP1
import NIOPosix

/// The upstream connections of one event loop: a `ConnectionPoolState` per endpoint, driven
/// here. Only ever touched on its own event loop, so it needs no locks; every client connection
/// served by the loop leases from it, which is what makes connections reusable across clients.
final class UpstreamPool {
    typealias LeaseResult = Result<UpstreamConnection, GatewayProblem>
    typealias LeaseCallback = (LeaseResult) -> Void

    let eventLoop: any EventLoop
    private let settings: GatewaySettings.UpstreamPool
    private let connector: any UpstreamConnector
    private var endpoints: [GatewaySettings.Endpoint: EndpointPool] = [:]
    private var nextConnectionID = 0
    private var nextWaiterID = 0

    /// What the pool keeps per endpoint next to its pure state: the live objects.
    private final class EndpointPool {
        var state: ConnectionPoolState
        var connections: [Int: UpstreamConnection] = [:]
        var idleTimers: [Int: Scheduled<Void>] = [:]
        var waiters: [Int: (callback: LeaseCallback, timeout: Scheduled<Void>, connectTimeout: TimeAmount)] = [:]

        init(maxConnections: Int) {
            self.state = ConnectionPoolState(maxConnections: maxConnections)
        }
    }

    /// Handle for a pending lease, to withdraw it when the client goes away first.
    struct LeaseTicket {
        fileprivate var endpoint: GatewaySettings.Endpoint
        fileprivate var waiter: Int?
    }

    init(eventLoop: any EventLoop, settings: GatewaySettings.UpstreamPool, connector: any UpstreamConnector = TCPUpstreamConnector()) {
        self.eventLoop = eventLoop
        self.settings = settings
        self.connector = connector
    }

    /// Leases a connection to `endpoint`, connecting (or waiting for a free connection) for at
    /// most `connectTimeout`. The callback runs on this loop, possibly before `lease` returns
    /// (an idle connection is handed over at once).
    @discardableResult
    func lease(_ endpoint: GatewaySettings.Endpoint, connectTimeout: Duration, callback: @escaping LeaseCallback) -> LeaseTicket {
        let connectTimeout = TimeAmount.milliseconds(connectTimeout.milliseconds)
        let pool = self.pool(for: endpoint)
        let waiterID = self.nextWaiterID
        self.nextWaiterID += 1
        switch pool.state.lease(waiter: waiterID) {
        case .useIdle(let id):
            pool.idleTimers.removeValue(forKey: id)?.cancel()
            callback(.success(pool.connections[id]!))
            return LeaseTicket(endpoint: endpoint, waiter: nil)
        case .connect:
            self.connect(endpoint, pool: pool, timeout: connectTimeout, callback: callback)
            return LeaseTicket(endpoint: endpoint, waiter: nil)
        case .wait:
            // Waiting for a free connection is bounded like connecting: a saturated endpoint
            // answers quickly rather than queueing without limit.
            let timeout = self.eventLoop.assumeIsolated().scheduleTask(in: connectTimeout) { [weak pool] in
                guard let pool, pool.state.cancel(waiter: waiterID), let waiter = pool.waiters.removeValue(forKey: waiterID) else { return }
                waiter.callback(.failure(.upstreamBusy))
            }
            pool.waiters[waiterID] = (callback, timeout, connectTimeout)
            return LeaseTicket(endpoint: endpoint, waiter: waiterID)
        }
    }

    func cancel(_ ticket: LeaseTicket) {
        guard let waiterID = ticket.waiter, let pool = self.endpoints[ticket.endpoint] else { return }
        if pool.state.cancel(waiter: waiterID) {
            pool.waiters.removeValue(forKey: waiterID)?.timeout.cancel()
        }
    }

    /// Returns a leased connection. `reusable` means the last exchange ended cleanly on both
    /// sides and the upstream allowed keep-alive.
    func release(_ connection: UpstreamConnection, reusable: Bool) {
        connection.delegate = nil
        guard let pool = self.endpoints[connection.endpoint] else { return }
        let keep = reusable && !connection.isClosed
        if keep { connection.completedExchanges += 1 }
        switch pool.state.release(connection.id, reusable: keep) {
        case .keepIdle(let id):
            connection.onIdleClose = { [weak self, weak pool] in
                guard let self, let pool else { return }
                self.idleClosed(id, pool: pool)
            }
            pool.idleTimers[id] = self.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(self.settings.idleTimeout.milliseconds)) {
                [weak connection] in connection?.close()
            }
        case .handOver(let id, let waiterID):
            if let waiter = pool.waiters.removeValue(forKey: waiterID) {
                waiter.timeout.cancel()
                waiter.callback(.success(pool.connections[id]!))
            }
        case .close(let id, let then):
            pool.connections.removeValue(forKey: id)
            connection.onIdleClose = nil
            connection.close()
            self.apply(then, endpoint: connection.endpoint, pool: pool)
        }
    }

    private func idleClosed(_ id: Int, pool: EndpointPool) {
        pool.idleTimers.removeValue(forKey: id)?.cancel()
        guard let connection = pool.connections.removeValue(forKey: id) else { return }
        self.apply(pool.state.idleClosed(id), endpoint: connection.endpoint, pool: pool)
    }

    private func apply(_ action: ConnectionPoolState.SlotAction, endpoint: GatewaySettings.Endpoint, pool: EndpointPool) {
        guard case .connectFor(let waiterID) = action, let waiter = pool.waiters.removeValue(forKey: waiterID) else { return }
        waiter.timeout.cancel()
        self.connect(endpoint, pool: pool, timeout: waiter.connectTimeout, callback: waiter.callback)
    }

    private func pool(for endpoint: GatewaySettings.Endpoint) -> EndpointPool {
        if let pool = self.endpoints[endpoint] { return pool }
        let pool = EndpointPool(maxConnections: self.settings.maxConnectionsPerEndpoint)
        self.endpoints[endpoint] = pool
        return pool
    }

    private func connect(_ endpoint: GatewaySettings.Endpoint, pool: EndpointPool, timeout: TimeAmount, callback: @escaping LeaseCallback) {
        let id = self.nextConnectionID
        self.nextConnectionID += 1
        let connecting = self.connector.connect(to: endpoint, timeout: timeout, on: self.eventLoop) { channel in
            let sync = channel.pipeline.syncOperations
            try sync.addHTTPClientHandlers()
            try sync.addHandler(UpstreamConnection(id: id, endpoint: endpoint))
        }
        connecting.assumeIsolated().whenComplete { result in
            switch result {
            case .success(let channel):
                guard let connection = try? channel.pipeline.syncOperations.handler(type: UpstreamConnection.self) else {
                    channel.close(promise: nil)
                    self.apply(pool.state.connectFailed(), endpoint: endpoint, pool: pool)
                    callback(.failure(.upstreamFailed))
                    return
                }
                pool.state.connected(id)
                pool.connections[id] = connection
                callback(.success(connection))
            case .failure(let error):
                self.apply(pool.state.connectFailed(), endpoint: endpoint, pool: pool)
                callback(.failure(Self.problem(forConnectError: error)))
            }
        }
    }

    static func problem(forConnectError error: any Error) -> GatewayProblem {
        if let channelError = error as? ChannelError, case .connectTimeout = channelError {
            return .upstreamConnectTimeout
        }
        return .upstreamUnreachable
    }
}
