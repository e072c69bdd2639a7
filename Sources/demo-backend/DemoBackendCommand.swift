import ArgumentParser
import NIOPosix
import UpstreamFixtures

/// Runs one demo cell endpoint on loopback (see `DemoBackend` for its routes).
@main
struct DemoBackendCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "demo-backend", abstract: "A small HTTP backend for the demo cells.")

    @Option(help: "Name reported in responses (X-Backend).") var name: String = "demo"
    @Option(help: "Address to bind.") var host: String = "127.0.0.1"
    @Option(help: "Port to bind.") var port: Int

    func run() async throws {
        let backend = try await DemoBackend.start(name: self.name, host: self.host, port: self.port, group: MultiThreadedEventLoopGroup.singleton)
        print("demo-backend \(self.name) listening on \(self.host):\(backend.port)")
        try await Task.sleep(for: .seconds(365 * 24 * 3600))
    }
}

