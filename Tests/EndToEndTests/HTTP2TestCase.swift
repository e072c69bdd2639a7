import Foundation
import XCTest

/// A gateway speaking h2c (`listener.http2.cleartext`) in front of real backends, and raw HTTP/2
/// clients for it.
class HTTP2TestCase: GatewayTestCase {
    /// `listener.http2` with h2c on and `extra` keys (YAML flow-mapping members), and `overrides`
    /// of other sections.
    func startHTTP2Gateway(backends count: Int = 1, http2 extra: String = "", _ overrides: [String: [String: String]] = [:]) async throws {
        var overrides = overrides
        overrides["listener", default: [:]]["http2"] = "{ cleartext: true\(extra.isEmpty ? "" : ", " + extra) }"
        try await self.startGateway(backends: count, overrides)
    }

    /// A connection that has exchanged the preface and SETTINGS with the gateway.
    func connect(settings: [(UInt16, UInt32)] = [], receiveTimeout: Double = 10) throws -> RawHTTP2Connection {
        let connection = try RawHTTP2Connection(port: self.port, receiveTimeout: receiveTimeout)
        try connection.handshake(settings: settings)
        return connection
    }

    /// A GET on `connection` answered 200 by a backend.
    func assertServed(on connection: RawHTTP2Connection, _ path: String = "/still-served", file: StaticString = #filePath, line: UInt = #line) throws {
        let stream = try connection.sendRequest("GET", path)
        let response = try connection.readResponse(stream)
        XCTAssertEqual(response.status, 200, response.text, file: file, line: line)
        XCTAssertEqual(try SeenRequest(response).uri, path, file: file, line: line)
    }

    /// The frames of the connection ending: a GOAWAY with `code`, then the close.
    func assertClosedWithGoAway(
        _ connection: RawHTTP2Connection, code: UInt32, seconds: Double = 10, file: StaticString = #filePath, line: UInt = #line
    ) {
        let (_, closed) = connection.readUntilClosed(seconds: seconds)
        XCTAssertTrue(closed, "the gateway closes the connection", file: file, line: line)
        XCTAssertEqual(connection.goAway?.code, code, "GOAWAY \(connection.goAway.map { "\($0)" } ?? "missing")", file: file, line: line)
    }
}
