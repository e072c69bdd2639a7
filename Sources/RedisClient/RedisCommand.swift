import CHiredis
import NIOCore

/// One command as RESP bytes, formatted by hiredis (`redisFormatCommandArgv`, binary-safe).
///
/// Built on the caller's thread, so a command sent from another thread costs its own loop
/// nothing but the write.
struct RedisCommand: Sendable {
    let bytes: ByteBuffer

    /// The arguments laid out back to back with their lengths, as `redisFormatCommandArgv`
    /// wants them; one allocation however many arguments there are.
    private struct Arguments {
        var storage: [UInt8] = []
        var lengths: [Int] = []

        mutating func append(_ argument: some Collection<UInt8>) {
            self.storage.append(contentsOf: argument)
            self.lengths.append(argument.count)
        }
    }

    /// - Throws: `RedisClientError.emptyCommand` when there is no argument at all: Redis answers
    ///   nothing to an empty command, which would shift every later reply onto the wrong caller.
    init(_ arguments: [String]) throws(RedisClientError) {
        var laidOut = Arguments()
        laidOut.storage.reserveCapacity(arguments.reduce(0) { $0 + $1.utf8.count } + 1)
        for argument in arguments { laidOut.append(argument.utf8) }
        self.bytes = try Self.format(laidOut)
    }

    init(_ arguments: [[UInt8]]) throws(RedisClientError) {
        var laidOut = Arguments()
        laidOut.storage.reserveCapacity(arguments.reduce(0) { $0 + $1.count } + 1)
        for argument in arguments { laidOut.append(argument) }
        self.bytes = try Self.format(laidOut)
    }

    private static func format(_ arguments: Arguments) throws(RedisClientError) -> ByteBuffer {
        guard !arguments.lengths.isEmpty else { throw .emptyCommand }
        var storage = arguments.storage
        storage.append(0)  // never empty, so the base address is never nil
        let count = arguments.lengths.count
        let formatted: ByteBuffer? = storage.withUnsafeBufferPointer { base in
            withUnsafeTemporaryAllocation(of: UnsafePointer<CChar>?.self, capacity: count) { argv in
                arguments.lengths.withUnsafeBufferPointer { lengths in
                    let chars = UnsafeRawPointer(base.baseAddress!).assumingMemoryBound(to: CChar.self)
                    var offset = 0
                    for index in 0..<count {
                        argv[index] = chars + offset
                        offset += lengths[index]
                    }
                    var target: UnsafeMutablePointer<CChar>?
                    let length = redisFormatCommandArgv(&target, Int32(count), argv.baseAddress, lengths.baseAddress)
                    guard length > 0, let target else { return nil }
                    defer { redisFreeCommand(target) }
                    return ByteBufferAllocator().buffer(bytes: UnsafeRawBufferPointer(start: target, count: Int(length)))
                }
            }
        }
        guard let formatted else {
            // Only an allocation failure inside hiredis gets here.
            fatalError("hiredis could not format a command (out of memory)")
        }
        return formatted
    }
}
