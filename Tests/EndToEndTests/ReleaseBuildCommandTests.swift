import Foundation
import XCTest

/// Every command that builds the release binary builds it alike: SwiftNIO and the other packages
/// without run-time exclusivity checks too (`Package.swift` can set that only for this package's
/// own modules). A script that built without the flag would measure another binary — and
/// rebuild every module of `.build/release` for it.
final class ReleaseBuildCommandTests: XCTestCase {
    static let flag = "-Xswiftc -enforce-exclusivity=unchecked"

    /// The lines of the benchmark scripts and the Dockerfile that build with `swift build`, with
    /// their file: every release build among them carries the flag.
    func testEveryReleaseBuildOfTheScriptsAndTheImageLeavesOutTheChecksAlike() throws {
        let root = DeployFilesTests.packageRoot
        let bench = root.appendingPathComponent("bench")
        var files = try FileManager.default.contentsOfDirectory(atPath: bench.path).filter { $0.hasSuffix(".sh") }.map { "bench/" + $0 }
        files.append("deploy/docker/Dockerfile")
        var releaseBuilds = 0
        for file in files.sorted() {
            for line in try DeployFilesTests.text(file).split(separator: "\n") where line.contains("swift build") && !line.contains("--show-bin-path") {
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                guard !trimmed.hasPrefix("#") else { continue }
                if line.contains("swift build -c release") {
                    releaseBuilds += 1
                    XCTAssertTrue(line.contains(Self.flag), "\(file): \(trimmed)")
                } else if line.contains("swift build -c \"$") {
                    // A build of either configuration: the flag comes for release only.
                    releaseBuilds += 1
                    XCTAssertTrue(line.contains("$(build_flags "), "\(file): \(trimmed)")
                }
            }
        }
        XCTAssertGreaterThan(releaseBuilds, 20, "the scripts' release builds were not found")
    }
}
