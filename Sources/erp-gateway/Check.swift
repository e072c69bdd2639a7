import ArgumentParser
import GatewayConfig

/// `erp-gateway check`: validates a settings file the way `nginx -t` does, printing every problem
/// with its location, and exits non-zero if there is any.
struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Validate a settings file and print every error with its location.")

    @Option(name: .long, help: "Path of the settings file (YAML).")
    var config: String

    func run() throws {
        do {
            let settings = try SettingsLoader.load(path: self.config)
            print("\(self.config): ok (\(settings.cells.count) cells, listener \(settings.listener.address):\(settings.listener.port))")
        } catch {
            printToStandardError(error.description)
            printToStandardError("\(self.config): \(error.issues.count) error\(error.issues.count == 1 ? "" : "s")")
            throw ExitCode(2)
        }
    }
}
