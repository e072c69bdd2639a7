import Foundation
import JSONText

/// A JSON document as a value: what admin requests carry and responses return. Rendering is
/// canonical (object members sorted by key, no whitespace), so the same value always gives the
/// same bytes on every node — which is what makes ETags computed from it agree everywhere.
public enum JSONValue: Sendable, Hashable, Decodable {
    case null
    case bool(Bool)
    case integer(Int64)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    /// Parses a request body; nil when it is not JSON.
    public static func parse(_ bytes: [UInt8]) -> JSONValue? {
        try? JSONDecoder().decode(JSONValue.self, from: Data(bytes))
    }

    public var text: String {
        switch self {
        case .null: return "null"
        case .bool(let value): return value ? "true" : "false"
        case .integer(let value): return String(value)
        case .number(let value): return value.isFinite ? "\(value)" : "null"
        case .string(let value): return JSONText.quote(value)
        case .array(let values): return "[" + values.map(\.text).joined(separator: ",") + "]"
        case .object(let members):
            let sorted = members.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
            return "{" + sorted.map { JSONText.quote($0.key) + ":" + $0.value.text }.joined(separator: ",") + "}"
        }
    }

    /// A strong validator of this value: FNV-1a (64 bits) over the canonical text, quoted — the
    /// same on every node, since the text is.
    public var etag: String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in self.text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        let hex = String(hash, radix: 16)
        return "\"" + String(repeating: "0", count: 16 - hex.count) + hex + "\""
    }

    public subscript(key: String) -> JSONValue? {
        if case .object(let members) = self { return members[key] }
        return nil
    }

    public var string: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    public var object: [String: JSONValue]? {
        if case .object(let members) = self { return members }
        return nil
    }

    public var array: [JSONValue]? {
        if case .array(let values) = self { return values }
        return nil
    }

    /// RFC 7396 JSON Merge Patch: members of `patch` replace this value's, `null` removes one,
    /// objects merge recursively, anything else replaces the whole value.
    public func merging(_ patch: JSONValue) -> JSONValue {
        guard case .object(let changes) = patch else { return patch }
        var members = self.object ?? [:]
        for (key, change) in changes {
            if change == .null {
                members[key] = nil
            } else {
                members[key] = (members[key] ?? .null).merging(change)
            }
        }
        return .object(members)
    }

    public static func strings(_ values: [String]) -> JSONValue { .array(values.map(JSONValue.string)) }
}
