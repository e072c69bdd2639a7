import Foundation
import GatewayConfig
import Hierarchy
import Logging
import NIOCore
import NIOPosix
import RedisClient
import RedisTestServer
import XCTest

@testable import AdminAPI

/// Admin changes as deltas: each change the engine commits is one, and applying it to the tree
/// it was made on gives exactly the tree a whole read of the changed text gives. On a real
/// redis-server: a node follows the store by deltas alone, and reads the whole tree when a delta
/// is missing or does not apply; the log is compacted.
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

    /// A gateway node's feed, holding `tree`.
    func node(holding tree: StoredTree) -> (feed: TreeFeed, latest: LatestTree) {
        let latest = LatestTree(tree, onNewer: { _ in })
        let settingsPath = self.settingsPath
        let feed = TreeFeed(
            client: self.client, url: RedisURL(host: "127.0.0.1", port: self.server.port), store: self.store, latest: latest, loop: self.loop,
            logger: Logger(label: "test"), compile: { text, deltas, revision in try StoredTree.read(text: text, deltas: deltas, revision: revision, settingsPath: settingsPath) }
        )
        return (feed, latest)
    }

    func service(_ latest: LatestTree, _ feed: TreeFeed) -> AdminService {
        AdminService(
            latest: latest, feed: feed, store: self.store, client: self.client, revoker: { _, loop, _ in loop.makeSucceededFuture(0) },
            usage: .init(redis: self.client, prefix: "erp-log-test"), logger: Logger(label: "test"), clock: { AdminFixture.now }
        )
    }

    func rename(_ id: String, _ name: String, through service: AdminService) throws {
        let token = try AdminFixture.token("platform-admin", node: nil)
        let body = #"{"branding":{"displayName":"\#(name)"}}"#
        let response = try service.handle(AdminFixture.request("PATCH", "/admin/v1/nodes/\(id)", token: token, ifMatch: "*", body: body), on: self.loop).wait()
        XCTAssertEqual(response.status, 200, response.body)
    }

    func displayName(_ id: String, _ latest: LatestTree) throws -> String? {
        latest.current.snapshot?.policy(try NodeID(id))?.branding.values[.displayName]
    }

    func redis(_ command: String...) throws -> RESPValue {
        try self.client.send(on: self.loop, command).wait()
    }

    func testANodeFollowsTheStoreByDeltasAlone() throws {
        let writer = self.node(holding: try AdminFixture.tree(revision: 0))
        XCTAssertEqual(try writer.feed.synchronize(reason: "test").wait(), 1, "seeded")
        let follower = self.node(holding: try AdminFixture.tree(revision: 0))
        XCTAssertEqual(try follower.feed.synchronize(reason: "test").wait(), 1)
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
}
