import NIOCore
import NIOHTTP1

/// Writes the responses of an HTTP/1.1 client connection as bytes, in place of SwiftNIO's
/// `HTTPResponseEncoder` and `NIOHTTPResponseHeadersValidator`: each response part passed through
/// both handlers, and the head's fields were walked twice (validated, then written into a buffer
/// grown as it went). Here the head is checked and sized in one pass and written once
/// (`HTTP1Writing`); the connection handler writes bytes. Measured with `bench/profile.sh proxy`
/// and `bench/compare.sh`: with the upstream side's writer, the heads of a proxied request went
/// from 5.5 % to 3.1 % of the samples; with this and the fields read in place, proxy-only CPU
/// per request went from 2.10–2.17× nginx's to 1.81–1.83× (docs/benchmarks.md). HTTP/2 streams
/// keep NIOHTTP2's codec.
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
    /// The last head's buffer, reused for the next head.
    private var headBuffer = HTTP1Writing.HeadBuffer()

    /// The status line and fields, framed for the request answered, in one buffer.
    /// - Parameter method: the method of the request this head answers; nil when no request head
    ///   was read (an answer to bytes that never made one).
    mutating func head(_ head: HTTPResponseHead, answering method: HTTPMethod?, allocator: @autoclosure () -> ByteBufferAllocator) throws(Refused) -> ByteBuffer {
        try self.head(RelayedResponseHead(version: head.version, status: head.status, fields: FieldSection(head.headers)), answering: method, allocator: allocator())
    }

    /// `head` for a head whose fields are kept as an upstream sent them.
    mutating func head(_ head: RelayedResponseHead, answering method: HTTPMethod?, allocator: @autoclosure () -> ByteBufferAllocator) throws(Refused) -> ByteBuffer {
        let code = head.status.code
        var connect = false
        if !((100..<200).contains(code) && code != 101), let method {
            self.suppressesBody = method == .HEAD || method == .CONNECT
            connect = method == .CONNECT
        }
        var headers = head.fields
        var fields = try headers.measure()
        let framing = Self.framing(fields, hasBody: !connect && head.status.mayHaveResponseBody, version: head.version)
        if framing.edits {
            framing.apply(to: &headers)
            fields = try headers.measure()
        }
        self.isChunked = framing.isChunked && !self.suppressesBody

        let reason = head.status.reasonPhrase
        if case .custom = head.status, !ForwardedHeaders.withBytes(of: reason, HTTP1Reading.isFieldValue) {
            throw Refused(name: ":status")
        }
        // "HTTP/1.1 200 OK\r\n" (the version and code as digits), the fields, the empty line.
        let version = head.version.major == 1 && head.version.minor <= 1 ? nil : "HTTP/\(head.version.major).\(head.version.minor) "
        let codeDigits = code < 1000 && code >= 100 ? 3 : String(code).utf8.count
        let size = (version?.utf8.count ?? 9) + codeDigits + 1 + reason.utf8.count + 2 + fields.bytes + 2
        var buffer = self.headBuffer.take(capacity: size, allocator: allocator())
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
        headers.write(measured: fields, into: &buffer)
        assert(buffer.readableBytes == size, "a response head of \(buffer.readableBytes) bytes was sized as \(size)")
        self.headBuffer.keep(buffer)
        return buffer
    }

    /// `HTTPResponseEncoder`'s framing rules: whether the body is chunked, and what the fields
    /// must lose or gain to say so.
    static func framing(_ fields: HTTP1Writing.Fields, hasBody: Bool, version: HTTPVersion) -> HTTP1Writing.Framing {
        guard hasBody else {
            return HTTP1Writing.Framing(isChunked: false, removeContentLength: fields.hasContentLength, removeTransferEncoding: fields.hasTransferEncoding)
        }
        if fields.hasContentLength { return HTTP1Writing.Framing(isChunked: false, removeTransferEncoding: fields.hasTransferEncoding) }
        guard version.major == 1, version.minor >= 1 else { return HTTP1Writing.Framing(isChunked: false) }
        // Replaced even when it already says `chunked`, as the encoder does: the field moves last.
        return HTTP1Writing.Framing(isChunked: true, addChunked: true)
    }

    /// Writes a body part into the buffer of the head `head` returned last, behind the head, for
    /// the two to go out as one write. Only for a body that is not chunked and not suppressed.
    mutating func append(_ body: inout ByteBuffer, behind head: inout ByteBuffer) {
        assert(!self.isChunked && !self.suppressesBody, "a chunked or suppressed body is written by HTTP1Writing.writeBody")
        self.headBuffer.append(&body, behind: &head)
    }

    /// The response is over: its last chunk and trailers, or nil for a body that is not chunked.
    /// The next head answers the next request.
    mutating func end(_ trailers: HTTPHeaders?, allocator: @autoclosure () -> ByteBufferAllocator) throws(Refused) -> ByteBuffer? {
        self.suppressesBody = false
        defer { self.isChunked = false }
        return try HTTP1Writing.lastChunk(trailers, chunked: self.isChunked, allocator: allocator())
    }
}
