import CHiredis

/// hiredis's RESP reply reader: bytes in, complete replies out. hiredis does all the parsing;
/// this type owns the C reader and turns each reply into a `RESPValue`.
///
/// hiredis builds each reply through the functions of the C shim (`erp_reply_reader_create`):
/// into flat arrays this reader keeps and reuses, not one `malloc`ed reply object per element.
///
/// Not thread-safe and not `Sendable`: one per connection, used on the connection's loop.
final class HiredisReader {
    enum Output {
        case reply(RESPValue)
        /// The stream is not RESP (or nests deeper than hiredis supports); the reader is
        /// unusable from here on. The message is hiredis's, for logs.
        case protocolError(String)
    }

    private let reader: UnsafeMutablePointer<redisReader>
    private let builder: UnsafeMutablePointer<erp_reply_builder>

    init() {
        var builder: UnsafeMutablePointer<erp_reply_builder>?
        guard let reader = erp_reply_reader_create(&builder), let builder else {
            fatalError("hiredis could not allocate a reply reader (out of memory)")
        }
        self.reader = reader
        self.builder = builder
    }

    deinit {
        redisReaderFree(self.reader)
        erp_reply_builder_free(self.builder)
    }

    /// Hands `bytes` to hiredis (it copies them into its own buffer).
    /// - Returns: false when the reader is already in its error state.
    func feed(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return true }
        return redisReaderFeed(self.reader, base.assumingMemoryBound(to: CChar.self), bytes.count) == REDIS_OK
    }

    /// The next complete reply, or `nil` when more bytes are needed.
    func next() -> Output? {
        var reply: UnsafeMutableRawPointer?
        guard redisReaderGetReply(self.reader, &reply) == REDIS_OK else {
            erp_reply_builder_reset(self.builder)
            let message = erp_redis_reader_has_error(self.reader) != 0
                ? String(cString: erp_redis_reader_error(self.reader)) : "unknown reader error"
            return .protocolError(message)
        }
        guard reply != nil else { return nil }
        defer { erp_reply_builder_reset(self.builder) }
        let built = self.builder.pointee
        var index = 0
        return .reply(Self.value(at: &index, of: built))
    }

    /// The node at `index` with its elements (they follow it), leaving `index` past them.
    private static func value(at index: inout Int, of built: erp_reply_builder) -> RESPValue {
        precondition(index < built.count, "a reply's nodes ended inside it")
        let node = built.nodes[index]
        index += 1
        switch node.type {
        case REDIS_REPLY_STATUS:
            return .simpleString(String(decoding: Self.bytes(of: node, in: built), as: UTF8.self))
        case REDIS_REPLY_ERROR:
            return .error(String(decoding: Self.bytes(of: node, in: built), as: UTF8.self))
        case REDIS_REPLY_INTEGER:
            return .integer(Int64(node.integer))
        case REDIS_REPLY_STRING:
            return .bulkString(Array(Self.bytes(of: node, in: built)))
        case REDIS_REPLY_ARRAY:
            var elements: [RESPValue] = []
            elements.reserveCapacity(Int(node.elements))
            for _ in 0..<Int(node.elements) { elements.append(Self.value(at: &index, of: built)) }
            return .array(elements)
        default:
            // REDIS_REPLY_NIL: the null bulk string and the null array alike.
            return .bulkString(nil)
        }
    }

    private static func bytes(of node: erp_reply_node, in built: erp_reply_builder) -> UnsafeRawBufferPointer {
        guard node.length > 0, let bytes = built.bytes else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: bytes + node.offset, count: node.length)
    }
}
