import Foundation
import XCTest

/// deploy/compose/compose.yaml, read as Compose reads it (no container engine runs where the
/// tests do): two gateways whose settings the real binary accepts as the containers mount them,
/// their ports and drain, and the Redis and demo cells those settings name.
final class ComposeFileTests: XCTestCase {
    static let path = "deploy/compose/compose.yaml"
    static let gateways = ["gateway-1", "gateway-2"]

    static func services() throws -> [String: [String: Any]] {
        let compose = try DeployFileReading.mapping(self.path)
        return try XCTUnwrap(compose["services"] as? [String: [String: Any]])
    }

    /// `HOST:CONTAINER[:ro]` volumes of a service, host paths relative to the compose file.
    static func volumes(of service: [String: Any]) throws -> [(host: URL, container: String)] {
        try (service["volumes"] as? [String] ?? []).map { volume in
            let parts = volume.split(separator: ":").map(String.init)
            XCTAssertGreaterThanOrEqual(parts.count, 2, volume)
            return (DeployFileReading.url("deploy/compose").appendingPathComponent(parts[0]).standardizedFileURL, try XCTUnwrap(parts.dropFirst().first))
        }
    }

    static func configPath(of service: [String: Any]) throws -> String {
        let command = try XCTUnwrap(service["command"] as? [String])
        return try XCTUnwrap(command.firstIndex(of: "--config").map { command[$0 + 1] })
    }

    func testTheBinaryAcceptsEachGatewaysSettingsAsTheContainerMountsThem() throws {
        let services = try Self.services()
        for name in Self.gateways {
            let service = try XCTUnwrap(services[name], name)
            let root = try DeployFileReading.temporaryDirectory("compose")
            defer { try? FileManager.default.removeItem(at: root) }
            for (host, container) in try Self.volumes(of: service) {
                XCTAssertTrue(FileManager.default.fileExists(atPath: host.path), "\(name) mounts \(host.path), which does not exist")
                let target = root.appendingPathComponent(container)
                try FileManager.default.createDirectory(at: target.deletingLastPathComponent(), withIntermediateDirectories: true)
                try FileManager.default.copyItem(at: host, to: target)
            }
            let config = try Self.configPath(of: service)
            let (status, output) = try DeployFileReading.check(root.appendingPathComponent(config))
            XCTAssertEqual(status, 0, "\(name): \(output)")
            XCTAssertTrue(output.contains(": ok ("), output)
        }
    }

    func testPortsDrainAndTheServicesTheSettingsName() throws {
        let services = try Self.services()
        let settingsText = try DeployFilesTests.text("deploy/compose/gateway.yaml")
        let listeners = try DeployFileReading.listeners(ofSettings: settingsText)
        XCTAssertEqual(listeners.addresses, ["0.0.0.0", "0.0.0.0", "0.0.0.0"], "published ports reach the container's interface")
        var hostPorts: [String] = []
        for name in Self.gateways {
            let service = try XCTUnwrap(services[name])
            let config = try Self.configPath(of: service)
            XCTAssertTrue(try Self.volumes(of: service).contains { $0.host.path.hasSuffix("deploy/compose/gateway.yaml") && $0.container == config })
            let published = try (service["ports"] as? [String] ?? []).map { mapping -> Int in
                let parts = mapping.split(separator: ":")
                hostPorts.append(parts.dropLast().joined(separator: ":"))
                XCTAssertEqual(parts.first, "127.0.0.1", "\(name) publishes \(mapping) beyond the host's loopback")
                return try XCTUnwrap(Int(parts.last!))
            }
            XCTAssertEqual(Set(published), listeners.ports, name)
            XCTAssertEqual((service["environment"] as? [String: Any])?["ERP_GATEWAY_OPS_PORT"] as? String, listeners.ops.map { "\($0)" })
            let stop = try XCTUnwrap((service["stop_grace_period"] as? String).flatMap(DeployFileReading.seconds))
            XCTAssertGreaterThan(stop, listeners.shutdownGrace, "\(name) is killed before its drain ends")
            XCTAssertEqual((service["build"] as? [String: Any])?["dockerfile"] as? String, "deploy/docker/Dockerfile")
            XCTAssertEqual(service["read_only"] as? Bool, true)
        }
        XCTAssertEqual(Set(hostPorts).count, hostPorts.count, "two services publish one host port")

        // Redis and every cell endpoint are services, the cells the Dockerfile's demo-backend stage.
        let settings = try XCTUnwrap(try DeployFileReading.documents(text: settingsText).first)
        let redisURL = try XCTUnwrap((settings["redis"] as? [String: Any])?["url"] as? String)
        XCTAssertTrue(redisURL.hasPrefix("redis://redis:6379"), redisURL)
        XCTAssertNotNil(services["redis"])
        let stageNames = try DockerImageTests.stages().compactMap(\.name)
        let endpoints = Set((settings["cells"] as? [[String: Any]] ?? []).flatMap { $0["endpoints"] as? [String] ?? [] })
        XCTAssertEqual(endpoints.count, 3)
        for endpoint in endpoints {
            let (host, port) = (String(endpoint.split(separator: ":")[0]), String(endpoint.split(separator: ":")[1]))
            let cell = try XCTUnwrap(services[host], "no service \(host) for the endpoint \(endpoint)")
            let target = try XCTUnwrap((cell["build"] as? [String: Any])?["target"] as? String)
            XCTAssertTrue(stageNames.contains(target), target)
            let command = try XCTUnwrap(cell["command"] as? [String])
            XCTAssertEqual(command.firstIndex(of: "--port").map { command[$0 + 1] }, port, host)
            XCTAssertEqual(command.firstIndex(of: "--host").map { command[$0 + 1] }, "0.0.0.0", host)
        }
    }

    /// The demo cells' command, as compose gives it (on loopback), starts a backend that answers.
    func testTheDemoCellsCommandStartsABackend() throws {
        let cell = try XCTUnwrap(try Self.services()["pooled-eu-1a"])
        let port = try freePort()
        var command = try XCTUnwrap(cell["command"] as? [String])
        let portIndex = try XCTUnwrap(command.firstIndex(of: "--port"))
        command[portIndex + 1] = "\(port)"
        // Loopback here: the tests bind nothing beyond it.
        let hostIndex = try XCTUnwrap(command.firstIndex(of: "--host"))
        command[hostIndex + 1] = "127.0.0.1"
        let process = Process()
        process.executableURL = GatewayProcess.buildDirectory.appendingPathComponent("demo-backend")
        process.arguments = command
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { process.terminate(); process.waitUntilExit() }
        try waitUntilAccepting(port: port, process: process)
        XCTAssertEqual(try request(port: port, "GET", "/healthz").status, 200)
    }
}
