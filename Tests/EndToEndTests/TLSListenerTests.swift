import Foundation
import TestCertificateAuthority
import XCTest

/// TLS at the data-plane listener of the real binary, with certificates from a test CA and the
/// clients people use: `curl` (which checks the name against the certificate) and
/// `openssl s_client` (SNI, versions, ciphers, resumption, alerts).
final class TLSListenerTests: GatewayTestCase {
    static let authority = try! TestCertificateAuthority()
    /// The default, and two partners' portal domains (one with a wildcard for its sub-portals).
    static let gatewayCertificate = try! authority.issueServer(domains: ["gateway.test"])
    static let northwindCertificate = try! authority.issueServer(domains: ["erp.northwind.test"])
    static let fabrikamCertificate = try! authority.issueServer(domains: ["erp.fabrikam.test", "*.fabrikam.test"])

    var caFile: String { Self.authority.certificatePath }

    var opsPort = 0

    /// The certificate files as the gateway's directory holds them (replaced there on reload).
    static var certificateFiles: [String: String] {
        [
            "tls/gateway.pem": gatewayCertificate.chainPEM, "tls/gateway.key": gatewayCertificate.keyPEM,
            "tls/northwind.pem": northwindCertificate.chainPEM, "tls/northwind.key": northwindCertificate.keyPEM,
            "tls/fabrikam.pem": fabrikamCertificate.chainPEM, "tls/fabrikam.key": fabrikamCertificate.keyPEM,
        ]
    }

    static let tlsSettings = """
        { certificate: tls/gateway.pem, key: tls/gateway.key, \
        certificates: [{ certificate: tls/northwind.pem, key: tls/northwind.key }, { certificate: tls/fabrikam.pem, key: tls/fabrikam.key }] }
        """

    /// A TLS gateway in front of one backend, with an ops listener.
    func startTLSGateway(_ overrides: [String: [String: String]] = [:], tenantTree: String? = nil, extra: String = "", files: [String: String] = [:]) async throws {
        if self.backends.isEmpty { try await self.startBackends(1) }
        self.opsPort = try freePort()
        var overrides = overrides
        overrides["listener", default: [:]]["tls"] = Self.tlsSettings
        self.gateway = try GatewayProcess(
            settings: gatewaySettings(endpoints: self.backends.map(\.port), overrides, tenantTree: tenantTree, extra: extra)
                + "ops:\n  address: 127.0.0.1\n  port: \(self.opsPort)\n",
            files: Self.certificateFiles.merging(files) { _, new in new },
            arguments: ["--watch-interval-ms", "0"]
        )
    }

    func served(_ serverName: String?) throws -> String? {
        OpenSSLClient.servedCertificate(try OpenSSLClient.run(port: self.port, serverName: serverName))
    }

    // MARK: - Certificates by name

    func testSNIPicksEachPartnersCertificateAndTheDefaultOtherwise() async throws {
        try await self.startTLSGateway()
        XCTAssertEqual(try self.served("erp.northwind.test"), Self.pemBlock(Self.northwindCertificate))
        XCTAssertEqual(try self.served("erp.fabrikam.test"), Self.pemBlock(Self.fabrikamCertificate))
        XCTAssertEqual(try self.served("clinics.fabrikam.test"), Self.pemBlock(Self.fabrikamCertificate), "the wildcard")
        XCTAssertEqual(try self.served("unknown.test"), Self.pemBlock(Self.gatewayCertificate), "an unknown name gets the default")
        XCTAssertEqual(try self.served(nil), Self.pemBlock(Self.gatewayCertificate), "no SNI gets the default")

        // curl checks the name against the certificate, as a browser does, and gets through.
        for host in ["erp.northwind.test", "erp.fabrikam.test", "gateway.test"] {
            let (status, output) = try curlHTTPS(port: self.port, host: host, path: "/anything", caFile: self.caFile)
            XCTAssertEqual(status, 0, output)
            XCTAssertTrue(output.hasPrefix("HTTP/1.1 200") || output.hasPrefix("HTTP/2 200"), output)
        }
    }

    func testOnlyTLS12And13AreSpokenWithForwardSecretAEADSuites() async throws {
        try await self.startTLSGateway()
        // SECLEVEL=0 lets the client offer what its own defaults would not: the refusal is the server's.
        for version in ["-tls1", "-tls1_1"] {
            let output = try OpenSSLClient.run(port: self.port, serverName: "gateway.test", arguments: [version, "-cipher", "DEFAULT@SECLEVEL=0"])
            XCTAssertTrue(output.contains("alert protocol version"), "\(version) must be refused:\n\(output)")
            XCTAssertNil(OpenSSLClient.servedCertificate(output))
        }
        let tls12 = try OpenSSLClient.run(port: self.port, serverName: "gateway.test", arguments: ["-tls1_2", "-CAfile", self.caFile])
        XCTAssertTrue(tls12.contains("Protocol  : TLSv1.2") || tls12.contains("New, TLSv1.2"), tls12)
        XCTAssertTrue(tls12.contains("Cipher is ECDHE-ECDSA-AES"), tls12)
        XCTAssertTrue(tls12.contains("Verify return code: 0 (ok)"), tls12)
        let tls13 = try OpenSSLClient.run(port: self.port, serverName: "gateway.test", arguments: ["-tls1_3", "-alpn", "http/1.1"])
        XCTAssertTrue(tls13.contains("New, TLSv1.3"), tls13)
        XCTAssertTrue(tls13.contains("ALPN protocol: http/1.1"), tls13)
        // A CBC suite without forward secrecy's AEAD is not among them.
        let cbc = try OpenSSLClient.run(port: self.port, serverName: "gateway.test", arguments: ["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0"])
        XCTAssertTrue(cbc.contains("alert handshake failure") || cbc.contains("no shared cipher"), cbc)
    }

    func testSessionsResume() async throws {
        try await self.startTLSGateway()
        let directory = self.gateway.directory
        for version in ["-tls1_2", "-tls1_3"] {
            let session = directory.appendingPathComponent("session\(version)").path
            // A request, so that TLS 1.3's tickets (sent after the handshake) arrive before the close.
            let ask = "GET /resume HTTP/1.1\r\nHost: erp.northwind.test\r\nConnection: close\r\n\r\n"
            let first = try OpenSSLClient.run(port: self.port, serverName: "erp.northwind.test", arguments: [version, "-ign_eof", "-sess_out", session], input: ask)
            XCTAssertTrue(first.contains("\nNew, TLSv1."), first)
            let second = try OpenSSLClient.run(port: self.port, serverName: "erp.northwind.test", arguments: [version, "-ign_eof", "-sess_in", session], input: ask)
            XCTAssertTrue(second.contains("\nReused, TLSv1."), "\(version) did not resume:\n\(second)")
            XCTAssertTrue(second.contains("HTTP/1.1 200"), second)
        }
    }

    // MARK: - Reload

    func testAReloadSwapsACertificateWithoutDroppingAnOpenConnection() async throws {
        try await self.startTLSGateway()
        let open = try OpenSSLClient(port: self.port, serverName: "erp.northwind.test")
        open.send("GET /before HTTP/1.1\r\nHost: erp.northwind.test\r\n\r\n")
        XCTAssertTrue(open.waitFor("HTTP/1.1 200"), open.text)
        XCTAssertEqual(OpenSSLClient.servedCertificate(open.text), Self.pemBlock(Self.northwindCertificate))

        let renewed = try Self.authority.issueServer(domains: ["erp.northwind.test"])
        try self.gateway.replaceFile("tls/northwind.pem", with: renewed.chainPEM)
        try self.gateway.replaceFile("tls/northwind.key", with: renewed.keyPEM)
        self.gateway.signal(SIGHUP)
        XCTAssertTrue(self.gateway.waitForLog("configuration reloaded"), self.gateway.log)

        XCTAssertEqual(try self.served("erp.northwind.test"), Self.pemBlock(renewed), "new handshakes present the renewed certificate")
        open.send("GET /after HTTP/1.1\r\nHost: erp.northwind.test\r\n\r\n")
        XCTAssertTrue(open.waitFor("HTTP/1.1 200", count: 2), "the open connection keeps serving:\n\(open.text)")
        XCTAssertTrue(open.isRunning)
        XCTAssertEqual(self.backends[0].statistics.requests, 2)
    }

    func testACertificateFileThatCannotBeServedOnReloadKeepsTheOldOne() async throws {
        try await self.startTLSGateway()
        // The key of another certificate: a renewal caught halfway, say.
        try self.gateway.replaceFile("tls/northwind.key", with: Self.fabrikamCertificate.keyPEM)
        self.gateway.signal(SIGHUP)
        XCTAssertTrue(self.gateway.waitForLog("the key does not belong to the chain's first certificate"), self.gateway.log)
        XCTAssertTrue(self.gateway.log.contains("configuration rejected; still serving the previous one"), self.gateway.log)
        XCTAssertTrue(self.gateway.log.contains("listener.tls.certificates[0]"), self.gateway.log)
        XCTAssertEqual(try self.served("erp.northwind.test"), Self.pemBlock(Self.northwindCertificate), "the certificate in force keeps serving")
        XCTAssertTrue(try self.ops("/metrics").text.contains("erp_gateway_configuration_reloads_total{result=\"rejected\"} 1"))

        // Fixed, the next reload takes it.
        try self.gateway.replaceFile("tls/northwind.key", with: Self.northwindCertificate.keyPEM)
        self.gateway.signal(SIGHUP)
        XCTAssertTrue(self.gateway.waitForLog("configuration reloaded"), self.gateway.log)
        XCTAssertEqual(try self.served("erp.northwind.test"), Self.pemBlock(Self.northwindCertificate))
    }

    // MARK: - Requests over TLS

    func testRequestsOverTLSCarryHTTPSAsTheirForwardedProto() async throws {
        try await self.startTLSGateway()
        let (status, output) = try curlHTTPS(
            port: self.port, host: "erp.northwind.test", path: "/echo", caFile: self.caFile, headers: [("X-Forwarded-Proto", "http")]
        )
        XCTAssertEqual(status, 0, output)
        let body = try XCTUnwrap(output.range(of: "\r\n\r\n").map { output[$0.upperBound...] })
        let seen = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
        let headers = (seen["headers"] as? [[String]] ?? []).filter { $0[0].lowercased() == "x-forwarded-proto" }.map { $0[1] }
        XCTAssertEqual(headers, ["https"], "the client's claim is replaced by what the gateway saw")
    }

    func testTheTokenAndQuotaFlowWorksOverTLSWithHTTP2AndHTTP1() async throws {
        let redis = try RedisProcess()
        defer { redis.stop() }
        try await self.startBackends(1)
        try await self.startTLSGateway(tenantTree: "tenants.yaml", extra: SecurityMatrixTests.platformIssuer + redis.settings, files: ["tenants.yaml": QuotaTests.tree])
        let token = try TestIdentity.mint(issuer: "https://id.acme.test", key: TestIdentity.acmeOld.privateKey, kid: "acme-1", tenant: "c1")
        // ALPN: HTTP/2 when the client offers it (curl does by default), HTTP/1.1 otherwise.
        for (http2, statusLine) in [(true, "HTTP/2 200"), (false, "HTTP/1.1 200")] {
            let (status, output) = try curlHTTPS(
                port: self.port, host: "erp.northwind.test", path: "/v1/ledger", caFile: self.caFile, headers: [("Authorization", "Bearer \(token)")],
                http2: http2
            )
            XCTAssertEqual(status, 0, output)
            XCTAssertTrue(output.hasPrefix(statusLine), output)
            XCTAssertTrue(output.lowercased().contains("\nratelimit-policy:"), "admitted through the quota store:\n\(output)")
            XCTAssertTrue(output.contains("x-erp-tenant"), "forwarded with the tenant context:\n\(output)")
            let echoed = try XCTUnwrap(output.range(of: "\r\n\r\n").map { output[$0.upperBound...] })
            XCTAssertTrue(echoed.lowercased().contains("x-forwarded-proto\",\"https"), "over \(statusLine): \(echoed)")
            let unauthenticated = try curlHTTPS(port: self.port, host: "erp.northwind.test", path: "/v1/ledger", caFile: self.caFile, http2: http2)
            XCTAssertTrue(unauthenticated.output.contains("urn:erp-gateway:problem:token-missing"), unauthenticated.output)
            XCTAssertTrue(unauthenticated.output.hasPrefix(http2 ? "HTTP/2 401" : "HTTP/1.1 401"), unauthenticated.output)
        }
        XCTAssertEqual(self.backends[0].statistics.requests, 2)
    }

    // MARK: - Deadlines and draining

    func testAClientThatNeverFinishesItsHandshakeIsClosedAfterTheHeaderReadTimeout() async throws {
        try await self.startTLSGateway(["timeouts": ["headerRead": "300ms"]])
        let silent = try RawHTTPConnection(port: self.port)
        XCTAssertTrue(silent.waitForClose(seconds: 5), "a TCP connection that never says hello is closed")
        // Half a hello is no better.
        let partial = try RawHTTPConnection(port: self.port)
        try partial.send([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03])
        XCTAssertTrue(partial.waitForClose(seconds: 5))
        // A client that does finish its handshake still gets its full header-read time.
        XCTAssertEqual(try curlHTTPS(port: self.port, host: "gateway.test", path: "/ok", caFile: self.caFile).status, 0)
    }

    func testDrainingClosesIdleTLSConnectionsWithCloseNotify() async throws {
        try await self.startTLSGateway()
        let open = try OpenSSLClient(port: self.port, serverName: "erp.northwind.test", arguments: ["-msg"])
        open.send("GET /idle HTTP/1.1\r\nHost: erp.northwind.test\r\n\r\n")
        XCTAssertTrue(open.waitFor("HTTP/1.1 200"), open.text)
        let started = Date()
        XCTAssertEqual(self.gateway.stop(), 0)
        XCTAssertLessThan(Date().timeIntervalSince(started), 4, "an idle TLS connection does not hold the drain")
        XCTAssertTrue(open.waitForExit(), open.text)
        XCTAssertTrue(open.text.contains("<<< TLS 1.3, Alert [length 0002], warning close_notify"), open.text)
    }

    // MARK: - Expiry

    func testACertificateNearItsEndIsLoggedAndEveryCertificatesExpiryIsExported() async throws {
        let ending = try Self.authority.issueServer(domains: ["erp.ending.test"], validUntil: Date(timeIntervalSinceNow: 5 * 86400))
        try await self.startTLSGateway(files: ["tls/fabrikam.pem": ending.chainPEM, "tls/fabrikam.key": ending.keyPEM])
        XCTAssertTrue(self.gateway.waitForLog("TLS certificate expires soon"), self.gateway.log)
        XCTAssertTrue(self.gateway.log.contains("name=erp.ending.test"), self.gateway.log)
        XCTAssertFalse(self.gateway.log.contains("name=erp.northwind.test"), "only the one near its end")

        let metrics = try self.ops("/metrics").text
        let series = metrics.split(separator: "\n").filter { $0.hasPrefix("erp_gateway_tls_certificate_expiry_timestamp_seconds{") }
        XCTAssertEqual(series.count, 3, metrics)
        for name in ["gateway.test", "erp.northwind.test", "erp.ending.test"] {
            XCTAssertTrue(series.contains { $0.contains("name=\"\(name)\"") && $0.contains("source=\"file\"") }, "\(name):\n\(series)")
        }
        let exposition = self.gateway.directory.appendingPathComponent("metrics.txt")
        try metrics.write(to: exposition, atomically: true, encoding: .utf8)
        let (lintStatus, lint) = try runCommand(URL(fileURLWithPath: "/bin/sh"), ["-c", "/usr/bin/promtool check metrics < '\(exposition.path)'"])
        XCTAssertEqual(lintStatus, 0, lint)
        XCTAssertEqual(lint.trimmingCharacters(in: .whitespacesAndNewlines), "", lint)

        // A certificate that goes away on reload takes its series with it.
        try self.gateway.replaceFile("tls/fabrikam.pem", with: Self.fabrikamCertificate.chainPEM)
        try self.gateway.replaceFile("tls/fabrikam.key", with: Self.fabrikamCertificate.keyPEM)
        self.gateway.signal(SIGHUP)
        XCTAssertTrue(self.gateway.waitForLog("configuration reloaded"), self.gateway.log)
        let after = try self.ops("/metrics").text
        XCTAssertFalse(after.contains("name=\"erp.ending.test\""), after)
        XCTAssertTrue(after.contains("name=\"erp.fabrikam.test\""), after)
    }

    // MARK: - check

    func testCheckNamesWhatEachCertificateCoversAndRefusesOneThatCannotBeServed() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("erp-gateway-tls-check-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let expired = try Self.authority.issueServer(
            domains: ["old.test"], validFrom: Date(timeIntervalSinceNow: -20 * 86400), validUntil: Date(timeIntervalSinceNow: -86400)
        )
        let ending = try Self.authority.issueServer(domains: ["soon.test"], validUntil: Date(timeIntervalSinceNow: 3 * 86400))
        var files = Self.certificateFiles
        files["tls/ending.pem"] = ending.chainPEM
        files["tls/ending.key"] = ending.keyPEM
        let settings = gatewaySettings(endpoints: [9], ["listener": ["tls": Self.tlsSettings.replacingOccurrences(of: "tls/fabrikam", with: "tls/ending")]])
            .replacingOccurrences(of: "PORT", with: "1")
        try Self.write(settings, files: files, to: directory)
        let config = directory.appendingPathComponent("gateway.yaml").path

        let (status, output) = try runCommand(GatewayProcess.binary, ["check", "--config", config])
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(output.contains("listener.tls.certificates[0]: \(directory.path)/tls/northwind.pem: covers erp.northwind.test;"), output)
        XCTAssertTrue(output.contains("warning: \(config):5:1: listener.tls.certificates[1]: '\(directory.path)/tls/ending.pem' expires in "), output)
        XCTAssertTrue(output.contains("with TLS 1.2+ and 3 certificates"), output)

        // An expired leaf, and a key that belongs to another certificate.
        files["tls/ending.pem"] = expired.chainPEM
        files["tls/ending.key"] = expired.keyPEM
        files["tls/northwind.key"] = Self.fabrikamCertificate.keyPEM
        try Self.write(settings, files: files, to: directory)
        let (refused, errors) = try runCommand(GatewayProcess.binary, ["check", "--config", config])
        XCTAssertEqual(refused, 2, errors)
        XCTAssertTrue(errors.contains("listener.tls.certificates[0]: '\(directory.path)/tls/northwind.key': the key does not belong to the chain's first certificate"), errors)
        XCTAssertTrue(errors.contains("listener.tls.certificates[1]: '\(directory.path)/tls/ending.pem' expired at"), errors)
        XCTAssertTrue(errors.contains("2 errors"), errors)
    }

    // MARK: - Helpers

    static func pemBlock(_ issued: TestCertificateAuthority.Issued) -> String? {
        OpenSSLClient.servedCertificate(issued.certificatePEM)
    }

    func ops(_ target: String) throws -> RawHTTPConnection.Response {
        try request(port: self.opsPort, "GET", target)
    }

    static func write(_ settings: String, files: [String: String], to directory: URL) throws {
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("tls"), withIntermediateDirectories: true)
        try settings.write(to: directory.appendingPathComponent("gateway.yaml"), atomically: true, encoding: .utf8)
        for (name, contents) in files {
            try contents.write(to: directory.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
    }
}
