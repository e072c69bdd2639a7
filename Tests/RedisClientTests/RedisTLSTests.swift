import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import RedisTestServer
import TestCertificateAuthority
import XCTest
@testable import RedisClient

/// `rediss://`: the URL forms, and a real redis-server behind a TLS port whose certificate a
/// test CA issued for `redis.test` (and no address). Debian's redis-server is built without TLS
/// (`tls-port` is an unknown directive), so the TLS port is `RedisTLSTerminator`: swift-nio-ssl's
/// server side in front of the server's plain port.
final class RedisTLSTests: XCTestCase {
    func testTheTLSSchemesReadLikeThePlainOnes() throws {
        let url = try RedisURL("rediss://gateway:pw@cache.internal:6380/2")
        XCTAssertEqual(url.tls, RedisTLS())
        XCTAssertEqual(url.topology, .standalone)
        XCTAssertEqual(url.description, "rediss://gateway:***@cache.internal:6380/2")
        XCTAssertEqual(url.standalone(at: .init(host: "10.0.0.2", port: 6379)).tls, RedisTLS(), "a server found through the URL keeps its TLS")

        let sentinel = try RedisURL("REDISS-SENTINEL://10.0.0.1,10.0.0.2:26380/erp")
        XCTAssertEqual(sentinel.topology, .sentinel(masterName: "erp"))
        XCTAssertEqual(sentinel.nodes, [.init(host: "10.0.0.1", port: 26379), .init(host: "10.0.0.2", port: 26380)])
        XCTAssertNotNil(sentinel.tls)
        XCTAssertEqual(sentinel.description, "rediss-sentinel://10.0.0.1:26379,10.0.0.2:26380/erp/0")
        XCTAssertNil(try RedisURL("redis://h").tls)
    }

    var authority: TestCertificateAuthority!
    var server: RedisServer!
    var tlsPort = 0
    var group: MultiThreadedEventLoopGroup!
    var terminator: RedisTLSTerminator!

    override func setUpWithError() throws {
        try super.setUpWithError()
        guard self.name.contains("Server") else { return }
        self.authority = try TestCertificateAuthority()
        let issued = try self.authority.issueServer(domains: ["redis.test"])
        self.server = try RedisServer()
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.terminator = try RedisTLSTerminator(certificateChainPath: issued.chainPath, keyPath: issued.keyPath, forwardingTo: self.server.port, group: self.group)
        self.tlsPort = self.terminator.port
    }

    override func tearDownWithError() throws {
        try self.terminator?.close()
        self.server?.stop()
        try self.group?.syncShutdownGracefully()
        try super.tearDownWithError()
    }

    func context(trusting caPath: String) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .file(caPath)
        return try NIOSSLContext(configuration: configuration)
    }

    func ping(_ tls: RedisTLS?, host: String = "127.0.0.1") throws -> Result<RESPValue, any Error> {
        var url = try RedisURL("rediss://\(host):\(self.tlsPort)")
        url.tls = tls
        let client = RedisClient(url: url, group: self.group, configuration: RedisClient.Configuration(connectTimeout: .seconds(2)))
        defer { _ = try? value(of: client.shutdown()) }
        return try result(of: client.send(on: self.group.next(), ["PING"]))
    }

    func testTheServerIsSpokenToOverTLSWhenItsCertificateIsTrusted() throws {
        let trusted = try self.context(trusting: self.authority.certificatePath)
        XCTAssertEqual(try self.ping(RedisTLS(context: trusted, serverName: "redis.test")).get(), .simpleString("PONG"))
    }

    func testTheServerIsRefusedWhenItsCertificateIsNotTrustedOrNamesAnotherServer() throws {
        // The system store does not know the test CA.
        XCTAssertEqual(try self.ping(RedisTLS()).failure as? RedisClientError, .connectionFailed)
        let other = try TestCertificateAuthority(commonName: "another CA")
        XCTAssertEqual(try self.ping(RedisTLS(context: try self.context(trusting: other.certificatePath))).failure as? RedisClientError, .connectionFailed)
        let trusted = try self.context(trusting: self.authority.certificatePath)
        XCTAssertEqual(try self.ping(RedisTLS(context: trusted, serverName: "other.test")).failure as? RedisClientError, .connectionFailed)
        // Reached by address without a server name: the certificate would have to list 127.0.0.1.
        XCTAssertEqual(try self.ping(RedisTLS(context: trusted)).failure as? RedisClientError, .connectionFailed)
        // Plain TCP to the TLS port gets no answer it can read.
        var plain = try RedisURL("redis://127.0.0.1:\(self.tlsPort)")
        plain.tls = nil
        let client = RedisClient(url: plain, group: self.group, configuration: RedisClient.Configuration(connectTimeout: .seconds(1)))
        defer { _ = try? value(of: client.shutdown()) }
        XCTAssertNotNil(try result(of: client.send(on: self.group.next(), ["PING"])).failure)
    }
}

private extension Result {
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
