import ArgumentParser
import GatewayConfig
import Hierarchy

/// `erp-gateway explain`: why a tenant has the policy it has — for one attribute or all of them,
/// the value declared at each node of its path, the value in effect there, and the node that
/// decided.
struct Explain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Explain a tenant's effective policy, attribute by attribute.",
        discussion: "Attributes: \(TenantSnapshot.explainableAttributes.joined(separator: ", "))."
    )

    @Option(name: .long, help: "Path of the settings file (YAML).")
    var config: String

    @Option(name: .long, help: "The node id (customer, partner or OEM).")
    var tenant: String

    @Option(name: .long, help: "One attribute, e.g. features, feature.payroll, limits, masking, supportAccess, branding.logoUrl. All when omitted.")
    var field: String?

    func run() async throws {
        let configuration = try loadConfigurationOrExit(path: self.config)
        guard let tenants = await Administration.servedTree(configuration, settingsPath: self.config) else {
            printToStandardError("\(self.config) names no tenant tree (tenantTree)")
            throw ExitCode(2)
        }
        guard let id = try? NodeID(self.tenant), tenants.policy(id) != nil else {
            printToStandardError("no tenant '\(self.tenant)'")
            throw ExitCode(1)
        }
        let attributes = self.field.map { [$0] }
            ?? ["status", "features", "limits", "placement", "residency", "origins", "masking", "supportAccess"]
            + BrandingField.allCases.map { "branding.\($0.rawValue)" }
        var blocks: [String] = []
        for attribute in attributes {
            do {
                blocks.append(try tenants.explain(id, attribute: attribute).text)
            } catch {
                printToStandardError(error.description)
                throw ExitCode(1)
            }
        }
        print(blocks.joined(separator: "\n\n"))
    }
}
