/// Which values of a JSON document are masked: members named in `names` wherever they appear,
/// and the values JSON Pointers (RFC 6901) select, where a segment that is exactly `*` stands
/// for every element of an array or member of an object. Compiled once per configuration into
/// a small automaton, so masking a document reads every byte once and builds no tree.
public struct FieldMask: Sendable, Hashable {
    /// Member names masked at any depth (as decoded: `"sal\u0061ry"` is `salary`).
    public let names: Set<String>
    /// The names' UTF-8 bytes by their length, up to the longest: what the masker compares a
    /// member name's bytes with, without making a string of each.
    let namesByLength: [[[UInt8]]]
    /// The pointers' automaton: state 0 is the document's root. A value is masked when the
    /// state its location reaches is `masked`; the state of a member or element is the
    /// transition by its name (an element's is its index in decimal) or, failing that, `other`.
    let states: [State]
    /// Non-JSON responses may pass unmasked (never for a support session: the compiler never
    /// builds such a mask for one).
    public let passesNonJSON: Bool
    /// The pointers as written, for explain output and equality of the masks' sources.
    public let pointers: [String]

    struct State: Sendable, Hashable {
        var members: [String: Int] = [:] {
            didSet { self.memberBytes = self.members.sorted { $0.key < $1.key }.map { (Array($0.key.utf8), $0.value) } }
        }
        /// `members` as UTF-8 bytes: a state has a handful of members, and comparing a name's
        /// bytes with each costs less than making a string of every name to hash it.
        var memberBytes: [([UInt8], Int)] = []
        var other: Int?
        var masked = false

        static func == (lhs: State, rhs: State) -> Bool {
            lhs.members == rhs.members && lhs.other == rhs.other && lhs.masked == rhs.masked
        }

        func hash(into hasher: inout Hasher) {
            hasher.combine(self.members)
            hasher.combine(self.other)
            hasher.combine(self.masked)
        }

        /// The state a member (its name's raw bytes, without escapes) leads to.
        func next(member raw: UnsafeRawBufferPointer) -> Int? {
            for (name, target) in self.memberBytes where name.count == raw.count && name.withUnsafeBytes({ $0.elementsEqual(raw) }) {
                return target
            }
            return self.other
        }
    }

    /// The most automaton states a mask may have: pointers with many wildcards at different
    /// depths multiply them; no real set of rules comes near.
    public static let maxStates = 4096

    public enum PointerProblem: Error, Equatable, CustomStringConvertible {
        case notAPointer
        case wholeDocument
        case badEscape
        case tooManyStates

        public var description: String {
            switch self {
            case .notAPointer: "a JSON Pointer starts with '/'"
            case .wholeDocument: "'' names the whole document, not a field"
            case .badEscape: "'~' must be followed by 0 ('~') or 1 ('/')"
            case .tooManyStates: "the pointers are too many or too wild (more than \(FieldMask.maxStates) states)"
            }
        }
    }

    /// A pointer's segments: nil stands for `*`, any element or member.
    public static func segments(of pointer: String) throws(PointerProblem) -> [String?] {
        guard pointer.hasPrefix("/") else { throw pointer.isEmpty ? .wholeDocument : .notAPointer }
        var segments: [String?] = []
        for raw in pointer.utf8.dropFirst().split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false) {
            let text = String(decoding: raw, as: UTF8.self)
            if text == "*" {
                segments.append(nil)
                continue
            }
            var decoded = ""
            var iterator = text.unicodeScalars.makeIterator()
            while let scalar = iterator.next() {
                guard scalar == "~" else {
                    decoded.unicodeScalars.append(scalar)
                    continue
                }
                switch iterator.next() {
                case "0": decoded += "~"
                case "1": decoded += "/"
                default: throw .badEscape
                }
            }
            segments.append(decoded)
        }
        return segments
    }

    public static let none = FieldMask(names: [], states: [State()], passesNonJSON: true, pointers: [])

    private init(names: Set<String>, states: [State], passesNonJSON: Bool, pointers: [String]) {
        self.names = names
        var byLength = [[[UInt8]]](repeating: [], count: (names.map(\.utf8.count).max() ?? -1) + 1)
        for name in names.sorted() { byLength[name.utf8.count].append(Array(name.utf8)) }
        self.namesByLength = byLength
        self.states = states
        self.passesNonJSON = passesNonJSON
        self.pointers = pointers
    }

    /// - Parameters:
    ///   - names: member names masked at any depth.
    ///   - pointers: JSON Pointers, `*` a whole segment for every element or member.
    public init(names: some Sequence<String>, pointers: some Sequence<String>, passesNonJSON: Bool) throws(PointerProblem) {
        // A trie of the pointers, then its subset construction: one automaton state per set of
        // trie nodes a location can be in, so matching keeps one integer per nesting level.
        var trie = [TrieNode()]
        let sortedPointers = Array(Set(pointers)).sorted()
        for pointer in sortedPointers {
            let segments = try Self.segments(of: pointer)
            var node = 0
            for segment in segments {
                let next: Int
                if let name = segment {
                    if let existing = trie[node].members[name] {
                        next = existing
                    } else {
                        next = trie.count
                        trie.append(TrieNode())
                        trie[node].members[name] = next
                    }
                } else if let existing = trie[node].wildcard {
                    next = existing
                } else {
                    next = trie.count
                    trie.append(TrieNode())
                    trie[node].wildcard = next
                }
                node = next
            }
            trie[node].masked = true
        }

        var states: [State] = []
        var index: [[Int]: Int] = [:]
        var pending: [[Int]] = []
        func state(for nodes: [Int]) throws(PointerProblem) -> Int? {
            guard !nodes.isEmpty else { return nil }
            let key = Array(Set(nodes)).sorted()
            if let known = index[key] { return known }
            guard states.count < Self.maxStates else { throw .tooManyStates }
            index[key] = states.count
            states.append(State(masked: key.contains { trie[$0].masked }))
            pending.append(key)
            return states.count - 1
        }
        _ = try state(for: [0])
        while let nodes = pending.popLast() {
            let current = index[nodes]!
            let wildcards = nodes.compactMap { trie[$0].wildcard }
            var members: [String: Int] = [:]
            for name in Set(nodes.flatMap { trie[$0].members.keys }).sorted() {
                let targets = nodes.compactMap { trie[$0].members[name] } + wildcards
                members[name] = try state(for: targets)
            }
            let other = try state(for: wildcards)
            states[current].members = members
            states[current].other = other
        }
        self.init(names: Set(names), states: states, passesNonJSON: passesNonJSON, pointers: sortedPointers)
    }

    public var isEmpty: Bool { self.names.isEmpty && self.states.count == 1 && !self.states[0].masked }
}

/// A node of the pointers' trie, before the subset construction turns it into automaton states.
private struct TrieNode {
    var members: [String: Int] = [:]
    var wildcard: Int?
    var masked = false
}
