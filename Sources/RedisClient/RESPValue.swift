/// One Redis reply (RESP2), as hiredis parsed it, copied out into Swift memory.
///
/// Replies are values, not errors: an error reply (`.error("NOSCRIPT ...")`) is something a
/// caller acts on, so it resolves the command's future successfully. Only failures of the
/// connection itself are thrown (`RedisClientError`).
public enum RESPValue: Sendable, Hashable {
    /// A status reply (`+OK`, `+PONG`, `+QUEUED`).
    case simpleString(String)
    /// An error reply, first word included (`ERR ...`, `NOSCRIPT ...`, `WRONGTYPE ...`).
    case error(String)
    case integer(Int64)
    /// Binary-safe bytes; `nil` is the null reply (`GET` of a missing key, a nil `MGET` slot).
    case bulkString([UInt8]?)
    /// `nil` would be a null array. hiredis 0.14 reports a null array (`*-1`, e.g. `BLPOP` timing
    /// out) as its nil reply, so from this client it arrives as `.bulkString(nil)`; test nulls
    /// with `isNull`.
    case array([RESPValue]?)

    /// True for the null reply, however it was encoded.
    public var isNull: Bool {
        switch self {
        case .bulkString(nil), .array(nil): true
        default: false
        }
    }

    /// The text of a status or bulk reply, when the bytes are valid UTF-8.
    public var string: String? {
        switch self {
        case .simpleString(let text): text
        case .bulkString(let bytes?): String(validating: bytes, as: UTF8.self)
        default: nil
        }
    }

    /// The bytes of a bulk or status reply.
    public var bytes: [UInt8]? {
        switch self {
        case .simpleString(let text): Array(text.utf8)
        case .bulkString(let bytes?): bytes
        default: nil
        }
    }

    /// An integer reply, or a bulk reply holding a decimal integer (Lua numbers often arrive
    /// as either).
    public var int64: Int64? {
        switch self {
        case .integer(let value): value
        case .bulkString(let bytes?): String(validating: bytes, as: UTF8.self).flatMap { Int64($0) }
        default: nil
        }
    }

    /// The elements of a non-null array reply.
    public var elements: [RESPValue]? {
        if case .array(let elements?) = self { return elements }
        return nil
    }

    /// The message of an error reply.
    public var errorMessage: String? {
        if case .error(let message) = self { return message }
        return nil
    }
}
