import NIOCore
import NIOHTTP1
import XCTest

@testable import ProxyEngine

/// An upstream's response fields relayed as the bytes it sent (`FieldSection`) are edited and
/// written exactly as the same fields made `HTTPHeaders` are: the same fields after every rule
/// the response path applies, the same bytes on the wire, the same framing and keep-alive
/// verdicts.
final class FieldSectionTests: XCTestCase {
    /// Names the response rules act on (in any case), and others.
    static let names = [
        "Connection", "Keep-Alive", "TE", "Trailer", "Transfer-Encoding", "Upgrade", "Proxy-Authenticate", "Proxy-X",
        "Content-Length", "Content-Type", "X-Request-ID", "Access-Control-Allow-Origin", "Access-Control-Max-Age",
        "Access-Control-", "Vary", "Server", "Date", "ETag", "Set-Cookie", "X-Custom", "X-Request-IDs", "RateLimit",
    ]
    static let connectionTokens = ["close", "keep-alive", "Keep-Alive", "x-custom", "Server", "content-length", "host", "upgrade", "te"]

    static func randomCase(_ text: String, _ random: inout SeededRandom) -> String {
        String(text.map { Bool.random(using: &random) ? Character($0.uppercased()) : Character($0.lowercased()) })
    }

    /// A value of visible ASCII with spaces and tabs inside, or a `Connection` list.
    static func randomValue(for name: String, _ random: inout SeededRandom) -> String {
        if name.lowercased() == "connection" {
            return (0..<Int.random(in: 1...3, using: &random)).map { _ in connectionTokens.randomElement(using: &random)! }.joined(separator: ", ")
        }
        if name.lowercased() == "content-length" { return String(Int.random(in: 0...99_999, using: &random)) }
        if name.lowercased() == "transfer-encoding" { return ["chunked", "gzip, chunked"].randomElement(using: &random)! }
        let alphabet = Array("abcXYZ019 \t-_=;,\"/:()~!#")
        var value = String((0..<Int.random(in: 0...40, using: &random)).map { _ in alphabet.randomElement(using: &random)! })
        while value.first == " " || value.first == "\t" { value.removeFirst() }
        return value
    }

    /// A response head as an upstream might send it: each field as `name:` and some blanks.
    static func randomHead(_ random: inout SeededRandom) -> (bytes: String, count: Int) {
        var text = ["HTTP/1.1 200 OK", "HTTP/1.0 200 OK", "HTTP/1.1 204 No Content", "HTTP/1.1 404 Not Found"].randomElement(using: &random)! + "\r\n"
        let count = Int.random(in: 0...12, using: &random)
        var sawLength = false
        for _ in 0..<count {
            var name = self.randomCase(self.names.randomElement(using: &random)!, &random)
            // One framing field at most: two are refused before any of this runs.
            if ["content-length", "transfer-encoding"].contains(name.lowercased()) {
                if sawLength { name = "X-Other" }
                sawLength = true
            }
            let blanks = ["", " ", "  ", "\t", " \t"].randomElement(using: &random)!
            text += "\(name):\(blanks)\(self.randomValue(for: name, &random))\r\n"
        }
        return (text + "\r\n", count)
    }

    static func parse(_ text: String, method: HTTPMethod = .GET) throws -> RelayedResponseHead {
        var parser = UpstreamResponseParser()
        parser.requestSent(method)
        var buffer = ByteBuffer(string: text)
        guard case .head(let head) = try parser.next(&buffer) else { throw ParseFailure() }
        return head
    }

    struct ParseFailure: Error {}

    /// One edit the response path makes, applied to either form.
    enum Edit {
        case remove(String)
        case add(String, String)
        case replaceOrAdd(String, String)
        case stripHopByHop
        case removeCrossOriginFields
        case clientResponse(close: Bool, version: HTTPVersion)

        func apply<Fields: FieldEditing>(to fields: inout Fields) {
            switch self {
            case .remove(let name): fields.remove(name: name)
            case .add(let name, let value): fields.add(name: name, value: value)
            case .replaceOrAdd(let name, let value): fields.replaceOrAdd(name: name, value: value)
            case .stripHopByHop: ForwardedHeaders.stripHopByHop(&fields)
            case .removeCrossOriginFields: CrossOriginAnswer.removeUpstreamFields(from: &fields)
            case .clientResponse(let close, let version):
                ForwardedHeaders.clientResponseFields(&fields, requestID: "req-1", version: version, close: close)
            }
        }

        static func random(_ random: inout SeededRandom) -> Edit {
            let name = FieldSectionTests.randomCase(FieldSectionTests.names.randomElement(using: &random)!, &random)
            let value = FieldSectionTests.randomValue(for: name, &random)
            switch Int.random(in: 0..<6, using: &random) {
            case 0: return .remove(name)
            case 1: return .add(name, value)
            case 2: return .replaceOrAdd(name, value)
            case 3: return .stripHopByHop
            case 4: return .removeCrossOriginFields
            default: return .clientResponse(close: Bool.random(using: &random), version: Bool.random(using: &random) ? .http1_1 : .http1_0)
            }
        }
    }

    func testRandomHeadsEditedAndWrittenAsTheirStringsAre() throws {
        var random = SeededRandom(seed: 0xF1E1_D5EC)
        var written = 0
        for _ in 0..<2_000 {
            let (text, _) = Self.randomHead(&random)
            let relayed = try Self.parse(text)
            var fields = relayed.fields
            var headers = relayed.headers
            XCTAssertEqual(ForwardedHeaders.keepsAlive(fields, version: relayed.version), ForwardedHeaders.keepsAlive(relayed.nioHead), text)
            for _ in 0..<Int.random(in: 0...5, using: &random) {
                let edit = Edit.random(&random)
                edit.apply(to: &fields)
                edit.apply(to: &headers)
                XCTAssertEqual(Array(fields.headers).map { "\($0.name): \($0.value)" }, Array(headers).map { "\($0.name): \($0.value)" }, "\(text.debugDescription) after \(edit)")
            }
            XCTAssertEqual(ForwardedHeaders.keepsAlive(fields, version: relayed.version), ForwardedHeaders.keepsAlive(headers, version: relayed.version), text)

            for method in [HTTPMethod.GET, .HEAD] {
                var bytesWriter = ClientResponseWriter()
                var stringsWriter = ClientResponseWriter()
                let fromBytes = Result { () throws(ClientResponseWriter.Refused) in
                    try bytesWriter.head(RelayedResponseHead(version: relayed.version, status: relayed.status, fields: fields), answering: method, allocator: ByteBufferAllocator())
                }
                let fromStrings = Result { () throws(ClientResponseWriter.Refused) in
                    try stringsWriter.head(HTTPResponseHead(version: relayed.version, status: relayed.status, headers: headers), answering: method, allocator: ByteBufferAllocator())
                }
                XCTAssertEqual(try? fromBytes.get(), try? fromStrings.get(), text.debugDescription)
                XCTAssertEqual(bytesWriter.isChunked, stringsWriter.isChunked, text.debugDescription)
                XCTAssertEqual(bytesWriter.suppressesBody, stringsWriter.suppressesBody, text.debugDescription)
                if case .success = fromStrings { written += 1 }
            }
        }
        XCTAssertGreaterThan(written, 3_000)
    }

    /// Heads of many fields, many of one name: removals and additions edit them as strings.
    func testHeadsOfManyFieldsEditedAsTheirStrings() throws {
        var random = SeededRandom(seed: 0x64_64)
        for _ in 0..<50 {
            var text = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"
            for index in 0..<Int.random(in: 60...140, using: &random) {
                text += "X-F\(index % 9): \(index)\r\n"
            }
            let relayed = try Self.parse(text + "\r\n")
            var fields = relayed.fields
            var headers = relayed.headers
            for _ in 0..<4 {
                let edit: Edit = Bool.random(using: &random) ? .remove("x-f\(Int.random(in: 0..<9, using: &random))") : .add("X-F3", "added")
                edit.apply(to: &fields)
                edit.apply(to: &headers)
                XCTAssertEqual(fields.headers, headers, "after \(edit)")
            }
            var bytesWriter = ClientResponseWriter()
            var stringsWriter = ClientResponseWriter()
            XCTAssertEqual(
                try bytesWriter.head(RelayedResponseHead(version: relayed.version, status: relayed.status, fields: fields), answering: .GET, allocator: ByteBufferAllocator()),
                try stringsWriter.head(HTTPResponseHead(version: relayed.version, status: relayed.status, headers: headers), answering: .GET, allocator: ByteBufferAllocator())
            )
            // The head as parsed is untouched by the edits of its copy.
            XCTAssertEqual(relayed.headers, try Self.parse(text + "\r\n").headers)
        }
    }

    func testReceivedFieldsAreWrittenAsNameColonSpaceValue() throws {
        let relayed = try Self.parse("HTTP/1.1 200 OK\r\nServer:cell-7\r\nX-Pad: \t padded\t \r\nContent-Length: 2\r\nX-Empty:\r\n\r\n")
        var writer = ClientResponseWriter()
        let head = try writer.head(relayed, answering: .GET, allocator: ByteBufferAllocator())
        XCTAssertEqual(String(buffer: head), "HTTP/1.1 200 OK\r\nServer: cell-7\r\nX-Pad: padded\t \r\nContent-Length: 2\r\nX-Empty: \r\n\r\n")
    }

    func testAFieldTheGatewayAddsIsCheckedWhereReceivedOnesAreNot() throws {
        var relayed = try Self.parse("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        relayed.fields.add(name: "x-added", value: "split\r\nSet-Cookie: a=b")
        var writer = ClientResponseWriter()
        XCTAssertThrowsError(try writer.head(relayed, answering: .GET, allocator: ByteBufferAllocator())) { error in
            XCTAssertEqual((error as? ClientResponseWriter.Refused)?.name, "x-added")
        }
        relayed = try Self.parse("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        relayed.fields.add(name: "bad name", value: "v")
        XCTAssertThrowsError(try writer.head(relayed, answering: .GET, allocator: ByteBufferAllocator()))
    }

    func testRemovingANameRemovesItWhateverItsCaseInEitherPart() throws {
        var fields = try Self.parse("HTTP/1.1 200 OK\r\nX-Request-Id: a\r\nx-request-id: b\r\nX-Keep: c\r\nContent-Length: 0\r\n\r\n").fields
        fields.add(name: "X-REQUEST-ID", value: "d")
        fields.remove(name: "x-request-id")
        XCTAssertEqual(fields.headers, HTTPHeaders([("X-Keep", "c"), ("Content-Length", "0")]))
        fields.replaceOrAdd(name: "x-keep", value: "e")
        XCTAssertEqual(fields.headers, HTTPHeaders([("Content-Length", "0"), ("x-keep", "e")]))
    }
}
