import NIOCore

/// Where a `RedisSubscriber` on a Redis Cluster connects: any node will do, since a plain
/// `PUBLISH` is broadcast over the cluster bus to the subscribers of every node, primaries and
/// replicas alike. Each attempt goes to the next node in turn — the URL's seeds, then every node
/// learned from `CLUSTER SLOTS` on each new connection — so a subscriber whose node dies
/// subscribes again on another one at its next attempt, without waiting for that node or a
/// failover.
///
/// Why plain `SUBSCRIBE` and not sharded `SSUBSCRIBE`: the gateway's channels carry a few
/// messages a minute (revocations, tree and certificate revisions), so broadcasting them costs
/// nothing worth saving; they are published from inside the admin scripts, atomically with the
/// change; and a sharded subscription would have to follow its channel's slot across failovers
/// and migrations, where a plain one only needs any live node.
///
/// Loop-confined (not `Sendable`).
final class ClusterSubscriberTargets {
    private let url: RedisURL
    private var nodes: [RedisURL.Node]
    private var next = 0

    init(url: RedisURL) {
        self.url = url
        self.nodes = url.nodes
    }

    /// Makes `driver` connect to each node in turn and learn the cluster's nodes before the
    /// subscription `driver.prepare` already makes.
    func steer(_ driver: ReconnectingConnection) {
        let subscribe = driver.prepare
        driver.resolveTarget = { [eventLoop = driver.eventLoop] in
            let node = self.nodes[self.next % self.nodes.count]
            self.next &+= 1
            return eventLoop.makeSucceededFuture(self.url.standalone(at: node))
        }
        driver.prepare = { [weak driver] connection in
            let askedHost = driver?.target.host ?? ""
            return self.learnNodes(on: connection, askedHost: askedHost).assumeIsolated().flatMap { subscribe(connection) }.nonisolated()
        }
    }

    /// Adds the nodes `CLUSTER SLOTS` names. Never fails: a subscription without a fresh list
    /// still works, on the nodes known already.
    private func learnNodes(on connection: RedisConnection, askedHost: String) -> EventLoopFuture<Void> {
        connection.send(["CLUSTER", "SLOTS"]).assumeIsolated().map { reply in
            guard let map = try? RedisSlotMap(clusterSlots: reply, askedHost: askedHost) else { return }
            for node in map.nodes where !self.nodes.contains(node) {
                self.nodes.append(node)
            }
        }.recover { _ in }.nonisolated()
    }
}
