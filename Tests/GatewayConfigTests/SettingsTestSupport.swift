import XCTest
@testable import GatewayConfig

/// The smallest document the loader accepts; tests that need one more key build on it.
let minimalSettingsYAML = """
    listener:
      port: 8080
    cells:
      - id: pooled-eu-1
        kind: pooled
        region: eu-west
        endpoints:
          - 127.0.0.1:9101
    defaultCell: pooled-eu-1
    """

/// A valid `upstreamContext` section (one 32-byte key), which a document with a `tenantTree` needs.
let upstreamContextYAML = """
    upstreamContext:
      signingKeys:
        - id: ctx-test-1
          secret: MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=
      activeKey: ctx-test-1
    """

/// The issues a rejected document produces; fails the test when the document is accepted.
func rejectionIssues(
    of yaml: String, source: String = "test.yaml", baseDirectory: String? = nil, file: StaticString = #filePath, line: UInt = #line
) -> [ConfigurationIssue] {
    do {
        let settings = try SettingsLoader.parse(yaml, source: source, baseDirectory: baseDirectory)
        XCTFail("expected the document to be rejected, got \(settings)", file: file, line: line)
        return []
    } catch {
        XCTAssertEqual(error.source, source, file: file, line: line)
        return error.issues
    }
}

/// The only issue of a document that has exactly one problem.
func singleIssue(of yaml: String, file: StaticString = #filePath, line: UInt = #line) -> ConfigurationIssue? {
    let issues = rejectionIssues(of: yaml, file: file, line: line)
    XCTAssertEqual(issues.count, 1, "issues: \(issues)", file: file, line: line)
    return issues.first
}

/// Asserts an issue's key path and line, and that its message mentions `mentioning`.
func assertIssue(
    _ issue: ConfigurationIssue?, path: String, line expectedLine: Int?, mentioning: String,
    file: StaticString = #filePath, line: UInt = #line
) {
    guard let issue else {
        XCTFail("no issue", file: file, line: line)
        return
    }
    XCTAssertEqual(issue.path, path, "\(issue)", file: file, line: line)
    XCTAssertEqual(issue.line, expectedLine, "\(issue)", file: file, line: line)
    XCTAssertTrue(issue.message.contains(mentioning), "'\(issue.message)' does not mention '\(mentioning)'", file: file, line: line)
}
