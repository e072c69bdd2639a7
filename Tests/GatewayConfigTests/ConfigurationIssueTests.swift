import XCTest
@testable import GatewayConfig

final class ConfigurationIssueTests: XCTestCase {
    func testIssueDescriptionIsLineColumnPathMessage() {
        let issue = ConfigurationIssue(path: "cells[1].endpoints[0]", line: 14, column: 9, message: "'localhost' is not HOST:PORT")
        XCTAssertEqual(issue.description, "14:9: cells[1].endpoints[0]: 'localhost' is not HOST:PORT")
    }

    func testIssueWithoutAPositionOrPath() {
        XCTAssertEqual(ConfigurationIssue(path: "", message: "the document is empty").description, "(document): the document is empty")
        XCTAssertEqual(ConfigurationIssue(path: "listener", line: 3, message: "m").description, "3:1: listener: m")
    }

    func testErrorDescriptionPutsTheSourceInFrontOfEachIssue() {
        let error = ConfigurationError(source: "gateway.yaml", issues: [
            ConfigurationIssue(path: "listener.port", line: 3, column: 9, message: "must be between 0 and 65535, got 70000"),
            ConfigurationIssue(path: "", message: "missing required key 'defaultCell'"),
        ])
        XCTAssertEqual(error.description, """
            gateway.yaml:3:9: listener.port: must be between 0 and 65535, got 70000
            gateway.yaml:(document): missing required key 'defaultCell'
            """)
    }

    func testLoaderErrorsDescribeThemselvesWithSourceLineColumnAndPath() {
        let yaml = minimalSettingsYAML.replacingOccurrences(of: "port: 8080", with: "port: 70000")
        do {
            _ = try SettingsLoader.parse(yaml, source: "deploy/gateway.yaml")
            XCTFail("expected an error")
        } catch {
            XCTAssertEqual(error.description, "deploy/gateway.yaml:2:9: listener.port: must be between 0 and 65535, got 70000")
        }
    }
}
