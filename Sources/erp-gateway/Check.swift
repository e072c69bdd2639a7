import ArgumentParser
import GatewayConfig

/// `erp-gateway check`: validates the settings file and the tenant tree it names the way
/// `nginx -t` does, printing every problem with its location, and exits non-zero if there is any.
struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Validate the configuration and print every error with its location.")

    @Option(name: .long, help: "Path of the settings file (YAML).")
    var config: String

    func run() throws {
        do {
            let configuration = try GatewayConfiguration.load(path: self.config)
            let settings = configuration.settings
            var summary = "\(self.config): ok (\(settings.cells.count) cells, listener \(settings.listener.address):\(settings.listener.port)"
            if let tenants = configuration.tenants {
                summary += ", \(tenants.nodeCount) tenant nodes, \(tenants.catalog.features.count) features, \(tenants.catalog.routes.all.count) routes"
            }
            print(summary + ")")
        } catch {
            printToStandardError(error.description)
            printToStandardError("\(error.source): \(error.issues.count) error\(error.issues.count == 1 ? "" : "s")")
            throw ExitCode(2)
        }
    }
}
