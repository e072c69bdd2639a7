import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The tenant tree in the running gateway: route matching, portal branding, reload, explain.
final class TenantTreeTests: GatewayTestCase {
    /// A small valid tree on the test cell. `displayName` and an extra route vary per test.
    static func tree(displayName: String = "Alpha Portal", extraRoute: String = "") -> String {
        """
        catalog:
          features: [ledger, payroll]
          packages:
            basic: [ledger]
          routes:
            - path: /orders
            - path: /delay
            - path: /v1/ledger
              feature: ledger
        \(extraRoute)
        tenants:
          - id: alpha
            kind: oem
            placement: { tier: pooled, region: test }
            branding:
              displayName: \(displayName)
              primaryColor: "#112233"
              logoUrl: https://cdn.alpha.example/logo.svg
              locked: [logoUrl]
            portalDomains: [portal.alpha.test]
            issuers:
              - iss: https://id.alpha.test
                audience: erp-gateway
                allowHMAC: true
                keys:
                  - kid: alpha-dev
                    alg: HS256
                    secretFile: \(TestIdentity.sharedSecret)
          - id: alpha-resell
            kind: partner
            parent: alpha
            branding:
              primaryColor: "#445566"
            portalDomains: [erp.resell.test]
          - id: alpha-shop
            kind: customer
            parent: alpha-resell
            package: basic
        """
    }

    func startTreeGateway(tree: String = TenantTreeTests.tree(), arguments: [String] = []) async throws {
        try await self.startBackends(1)
        self.gateway = try GatewayProcess(
            settings: gatewaySettings(endpoints: self.backends.map(\.port), tenantTree: "tenants.yaml"),
            files: ["tenants.yaml": tree],
            arguments: arguments
        )
    }

    /// A token for the tree's one customer.
    static func token() throws -> String {
        try TestIdentity.mint(issuer: "https://id.alpha.test", key: TestIdentity.sharedSecret, alg: "HS256", kid: "alpha-dev", tenant: "alpha-shop")
    }

    func branding(host: String) throws -> RawHTTPConnection.Response {
        try request(port: self.port, "GET", "/v1/branding", headers: [("Host", host)])
    }

    func testCatalogRoutesAreForwardedAndOthersAre404() async throws {
        try await self.startTreeGateway()
        let auth = [("Authorization", "Bearer \(try Self.token())")]
        XCTAssertEqual(try request(port: self.port, "GET", "/orders/17", headers: auth).status, 200)
        XCTAssertEqual(try request(port: self.port, "POST", "/v1/ledger", headers: auth, body: "{}").status, 200)
        let client = try RawHTTPConnection(port: self.port)
        try client.send(requestText("GET", "/admin/secrets", headers: auth))
        try self.assertProblem(client.readResponse(), status: 404, slug: "route-not-found")
        try client.send(requestText("GET", "/ordersx", headers: auth))
        try self.assertProblem(client.readResponse(), status: 404, slug: "route-not-found")
        // A 404 for a bodyless request keeps the connection usable.
        try client.send(requestText("GET", "/orders", headers: auth))
        XCTAssertEqual(try client.readResponse().status, 200)
        XCTAssertEqual(self.backends[0].statistics.requests, 3)
    }

    func testPortalBrandingByHostWithETag() async throws {
        try await self.startTreeGateway()
        let oem = try self.branding(host: "portal.alpha.test")
        XCTAssertEqual(oem.status, 200)
        XCTAssertEqual(oem.header("content-type"), "application/json")
        XCTAssertEqual(oem.header("cache-control"), "public, max-age=60")
        let json = try oem.json()
        XCTAssertEqual(json["displayName"] as? String, "Alpha Portal")
        XCTAssertEqual(json["primaryColor"] as? String, "#112233")

        // The partner's portal: its own colour, the OEM's name and locked logo.
        let partner = try self.branding(host: "ERP.resell.test:8443")
        let partnerJSON = try partner.json()
        XCTAssertEqual(partnerJSON["primaryColor"] as? String, "#445566")
        XCTAssertEqual(partnerJSON["displayName"] as? String, "Alpha Portal")
        XCTAssertEqual(partnerJSON["logoUrl"] as? String, "https://cdn.alpha.example/logo.svg")
        XCTAssertNotEqual(partner.header("etag"), oem.header("etag"))

        let etag = try XCTUnwrap(oem.header("etag"))
        let cached = try request(port: self.port, "GET", "/v1/branding", headers: [("Host", "portal.alpha.test"), ("If-None-Match", etag)])
        XCTAssertEqual(cached.status, 304)
        XCTAssertTrue(cached.body.isEmpty)
        XCTAssertEqual(cached.header("etag"), etag)

        try self.assertProblem(self.branding(host: "unknown.example"), status: 404, slug: "portal-not-found")
        XCTAssertEqual(self.backends[0].statistics.requests, 0, "branding is served by the gateway itself")
    }

    func testReloadUnderLoadLosesNoRequestAndRejectsABadFile() async throws {
        try await self.startTreeGateway(arguments: ["--watch-interval-ms", "0"])
        let port = self.port
        let auth = [("Authorization", "Bearer \(try Self.token())")]
        let failures = LockedCounter()
        let served = LockedCounter()
        let stop = LockedFlag()
        let workers = (0..<4).map { worker in
            Thread {
                defer { stop.workerDone() }
                guard let client = try? RawHTTPConnection(port: port) else { return failures.add() }
                // Bounded: at most 5,000 requests per worker, and only until the test says stop.
                for index in 0..<5000 where !stop.isSet {
                    do {
                        try client.send(requestText("GET", "/orders/\(worker)-\(index)", headers: auth))
                        let response = try client.readResponse()
                        if response.status == 200 { served.add() } else { failures.add() }
                    } catch {
                        failures.add()
                        return
                    }
                }
            }
        }
        stop.expectWorkers(workers.count)
        workers.forEach { $0.start() }

        for version in 1...15 {
            if version == 8 {
                // A broken file: rejected whole, the previous tree keeps serving.
                try self.gateway.replaceFile("tenants.yaml", with: Self.tree(displayName: "Broken", extraRoute: "    - path: no-slash"))
                self.gateway.signal(SIGHUP)
                XCTAssertTrue(self.gateway.waitForLog("configuration rejected"), "a bad file is reported")
                // Each error is a line of its own, written after the summary line.
                XCTAssertTrue(self.gateway.waitForLog("must start with '/'"), "each error is logged")
                XCTAssertEqual(try self.branding(host: "portal.alpha.test").json()["displayName"] as? String, "Alpha v7")
            }
            try self.gateway.replaceFile("tenants.yaml", with: Self.tree(displayName: "Alpha v\(version)"))
            self.gateway.signal(SIGHUP)
            let deadline = Date().addingTimeInterval(5)
            var seen = ""
            while Date() < deadline {
                seen = (try? self.branding(host: "portal.alpha.test").json()["displayName"] as? String) ?? ""
                if seen == "Alpha v\(version)" { break }
                usleep(10_000)
            }
            XCTAssertEqual(seen, "Alpha v\(version)", "reload \(version) is served")
            // Let traffic run on each generation before the next reload (bounded wait).
            let servedBefore = served.value
            let trafficDeadline = Date().addingTimeInterval(2)
            while served.value < servedBefore + 100, Date() < trafficDeadline { usleep(5_000) }
        }
        stop.set()
        stop.waitForWorkers()
        XCTAssertEqual(failures.value, 0, "no request failed across 15 reloads")
        XCTAssertGreaterThan(served.value, 100)
        print("reload under load: \(served.value) requests served across 15 reloads, \(failures.value) failed")
    }

    func testAChangedFileIsPickedUpWithoutASignal() async throws {
        try await self.startTreeGateway(arguments: ["--watch-interval-ms", "100"])
        try self.gateway.replaceFile("tenants.yaml", with: Self.tree(displayName: "Watched"))
        let deadline = Date().addingTimeInterval(10)
        var seen = ""
        while Date() < deadline, seen != "Watched" {
            seen = (try? self.branding(host: "portal.alpha.test").json()["displayName"] as? String) ?? ""
            usleep(50_000)
        }
        XCTAssertEqual(seen, "Watched")
        XCTAssertTrue(self.gateway.waitForLog("reason=file changed"))
    }

    func testCheckAndExplainOnTheTree() throws {
        let (directory, settings) = try treeFileDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }

        try Self.tree().write(to: directory.appendingPathComponent("tenants.yaml"), atomically: true, encoding: .utf8)
        let (okStatus, okOutput) = try runCommand(GatewayProcess.binary, ["check", "--config", settings.path])
        XCTAssertEqual(okStatus, 0, okOutput)
        XCTAssertTrue(okOutput.contains("3 tenant nodes"), okOutput)

        let (explainStatus, explained) = try runCommand(GatewayProcess.binary, ["explain", "--config", settings.path, "--tenant", "alpha-shop", "--field", "feature.payroll"])
        XCTAssertEqual(explainStatus, 0, explained)
        XCTAssertTrue(explained.contains("feature.payroll for alpha/alpha-resell/alpha-shop: off"), explained)
        XCTAssertTrue(explained.contains("neither the customer's package nor its add-ons include it"), explained)

        let broken = Self.tree().replacingOccurrences(of: "package: basic", with: "package: platinum")
            .replacingOccurrences(of: "primaryColor: \"#445566\"", with: "logoUrl: http://evil.example/x.svg")
        try broken.write(to: directory.appendingPathComponent("tenants.yaml"), atomically: true, encoding: .utf8)
        let (status, output) = try runCommand(GatewayProcess.binary, ["check", "--config", settings.path])
        XCTAssertEqual(status, 2)
        XCTAssertTrue(output.contains("tenants.yaml:"), output)
        XCTAssertTrue(output.contains("alpha/alpha-resell branding.logoUrl: is locked by alpha"), output)
        XCTAssertTrue(output.contains("alpha/alpha-resell/alpha-shop package: unknown package 'platinum'"), output)
        XCTAssertTrue(output.contains("2 errors"), output)
    }
}

final class LockedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add() { self.lock.withLock { self.count += 1 } }
    var value: Int { self.lock.withLock { self.count } }
}

/// A stop flag for load workers, and a way to wait until they have all finished.
final class LockedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var flag = false
    private let done = DispatchSemaphore(value: 0)
    private var workers = 0
    func set() { self.lock.withLock { self.flag = true } }
    func clear() { self.lock.withLock { self.flag = false } }
    var isSet: Bool { self.lock.withLock { self.flag } }
    func expectWorkers(_ count: Int) { self.workers = count }
    func workerDone() { self.done.signal() }
    func waitForWorkers() { for _ in 0..<self.workers { self.done.wait() } }
}
