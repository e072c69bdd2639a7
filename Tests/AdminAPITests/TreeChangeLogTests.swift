import Foundation
import GatewayConfig
import Hierarchy
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import RedisClient
import RedisTestServer
import XCTest

@testable import AdminAPI

/// Admin changes as deltas: each change the engine commits is one, and applying it to the tree
/// it was made on gives exactly the tree a whole read of the changed text gives. On a real
/// redis-server: a node follows the store by deltas alone, and reads the whole tree when a delta
/// is missing or does not apply; the log is compacted. After a failover that lost the last
/// revisions, every node returns to the store's history.
final class TreeChangeLogTests: XCTestCase {
    // MARK: - Deltas of the engine's changes

    func testEveryKindOfAdminChangeIsADeltaThatRebuildsTheChangedTree() throws {
        let tree = try AdminFixture.tree()
        let platform = try AdminFixture.token("platform-admin", node: nil)
        let oem = try AdminFixture.token("oem-admin", node: "acme")
        let issuers = #"{"issuers":[{"iss":"https://id.acme.test","audience":"erp-gateway","keys":[{"kid":"k1","alg":"RS256","pem":\#(JSONValue.string(AdminEngineTests.publicKey).text)}]}]}"#
        let subtree = try XCTUnwrap(AdminFixture.respond(AdminFixture.request("GET", "/admin/v1/nodes/p1/subtree", token: oem), tree: tree))
        let requests: [(String, AdminRequest)] = [
            ("branding", AdminFixture.request("PATCH", "/admin/v1/nodes/c1", token: oem, ifMatch: "*", body: #"{"branding":{"displayName":"C One"}}"#)),
            ("package", AdminFixture.request("PATCH", "/admin/v1/nodes/c3", token: oem, ifMatch: "*", body: #"{"package":"basic"}"#)),
            ("OEM-wide", AdminFixture.request("PATCH", "/admin/v1/nodes/acme", token: platform, ifMatch: "*", body: #"{"branding":{"displayName":"Acme Two"},"limits":{"rate":900}}"#)),
            ("suspend", AdminFixture.request("PATCH", "/admin/v1/nodes/p2", token: oem, ifMatch: "*", body: #"{"status":"suspended"}"#)),
            ("create", AdminFixture.request("POST", "/admin/v1/nodes/p1/children", token: oem, ifMatch: "*", body: #"{"id":"c9","package":"basic"}"#)),
            ("create OEM", AdminFixture.request("POST", "/admin/v1/nodes", token: platform, body: #"{"id":"initech","placement":{"tier":"pooled","region":"eu"}}"#)),
            ("delete", AdminFixture.request("DELETE", "/admin/v1/nodes/c2", token: oem, ifMatch: "*")),
            ("issuers", AdminFixture.request("PUT", "/admin/v1/nodes/acme/issuers", token: oem, ifMatch: "*", body: issuers)),
            ("subtree", AdminFixture.request(
                "PUT", "/admin/v1/nodes/p1/subtree", token: oem, ifMatch: subtree.header("etag"),
                body: subtree.body.replacingOccurrences(of: "id: c2", with: "id: c5")
            )),
        ]
        for (name, request) in requests {
            let commit = try XCTUnwrap(AdminFixture.commit(request, tree: tree), name)
            guard case .delta(let text) = commit.write else {
                XCTFail("\(name): committed as the whole tree")
                continue
            }
            // What another node does with the delta, against what reading the whole changed tree gives.
            let applied = try tree.applying(TreeDelta.parse(text, cells: tree.configuration.settings.cells), revision: 2)
            let whole = try AdminFixture.tree(revision: 2, text: TenantTreeWriter.yaml(commit.next.document))
            XCTAssertEqual(TenantTreeWriter.yaml(applied.document), TenantTreeWriter.yaml(whole.document), "\(name): another document")
            XCTAssertEqual(TenantTreeWriter.yaml(commit.next.document), TenantTreeWriter.yaml(whole.document), "\(name): the writer holds another document")
            let snapshot = try XCTUnwrap(applied.snapshot)
            XCTAssertEqual(snapshot.servesSameTree(as: try XCTUnwrap(whole.snapshot)), [], name)
            XCTAssertEqual(applied.document.issuers.map(\.issuer), whole.document.issuers.map(\.issuer), name)
            XCTAssertEqual(applied.configuration.authentication?.platformIssuers, whole.configuration.authentication?.platformIssuers, name)
            // Read by the admin API alike: the same export, so the same ETag, on every node.
            let exported = { (tree: StoredTree) in AdminFixture.respond(AdminFixture.request("GET", "/admin/v1/nodes/acme/subtree", token: oem), tree: tree)?.body }
            XCTAssertEqual(exported(applied), exported(whole), name)
        }
    }

    func testADeltaThatDoesNotFitTheTreeIsRefused() throws {
        let tree = try AdminFixture.tree()
        let cells = tree.configuration.settings.cells
        let catalog = tree.document.tree.catalog
        XCTAssertThrowsError(try TreeDelta(nodes: [], positions: [], issuers: [], removed: ["nobody"], catalog: catalog).apply(to: tree.document))
        let node = tree.document.tree.nodes[2]
        XCTAssertThrowsError(try TreeDelta(nodes: [node], positions: [99], issuers: [], removed: [], catalog: catalog).apply(to: tree.document))
        var other = catalog
        other.features.append("extra")
        XCTAssertThrowsError(try TreeDelta(nodes: [node], positions: [2], issuers: [], removed: [], catalog: other).apply(to: tree.document))
        XCTAssertThrowsError(try TreeDelta.parse("something else", cells: cells))
        XCTAssertNoThrow(try TreeDelta(nodes: [node], positions: [2], issuers: [], removed: [], catalog: catalog).apply(to: tree.document))
    }

    func testAChangeThatIsNoDeltaIsCommittedWhole() throws {
        // Two nodes with one id: no delta says which is which; the whole tree is compiled (and here rejected).
        let tree = try AdminFixture.tree()
        var document = tree.document
        document.tree.nodes.append(document.tree.nodes[2])
        XCTAssertNil(TreeDelta.between(tree.document, document, touching: [document.tree.nodes[2].id]))
        guard case .failure = tree.compile(document, touching: [document.tree.nodes[2].id], revision: 2) else { return XCTFail("an id twice is rejected") }
    }

    // MARK: - On a real store

    var server: RedisServer!
    var group: MultiThreadedEventLoopGroup!
    var client: RedisClient!
    let store = AdminStore(keyPrefix: "erp-log-test")
    var settingsPath = ""

    override func setUpWithError() throws {
        self.server = try RedisServer()
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.client = RedisClient(url: RedisURL(host: "127.0.0.1", port: self.server.port), group: self.group)
        self.settingsPath = FileManager.default.temporaryDirectory.appendingPathComponent("tree-log-\(getpid()).yaml").path
        try AdminFixture.settingsYAML.write(toFile: self.settingsPath, atomically: true, encoding: .utf8)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: self.settingsPath)
        try self.client.shutdown().wait()
        try self.group.syncShutdownGracefully()
        self.server.stop()
    }

    var loop: any EventLoop { self.group.next() }

    /// A gateway node's feed, holding `tree`. `onNewer` sees every tree the node takes.
    func node(holding tree: StoredTree, onNewer: @escaping @Sendable (StoredTree) -> Void = { _ in }) -> (feed: TreeFeed, latest: LatestTree) {
        let latest = LatestTree(tree, onNewer: onNewer)
        let settingsPath = self.settingsPath
        let feed = TreeFeed(
            client: self.client, url: RedisURL(host: "127.0.0.1", port: self.server.port), store: self.store, latest: latest, loop: self.loop,
            logger: Logger(label: "test"), compile: { text, deltas, revision in try StoredTree.read(text: text, deltas: deltas, revision: revision, settingsPath: settingsPath) }
        )
        return (feed, latest)
    }

    /// Two nodes on one store, which the first seeds (revision 1) and the second then reads.
    func twoNodesOnASeededStore(
        firstOnNewer: @escaping @Sendable (StoredTree) -> Void = { _ in }
    ) throws -> (first: (feed: TreeFeed, latest: LatestTree), second: (feed: TreeFeed, latest: LatestTree)) {
        let first = self.node(holding: try AdminFixture.tree(revision: 0), onNewer: firstOnNewer)
        XCTAssertEqual(try first.feed.synchronize(reason: "test").wait(), 1, "seeded")
        let second = self.node(holding: try AdminFixture.tree(revision: 0))
        XCTAssertEqual(try second.feed.synchronize(reason: "test").wait(), 1)
        return (first, second)
    }

    func service(_ latest: LatestTree, _ feed: TreeFeed) -> AdminService {
        AdminService(
            latest: latest, feed: feed, store: self.store, client: self.client, revoker: { _, loop, _ in loop.makeSucceededFuture(0) },
            usage: .init(redis: self.client, prefix: "erp-log-test"), logger: Logger(label: "test"), clock: { AdminFixture.now }
        )
    }

    func rename(_ id: String, _ name: String, through service: AdminService) throws {
        let response = try self.patch(id, #"{"branding":{"displayName":"\#(name)"}}"#, through: service)
        XCTAssertEqual(response.status, 200, response.body)
    }

    func patch(_ id: String, _ body: String, through service: AdminService) throws -> AdminResponse {
        let token = try AdminFixture.token("platform-admin", node: nil)
        return try service.handle(AdminFixture.request("PATCH", "/admin/v1/nodes/\(id)", token: token, ifMatch: "*", body: body), on: self.loop).wait()
    }

    func displayName(_ id: String, _ latest: LatestTree) throws -> String? {
        latest.current.snapshot?.policy(try NodeID(id))?.branding.values[.displayName]
    }

    func redis(_ command: String...) throws -> RESPValue {
        try self.client.send(on: self.loop, command).wait()
    }

    func testANodeFollowsTheStoreByDeltasAlone() throws {
        let (writer, follower) = try self.twoNodesOnASeededStore()
        let service = self.service(writer.latest, writer.feed)

        try self.rename("c1", "First", through: service)
        try self.rename("acme", "Acme Renamed", through: service)
        XCTAssertEqual(try self.redis("HLEN", self.store.deltasKey).int64, 2, "each change is logged as a delta")
        XCTAssertEqual(try self.redis("GET", self.store.treeRevisionKey).int64, 1, "the whole tree is not written per change")
        // The whole tree becomes unreadable: a node that follows by deltas never needs it.
        _ = try self.redis("SET", self.store.treeKey, "not: [a tree")
        XCTAssertEqual(try follower.feed.synchronize(reason: "test").wait(), 3)
        XCTAssertEqual(try self.displayName("c1", follower.latest), "First")
        XCTAssertEqual(try self.displayName("p1", follower.latest), "Acme Renamed", "the OEM-wide change reaches its partners")
        XCTAssertEqual(try self.displayName("g1", follower.latest), nil)
    }

    func testANodeReadsTheWholeTreeWhenADeltaIsMissingOrDoesNotApply() throws {
        let writer = self.node(holding: try AdminFixture.tree(revision: 0))
        _ = try writer.feed.synchronize(reason: "test").wait()
        let service = self.service(writer.latest, writer.feed)
        let behind = self.node(holding: try AdminFixture.tree(revision: 0))
        _ = try behind.feed.synchronize(reason: "test").wait()
        let odd = self.node(holding: try AdminFixture.tree(revision: 0))
        _ = try odd.feed.synchronize(reason: "test").wait()

        try self.rename("c1", "Second", through: service)
        try self.rename("c2", "Third", through: service)
        // The log compacted at 3 with nothing kept below: a node at 1 finds delta 2 missing.
        XCTAssertTrue(try self.store.compact(text: writer.latest.current.text, revision: writer.latest.current.storeRevision, client: self.client, on: self.loop).wait())
        _ = try self.redis("HDEL", self.store.deltasKey, "2", "3")
        XCTAssertEqual(try behind.feed.synchronize(reason: "test").wait(), 3)
        XCTAssertEqual(try self.displayName("c2", behind.latest), "Third")

        // A delta that does not apply to the tree a node holds: the whole tree is read instead.
        try self.rename("c1", "Fourth", through: service)
        _ = try self.redis("HSET", self.store.deltasKey, "2", "erp-gateway tree delta 1\nremoved: nobody\npositions:\n---\n")
        XCTAssertEqual(try odd.feed.synchronize(reason: "test").wait(), 4)
        XCTAssertEqual(try self.displayName("c1", odd.latest), "Fourth")
        XCTAssertEqual(try self.displayName("c2", odd.latest), "Third")
    }

    func testTheWriterCompactsTheLogAndANewNodeReadsTheCompactedTree() throws {
        let writer = self.node(holding: try AdminFixture.tree(revision: 0))
        _ = try writer.feed.synchronize(reason: "test").wait()
        let service = self.service(writer.latest, writer.feed)
        let changes = Int(AdminStore.compactionInterval)
        for number in 1...changes { try self.rename("c1", "Name \(number)", through: service) }
        // Compaction runs after the commit that reaches the interval, off the write path.
        let deadline = Date().addingTimeInterval(10)
        while try self.redis("GET", self.store.treeRevisionKey).int64 != Int64(changes + 1), Date() < deadline { usleep(20_000) }
        XCTAssertEqual(try self.redis("GET", self.store.treeRevisionKey).int64, Int64(changes + 1))
        XCTAssertEqual(try self.redis("HLEN", self.store.deltasKey).int64, AdminStore.deltasKeptBelowCompaction, "the log is trimmed below the compaction")
        try self.rename("c2", "After", through: service)

        let newcomer = self.node(holding: try AdminFixture.tree(revision: 0))
        XCTAssertEqual(try newcomer.feed.synchronize(reason: "test").wait(), Int64(changes + 2))
        XCTAssertEqual(try self.displayName("c1", newcomer.latest), "Name \(changes)")
        XCTAssertEqual(try self.displayName("c2", newcomer.latest), "After")
    }

    func testAStoreThatLostItsTreeAndLogGetsThisNodesNewestBack() throws {
        let writer = self.node(holding: try AdminFixture.tree(revision: 0))
        _ = try writer.feed.synchronize(reason: "test").wait()
        try self.rename("c1", "Kept", through: self.service(writer.latest, writer.feed))
        _ = try self.redis("DEL", self.store.treeKey, self.store.revisionKey)
        XCTAssertEqual(try writer.feed.synchronize(reason: "test").wait(), 2)
        XCTAssertEqual(try self.redis("GET", self.store.revisionKey).int64, 2)
        XCTAssertEqual(try self.redis("EXISTS", self.store.deltasKey).int64, 0, "the stale log went with the write-back")
        let newcomer = self.node(holding: try AdminFixture.tree(revision: 0))
        XCTAssertEqual(try newcomer.feed.synchronize(reason: "test").wait(), 2)
        XCTAssertEqual(try self.displayName("c1", newcomer.latest), "Kept")
    }

    // MARK: - After a failover that lost revisions

    /// Every key of the store, copied aside as a replica holds them at this moment.
    func replicate() throws -> [String] {
        let keys = try XCTUnwrap(try self.redis("KEYS", "erp-log-test:*").elements).compactMap(\.string)
        for key in keys { _ = try self.redis("COPY", key, "replica:\(key)", "REPLACE") }
        return keys
    }

    /// The primary dies and the replica, which missed everything written since `replicate`,
    /// becomes the store: every key as it was then.
    func failOver(to replica: [String]) throws {
        for key in try XCTUnwrap(try self.redis("KEYS", "erp-log-test:*").elements).compactMap(\.string) { _ = try self.redis("DEL", key) }
        for key in replica {
            _ = try self.redis("COPY", "replica:\(key)", key)
            _ = try self.redis("DEL", "replica:\(key)")
        }
    }

    /// The store's tree as a node starting now reads it: whole, compiled once.
    func storedTree() throws -> StoredTree {
        let stored = try XCTUnwrap(try self.store.load(client: self.client, on: self.loop).wait())
        return try StoredTree.read(text: stored.text, deltas: stored.deltas, revision: stored.revision, settingsPath: self.settingsPath).identified(as: stored.id)
    }

    func assertSameTree(_ one: StoredTree, _ other: StoredTree, _ message: String, line: UInt = #line) throws {
        XCTAssertEqual(one.storeRevision, other.storeRevision, message, line: line)
        XCTAssertEqual(TenantTreeWriter.yaml(one.document), TenantTreeWriter.yaml(other.document), message, line: line)
        XCTAssertEqual(try XCTUnwrap(one.snapshot).servesSameTree(as: try XCTUnwrap(other.snapshot)), [], message, line: line)
    }

    func package(_ id: String, _ tree: StoredTree) -> String? {
        tree.document.tree.nodes.first { $0.id == id }?.package
    }

    func testAfterAFailoverLostARevisionTheNodeThatAppliedItReturnsToTheStoresHistory() throws {
        let (a, b) = try self.twoNodesOnASeededStore()
        let serviceA = self.service(a.latest, a.feed)
        let serviceB = self.service(b.latest, b.feed)
        try self.rename("c1", "Before", through: serviceA)
        XCTAssertEqual(try b.feed.synchronize(reason: "test").wait(), 2)

        // Revision 3 is acknowledged to A (and would be announced), then the primary dies before
        // its replica has it.
        let replica = try self.replicate()
        try self.rename("c1", "Lost", through: serviceA)
        try self.failOver(to: replica)
        // B never saw 3: its next change takes the number again, with other content.
        try self.rename("c2", "After", through: serviceB)
        XCTAssertEqual(a.latest.current.revision, 3)
        XCTAssertEqual(b.latest.current.revision, 3)
        XCTAssertNotEqual(a.latest.current.commitID, b.latest.current.commitID)

        XCTAssertEqual(try a.feed.synchronize(reason: "test").wait(), 3)
        try self.assertSameTree(a.latest.current, b.latest.current, "A adopted the store's revision 3")
        XCTAssertEqual(try self.displayName("c1", a.latest), "Before", "the lost change is gone")
        XCTAssertEqual(try self.displayName("c2", a.latest), "After")

        // From there A follows by deltas again.
        try self.rename("p1", "Later", through: serviceB)
        XCTAssertEqual(try a.feed.synchronize(reason: "test").wait(), 4)
        try self.assertSameTree(a.latest.current, b.latest.current, "A follows B")
        try self.assertSameTree(a.latest.current, try self.storedTree(), "A holds the store's tree")
    }

    func testANodeThatHeldALostRevisionWritesAfterOneResyncAndNeverCommitsTheLostTree() throws {
        let taken = NIOLockedValueBox(0)
        let (a, b) = try self.twoNodesOnASeededStore(firstOnNewer: { _ in taken.withLockedValue { $0 += 1 } })
        let serviceA = self.service(a.latest, a.feed)
        let serviceB = self.service(b.latest, b.feed)
        try self.rename("c1", "Before", through: serviceA)

        // The store went back to 2 and nobody wrote since: A, at the lost 3, changes c1 again.
        var replica = try self.replicate()
        try self.rename("c1", "Lost", through: serviceA)
        try self.failOver(to: replica)
        taken.withLockedValue { $0 = 0 }
        var response = try self.patch("c1", #"{"package":"full"}"#, through: serviceA)
        XCTAssertEqual(response.status, 200, response.body)
        XCTAssertEqual(taken.withLockedValue { $0 }, 2, "the store's tree adopted once, then the change committed on it")
        var stored = try self.storedTree()
        XCTAssertEqual(stored.revision, 3)
        XCTAssertEqual(stored.snapshot?.policy(try NodeID("c1"))?.branding.values[.displayName], "Before", "nothing of the lost tree was committed")
        XCTAssertEqual(self.package("c1", stored), "full")
        try self.assertSameTree(a.latest.current, stored, "A holds what it committed")

        // The store went back to 3 and B, which never saw the lost 4, took the number 4 with its
        // own change: A's change computed on the lost 4 matches the number but not the id.
        XCTAssertEqual(try b.feed.synchronize(reason: "test").wait(), 3)
        replica = try self.replicate()
        try self.rename("c1", "Lost again", through: serviceA)
        try self.failOver(to: replica)
        try self.rename("c2", "B", through: serviceB)
        taken.withLockedValue { $0 = 0 }
        response = try self.patch("c1", #"{"package":"basic"}"#, through: serviceA)
        XCTAssertEqual(response.status, 200, response.body)
        XCTAssertEqual(taken.withLockedValue { $0 }, 2, "the store's tree adopted once, then the change committed on it")
        stored = try self.storedTree()
        XCTAssertEqual(stored.revision, 5)
        XCTAssertEqual(stored.snapshot?.policy(try NodeID("c1"))?.branding.values[.displayName], "Before", "nothing of the lost tree was committed")
        XCTAssertEqual(stored.snapshot?.policy(try NodeID("c2"))?.branding.values[.displayName], "B", "B's change is kept")
        XCTAssertEqual(self.package("c1", stored), "basic")
        try self.assertSameTree(a.latest.current, stored, "A holds what it committed")
        XCTAssertEqual(try b.feed.synchronize(reason: "test").wait(), 5)
        try self.assertSameTree(b.latest.current, stored, "B follows")
    }

    func testAStoreWrittenBeforeRevisionIDsIsReadFollowedAndWritten() throws {
        // As an older version left it: the tree at 4, the delta of 5, no ids.
        let four = try AdminFixture.tree(revision: 4)
        let token = try AdminFixture.token("platform-admin", node: nil)
        let renamed = try XCTUnwrap(AdminFixture.commit(
            AdminFixture.request("PATCH", "/admin/v1/nodes/c1", token: token, ifMatch: "*", body: #"{"branding":{"displayName":"Legacy"}}"#), tree: four
        ))
        guard case .delta(let delta) = renamed.write else { return XCTFail("a rename is a delta") }
        _ = try self.redis("SET", self.store.treeKey, AdminFixture.treeYAML)
        _ = try self.redis("SET", self.store.treeRevisionKey, "4")
        _ = try self.redis("HSET", self.store.deltasKey, "5", delta)
        _ = try self.redis("SET", self.store.revisionKey, "5")

        let a = self.node(holding: try AdminFixture.tree(revision: 0))
        XCTAssertEqual(try a.feed.synchronize(reason: "test").wait(), 5, "read whole")
        XCTAssertEqual(a.latest.current.commitID, StoreRevision.legacyID)
        XCTAssertEqual(try self.displayName("c1", a.latest), "Legacy")
        // A node that had read revision 4 follows by the delta: the whole tree is unreadable.
        let c = self.node(holding: four.identified(as: StoreRevision.legacyID))
        _ = try self.redis("SET", self.store.treeKey, "not: [a tree")
        XCTAssertEqual(try c.feed.synchronize(reason: "test").wait(), 5, "followed by the delta")
        XCTAssertEqual(try self.displayName("c1", c.latest), "Legacy")
        _ = try self.redis("SET", self.store.treeKey, AdminFixture.treeYAML)

        // A writes: the legacy revision is its base; the store gets its first id.
        try self.rename("c2", "Upgraded", through: self.service(a.latest, a.feed))
        let head = try self.store.head(client: self.client, on: self.loop).wait()
        XCTAssertEqual(head.number, 6)
        XCTAssertEqual(head.id, a.latest.current.commitID)
        XCTAssertEqual(head.id.count, 16, "a drawn id, no longer the legacy one: \(head.id)")
        XCTAssertEqual(try c.feed.synchronize(reason: "test").wait(), 6)
        try self.assertSameTree(c.latest.current, a.latest.current, "C follows A")
        try self.assertSameTree(a.latest.current, try self.storedTree(), "A holds the store's tree")
    }

    // MARK: - Comparing revisions

    func testThePollAndTheAnnouncementCompareNumberAndID() {
        let held = StoreRevision(number: 3, id: "aaaa")
        XCTAssertFalse(TreeFeed.differs(polled: held, from: held))
        XCTAssertTrue(TreeFeed.differs(polled: StoreRevision(number: 3, id: "bbbb"), from: held), "the number again, another commit")
        XCTAssertTrue(TreeFeed.differs(polled: StoreRevision(number: 2, id: "cccc"), from: held), "the store went back")
        XCTAssertTrue(TreeFeed.differs(polled: StoreRevision(number: 4, id: "dddd"), from: held))
        XCTAssertTrue(TreeFeed.differs(polled: StoreRevision(number: 0, id: StoreRevision.legacyID), from: held), "the store lost its tree")

        XCTAssertFalse(TreeFeed.differs(announced: "3:aaaa", from: held))
        XCTAssertTrue(TreeFeed.differs(announced: "3:bbbb", from: held))
        XCTAssertTrue(TreeFeed.differs(announced: "2:cccc", from: held))
        XCTAssertTrue(TreeFeed.differs(announced: "4:dddd", from: held))
        // From a node of an older version: a bare number.
        XCTAssertTrue(TreeFeed.differs(announced: "4", from: held))
        XCTAssertFalse(TreeFeed.differs(announced: "3", from: held))
        XCTAssertFalse(TreeFeed.differs(announced: "2", from: held))
        XCTAssertTrue(TreeFeed.differs(announced: "garbled", from: held))
    }

    func testTheLatestTreeGoesBackOnlyInPlaceOfTheTreeItHeldWhenItReadTheStore() throws {
        let lost = try AdminFixture.tree(revision: 3).identified(as: "lost")
        let stores = try AdminFixture.tree(revision: 2).identified(as: "kept")
        let taken = NIOLockedValueBox<[StoreRevision]>([])
        let latest = LatestTree(lost, onNewer: { tree in taken.withLockedValue { $0.append(tree.storeRevision) } })
        XCTAssertFalse(latest.offer(stores), "an offer never goes back")
        XCTAssertFalse(latest.replace(StoreRevision(number: 3, id: "other"), with: stores), "another tree than the one held when the store was read")
        XCTAssertTrue(latest.replace(lost.storeRevision, with: stores))
        XCTAssertEqual(latest.current.storeRevision, stores.storeRevision)
        XCTAssertEqual(taken.withLockedValue { $0 }, [stores.storeRevision])
        let ids = Set((0..<100).map { _ in StoreRevision.newID() })
        XCTAssertEqual(ids.count, 100)
        XCTAssertTrue(ids.allSatisfy { $0.count == 16 && $0.allSatisfy(\.isHexDigit) })
    }
}
