/// Base64url (RFC 4648 §5) at the byte level.
///
/// Every token's signature is decoded on the hot path, and Foundation's base64 costs about
/// 25 µs for one signature (DESIGN.md, "Tokens"). This one reads the bytes in place, one
/// table lookup per character, with no `Data` or `String` round trip.
///
/// The decoder is strict: it refuses anything the encoder could not have produced — bytes
/// outside the alphabet, a length that leaves a lone 6-bit character (`count % 4 == 1`),
/// padding that does not exactly complete the last group, and non-zero bits in the unused
/// low bits of the last character. Otherwise one signature could be spelled several ways,
/// and the same token would appear under several texts in caches keyed on it and in logs.
public enum Base64URL {
    /// Whether trailing `=` padding may appear. JWS (RFC 7515 §2) forbids it; other users of
    /// base64url allow it, but only where it completes the final group of four.
    public enum Padding: Sendable {
        case accepted
        case rejected
    }

    /// Decodes `encoded`, which may be unpadded or correctly padded (per `padding`).
    public static func decode(
        _ encoded: some Collection<UInt8>, padding: Padding = .accepted
    ) throws(Base64URLError) -> [UInt8] {
        try withBuffer(of: encoded) { input throws(Base64URLError) in try decode(input, padding: padding) }
    }

    /// Checks `encoded` exactly as `decode` would, without producing the bytes, and returns how
    /// many bytes it decodes to. For segments that must be well-formed but are decoded elsewhere.
    @discardableResult
    public static func validate(
        _ encoded: some Collection<UInt8>, padding: Padding = .accepted
    ) throws(Base64URLError) -> Int {
        try withBuffer(of: encoded) { input throws(Base64URLError) in try validate(input, padding: padding) }
    }

    /// Encodes `bytes` without padding, as JWS requires.
    public static func encode(_ bytes: some Collection<UInt8>) -> String {
        // Contiguous bytes (an array, as every caller has) are read by index: through the generic
        // iterator, unspecialized across the module boundary, each byte cost an allocation.
        if let encoded = bytes.withContiguousStorageIfAvailable({ Self.encode(contiguous: $0) }) { return encoded }
        return Array(bytes).withUnsafeBufferPointer { Self.encode(contiguous: $0) }
    }

    private static func encode(contiguous bytes: UnsafeBufferPointer<UInt8>) -> String {
        String(unsafeUninitializedCapacity: Self.encodedCount(bytes.count)) { output in Self.encode(bytes, into: output) }
    }

    /// Characters `encode` makes of `count` bytes (no padding).
    public static func encodedCount(_ count: Int) -> Int {
        // A final group of one or two bytes takes two or three characters.
        count / 3 * 4 + (count % 3 == 0 ? 0 : count % 3 + 1)
    }

    /// Encodes `bytes` into the start of `output`, which holds at least `encodedCount(bytes.count)`
    /// bytes, and returns how many it wrote: for a caller building a larger text in one buffer.
    @discardableResult
    public static func encode(_ bytes: UnsafeBufferPointer<UInt8>, into output: UnsafeMutableBufferPointer<UInt8>) -> Int {
        let count = bytes.count
        precondition(output.count >= Self.encodedCount(count), "no room for the encoding")
        return alphabet.withUnsafeBufferPointer { alphabet in
            var written = 0
            var index = 0
            while index < count {
                let b0 = bytes[index]
                let b1: UInt8? = index + 1 < count ? bytes[index + 1] : nil
                let b2: UInt8? = index + 2 < count ? bytes[index + 2] : nil
                index += 3
                output[written] = alphabet[Int(b0 >> 2)]
                output[written + 1] = alphabet[Int((b0 & 0x03) << 4 | (b1 ?? 0) >> 4)]
                written += 2
                guard let b1 else { break }
                output[written] = alphabet[Int((b1 & 0x0F) << 2 | (b2 ?? 0) >> 6)]
                written += 1
                guard let b2 else { break }
                output[written] = alphabet[Int(b2 & 0x3F)]
                written += 1
            }
            return written
        }
    }

    // MARK: - Implementation

    private static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// Marks a byte outside the alphabet. Every valid entry is below 64, so OR-ing the looked-up
    /// values of a whole input and testing this bit finds any invalid byte without a branch
    /// per byte.
    private static let invalid: UInt8 = 0xFF

    /// 6-bit value of every byte, or `invalid`; `=` is `invalid` here, padding is handled apart.
    private static let decodingTable: [UInt8] = {
        var table = [UInt8](repeating: invalid, count: 256)
        for (value, byte) in alphabet.enumerated() {
            table[Int(byte)] = UInt8(value)
        }
        return table
    }()

    /// Runs `body` on the bytes in place when the collection is contiguous (arrays, native
    /// strings' UTF-8 views), on a copy otherwise. The closures of the standard library only
    /// rethrow untyped errors, hence the detour through `Result`.
    private static func withBuffer<Output>(
        of bytes: some Collection<UInt8>,
        _ body: (UnsafeBufferPointer<UInt8>) throws(Base64URLError) -> Output
    ) throws(Base64URLError) -> Output {
        let inPlace = bytes.withContiguousStorageIfAvailable { input in
            Result { () throws(Base64URLError) in try body(input) }
        }
        if let inPlace { return try inPlace.get() }
        return try Array(bytes).withUnsafeBufferPointer { input in
            Result { () throws(Base64URLError) in try body(input) }
        }.get()
    }

    /// Where the data characters of an input end, once padding is accounted for.
    private struct Layout {
        /// Number of data characters (padding excluded).
        var significant: Int
        var remainder: Int { significant % 4 }
        /// Only meaningful when `remainder != 1`.
        var decodedCount: Int { significant / 4 * 3 + max(remainder - 1, 0) }
    }

    private static func layout(
        of input: UnsafeBufferPointer<UInt8>, padding: Padding
    ) throws(Base64URLError) -> Layout {
        var significant = input.count
        guard padding == .accepted else { return Layout(significant: significant) }
        while significant > 0, input[significant - 1] == UInt8(ascii: "=") {
            significant -= 1
        }
        let padCount = input.count - significant
        // Correct padding fills the last group to four: "xx==" or "xxx=", nothing else.
        if padCount > 0, padCount > 2 || significant % 4 + padCount != 4 {
            throw .invalidPadding
        }
        return Layout(significant: significant)
    }

    private static func decode(
        _ input: UnsafeBufferPointer<UInt8>, padding: Padding
    ) throws(Base64URLError) -> [UInt8] {
        let layout = try layout(of: input, padding: padding)
        if layout.remainder == 1 {
            try reportInvalidCharacter(in: input, layout: layout)
            throw .impossibleLength
        }
        var seen: UInt8 = 0
        var trailing: UInt8 = 0
        let output = [UInt8](unsafeUninitializedCapacity: layout.decodedCount) { output, initialized in
            decodingTable.withUnsafeBufferPointer { table in
                var read = 0
                var written = 0
                let wholeGroupsEnd = layout.significant - layout.remainder
                while read < wholeGroupsEnd {
                    let a = table[Int(input[read])]
                    let b = table[Int(input[read + 1])]
                    let c = table[Int(input[read + 2])]
                    let d = table[Int(input[read + 3])]
                    seen |= a | b | c | d
                    let group = UInt32(a) << 18 | UInt32(b) << 12 | UInt32(c) << 6 | UInt32(d)
                    output[written] = UInt8(truncatingIfNeeded: group >> 16)
                    output[written + 1] = UInt8(truncatingIfNeeded: group >> 8)
                    output[written + 2] = UInt8(truncatingIfNeeded: group)
                    read += 4
                    written += 3
                }
                switch layout.remainder {
                case 2:
                    let a = table[Int(input[read])]
                    let b = table[Int(input[read + 1])]
                    seen |= a | b
                    output[written] = a << 2 | b >> 4
                    trailing = b & 0x0F
                case 3:
                    let a = table[Int(input[read])]
                    let b = table[Int(input[read + 1])]
                    let c = table[Int(input[read + 2])]
                    seen |= a | b | c
                    output[written] = a << 2 | b >> 4
                    output[written + 1] = b << 4 | c >> 2
                    trailing = c & 0x03
                default:
                    break
                }
            }
            initialized = layout.decodedCount
        }
        if seen & 0x80 != 0 {
            try reportInvalidCharacter(in: input, layout: layout)
        }
        if trailing != 0 { throw .nonZeroTrailingBits }
        return output
    }

    private static func validate(
        _ input: UnsafeBufferPointer<UInt8>, padding: Padding
    ) throws(Base64URLError) -> Int {
        let layout = try layout(of: input, padding: padding)
        var seen: UInt8 = 0
        var last: UInt8 = 0
        decodingTable.withUnsafeBufferPointer { table in
            for byte in input[..<layout.significant] {
                last = table[Int(byte)]
                seen |= last
            }
        }
        if seen & 0x80 != 0 {
            try reportInvalidCharacter(in: input, layout: layout)
        }
        if layout.remainder == 1 { throw .impossibleLength }
        let unusedBits: UInt8 = layout.remainder == 2 ? 0x0F : layout.remainder == 3 ? 0x03 : 0
        if last & unusedBits != 0 { throw .nonZeroTrailingBits }
        return layout.decodedCount
    }

    /// The slow path, taken only for bad input: throws for the first byte outside the alphabet,
    /// so the error names the same offset however the input was scanned.
    private static func reportInvalidCharacter(
        in input: UnsafeBufferPointer<UInt8>, layout: Layout
    ) throws(Base64URLError) {
        for offset in 0..<layout.significant where decodingTable[Int(input[offset])] == invalid {
            throw .invalidCharacter(input[offset], offset: offset)
        }
    }
}

/// Why bytes are not base64url.
///
/// The description names at most one byte, in hex, and an offset: short, safe to log, and
/// never echoing the token.
public struct Base64URLError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Code: Hashable, Sendable {
        case invalidCharacter(UInt8, offset: Int)
        case impossibleLength
        case invalidPadding
        case nonZeroTrailingBits
    }

    private let code: Code

    private init(_ code: Code) { self.code = code }

    /// `offset` is the byte index in the input, starting at 0. `=` is reported here when
    /// padding is rejected or when it appears before the end.
    public static func invalidCharacter(_ byte: UInt8, offset: Int) -> Base64URLError {
        Base64URLError(.invalidCharacter(byte, offset: offset))
    }
    /// The data characters leave one lone character (`count % 4 == 1`), which holds only
    /// 6 of the 8 bits of a byte.
    public static let impossibleLength = Base64URLError(.impossibleLength)
    public static let invalidPadding = Base64URLError(.invalidPadding)
    /// The last character sets bits that no byte fills, so another spelling of the same
    /// bytes exists; refused to keep one spelling per value.
    public static let nonZeroTrailingBits = Base64URLError(.nonZeroTrailingBits)

    public var description: String {
        switch code {
        case .invalidCharacter(let byte, let offset):
            let hex = String(byte, radix: 16, uppercase: true)
            return "base64url: byte 0x\(byte < 0x10 ? "0" : "")\(hex) at offset \(offset) is not in the alphabet"
        case .impossibleLength:
            return "base64url: length leaves a lone character (length % 4 == 1)"
        case .invalidPadding:
            return "base64url: padding does not complete the last group of four"
        case .nonZeroTrailingBits:
            return "base64url: unused bits of the last character are not zero"
        }
    }
}
