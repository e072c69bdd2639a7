import Logging
import NIOCore

/// Redis for a whole event-loop group: one pipelined connection per event loop, opened lazily
/// on that loop the first time a command is sent from it, and re-opened with
/// `ReconnectBackoff` whenever it is lost.
///
/// Why per loop: a request handled on loop L sends its commands on L's connection, so the
/// command costs a buffer append instead of a cross-thread hop, and no lock is ever taken
/// (the per-loop state is confined to its loop). One connection carries any number of
/// commands in flight.
///
/// Contracts:
/// - Futures complete on the loop passed as `on`. Error replies succeed as `RESPValue.error`.
/// - While a loop's Redis is known to be down — from the first failed attempt or lost
///   connection until a reconnect succeeds — commands on that loop fail at once with
///   `RedisClientError.unavailable`; none waits on a timeout, and none is queued for later.
///   Reconnection goes on in the background by itself. `isAvailable(on:)` tells the same
///   without sending anything (the quota fail modes consult it).
/// - Only commands sent before a loop's very first connection exists wait for it (bounded by
///   `connectTimeout`), so a freshly started gateway does not refuse its first requests.
/// - A command in flight when its connection is lost fails (`connectionClosed`) and is not
///   retried: it may have run.
/// - Call `shutdown()` before dropping the last reference; connections stay open until then.
///
/// A `redis-cluster://` URL puts the client in cluster mode (`RedisClusterClient`): the same
/// API and contracts, per shard — one connection per primary per loop, each command routed by
/// its key's slot (`RedisCommandKeys`), `MOVED`/`ASK` followed, a shard that is down failing
/// its own keys fast while the others serve. Commands over several keys must keep them in one
/// slot (a hash tag), except `mget` and `scanKeys`, which work over the whole cluster.
///
/// With a `redis-sentinel://` URL every loop's connection goes to the primary the Sentinels
/// name, verified, and moves when they switch (`SentinelPrimaryLocator`); the rules above hold
/// unchanged, a switch being an outage of its own.
public final class RedisClient: Sendable {
    public struct Configuration: Sendable, Hashable {
        /// Bounds a TCP connect and, separately, the login round trip (`AUTH`/`SELECT`/`PING`).
        public var connectTimeout: TimeAmount
        /// How long the oldest pending command may go unanswered before its connection is
        /// declared dead and closed, failing everything pending on it with `responseTimeout`.
        /// `nil`: never (needed for blocking commands such as `BLPOP`).
        public var responseTimeout: TimeAmount?
        public var backoff: ReconnectBackoff.Configuration

        /// Defaults: connect within 1 s, replies within 1 s, backoff 50 ms doubling to 2 s.
        public init(
            connectTimeout: TimeAmount = .seconds(1),
            responseTimeout: TimeAmount? = .seconds(1),
            backoff: ReconnectBackoff.Configuration = ReconnectBackoff.Configuration()
        ) {
            self.connectTimeout = connectTimeout
            self.responseTimeout = responseTimeout
            self.backoff = backoff
        }
    }

    public let url: RedisURL
    public let configuration: Configuration
    private let group: any EventLoopGroup
    private let logger: Logger
    private let metrics: RedisMetrics
    /// One slot per loop of the group, filled on its loop at first use. The dictionary itself
    /// never changes after `init`, so looking a slot up needs no lock.
    private let slots: [ObjectIdentifier: NIOLoopBoundBox<ServerConnection?>]
    /// Set for a `redis-cluster://` URL: it serves every command, and `slots` stays empty.
    let cluster: RedisClusterClient?
    /// `redis-sentinel://`: where every loop's connection finds the primary; `nil` otherwise.
    private let sentinel: SentinelPrimaryLocator?

    public init(
        url: RedisURL,
        group: any EventLoopGroup,
        configuration: Configuration = Configuration(),
        logger: Logger = Logger(label: "erp-gateway.redis")
    ) {
        self.url = url
        self.group = group
        self.configuration = configuration
        self.logger = logger
        // The process's backend when it bootstrapped one before making the client; none otherwise.
        self.metrics = RedisMetrics()
        var slots: [ObjectIdentifier: NIOLoopBoundBox<ServerConnection?>] = [:]
        self.cluster = url.topology == .cluster
            ? RedisClusterClient(url: url, group: group, configuration: configuration, logger: logger, metrics: self.metrics)
            : nil
        for loop in group.makeIterator() where self.cluster == nil {
            slots[ObjectIdentifier(loop)] = NIOLoopBoundBox.makeEmptyBox(valueType: ServerConnection.self, eventLoop: loop)
        }
        self.slots = slots
        self.sentinel = SentinelPrimaryLocator(url: url, eventLoop: group.next(), configuration: configuration, logger: logger, metrics: self.metrics)
    }

    /// Sends one command on `loop`'s connection. Fastest when called on `loop` itself.
    public func send(on loop: any EventLoop, _ arguments: [String]) -> EventLoopFuture<RESPValue> {
        do {
            if let cluster = self.cluster {
                return cluster.send(on: loop, try RedisCommand(arguments), slot: RedisCommandKeys.slot(of: arguments))
            }
            return self.send(on: loop, try RedisCommand(arguments))
        } catch {
            return loop.makeFailedFuture(error)
        }
    }

    /// Sends one command with binary arguments (NUL bytes included) on `loop`'s connection.
    public func send(on loop: any EventLoop, _ arguments: [[UInt8]]) -> EventLoopFuture<RESPValue> {
        do {
            if let cluster = self.cluster {
                return cluster.send(on: loop, try RedisCommand(arguments), slot: RedisCommandKeys.slot(of: arguments))
            }
            return self.send(on: loop, try RedisCommand(arguments))
        } catch {
            return loop.makeFailedFuture(error)
        }
    }

    /// Runs a Lua script by SHA1 (`EVALSHA`). When Redis answers `NOSCRIPT` (a restart, a
    /// failover, `SCRIPT FLUSH`), loads `script` (`SCRIPT LOAD`) and retries once; a second
    /// `NOSCRIPT` — `sha` is not the SHA1 of `script` — comes back as the reply.
    ///
    /// - Parameters:
    ///   - sha: the lowercase hex SHA1 of `script`.
    ///   - keys: every key the script touches. On a Redis Cluster they must share one slot (a
    ///     hash tag); the script runs — and is loaded, per shard — where that slot lives.
    public func evalSHA(on loop: any EventLoop, sha: String, script: String, keys: [String], args: [String]) -> EventLoopFuture<RESPValue> {
        var call = RedisScriptCall(
            sha: sha, keyCount: keys.count, argumentCount: args.count,
            payload: keys.reduce(0) { $0 + $1.utf8.count } + args.reduce(0) { $0 + $1.utf8.count }
        )
        for key in keys { call.append(key) }
        for argument in args { call.append(argument) }
        return self.evalSHA(on: loop, call, script: script, slotKey: keys.first)
    }

    /// `evalSHA(on:sha:script:keys:args:)` for a call whose keys and arguments were written
    /// into it. `slotKey`: any of its keys (they share one slot on a cluster); nil without keys.
    public func evalSHA(on loop: any EventLoop, _ call: consuming RedisScriptCall, script: String, slotKey: String?) -> EventLoopFuture<RESPValue> {
        let sha = call.sha
        let evalSHA = RedisCommand(call)
        // On a cluster the script is loaded where it runs: the shard of its keys' slot.
        let slot = self.cluster == nil ? nil : slotKey.map { RedisKeySlot.slot(of: $0) }
        return self.send(on: loop, evalSHA, slot: slot).flatMap { reply in
            guard case .error(let message) = reply, message.hasPrefix("NOSCRIPT") else {
                return loop.makeSucceededFuture(reply)
            }
            let load: RedisCommand
            do {
                load = try RedisCommand(["SCRIPT", "LOAD", script])
            } catch {
                return loop.makeFailedFuture(error)
            }
            return self.send(on: loop, load, slot: slot).flatMap { loaded in
                if case .error = loaded {
                    return loop.makeSucceededFuture(loaded)
                }
                if loaded.string != sha.lowercased() {
                    self.logger.error("script SHA1 given to evalSHA is not the script's", metadata: ["given": "\(sha)", "loaded": "\(loaded.string ?? "?")"])
                }
                return self.send(on: loop, evalSHA, slot: slot)
            }
        }
    }

    /// Opens every loop's connection now instead of at its first command, so that a node that
    /// has sent nothing yet still knows whether Redis is there (`isAvailable(on:)`: readiness,
    /// fail modes) and its first requests find the connection made. Returns at once; the
    /// connects and any reconnects go on in the background.
    public func connect() {
        if let cluster = self.cluster { return cluster.connect() }
        for box in self.slots.values {
            box.eventLoop.execute {
                let slot = self.slot(box)
                if slot.driver.connection == nil, !slot.driver.isShutDown { slot.driver.connectIfIdle() }
            }
        }
    }

    /// False while `loop`'s Redis is known to be down (see the type's contracts). Call on `loop`.
    /// A loop outside the group has no connection of its own to judge by: always true.
    ///
    /// On a Redis Cluster: false only while every primary is known to be down from `loop` (or
    /// no slot map could be read). A single shard down does not make the store unavailable: its
    /// keys' commands fail at once with `unavailable`, so the quota fail modes apply to the
    /// tenants on that shard only, and readiness does not take the node out for it (every node
    /// would be taken out alike). `isAvailable(on:key:)` asks about one key's shard.
    public func isAvailable(on loop: any EventLoop) -> Bool {
        loop.preconditionInEventLoop()
        if let cluster = self.cluster { return cluster.isAvailable(on: loop) }
        guard let box = self.slots[ObjectIdentifier(loop)] else {
            return true
        }
        return box.value?.driver.backoff.isAvailable ?? true
    }

    /// Closes every connection and stops reconnecting; later commands fail with `shutDown`.
    public func shutdown() -> EventLoopFuture<Void> {
        if let cluster = self.cluster { return cluster.shutdown() }
        let closed = self.slots.values.map { box in
            box.eventLoop.flatSubmit {
                if box.value == nil {
                    box.value = self.makeConnection(on: box.eventLoop)
                }
                return box.value!.shutdown()
            }
        }
        let sentinel = self.sentinel
        return EventLoopFuture.andAllComplete(closed, on: self.group.any()).flatMap {
            sentinel?.shutdown() ?? self.group.any().makeSucceededVoidFuture()
        }
    }

    /// `slot`: where a cluster runs the command (nil: anywhere); ignored by a standalone Redis.
    private func send(on loop: any EventLoop, _ command: RedisCommand, slot: Int?) -> EventLoopFuture<RESPValue> {
        if let cluster = self.cluster { return cluster.send(on: loop, command, slot: slot) }
        return self.send(on: loop, command)
    }

    private func send(on loop: any EventLoop, _ command: RedisCommand) -> EventLoopFuture<RESPValue> {
        guard let box = self.slots[ObjectIdentifier(loop)] else {
            // A loop from outside the group: use one of the group's, and come back.
            return self.send(on: self.group.next(), command).hop(to: loop)
        }
        let promise = loop.makePromise(of: RESPValue.self)
        if loop.inEventLoop {
            self.slot(box).send(command, promise: promise)
        } else {
            loop.execute {
                self.slot(box).send(command, promise: promise)
            }
        }
        return promise.futureResult
    }

    private func slot(_ box: NIOLoopBoundBox<ServerConnection?>) -> ServerConnection {
        if let slot = box.value { return slot }
        let slot = self.makeConnection(on: box.eventLoop)
        box.value = slot
        return slot
    }

    /// One loop's connection: to `url`, or to the primary the Sentinels name.
    private func makeConnection(on eventLoop: any EventLoop) -> ServerConnection {
        let connection = ServerConnection(url: self.url, eventLoop: eventLoop, configuration: self.configuration, logger: self.logger, metrics: self.metrics)
        self.sentinel?.follow(connection.driver, leavingOnReadOnly: true)
        return connection
    }
}
