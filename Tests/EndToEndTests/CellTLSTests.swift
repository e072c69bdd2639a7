import Foundation
import TestCertificateAuthority
import UpstreamFixtures
import XCTest

/// `https` cells through the real binary, with real TLS backends on loopback: a CA bundle and a
/// server name, keep-alive over TLS, mutual TLS, each kind of handshake failure answered 502
/// `upstream-tls-failed` with nothing of its reason (which the log has), health checks over TLS,
/// and reloads that swap the CA bundle or the client certificate.
final class CellTLSTests: GatewayTestCase {
    /// The cells' CA and the server certificate its backends present (for `acme.cells.test`
    /// only: not for 127.0.0.1), the CA of the gateway's client certificates with two of them,
    /// and a CA nobody uses.
    private struct Material {
        let cells: TestCertificateAuthority
        let server: TestCertificateAuthority.Issued
        let clients: TestCertificateAuthority
        let gateway: TestCertificateAuthority.Issued
        let renewed: TestCertificateAuthority.Issued
        let stranger: TestCertificateAuthority
    }

    private static let material = Result<Material, any Error> {
        let cells = try TestCertificateAuthority(commonName: "cells CA")
        let clients = try TestCertificateAuthority(commonName: "gateway clients CA")
        return Material(
            cells: cells, server: try cells.issueServer(domains: ["acme.cells.test"]), clients: clients,
            gateway: try clients.issueClient(commonName: "gateway-eu"), renewed: try clients.issueClient(commonName: "gateway-eu-2"),
            stranger: try TestCertificateAuthority(commonName: "stranger CA")
        )
    }

    /// Starts one TLS backend.
    private func startTLSBackend(requiringClientCertificates: Bool = false, tls12Only: Bool = false) async throws -> DemoBackend {
        let material = try Self.material.get()
        let backend = try await DemoBackend.start(
            name: "acme-tls", group: Self.upstreamGroup,
            tls: .init(
                certificateChainPEM: material.server.chainPEM, keyPEM: material.server.keyPEM,
                requiredClientCAPEM: requiringClientCertificates ? material.clients.certificatePEM : nil, tls12Only: tls12Only
            )
        )
        self.backends.append(backend)
        return backend
    }

    /// The TLS files a test may name, next to the settings under `tls/`.
    private static func files() throws -> [String: String] {
        let material = try Self.material.get()
        return [
            "tls/cells-ca.pem": material.cells.certificatePEM, "tls/stranger-ca.pem": material.stranger.certificatePEM,
            "tls/gateway.pem": material.gateway.certificatePEM, "tls/gateway.key": material.gateway.keyPEM,
        ]
    }

    /// Settings with one dedicated `https` cell over `backend`, its `tls` block `tls` (YAML
    /// flow mapping) and, optionally, a health check.
    private func settings(_ backend: DemoBackend, tls: String, healthCheck: String = "") -> String {
        gatewaySettings(endpoints: [], cells: """
            cells:
              - id: dedicated-acme
                kind: dedicated
                region: eu-west
                endpoints: [https://127.0.0.1:\(backend.port)]
                tls: \(tls)
            \(healthCheck)defaultCell: dedicated-acme

            """)
    }

    private func startGateway(_ settings: String) throws {
        self.gateway = try GatewayProcess(settings: settings, files: try Self.files(), arguments: ["--watch-interval-ms", "0"])
    }

    /// Replaces the settings and reloads; waits until the gateway says it reloaded.
    private func reload(_ settings: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let before = self.gateway.log.components(separatedBy: "configuration reloaded").count
        try self.gateway.replaceFile("gateway.yaml", with: settings.replacingOccurrences(of: "PORT", with: "\(self.port)"))
        self.gateway.signal(SIGHUP)
        XCTAssertTrue(self.eventually(10) { self.gateway.log.components(separatedBy: "configuration reloaded").count > before }, "reloaded", file: file, line: line)
    }

    /// Asserts a 502 `upstream-tls-failed` that says nothing of why.
    private func assertTLSFailed(_ response: RawHTTPConnection.Response, file: StaticString = #filePath, line: UInt = #line) throws {
        try self.assertProblem(response, status: 502, slug: "upstream-tls-failed", file: file, line: line)
        for detail in ["acme.cells.test", "certificate", "CERTIFICATE", "SSL", "TLS", "alert", "handshake", "verify"] {
            XCTAssertFalse(response.text.contains(detail), "the answer leaks '\(detail)': \(response.text)", file: file, line: line)
        }
    }

    // MARK: - Served

    func testAnHTTPSCellWithACABundleIsServedOverOneKeptAliveConnection() async throws {
        let backend = try await self.startTLSBackend()
        try self.startGateway(self.settings(backend, tls: "{ caBundle: tls/cells-ca.pem, serverName: acme.cells.test }"))
        let client = try RawHTTPConnection(port: self.port)
        try client.send(requestText("POST", "/v1/ledger/entries", headers: [("X-Trace", "a")], body: "{\"amount\":12}"))
        let first = try client.readResponse()
        XCTAssertEqual(first.status, 200, first.text)
        XCTAssertEqual(first.header("x-backend"), "acme-tls")
        let seen = try SeenRequest(first)
        XCTAssertEqual(seen.method, "POST")
        XCTAssertEqual(seen.uri, "/v1/ledger/entries")
        XCTAssertEqual(seen.bodyBytes, 13)
        XCTAssertEqual(seen.value("x-trace"), "a")
        XCTAssertNotNil(seen.value("x-forwarded-for"))

        try client.send(requestText("GET", "/v1/ledger/entries/1"))
        let second = try client.readResponse()
        XCTAssertEqual(second.status, 200, second.text)
        XCTAssertEqual(try SeenRequest(second).uri, "/v1/ledger/entries/1")
        let statistics = backend.statistics
        XCTAssertEqual(statistics.requests, 2)
        XCTAssertEqual(statistics.connectionsAccepted, 1, "the second request reused the pooled connection")
        XCTAssertEqual(statistics.tlsHandshakes, 1, "one handshake for both requests")
    }

    // MARK: - Mutual TLS

    func testMutualTLSNeedsTheClientCertificateAndARenewedOneIsUsedAfterAReload() async throws {
        let backend = try await self.startTLSBackend(requiringClientCertificates: true)
        let withoutCertificate = self.settings(backend, tls: "{ caBundle: tls/cells-ca.pem, serverName: acme.cells.test }")
        try self.startGateway(withoutCertificate)

        // The cell asks for a client certificate the gateway does not have.
        try self.assertTLSFailed(try request(port: self.port, "GET", "/v1/ledger"))
        XCTAssertTrue(self.gateway.waitForLog("TLS with upstream https://127.0.0.1:\(backend.port) of cell dedicated-acme failed"), self.gateway.log)
        XCTAssertTrue(self.gateway.log.contains("CERTIFICATE_REQUIRED"), "the log says why: \(self.gateway.log)")

        try self.reload(self.settings(
            backend, tls: "{ caBundle: tls/cells-ca.pem, serverName: acme.cells.test, clientCertificate: tls/gateway.pem, clientKey: tls/gateway.key }"
        ))
        let served = try request(port: self.port, "GET", "/v1/ledger")
        XCTAssertEqual(served.status, 200, served.text)
        XCTAssertEqual(try served.json()["clientCertificate"] as? String, "gateway-eu")

        // The certificate is renewed in place: the files change, the settings file does not.
        let renewed = try Self.material.get().renewed
        try self.gateway.replaceFile("tls/gateway.pem", with: renewed.certificatePEM)
        try self.gateway.replaceFile("tls/gateway.key", with: renewed.keyPEM)
        let handshakes = backend.statistics.tlsHandshakes
        try self.reload(String(contentsOfFile: self.gateway.configPath, encoding: .utf8))
        for _ in 0..<4 {
            // Whichever event loop serves it, no connection made with the old certificate is reused.
            let response = try request(port: self.port, "GET", "/v1/ledger")
            XCTAssertEqual(response.status, 200, response.text)
            XCTAssertEqual(try response.json()["clientCertificate"] as? String, "gateway-eu-2")
        }
        XCTAssertGreaterThan(backend.statistics.tlsHandshakes, handshakes)
    }

    // MARK: - Handshake failures

    func testAnUntrustedCertificateOrAnotherNameIs502AndAReloadWithTheRightCABundleServes() async throws {
        let backend = try await self.startTLSBackend()
        try self.startGateway(self.settings(backend, tls: "{ caBundle: tls/stranger-ca.pem, serverName: acme.cells.test }"))
        try self.assertTLSFailed(try request(port: self.port, "POST", "/v1/ledger", body: "{}"))
        XCTAssertTrue(self.gateway.waitForLog("CERTIFICATE_VERIFY_FAILED"), self.gateway.log)

        try self.reload(self.settings(backend, tls: "{ caBundle: tls/cells-ca.pem, serverName: other.cells.test }"))
        try self.assertTLSFailed(try request(port: self.port, "GET", "/v1/ledger"))
        XCTAssertTrue(self.gateway.waitForLog("other.cells.test"), self.gateway.log)

        // An address without serverName: the certificate names acme.cells.test, not 127.0.0.1.
        try self.reload(self.settings(backend, tls: "{ caBundle: tls/cells-ca.pem }"))
        try self.assertTLSFailed(try request(port: self.port, "GET", "/v1/ledger"))

        try self.reload(self.settings(backend, tls: "{ caBundle: tls/cells-ca.pem, serverName: acme.cells.test }"))
        XCTAssertEqual(try request(port: self.port, "GET", "/v1/ledger").status, 200)
    }

    func testNoProtocolVersionInCommonIs502() async throws {
        let backend = try await self.startTLSBackend(tls12Only: true)
        try self.startGateway(self.settings(backend, tls: "{ caBundle: tls/cells-ca.pem, serverName: acme.cells.test, minimumVersion: TLSv1.3 }"))
        try self.assertTLSFailed(try request(port: self.port, "GET", "/v1/ledger"))
        XCTAssertTrue(self.gateway.waitForLog("TLS with upstream"), self.gateway.log)

        try self.reload(self.settings(backend, tls: "{ caBundle: tls/cells-ca.pem, serverName: acme.cells.test }"))
        XCTAssertEqual(try request(port: self.port, "GET", "/v1/ledger").status, 200, "TLS 1.2 is offered by default")
    }

    // MARK: - Health checks

    func testHealthChecksProbeOverTLS() async throws {
        let backend = try await self.startTLSBackend()
        let check = "    healthCheck: { path: /healthz, interval: 100ms, timeout: 100ms, healthyThreshold: 1, unhealthyThreshold: 1 }\n"
        try self.startGateway(self.settings(backend, tls: "{ caBundle: tls/cells-ca.pem, serverName: acme.cells.test }", healthCheck: check))
        XCTAssertEqual(try request(port: self.port, "GET", "/v1/ledger").status, 200)

        // The probes read the backend's answers over TLS: a 500 takes the endpoint out, a 200
        // brings it back.
        backend.answer(withStatus: 500)
        XCTAssertTrue(try self.eventually(5) { try request(port: self.port, "GET", "/v1/ledger").status == 503 })
        try self.assertProblem(try request(port: self.port, "GET", "/v1/ledger"), status: 503, slug: "no-healthy-upstream")
        backend.answer(withStatus: 200)
        XCTAssertTrue(try self.eventually(5) { try request(port: self.port, "GET", "/v1/ledger").status == 200 })

        // Probes that cannot complete a handshake take it out too, with the reason in the log.
        try self.reload(self.settings(backend, tls: "{ caBundle: tls/stranger-ca.pem, serverName: acme.cells.test }", healthCheck: check))
        XCTAssertTrue(self.gateway.waitForLog("CERTIFICATE_VERIFY_FAILED"), self.gateway.log)
        XCTAssertTrue(self.gateway.log.components(separatedBy: "endpoint unhealthy").count == 3, "a second time: \(self.gateway.log)")
        XCTAssertTrue(try self.eventually(5) { try request(port: self.port, "GET", "/v1/ledger").status == 503 })
    }
}
