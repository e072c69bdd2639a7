import Foundation
import XCTest

/// `erp-gateway check` and `explain` on a tree whose catalog declares module dependencies.
final class FeatureRequirementsCommandTests: XCTestCase {
    static func tree(partnerFeatures: String, addOns: String = "[]") -> String {
        TenantTreeTests.tree()
            .replacingOccurrences(of: "features: [ledger, payroll]", with: "features: [ledger, { name: payroll, requires: [ledger] }, crm]")
            .replacingOccurrences(of: "    basic: [ledger]\n", with: "    basic: [ledger]\n    crmonly: [crm]\n")
            .replacingOccurrences(of: "    kind: partner\n", with: "    kind: partner\n    features: \(partnerFeatures)\n")
            .replacingOccurrences(of: "    package: basic", with: "    package: basic\n    addOns: \(addOns)")
    }

    func testCheckRefusesAMissingRequirementAndExplainShowsTheChain() throws {
        let (directory, settings) = try treeFileDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("tenants.yaml")

        try Self.tree(partnerFeatures: "[ledger, payroll]", addOns: "[payroll]").write(to: file, atomically: true, encoding: .utf8)
        let (okStatus, okOutput) = try runCommand(GatewayProcess.binary, ["check", "--config", settings.path])
        XCTAssertEqual(okStatus, 0, okOutput)
        let (explainStatus, explained) = try runCommand(GatewayProcess.binary, ["explain", "--config", settings.path, "--tenant", "alpha-shop", "--field", "feature.payroll"])
        XCTAssertEqual(explainStatus, 0, explained)
        XCTAssertTrue(explained.contains("feature.payroll for alpha/alpha-resell/alpha-shop: on"), explained)
        XCTAssertTrue(explained.contains("requires ledger (payroll → ledger): on, package basic"), explained)

        // The partner stops offering the ledger but keeps payroll: both it and its customer are refused.
        try Self.tree(partnerFeatures: "[payroll]", addOns: "[payroll]").write(to: file, atomically: true, encoding: .utf8)
        let (status, output) = try runCommand(GatewayProcess.binary, ["check", "--config", settings.path])
        XCTAssertEqual(status, 2, output)
        XCTAssertTrue(output.contains("alpha/alpha-resell features: 'payroll' requires 'ledger', which the features offered here do not include"), output)
        XCTAssertTrue(output.contains("alpha/alpha-resell/alpha-shop package: 'payroll' requires 'ledger', which alpha/alpha-resell does not offer"), output)
        XCTAssertTrue(output.contains("2 errors"), output)

        // Taking both away is narrowing: the tree compiles, and explain says what payroll would need.
        try Self.tree(partnerFeatures: "[crm]", addOns: "[payroll]").write(to: file, atomically: true, encoding: .utf8)
        let (narrowedStatus, narrowed) = try runCommand(GatewayProcess.binary, ["explain", "--config", settings.path, "--tenant", "alpha-shop", "--field", "feature.payroll"])
        XCTAssertEqual(narrowedStatus, 0, narrowed)
        XCTAssertTrue(narrowed.contains("requires ledger (payroll → ledger): off, not offered by alpha/alpha-resell"), narrowed)
        XCTAssertTrue(narrowed.contains("It also requires 'ledger', which is missing here"), narrowed)
    }
}
