import Foundation
import XCTest

/// The number of series the gateway exposes does not grow with its customers: a tree of 10,000
/// customers, requests from hundreds of them, and `/metrics` keeps the same lines.
final class MetricsCardinalityTests: GatewayTestCase {
    static let customers = 10_000
    static let partners = 25

    static var tree: String {
        var text = """
            catalog:
              features: [ledger]
              packages: { basic: [ledger] }
              routes: [{ path: /v1/ledger, feature: ledger }]
            tenants:
              - id: acme
                kind: oem
                placement: { tier: pooled, region: test }
                issuers:
                  - iss: https://id.acme.test
                    audience: erp-gateway
                    keys: [{ kid: acme-1, alg: RS256, pemFile: \(TestIdentity.acmeOld.publicKey) }]

            """
        for partner in 0..<Self.partners { text += "  - { id: p\(partner), kind: partner, parent: acme }\n" }
        for customer in 0..<Self.customers {
            text += "  - { id: c\(customer), kind: customer, parent: p\(customer % Self.partners), package: basic }\n"
        }
        return text
    }

    /// Lines of the exposition that carry a sample (comments left out).
    func sampleLines(ops port: Int) throws -> [String] {
        let response = try request(port: port, "GET", "/metrics")
        XCTAssertEqual(response.status, 200)
        return response.text.split(separator: "\n").filter { !$0.hasPrefix("#") }.map(String.init)
    }

    /// Relays one request for each customer in `customers`, on one keep-alive connection.
    func send(_ customers: [Int]) throws {
        // Minting runs the binary once per token: a few at a time.
        let tokens = MintedTokens(count: customers.count)
        DispatchQueue.concurrentPerform(iterations: customers.count) { index in
            let token = try? TestIdentity.mint(issuer: "https://id.acme.test", key: TestIdentity.acmeOld.privateKey, kid: "acme-1", tenant: "c\(customers[index])")
            tokens.set(index, token ?? "")
        }
        let connection = try RawHTTPConnection(port: self.port)
        for token in tokens.all {
            try connection.send(requestText("GET", "/v1/ledger", headers: [("Authorization", "Bearer \(token)")]))
            XCTAssertEqual(try connection.readResponse().status, 200)
        }
    }

    func testTheSeriesDoNotGrowWithCustomers() async throws {
        try await self.startBackends(1)
        let opsPort = try freePort()
        self.gateway = try GatewayProcess(
            settings: gatewaySettings(
                endpoints: self.backends.map(\.port), tenantTree: "tenants.yaml", extra: "ops: { address: 127.0.0.1, port: \(opsPort) }\n"
            ),
            files: ["tenants.yaml": Self.tree]
        )
        try self.send(Array(0..<3))
        let before = try self.sampleLines(ops: opsPort)
        // Customers spread over every partner and the whole tree.
        try self.send(Array(stride(from: 3, to: Self.customers, by: 100)))
        let after = try self.sampleLines(ops: opsPort)
        let names = { (lines: [String]) in Set(lines.map { String($0.split(separator: " ")[0]) }) }
        XCTAssertEqual(after.count, before.count, "new series:\n" + names(after).subtracting(names(before)).sorted().joined(separator: "\n"))
        let relayed = after.first { $0.hasPrefix(#"erp_gateway_requests_total{oem="acme""#) && $0.contains(#"outcome="relayed""#) }
        XCTAssertEqual(relayed?.split(separator: " ").last, "103", "3 + 100 customers relayed")
        for line in after {
            XCTAssertFalse(line.contains(#""c1"#) || line.contains(#""p1"#), "a customer or partner id as a label value: \(line)")
        }
    }
}

/// Tokens minted on several threads, each into its own slot.
private final class MintedTokens: @unchecked Sendable {
    private let lock = NSLock()
    private var tokens: [String]

    init(count: Int) { self.tokens = Array(repeating: "", count: count) }

    func set(_ index: Int, _ token: String) {
        self.lock.withLock { self.tokens[index] = token }
    }

    var all: [String] { self.lock.withLock { self.tokens } }
}
