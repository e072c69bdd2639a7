/// A JWS compact serialization, `header.payload.signature`, split into its three segments.
///
/// **Not verified.** A `CompactToken` only says the text is shaped like a JWS: three non-empty
/// base64url segments. Its header and payload carry no trusted claims — anyone can write
/// them — and nothing here checks the signature. It exists so that the verifier can check
/// the signature over `signingInput` with the key and algorithm pinned for the issuer before
/// any claim is read.
///
/// Parsing is byte-level and bounded: the length limit is checked before anything else, so an
/// oversized header value costs one comparison. Once parsed, every byte of the token is a
/// base64url character or one of the two dots, so it can be handed to C (libjwt) as a
/// NUL-terminated string with no embedded NUL.
public struct CompactToken: Sendable {
    public enum Segment: String, Sendable, Hashable {
        case header
        case payload
        case signature
    }

    /// The token exactly as received.
    public let serialized: Substring
    /// The decoded signature segment.
    public let signature: [UInt8]

    /// Indices of the two dots in `serialized.utf8`.
    private let firstDot: String.Index
    private let secondDot: String.Index

    /// - Parameter maxLength: the longest token accepted, in bytes.
    public init(_ serialized: Substring, maxLength: Int) throws(CompactTokenError) {
        try self.init(serialized, maxLength: maxLength, allowingEmptySignature: false)
    }

    /// - Parameter allowingEmptySignature: whether `header.payload.` parses, with an empty
    ///   `signature`. The verifier allows it so that an unsigned (`alg: none`) token is refused
    ///   for its algorithm, and any other with an empty signature as a bad signature, rather
    ///   than both as malformed text.
    init(_ serialized: Substring, maxLength: Int, allowingEmptySignature: Bool) throws(CompactTokenError) {
        let bytes = serialized.utf8
        guard bytes.count <= maxLength else { throw .tooLong }

        guard let (firstDot, secondDot) = Self.twoDots(in: bytes) else { throw .wrongSegmentCount }

        // Slices of the UTF-8 view, not of the Substring: a Substring slice rounds its bounds
        // to Character boundaries, and a non-ASCII character next to a dot could otherwise
        // move a segment's edge before the bytes were checked.
        let header = bytes[..<firstDot]
        let payload = bytes[bytes.index(after: firstDot)..<secondDot]
        let encodedSignature = bytes[bytes.index(after: secondDot)...]

        if header.isEmpty { throw .emptySegment(.header) }
        // An empty payload is legal for detached-content JWS (RFC 7515 appendix F), which this
        // gateway does not accept: its tokens carry their claims.
        if payload.isEmpty { throw .emptySegment(.payload) }
        if encodedSignature.isEmpty, !allowingEmptySignature { throw .emptySegment(.signature) }

        do { try Base64URL.validate(header, padding: .rejected) } catch { throw .badBase64(.header) }
        do { try Base64URL.validate(payload, padding: .rejected) } catch { throw .badBase64(.payload) }
        do {
            self.signature = try Base64URL.decode(encodedSignature, padding: .rejected)
        } catch {
            throw .badBase64(.signature)
        }
        self.serialized = serialized
        self.firstDot = firstDot
        self.secondDot = secondDot
    }

    /// The indices of exactly two dots, or nil. Scans the bytes in place when they are
    /// contiguous (native strings): the generic `firstIndex(of:)` on a UTF-8 view walks it one
    /// index at a time, which showed up at about a microsecond per token.
    private static func twoDots(in bytes: Substring.UTF8View) -> (String.Index, String.Index)? {
        let dot = UInt8(ascii: ".")
        let offsets = bytes.withContiguousStorageIfAvailable { buffer -> (Int, Int)? in
            var first = -1
            var second = -1
            for offset in buffer.indices where buffer[offset] == dot {
                if first < 0 {
                    first = offset
                } else if second < 0 {
                    second = offset
                } else {
                    return nil
                }
            }
            return second < 0 ? nil : (first, second)
        }
        if let offsets {
            guard let (first, second) = offsets else { return nil }
            // O(1) on a native string's UTF-8 view.
            return (bytes.index(bytes.startIndex, offsetBy: first), bytes.index(bytes.startIndex, offsetBy: second))
        }
        guard let firstDot = bytes.firstIndex(of: dot),
              let secondDot = bytes[bytes.index(after: firstDot)...].firstIndex(of: dot),
              !bytes[bytes.index(after: secondDot)...].contains(dot)
        else { return nil }
        return (firstDot, secondDot)
    }

    public init(_ serialized: String, maxLength: Int) throws(CompactTokenError) {
        try self.init(serialized[...], maxLength: maxLength)
    }

    /// `header.payload` exactly as received: the bytes the signature covers. Never re-encoded,
    /// since any re-encoding could differ from what the issuer signed.
    public var signingInput: Substring.UTF8View {
        serialized.utf8[..<secondDot]
    }

    /// The base64url header segment, not decoded.
    public var encodedHeader: Substring.UTF8View {
        serialized.utf8[..<firstDot]
    }

    /// The base64url payload segment, not decoded.
    public var encodedPayload: Substring.UTF8View {
        let bytes = serialized.utf8
        return bytes[bytes.index(after: firstDot)..<secondDot]
    }

    /// The base64url signature segment, not decoded.
    public var encodedSignature: Substring.UTF8View {
        let bytes = serialized.utf8
        return bytes[bytes.index(after: secondDot)...]
    }
}

/// Why a string is not a JWS compact serialization. The description is fixed per case and
/// never quotes the token, so it is safe to log and to use as a metrics label.
public struct CompactTokenError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Code: Hashable, Sendable {
        case tooLong
        case wrongSegmentCount
        case emptySegment(CompactToken.Segment)
        case badBase64(CompactToken.Segment)
    }

    private let code: Code

    private init(_ code: Code) { self.code = code }

    public static let tooLong = CompactTokenError(.tooLong)
    /// Not exactly two dots; a JWE (five segments) lands here too.
    public static let wrongSegmentCount = CompactTokenError(.wrongSegmentCount)
    public static func emptySegment(_ segment: CompactToken.Segment) -> CompactTokenError {
        CompactTokenError(.emptySegment(segment))
    }
    /// The segment is not unpadded base64url (see `Base64URL` for what that excludes).
    public static func badBase64(_ segment: CompactToken.Segment) -> CompactTokenError {
        CompactTokenError(.badBase64(segment))
    }

    public var description: String {
        switch code {
        case .tooLong:
            return "token is longer than allowed"
        case .wrongSegmentCount:
            return "token does not have exactly three segments"
        case .emptySegment(let segment):
            return "token \(segment.rawValue) segment is empty"
        case .badBase64(let segment):
            return "token \(segment.rawValue) segment is not base64url"
        }
    }
}
