import NIOCore
import NIOHTTP1

/// What the gateway's two HTTP/1.1 writers share — `UpstreamRequestWriter` (requests to the
/// cells) and `ClientResponseWriter` (responses to clients): a field section checked and sized in
/// one pass, then written into a buffer of that size, and chunked framing.
///
/// The check is SwiftNIO's outbound header validation: a field name must be a token, a value may
/// hold no control character but HTAB (CR and LF among them). Nothing the gateway writes is
/// trusted to be free of them.
enum HTTP1Writing {
    struct InvalidField: Error, Equatable {
        let name: String
    }

    /// What one pass over a field section learns: its size as written, and what frames a body.
    struct Fields {
        var bytes = 0
        var hasContentLength = false
        var hasTransferEncoding = false
        /// The first `Transfer-Encoding` field's value.
        var transferEncoding: String?
    }

    /// Checks every field as it goes: a name must be a token, a value free of control characters.
    static func measure(_ headers: HTTPHeaders) throws(InvalidField) -> Fields {
        var fields = Fields()
        for (name, value) in headers {
            guard !name.isEmpty, ForwardedHeaders.allBytes(of: name, satisfy: UpstreamResponseParser.isTokenByte),
                ForwardedHeaders.allBytes(of: value, satisfy: UpstreamResponseParser.isFieldValueByte)
            else { throw InvalidField(name: name) }
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

    /// The fields, then the empty line that ends them.
    static func write(_ headers: HTTPHeaders, into buffer: inout ByteBuffer) {
        for (name, value) in headers {
            buffer.writeString(name)
            buffer.writeStaticString(": ")
            buffer.writeString(value)
            buffer.writeStaticString("\r\n")
        }
        buffer.writeStaticString("\r\n")
    }

    /// A body part's chunk-size line.
    static func chunkPrefix(for length: Int, allocator: ByteBufferAllocator) -> ByteBuffer {
        var prefix = allocator.buffer(capacity: 18)
        prefix.writeString(String(length, radix: 16))
        prefix.writeStaticString("\r\n")
        return prefix
    }

    /// What follows a body part's bytes in a chunked body.
    static let chunkSuffix = ByteBuffer(string: "\r\n")

    /// The last chunk and the trailers of a chunked body.
    static func lastChunk(_ trailers: HTTPHeaders?, allocator: ByteBufferAllocator) throws(InvalidField) -> ByteBuffer {
        guard let trailers, !trailers.isEmpty else { return Self.emptyLastChunk }
        let fields = try Self.measure(trailers)
        var buffer = allocator.buffer(capacity: 5 + fields.bytes)
        buffer.writeStaticString("0\r\n")
        Self.write(trailers, into: &buffer)
        return buffer
    }

    private static let emptyLastChunk = ByteBuffer(string: "0\r\n\r\n")
}
