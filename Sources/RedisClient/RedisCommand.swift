import NIOCore

/// One command as RESP bytes: an array of bulk strings, binary-safe.
///
/// Written straight into the buffer that goes on the wire, one allocation per command. hiredis
/// still reads every reply; its formatter (`redisFormatCommandArgv`) is not used because it
/// wanted the arguments laid out in one array with a second array of lengths, and returned its
/// own `malloc`ed copy for the ByteBuffer to copy again: five allocations per command, on the
/// path of every request that asks Redis (`AllocationBudgetTests`, full pipeline with leases
/// off: 143 allocations per request before, in the release build). The framing it wrote is
/// `*<count>\r\n` then `$<length>\r\n<bytes>\r\n` per argument, and so is this.
///
/// Built on the caller's thread, so a command sent from another thread costs its own loop
/// nothing but the write.
struct RedisCommand: Sendable {
    let bytes: ByteBuffer

    /// - Throws: `RedisClientError.emptyCommand` when there is no argument at all: Redis answers
    ///   nothing to an empty command, which would shift every later reply onto the wrong caller.
    init(_ arguments: [String]) throws(RedisClientError) {
        guard !arguments.isEmpty else { throw .emptyCommand }
        var writer = Writer(count: arguments.count, payload: arguments.reduce(0) { $0 + $1.utf8.count })
        for argument in arguments { writer.append(argument) }
        self.bytes = writer.finish()
    }

    init(_ arguments: [[UInt8]]) throws(RedisClientError) {
        guard !arguments.isEmpty else { throw .emptyCommand }
        var writer = Writer(count: arguments.count, payload: arguments.reduce(0) { $0 + $1.count })
        for argument in arguments { writer.append(argument) }
        self.bytes = writer.finish()
    }

    init(_ call: consuming RedisScriptCall) {
        self.bytes = call.writer.finish()
    }

    /// Writes a command of a known number of arguments, sized once from their total length.
    struct Writer {
        private var buffer: ByteBuffer
        private var remaining: Int

        /// - Parameters:
        ///   - count: the number of arguments that will be appended (at least one).
        ///   - payload: their bytes in all; a good estimate saves the buffer growing.
        init(count: Int, payload: Int) {
            precondition(count > 0, "a command has at least one argument")
            // Per argument: `$`, up to 20 digits of length, and two CRLFs.
            self.buffer = ByteBufferAllocator().buffer(capacity: 25 + payload + count * 25)
            self.remaining = count
            self.buffer.writeInteger(UInt8(ascii: "*"))
            self.buffer.writeString(String(count))
            self.buffer.writeStaticString("\r\n")
        }

        mutating func append(_ argument: String) {
            self.header(length: argument.utf8.count)
            self.buffer.writeString(argument)
            self.buffer.writeStaticString("\r\n")
        }

        mutating func append(_ head: String, _ tail: StaticString) {
            self.header(length: head.utf8.count + tail.utf8CodeUnitCount)
            self.buffer.writeString(head)
            self.buffer.writeStaticString(tail)
            self.buffer.writeStaticString("\r\n")
        }

        mutating func append(_ head: String, _ middle: StaticString, _ tail: String) {
            self.header(length: head.utf8.count + middle.utf8CodeUnitCount + tail.utf8.count)
            self.buffer.writeString(head)
            self.buffer.writeStaticString(middle)
            self.buffer.writeString(tail)
            self.buffer.writeStaticString("\r\n")
        }

        /// A decimal integer, its digits written in place: `String(integer)` allocates past 15
        /// digits, as the µs instants quota scripts take have.
        mutating func append(_ integer: Int64) {
            let length = Self.decimalLength(of: integer)
            self.header(length: length)
            var magnitude = integer.magnitude
            self.buffer.writeRepeatingByte(UInt8(ascii: "0"), count: length)
            var index = self.buffer.writerIndex - 1
            repeat {
                self.buffer.setInteger(UInt8(ascii: "0") + UInt8(magnitude % 10), at: index)
                magnitude /= 10
                index -= 1
            } while magnitude > 0
            if integer < 0 { self.buffer.setInteger(UInt8(ascii: "-"), at: index) }
            self.buffer.writeStaticString("\r\n")
        }

        /// Characters of `integer` in decimal, its sign included.
        static func decimalLength(of integer: Int64) -> Int {
            var magnitude = integer.magnitude
            var length = integer < 0 ? 2 : 1
            while magnitude >= 10 {
                magnitude /= 10
                length += 1
            }
            return length
        }

        mutating func append(_ argument: [UInt8]) {
            self.header(length: argument.count)
            self.buffer.writeBytes(argument)
            self.buffer.writeStaticString("\r\n")
        }

        private mutating func header(length: Int) {
            precondition(self.remaining > 0, "more arguments than the command was sized for")
            self.remaining -= 1
            self.buffer.writeInteger(UInt8(ascii: "$"))
            self.buffer.writeString(String(length))
            self.buffer.writeStaticString("\r\n")
        }

        /// The command; every argument announced must have been appended.
        consuming func finish() -> ByteBuffer {
            precondition(self.remaining == 0, "fewer arguments than the command was sized for")
            return self.buffer
        }
    }
}
