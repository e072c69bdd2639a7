import Foundation
import GatewayConfig
import NIOCore
import NIOHTTP1
import NIOPosix
import TestCertificateAuthority
import UpstreamFixtures
import XCTest

@testable import ProxyEngine

/// The real connector and health probe against a real TLS backend on loopback: the handshake is
/// part of connecting, each way it fails ends as the problem the data plane answers with, and
/// the connect timeout bounds a handshake that never ends.
final class UpstreamConnectorTests: XCTestCase {
    private static let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    /// `server` names `cell-a.test` only; `byAddress` names 127.0.0.1 only.
    private static let material: Result<
        (authority: TestCertificateAuthority, server: TestCertificateAuthority.Issued, byAddress: TestCertificateAuthority.Issued, other: TestCertificateAuthority),
        any Error
    > = Result {
        let authority = try TestCertificateAuthority()
        return (
            authority, try authority.issueServer(domains: ["cell-a.test"]), try authority.issueServer(domains: ["127.0.0.1"]),
            try TestCertificateAuthority(commonName: "another CA")
        )
    }

    private var backend: DemoBackend!

    override func setUp() async throws {
        let (_, server, _, _) = try Self.material.get()
        self.backend = try await DemoBackend.start(
            name: "tls-backend", group: Self.group, tls: .init(certificateChainPEM: server.chainPEM, keyPEM: server.keyPEM)
        )
    }

    override func tearDown() async throws {
        await self.backend?.stop()
    }

    private func context(trusting authority: TestCertificateAuthority, serverName: String? = nil) throws -> UpstreamTLSContext {
        try UpstreamTLSContext(settings: .init(caBundle: .init(path: authority.certificatePath, pem: authority.certificatePEM), serverName: serverName))
    }

    private func connect(_ target: UpstreamTarget, timeout: TimeAmount = .seconds(2)) -> Result<any Channel, any Error> {
        let loop = Self.group.next()
        return Result { try TCPUpstreamConnector().connect(to: target, timeout: timeout, on: loop) { _ in }.wait() }
    }

    private func endpoint(_ port: Int) -> GatewaySettings.Endpoint { .init(host: "127.0.0.1", port: port) }

    func testATrustedEndpointNamedByServerNameOrByItsAddressIsConnected() async throws {
        let (authority, _, byAddress, _) = try Self.material.get()
        let named = try self.connect(UpstreamTarget(self.endpoint(self.backend.port), tls: try self.context(trusting: authority, serverName: "cell-a.test"))).get()
        XCTAssertTrue(named.isActive)
        try await named.close()

        let addressed = try await DemoBackend.start(name: "by-address", group: Self.group, tls: .init(certificateChainPEM: byAddress.chainPEM, keyPEM: byAddress.keyPEM))
        let channel = try self.connect(UpstreamTarget(self.endpoint(addressed.port), tls: try self.context(trusting: authority))).get()
        XCTAssertTrue(channel.isActive, "no serverName: the certificate names the address connected to")
        try await channel.close()
        await addressed.stop()
    }

    func testEachHandshakeFailureIsUpstreamTLSFailedWithItsReason() throws {
        let (authority, _, _, other) = try Self.material.get()
        let cases: [(String, UpstreamTLSContext)] = [
            ("CERTIFICATE_VERIFY_FAILED", try self.context(trusting: other, serverName: "cell-a.test")),
            ("cell-b.test", try self.context(trusting: authority, serverName: "cell-b.test")),
            // No serverName for an address: the certificate must name the address, and does not.
            ("failedToValidateHostname", try self.context(trusting: authority)),
        ]
        for (reason, context) in cases {
            let result = self.connect(UpstreamTarget(self.endpoint(self.backend.port), tls: context))
            guard case .failure(let error) = result else {
                XCTFail("connected though \(reason)")
                continue
            }
            XCTAssertTrue(error is UpstreamTLSHandshakeError, "\(error)")
            XCTAssertTrue("\(error)".contains(reason), "\(error)")
            XCTAssertEqual(UpstreamPool.problem(forConnectError: error), .upstreamTlsFailed)
        }
    }

    func testATLSClientOfAPlainBackendFailsItsHandshake() async throws {
        let (authority, _, _, _) = try Self.material.get()
        let plain = try await DemoBackend.start(name: "plain", group: Self.group)
        defer { Task { await plain.stop() } }
        let result = self.connect(UpstreamTarget(self.endpoint(plain.port), tls: try self.context(trusting: authority)))
        XCTAssertEqual(result.failure.map(UpstreamPool.problem(forConnectError:)), .upstreamTlsFailed, "\(result)")
    }

    func testAnEndpointThatNeverAnswersTheHandshakeIsAConnectTimeout() throws {
        let (authority, _, _, _) = try Self.material.get()
        // Accepts and reads, never writes.
        let silent = try ServerBootstrap(group: Self.group).bind(host: "127.0.0.1", port: 0).wait()
        defer { silent.close(promise: nil) }
        let result = self.connect(UpstreamTarget(self.endpoint(silent.localAddress!.port!), tls: try self.context(trusting: authority)), timeout: .milliseconds(200))
        XCTAssertEqual(result.failure.map(UpstreamPool.problem(forConnectError:)), .upstreamConnectTimeout, "\(result)")
    }

    func testARefusedConnectionIsUnreachableEvenForATLSTarget() throws {
        let (authority, _, _, _) = try Self.material.get()
        let closed = try ServerBootstrap(group: Self.group).bind(host: "127.0.0.1", port: 0).wait()
        let port = closed.localAddress!.port!
        try closed.close().wait()
        let result = self.connect(UpstreamTarget(self.endpoint(port), tls: try self.context(trusting: authority)))
        XCTAssertEqual(result.failure.map(UpstreamPool.problem(forConnectError:)), .upstreamUnreachable, "\(result)")
    }

    func testAHealthProbeTravelsOverTLSAndFailsOnAnUntrustedCertificate() throws {
        let (authority, _, _, other) = try Self.material.get()
        let check = GatewaySettings.HealthCheck(path: "/healthz", interval: .seconds(5), timeout: .seconds(2), healthyThreshold: 1, unhealthyThreshold: 1)
        let loop = Self.group.next()
        let trusted = UpstreamTarget(self.endpoint(self.backend.port), tls: try self.context(trusting: authority, serverName: "cell-a.test"))
        XCTAssertEqual(try loop.flatSubmit { HealthChecker.probe(trusted, check: check, on: loop) }.wait(), 200)
        let untrusted = UpstreamTarget(self.endpoint(self.backend.port), tls: try self.context(trusting: other, serverName: "cell-a.test"))
        XCTAssertThrowsError(try loop.flatSubmit { HealthChecker.probe(untrusted, check: check, on: loop) }.wait()) { error in
            XCTAssertTrue(error is UpstreamTLSHandshakeError, "\(error)")
        }
    }

    func testTargetsAreEqualForTheSameEndpointAndTheSameContextOnly() throws {
        let (authority, _, _, _) = try Self.material.get()
        let first = try self.context(trusting: authority)
        let second = try self.context(trusting: authority)
        let endpoint = self.endpoint(9443)
        XCTAssertEqual(UpstreamTarget(endpoint, tls: first), UpstreamTarget(endpoint, tls: first))
        XCTAssertNotEqual(UpstreamTarget(endpoint, tls: first), UpstreamTarget(endpoint, tls: second), "a context compiled again is another pool")
        XCTAssertNotEqual(UpstreamTarget(endpoint, tls: first), UpstreamTarget(endpoint))
        XCTAssertEqual(Set([UpstreamTarget(endpoint, tls: first), UpstreamTarget(endpoint, tls: first), UpstreamTarget(endpoint)]).count, 2)
    }
}

extension Result {
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
