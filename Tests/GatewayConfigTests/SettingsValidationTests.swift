import XCTest
@testable import GatewayConfig

/// Documents the loader rejects: each problem is reported with the key path and line an operator
/// needs to fix it, and one document's problems are reported together.
final class SettingsValidationTests: XCTestCase {
    // MARK: - Many problems at once

    func testEveryProblemInOneDocumentIsReportedWithItsPathAndLine() {
        let yaml = """
            listener:
              adress: 0.0.0.0
              port: 70000
            limit:
              maxHeaderBytes: 1KiB
            timeouts:
              headerRead: 10
            cells:
              - id: pooled-eu-1
                kind: shared
                region: eu-west
                endpoints:
                  - localhost
              - id: pooled-eu-1
                kind: pooled
                region: eu-west
                endpoints:
                  - 10.0.0.1:0
              - id: Dedicated_1
                kind: dedicated
                region: eu-west
                endpoints: []
            defaultCell: nowhere
            """
        let issues = rejectionIssues(of: yaml).sorted { ($0.line ?? 0, $0.column ?? 0) < ($1.line ?? 0, $1.column ?? 0) }

        let expected: [(path: String, line: Int, column: Int, mentioning: String)] = [
            ("listener.adress", 2, 3, "unknown key 'adress'"),
            ("listener.port", 3, 9, "between 0 and 65535, got 70000"),
            ("limit", 4, 1, "unknown key 'limit'"),
            ("timeouts.headerRead", 7, 15, "expected a duration"),
            ("cells[0].kind", 10, 11, "got 'shared'"),
            ("cells[0].endpoints[0]", 13, 9, "'localhost' is not HOST:PORT"),
            ("cells[1].id", 14, 9, "defined twice"),
            ("cells[1].endpoints[0]", 18, 9, "'10.0.0.1:0' is not HOST:PORT"),
            ("cells[2].id", 19, 9, "'Dedicated_1' is not a valid cell id"),
            ("cells[2].endpoints", 22, 16, "at least one endpoint"),
            ("defaultCell", 23, 14, "'nowhere'"),
        ]
        XCTAssertEqual(issues.count, expected.count, issues.map(\.description).joined(separator: "\n"))
        for (issue, want) in zip(issues, expected) {
            XCTAssertEqual(issue.path, want.path)
            XCTAssertEqual(issue.line, want.line, "\(issue)")
            XCTAssertEqual(issue.column, want.column, "\(issue)")
            XCTAssertTrue(issue.message.contains(want.mentioning), "'\(issue.message)' does not mention '\(want.mentioning)'")
        }
    }

    func testUnknownKeyMessageListsTheKnownKeysOfThatSection() {
        let issue = singleIssue(of: minimalSettingsYAML + "\nforwarding:\n  trustClientForwardedHeader: true")
        assertIssue(issue, path: "forwarding.trustClientForwardedHeader", line: 11, mentioning: "known here: trustClientForwardedHeaders")
    }

    func testCORSExposesTheGatewaysFieldsThenTheListedOnes() throws {
        XCTAssertEqual(try SettingsLoader.parse(minimalSettingsYAML).cors.exposeHeadersValue, "X-Request-Id, RateLimit, RateLimit-Policy, Retry-After")
        let settings = try SettingsLoader.parse(minimalSettingsYAML + "\ncors:\n  exposeHeaders: [ETag, X-Total-Count]")
        XCTAssertEqual(settings.cors.exposeHeaders, ["ETag", "X-Total-Count"])
        XCTAssertEqual(settings.cors.exposeHeadersValue, "X-Request-Id, RateLimit, RateLimit-Policy, Retry-After, ETag, X-Total-Count")
    }

    func testCORSListsOnlyFurtherFieldNames() {
        let issues = rejectionIssues(of: minimalSettingsYAML + "\ncors:\n  exposeHeaders: ['*', X-Request-ID, ETag, etag, 'a b']\n  allowOrigins: [x]")
        let messages = issues.map { "\($0.path): \($0.message)" }.sorted()
        XCTAssertEqual(messages.count, 5, "\(messages)")
        XCTAssertTrue(messages.contains { $0.contains("'*' is not a header field name") }, "\(messages)")
        XCTAssertTrue(messages.contains { $0.contains("'X-Request-ID' is always exposed") }, "\(messages)")
        XCTAssertTrue(messages.contains { $0.contains("'etag' is listed twice") }, "\(messages)")
        XCTAssertTrue(messages.contains { $0.contains("'a b' is not a header field name") }, "\(messages)")
        XCTAssertTrue(messages.contains { $0.hasPrefix("cors.allowOrigins: unknown key") }, "\(messages)")
    }

    func testUnknownKeyInsideACell() {
        let yaml = """
            listener:
              port: 8080
            cells:
              - id: pooled-eu-1
                kind: pooled
                regoin: eu-west
                region: eu-west
                endpoints: [127.0.0.1:9101]
            defaultCell: pooled-eu-1
            """
        assertIssue(singleIssue(of: yaml), path: "cells[0].regoin", line: 6, mentioning: "unknown key 'regoin'")
    }

    // MARK: - Required keys

    func testMissingListener() {
        let yaml = """
            cells:
              - id: pooled-eu-1
                kind: pooled
                region: eu-west
                endpoints: [127.0.0.1:9101]
            defaultCell: pooled-eu-1
            """
        let issue = singleIssue(of: yaml)
        assertIssue(issue, path: "", line: 1, mentioning: "missing required section 'listener'")
    }

    func testMissingPortIsReportedOnTheListener() {
        let yaml = """
            cells:
              - id: pooled-eu-1
                kind: pooled
                region: eu-west
                endpoints: [127.0.0.1:9101]
            listener:
              address: 127.0.0.1
            defaultCell: pooled-eu-1
            """
        assertIssue(singleIssue(of: yaml), path: "listener", line: 7, mentioning: "missing required key 'port'")
    }

    func testMissingCellsAndDefaultCellAreBothReported() {
        let yaml = """
            # no cells yet
            listener:
              port: 8080
            """
        let issues = rejectionIssues(of: yaml)
        XCTAssertEqual(issues.count, 2, "\(issues)")
        XCTAssertEqual(Set(issues.map(\.path)), [""])
        XCTAssertEqual(Set(issues.map(\.line)), [2])
        XCTAssertTrue(issues.contains { $0.message == "missing required section 'cells'" }, "\(issues)")
        XCTAssertTrue(issues.contains { $0.message == "missing required key 'defaultCell'" }, "\(issues)")
    }

    func testMissingKeysOfACellAreEachReported() {
        let yaml = """
            listener:
              port: 8080
            cells:
              - id: pooled-eu-1
            defaultCell: pooled-eu-1
            """
        let issues = rejectionIssues(of: yaml)
        let cellIssues = issues.filter { $0.path == "cells[0]" }
        XCTAssertEqual(cellIssues.map(\.message).sorted(), [
            "missing required key 'endpoints'", "missing required key 'kind'", "missing required key 'region'",
        ])
        XCTAssertEqual(Set(cellIssues.map(\.line)), [4])
        // The incomplete cell is not defined, so the default cannot name it.
        XCTAssertTrue(issues.contains { $0.path == "defaultCell" }, "\(issues)")
        XCTAssertEqual(issues.count, 4, "\(issues)")
    }

    // MARK: - Values out of range or of the wrong shape

    func testPortOutOfRange() {
        for port in ["65536", "-1", "100000"] {
            let yaml = minimalSettingsYAML.replacingOccurrences(of: "port: 8080", with: "port: \(port)")
            assertIssue(singleIssue(of: yaml), path: "listener.port", line: 2, mentioning: "must be between 0 and 65535, got \(port)")
        }
    }

    func testPortMustBeAWholeNumber() {
        for port in ["http", "80.5", "[80]"] {
            let yaml = minimalSettingsYAML.replacingOccurrences(of: "port: 8080", with: "port: \(port)")
            let issue = singleIssue(of: yaml)
            XCTAssertEqual(issue?.path, "listener.port")
            XCTAssertEqual(issue?.line, 2)
        }
    }

    func testBadListenerAddress() {
        let yaml = minimalSettingsYAML.replacingOccurrences(of: "port: 8080", with: "port: 8080\n  address: not a host")
        assertIssue(singleIssue(of: yaml), path: "listener.address", line: 3, mentioning: "'not a host' is not an IP address or host name")
    }

    func testEndpointWithoutPort() {
        let yaml = minimalSettingsYAML.replacingOccurrences(of: "127.0.0.1:9101", with: "localhost")
        assertIssue(singleIssue(of: yaml), path: "cells[0].endpoints[0]", line: 8, mentioning: "'localhost' is not HOST:PORT")
    }

    func testEndpointWithPortZero() {
        let yaml = minimalSettingsYAML.replacingOccurrences(of: "127.0.0.1:9101", with: "127.0.0.1:9101\n      - host:0")
        assertIssue(singleIssue(of: yaml), path: "cells[0].endpoints[1]", line: 9, mentioning: "'host:0' is not HOST:PORT")
    }

    func testDuplicateCellID() {
        let yaml = """
            listener:
              port: 8080
            cells:
              - id: pooled-eu-1
                kind: pooled
                region: eu-west
                endpoints: [127.0.0.1:9101]
              - id: pooled-eu-2
                kind: pooled
                region: eu-west
                endpoints: [127.0.0.1:9102]
              - id: pooled-eu-1
                kind: dedicated
                region: eu-west
                endpoints: [127.0.0.1:9103]
            defaultCell: pooled-eu-1
            """
        assertIssue(singleIssue(of: yaml), path: "cells[2].id", line: 12, mentioning: "cell id 'pooled-eu-1' is defined twice")
    }

    func testCellIDSyntax() {
        for id in ["Pooled", "1pooled", "pooled_1", "pooled-", "\"\""] {
            let yaml = minimalSettingsYAML.replacingOccurrences(of: "- id: pooled-eu-1", with: "- id: \(id)")
            let issues = rejectionIssues(of: yaml)
            let idIssue = issues.first { $0.path == "cells[0].id" }
            assertIssue(idIssue, path: "cells[0].id", line: 4, mentioning: "is not a valid cell id")
        }
    }

    func testBadRegionName() {
        let yaml = minimalSettingsYAML.replacingOccurrences(of: "region: eu-west", with: "region: EU West")
        assertIssue(singleIssue(of: yaml), path: "cells[0].region", line: 6, mentioning: "'EU West' is not a valid region name")
    }

    func testBadKind() {
        let yaml = minimalSettingsYAML.replacingOccurrences(of: "kind: pooled", with: "kind: Pooled")
        assertIssue(singleIssue(of: yaml), path: "cells[0].kind", line: 5, mentioning: "kind must be 'pooled' or 'dedicated', got 'Pooled'")
    }

    func testDefaultCellNamingAnUnknownCell() {
        let yaml = minimalSettingsYAML.replacingOccurrences(of: "defaultCell: pooled-eu-1", with: "defaultCell: pooled-eu-9")
        assertIssue(singleIssue(of: yaml), path: "defaultCell", line: 9, mentioning: "names cell 'pooled-eu-9', which is not defined")
    }

    func testEmptyCellsList() {
        let yaml = """
            listener:
              port: 8080
            cells: []
            defaultCell: pooled-eu-1
            """
        let issues = rejectionIssues(of: yaml)
        assertIssue(issues.first { $0.path == "cells" }, path: "cells", line: 3, mentioning: "at least one cell is required")
        assertIssue(issues.first { $0.path == "defaultCell" }, path: "defaultCell", line: 4, mentioning: "not defined")
        XCTAssertEqual(issues.count, 2, "\(issues)")
    }

    func testSectionThatIsNotAMapping() {
        let yaml = minimalSettingsYAML + "\nlimits: 16KiB"
        assertIssue(singleIssue(of: yaml), path: "limits", line: 10, mentioning: "expected a mapping")
    }

    func testCellsThatAreNotAList() {
        let yaml = """
            listener:
              port: 8080
            cells: pooled-eu-1
            defaultCell: pooled-eu-1
            """
        let issues = rejectionIssues(of: yaml)
        assertIssue(issues.first { $0.path == "cells" }, path: "cells", line: 3, mentioning: "expected a list")
        XCTAssertEqual(issues.count, 2, "\(issues)")  // and the default names no defined cell
    }

    func testEmptyEndpointsList() {
        let yaml = minimalSettingsYAML.replacingOccurrences(of: "endpoints:\n      - 127.0.0.1:9101", with: "endpoints: []")
        assertIssue(singleIssue(of: yaml), path: "cells[0].endpoints", line: 7, mentioning: "a cell needs at least one endpoint")
    }

    func testQuantitiesOutOfRangeOrMalformed() {
        let cases: [(section: String, path: String, mentioning: String)] = [
            ("limits:\n  maxHeaderBytes: 512", "limits.maxHeaderBytes", "must be between 1024 and 1048576 bytes, got 512"),
            ("limits:\n  maxURIBytes: 2MiB", "limits.maxURIBytes", "must be between 256 and 1048576 bytes, got 2MiB"),
            ("limits:\n  maxRequestBodyBytes: 1KB", "limits.maxRequestBodyBytes", "expected a size in bytes"),
            ("timeouts:\n  headerRead: 0s", "timeouts.headerRead", "must be between 1ms and 86400s, got 0s"),
            ("timeouts:\n  keepAliveIdle: 25h", "timeouts.keepAliveIdle", "must be between 1ms and 86400s"),
            ("timeouts:\n  upstreamConnect: 1.5s", "timeouts.upstreamConnect", "expected a duration"),
            ("timeouts:\n  shutdownGrace: 2h", "timeouts.shutdownGrace", "must be between 0s and 3600s"),
            ("upstreamPool:\n  idleTimeout: 50ms", "upstreamPool.idleTimeout", "must be between 100ms and 3600s"),
            ("upstreamPool:\n  maxConnectionsPerEndpoint: 0", "upstreamPool.maxConnectionsPerEndpoint", "must be between 1 and 10000"),
            ("forwarding:\n  trustClientForwardedHeaders: yes", "forwarding.trustClientForwardedHeaders", "expected true or false, got 'yes'"),
            ("listener2: {}", "listener2", "unknown key"),
        ]
        for (section, path, mentioning) in cases {
            let issue = singleIssue(of: minimalSettingsYAML + "\n" + section)
            let line = section.contains("\n") ? 11 : 10
            assertIssue(issue, path: path, line: line, mentioning: mentioning)
        }
    }

    func testEventLoopsOutOfRange() {
        let yaml = minimalSettingsYAML.replacingOccurrences(of: "port: 8080", with: "port: 8080\n  eventLoops: 0")
        assertIssue(singleIssue(of: yaml), path: "listener.eventLoops", line: 3, mentioning: "must be between 1 and 256, got 0")
    }

    // MARK: - Documents that are not settings at all

    func testInvalidYAMLReportsTheLine() {
        let yaml = """
            listener:
              port: 8080
              address: a: b
            """
        let issue = singleIssue(of: yaml)
        XCTAssertEqual(issue?.path, "")
        XCTAssertEqual(issue?.line, 3)
        XCTAssertNotNil(issue?.column)
        XCTAssertTrue(issue?.message.hasPrefix("not valid YAML: ") ?? false, "\(String(describing: issue))")
    }

    func testUnclosedFlowSequenceIsInvalidYAML() {
        let yaml = minimalSettingsYAML.replacingOccurrences(of: "defaultCell: pooled-eu-1", with: "defaultCell: [pooled-eu-1")
        let issue = singleIssue(of: yaml)
        XCTAssertEqual(issue?.path, "")
        XCTAssertNotNil(issue?.line)
        XCTAssertTrue(issue?.message.hasPrefix("not valid YAML: ") ?? false, "\(String(describing: issue))")
    }

    func testEmptyDocument() {
        for text in ["", "\n\n", "# only a comment\n"] {
            let issue = singleIssue(of: text)
            XCTAssertEqual(issue?.path, "")
            XCTAssertNil(issue?.line)
            XCTAssertEqual(issue?.message, "the document is empty")
        }
    }

    func testDocumentThatIsNotAMapping() {
        assertIssue(singleIssue(of: "- listener\n- cells\n"), path: "", line: 1, mentioning: "expected a mapping of keys to values")
    }

    func testDuplicateKeyIsRejectedNamingTheKey() {
        let yaml = minimalSettingsYAML.replacingOccurrences(of: "port: 8080", with: "port: 8080\n  port: 8081")
        let issues = rejectionIssues(of: yaml)
        XCTAssertEqual(issues.count, 1, "\(issues)")
        XCTAssertTrue(issues.first?.message.contains("'port'") ?? false, "\(issues)")
    }

    func testDuplicateKeyIsLocatedAndKeptToOneLine() {
        let yaml = minimalSettingsYAML.replacingOccurrences(of: "port: 8080", with: "port: 8080\n  port: 8081")
        let issue = rejectionIssues(of: yaml).first
        XCTAssertNotNil(issue?.line, "the duplicate is located: \(String(describing: issue))")
        XCTAssertFalse(issue?.description.contains("\n") ?? true, "one issue, one line")
    }

    func testMissingListenerDoesNotHideOtherProblems() {
        let yaml = """
            cells:
              - id: pooled-eu-1
                kind: pooled
                region: eu-west
                endpoints: [localhost]
            defaultCell: pooled-eu-1
            """
        let issues = rejectionIssues(of: yaml)
        XCTAssertEqual(issues.count, 2, "\(issues)")
        XCTAssertTrue(issues.contains { $0.message.contains("missing required section 'listener'") })
        XCTAssertTrue(issues.contains { $0.path == "cells[0].endpoints[0]" })
    }

    func testEmptyDefaultCell() {
        for value in ["\"\"", ""] {
            let yaml = minimalSettingsYAML.replacingOccurrences(of: "defaultCell: pooled-eu-1", with: "defaultCell: \(value)")
            assertIssue(singleIssue(of: yaml), path: "defaultCell", line: 9, mentioning: "must name one of the cells")
        }
    }

    func testAmbiguousEndpointsAndSignedQuantities() {
        XCTAssertNil(SettingsLoader.endpoint("::1"), "IPv6 must be bracketed")
        XCTAssertEqual(SettingsLoader.endpoint("[::1]:8080"), GatewaySettings.Endpoint(host: "::1", port: 8080))
        XCTAssertNil(SettingsLoader.endpoint("host:+80"))
        XCTAssertNil(SettingsLoader.endpoint("[host]:80"), "brackets only around IPv6")
        XCTAssertNil(Quantities.duration("+5s"))
        XCTAssertNil(Quantities.byteSize("+5KiB"))
        XCTAssertNil(Quantities.byteSize("+5"))
    }
}

/// The `admin` section: its own listener, its issuers, and what it needs next to it.
final class AdminSettingsTests: XCTestCase {
    let adminSection = """
        admin:
          listener: { address: 127.0.0.1, port: 8081 }
          issuers:
            - iss: https://admin.test
              audience: erp-admin
              allowHMAC: true
              keys: [{ kid: a1, alg: HS256, secret: MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY= }]
        """

    func testTheAdminSectionIsReadWithItsDefaults() throws {
        let settings = try SettingsLoader.parse(
            minimalSettingsYAML + "\ntenantTree: tenants.yaml\n" + upstreamContextYAML + "\nredis: { url: \"redis://127.0.0.1:6379/0\" }\n" + self.adminSection
        )
        let admin = try XCTUnwrap(settings.admin)
        XCTAssertEqual(admin.listener.port, 8081)
        XCTAssertEqual(admin.roleClaim, "role")
        XCTAssertEqual(admin.issuers.map(\.issuer), ["https://admin.test"])
    }

    func testTheAdminAPINeedsRedisAndATreeAndAnIssuer() {
        let messages = rejectionIssues(of: minimalSettingsYAML + "\n" + self.adminSection).map(\.message)
        XCTAssertTrue(messages.contains { $0.contains("'redis' is required") }, "\(messages)")
        XCTAssertTrue(messages.contains { $0.contains("'tenantTree' is required") }, "\(messages)")
        let empty = rejectionIssues(of: minimalSettingsYAML + "\nadmin:\n  listener: { port: 8081, eventLoops: 2 }\n  issuers: []\n")
        XCTAssertTrue(empty.contains { $0.path == "admin.issuers" && $0.message.contains("at least one") }, "\(empty)")
        XCTAssertTrue(empty.contains { $0.path == "admin.listener" && $0.message.contains("one event loop") }, "\(empty)")
    }

    func testTheRedisURLNamesOneServerOrAClusterSeeds() throws {
        let cluster = try SettingsLoader.parse(minimalSettingsYAML + "\nredis: { url: \"redis-cluster://10.0.0.1:7000,10.0.0.2:7000\" }\n")
        XCTAssertEqual(cluster.redis?.url, "redis-cluster://10.0.0.1:7000,10.0.0.2:7000")
        // A cluster has no TLS form.
        let refused = rejectionIssues(of: minimalSettingsYAML + "\nredis: { url: \"rediss-cluster://10.0.0.1:6379\" }\n")
        XCTAssertTrue(refused.contains { $0.path == "redis.url" && $0.message.contains("redis-cluster://") }, "\(refused)")
        // A known scheme is not enough: the URL must be one the client can use (a Sentinel URL
        // names its master set; a cluster has no database).
        for url in ["redis-sentinel://127.0.0.1:26379", "redis-cluster://10.0.0.1:7000/1", "redis://a,b", "redis://h:0"] {
            let issues = rejectionIssues(of: minimalSettingsYAML + "\nredis: { url: \"\(url)\" }\n")
            XCTAssertTrue(issues.contains { $0.path == "redis.url" && $0.message.contains("Redis URL is not") }, "\(url): \(issues)")
        }
    }
}
