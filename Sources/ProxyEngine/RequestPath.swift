/// The request target the gateway matches routes on and forwards: one canonical spelling of the
/// path, so that what was authorized is exactly what the backend serves.
///
/// Normalization (RFC 3986 §6.2.2): percent-escapes of unreserved characters are decoded
/// (`%61` → `a`, `%2E` → `.`), other escapes get upper-case hex, runs of `/` collapse to one,
/// and `.`/`..` segments are resolved. Targets whose meaning two servers could disagree on are
/// refused instead, each with its own `Rejection` (logged as the reason); docs/tokens.md has the
/// table. Only the path is normalized and checked; the query is forwarded as sent, apart from
/// control characters and `#`, which are refused anywhere in the target.
struct RequestPath: Equatable {
    /// The normalized path, starting with `/`.
    let path: String
    /// The query as sent (without `?`), if any.
    let query: Substring?

    /// What is sent upstream as the request target.
    var target: String {
        guard let query else { return self.path }
        return self.path + "?" + query
    }

    enum Rejection: Error, Equatable {
        /// Not `/…` (absolute-form, authority-form, `*`).
        case notOriginForm
        /// `%2F`, `%5C` or a raw `\`: a separator some servers split on and others do not.
        case encodedSeparator
        /// A byte below 0x20 or 0x7F, raw or encoded, in the path or the query.
        case controlCharacter
        /// `%` not followed by two hex digits.
        case badEscape
        /// `..` that would climb above `/`.
        case aboveRoot
        /// `#` anywhere in the target. Clients never send a fragment; a backend that strips one
        /// serves another path than the one matched (`/v1/ledger/close#?x=1`).
        case fragment
        /// `;` in the path, raw or `%3B`. Servlet containers (Tomcat, Spring) cut path
        /// parameters out of each segment, so `/v1/ledger/..;/payroll` is `/v1/payroll` to them.
        case pathParameter
        /// `%25` (an encoded `%`) whose next character is a hex digit, raw or encoded: `%252e`
        /// is `%2e` to a server that decodes once and `.` to one that decodes twice.
        case doubleEncoding
        /// Percent-escapes that are not well-formed UTF-8 once decoded: overlong forms
        /// (`%C0%AE` is `.` to a lax decoder), surrogates, code points above U+10FFFF, stray or
        /// missing continuation bytes.
        case invalidUTF8
        /// A raw byte of 0x80 or above. RFC 3986 allows only ASCII in a URI and every conforming
        /// client percent-encodes; servers read raw bytes as UTF-8 or as ISO-8859-1 at will. NIO's
        /// HTTP/1 decoder already refuses them (400 `malformed-request`), and would hand over
        /// invalid ones as U+FFFD if it did not, so neither the client's bytes nor their meaning
        /// could be forwarded faithfully: refused here too, where the path is decided.
        /// `%C3%A9` is the form that passes.
        case rawNonASCII
    }

    /// - Parameter shortcut: take the canonical path as it is (off only in tests, to compare).
    static func parse(_ uri: String, shortcut: Bool = true) throws(Rejection) -> RequestPath {
        if shortcut, let canonical = Self.canonical(uri) { return canonical }
        let bytes = Array(uri.utf8)
        guard bytes.first == UInt8(ascii: "/") else { throw .notOriginForm }
        // Before splitting at `?`: in `/a#?b` the `?` belongs to the fragment, not to a query.
        if bytes.contains(UInt8(ascii: "#")) { throw .fragment }
        let queryStart = bytes.firstIndex(of: UInt8(ascii: "?"))
        let pathEnd = queryStart ?? bytes.count
        let query: Substring? = queryStart.map { index in
            let text = Substring(uri)
            let start = text.utf8.index(text.startIndex, offsetBy: index + 1)
            return text[start...]
        }
        if let query, query.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) { throw .controlCharacter }

        // Decode into segments.
        var segments: [[UInt8]] = []
        var current: [UInt8] = []
        var index = 1
        var endsWithSlash = false
        var aboveRoot = false
        var utf8 = UTF8Sequence()
        // The last byte appended was a decoded `%25`.
        var afterEncodedPercent = false
        func closeSegment() {
            if current == [UInt8(ascii: ".")] {
                // "." refers to the current directory: drop it.
            } else if current == [UInt8(ascii: "."), UInt8(ascii: ".")] {
                if segments.isEmpty { aboveRoot = true } else { segments.removeLast() }
            } else if !current.isEmpty {
                segments.append(current)
            }
            current.removeAll(keepingCapacity: true)
        }
        while index < pathEnd {
            let byte = bytes[index]
            // A UTF-8 sequence begun by escapes continues only with escapes.
            if byte < 0x80, byte != UInt8(ascii: "%"), utf8.isIncomplete { throw .invalidUTF8 }
            switch byte {
            case UInt8(ascii: "/"):
                closeSegment()
                endsWithSlash = true
                afterEncodedPercent = false
                index += 1
                continue
            case UInt8(ascii: "%"):
                guard index + 2 < pathEnd, let high = Self.hexValue(bytes[index + 1]), let low = Self.hexValue(bytes[index + 2]) else {
                    throw .badEscape
                }
                let decoded = high << 4 | low
                if decoded == UInt8(ascii: "/") || decoded == UInt8(ascii: "\\") { throw .encodedSeparator }
                if decoded < 0x20 || decoded == 0x7F { throw .controlCharacter }
                if decoded == UInt8(ascii: ";") { throw .pathParameter }
                if afterEncodedPercent, Self.hexValue(decoded) != nil { throw .doubleEncoding }
                if decoded >= 0x80 {
                    guard utf8.accept(decoded) else { throw .invalidUTF8 }
                } else if utf8.isIncomplete {
                    throw .invalidUTF8
                }
                afterEncodedPercent = decoded == UInt8(ascii: "%")
                if Self.isUnreserved(decoded) {
                    current.append(decoded)
                } else {
                    current.append(contentsOf: [UInt8(ascii: "%"), Self.hexDigit(decoded >> 4), Self.hexDigit(decoded & 0xF)])
                }
                index += 3
            case UInt8(ascii: "\\"):
                throw .encodedSeparator
            case UInt8(ascii: ";"):
                throw .pathParameter
            case _ where byte < 0x20 || byte == 0x7F:
                throw .controlCharacter
            case _ where byte >= 0x80:
                throw .rawNonASCII
            default:
                if afterEncodedPercent, Self.hexValue(byte) != nil { throw .doubleEncoding }
                afterEncodedPercent = false
                current.append(byte)
                index += 1
            }
            endsWithSlash = false
        }
        if utf8.isIncomplete { throw .invalidUTF8 }
        let lastWasDot = current == [UInt8(ascii: ".")] || current == [UInt8(ascii: "."), UInt8(ascii: ".")]
        closeSegment()
        if aboveRoot { throw .aboveRoot }
        var path = "/" + segments.map { String(decoding: $0, as: UTF8.self) }.joined(separator: "/")
        // Keep a trailing slash (it can mean something to the backend), and "/a/b/." is "/a/b/".
        if (endsWithSlash || lastWasDot), !segments.isEmpty { path += "/" }
        return RequestPath(path: path, query: query)
    }

    /// Well-formedness of the non-ASCII bytes decoded from escapes, one byte at a time, by the
    /// Unicode Standard's table 3-7: the second byte's range depends on the lead byte, which is
    /// what refuses overlong forms (C0, C1, E0 80–9F, F0 80–8F), surrogates (ED A0–BF) and
    /// code points above U+10FFFF (F4 90–BF, F5–FF).
    private struct UTF8Sequence {
        /// Continuation bytes still expected.
        private var remaining = 0
        /// The range the next continuation byte must fall in.
        private var lowest: UInt8 = 0x80
        private var highest: UInt8 = 0xBF

        var isIncomplete: Bool { self.remaining > 0 }

        /// Takes one byte ≥ 0x80; false if it cannot stand where it does.
        mutating func accept(_ byte: UInt8) -> Bool {
            if self.remaining > 0 {
                guard byte >= self.lowest, byte <= self.highest else { return false }
                self.remaining -= 1
                (self.lowest, self.highest) = (0x80, 0xBF)
                return true
            }
            switch byte {
            case 0xC2...0xDF: (self.remaining, self.lowest, self.highest) = (1, 0x80, 0xBF)
            case 0xE0: (self.remaining, self.lowest, self.highest) = (2, 0xA0, 0xBF)
            case 0xE1...0xEC, 0xEE...0xEF: (self.remaining, self.lowest, self.highest) = (2, 0x80, 0xBF)
            case 0xED: (self.remaining, self.lowest, self.highest) = (2, 0x80, 0x9F)
            case 0xF0: (self.remaining, self.lowest, self.highest) = (3, 0x90, 0xBF)
            case 0xF1...0xF3: (self.remaining, self.lowest, self.highest) = (3, 0x80, 0xBF)
            case 0xF4: (self.remaining, self.lowest, self.highest) = (3, 0x80, 0x8F)
            default: return false  // a continuation byte without a lead, C0, C1, F5–FF
            }
            return true
        }
    }

    /// The target as it came, when nothing in it is refused and its path is already canonical, as
    /// nearly every request's is: read in place, where the general parse copies the target into
    /// an array first. Nil sends the target through the general parse (which refuses or
    /// normalizes it).
    private static func canonical(_ uri: String) -> RequestPath? {
        let pathEnd: Int? = ForwardedHeaders.withBytes(of: uri) { bytes in
            guard bytes.first == UInt8(ascii: "/") else { return nil }
            var pathEnd = bytes.count
            for index in bytes.indices {
                let byte = bytes[index]
                if byte == UInt8(ascii: "#") { return nil }
                if index > pathEnd {
                    if byte < 0x20 || byte == 0x7F { return nil }
                } else if byte == UInt8(ascii: "?") {
                    pathEnd = index
                }
            }
            return Self.isCanonical(UnsafeBufferPointer(rebasing: bytes[..<pathEnd])) ? pathEnd : nil
        }
        guard let pathEnd else { return nil }
        guard pathEnd < uri.utf8.count else { return RequestPath(path: uri, query: nil) }
        let text = Substring(uri)
        let queryMark = text.utf8.index(text.startIndex, offsetBy: pathEnd)
        return RequestPath(path: String(text[..<queryMark]), query: text[text.utf8.index(after: queryMark)...])
    }

    /// Whether `path` (starting with `/`) is already its own canonical spelling — no escape, no
    /// byte a rule below looks at, no empty segment but a trailing one, no `.` or `..` segment —
    /// as nearly every request's path is. Then nothing is decoded and no segment is built.
    private static func isCanonical(_ path: UnsafeBufferPointer<UInt8>) -> Bool {
        var segmentStart = path.startIndex + 1
        for index in segmentStart...path.endIndex {
            guard index < path.endIndex, path[index] != UInt8(ascii: "/") else {
                let segment = path[segmentStart..<index]
                if segment.isEmpty, index < path.endIndex { return false }  // `//`
                if segment.count <= 2, !segment.isEmpty, segment.allSatisfy({ $0 == UInt8(ascii: ".") }) { return false }  // `.`, `..`
                segmentStart = index + 1
                continue
            }
            switch path[index] {
            case 0x21...0x7E where path[index] != UInt8(ascii: "%") && path[index] != UInt8(ascii: "\\") && path[index] != UInt8(ascii: ";"):
                continue
            default:
                return false
            }
        }
        return true
    }

    private static func isUnreserved(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
            || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
            || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "~")
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    private static func hexDigit(_ value: UInt8) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "A") + value - 10
    }

    /// Whether the query carries a bearer token (`access_token`), which is refused: query
    /// strings end up in logs, browser history and referrers.
    var carriesToken: Bool {
        guard let query else { return false }
        return query.split(separator: "&").contains { $0.hasPrefix("access_token=") || $0 == "access_token" }
    }
}
