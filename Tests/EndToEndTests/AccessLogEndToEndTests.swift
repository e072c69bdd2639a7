import Foundation
import XCTest

/// The access log of the running gateway: one JSON object per request on its log output, for
/// relayed, refused and failed requests, with no token and no query anywhere in the log.
final class AccessLogEndToEndTests: GatewayTestCase {
    /// The log's access lines, parsed (after the gateway stopped, so every line is written).
    private func accessLines(_ log: String) throws -> [[String: Any]] {
        try log.split(separator: "\n").filter { $0.hasPrefix("{") && $0.contains("\"outcome\"") }.map { line in
            try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not a JSON object: \(line)")
        }
    }

    private func assertTimestamp(_ value: Any?, file: StaticString = #filePath, line: UInt = #line) {
        let text = value as? String ?? ""
        XCTAssertNotNil(text.range(of: #"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"#, options: .regularExpression), text, file: file, line: line)
    }

    func testRelayedAndRefusedRequestsAreLoggedAsJSONWithoutTokensOrQueries() async throws {
        try await self.startBackends(1)
        let settings = gatewaySettings(
            endpoints: self.backends.map(\.port), tenantTree: "tenants.yaml", extra: "accessLog:\n  enabled: true\n"
        )
        self.gateway = try GatewayProcess(settings: settings, files: ["tenants.yaml": SecurityMatrixTests.tree], arguments: ["--log-format", "json"])
        let token = try TestIdentity.mint(issuer: "https://id.acme.test", key: TestIdentity.acmeOld.privateKey, kid: "acme-1", tenant: "c1")
        // Signed with another key than its kid names: refused with 401.
        let forged = try TestIdentity.mint(issuer: "https://id.acme.test", key: TestIdentity.acmeNew.privateKey, kid: "acme-1", tenant: "c1")

        let relayed = try request(port: self.port, "GET", "/v1/ledger?page=2&secret=hunter2", headers: [("Authorization", "Bearer \(token)")])
        XCTAssertEqual(relayed.status, 200, relayed.text)
        let refused = try request(port: self.port, "GET", "/v1/ledger", headers: [("Authorization", "Bearer \(forged)")])
        XCTAssertEqual(refused.status, 401, refused.text)
        XCTAssertEqual(self.gateway.stop(), 0)

        let log = self.gateway.log
        for secret in [token, forged, String(token.split(separator: ".").last ?? ""), "hunter2", "secret="] {
            XCTAssertFalse(log.contains(secret), "the log holds '\(secret.prefix(12))…'")
        }
        // --log-format json: every line of the process's output is a JSON object.
        for line in log.split(separator: "\n") {
            XCTAssertNotNil(try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not JSON: \(line)")
        }
        let lines = try self.accessLines(log)
        XCTAssertEqual(lines.count, 2, log)
        guard lines.count == 2 else { return }

        let ok = lines[0]
        self.assertTimestamp(ok["time"])
        XCTAssertEqual(ok["requestId"] as? String, relayed.header("x-request-id"))
        XCTAssertEqual((ok["traceId"] as? String)?.count, 32)
        XCTAssertEqual((ok["spanId"] as? String)?.count, 16)
        XCTAssertEqual(ok["method"] as? String, "GET")
        XCTAssertEqual(ok["path"] as? String, "/v1/ledger")
        XCTAssertEqual(ok["route"] as? String, "/v1/ledger")
        XCTAssertEqual(ok["oem"] as? String, "acme")
        XCTAssertEqual(ok["partner"] as? String, "p1")
        XCTAssertEqual(ok["customer"] as? String, "c1")
        XCTAssertEqual(ok["outcome"] as? String, "relayed")
        XCTAssertEqual(ok["status"] as? Int, 200)
        XCTAssertNil(ok["phase"])
        XCTAssertNil(ok["problem"])
        XCTAssertEqual(ok["cell"] as? String, "test-cell")
        XCTAssertEqual(ok["tier"] as? String, "pooled")
        XCTAssertEqual(ok["endpoint"] as? String, "127.0.0.1:\(self.backends[0].port)")
        XCTAssertEqual(ok["attempts"] as? Int, 1)
        XCTAssertEqual(ok["bytesIn"] as? Int, 0)
        XCTAssertEqual(ok["bytesOut"] as? Int, relayed.body.count)
        XCTAssertNotNil(ok["gatewayMs"] as? Double)
        XCTAssertNotNil(ok["upstreamMs"] as? Double)

        let no = lines[1]
        self.assertTimestamp(no["time"])
        XCTAssertEqual(no["requestId"] as? String, refused.header("x-request-id"))
        XCTAssertEqual(no["outcome"] as? String, "refused")
        XCTAssertEqual(no["status"] as? Int, 401)
        XCTAssertEqual(no["phase"] as? String, "authenticate")
        XCTAssertEqual(no["problem"] as? String, try refused.json()["type"].map { "\($0)".replacingOccurrences(of: "urn:erp-gateway:problem:", with: "") })
        XCTAssertEqual(no["path"] as? String, "/v1/ledger")
        XCTAssertNil(no["customer"], "the tenant is not known before the token is verified")
        XCTAssertNil(no["upstreamMs"], "nothing went upstream")
        XCTAssertNil(no["endpoint"])
    }

    func testAFailedRequestIsLoggedWhenRelayedOnesAreSampledOut() async throws {
        // Nothing listens on the cell's endpoint: 502. Relayed requests are sampled out.
        self.gateway = try GatewayProcess(settings: gatewaySettings(
            endpoints: [try freePort()], extra: "retries:\n  maxAttempts: 1\naccessLog:\n  enabled: true\n  sampling: 0\n  problemSampling: 1\n"
        ))
        let failed = try request(port: self.port, "POST", "/orders/7?x=1", body: "abc")
        XCTAssertEqual(failed.status, 502, failed.text)
        XCTAssertEqual(self.gateway.stop(), 0)

        // The default text format: the access line is still one JSON object.
        let lines = try self.accessLines(self.gateway.log)
        XCTAssertEqual(lines.count, 1, self.gateway.log)
        let line = try XCTUnwrap(lines.first)
        self.assertTimestamp(line["time"])
        XCTAssertEqual(line["requestId"] as? String, failed.header("x-request-id"))
        XCTAssertEqual(line["method"] as? String, "POST")
        XCTAssertEqual(line["path"] as? String, "/orders/7")
        XCTAssertEqual(line["outcome"] as? String, "failed")
        XCTAssertEqual(line["status"] as? Int, 502)
        XCTAssertEqual(line["phase"] as? String, "forward")
        XCTAssertEqual(line["problem"] as? String, "upstream-unreachable")
        XCTAssertEqual(line["cell"] as? String, "test-cell")
        XCTAssertEqual(line["attempts"] as? Int, 1)
        XCTAssertNotNil(line["gatewayMs"] as? Double)
    }
}
