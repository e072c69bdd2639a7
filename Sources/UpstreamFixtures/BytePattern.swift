/// The byte stream the demo backend serves and the tests upload: byte `i` is `i % 251`. A prime
/// period means a shifted, dropped or duplicated block never lines up by accident.
public enum BytePattern {
    public static let period = 251
    /// One reference block long enough to cover any chunk up to `maxChunk` at any phase, so
    /// producing and checking the pattern are plain memory copies and compares.
    public static let maxChunk = 256 * 1024
    private static let reference: [UInt8] = (0..<(maxChunk + period)).map { UInt8(truncatingIfNeeded: $0 % period) }

    /// Calls `body` with the `count` pattern bytes starting at stream offset `offset`.
    public static func withBytes<Result>(at offset: Int, count: Int, _ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        precondition(count <= self.maxChunk)
        let phase = offset % self.period
        return try self.reference.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[phase..<(phase + count)])) }
    }

    /// Whether `bytes` equal the pattern at stream offset `offset` (any length).
    public static func matches(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> Bool {
        var checked = 0
        while checked < bytes.count {
            let size = min(self.maxChunk, bytes.count - checked)
            let equal = self.withBytes(at: offset + checked, count: size) { expected in
                memcmp(expected.baseAddress!, bytes.baseAddress! + checked, size) == 0
            }
            if !equal { return false }
            checked += size
        }
        return true
    }
}

#if canImport(Glibc)
import Glibc
#endif
