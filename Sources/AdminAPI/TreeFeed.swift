import GatewayConfig
import Logging
import NIOConcurrencyHelpers
import NIOCore
import RedisClient

/// The newest stored tree this process knows, shared by the feed that brings revisions in, the
/// admin service that commits them and the serve loop that installs them. Moves forward: an older
/// revision offered late is ignored. It goes back only by `replace`, when the store itself went
/// back (a failover lost its last revisions).
public final class LatestTree: Sendable {
    private let box: NIOLockedValueBox<StoredTree>
    private let onNewer: @Sendable (StoredTree) -> Void

    /// `onNewer` runs (outside the lock) for every tree that became the latest.
    public init(_ initial: StoredTree, onNewer: @escaping @Sendable (StoredTree) -> Void) {
        self.box = NIOLockedValueBox(initial)
        self.onNewer = onNewer
    }

    public var current: StoredTree { self.box.withLockedValue { $0 } }

    /// Takes `tree` if it is newer than the current one; true if it did.
    @discardableResult
    public func offer(_ tree: StoredTree) -> Bool {
        let taken = self.box.withLockedValue { current -> Bool in
            guard tree.revision > current.revision else { return false }
            current = tree
            return true
        }
        if taken { self.onNewer(tree) }
        return taken
    }

    /// Takes `tree`, the store's, in place of the tree whose revision is `held` — the one this
    /// node held when it read the store — even when its number is not higher: the store does not
    /// hold `held` any more (a failover lost it), and the store is the authority. Nothing when
    /// the current tree is no longer `held` (a commit or a newer read came in meanwhile; the
    /// next poll compares again). True if it took it.
    @discardableResult
    public func replace(_ held: StoreRevision, with tree: StoredTree) -> Bool {
        let taken = self.box.withLockedValue { current -> Bool in
            guard current.storeRevision == held, tree.storeRevision != held else { return false }
            current = tree
            return true
        }
        if taken { self.onNewer(tree) }
        return taken
    }

    /// The same revision compiled under new settings (a reload of the settings file).
    public func recompiled(_ tree: StoredTree) {
        self.box.withLockedValue { current in
            if tree.storeRevision == current.storeRevision { current = tree }
        }
    }
}

/// Keeps this node's tree at the store's newest revision: each announced revision as it comes,
/// and a poll of the revision every `pollInterval` as the fallback for a missed announcement
/// or a lost subscription. Seeds an empty store with the tree read from the file.
///
/// A node that holds revision N reads only the deltas after N and applies them to the tree it
/// holds, recompiling what each touches — provided the store holds N under the same commit id
/// (`StoreRevision`). It reads the whole tree instead — the text of the store's last compaction
/// and the deltas since, compiled once — when it holds none of the store's revisions yet, when a
/// delta is missing (too far behind, the log compacted, the store written anew) or when a delta
/// does not apply. When the store does not hold N (a failover lost it: the store is at a lower
/// number, or has another commit under N), the node adopts the store's whole tree even though its
/// number is not higher.
public final class TreeFeed: Sendable {
    private let client: RedisClient
    private let subscriber: RedisSubscriber
    private let store: AdminStore
    private let latest: LatestTree
    private let loop: any EventLoop
    private let logger: Logger
    /// Compiles a stored tree (its text and the deltas logged since) under the current settings.
    private let compile: @Sendable (_ text: String, _ deltas: [String], _ revision: Int64) throws -> StoredTree
    private let poller: NIOLockedValueBox<RepeatedTask?> = NIOLockedValueBox(nil)
    /// A revision that failed to compile, so it is logged once, not at every poll.
    private let rejected: NIOLockedValueBox<Int64> = NIOLockedValueBox(0)

    public static let pollInterval = TimeAmount.seconds(1)

    public init(
        client: RedisClient, url: RedisURL, store: AdminStore, latest: LatestTree, loop: any EventLoop, logger: Logger,
        compile: @escaping @Sendable (_ text: String, _ deltas: [String], _ revision: Int64) throws -> StoredTree
    ) {
        self.client = client
        self.store = store
        self.latest = latest
        self.loop = loop
        self.logger = logger
        self.compile = compile
        let holder = TreeFeedHolder()
        self.subscriber = RedisSubscriber(
            url: url, channels: [store.channel], eventLoop: loop, logger: logger,
            onConnected: { holder.feed?.synchronize(reason: "subscribed") },
            onMessage: { _, payload in
                guard let feed = holder.feed else { return }
                if Self.differs(announced: String(decoding: payload, as: UTF8.self), from: feed.latest.current.storeRevision) {
                    feed.synchronize(reason: "announced")
                }
            }
        )
        holder.feed = self
    }

    public func start() {
        self.subscriber.start()
        let task = self.loop.scheduleRepeatedTask(initialDelay: Self.pollInterval, delay: Self.pollInterval) { [weak self] _ in
            guard let self else { return }
            self.store.head(client: self.client, on: self.loop).whenSuccess { head in
                if Self.differs(polled: head, from: self.latest.current.storeRevision) { self.synchronize(reason: "polled") }
            }
        }
        self.poller.withLockedValue { $0 = task }
    }

    /// Whether the store's head, as polled, calls for a synchronization: number 0 (the store lost
    /// its tree: this node writes its own back), or any other revision than the one held — a
    /// higher number, or a number this node holds under another id, or a lower one (a failover).
    static func differs(polled head: StoreRevision, from held: StoreRevision) -> Bool {
        head.number == 0 || head != held
    }

    /// Whether an announcement calls for a synchronization: `number:id` other than the revision
    /// held (whatever the number: after a failover a lower or equal number can be the store's);
    /// a bare number, from a node of an older version, when it is higher; anything unreadable,
    /// to be safe.
    static func differs(announced text: String, from held: StoreRevision) -> Bool {
        switch StoreRevision.announced(text) {
        case .some((let number, .some(let id))): StoreRevision(number: number, id: id) != held
        case .some((let number, .none)): number > held.number
        case .none: true
        }
    }

    public func shutdown() async {
        self.poller.withLockedValue { $0?.cancel() }
        try? await self.subscriber.shutdown().get()
    }

    /// Brings this node to the store's newest revision and offers it; seeds the store when it
    /// holds none; adopts the store's tree when the store does not hold this node's revision (a
    /// failover lost it). Succeeds with the revision now current (which may still be 0 when the
    /// store could not be read).
    @discardableResult
    public func synchronize(reason: String) -> EventLoopFuture<Int64> {
        let held = self.latest.current
        // Revision 0 is the file's tree: no delta of the store applies to it.
        guard held.revision > 0 else { return self.loadWholeTree(reason: reason) }
        return self.store.changes(after: held.storeRevision, client: self.client, on: self.loop).flatMap { changes -> EventLoopFuture<Int64> in
            switch changes {
            case .upToDate(let current):
                // 0: the store lost its tree; the whole-tree path writes this node's back.
                return current.number == 0 ? self.loadWholeTree(reason: reason) : self.loop.makeSucceededFuture(self.latest.current.revision)
            case .wholeTreeNeeded:
                return self.loadWholeTree(reason: reason)
            case .anotherHistory:
                return self.loadWholeTree(reason: reason, heldWasLost: true)
            case .deltas(let current, let deltas):
                var tree = held
                do {
                    for (offset, text) in deltas.enumerated() {
                        let delta = try TreeDelta.parse(text, cells: tree.configuration.settings.cells)
                        tree = try tree.applying(delta, revision: held.revision + Int64(offset) + 1)
                    }
                } catch {
                    // Already read whole and rejected under these settings: said once, at the time.
                    if self.rejected.withLockedValue({ $0 }) == current.number { return self.loop.makeSucceededFuture(self.latest.current.revision) }
                    self.logger.warning("a logged tenant tree change does not apply to this node's tree; reading the whole tree", metadata: [
                        "revision": "\(tree.revision + 1)", "error": "\(error)",
                    ])
                    return self.loadWholeTree(reason: reason)
                }
                self.latest.offer(tree.identified(as: current.id))
                self.logger.debug("tenant tree revision adopted", metadata: ["revision": "\(current)", "reason": "\(reason)", "deltas": "\(deltas.count)"])
                return self.loop.makeSucceededFuture(self.latest.current.revision)
            }
        }.flatMapErrorWithEventLoop { error, loop in
            self.logger.warning("cannot read the tenant tree from the store; will retry", metadata: ["reason": "\(reason)", "error": "\(error)"])
            return loop.makeSucceededFuture(self.latest.current.revision)
        }
    }

    /// Reads the whole stored tree and offers it; seeds the store when it holds none. A stored
    /// revision that is not newer than the one held but is not it either is the store's state
    /// after a failover lost the later revisions: it replaces the held tree. `heldWasLost`: the
    /// store said it does not hold this node's revision (then a newer one is adopted with the
    /// same warning).
    private func loadWholeTree(reason: String, heldWasLost: Bool = false) -> EventLoopFuture<Int64> {
        // What this node held when it asked: a tree taken meanwhile (its own commit) is not replaced.
        let held = self.latest.current.storeRevision
        return self.store.load(client: self.client, on: self.loop).flatMap { stored -> EventLoopFuture<Int64> in
            guard let stored else { return self.seed() }
            let revision = StoreRevision(number: stored.revision, id: stored.id)
            guard revision != held else { return self.loop.makeSucceededFuture(self.latest.current.revision) }
            // The file's tree (0) is no revision of the store: any stored one is newer.
            let wentBack = held.number > 0 && revision.number <= held.number
            do {
                let tree = try self.compile(stored.text, stored.deltas, stored.revision).identified(as: stored.id)
                if wentBack {
                    if self.latest.replace(held, with: tree) {
                        self.logger.warning("admin store went back to revision \(stored.revision) (a failover lost later changes); adopting it", metadata: [
                            "revision": "\(revision)", "held": "\(held)", "reason": "\(reason)",
                        ])
                    }
                } else if self.latest.offer(tree), heldWasLost {
                    self.logger.warning("admin store does not hold this node's revision (a failover lost it); adopting the store's", metadata: [
                        "revision": "\(revision)", "held": "\(held)", "reason": "\(reason)",
                    ])
                } else {
                    self.logger.debug("tenant tree revision adopted", metadata: ["revision": "\(revision)", "reason": "\(reason)", "whole": "true"])
                }
            } catch {
                let first = self.rejected.withLockedValue { last in
                    defer { last = stored.revision }
                    return last != stored.revision
                }
                if first {
                    self.logger.error("stored tenant tree rejected under these settings; still serving the previous one", metadata: [
                        "revision": "\(stored.revision)", "errors": "\(error)",
                    ])
                }
            }
            return self.loop.makeSucceededFuture(self.latest.current.revision)
        }.flatMapErrorWithEventLoop { error, loop in
            self.logger.warning("cannot read the tenant tree from the store; will retry", metadata: ["reason": "\(reason)", "error": "\(error)"])
            return loop.makeSucceededFuture(self.latest.current.revision)
        }
    }

    /// The store is empty: the tree this node read from the file becomes revision 1. Another
    /// node seeding at the same moment wins or loses the compare-and-set; either way one seed.
    /// A store that lost its tree (flushed, replaced) gets back the newest tree this node has,
    /// under its revision and commit id, so no node ever goes back to an older tree and the
    /// nodes that hold the same one keep following by deltas.
    private func seed() -> EventLoopFuture<Int64> {
        let file = self.latest.current
        let revision = max(1, file.revision)
        let id = file.revision == 0 ? StoreRevision.newID() : file.commitID
        let text = file.text
        return self.store.commit(
            text: text, base: StoreRevision(number: 0, id: StoreRevision.noID), id: id, revision: revision, audit: nil, deleted: nil,
            client: self.client, on: self.loop
        ).flatMap { result in
            switch result {
            case .committed(let revision):
                self.logger.notice(
                    file.revision == 0 ? "admin store seeded from the tenant-tree file" : "admin store had no tree; wrote back this node's newest",
                    metadata: ["revision": "\(revision)"]
                )
                self.latest.offer(StoredTree(revision: revision, commitID: id, document: file.document, configuration: file.configuration, text: text))
                return self.loop.makeSucceededFuture(revision)
            case .conflict:
                return self.synchronize(reason: "seeded elsewhere")
            }
        }
    }
}

/// Lets the subscriber's callbacks reach the feed that owns the subscriber.
private final class TreeFeedHolder: @unchecked Sendable {
    // Set once, before the subscriber starts; read afterwards only.
    weak var feed: TreeFeed?
}
