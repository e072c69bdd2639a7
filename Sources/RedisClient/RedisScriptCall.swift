import NIOCore

/// Writes a command's arguments one by one: into an `EVALSHA` on its way to the wire
/// (`RedisScriptCall`), or into a list of strings (`RedisArgumentList`) where a caller wants to
/// read them. One description of a script's KEYS and ARGV serves both.
public protocol RedisArgumentWriter {
    mutating func append(_ argument: String)
    /// A decimal integer.
    mutating func append(_ integer: Int64)
    /// `head` followed by `tail`, as one argument.
    mutating func append(_ head: String, _ tail: StaticString)
    /// `head`, `middle` and `tail`, as one argument.
    mutating func append(_ head: String, _ middle: StaticString, _ tail: String)
}

/// The arguments as strings.
public struct RedisArgumentList: RedisArgumentWriter {
    public private(set) var arguments: [String] = []

    public init() {}

    public mutating func append(_ argument: String) { self.arguments.append(argument) }
    public mutating func append(_ integer: Int64) { self.arguments.append(String(integer)) }
    public mutating func append(_ head: String, _ tail: StaticString) { self.arguments.append(head + tail.description) }
    public mutating func append(_ head: String, _ middle: StaticString, _ tail: String) {
        self.arguments.append(head + middle.description + tail)
    }
}

/// How many arguments a writer is given and their bytes in all, counted without writing them:
/// what sizes a `RedisScriptCall` from the same description that then fills it.
public struct RedisArgumentSize: RedisArgumentWriter {
    public private(set) var count = 0
    public private(set) var bytes = 0

    public init() {}

    public mutating func append(_ argument: String) { self.add(argument.utf8.count) }
    public mutating func append(_ integer: Int64) { self.add(RedisCommand.Writer.decimalLength(of: integer)) }
    public mutating func append(_ head: String, _ tail: StaticString) { self.add(head.utf8.count + tail.utf8CodeUnitCount) }
    public mutating func append(_ head: String, _ middle: StaticString, _ tail: String) {
        self.add(head.utf8.count + middle.utf8CodeUnitCount + tail.utf8.count)
    }

    private mutating func add(_ length: Int) {
        self.count += 1
        self.bytes += length
    }
}

/// `EVALSHA sha numkeys key… arg…`, written straight into the bytes sent: no array of keys or
/// arguments, no string for a key made of parts. For the scripts a request waits on, whose
/// keys and arguments are built per request (`RedisClient.evalSHA(on:_:script:slotKey:)`).
public struct RedisScriptCall: RedisArgumentWriter {
    /// The lowercase hex SHA1 of the script.
    public let sha: String
    var writer: RedisCommand.Writer

    /// - Parameters:
    ///   - keyCount: KEYS to be appended first, then `argumentCount` ARGV.
    ///   - payload: an estimate of their bytes in all, so the buffer is sized once.
    public init(sha: String, keyCount: Int, argumentCount: Int, payload: Int) {
        self.sha = sha
        self.writer = RedisCommand.Writer(count: 3 + keyCount + argumentCount, payload: 7 + sha.utf8.count + 20 + payload)
        self.writer.append("EVALSHA")
        self.writer.append(sha)
        self.writer.append(String(keyCount))
    }

    public mutating func append(_ argument: String) { self.writer.append(argument) }
    public mutating func append(_ integer: Int64) { self.writer.append(integer) }
    public mutating func append(_ head: String, _ tail: StaticString) { self.writer.append(head, tail) }
    public mutating func append(_ head: String, _ middle: StaticString, _ tail: String) { self.writer.append(head, middle, tail) }
}
