import Foundation
import XCTest

/// The README's demo instructions, run as a new user would run them after `scripts/dev-up.sh`:
/// the example settings and tree of deploy/examples with a real Redis and the three demo
/// backends, every shell block of the README's demo section executed as written (only the
/// ports are the test's own), and what each command says it does checked.
final class ReadmeDemoTests: GatewayTestCase {
    static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    var redis: RedisProcess?
    var demoBackends: [BackendProcess] = []

    override func tearDown() async throws {
        try await super.tearDown()
        self.redis?.stop()
        self.demoBackends = []
    }

    /// The shell blocks between "With the gateway up" and the next section.
    static func demoBlocks(of readme: String) throws -> [String] {
        let start = try XCTUnwrap(readme.range(of: "With the gateway up:"))
        let end = try XCTUnwrap(readme.range(of: "\n## ", range: start.upperBound..<readme.endIndex))
        var blocks: [String] = []
        var rest = readme[start.upperBound..<end.lowerBound]
        while let open = rest.range(of: "```sh\n"), let close = rest.range(of: "```", range: open.upperBound..<rest.endIndex) {
            blocks.append(String(rest[open.upperBound..<close.lowerBound]))
            rest = rest[close.upperBound...]
        }
        return blocks
    }

    func testTheDemoInstructionsDoWhatTheySay() async throws {
        let root = Self.packageRoot
        let examples = root.appendingPathComponent("deploy/examples")
        let redis = try RedisProcess()
        self.redis = redis
        // The demo's three endpoints, as scripts/dev-up.sh starts them.
        self.demoBackends = try ["pooled-eu-1a", "pooled-eu-1b", "dedicated-acme"].map { try BackendProcess(name: $0) }
        let adminPort = try freePort()
        var settings = try String(contentsOf: examples.appendingPathComponent("gateway.yaml"), encoding: .utf8)
        for (demo, test) in [
            ("port: 8080", "port: PORT"), ("port: 8081", "port: \(adminPort)"), ("redis://127.0.0.1:6379/0", redis.url),
            ("127.0.0.1:9101", "127.0.0.1:\(self.demoBackends[0].port)"), ("127.0.0.1:9102", "127.0.0.1:\(self.demoBackends[1].port)"),
            ("127.0.0.1:9103", "127.0.0.1:\(self.demoBackends[2].port)"),
        ] {
            XCTAssertTrue(settings.contains(demo), "deploy/examples/gateway.yaml no longer has \(demo)")
            settings = settings.replacingOccurrences(of: demo, with: test)
        }
        var files = ["tenants.yaml": try String(contentsOf: examples.appendingPathComponent("tenants.yaml"), encoding: .utf8)]
        for name in try FileManager.default.contentsOfDirectory(atPath: examples.appendingPathComponent("keys").path) {
            files["keys/\(name)"] = try String(contentsOf: examples.appendingPathComponent("keys/\(name)"), encoding: .utf8)
        }
        self.gateway = try GatewayProcess(settings: settings, files: files)
        try waitUntilAccepting(port: adminPort)
        XCTAssertTrue(self.gateway.waitForLog("admin store seeded from the tenant-tree file"), self.gateway.log)

        let blocks = try Self.demoBlocks(of: try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8))
        XCTAssertEqual(blocks.count, 2, "the data-plane block and the admin block")
        var script = "set -euo pipefail\n" + blocks.joined(separator: "\n")
        for (demo, test) in [
            ("127.0.0.1:8080", "127.0.0.1:\(self.port)"), ("127.0.0.1:8081", "127.0.0.1:\(adminPort)"),
            ("deploy/examples/gateway.yaml", self.gateway.configPath), (".build/debug/erp-gateway", GatewayProcess.binary.path),
        ] {
            script = script.replacingOccurrences(of: demo, with: test)
        }
        let (status, output) = try runCommand(URL(fileURLWithPath: "/bin/bash"), ["-c", "cd '\(root.path)' && " + script])
        XCTAssertEqual(status, 0, output)

        // Each command does what its comment says, in order.
        let expectations = [
            "HTTP/1.1 401",  // every route needs a token
            "\"displayName\":\"Northwind Business Cloud\"",  // the portal's branding, as seeded
            "HTTP/1.1 200",  // forwarded…
            "[\"x-erp-tenant\",\"contoso-dist\"]",  // …with the signed tenant context
            "x-erp-context-signature",
            "HTTP/1.1 403", "feature-not-enabled",
            "features for acme-soft/northwind-it/contoso-dist",  // explain
            "HTTP/1.1 200",  // the admin change…
            "\"displayName\":\"Northwind Cloud ERP\"",  // …in the admin API's answer
            "\"displayName\":\"Northwind Cloud ERP\",\"logoUrl\"",  // …and served by the data plane
        ]
        var rest = Substring(output)
        for expected in expectations {
            guard let found = rest.range(of: expected) else {
                XCTFail("\(expected) not found (in order) in the demo's output:\n\(output)")
                return
            }
            rest = rest[found.upperBound...]
        }

        // The README says the settings file is still reloaded from disk.
        let reloaded = settings.replacingOccurrences(of: "PORT", with: "\(self.port)").replacingOccurrences(of: "keepAliveIdle: 60s", with: "keepAliveIdle: 30s")
        XCTAssertNotEqual(reloaded, settings)
        try self.gateway.replaceFile("gateway.yaml", with: reloaded)
        XCTAssertTrue(self.gateway.waitForLog("configuration reloaded", timeout: 5), self.gateway.log)
    }
}
