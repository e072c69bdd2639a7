import Foundation
import XCTest

/// deploy/docker/Dockerfile, read as Docker reads it (no container engine runs where the tests
/// do): its stages, the runtime packages of what the built binaries link, the user, the ports
/// of the settings the image is given, and its health check run against a real gateway.
final class DockerImageTests: XCTestCase {
    struct Instruction {
        var keyword: String
        var arguments: String
    }

    struct Stage {
        var base: String
        var name: String?
        var instructions: [Instruction]

        func all(_ keyword: String) -> [String] { self.instructions.filter { $0.keyword == keyword }.map(\.arguments) }

        /// The packages its `apt-get install` lines name.
        var installedPackages: Set<String> {
            var packages = Set<String>()
            for run in self.all("RUN") {
                for command in run.components(separatedBy: "&&") {
                    let words = command.split(whereSeparator: \.isWhitespace).map(String.init)
                    guard let install = words.firstIndex(of: "install"), words[..<install].contains("apt-get") else { continue }
                    packages.formUnion(words[(install + 1)...].filter { !$0.hasPrefix("-") })
                }
            }
            return packages
        }
    }

    /// Stages in order; continuation lines joined and comment lines dropped, as Docker does.
    static func stages(_ path: String = "deploy/docker/Dockerfile") throws -> [Stage] {
        var logical: [String] = []
        var pending = ""
        for raw in try DeployFilesTests.text(path).split(separator: "\n", omittingEmptySubsequences: false) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("#") { continue }
            if line.hasSuffix("\\") {
                pending += line.dropLast() + " "
                continue
            }
            pending += line
            if !pending.trimmingCharacters(in: .whitespaces).isEmpty { logical.append(pending) }
            pending = ""
        }
        var stages: [Stage] = []
        for line in logical {
            let parts = line.split(separator: " ", maxSplits: 1)
            let instruction = Instruction(keyword: parts[0].uppercased(), arguments: parts.count > 1 ? String(parts[1]).trimmingCharacters(in: .whitespaces) : "")
            if instruction.keyword == "FROM" {
                let words = instruction.arguments.split(separator: " ").map(String.init)
                stages.append(Stage(base: words[0], name: words.count == 3 && words[1].uppercased() == "AS" ? words[2] : nil, instructions: []))
            } else {
                XCTAssertFalse(stages.isEmpty, "\(instruction.keyword) before FROM")
                stages[stages.count - 1].instructions.append(instruction)
            }
        }
        return stages
    }

    func testABuildStageAndSlimRuntimeStagesThatRunAsNoRoot() throws {
        let stages = try Self.stages()
        let build = try XCTUnwrap(stages.first)
        XCTAssertTrue(build.base.hasPrefix("swift:6.") && build.base.hasSuffix("-bookworm"), build.base)
        // Built as the benchmarks build the release binary (`Package.swift`): the image runs
        // the binary whose figures docs/benchmarks.md gives.
        XCTAssertTrue(build.all("RUN").contains {
            $0.contains("swift build -c release --static-swift-stdlib -Xswiftc -enforce-exclusivity=unchecked --product erp-gateway")
        })
        XCTAssertEqual(stages.last?.name, "gateway", "the gateway is the default (last) stage")
        for stage in stages.dropFirst() {
            XCTAssertEqual(stage.base, "debian:bookworm-slim", stage.name ?? "")
            let user = try XCTUnwrap(stage.all("USER").last, "\(stage.name ?? "") has no USER")
            let uid = String(user.split(separator: ":")[0])
            XCTAssertFalse(["root", "0"].contains(uid), "\(stage.name ?? ""): USER \(user)")
            XCTAssertEqual(stage.all("STOPSIGNAL"), ["SIGTERM"])
            XCTAssertTrue(stage.all("COPY").allSatisfy { $0.hasPrefix("--from=build ") }, "runtime stages take only the build's output")
            XCTAssertEqual(stage.installedPackages.filter { $0.hasSuffix("-dev") }, [], "no -dev package at run time")
        }
        // The context holds the package and nothing of a local build.
        let ignore = try DeployFilesTests.text(".dockerignore").split(separator: "\n").filter { !$0.hasPrefix("#") }.map(String.init)
        XCTAssertEqual(ignore.first, "*")
        XCTAssertEqual(Set(ignore.dropFirst()), ["!Package.swift", "!Sources/", "!Tests/"])
        for copy in build.all("COPY") {
            let source = String(copy.split(separator: " ")[0])
            XCTAssertTrue(ignore.contains("!" + source) || ignore.contains("!" + source + "/"), "COPY \(source) is not in the build context")
        }
    }

    /// Every shared library the built binary loads comes from a package its stage installs, or
    /// is the Swift runtime, which `--static-swift-stdlib` links into the binary.
    func testEveryLibraryTheBinariesLinkIsInstalledInTheirStage() throws {
        let stages = try Self.stages()
        for (binary, stageName) in [("erp-gateway", "gateway"), ("demo-backend", "demo-backend")] {
            let stage = try XCTUnwrap(stages.first { $0.name == stageName })
            let installed = stage.installedPackages
            let libraries = try DeployFileReading.sharedLibraries(of: GatewayProcess.buildDirectory.appendingPathComponent(binary))
            XCTAssertGreaterThan(libraries.count, 3, binary)
            let packages = try DeployFileReading.debianPackages(of: libraries)
            var needed = Set<String>()
            for library in libraries {
                if let package = packages[library] ?? nil {
                    needed.insert(package)
                } else {
                    let name = URL(fileURLWithPath: library).lastPathComponent
                    let swiftRuntime = ["libswift", "libFoundation", "lib_Foundation", "libdispatch", "libBlocksRuntime"].contains { name.hasPrefix($0) }
                    XCTAssertTrue(swiftRuntime, "\(binary) loads \(library), which no Debian package installed and which is not the Swift runtime")
                }
            }
            XCTAssertTrue(needed.contains("libc6"), "\(needed)")
            XCTAssertEqual(needed.subtracting(installed), [], "\(binary) needs packages its stage does not install")
            XCTAssertEqual(installed.subtracting(needed), [], "\(stageName) installs packages \(binary) does not link")
        }
    }

    /// EXPOSE and the health check's port are those of the settings the image is run with
    /// (deploy/compose and the Kubernetes ConfigMap), and the command reads them where those mount them.
    func testExposedPortsAreTheListenersOfTheSettingsTheImageIsGiven() throws {
        let gateway = try XCTUnwrap(try Self.stages().last)
        let exposed = Set(gateway.all("EXPOSE").flatMap { $0.split(separator: " ") }.compactMap { Int($0.split(separator: "/")[0]) })
        let compose = try DeployFileReading.listeners(ofSettings: DeployFilesTests.text("deploy/compose/gateway.yaml"))
        let kubernetes = try DeployFileReading.listeners(ofSettings: KubernetesManifestsTests.configMapSettings())
        XCTAssertEqual(exposed, compose.ports)
        XCTAssertEqual(exposed, kubernetes.ports)
        XCTAssertEqual(compose.ops, kubernetes.ops)
        XCTAssertTrue(gateway.all("ENV").contains("ERP_GATEWAY_OPS_PORT=\(compose.ops ?? 0)"), "\(gateway.all("ENV"))")
        XCTAssertEqual(gateway.all("ENTRYPOINT"), [#"["/usr/local/bin/erp-gateway"]"#])
        XCTAssertEqual(gateway.all("CMD").first, #"["serve", "--config", "/etc/erp-gateway/gateway.yaml", "--log-format", "json"]"#)
    }

    /// The HEALTHCHECK command, exactly as written, against a real gateway's ops listener.
    func testTheHealthCheckPassesOnTheOpsListenerAndFailsWithoutIt() throws {
        let gateway = try XCTUnwrap(try Self.stages().last)
        let healthcheck = try XCTUnwrap(gateway.all("HEALTHCHECK").first)
        let json = try XCTUnwrap(healthcheck.range(of: "CMD [").map { String(healthcheck[healthcheck.index(before: $0.upperBound)...]) })
        let command = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String])
        XCTAssertEqual(command.first, "/bin/bash")

        func run(opsPort: Int) throws -> Int32 {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: command[0])
            process.arguments = Array(command.dropFirst())
            process.environment = ["ERP_GATEWAY_OPS_PORT": "\(opsPort)", "PATH": "/usr/bin:/bin"]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            return process.terminationStatus
        }

        let opsPort = try freePort()
        let backend = try BackendProcess(name: "cell")
        let process = try GatewayProcess(settings: gatewaySettings(endpoints: [backend.port], extra: "ops:\n  address: 127.0.0.1\n  port: \(opsPort)\n"))
        XCTAssertEqual(try run(opsPort: opsPort), 0, "healthy while the gateway serves")
        XCTAssertEqual(process.stop(), 0)
        XCTAssertNotEqual(try run(opsPort: opsPort), 0, "unhealthy with nothing on the ops port")
    }
}
