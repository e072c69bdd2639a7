import Foundation
import XCTest

/// docs/configuration.md shows the example files: the full examples are the files as they are,
/// and every other YAML snippet is cut from one of them, so the reference cannot drift from a
/// configuration the tests load.
final class ConfigurationDocumentationTests: XCTestCase {
    private static var packageRoot: URL {
        URL(fileURLWithPath: #filePath)  // Tests/GatewayConfigTests/ConfigurationDocumentationTests.swift
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    private func text(_ relativePath: String) throws -> String {
        try String(contentsOf: Self.packageRoot.appendingPathComponent(relativePath), encoding: .utf8)
    }

    /// The ```yaml blocks of a Markdown text, each with the paragraph just before it.
    private static func yamlBlocks(in markdown: String) -> [(introduction: String, body: String)] {
        let lines = markdown.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var blocks: [(String, String)] = []
        var index = 0
        while index < lines.count {
            guard lines[index] == "```yaml" else {
                index += 1
                continue
            }
            let paragraphEnd = lines[..<index].lastIndex { !$0.isEmpty } ?? 0
            let paragraphStart = lines[..<paragraphEnd].lastIndex { $0.isEmpty }.map { $0 + 1 } ?? 0
            let introduction = lines[paragraphStart...paragraphEnd].joined(separator: " ")
            let end = lines[(index + 1)...].firstIndex { $0 == "```" } ?? lines.count
            blocks.append((introduction, lines[(index + 1)..<end].joined(separator: "\n") + "\n"))
            index = end + 1
        }
        return blocks
    }

    func testFullExamplesAreTheExampleFiles() throws {
        let blocks = Self.yamlBlocks(in: try self.text("docs/configuration.md"))
        for file in ["deploy/examples/gateway.yaml", "deploy/examples/tenants.yaml"] {
            let shown = blocks.filter { $0.introduction.hasPrefix("This is `\(file)`") }
            XCTAssertEqual(shown.count, 1, "one full example of \(file)")
            guard let body = shown.first?.body else { continue }
            let expected = try self.text(file)
            if body != expected {
                let (shownLines, fileLines) = (body.split(separator: "\n", omittingEmptySubsequences: false), expected.split(separator: "\n", omittingEmptySubsequences: false))
                let first = (0..<min(shownLines.count, fileLines.count)).first { shownLines[$0] != fileLines[$0] } ?? min(shownLines.count, fileLines.count)
                XCTFail("the full example of \(file) differs from the file at its line \(first + 1)")
            }
        }
    }

    func testEverySnippetIsCutFromAnExampleFile() throws {
        let examples = [try self.text("deploy/examples/gateway.yaml"), try self.text("deploy/examples/tenants.yaml")]
        for block in Self.yamlBlocks(in: try self.text("docs/configuration.md")) {
            XCTAssertTrue(examples.contains { $0.contains(block.body) }, "not in deploy/examples:\n\(block.body)")
        }
    }
}
