import NIOCore
import NIOHTTP1

/// Writes the responses of an HTTP/1.1 client connection as bytes, in place of SwiftNIO's
/// `HTTPResponseEncoder` and `NIOHTTPResponseHeadersValidator`: each response part passed through
/// both handlers, and the head's fields were walked twice (validated, then written into a buffer
/// grown as it went). Here the head is checked and sized in one pass and written once
/// (`HTTP1Writing`); the connection handler writes bytes. HTTP/2 streams keep NIOHTTP2's codec.
///
/// The same rules, so a client sees the same bytes:
/// - A response to `HEAD` or `CONNECT` carries no body: body parts are dropped, and a chunked
///   body's last chunk is not written. The head keeps what a `GET` would have said (its length
///   or `Transfer-Encoding`), but a `CONNECT` answer and any `1xx`, `204` or `304` lose both.
/// - Otherwise a head with `Content-Length` loses `Transfer-Encoding`; one with neither gets
///   `Transfer-Encoding: chunked` on HTTP/1.1 (on HTTP/1.0 the body ends with the connection).
/// - An interim `1xx` (not `101`) does not answer the request: the next head does.
/// - A field name must be a token, a value free of control characters, a reason phrase too.
///   Nothing the gateway writes is trusted: a head that breaks the rule is refused whole.
struct ClientResponseWriter {
    typealias Refused = HTTP1Writing.InvalidField

    /// The body being written is sent in chunks.
    private(set) var isChunked = false
    /// The response answers `HEAD` or `CONNECT`: it has no body, whatever its head says.
    private(set) var suppressesBody = false

    /// The status line and fields, framed for the request answered, in one buffer.
    /// - Parameter method: the method of the request this head answers; nil when no request head
    ///   was read (an answer to bytes that never made one).
    mutating func head(_ head: HTTPResponseHead, answering method: HTTPMethod?, allocator: ByteBufferAllocator) throws(Refused) -> ByteBuffer {
        let code = head.status.code
        var connect = false
        if !((100..<200).contains(code) && code != 101), let method {
            self.suppressesBody = method == .HEAD || method == .CONNECT
            connect = method == .CONNECT
        }
        var headers = head.headers
        var fields = try HTTP1Writing.measure(headers)
        let framing = Self.framing(fields, hasBody: !connect && head.status.mayHaveResponseBody, version: head.version)
        if framing.edits {
            Self.apply(framing, to: &headers)
            fields = try HTTP1Writing.measure(headers)
        }
        self.isChunked = framing.isChunked && !self.suppressesBody

        let reason = head.status.reasonPhrase
        if case .custom = head.status, !ForwardedHeaders.withBytes(of: reason, HTTP1Writing.isFieldValue) {
            throw Refused(name: ":status")
        }
        // "HTTP/1.1 200 OK\r\n" (the version and code as digits), the fields, the empty line.
        let version = head.version.major == 1 && head.version.minor <= 1 ? nil : "HTTP/\(head.version.major).\(head.version.minor) "
        let codeDigits = code < 1000 && code >= 100 ? 3 : String(code).utf8.count
        var buffer = allocator.buffer(capacity: (version?.utf8.count ?? 9) + codeDigits + 1 + reason.utf8.count + 2 + fields.bytes)
        if let version {
            buffer.writeString(version)
        } else if head.version.minor == 1 {
            buffer.writeStaticString("HTTP/1.1 ")
        } else {
            buffer.writeStaticString("HTTP/1.0 ")
        }
        buffer.writeString(String(code))
        buffer.writeInteger(UInt8(ascii: " "))
        buffer.writeString(reason)
        buffer.writeStaticString("\r\n")
        HTTP1Writing.write(headers, measured: fields, into: &buffer)
        return buffer
    }

    struct Framing: Equatable {
        var isChunked: Bool
        var removeContentLength = false
        var removeTransferEncoding = false
        var addChunked = false
        var edits: Bool { self.removeContentLength || self.removeTransferEncoding || self.addChunked }
    }

    /// `HTTPResponseEncoder`'s framing rules: whether the body is chunked, and what the fields
    /// must lose or gain to say so.
    static func framing(_ fields: HTTP1Writing.Fields, hasBody: Bool, version: HTTPVersion) -> Framing {
        guard hasBody else {
            return Framing(isChunked: false, removeContentLength: fields.hasContentLength, removeTransferEncoding: fields.hasTransferEncoding)
        }
        if fields.hasContentLength { return Framing(isChunked: false, removeTransferEncoding: fields.hasTransferEncoding) }
        guard version.major == 1, version.minor >= 1 else { return Framing(isChunked: false) }
        // Replaced even when it already says `chunked`, as the encoder does: the field moves last.
        return Framing(isChunked: true, addChunked: true)
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
        return HTTP1Writing.chunkPrefix(for: length, allocator: allocator)
    }

    /// What follows a body part: the chunk's CRLF.
    func chunkSuffix(for length: Int) -> ByteBuffer? {
        guard self.isChunked, length > 0 else { return nil }
        return HTTP1Writing.chunkSuffix
    }

    /// The response is over: its last chunk and trailers, or nil for a body that is not chunked.
    /// The next head answers the next request.
    mutating func end(_ trailers: HTTPHeaders?, allocator: ByteBufferAllocator) throws(Refused) -> ByteBuffer? {
        self.suppressesBody = false
        guard self.isChunked else { return nil }
        self.isChunked = false
        return try HTTP1Writing.lastChunk(trailers, allocator: allocator)
    }
}
