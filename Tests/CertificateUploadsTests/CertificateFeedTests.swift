import CertificateUploads
import LogCapture
import Certificates
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import RedisClient
import RedisTestServer
import TestCertificateAuthority
import XCTest

/// The store's compare-and-set and the feed on a real redis-server: every change reaches the
/// feed's consumer as the whole served set, announced or (announcement missed) polled.
final class CertificateFeedTests: XCTestCase {
    static let authority = try! TestCertificateAuthority()
    static let p1 = try! authority.issueServer(domains: ["portal.p1.test"])
    static let p1Renewed = try! authority.issueServer(domains: ["portal.p1.test", "www.p1.test"])
    static let p2 = try! authority.issueServer(domains: ["portal.p2.test"])

    var server: RedisServer!
    var group: MultiThreadedEventLoopGroup!
    var client: RedisClient!
    let store = CertificateStore(keyPrefix: "erp-certificate-test")
    let deliveries = NIOLockedValueBox<[[UploadedCertificateRecord]]>([])
    let log = CapturedLog()
    var feed: CertificateFeed?

    var url: RedisURL { RedisURL(host: "127.0.0.1", port: self.server.port) }
    var loop: any EventLoop { self.group.next() }

    override func setUpWithError() throws {
        self.server = try RedisServer()
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.client = RedisClient(url: self.url, group: self.group)
    }

    override func tearDown() async throws {
        await self.feed?.shutdown()
        try await self.client.shutdown().get()
        try await self.group.shutdownGracefully()
        self.server.stop()
    }

    func startFeed(keyEncryptionKey: KeyEncryptionKey) throws -> CertificateFeed {
        let feed = CertificateFeed(client: self.client, url: self.url, store: self.store, loop: self.loop, logger: self.log.logger()) { [deliveries] set in
            deliveries.withLockedValue { $0.append(set) }
        }
        feed.adopt(tree: try CertificateFixtures.tree(), keyEncryptionKey: keyEncryptionKey)
        feed.start()
        self.feed = feed
        return feed
    }

    /// Waits (at most about 10 s) until the newest delivery satisfies `done`; returns it.
    @discardableResult
    func newestDelivery(until done: ([UploadedCertificateRecord]) -> Bool, file: StaticString = #filePath, line: UInt = #line) -> [UploadedCertificateRecord]? {
        for _ in 0..<500 {
            if let newest = self.deliveries.withLockedValue({ $0.last }), done(newest) { return newest }
            usleep(20_000)
        }
        XCTFail("no delivery satisfied the condition; deliveries: \(self.deliveries.withLockedValue { $0 })", file: file, line: line)
        return nil
    }

    func put(_ record: StoredCertificate, base: Int64) throws -> CertificateStore.ChangeResult {
        try self.store.change(domain: record.domain, base: base, record: record, audit: nil, client: self.client, on: self.loop).wait()
    }

    func testTheStoreWritesADomainOnlyFromTheVersionAChangeWasJudgedOn() throws {
        let kek = try CertificateFixtures.keyEncryptionKey()
        XCTAssertEqual(try self.store.current(domain: "portal.p1.test", client: self.client, on: self.loop).wait(), .init(version: 0, record: nil))
        let first = try CertificateFixtures.record(Self.p1, domain: "portal.p1.test", node: "p1", with: kek, version: 1)
        XCTAssertEqual(try self.put(first, base: 0), .committed(revision: 1))
        XCTAssertEqual(try self.put(first, base: 0), .conflict(current: 1), "a change judged on the empty domain does not overwrite")
        XCTAssertEqual(try self.store.current(domain: "portal.p1.test", client: self.client, on: self.loop).wait(), .init(version: 1, record: first))
        let deleted = try self.store.change(domain: "portal.p1.test", base: 1, record: nil, audit: ("erp-certificate-test:{admin}:audit:acme", "{}"), client: self.client, on: self.loop).wait()
        XCTAssertEqual(deleted, .committed(revision: 2))
        XCTAssertEqual(try self.store.current(domain: "portal.p1.test", client: self.client, on: self.loop).wait(), .init(version: 2, record: nil), "the version outlives the record")
        XCTAssertEqual(try self.put(first, base: 0), .conflict(current: 2), "a version is never given twice")
        XCTAssertEqual(try self.store.all(client: self.client, on: self.loop).wait().revision, 2)
        XCTAssertEqual(try self.client.send(on: self.loop, ["XLEN", "erp-certificate-test:{admin}:audit:acme"]).wait().int64, 1, "the audit record is written with the change")
    }

    func testEveryChangeReachesTheConsumerAsTheWholeServedSet() throws {
        let kek = try CertificateFixtures.keyEncryptionKey()
        _ = try self.startFeed(keyEncryptionKey: kek)
        XCTAssertEqual(self.newestDelivery { $0.isEmpty }, [], "the empty store is delivered once read")

        XCTAssertEqual(try self.put(try CertificateFixtures.record(Self.p1, domain: "portal.p1.test", node: "p1", with: kek, version: 1), base: 0), .committed(revision: 1))
        XCTAssertEqual(try self.put(try CertificateFixtures.record(Self.p2, domain: "portal.p2.test", node: "p2", with: kek, version: 1), base: 0), .committed(revision: 2))
        let both = self.newestDelivery { $0.count == 2 }
        XCTAssertEqual(both?.map(\.domain), ["portal.p1.test", "portal.p2.test"])
        XCTAssertEqual(both?.map(\.keyPEM), [Self.p1.keyPEM, Self.p2.keyPEM])

        // A renewal replaces the domain's certificate.
        XCTAssertEqual(try self.put(try CertificateFixtures.record(Self.p1Renewed, domain: "portal.p1.test", node: "p1", with: kek, version: 2), base: 1), .committed(revision: 3))
        let renewed = self.newestDelivery { $0.first?.version == 2 }
        XCTAssertEqual(renewed?.first?.summary.names, ["portal.p1.test", "www.p1.test"])
        XCTAssertEqual(renewed?.first?.keyPEM, Self.p1Renewed.keyPEM)

        // A deletion takes it out.
        XCTAssertEqual(try self.store.change(domain: "portal.p2.test", base: 1, record: nil, audit: nil, client: self.client, on: self.loop).wait(), .committed(revision: 4))
        XCTAssertEqual(self.newestDelivery { $0.count == 1 }?.map(\.domain), ["portal.p1.test"])

        // Never the same set twice in a row.
        let sets = self.deliveries.withLockedValue { $0 }
        XCTAssertEqual(sets.count, Set(sets).count, "\(sets)")
        XCTAssertFalse(self.log.text.contains("PRIVATE KEY"), self.log.text)
    }

    func testAMissedAnnouncementIsCaughtByThePoll() throws {
        let kek = try CertificateFixtures.keyEncryptionKey()
        _ = try self.startFeed(keyEncryptionKey: kek)
        self.newestDelivery { $0.isEmpty }
        // Written as the script writes, without the announcement.
        let record = try CertificateFixtures.record(Self.p1, domain: "portal.p1.test", node: "p1", with: kek, version: 1)
        for command in [["HSET", self.store.recordsKey, record.domain, record.storedText], ["HSET", self.store.versionsKey, record.domain, "1"], ["INCR", self.store.revisionKey]] {
            XCTAssertNil(try self.client.send(on: self.loop, command).wait().errorMessage)
        }
        XCTAssertEqual(self.newestDelivery { $0.count == 1 }?.map(\.domain), ["portal.p1.test"])
    }

    func testAStoreThatLostTheCertificatesGetsBackWhatTheNodeRead() throws {
        let kek = try CertificateFixtures.keyEncryptionKey()
        _ = try self.startFeed(keyEncryptionKey: kek)
        let record = try CertificateFixtures.record(Self.p1, domain: "portal.p1.test", node: "p1", with: kek, version: 1)
        XCTAssertEqual(try self.put(record, base: 0), .committed(revision: 1))
        self.newestDelivery { $0.count == 1 }
        let deliveries = self.deliveries.withLockedValue { $0.count }

        XCTAssertNil(try self.client.send(on: self.loop, ["FLUSHALL"]).wait().errorMessage)
        // Written back by the poll, under its revision and version: the domain's next change
        // still compares against version 1.
        var restored: (revision: Int64, records: [StoredCertificate], unreadable: Int)?
        for _ in 0..<500 where restored?.records.isEmpty ?? true {
            restored = try self.store.all(client: self.client, on: self.loop).wait()
            usleep(20_000)
        }
        XCTAssertEqual(restored?.revision, 1)
        XCTAssertEqual(restored?.records, [record])
        XCTAssertEqual(try self.store.current(domain: record.domain, client: self.client, on: self.loop).wait().version, 1)
        XCTAssertEqual(self.deliveries.withLockedValue { $0.count }, deliveries, "the served set was never taken down")
        XCTAssertTrue(self.log.text.contains("the store had lost the uploaded certificates"), self.log.text)
    }

    func testRecordsThatCannotBeServedAreLeftOutAndLoggedByDomainOnly() throws {
        let (kek, other) = (try CertificateFixtures.keyEncryptionKey(), try CertificateFixtures.keyEncryptionKey())
        let feed = try self.startFeed(keyEncryptionKey: kek)
        self.newestDelivery { $0.isEmpty }
        let foreign = try CertificateFixtures.record(Self.p2, domain: "portal.p2.test", node: "p2", with: other, version: 1)
        XCTAssertEqual(try self.put(foreign, base: 0), .committed(revision: 1))
        XCTAssertEqual(try self.put(try CertificateFixtures.record(Self.p1, domain: "portal.p1.test", node: "p1", with: kek, version: 1), base: 0), .committed(revision: 2))
        XCTAssertEqual(self.newestDelivery { $0.count == 1 }?.map(\.domain), ["portal.p1.test"])
        XCTAssertTrue(self.log.text.contains("uploaded certificate not served"), self.log.text)
        XCTAssertTrue(self.log.text.contains("domain=portal.p2.test"), self.log.text)
        XCTAssertTrue(self.log.text.contains("sealed under another key-encryption key (\(other.identifier))"), self.log.text)
        for secret in [Self.p1.keyPEM, Self.p2.keyPEM, foreign.sealedKey, "PRIVATE KEY"] {
            XCTAssertFalse(self.log.text.contains(secret), "a key or sealed key in the log")
        }

        // The portal domain moves to another node: not served from the tree that says so.
        let moved = try CertificateFixtures.tree(
            CertificateFixtures.treeYAML.replacingOccurrences(of: ", portalDomains: [portal.p1.test]", with: "")
                .replacingOccurrences(of: "id: c1, kind: customer, parent: p1, package: basic", with: "id: c1, kind: customer, parent: p1, package: basic, portalDomains: [portal.p1.test]")
        )
        feed.adopt(tree: moved, keyEncryptionKey: kek)
        XCTAssertEqual(self.newestDelivery { $0.isEmpty }, [])
        // The key-encryption key the other records were sealed with is adopted instead.
        feed.adopt(tree: try CertificateFixtures.tree(), keyEncryptionKey: other)
        XCTAssertEqual(self.newestDelivery { $0.count == 1 }?.map(\.domain), ["portal.p2.test"])
    }
}
