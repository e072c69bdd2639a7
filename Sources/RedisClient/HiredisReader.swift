import CHiredis

/// hiredis's RESP reply reader: bytes in, complete replies out. hiredis does all the parsing;
/// this type only owns the C reader and copies each reply into a `RESPValue`.
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

    init() {
        guard let reader = redisReaderCreate() else {
            fatalError("hiredis could not allocate a reply reader (out of memory)")
        }
        self.reader = reader
    }

    deinit {
        redisReaderFree(self.reader)
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
            let message = erp_redis_reader_has_error(self.reader) != 0
                ? String(cString: erp_redis_reader_error(self.reader)) : "unknown reader error"
            return .protocolError(message)
        }
        guard let reply else { return nil }
        defer { freeReplyObject(reply) }
        return .reply(Self.value(of: reply.assumingMemoryBound(to: redisReply.self)))
    }

    private static func value(of reply: UnsafePointer<redisReply>) -> RESPValue {
        let object = reply.pointee
        switch object.type {
        case REDIS_REPLY_STATUS:
            return .simpleString(Self.text(object))
        case REDIS_REPLY_ERROR:
            return .error(Self.text(object))
        case REDIS_REPLY_INTEGER:
            return .integer(Int64(object.integer))
        case REDIS_REPLY_STRING:
            guard let bytes = object.str, object.len > 0 else { return .bulkString([]) }
            return .bulkString(Array(UnsafeRawBufferPointer(start: bytes, count: object.len)))
        case REDIS_REPLY_ARRAY:
            var elements: [RESPValue] = []
            elements.reserveCapacity(object.elements)
            for index in 0..<object.elements {
                // hiredis never leaves a slot of a complete array empty; nil stays nil anyway.
                if let element = object.element[index] {
                    elements.append(Self.value(of: element))
                } else {
                    elements.append(.bulkString(nil))
                }
            }
            return .array(elements)
        default:
            // REDIS_REPLY_NIL, and any type a newer hiredis might add: the null reply.
            return .bulkString(nil)
        }
    }

    private static func text(_ object: redisReply) -> String {
        guard let bytes = object.str, object.len > 0 else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: bytes, count: object.len), as: UTF8.self)
    }
}
