import NIOCore
import NIOHTTP1

/// Writes the requests of an upstream connection as HTTP/1.1 bytes: the other half of
/// `UpstreamResponseParser` (why the connection does it itself is told there).
///
/// Frames a body as SwiftNIO's `HTTPRequestEncoder` did, so an upstream sees the same bytes:
/// `TRACE` carries none; `POST`, `PUT` and `PATCH` without `Content-Length` are sent chunked;
/// any other method is chunked only when its head says `Transfer-Encoding: chunked`. And it
/// refuses what SwiftNIO's outbound header validation refused: a field name that is not a token
/// or a value with a control character (CR and LF among them) — nothing the gateway adds is
/// trusted to be free of them.
struct UpstreamRequestWriter {
    struct InvalidHeader: Error, Equatable {
        let name: String
    }

    /// The body of the request being written is sent in chunks.
    private(set) var isChunked = false

    /// The request line and fields, framed, in one buffer. Always HTTP/1.1: the version every
    /// upstream request is sent in (`ForwardedHeaders.upstreamRequestHead`).
    mutating func head(_ head: HTTPRequestHead, allocator: ByteBufferAllocator) throws(InvalidHeader) -> ByteBuffer {
        var headers = head.headers
        var fields = try Self.measure(headers)
        let framing = Self.framing(method: head.method, fields)
        self.isChunked = framing.isChunked
        if framing.edits {
            // Rare (TRACE, a POST without a length, both lengths): the fields change, and are
            // measured again.
            Self.apply(framing, to: &headers)
            fields = try Self.measure(headers)
        }
        let method = head.method.rawValue
        // "M U HTTP/1.1\r\n", the fields, the empty line: one buffer of the exact size.
        var buffer = allocator.buffer(capacity: method.utf8.count + head.uri.utf8.count + 13 + fields.bytes)
        buffer.writeString(method)
        buffer.writeInteger(UInt8(ascii: " "))
        buffer.writeString(head.uri)
        buffer.writeStaticString(" HTTP/1.1\r\n")
        Self.write(headers, into: &buffer)
        return buffer
    }

    /// The fields, then the empty line that ends them.
    private static func write(_ headers: HTTPHeaders, into buffer: inout ByteBuffer) {
        for (name, value) in headers {
            buffer.writeString(name)
            buffer.writeStaticString(": ")
            buffer.writeString(value)
            buffer.writeStaticString("\r\n")
        }
        buffer.writeStaticString("\r\n")
    }

    /// What one pass over the fields learns: their size as written, and what frames the body.
    struct Fields {
        var bytes = 0
        var hasContentLength = false
        var hasTransferEncoding = false
        /// The first `Transfer-Encoding` field's value.
        var transferEncoding: String?
    }

    /// Checks every field as it goes: a name must be a token, a value free of control characters.
    static func measure(_ headers: HTTPHeaders) throws(InvalidHeader) -> Fields {
        var fields = Fields()
        for (name, value) in headers {
            guard !name.isEmpty, name.utf8.allSatisfy(UpstreamResponseParser.isTokenByte),
                  value.utf8.allSatisfy(UpstreamResponseParser.isFieldValueByte)
            else { throw InvalidHeader(name: name) }
            fields.bytes += name.utf8.count + value.utf8.count + 4
            if ForwardedHeaders.matches(name, "content-length") {
                fields.hasContentLength = true
            } else if ForwardedHeaders.matches(name, "transfer-encoding") {
                if !fields.hasTransferEncoding { fields.transferEncoding = value }
                fields.hasTransferEncoding = true
            }
        }
        return fields
    }

    struct Framing: Equatable {
        var isChunked: Bool
        var removeContentLength = false
        var removeTransferEncoding = false
        var addChunked = false
        var edits: Bool { self.removeContentLength || self.removeTransferEncoding || self.addChunked }
    }

    /// `HTTPRequestEncoder`'s framing rules for an HTTP/1.1 request: whether the body is chunked,
    /// and what the fields must lose or gain to say so.
    static func framing(method: HTTPMethod, _ fields: Fields) -> Framing {
        switch method {
        case .TRACE:
            return Framing(isChunked: false, removeContentLength: fields.hasContentLength, removeTransferEncoding: fields.hasTransferEncoding)
        case .POST, .PUT, .PATCH:
            if fields.hasContentLength { return Framing(isChunked: false, removeTransferEncoding: fields.hasTransferEncoding) }
            return Framing(isChunked: true, removeTransferEncoding: fields.hasTransferEncoding, addChunked: true)
        default:
            if fields.hasContentLength { return Framing(isChunked: false, removeTransferEncoding: fields.hasTransferEncoding) }
            return Framing(isChunked: fields.transferEncoding == "chunked")
        }
    }

    static func apply(_ framing: Framing, to headers: inout HTTPHeaders) {
        if framing.removeContentLength { headers.remove(name: "content-length") }
        if framing.addChunked {
            headers.replaceOrAdd(name: "transfer-encoding", value: "chunked")
        } else if framing.removeTransferEncoding {
            headers.remove(name: "transfer-encoding")
        }
    }

    /// What goes ahead of a body part (its chunk-size line), or nil when it goes as it is.
    func chunkPrefix(for length: Int, allocator: ByteBufferAllocator) -> ByteBuffer? {
        guard self.isChunked, length > 0 else { return nil }
        var prefix = allocator.buffer(capacity: 18)
        prefix.writeString(String(length, radix: 16))
        prefix.writeStaticString("\r\n")
        return prefix
    }

    /// What follows a body part: the chunk's CRLF.
    func chunkSuffix(for length: Int) -> ByteBuffer? {
        guard self.isChunked, length > 0 else { return nil }
        return Self.crlf
    }

    /// The last chunk and the trailers, or nil for a body that is not chunked.
    func end(_ trailers: HTTPHeaders?, allocator: ByteBufferAllocator) throws(InvalidHeader) -> ByteBuffer? {
        guard self.isChunked else { return nil }
        guard let trailers, !trailers.isEmpty else { return Self.lastChunk }
        let fields = try Self.measure(trailers)
        var buffer = allocator.buffer(capacity: 5 + fields.bytes)
        buffer.writeStaticString("0\r\n")
        Self.write(trailers, into: &buffer)
        return buffer
    }

    private static let crlf = ByteBuffer(string: "\r\n")
    private static let lastChunk = ByteBuffer(string: "0\r\n\r\n")
}
