import Foundation
import NIOPosix
import UpstreamFixtures
import XCTest

/// Starts real upstream servers on loopback and the real gateway binary in front of them.
class GatewayTestCase: XCTestCase {
    static let upstreamGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    var backends: [DemoBackend] = []
    var gateway: GatewayProcess!

    func startBackends(_ count: Int) async throws {
        for index in 0..<count {
            self.backends.append(try await DemoBackend.start(name: "backend-\(index)", group: Self.upstreamGroup))
        }
    }

    /// Starts `count` backends (unless some are running) and a gateway in front of them.
    func startGateway(backends count: Int = 1, _ overrides: [String: [String: String]] = [:], endpoints: [Int]? = nil) async throws {
        if self.backends.isEmpty, endpoints == nil { try await self.startBackends(count) }
        self.gateway = try GatewayProcess(settings: gatewaySettings(endpoints: endpoints ?? self.backends.map(\.port), overrides))
    }

    override func tearDown() async throws {
        if let gateway = self.gateway {
            gateway.stop()
            if (self.testRun?.totalFailureCount ?? 0) > 0 {
                print("--- gateway log ---\n\(gateway.log)")
            }
        }
        self.gateway = nil
        for backend in self.backends { await backend.stop() }
        self.backends = []
    }

    var port: Int { self.gateway.port }

    /// Polls `probe` until it returns true, for at most `seconds`.
    func eventually(_ seconds: Double, _ probe: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try probe() { return true }
            usleep(50_000)
        }
        return false
    }

    /// A gateway in front of the running backends with `tree` as its tenant tree, and `extra`
    /// settings (an issuer, `redis`, …) after the defaults.
    func treeGateway(_ tree: String, _ overrides: [String: [String: String]] = [:], extra: String) throws -> GatewayProcess {
        try GatewayProcess(
            settings: gatewaySettings(endpoints: self.backends.map(\.port), overrides, tenantTree: "tenants.yaml", extra: extra),
            files: ["tenants.yaml": tree]
        )
    }

    /// Asserts an RFC 9457 problem answer with the given status and `type` slug, and that it
    /// does not leak upstream addresses.
    func assertProblem(_ response: RawHTTPConnection.Response, status: Int, slug: String, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(response.status, status, response.text, file: file, line: line)
        XCTAssertEqual(response.header("content-type"), "application/problem+json", file: file, line: line)
        let json = try response.json()
        XCTAssertEqual(json["type"] as? String, "urn:erp-gateway:problem:\(slug)", file: file, line: line)
        XCTAssertEqual(json["status"] as? Int, status, file: file, line: line)
        let requestID = json["requestId"] as? String
        XCTAssertNotNil(requestID, file: file, line: line)
        XCTAssertEqual(response.header("x-request-id"), requestID, file: file, line: line)
        XCTAssertFalse(response.text.contains("127.0.0.1"), "a problem body must not name an upstream address", file: file, line: line)
        for backend in self.backends {
            XCTAssertFalse(response.text.contains(":\(backend.port)"), file: file, line: line)
        }
    }
}

/// The JSON the demo backend answers with, describing the request it received.
struct SeenRequest {
    var backend: String
    var method: String
    var uri: String
    var headers: [(String, String)]
    var bodyBytes: Int
    var bodyIsPattern: Bool

    init(_ response: RawHTTPConnection.Response) throws {
        let json = try response.json()
        self.backend = json["backend"] as? String ?? ""
        self.method = json["method"] as? String ?? ""
        self.uri = json["uri"] as? String ?? ""
        self.headers = (json["headers"] as? [[String]] ?? []).map { ($0[0], $0[1]) }
        self.bodyBytes = json["bodyBytes"] as? Int ?? -1
        self.bodyIsPattern = json["bodyIsPattern"] as? Bool ?? false
    }

    func values(_ name: String) -> [String] {
        self.headers.filter { $0.0.lowercased() == name.lowercased() }.map(\.1)
    }

    func value(_ name: String) -> String? { self.values(name).first }
}
