import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Starting, checking and stopping the real binary.
final class LifecycleTests: GatewayTestCase {
    func testGracefulShutdownLetsInFlightRequestsFinish() async throws {
        try await self.startGateway()
        let inFlight = try RawHTTPConnection(port: self.port)
        try inFlight.send(requestText("GET", "/delay/1500"))
        let idle = try RawHTTPConnection(port: self.port)
        try idle.send(requestText("GET", "/"))
        XCTAssertEqual(try idle.readResponse().status, 200)
        // Let the slow request reach the upstream before the signal.
        let deadline = Date().addingTimeInterval(5)
        while self.backends[0].statistics.connectionsAccepted < 2 && Date() < deadline { usleep(10_000) }
        usleep(200_000)

        self.gateway.signal(SIGTERM)
        let response = try inFlight.readResponse()
        XCTAssertEqual(response.status, 200, "the request in flight completes")
        XCTAssertEqual(try SeenRequest(response).uri, "/delay/1500")
        XCTAssertEqual(response.header("connection"), "close")
        XCTAssertTrue(idle.waitForClose(seconds: 5), "idle keep-alive connections are closed")
        self.gateway.process.waitUntilExit()
        XCTAssertEqual(self.gateway.process.terminationStatus, 0)
        XCTAssertThrowsError(try RawHTTPConnection(port: self.port), "no longer accepting")
    }

    func testGraceExpiresForRequestsThatTakeTooLong() async throws {
        try await self.startGateway(backends: 1, ["timeouts": ["shutdownGrace": "300ms", "upstreamResponse": "30s"]])
        let inFlight = try RawHTTPConnection(port: self.port)
        try inFlight.send(requestText("GET", "/delay/10000"))
        usleep(300_000)
        let started = Date()
        self.gateway.signal(SIGINT)
        self.gateway.process.waitUntilExit()
        XCTAssertEqual(self.gateway.process.terminationStatus, 0)
        XCTAssertLessThan(Date().timeIntervalSince(started), 8, "the grace period bounds the shutdown")
        XCTAssertTrue(inFlight.waitForClose(seconds: 5))
    }

    func testCheckPrintsEveryErrorWithItsLocation() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("erp-gateway-check-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let broken = directory.appendingPathComponent("broken.yaml")
        try """
        listener:
          port: 99999
        timeouts:
          headerRead: ten seconds
        cells:
          - id: Pooled_EU
            kind: shared
            region: eu-west
            endpoints: [localhost]
        defaultCel: pooled-eu
        """.write(to: broken, atomically: true, encoding: .utf8)
        let (status, output) = try runCommand(GatewayProcess.binary, ["check", "--config", broken.path])
        XCTAssertNotEqual(status, 0)
        for expected in [
            "broken.yaml:2:9: listener.port: must be between 0 and 65535",
            "broken.yaml:4:15: timeouts.headerRead: expected a duration",
            "cells[0].id: 'Pooled_EU' is not a valid cell id",
            "cells[0].kind: kind must be 'pooled' or 'dedicated'",
            "cells[0].endpoints[0]: 'localhost' is not HOST:PORT",
            "defaultCel: unknown key 'defaultCel'",
            "missing required key 'defaultCell'",
        ] {
            XCTAssertTrue(output.contains(expected), "missing '\(expected)' in:\n\(output)")
        }

        let example = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("deploy/examples/gateway.yaml")
        let (okStatus, okOutput) = try runCommand(GatewayProcess.binary, ["check", "--config", example.path])
        XCTAssertEqual(okStatus, 0, okOutput)
        XCTAssertTrue(okOutput.contains("ok"))
    }

    func testServeRefusesAnInvalidFile() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("erp-gateway-bad-\(UUID().uuidString).yaml")
        try "listener: {port: 1}\ncells: []\ndefaultCell: x\n".write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let (status, output) = try runCommand(GatewayProcess.binary, ["serve", "--config", file.path])
        XCTAssertNotEqual(status, 0)
        XCTAssertTrue(output.contains("at least one cell is required"), output)
    }
}

func runCommand(_ executable: URL, _ arguments: [String]) throws -> (Int32, String) {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}
