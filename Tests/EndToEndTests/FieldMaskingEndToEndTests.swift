import Foundation
import UpstreamFixtures
import XCTest

/// Field masking in the running gateway, against a real JSON backend (`/employees/N` of the demo
/// backend): rules of the catalog, an OEM and a customer together, support sessions, roles the
/// rules do not name, the body bound, non-JSON answers, and an unmasked route streaming as ever.
final class FieldMaskingEndToEndTests: GatewayTestCase {
    static let tree = """
        catalog:
          features: [hr]
          packages: { basic: [hr] }
          routes:
            - path: /employees
              feature: hr
              masking:
                - { fields: [/employees/*/salary], roles: [viewer] }
            - path: /bytes
        tenants:
          - id: alpha
            kind: oem
            placement: { tier: pooled, region: test }
            masking:
              - { route: /employees, fields: [iban], roles: [viewer, default] }
            issuers:
              - iss: https://id.alpha.test
                audience: erp-gateway
                allowHMAC: true
                keys: [{ kid: alpha-dev, alg: HS256, secretFile: \(TestIdentity.sharedSecret) }]
          - { id: resell, kind: partner, parent: alpha }
          - id: guarded
            kind: customer
            parent: resell
            package: basic
            masking:
              - { route: /employees, fields: [/employees/*/salary], roles: [default] }
              - { route: /employees, fields: [iban], roles: [], nonJSON: pass }
              - { route: /bytes, fields: [anything] }
          - { id: open, kind: customer, parent: resell, package: basic }
        """

    private func token(_ tenant: String, role: String?) throws -> String {
        try TestIdentity.mint(
            issuer: "https://id.alpha.test", key: TestIdentity.sharedSecret, alg: "HS256", kid: "alpha-dev", tenant: tenant,
            claims: role.map { ["role=\($0)"] } ?? []
        )
    }

    private func get(_ path: String, tenant: String, role: String?) throws -> RawHTTPConnection.Response {
        try request(port: self.port, "GET", path, headers: [("Authorization", "Bearer \(try self.token(tenant, role: role))"), ("Accept-Encoding", "gzip")])
    }

    private func employees(_ response: RawHTTPConnection.Response) throws -> [[String: Any]] {
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any], response.text)
        return try XCTUnwrap(json["employees"] as? [[String: Any]])
    }

    private func startMaskingGateway() async throws {
        try await self.startBackends(1)
        self.gateway = try self.treeGateway(Self.tree, extra: "masking:\n  maxBodyBytes: 64KiB\n")
    }

    func testRulesOfEveryLevelMaskTheirRolesAndSupportSessionsAlways() async throws {
        try await self.startMaskingGateway()

        // `open`: the catalog masks salaries for viewers, the OEM IBANs for viewers and tokens
        // without a role; any other role sees everything.
        var response = try self.get("/employees/3", tenant: "open", role: "viewer")
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.header("content-length"), String(response.body.count))
        var list = try self.employees(response)
        XCTAssertEqual(list.count, 3)
        XCTAssertTrue(list.allSatisfy { $0["salary"] is NSNull })
        XCTAssertTrue(list.allSatisfy { ($0["bank"] as? [String: Any])?["iban"] as? String == "***" }, "a field-name rule reaches nested objects")
        XCTAssertEqual(list[1]["name"] as? String, "Employee 1")
        XCTAssertEqual((list[1]["tags"] as? [String]), ["a", "b"])

        response = try self.get("/employees/3", tenant: "open", role: nil)
        list = try self.employees(response)
        XCTAssertEqual(list[2]["salary"] as? Double, 40026.5, "the catalog's salary rule names viewers only")
        XCTAssertTrue(list.allSatisfy { ($0["bank"] as? [String: Any])?["iban"] as? String == "***" })

        response = try self.get("/employees/3", tenant: "open", role: "editor")
        XCTAssertEqual(response.body, Array(DemoBackend.employees(3).utf8), "a role no rule names gets the backend's bytes")

        response = try self.get("/employees/3", tenant: "open", role: "support")
        list = try self.employees(response)
        XCTAssertTrue(list.allSatisfy { $0["salary"] is NSNull && ($0["bank"] as? [String: Any])?["iban"] as? String == "***" })

        // `guarded` widens the salary mask to tokens without a role; its attempt to take the
        // OEM's IBAN mask away (`roles: []`) takes nothing away.
        response = try self.get("/employees/2", tenant: "guarded", role: nil)
        list = try self.employees(response)
        XCTAssertTrue(list.allSatisfy { $0["salary"] is NSNull && ($0["bank"] as? [String: Any])?["iban"] as? String == "***" })
        response = try self.get("/employees/2", tenant: "guarded", role: "viewer")
        list = try self.employees(response)
        XCTAssertTrue(list.allSatisfy { ($0["bank"] as? [String: Any])?["iban"] as? String == "***" })
    }

    /// A HEAD where the GET is masked carries no length: the backend's is the unmasked body's.
    func testAHeadOnAMaskedRouteTellsNotTheUnmaskedLength() async throws {
        try await self.startMaskingGateway()
        let unmaskedLength = String(DemoBackend.employees(3).utf8.count)
        for role in ["viewer", "support"] {
            let head = try request(port: self.port, "HEAD", "/employees/3", headers: [("Authorization", "Bearer \(try self.token("open", role: role))")])
            XCTAssertEqual(head.status, 200, role)
            XCTAssertNil(head.header("content-length"), "\(role): \(head.text)")
            XCTAssertEqual(head.header("content-type"), "application/json", role)
            XCTAssertEqual(head.body, [], role)
        }
        let editor = try request(port: self.port, "HEAD", "/employees/3", headers: [("Authorization", "Bearer \(try self.token("open", role: "editor"))")])
        XCTAssertEqual(editor.header("content-length"), unmaskedLength, "a role no rule names gets the backend's fields")
    }

    func testWhatCannotBeMaskedIsRefusedAndAnUnmaskedRouteStreams() async throws {
        try await self.startMaskingGateway()

        // 64 KiB bound: 250 employees (about 37 KiB) fit, 1,000 (about 150 KiB) do not.
        XCTAssertEqual(try self.get("/employees/250", tenant: "open", role: "viewer").status, 200)
        let large = try self.get("/employees/1000", tenant: "open", role: "viewer")
        XCTAssertFalse(large.text.contains("Employee"), "nothing of a refused body reaches the client")
        XCTAssertEqual(large.status, 502)
        if large.status == 502 { try self.assertProblem(large, status: 502, slug: "masked-response-too-large") }
        // Unmasked for a role no rule names, the same body passes whole.
        XCTAssertEqual(try self.get("/employees/1000", tenant: "open", role: "editor").body.count, DemoBackend.employees(1000).utf8.count)

        // Non-JSON on a masked route: refused, for every caller, support included (the
        // `nonJSON: pass` of another route's rule changes nothing here).
        for role in ["support", "editor"] {
            try self.assertProblem(self.get("/bytes/100", tenant: "guarded", role: role), status: 502, slug: "unmaskable-response")
        }

        // The same backend path for a customer without masks: 8 MiB streamed, in pieces, intact.
        let client = try RawHTTPConnection(port: self.port)
        try client.send(requestText("GET", "/bytes/\(8 << 20)", headers: [("Authorization", "Bearer \(try self.token("open", role: "support"))")]))
        var pieces = 0
        var offset = 0
        var intact = true
        let response = try client.readResponse(keepBody: false) { bytes in
            pieces += 1
            intact = intact && bytes.withUnsafeBytes { BytePattern.matches($0, at: offset) }
            offset += bytes.count
        }
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(offset, 8 << 20)
        XCTAssertTrue(intact)
        XCTAssertGreaterThan(pieces, 1)
    }
}
