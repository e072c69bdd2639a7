import Yams

/// Walks a composed YAML document and reads typed values out of it, collecting every problem
/// with its key path and position instead of stopping at the first. Unknown keys are reported so a
/// misspelt setting never silently falls back to its default.
struct YAMLReader {
    private(set) var issues: [ConfigurationIssue] = []

    /// A position in the document: the node and the key path that led to it.
    struct Cursor {
        var node: Node
        var path: String

        func child(_ key: String) -> String { self.path.isEmpty ? key : "\(self.path).\(key)" }
        func element(_ index: Int) -> String { "\(self.path)[\(index)]" }
    }

    mutating func report(_ cursor: Cursor, _ message: String) {
        self.report(path: cursor.path, node: cursor.node, message)
    }

    mutating func report(path: String, node: Node?, _ message: String) {
        let mark = node?.mark
        self.issues.append(ConfigurationIssue(path: path, line: mark?.line, column: mark?.column, message: message))
    }

    /// The members of a mapping by key; reports unknown keys and non-mapping values.
    mutating func mapping(_ cursor: Cursor, allowedKeys: Set<String>) -> [String: Cursor]? {
        guard case .mapping(let mapping) = cursor.node else {
            self.report(cursor, "expected a mapping of keys to values")
            return nil
        }
        var members: [String: Cursor] = [:]
        for (keyNode, valueNode) in mapping {
            guard let key = keyNode.string else {
                self.report(path: cursor.path, node: keyNode, "keys must be strings")
                continue
            }
            let path = cursor.child(key)
            guard allowedKeys.contains(key) else {
                let known = allowedKeys.sorted().joined(separator: ", ")
                self.report(path: path, node: keyNode, "unknown key '\(key)' (known here: \(known))")
                continue
            }
            if members[key] != nil {
                self.report(path: path, node: keyNode, "key '\(key)' appears twice")
                continue
            }
            members[key] = Cursor(node: valueNode, path: path)
        }
        return members
    }

    mutating func sequence(_ cursor: Cursor) -> [Cursor]? {
        guard case .sequence(let sequence) = cursor.node else {
            self.report(cursor, "expected a list")
            return nil
        }
        return sequence.enumerated().map { Cursor(node: $0.element, path: cursor.element($0.offset)) }
    }

    mutating func string(_ cursor: Cursor) -> String? {
        guard case .scalar(let scalar) = cursor.node else {
            self.report(cursor, "expected a single value")
            return nil
        }
        return scalar.string
    }

    mutating func integer(_ cursor: Cursor, in range: ClosedRange<Int>) -> Int? {
        guard let text = self.string(cursor) else { return nil }
        guard let value = Int(text) else {
            self.report(cursor, "expected a whole number, got '\(text)'")
            return nil
        }
        guard range.contains(value) else {
            self.report(cursor, "must be between \(range.lowerBound) and \(range.upperBound), got \(value)")
            return nil
        }
        return value
    }

    mutating func bool(_ cursor: Cursor) -> Bool? {
        guard let text = self.string(cursor) else { return nil }
        switch text {
        case "true": return true
        case "false": return false
        default:
            self.report(cursor, "expected true or false, got '\(text)'")
            return nil
        }
    }

    mutating func duration(_ cursor: Cursor, in range: ClosedRange<Duration>) -> Duration? {
        guard let text = self.string(cursor) else { return nil }
        guard let value = Quantities.duration(text) else {
            self.report(cursor, "expected a duration such as 250ms, 10s, 2m or 1h, got '\(text)'")
            return nil
        }
        guard range.contains(value) else {
            self.report(cursor, "must be between \(Self.format(range.lowerBound)) and \(Self.format(range.upperBound)), got \(text)")
            return nil
        }
        return value
    }

    mutating func byteSize(_ cursor: Cursor, in range: ClosedRange<Int>) -> Int? {
        guard let text = self.string(cursor) else { return nil }
        guard let value = Quantities.byteSize(text) else {
            self.report(cursor, "expected a size in bytes such as 8192, 16KiB, 10MiB or 1GiB, got '\(text)'")
            return nil
        }
        guard range.contains(value) else {
            self.report(cursor, "must be between \(range.lowerBound) and \(range.upperBound) bytes, got \(text)")
            return nil
        }
        return value
    }

    private static func format(_ duration: Duration) -> String {
        let ms = duration.milliseconds
        return ms % 1000 == 0 ? "\(ms / 1000)s" : "\(ms)ms"
    }
}
