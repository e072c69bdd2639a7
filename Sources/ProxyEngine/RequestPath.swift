/// The request target the gateway matches routes on and forwards: one canonical spelling of the
/// path, so that what was authorized is exactly what the backend serves.
///
/// Normalization (RFC 3986 §6.2.2): percent-escapes of unreserved characters are decoded
/// (`%61` → `a`, `%2E` → `.`), other escapes get upper-case hex, runs of `/` collapse to one,
/// and `.`/`..` segments are resolved. Targets whose meaning two servers could disagree on are
/// refused instead: an encoded `/` or `\`, a raw `\`, a NUL or control byte, a malformed escape,
/// and `..` that would climb above the root.
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
        case notOriginForm
        case encodedSeparator
        case controlCharacter
        case badEscape
        case aboveRoot
    }

    static func parse(_ uri: String) throws(Rejection) -> RequestPath {
        let bytes = Array(uri.utf8)
        guard bytes.first == UInt8(ascii: "/") else { throw .notOriginForm }
        let queryStart = bytes.firstIndex(of: UInt8(ascii: "?"))
        // A fragment is never sent by a client; if one is, it is part of nothing we route on.
        let pathEnd = queryStart ?? bytes.firstIndex(of: UInt8(ascii: "#")) ?? bytes.count
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
            switch byte {
            case UInt8(ascii: "/"):
                closeSegment()
                endsWithSlash = true
                index += 1
                continue
            case UInt8(ascii: "%"):
                guard index + 2 < pathEnd, let high = Self.hexValue(bytes[index + 1]), let low = Self.hexValue(bytes[index + 2]) else {
                    throw .badEscape
                }
                let decoded = high << 4 | low
                if decoded == UInt8(ascii: "/") || decoded == UInt8(ascii: "\\") { throw .encodedSeparator }
                if decoded < 0x20 || decoded == 0x7F { throw .controlCharacter }
                if Self.isUnreserved(decoded) {
                    current.append(decoded)
                } else {
                    current.append(contentsOf: [UInt8(ascii: "%"), Self.hexDigit(decoded >> 4), Self.hexDigit(decoded & 0xF)])
                }
                index += 3
            case UInt8(ascii: "\\"):
                throw .encodedSeparator
            case _ where byte < 0x20 || byte == 0x7F:
                throw .controlCharacter
            default:
                current.append(byte)
                index += 1
            }
            endsWithSlash = false
        }
        let lastWasDot = current == [UInt8(ascii: ".")] || current == [UInt8(ascii: "."), UInt8(ascii: ".")]
        closeSegment()
        if aboveRoot { throw .aboveRoot }
        var path = "/" + segments.map { String(decoding: $0, as: UTF8.self) }.joined(separator: "/")
        // Keep a trailing slash (it can mean something to the backend), and "/a/b/." is "/a/b/".
        if (endsWithSlash || lastWasDot), !segments.isEmpty { path += "/" }
        return RequestPath(path: path, query: query)
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
