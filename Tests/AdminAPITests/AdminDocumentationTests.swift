import AdminAPI
import Foundation
import GatewayConfig
import XCTest
import Yams

/// The OpenAPI document lists exactly the routes the router serves, and the settings shown in
/// docs/admin-api.md are settings the loader accepts.
final class AdminDocumentationTests: XCTestCase {
    static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    static func text(_ path: String) throws -> String {
        try String(contentsOf: Self.packageRoot.appendingPathComponent(path), encoding: .utf8)
    }

    static let methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

    /// `METHOD /path` for every operation in the OpenAPI document.
    func documentedOperations() throws -> Set<String> {
        let document = try XCTUnwrap(try Yams.load(yaml: try Self.text("docs/admin-api.openapi.yaml")) as? [String: Any])
        let paths = try XCTUnwrap(document["paths"] as? [String: Any])
        var operations: Set<String> = []
        for (path, item) in paths {
            let members = try XCTUnwrap(item as? [String: Any])
            for method in Self.methods where members[method.lowercased()] != nil {
                operations.insert("\(method) \(path)")
            }
        }
        return operations
    }

    func testTheOpenAPIDocumentListsExactlyTheServedRoutes() throws {
        let documented = try self.documentedOperations()
        XCTAssertEqual(documented, Set(AdminRoute.table.map { "\($0.method) \($0.path)" }))
        // And the router itself: every method on every documented path and on paths next to
        // them matches exactly when the document lists it.
        let shapes = Set(AdminRoute.table.map(\.path)).union(["/admin/v1/nodes/{id}/unknown", "/admin/v1/nodes", "/admin/v1/other/{id}"])
        for shape in shapes {
            for method in Self.methods {
                let served: Bool
                if case .success = AdminRoute.match(method: method, path: shape.replacingOccurrences(of: "{id}", with: "acme")) { served = true } else { served = false }
                XCTAssertEqual(served, documented.contains("\(method) \(shape)"), "\(method) \(shape)")
            }
        }
    }

    func testTheSettingsInTheGuideLoad() throws {
        let guide = try Self.text("docs/admin-api.md")
        let blocks = guide.components(separatedBy: "```yaml\n").dropFirst().map { $0.components(separatedBy: "```").first ?? "" }
        let settings = try XCTUnwrap(blocks.first { $0.hasPrefix("admin:") }, "docs/admin-api.md shows the admin section")
        let document = AdminFixture.settingsYAML.components(separatedBy: "admin:\n").first! + settings
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("admin-doc-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        // The guide's key file, so the loader can read it.
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("keys"), withIntermediateDirectories: true)
        try Self.text("deploy/examples/keys/platform-1.public.pem").write(to: directory.appendingPathComponent("keys/admin-1.public.pem"), atomically: true, encoding: .utf8)
        let loaded = try SettingsLoader.parse(document, baseDirectory: directory.path)
        let admin = try XCTUnwrap(loaded.admin)
        XCTAssertEqual(admin.issuers.count, 1)
        XCTAssertEqual(admin.roleClaim, "role")
    }
}
