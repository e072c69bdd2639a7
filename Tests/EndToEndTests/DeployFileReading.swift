import Foundation
import XCTest
import Yams

/// Reading deploy/: its YAML as plain values, the ports and durations of a settings file, and
/// the real binary's `check` of a directory laid out the way a deployment mounts it.
enum DeployFileReading {
    static func url(_ path: String) -> URL { DeployFilesTests.packageRoot.appendingPathComponent(path) }

    /// Every document of a YAML file, mappings as `[String: Any]`.
    static func documents(_ path: String) throws -> [[String: Any]] {
        try self.documents(text: DeployFilesTests.text(path))
    }

    static func documents(text: String) throws -> [[String: Any]] {
        try Yams.load_all(yaml: text).compactMap { self.plain($0) as? [String: Any] }
    }

    static func mapping(_ path: String) throws -> [String: Any] {
        try XCTUnwrap(self.documents(path).first, "\(path) holds no YAML mapping")
    }

    /// Yams gives mappings keyed by `AnyHashable`; the tests read them by string.
    static func plain(_ value: Any) -> Any {
        if let mapping = value as? [AnyHashable: Any] {
            return Dictionary(uniqueKeysWithValues: mapping.map { (String(describing: $0.key.base), self.plain($0.value)) })
        }
        if let sequence = value as? [Any] { return sequence.map { self.plain($0) } }
        return value
    }

    /// A duration of the settings (`20s`, `250ms`, `2m`, `1h`) or of a compose file (`30s`), in seconds.
    static func seconds(_ text: String) -> Double? {
        for (suffix, factor) in [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)] where text.hasSuffix(suffix) {
            if let number = Double(text.dropLast(suffix.count)) { return number * factor }
        }
        return nil
    }

    /// What a settings file opens, as the deploy files must match it.
    struct Listeners: Equatable {
        var listener: Int
        var admin: Int?
        var ops: Int?
        /// The three listeners' bind addresses, in that order (nil for one that is off).
        var addresses: [String?]
        var shutdownGrace: Double

        var ports: Set<Int> { Set([self.listener, self.admin, self.ops].compactMap { $0 }) }
    }

    static func listeners(ofSettings text: String) throws -> Listeners {
        let settings = try XCTUnwrap(self.documents(text: text).first)
        let listener = try XCTUnwrap(settings["listener"] as? [String: Any])
        let admin = (settings["admin"] as? [String: Any])?["listener"] as? [String: Any]
        let ops = settings["ops"] as? [String: Any]
        let grace = ((settings["timeouts"] as? [String: Any])?["shutdownGrace"] as? String).flatMap(self.seconds) ?? 20
        return Listeners(
            listener: try XCTUnwrap(listener["port"] as? Int),
            admin: admin?["port"] as? Int,
            ops: ops?["port"] as? Int,
            addresses: [listener["address"] as? String, admin?["address"] as? String, ops?["address"] as? String],
            shutdownGrace: grace
        )
    }

    /// A new, empty temporary directory.
    static func temporaryDirectory(_ name: String) throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("erp-gateway-\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    /// Writes `contents` at `path` under `root`, making the directories on the way.
    static func write(_ contents: String, at path: String, under root: URL) throws {
        let file = root.appendingPathComponent(path)
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        try contents.write(to: file, atomically: true, encoding: .utf8)
    }

    /// `erp-gateway check --config FILE`: the validation every start and reload applies.
    static func check(_ settings: URL) throws -> (status: Int32, output: String) {
        let (status, output) = try runCommand(GatewayProcess.binary, ["check", "--config", settings.path])
        return (status, output)
    }

    /// `ldd` of a built binary: the path of every shared library it loads.
    static func sharedLibraries(of binary: URL) throws -> [String] {
        let (status, output) = try runCommand(URL(fileURLWithPath: "/usr/bin/ldd"), [binary.path])
        XCTAssertEqual(status, 0, output)
        return output.split(separator: "\n").compactMap { line -> String? in
            let fields = line.split(separator: " ")
            if let arrow = fields.firstIndex(of: "=>"), arrow + 1 < fields.count, fields[arrow + 1].hasPrefix("/") {
                return String(fields[arrow + 1])
            }
            return fields.first.flatMap { $0.hasPrefix("/") ? String($0) : nil }
        }
    }

    /// The Debian package that installed each library; nil for one no package installed (the
    /// Swift toolchain's own). One `dpkg -S` for all: it takes a second a call.
    static func debianPackages(of libraries: [String]) throws -> [String: String?] {
        // Debian 12 merges /lib into /usr/lib; dpkg knows each file under the name it shipped.
        var names: [String: [String]] = [:]
        for library in libraries {
            let real = URL(fileURLWithPath: library).resolvingSymlinksInPath().path
            var candidates = [library, real]
            for path in [library, real] {
                if path.hasPrefix("/usr/lib/") { candidates.append(String(path.dropFirst(4))) }
                if path.hasPrefix("/lib") { candidates.append("/usr" + path) }
            }
            names[library] = candidates
        }
        let (_, output) = try runCommand(URL(fileURLWithPath: "/usr/bin/dpkg"), ["-S"] + Array(Set(names.values.joined())))
        var owners: [String: String] = [:]
        for line in output.split(separator: "\n") {
            // "libjwt0:amd64: /usr/lib/x86_64-linux-gnu/libjwt.so.0"
            guard let separator = line.range(of: ": /") else { continue }
            let package = line[..<separator.lowerBound].split(separator: ":")[0]
            owners[String(line[line.index(before: separator.upperBound)...])] = String(package)
        }
        return names.mapValues { candidates in candidates.lazy.compactMap { owners[$0] }.first }
    }
}
