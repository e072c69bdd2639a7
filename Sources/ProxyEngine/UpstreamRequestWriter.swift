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
/// trusted to be free of them. The request target goes as `RequestPath` let it through: SwiftNIO's
/// validator also refused characters a URI should percent-encode but clients send raw (a JSON
/// filter's braces and quotes, `|`), and such a request failed as if its cell had; the query is
/// forwarded as sent (docs/tokens.md).
struct UpstreamRequestWriter {
    typealias InvalidHeader = HTTP1Writing.InvalidField

    /// The body of the request being written is sent in chunks.
    private(set) var isChunked = false
    /// The last head's buffer, reused for the next head.
    private var headBuffer = HTTP1Writing.HeadBuffer()

    /// The request line and fields, framed, in one buffer. Always HTTP/1.1: the version every
    /// upstream request is sent in (`ForwardedHeaders.upstreamRequestHead`).
    /// The client's fields it carries as received are written as they came; only the ones the
    /// gateway added are checked (`FieldSection`).
    mutating func head(_ head: RelayedRequestHead, allocator: @autoclosure () -> ByteBufferAllocator) throws(InvalidHeader) -> ByteBuffer {
        var headers = head.fields
        var fields = try headers.measure()
        let framing = Self.framing(method: head.method, fields)
        self.isChunked = framing.isChunked
        if framing.edits {
            // Rare (TRACE, a POST without a length, both lengths): the fields change, and are
            // measured again.
            framing.apply(to: &headers)
            fields = try headers.measure()
        }
        let method = head.method.rawValue
        // "M U HTTP/1.1\r\n", the fields, the empty line: one buffer of the exact size.
        let size = method.utf8.count + 1 + head.uri.utf8.count + 11 + fields.bytes + 2
        var buffer = self.headBuffer.take(capacity: size, allocator: allocator())
        buffer.writeString(method)
        buffer.writeInteger(UInt8(ascii: " "))
        buffer.writeString(head.uri)
        buffer.writeStaticString(" HTTP/1.1\r\n")
        headers.write(measured: fields, into: &buffer)
        assert(buffer.readableBytes == size, "a request head of \(buffer.readableBytes) bytes was sized as \(size)")
        self.headBuffer.keep(buffer)
        return buffer
    }

    /// `HTTPRequestEncoder`'s framing rules for an HTTP/1.1 request: whether the body is chunked,
    /// and what the fields must lose or gain to say so.
    static func framing(method: HTTPMethod, _ fields: HTTP1Writing.Fields) -> HTTP1Writing.Framing {
        switch method {
        case .TRACE:
            return HTTP1Writing.Framing(isChunked: false, removeContentLength: fields.hasContentLength, removeTransferEncoding: fields.hasTransferEncoding)
        case .POST, .PUT, .PATCH:
            if fields.hasContentLength { return HTTP1Writing.Framing(isChunked: false, removeTransferEncoding: fields.hasTransferEncoding) }
            return HTTP1Writing.Framing(isChunked: true, removeTransferEncoding: fields.hasTransferEncoding, addChunked: true)
        default:
            if fields.hasContentLength { return HTTP1Writing.Framing(isChunked: false, removeTransferEncoding: fields.hasTransferEncoding) }
            return HTTP1Writing.Framing(isChunked: fields.transferEncoding == "chunked")
        }
    }

    /// The last chunk and the trailers, or nil for a body that is not chunked.
    func end(_ trailers: HTTPHeaders?, allocator: @autoclosure () -> ByteBufferAllocator) throws(InvalidHeader) -> ByteBuffer? {
        try HTTP1Writing.lastChunk(trailers, chunked: self.isChunked, allocator: allocator())
    }
}
