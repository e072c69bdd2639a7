import NIOCore
import NIOHTTP1

/// What the gateway's two HTTP/1.1 writers share — `UpstreamRequestWriter` (requests to the
/// cells) and `ClientResponseWriter` (responses to clients): a field section checked and sized in
/// one pass, then written into a buffer of that size, and chunked framing.
///
/// The check is SwiftNIO's outbound header validation: a field name must be a token, a value may
/// hold no control character but HTAB (CR and LF among them), by the byte rules the readers use
/// (`HTTP1Reading`). Nothing the gateway writes is trusted to be free of them.
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
    static func measure(_ headers: some Sequence<(name: String, value: String)>) throws(InvalidField) -> Fields {
        var fields = Fields()
        for (name, value) in headers {
            guard !name.isEmpty, ForwardedHeaders.withBytes(of: name, HTTP1Reading.isToken), ForwardedHeaders.withBytes(of: value, HTTP1Reading.isFieldValue)
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

    /// The fields as `measure` sized them, then the empty line that ends them: copied into the
    /// buffer's memory in one access (written piece by piece, each `writeString` checked the
    /// buffer's uniqueness and capacity again: a third of the time a head took to write).
    static func write(_ headers: some Sequence<(name: String, value: String)>, measured fields: Fields, into buffer: inout ByteBuffer) {
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: fields.bytes + 2) { out in
            var at = 0
            func put(_ bytes: UnsafeBufferPointer<UInt8>) {
                guard let source = bytes.baseAddress, bytes.count > 0 else { return }
                (out.baseAddress! + at).copyMemory(from: source, byteCount: bytes.count)
                at += bytes.count
            }
            func put(_ first: UInt8, _ second: UInt8) {
                out[at] = first
                out[at + 1] = second
                at += 2
            }
            for (name, value) in headers {
                ForwardedHeaders.withBytes(of: name, put)
                put(UInt8(ascii: ":"), UInt8(ascii: " "))
                ForwardedHeaders.withBytes(of: value, put)
                put(UInt8(ascii: "\r"), UInt8(ascii: "\n"))
            }
            put(UInt8(ascii: "\r"), UInt8(ascii: "\n"))
            return at
        }
    }

    /// Whether a body is chunked, and what a head's fields must lose or gain to say how it is
    /// framed (each writer decides by its encoder's rules).
    struct Framing: Equatable {
        var isChunked: Bool
        var removeContentLength = false
        var removeTransferEncoding = false
        var addChunked = false
        var edits: Bool { self.removeContentLength || self.removeTransferEncoding || self.addChunked }

        func apply<Fields: FieldEditing>(to headers: inout Fields) {
            if self.removeContentLength { headers.remove(name: "content-length") }
            if self.addChunked {
                headers.replaceOrAdd(name: "transfer-encoding", value: "chunked")
            } else if self.removeTransferEncoding {
                headers.remove(name: "transfer-encoding")
            }
        }
    }

    /// Writes one body part on `context`: as it is, or framed as a chunk. `promise` completes
    /// with the part's last write.
    static func writeBody(_ data: IOData, chunked: Bool, on context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        if let prefix = Self.chunkPrefix(for: data.readableBytes, chunked: chunked, allocator: context.channel.allocator) {
            context.write(NIOAny(prefix), promise: nil)
        }
        if let suffix = Self.chunkSuffix(for: data.readableBytes, chunked: chunked) {
            context.write(NIOAny(data), promise: nil)
            context.write(NIOAny(suffix), promise: promise)
        } else {
            context.write(NIOAny(data), promise: promise)
        }
    }

    /// What goes ahead of a body part (its chunk-size line), or nil when it goes as it is.
    /// `allocator` is asked for only for a chunk: reading a channel's is two calls into it.
    static func chunkPrefix(for length: Int, chunked: Bool, allocator: @autoclosure () -> ByteBufferAllocator) -> ByteBuffer? {
        guard chunked, length > 0 else { return nil }
        var prefix = allocator().buffer(capacity: 18)
        prefix.writeString(String(length, radix: 16))
        prefix.writeStaticString("\r\n")
        return prefix
    }

    /// What follows a body part: a chunk's CRLF, or nil.
    static func chunkSuffix(for length: Int, chunked: Bool) -> ByteBuffer? {
        chunked && length > 0 ? Self.crlf : nil
    }

    private static let crlf = ByteBuffer(string: "\r\n")

    /// The last chunk and the trailers of a chunked body; nil for a body that is not chunked.
    /// `allocator` is asked for only when there are trailers to write.
    static func lastChunk(_ trailers: HTTPHeaders?, chunked: Bool, allocator: @autoclosure () -> ByteBufferAllocator) throws(InvalidField) -> ByteBuffer? {
        guard chunked else { return nil }
        guard let trailers, !trailers.isEmpty else { return Self.emptyLastChunk }
        let fields = try Self.measure(trailers)
        var buffer = allocator().buffer(capacity: 5 + fields.bytes)
        buffer.writeStaticString("0\r\n")
        Self.write(trailers, measured: fields, into: &buffer)
        return buffer
    }

    private static let emptyLastChunk = ByteBuffer(string: "0\r\n\r\n")
}

extension HTTP1Writing {
    /// The buffer a writer wrote its last head into, kept to write the next one: once the
    /// channel has written the last head out it holds no reference to it, and the next head
    /// reuses its memory instead of allocating a buffer (two allocations: the storage object and
    /// its bytes — four of a proxied request's 23 in the release build, `bench/allocations.sh`).
    /// A buffer the channel still holds (a write waiting for the socket) is not touched: the
    /// head gets a new one (`ByteBuffer.clear(minimumCapacity:)` copies on write). At most
    /// `keptCapacity` bytes stay with a connection between requests.
    struct HeadBuffer {
        static let keptCapacity = 4_096
        private var kept: ByteBuffer?

        /// An empty buffer of at least `capacity` bytes: the kept one when the channel let go of
        /// it, else a new one from `allocator` (asked for only then).
        mutating func take(capacity: Int, allocator: @autoclosure () -> ByteBufferAllocator) -> ByteBuffer {
            guard var buffer = self.kept else { return allocator().buffer(capacity: capacity) }
            // Let go of this writer's reference first, so the buffer is unique if the channel's is gone.
            self.kept = nil
            buffer.clear(minimumCapacity: capacity)
            return buffer
        }

        /// Keeps `buffer` (a reference to the head about to be written) for the next head.
        mutating func keep(_ buffer: ByteBuffer) {
            self.kept = buffer.capacity <= Self.keptCapacity ? buffer : nil
        }

        /// Writes `bytes` behind `head`, the buffer this keeps: let go of first, so the write
        /// does not copy the head into a new buffer; kept again after.
        mutating func append(_ bytes: inout ByteBuffer, behind head: inout ByteBuffer) {
            self.kept = nil
            head.writeBuffer(&bytes)
            self.keep(head)
        }
    }
}
