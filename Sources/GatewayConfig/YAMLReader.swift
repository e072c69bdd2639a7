import Foundation
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
        /// The mapping key this value was written under; nil for the root and for list items.
        var key: Node? = nil

        /// Where the value was written: its key when it has one (a block list or mapping starts
        /// on the line after its key), else the value itself.
        var mark: Mark? { self.key?.mark ?? self.node.mark }

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
        guard let entries = self.entries(cursor) else { return nil }
        var members: [String: Cursor] = [:]
        for (key, member) in entries {
            guard allowedKeys.contains(key) else {
                let known = allowedKeys.sorted().joined(separator: ", ")
                self.report(path: member.path, node: member.key, "unknown key '\(key)' (known here: \(known))")
                continue
            }
            members[key] = member
        }
        return members
    }

    /// The members of a mapping whose keys are names chosen by the author (package names), in
    /// document order; reports non-string and repeated keys and non-mapping values.
    mutating func entries(_ cursor: Cursor) -> [(key: String, cursor: Cursor)]? {
        guard case .mapping(let mapping) = cursor.node else {
            self.report(cursor, "expected a mapping of keys to values")
            return nil
        }
        var entries: [(key: String, cursor: Cursor)] = []
        var seen: Set<String> = []
        for (keyNode, valueNode) in mapping {
            guard let key = keyNode.string else {
                self.report(path: cursor.path, node: keyNode, "keys must be strings")
                continue
            }
            let path = cursor.child(key)
            guard seen.insert(key).inserted else {
                self.report(path: path, node: keyNode, "key '\(key)' appears twice")
                continue
            }
            entries.append((key, Cursor(node: valueNode, path: path, key: keyNode)))
        }
        return entries
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

    /// A single value that is present: `key:` with nothing after it, `~` and `null` are reported
    /// rather than read as an empty string.
    mutating func presentString(_ cursor: Cursor) -> String? {
        guard let text = self.string(cursor) else { return nil }
        // Only plain scalars: a quoted '' or 'null' is a value as written.
        if cursor.node.null != nil {
            // The usual cause: an unquoted `#` starts a comment, so `color: #1a2b3c` is empty.
            self.report(cursor, "expected a value, found none (quote values that start with '#')")
            return nil
        }
        return text
    }

    /// A list of single values, in document order; each bad item is reported at its index.
    mutating func stringList(_ cursor: Cursor) -> [String]? {
        guard let items = self.sequence(cursor) else { return nil }
        return items.compactMap { self.presentString($0) }
    }

    /// One of a fixed set of names, such as a kind or a status. `options` lists every case
    /// (not every enum read this way is `CaseIterable`) and is quoted in the report.
    mutating func choice<Choice: RawRepresentable>(_ cursor: Cursor, among options: [Choice]) -> Choice? where Choice.RawValue == String {
        guard let text = self.presentString(cursor) else { return nil }
        guard let value = options.first(where: { $0.rawValue == text }) else {
            let names = options.map { "'\($0.rawValue)'" }.joined(separator: ", ")
            self.report(cursor, "must be one of \(names), got '\(text)'")
            return nil
        }
        return value
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

    // MARK: - Documents

    /// The text of a configuration file, or an error naming the file.
    static func readFile(path: String) throws(ConfigurationError) -> String {
        do {
            return try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigurationError(source: path, issues: [ConfigurationIssue(path: "", message: "cannot read the file: \(error.localizedDescription)")])
        }
    }

    /// Reads a whole document with `read`, which reports every problem into the reader; the
    /// document is rejected, with all of them, when there is any.
    static func readDocument<Value>(
        _ text: String, source: String, _ read: (Cursor, inout YAMLReader) -> Value?
    ) throws(ConfigurationError) -> Value {
        let root = try Self.compose(text, source: source)
        var reader = YAMLReader()
        let value = read(Cursor(node: root, path: ""), &reader)
        guard reader.issues.isEmpty, let value else {
            throw ConfigurationError(source: source, issues: reader.issues)
        }
        return value
    }

    /// The root node of a one-document YAML text; syntax errors are reported with their position.
    private static func compose(_ text: String, source: String) throws(ConfigurationError) -> Node {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw ConfigurationError(source: source, issues: [Self.issue(from: error)])
        } catch {
            throw ConfigurationError(source: source, issues: [ConfigurationIssue(path: "", message: "not valid YAML: \(error)")])
        }
        guard let root else {
            throw ConfigurationError(source: source, issues: [ConfigurationIssue(path: "", message: "the document is empty")])
        }
        return root
    }

    /// How deep a document may nest: the parser's own limit (libyaml's default, which Yams keeps).
    /// No configuration comes near it; a document that does is refused with this number.
    static let maxNesting = 1000

    /// A parser error in our words: what was found and where, never how the parser works. The
    /// parser describes most problems in YAML's terms ("did not find expected key"), which are
    /// kept; what it says about its own internals is not.
    private static func issue(from error: YamlError) -> ConfigurationIssue {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
            // libyaml's nesting limit is the one problem it words as a note to its programmer.
            let message = problem.hasPrefix("Maximum nesting level") ? "the document nests deeper than \(Self.maxNesting) levels" : problem
            return ConfigurationIssue(path: "", line: mark.line, column: mark.column, message: "not valid YAML: \(message)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            let keys = duplicates.map { "'\($0)'" }.joined(separator: ", ")
            return ConfigurationIssue(path: "", line: context.mark.line, column: context.mark.column, message: "key \(keys) appears twice in one mapping")
        case .reader(let problem, let offset, _, _):
            // Encoding problems: "invalid leading UTF-8 octet", "control characters are not allowed".
            let at = offset.map { " (at byte \($0))" } ?? ""
            return ConfigurationIssue(path: "", message: "not valid YAML: \(problem)\(at)")
        default:
            // Other Yams errors describe the library's state and embed the whole document.
            return ConfigurationIssue(path: "", message: "not valid YAML")
        }
    }
}
