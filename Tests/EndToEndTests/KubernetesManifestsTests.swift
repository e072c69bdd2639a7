import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// deploy/kubernetes: every manifest valid against the Kubernetes API schemas
/// (kubernetes-validate, installed by scripts/install-deps.sh), and consistent with the settings
/// its ConfigMap carries — ports, probes, the drain, the files the settings name — which the real
/// binary accepts as the pod mounts them.
final class KubernetesManifestsTests: XCTestCase {
    static let directory = "deploy/kubernetes"

    /// Every resource of the kustomization, as plain values.
    static func resources() throws -> [[String: Any]] {
        let kustomization = try DeployFileReading.mapping("\(self.directory)/kustomization.yaml")
        let files = try XCTUnwrap(kustomization["resources"] as? [String])
        return try files.flatMap { try DeployFileReading.documents("\(self.directory)/\($0)") }
    }

    static func resource(_ kind: String, _ name: String? = nil) throws -> [String: Any] {
        try XCTUnwrap(self.resources().first { $0["kind"] as? String == kind && (name == nil || self.name(of: $0) == name) }, "no \(kind) \(name ?? "")")
    }

    static func name(of resource: [String: Any]) -> String? { (resource["metadata"] as? [String: Any])?["name"] as? String }

    static func configMapSettings() throws -> String {
        let data = try XCTUnwrap(try self.resource("ConfigMap", "erp-gateway-config")["data"] as? [String: Any])
        return try XCTUnwrap(data["gateway.yaml"] as? String)
    }

    static func podSpec() throws -> [String: Any] {
        let deployment = try self.resource("Deployment", "erp-gateway")
        let template = try XCTUnwrap((deployment["spec"] as? [String: Any])?["template"] as? [String: Any])
        return try XCTUnwrap(template["spec"] as? [String: Any])
    }

    static func container() throws -> [String: Any] {
        try XCTUnwrap((try self.podSpec()["containers"] as? [[String: Any]])?.first { $0["name"] as? String == "erp-gateway" })
    }

    static var validator: URL { DeployFileReading.url(".build/deploy-tools/bin/kubernetes-validate") }

    func testEveryManifestIsValidAgainstTheKubernetesSchemas() throws {
        let kustomization = try DeployFileReading.mapping("\(Self.directory)/kustomization.yaml")
        let files = try XCTUnwrap(kustomization["resources"] as? [String])
        let present = try FileManager.default.contentsOfDirectory(atPath: DeployFileReading.url(Self.directory).path).filter { $0.hasSuffix(".yaml") }
        XCTAssertEqual(Set(files), Set(present).subtracting(["kustomization.yaml"]), "kustomization.yaml lists every manifest")

        guard FileManager.default.isExecutableFile(atPath: Self.validator.path) else {
            return XCTFail("\(Self.validator.path) is missing: run scripts/install-deps.sh")
        }
        for file in files {
            let (status, output) = try runCommand(Self.validator, ["--strict", DeployFileReading.url("\(Self.directory)/\(file)").path])
            XCTAssertEqual(status, 0, output)
            XCTAssertTrue(output.contains("passed"), output)
        }
        // The validator does refuse what the API server would.
        let broken = try DeployFileReading.temporaryDirectory("manifest").appendingPathComponent("deployment.yaml")
        defer { try? FileManager.default.removeItem(at: broken.deletingLastPathComponent()) }
        try DeployFilesTests.text("\(Self.directory)/deployment.yaml").replacingOccurrences(of: "terminationGracePeriodSeconds: 35", with: "terminationGracePeriodSeconds: soon")
            .write(to: broken, atomically: true, encoding: .utf8)
        XCTAssertNotEqual(try runCommand(Self.validator, ["--strict", broken.path]).0, 0)
    }

    func testProbesPortsAndTheDrainMatchTheSettings() throws {
        let settings = try DeployFileReading.listeners(ofSettings: Self.configMapSettings())
        XCTAssertEqual(settings.addresses, ["0.0.0.0", "0.0.0.0", "0.0.0.0"], "the kubelet and the Services reach the pod's address")
        let ops = try XCTUnwrap(settings.ops)
        let container = try Self.container()
        var ports: [String: Int] = [:]
        for port in container["ports"] as? [[String: Any]] ?? [] { ports[port["name"] as? String ?? ""] = port["containerPort"] as? Int }
        XCTAssertEqual(ports, ["http": settings.listener, "admin": try XCTUnwrap(settings.admin), "ops": ops])

        func probe(_ name: String) throws -> (path: String, port: Int) {
            let get = try XCTUnwrap((container[name] as? [String: Any])?["httpGet"] as? [String: Any], name)
            let port = try XCTUnwrap((get["port"] as? Int) ?? (get["port"] as? String).flatMap { ports[$0] }, name)
            return (try XCTUnwrap(get["path"] as? String), port)
        }
        XCTAssertTrue(try probe("readinessProbe") == ("/readyz", ops))
        XCTAssertTrue(try probe("livenessProbe") == ("/healthz", ops))
        XCTAssertTrue(try probe("startupProbe") == ("/healthz", ops))
        XCTAssertEqual((container["env"] as? [[String: Any]])?.first { $0["name"] as? String == "ERP_GATEWAY_OPS_PORT" }?["value"] as? String, "\(ops)")

        // The pod is given longer than the preStop pause and the drain together.
        let pod = try Self.podSpec()
        let preStop = (((container["lifecycle"] as? [String: Any])?["preStop"] as? [String: Any])?["exec"] as? [String: Any])?["command"] as? [String]
        XCTAssertEqual(preStop?.first, "/bin/sleep")
        let pause = try XCTUnwrap(preStop?.last.flatMap { Double($0) })
        let grace = try XCTUnwrap(pod["terminationGracePeriodSeconds"] as? Int)
        XCTAssertGreaterThan(Double(grace), pause + settings.shutdownGrace)

        // Services send to the data plane and the admin API; none exposes the unauthenticated ops port.
        for service in try Self.resources().filter({ $0["kind"] as? String == "Service" }) {
            for port in ((service["spec"] as? [String: Any])?["ports"] as? [[String: Any]]) ?? [] {
                let target = try XCTUnwrap(port["targetPort"] as? String)
                XCTAssertTrue(["http", "admin"].contains(target), "\(Self.name(of: service) ?? "") sends to \(target)")
            }
        }
    }

    func testThePodIsHardenedSpreadAndScaled() throws {
        let deployment = try Self.resource("Deployment", "erp-gateway")
        let spec = try XCTUnwrap(deployment["spec"] as? [String: Any])
        XCTAssertGreaterThanOrEqual(spec["replicas"] as? Int ?? 0, 2)
        let pod = try Self.podSpec()
        let container = try Self.container()
        let podSecurity = try XCTUnwrap(pod["securityContext"] as? [String: Any])
        let security = try XCTUnwrap(container["securityContext"] as? [String: Any])
        XCTAssertEqual(podSecurity["runAsNonRoot"] as? Bool, true)
        XCTAssertEqual(security["readOnlyRootFilesystem"] as? Bool, true)
        XCTAssertEqual(security["allowPrivilegeEscalation"] as? Bool, false)
        XCTAssertEqual((security["capabilities"] as? [String: Any])?["drop"] as? [String], ["ALL"])
        // The image's user (deploy/docker/Dockerfile).
        let imageUser = try XCTUnwrap(try DockerImageTests.stages().last?.all("USER").last)
        XCTAssertEqual("\(podSecurity["runAsUser"] as? Int ?? -1):\(podSecurity["runAsGroup"] as? Int ?? -1)", imageUser)
        let resources = try XCTUnwrap(container["resources"] as? [String: Any])
        XCTAssertNotNil((resources["requests"] as? [String: Any])?["cpu"], "the autoscaler's utilization is of the CPU request")
        XCTAssertNotNil((resources["limits"] as? [String: Any])?["memory"])
        XCTAssertFalse((pod["topologySpreadConstraints"] as? [Any] ?? []).isEmpty)

        let labels = try XCTUnwrap(((spec["template"] as? [String: Any])?["metadata"] as? [String: Any])?["labels"] as? [String: String])
        func selects(_ selector: [String: Any]?) -> Bool {
            guard let selector = selector as? [String: String], !selector.isEmpty else { return false }
            return selector.allSatisfy { labels[$0.key] == $0.value }
        }
        XCTAssertTrue(selects((spec["selector"] as? [String: Any])?["matchLabels"] as? [String: Any]))
        let budget = try XCTUnwrap(try Self.resource("PodDisruptionBudget")["spec"] as? [String: Any])
        XCTAssertTrue(selects((budget["selector"] as? [String: Any])?["matchLabels"] as? [String: Any]))
        for service in try Self.resources().filter({ $0["kind"] as? String == "Service" }) {
            XCTAssertTrue(selects((service["spec"] as? [String: Any])?["selector"] as? [String: Any]), Self.name(of: service) ?? "")
        }
        let autoscaler = try Self.resource("HorizontalPodAutoscaler")
        XCTAssertEqual(autoscaler["apiVersion"] as? String, "autoscaling/v2")
        let scaling = try XCTUnwrap(autoscaler["spec"] as? [String: Any])
        XCTAssertEqual((scaling["scaleTargetRef"] as? [String: Any])?["name"] as? String, "erp-gateway")
        XCTAssertGreaterThanOrEqual(scaling["minReplicas"] as? Int ?? 0, 2)
        let metric = (scaling["metrics"] as? [[String: Any]])?.first?["resource"] as? [String: Any]
        XCTAssertEqual(metric?["name"] as? String, "cpu")
    }

    /// The files of the pod's projected volume, by their path under the mount: the ConfigMap's
    /// and the Secret's items as the kubelet writes them.
    static func mountedFiles() throws -> (mountPath: String, files: [String: String]) {
        let pod = try self.podSpec()
        let mount = try XCTUnwrap((try self.container()["volumeMounts"] as? [[String: Any]])?.first)
        let volume = try XCTUnwrap((pod["volumes"] as? [[String: Any]])?.first { $0["name"] as? String == mount["name"] as? String })
        let sources = try XCTUnwrap((volume["projected"] as? [String: Any])?["sources"] as? [[String: Any]])
        var files: [String: String] = [:]
        for source in sources {
            let (kind, value) = try XCTUnwrap(source.first { $0.key == "configMap" || $0.key == "secret" })
            let reference = try XCTUnwrap(value as? [String: Any])
            let object = try self.resource(kind == "configMap" ? "ConfigMap" : "Secret", reference["name"] as? String)
            var data = (object["stringData"] as? [String: Any]) ?? (object["data"] as? [String: Any]) ?? [:]
            if kind == "secret", let encoded = object["data"] as? [String: String] {
                for (key, value) in encoded { data[key] = Data(base64Encoded: value).map { String(decoding: $0, as: UTF8.self) } }
            }
            for item in reference["items"] as? [[String: Any]] ?? [] {
                let key = try XCTUnwrap(item["key"] as? String)
                files[try XCTUnwrap(item["path"] as? String)] = try XCTUnwrap(data[key] as? String, "\(kind) has no \(key)")
            }
        }
        return (try XCTUnwrap(mount["mountPath"] as? String), files)
    }

    func testTheBinaryAcceptsTheSettingsAsThePodMountsThem() throws {
        let (mountPath, files) = try Self.mountedFiles()
        let arguments = try XCTUnwrap(try Self.container()["args"] as? [String])
        let config = try XCTUnwrap(arguments.firstIndex(of: "--config").map { arguments[$0 + 1] })
        XCTAssertEqual(config, mountPath + "/gateway.yaml")
        XCTAssertNotNil(files["gateway.yaml"])

        let root = try DeployFileReading.temporaryDirectory("pod")
        defer { try? FileManager.default.removeItem(at: root) }
        for (path, contents) in files { try DeployFileReading.write(contents, at: path, under: root) }
        let (status, output) = try DeployFileReading.check(root.appendingPathComponent("gateway.yaml"))
        XCTAssertEqual(status, 0, output)
        XCTAssertTrue(output.contains(": ok ("), output)

        // Every file is needed: without any one of them, check fails (the settings name it).
        for path in files.keys.sorted() where path != "gateway.yaml" {
            try FileManager.default.moveItem(at: root.appendingPathComponent(path), to: root.appendingPathComponent("aside"))
            XCTAssertNotEqual(try DeployFileReading.check(root.appendingPathComponent("gateway.yaml")).status, 0, "\(path) is mounted but named by nothing")
            try FileManager.default.moveItem(at: root.appendingPathComponent("aside"), to: root.appendingPathComponent(path))
        }
    }

    /// The kubelet writes a ConfigMap volume as timestamped directories behind a `..data`
    /// symlink, and updates it by swapping that link: the gateway reloads from it.
    func testAnUpdatedConfigMapIsReloadedFromTheKubeletsLayout() throws {
        let redis = try RedisProcess()
        defer { redis.stop() }
        let (_, mounted) = try Self.mountedFiles()
        let (port, adminPort, opsPort) = (try freePort(), try freePort(), try freePort())
        func files(retentionMinutes: Int) -> [String: String] {
            var files = mounted
            files["gateway.yaml"] = mounted["gateway.yaml"]!
                .replacingOccurrences(of: "  port: 8080\n", with: "  port: \(port)\n")
                .replacingOccurrences(of: "    port: 8081\n", with: "    port: \(adminPort)\n")
                .replacingOccurrences(of: "  port: 9090\n", with: "  port: \(opsPort)\n")
                .replacingOccurrences(of: "0.0.0.0", with: "127.0.0.1")
                .replacingOccurrences(of: "url: redis://redis:6379/0", with: "url: \(redis.url)")
                .replacingOccurrences(of: "retentionMinutes: 60", with: "retentionMinutes: \(retentionMinutes)")
            return files
        }
        let volume = try DeployFileReading.temporaryDirectory("configmap-volume")
        defer { try? FileManager.default.removeItem(at: volume) }
        // The layout of the kubelet's atomic writer: files in `..<timestamp>/`, `..data` the
        // current one, each top-level name a symlink through `..data`.
        func publish(_ files: [String: String], as generation: String) throws {
            for (path, contents) in files { try DeployFileReading.write(contents, at: path, under: volume.appendingPathComponent("..\(generation)")) }
            try FileManager.default.createSymbolicLink(atPath: volume.appendingPathComponent("..data_tmp").path, withDestinationPath: "..\(generation)")
            XCTAssertEqual(rename(volume.appendingPathComponent("..data_tmp").path, volume.appendingPathComponent("..data").path), 0)
        }
        try publish(files(retentionMinutes: 60), as: "2026_12_03_10_00_00.1")
        for name in Set(mounted.keys.map { String($0.split(separator: "/")[0]) }) {
            try FileManager.default.createSymbolicLink(atPath: volume.appendingPathComponent(name).path, withDestinationPath: "..data/\(name)")
        }

        let log = volume.deletingLastPathComponent().appendingPathComponent(volume.lastPathComponent + ".log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: log) }
        let process = Process()
        process.executableURL = GatewayProcess.binary
        process.arguments = ["serve", "--config", volume.appendingPathComponent("gateway.yaml").path, "--watch-interval-ms", "100"]
        let output = try FileHandle(forWritingTo: log)
        process.standardOutput = output
        process.standardError = output
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() } }
        func logText() -> String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }
        try waitUntilAccepting(port: port, process: process)
        XCTAssertFalse(logText().contains("configuration reloaded"))

        try publish(files(retentionMinutes: 30), as: "2026_12_03_10_05_00.2")
        XCTAssertTrue(SystemdUnitTests.wait(for: "configuration reloaded", in: logText), logText())
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, logText())
    }
}
