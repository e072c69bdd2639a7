#if canImport(Glibc)
import Glibc
#endif
import NIOCore

/// What the gateway's two HTTP/1.1 readers share — `ClientRequestParser` (requests from
/// clients) and `UpstreamResponseParser` (responses from the cells): the byte classes of RFC 9110
/// and 9112 as llhttp applies them, numbers, and the chunk-size line.
enum HTTP1Reading {
    /// `tchar` (RFC 9110 §5.6.2): digits, letters and ! # $ % & ' * + - . ^ _ ` | ~.
    static func isTokenByte(_ byte: UInt8) -> Bool {
        // One bit per byte below 128, looked up with a shift: the same set as a `switch` of
        // ranges, which compiled to a `ClosedRange.contains` call per range and byte (0.4 % of
        // a proxy-only profile's samples on its own, `bench/profile.sh proxy`).
        if byte < 64 { return (Self.tokenBytesBelow64 >> UInt64(byte)) & 1 == 1 }
        if byte < 128 { return (Self.tokenBytesFrom64 >> UInt64(byte - 64)) & 1 == 1 }
        return false
    }

    /// Bit b: byte b is a `tchar` (! # $ % & ' * + - . and the digits).
    private static let tokenBytesBelow64: UInt64 = 0x03FF_6CFA_0000_0000
    /// Bit b: byte 64 + b is a `tchar` (the letters and ^ _ ` | ~).
    private static let tokenBytesFrom64: UInt64 = 0x57FF_FFFF_C7FF_FFFE

    /// A byte a field value may hold: anything but the control characters, HTAB excepted.
    static func isFieldValueByte(_ byte: UInt8) -> Bool {
        (byte >= 0x20 && byte != 0x7F) || byte == UInt8(ascii: "\t")
    }

    /// Whether every byte is a token character (a field name).
    static func isToken(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        for byte in bytes where !Self.isTokenByte(byte) { return false }
        return true
    }

    /// Whether no byte is a control character but HTAB (a field value, a reason phrase). Eight
    /// bytes at a time while none of them is below 0x20 or 0x7F (a bearer token alone is hundreds
    /// of bytes; byte by byte, this check was most of the time the upstream request head took
    /// in a proxy-only profile, `bench/profile.sh proxy`); a word that holds one is checked byte
    /// by byte from there (HTAB is allowed).
    static func isFieldValue(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var index = 0
        if let base = UnsafeRawPointer(bytes.baseAddress) {
            let ones: UInt64 = 0x0101_0101_0101_0101
            let highs: UInt64 = 0x8080_8080_8080_8080
            while index + 8 <= bytes.count {
                let word = base.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                // A byte below 0x20, or a byte equal to 0x7F (exact tests for "any byte").
                let below = (word &- ones &* 0x20) & ~word & highs
                let delete = word ^ (ones &* 0x7F)
                let equal = (delete &- ones) & ~delete & highs
                if below | equal != 0 { break }
                index += 8
            }
        }
        while index < bytes.count {
            guard Self.isFieldValueByte(bytes[index]) else { return false }
            index += 1
        }
        return true
    }

    /// Where `byte` first occurs in `bytes[start..<end]`, found with `memchr`, which reads many
    /// bytes at a time: byte by byte, the search for line ends was most of the request parser's
    /// time on a request with a bearer token (bench/request-decode.sh).
    static func offset(of byte: UInt8, in bytes: UnsafeRawBufferPointer, from start: Int, to end: Int) -> Int? {
        guard start < end, let base = bytes.baseAddress, let found = memchr(base + start, Int32(byte), end - start) else { return nil }
        return UnsafeRawPointer(found) - base
    }

    static func hexDigit(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(byte - UInt8(ascii: "A") + 10)
        default: nil
        }
    }

    /// `1*DIGIT`, nothing else, within `Int` (at most 18 digits: a longer length is refused
    /// rather than read with its leading zeros).
    static func decimal(_ bytes: UnsafeRawBufferPointer) -> Int? {
        guard !bytes.isEmpty, bytes.count <= 18 else { return nil }
        var value = 0
        for byte in bytes {
            let digit = byte &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            value = value * 10 + Int(digit)
        }
        return value
    }

    /// Spaces only: llhttp refuses a length followed by a tab.
    static func trimmingTrailingSpaces(_ value: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        var end = value.count
        while end > 0, value[end - 1] == UInt8(ascii: " ") { end -= 1 }
        return UnsafeRawBufferPointer(rebasing: value[..<end])
    }

    /// The next piece of a body (or chunk) with `remaining` bytes to come: what the buffer holds
    /// of it, taken out as a slice (no copy), and how many bytes are left after it. Nil when the
    /// buffer is empty.
    static func bodyPiece(_ buffer: inout ByteBuffer, remaining: Int) -> (piece: ByteBuffer, left: Int)? {
        guard buffer.readableBytes > 0 else { return nil }
        let length = min(remaining, buffer.readableBytes)
        return (buffer.readSlice(length: length)!, remaining - length)
    }

    /// What a chunk-size line (`HEX[;extensions]CRLF`) says, read whole.
    enum ChunkSizeLine: Equatable {
        /// Not whole yet.
        case incomplete
        /// The size, and the line's length with its CRLF.
        case size(Int, lineLength: Int)
        /// No hex digit first, a digit too many for `Int`, or a byte after the digits that is
        /// neither `;` nor CR: llhttp's "invalid chunk size".
        case invalidSize
        /// Extensions that are not `;name[=value]`, or CR without LF.
        case invalidLine
    }

    /// Reads the chunk-size line `bytes` starts with. Extensions are skipped, but must be
    /// `;name[=value]` with token names and token or quoted values, and no blanks: as llhttp
    /// reads them.
    static func chunkSizeLine(_ bytes: UnsafeRawBufferPointer) -> ChunkSizeLine {
        var size = 0
        var index = 0
        while index < bytes.count, let digit = Self.hexDigit(bytes[index]) {
            guard size <= (Int.max - 15) / 16 else { return .invalidSize }
            size = size * 16 + digit
            index += 1
        }
        guard index < bytes.count else { return .incomplete }
        guard index > 0 else { return .invalidSize }
        // A line end other than CRLF is llhttp's "expected CR/LF", not a size error.
        if bytes[index] == UInt8(ascii: "\n") { return .invalidLine }
        guard bytes[index] == UInt8(ascii: ";") || bytes[index] == UInt8(ascii: "\r") else { return .invalidSize }
        guard let cr = Self.offset(of: UInt8(ascii: "\r"), in: bytes, from: index, to: bytes.count) else { return .incomplete }
        guard Self.skipChunkExtensions(bytes, from: index, to: cr) else { return .invalidLine }
        guard cr + 1 < bytes.count else { return .incomplete }
        guard bytes[cr + 1] == UInt8(ascii: "\n") else { return .invalidLine }
        return .size(size, lineLength: cr + 2)
    }

    /// Whether `bytes[start..<end]` is a list of chunk extensions: `;name`, `;name=token` or
    /// `;name="quoted"`, nothing between them.
    static func skipChunkExtensions(_ bytes: UnsafeRawBufferPointer, from start: Int, to end: Int) -> Bool {
        var index = start
        while index < end {
            guard bytes[index] == UInt8(ascii: ";") else { return false }
            index += 1
            let name = index
            while index < end, Self.isTokenByte(bytes[index]) { index += 1 }
            guard index > name else { return false }
            guard index < end, bytes[index] == UInt8(ascii: "=") else { continue }
            index += 1
            if index < end, bytes[index] == UInt8(ascii: "\"") {
                index += 1
                while true {
                    guard index < end else { return false }
                    let byte = bytes[index]
                    if byte == UInt8(ascii: "\"") { break }
                    if byte == UInt8(ascii: "\\") {
                        index += 1
                        guard index < end, Self.isFieldValueByte(bytes[index]) else { return false }
                    } else if !Self.isFieldValueByte(byte) {
                        return false
                    }
                    index += 1
                }
                index += 1
            } else {
                let value = index
                while index < end, Self.isTokenByte(bytes[index]) { index += 1 }
                guard index > value else { return false }
            }
        }
        return true
    }
}
