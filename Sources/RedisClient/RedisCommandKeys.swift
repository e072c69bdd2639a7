/// Which argument of a command names the key a Redis Cluster routes it by — the small table a
/// cluster client needs, written for the commands this code base sends (mature clients read
/// `COMMAND INFO` from the server instead; a table is enough for a fixed set of commands and
/// costs no round trip at startup).
///
/// - Keyless commands (`PING`, `PUBLISH`, `SCRIPT`, `SCAN`, `CLUSTER`, `INFO`…) may go to any
///   primary. `PUBLISH` reaches every subscriber of the cluster whichever node it is sent to;
///   `SCAN` sees only the keys of the node it runs on (`RedisClient.scanKeys` scans them all).
/// - `EVAL`/`EVALSHA`/`FCALL` (and their `_RO` forms) route by their first key, or go anywhere
///   with no key.
/// - `OBJECT …`/`MEMORY …` name the key after the subcommand.
/// - Everything else routes by its first argument (`GET k`, `HSET k …`, `XADD k …`,
///   `MGET k1 k2`…). A command over keys of several slots is refused by Redis (`CROSSSLOT`):
///   keep such keys under one hash tag, or use `RedisClient.mget`.
enum RedisCommandKeys {
    /// The index in `arguments` of the routing key; nil for a keyless command.
    static func routingKeyIndex(_ arguments: [String]) -> Int? {
        guard let name = arguments.first else { return nil }
        return Self.routingKeyIndex(name: name.uppercased(), count: arguments.count, numberOfKeys: { arguments.count > 2 ? Int(arguments[2]) : nil })
    }

    static func routingKeyIndex(_ arguments: [[UInt8]]) -> Int? {
        guard let name = arguments.first else { return nil }
        return Self.routingKeyIndex(
            name: String(decoding: name, as: UTF8.self).uppercased(), count: arguments.count,
            numberOfKeys: { arguments.count > 2 ? Int(String(decoding: arguments[2], as: UTF8.self)) : nil }
        )
    }

    /// The slot a command is routed by; nil for a keyless one.
    static func slot(of arguments: [String]) -> Int? {
        Self.routingKeyIndex(arguments).map { RedisKeySlot.slot(of: arguments[$0]) }
    }

    static func slot(of arguments: [[UInt8]]) -> Int? {
        Self.routingKeyIndex(arguments).map { RedisKeySlot.slot(of: arguments[$0]) }
    }

    private static func routingKeyIndex(name: String, count: Int, numberOfKeys: () -> Int?) -> Int? {
        if Self.keyless.contains(name) { return nil }
        switch name {
        case "EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO":
            guard let keys = numberOfKeys(), keys > 0, count > 3 else { return nil }
            return 3
        case "OBJECT", "MEMORY":
            return count > 2 ? 2 : nil
        default:
            return count > 1 ? 1 : nil
        }
    }

    private static let keyless: Set<String> = [
        "PING", "ECHO", "PUBLISH", "SCRIPT", "SCAN", "CLUSTER", "INFO", "DBSIZE", "FLUSHALL", "FLUSHDB", "KEYS", "RANDOMKEY",
        "TIME", "CONFIG", "COMMAND", "FUNCTION", "CLIENT", "AUTH", "HELLO", "SELECT", "ASKING", "READONLY", "READWRITE",
        "WAIT", "LASTSAVE", "SLOWLOG", "LATENCY", "ROLE", "DEBUG", "SAVE", "BGSAVE", "MULTI", "EXEC", "DISCARD",
        "SUBSCRIBE", "PSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "PUBSUB",
    ]
}
