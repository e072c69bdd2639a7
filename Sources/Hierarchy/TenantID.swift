/// The identifier of one node of the tenant tree: an OEM, a partner or a customer.
///
/// Syntax: 1–63 characters of lowercase ASCII letters, digits and `-`; starts with a letter,
/// does not end with `-` and never contains `--`. That is a DNS label minus uppercase and
/// minus a leading digit, so an id can appear unchanged in a hostname, a Redis key, a header
/// value, a log line and a YAML key without quoting or escaping. `--` is reserved, as DNS
/// reserves it for `xn--`, so that names derived from ids by joining them with `--` can never
/// collide with a real id.
///
/// Ids are compared and ordered by their bytes, which for this alphabet is also the order
/// `sort` in a shell gives, so listings are stable across tools.
public struct NodeID: Hashable, Sendable, Comparable, CustomStringConvertible, RawRepresentable {
    /// The longest id accepted, in characters (= UTF-8 bytes, since every valid id is ASCII).
    public static let maxLength = 63

    public let rawValue: String

    /// Validates `text` as `init(_: some StringProtocol)` does. The data plane builds an id
    /// from a token's tenant claim on every request; through the generic initializer, across
    /// the module boundary, that walk was unspecialized (about 1 % of the full pipeline's
    /// samples in `bench/profile.sh full`), so a valid `String` is checked over its contiguous
    /// bytes here and only an invalid one takes the generic path for its message.
    public init(_ text: String) throws(NodeIDError) {
        let length = text.utf8.count
        if length > 0, length <= Self.maxLength, text.utf8.withContiguousStorageIfAvailable({ Self.isValidASCII($0) }) == true {
            self = NodeID(validated: text)
            return
        }
        try self.init(Substring(text))
    }

    /// Validates `text` and reports the first problem in reading order.
    public init(_ text: some StringProtocol) throws(NodeIDError) {
        // Checked on the byte count first so an oversized input (a tenant claim is attacker
        // controlled) costs O(1) to refuse instead of a walk over its characters.
        let length = text.utf8.count
        if length == 0 { throw .empty }
        if length > Self.maxLength { throw .tooLong(length: length) }

        // Fast path over bytes: every valid id is ASCII, and ids are validated by the hundred
        // thousand when a tree compiles. Only an invalid id pays for the Character walk below,
        // which finds the offending character and its offset for the message.
        if Self.isValidASCII(text.utf8) {
            self.rawValue = String(text)
            return
        }
        var previousWasHyphen = false
        for (offset, character) in text.enumerated() {
            let kind = Self.classify(character)
            switch kind {
            case .invalid:
                throw .invalidCharacter(character, offset: offset)
            case .hyphen where offset == 0, .digit where offset == 0:
                throw .mustStartWithLetter
            case .hyphen where previousWasHyphen:
                throw .doubleHyphen
            case .letter, .digit, .hyphen:
                break
            }
            previousWasHyphen = kind == .hyphen
        }
        if previousWasHyphen { throw .trailingHyphen }
        self.rawValue = String(text)
    }

    private init(validated: String) {
        self.rawValue = validated
    }

    public init?(rawValue: String) {
        guard let id = try? NodeID(rawValue) else { return nil }
        self = id
    }

    public var description: String { rawValue }

    public static func < (lhs: NodeID, rhs: NodeID) -> Bool {
        // Byte order, not String's Unicode ordering: equal for ASCII, but stated so that
        // nobody has to reason about normalization to know how ids sort.
        lhs.rawValue.utf8.lexicographicallyPrecedes(rhs.rawValue.utf8)
    }

    private enum CharacterClass { case letter, digit, hyphen, invalid }

    private static func isValidASCII(_ bytes: some Collection<UInt8>) -> Bool {
        var previous: UInt8 = 0
        for (offset, byte) in bytes.enumerated() {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"): break
            case UInt8(ascii: "0")...UInt8(ascii: "9"): if offset == 0 { return false }
            case UInt8(ascii: "-"): if offset == 0 || previous == UInt8(ascii: "-") { return false }
            default: return false
            }
            previous = byte
        }
        return previous != UInt8(ascii: "-")
    }

    private static func classify(_ character: Character) -> CharacterClass {
        // `asciiValue` maps "\r\n" to 0x0A; that is rejected as invalid either way.
        guard let byte = character.asciiValue else { return .invalid }
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"): return .letter
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return .digit
        case UInt8(ascii: "-"): return .hyphen
        default: return .invalid
        }
    }
}

/// Why a string is not a valid `NodeID`.
///
/// The description is meant for the administrator who wrote the id (configuration
/// validation lists it by node path and field). It quotes at most one character of the
/// input and some numbers, never the input itself, so it stays short and safe to log even
/// when the input came from a token.
public struct NodeIDError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Code: Hashable, Sendable {
        case empty
        case tooLong(length: Int)
        case invalidCharacter(Character, offset: Int)
        case mustStartWithLetter
        case trailingHyphen
        case doubleHyphen
    }

    private let code: Code

    private init(_ code: Code) { self.code = code }

    public static let empty = NodeIDError(.empty)
    /// `length` is in UTF-8 bytes.
    public static func tooLong(length: Int) -> NodeIDError { NodeIDError(.tooLong(length: length)) }
    /// `offset` counts characters from the start, starting at 0.
    public static func invalidCharacter(_ character: Character, offset: Int) -> NodeIDError {
        NodeIDError(.invalidCharacter(character, offset: offset))
    }
    public static let mustStartWithLetter = NodeIDError(.mustStartWithLetter)
    public static let trailingHyphen = NodeIDError(.trailingHyphen)
    public static let doubleHyphen = NodeIDError(.doubleHyphen)

    public var description: String {
        switch code {
        case .empty:
            return "node id is empty"
        case .tooLong(let length):
            return "node id is \(length) bytes long; at most \(NodeID.maxLength) are allowed"
        case .invalidCharacter(let character, let offset):
            // Escaped so that a control character or a quote cannot break the log line.
            let shown = character.unicodeScalars.map { $0.escaped(asASCII: true) }.joined()
            return "node id has the character '\(shown)' at offset \(offset); only a-z, 0-9 and '-' are allowed"
        case .mustStartWithLetter:
            return "node id must start with a lowercase letter"
        case .trailingHyphen:
            return "node id must not end with '-'"
        case .doubleHyphen:
            return "node id must not contain '--'"
        }
    }
}
