/// Finds the values a `FieldMask` masks in one JSON document (RFC 8259), in a single pass over
/// its bytes, checking the whole document's syntax on the way.
///
/// Hand-written rather than Foundation's `JSONSerialization`, for three measured reasons
/// (bench/masking.sh): parsing into objects and serializing again costs about ten times as
/// much CPU per KiB; re-serializing rewrites what is not masked (numbers such as `1.10` or
/// 2^63 come back changed, member order is lost); and a pass that only locates values lets the
/// caller copy everything between them as it came. A masked value's bytes are replaced whole:
/// a string by `"***"`, any other value (number, `true`/`false`, `null`, object, array) by
/// `null`.
///
/// Strict on purpose: a document a client's parser could read differently (trailing bytes,
/// control characters in strings, bad escapes or numbers, nesting deeper than `maxDepth`) is
/// refused rather than masked as guessed.
public enum JSONMasker {
    public enum Failure: Error, Equatable {
        /// Not one JSON value: the offset of the first byte that does not fit.
        case invalid(offset: Int)
        /// Nested deeper than `maxDepth`.
        case tooDeep
    }

    /// One masked value: its bytes in the document, and whether it was a string.
    public struct Replacement: Equatable, Sendable {
        public let range: Range<Int>
        public let wasString: Bool

        /// What the value becomes.
        public var text: StaticString { self.wasString ? "\"***\"" : "null" }
    }

    /// Nesting of arrays and objects allowed; deeper documents are refused.
    public static let maxDepth = 256

    /// The masked values of `document`, in document order.
    public static func replacements(in document: UnsafeRawBufferPointer, mask: FieldMask) throws(Failure) -> [Replacement] {
        var scanner = Scanner(bytes: document, mask: mask)
        scanner.skipWhitespace()
        try scanner.value(state: 0, depth: 0)
        scanner.skipWhitespace()
        guard scanner.position == document.count else { throw .invalid(offset: scanner.position) }
        return scanner.replacements
    }

    /// The document with its masked values replaced, and how many there were.
    public static func masked(_ document: [UInt8], mask: FieldMask) throws(Failure) -> (bytes: [UInt8], count: Int) {
        let found: [Replacement]
        do {
            found = try document.withUnsafeBytes { bytes in try Self.replacements(in: bytes, mask: mask) }
        } catch let failure as Failure {
            throw failure
        } catch {
            throw .invalid(offset: 0)
        }
        var out: [UInt8] = []
        out.reserveCapacity(document.count)
        var copied = 0
        for replacement in found {
            out.append(contentsOf: document[copied..<replacement.range.lowerBound])
            replacement.text.withUTF8Buffer { out.append(contentsOf: $0) }
            copied = replacement.range.upperBound
        }
        out.append(contentsOf: document[copied...])
        return (out, found.count)
    }

    private struct Scanner {
        let bytes: UnsafeRawBufferPointer
        let mask: FieldMask
        var position = 0
        var replacements: [Replacement] = []
        /// Names to look for (false inside a value already masked, whose parts are only checked):
        /// without them, member names need no decoding outside the pointers' paths.
        var hasNames: Bool

        init(bytes: UnsafeRawBufferPointer, mask: FieldMask) {
            self.bytes = bytes
            self.mask = mask
            self.hasNames = !mask.names.isEmpty
        }

        /// Whether a member name (its raw bytes between the quotes) is one of the mask's
        /// names: compared as bytes against the names of its length, so the usual name — not
        /// masked, no escapes — costs no string and no hashing.
        func isMaskedName(_ raw: UnsafeRawBufferPointer, escaped: Bool) -> Bool {
            if escaped { return self.mask.names.contains(Self.unescape(raw)) }
            let byLength = self.mask.namesByLength
            guard raw.count < byLength.count else { return false }
            for name in byLength[raw.count] where name.withUnsafeBytes({ $0.elementsEqual(raw) }) {
                return true
            }
            return false
        }

        var current: UInt8? { self.position < self.bytes.count ? self.bytes[self.position] : nil }

        mutating func skipWhitespace() {
            while self.position < self.bytes.count {
                switch self.bytes[self.position] {
                case 0x20, 0x09, 0x0A, 0x0D: self.position += 1
                default: return
                }
            }
        }

        func fail() -> Failure { .invalid(offset: self.position) }

        /// One value at `position`, whose location is in automaton state `state` (nil: no
        /// pointer reaches below it).
        mutating func value(state: Int?, depth: Int) throws(Failure) {
            guard let byte = self.current else { throw self.fail() }
            switch byte {
            case UInt8(ascii: "{"): try self.object(state: state, depth: depth + 1)
            case UInt8(ascii: "["): try self.array(state: state, depth: depth + 1)
            case UInt8(ascii: "\""): _ = try self.string()
            case UInt8(ascii: "t"): try self.literal("true")
            case UInt8(ascii: "f"): try self.literal("false")
            case UInt8(ascii: "n"): try self.literal("null")
            default: try self.number()
            }
        }

        /// The value of a member or element: replaced whole when masked, else read on.
        mutating func child(state: Int?, masked: Bool, depth: Int) throws(Failure) {
            guard masked else { return try self.value(state: state, depth: depth) }
            let start = self.position
            let wasString = self.current == UInt8(ascii: "\"")
            let hadNames = self.hasNames
            self.hasNames = false
            try self.value(state: nil, depth: depth)
            self.hasNames = hadNames
            self.replacements.append(Replacement(range: start..<self.position, wasString: wasString))
        }

        mutating func object(state: Int?, depth: Int) throws(Failure) {
            guard depth <= JSONMasker.maxDepth else { throw .tooDeep }
            self.position += 1
            self.skipWhitespace()
            if self.current == UInt8(ascii: "}") {
                self.position += 1
                return
            }
            while true {
                guard self.current == UInt8(ascii: "\"") else { throw self.fail() }
                let (raw, escaped) = try self.string()
                var next: Int?
                if let state {
                    if self.mask.states[state].members.isEmpty {
                        next = self.mask.states[state].other
                    } else if escaped {
                        next = self.mask.states[state].members[Self.unescape(raw)] ?? self.mask.states[state].other
                    } else {
                        next = self.mask.states[state].next(member: raw)
                    }
                }
                let masked = (next.map { self.mask.states[$0].masked } ?? false) || (self.hasNames && self.isMaskedName(raw, escaped: escaped))
                self.skipWhitespace()
                guard self.current == UInt8(ascii: ":") else { throw self.fail() }
                self.position += 1
                self.skipWhitespace()
                try self.child(state: next, masked: masked, depth: depth)
                self.skipWhitespace()
                switch self.current {
                case UInt8(ascii: ","):
                    self.position += 1
                    self.skipWhitespace()
                case UInt8(ascii: "}"):
                    self.position += 1
                    return
                default:
                    throw self.fail()
                }
            }
        }

        mutating func array(state: Int?, depth: Int) throws(Failure) {
            guard depth <= JSONMasker.maxDepth else { throw .tooDeep }
            self.position += 1
            self.skipWhitespace()
            if self.current == UInt8(ascii: "]") {
                self.position += 1
                return
            }
            var index = 0
            while true {
                var next: Int?
                if let state {
                    next = self.mask.states[state].members.isEmpty ? self.mask.states[state].other : (self.mask.states[state].members[String(index)] ?? self.mask.states[state].other)
                }
                try self.child(state: next, masked: next.map { self.mask.states[$0].masked } ?? false, depth: depth)
                index += 1
                self.skipWhitespace()
                switch self.current {
                case UInt8(ascii: ","):
                    self.position += 1
                    self.skipWhitespace()
                case UInt8(ascii: "]"):
                    self.position += 1
                    return
                default:
                    throw self.fail()
                }
            }
        }

        mutating func literal(_ word: StaticString) throws(Failure) {
            let count = word.utf8CodeUnitCount
            guard self.position + count <= self.bytes.count else { throw self.fail() }
            let matches = word.withUTF8Buffer { expected in
                (0..<count).allSatisfy { self.bytes[self.position + $0] == expected[$0] }
            }
            guard matches else { throw self.fail() }
            self.position += count
        }

        mutating func number() throws(Failure) {
            func isDigit(_ byte: UInt8?) -> Bool { byte.map { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") } ?? false }
            if self.current == UInt8(ascii: "-") { self.position += 1 }
            if self.current == UInt8(ascii: "0") {
                self.position += 1
            } else {
                guard isDigit(self.current) else { throw self.fail() }
                while isDigit(self.current) { self.position += 1 }
            }
            if self.current == UInt8(ascii: ".") {
                self.position += 1
                guard isDigit(self.current) else { throw self.fail() }
                while isDigit(self.current) { self.position += 1 }
            }
            if self.current == UInt8(ascii: "e") || self.current == UInt8(ascii: "E") {
                self.position += 1
                if self.current == UInt8(ascii: "+") || self.current == UInt8(ascii: "-") { self.position += 1 }
                guard isDigit(self.current) else { throw self.fail() }
                while isDigit(self.current) { self.position += 1 }
            }
        }

        /// A string at `position` (its opening quote), checked and skipped: its raw bytes
        /// between the quotes, and whether they hold escapes.
        mutating func string() throws(Failure) -> (raw: UnsafeRawBufferPointer, escaped: Bool) {
            self.position += 1
            let start = self.position
            var escaped = false
            let count = self.bytes.count
            while true {
                // The usual bytes first, in a tight loop.
                while self.position < count {
                    let byte = self.bytes[self.position]
                    if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || byte < 0x20 { break }
                    self.position += 1
                }
                guard let byte = self.current else { throw self.fail() }
                if byte == UInt8(ascii: "\"") { break }
                if byte < 0x20 { throw self.fail() }
                escaped = true
                self.position += 1
                switch self.current {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    self.position += 1
                case UInt8(ascii: "u"):
                    self.position += 1
                    for _ in 0..<4 {
                        guard let hex = self.current, Self.hexValue(hex) != nil else { throw self.fail() }
                        self.position += 1
                    }
                default:
                    throw self.fail()
                }
            }
            let end = self.position
            self.position += 1
            return (UnsafeRawBufferPointer(rebasing: self.bytes[start..<end]), escaped)
        }

        static func hexValue(_ byte: UInt8) -> UInt32? {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt32(byte - UInt8(ascii: "A") + 10)
            default: nil
            }
        }

        /// The value of a string whose escapes were checked. A lone surrogate becomes U+FFFD (a
        /// Swift string cannot hold one).
        static func unescape(_ raw: UnsafeRawBufferPointer) -> String {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(raw.count)
            var index = 0
            func hex4(at offset: Int) -> UInt32 {
                (0..<4).reduce(0) { $0 << 4 | Self.hexValue(raw[offset + $1])! }
            }
            func append(_ scalar: Unicode.Scalar) { bytes.append(contentsOf: Array(String(scalar).utf8)) }
            while index < raw.count {
                let byte = raw[index]
                guard byte == UInt8(ascii: "\\") else {
                    bytes.append(byte)
                    index += 1
                    continue
                }
                let kind = raw[index + 1]
                index += 2
                switch kind {
                case UInt8(ascii: "b"): bytes.append(0x08)
                case UInt8(ascii: "f"): bytes.append(0x0C)
                case UInt8(ascii: "n"): bytes.append(0x0A)
                case UInt8(ascii: "r"): bytes.append(0x0D)
                case UInt8(ascii: "t"): bytes.append(0x09)
                case UInt8(ascii: "u"):
                    var code = hex4(at: index)
                    index += 4
                    if (0xD800...0xDBFF).contains(code), index + 6 <= raw.count, raw[index] == UInt8(ascii: "\\"), raw[index + 1] == UInt8(ascii: "u") {
                        let low = hex4(at: index + 2)
                        if (0xDC00...0xDFFF).contains(low) {
                            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                            index += 6
                        }
                    }
                    append(Unicode.Scalar(code) ?? "\u{FFFD}")
                default: bytes.append(kind)  // " \ /
                }
            }
            return String(decoding: bytes, as: UTF8.self)
        }
    }
}
