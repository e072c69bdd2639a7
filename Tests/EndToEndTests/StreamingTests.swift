import Foundation
import UpstreamFixtures
import XCTest

/// Bodies far larger than memory allows pass through without being held: backpressure both ways.
final class StreamingTests: GatewayTestCase {
    static let gibibyte = 1 << 30
    /// Generous against the gateway's idle footprint (~30 MiB here); a buffered gigabyte would be
    /// 30 times this.
    static let residentLimit = 160 << 20

    func testOneGibibyteDownloadStreamsWithBoundedMemory() async throws {
        try await self.startGateway()
        let client = try RawHTTPConnection(port: self.port)
        try client.send(requestText("GET", "/bytes/\(Self.gibibyte)"))
        var received = 0
        var mismatches = 0
        let response = try client.readResponse(keepBody: false) { chunk in
            if !chunk.withUnsafeBytes({ BytePattern.matches($0, at: received) }) { mismatches += 1 }
            received += chunk.count
        }
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(received, Self.gibibyte)
        XCTAssertEqual(mismatches, 0, "every byte arrives intact and in order")
        let peak = self.gateway.peakResidentBytes
        print("gateway peak RSS after 1 GiB download: \(peak >> 20) MiB")
        XCTAssertLessThan(peak, Self.residentLimit)
    }

    func testOneGibibyteUploadStreamsWithBoundedMemory() async throws {
        try await self.startGateway()
        let client = try RawHTTPConnection(port: self.port)
        try client.send("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: \(Self.gibibyte)\r\n\r\n")
        try client.sendPattern(count: Self.gibibyte)
        let seen = try SeenRequest(client.readResponse())
        XCTAssertEqual(seen.bodyBytes, Self.gibibyte)
        XCTAssertTrue(seen.bodyIsPattern, "the body arrives intact and in order")
        let peak = self.gateway.peakResidentBytes
        print("gateway peak RSS after 1 GiB upload: \(peak >> 20) MiB")
        XCTAssertLessThan(peak, Self.residentLimit)
    }

    // MARK: - Over HTTP/2: the same backpressure, through each stream's flow-control windows

    static let http2Bytes = 256 << 20

    func testADownloadOverHTTP2StreamsWithBoundedMemory() async throws {
        try await self.startGateway(backends: 1, ["listener": ["http2": "{ cleartext: true }"]])
        let client = try RawHTTP2Connection(port: self.port)
        try client.handshake()
        let stream = try client.sendRequest("GET", "/bytes/\(Self.http2Bytes)")
        var received = 0
        var mismatches = 0
        let response = try client.readResponse(stream, onData: { chunk in
            if !chunk.withUnsafeBytes({ BytePattern.matches($0, at: received) }) { mismatches += 1 }
            received += chunk.count
        }, keepBody: false)
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(received, Self.http2Bytes)
        XCTAssertEqual(mismatches, 0, "every byte arrives intact and in order")
        let peak = self.gateway.peakResidentBytes
        print("gateway peak RSS after a 256 MiB download over HTTP/2: \(peak >> 20) MiB")
        XCTAssertLessThan(peak, Self.residentLimit)
    }

    func testAnUploadOverHTTP2StreamsWithBoundedMemory() async throws {
        try await self.startGateway(backends: 1, ["listener": ["http2": "{ cleartext: true }"]])
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("erp-gateway-upload-\(UUID().uuidString)")
        FileManager.default.createFile(atPath: file.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: file) }
        let handle = try FileHandle(forWritingTo: file)
        var written = 0
        while written < Self.http2Bytes {
            let size = min(Self.http2Bytes - written, BytePattern.maxChunk)
            BytePattern.withBytes(at: written, count: size) { handle.write(Data($0)) }
            written += size
        }
        try handle.close()
        let seen = try SeenRequest(curlRequest(.http2, port: self.port, "POST", "/upload", upload: file.path))
        XCTAssertEqual(seen.bodyBytes, Self.http2Bytes)
        XCTAssertTrue(seen.bodyIsPattern, "the body arrives intact and in order")
        let peak = self.gateway.peakResidentBytes
        print("gateway peak RSS after a 256 MiB upload over HTTP/2: \(peak >> 20) MiB")
        XCTAssertLessThan(peak, Self.residentLimit)
    }
}
