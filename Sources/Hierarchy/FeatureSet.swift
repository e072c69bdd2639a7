/// A set of catalog features as a bitset over the catalog's feature index. Intersections down
/// the tree and the per-request "does this tenant have feature X" check are then a few word
/// operations, and 100,000 customers' feature sets take a few machine words each.
public struct FeatureSet: Sendable, Hashable {
    private var words: [UInt64]

    public init() {
        self.words = []
    }

    init(indices: some Sequence<Int>) {
        self.words = []
        for index in indices { self.insert(index) }
    }

    public var isEmpty: Bool { self.words.allSatisfy { $0 == 0 } }

    mutating func insert(_ index: Int) {
        let word = index / 64
        if word >= self.words.count { self.words.append(contentsOf: repeatElement(0, count: word - self.words.count + 1)) }
        self.words[word] |= 1 << UInt64(index % 64)
    }

    public func contains(_ index: Int) -> Bool {
        let word = index / 64
        return word < self.words.count && self.words[word] & (1 << UInt64(index % 64)) != 0
    }

    public func intersection(_ other: FeatureSet) -> FeatureSet {
        var result = FeatureSet()
        let count = min(self.words.count, other.words.count)
        result.words = (0..<count).map { self.words[$0] & other.words[$0] }
        return result
    }

    public func union(_ other: FeatureSet) -> FeatureSet {
        var result = FeatureSet()
        let count = max(self.words.count, other.words.count)
        result.words = (0..<count).map { (($0 < self.words.count) ? self.words[$0] : 0) | (($0 < other.words.count) ? other.words[$0] : 0) }
        return result
    }

    public func subtracting(_ other: FeatureSet) -> FeatureSet {
        var result = self
        for index in 0..<min(self.words.count, other.words.count) { result.words[index] &= ~other.words[index] }
        return result
    }

    /// Word by word, without building the difference: checked for every node of a tree.
    public func isSubset(of other: FeatureSet) -> Bool {
        for (index, word) in self.words.enumerated() where word & ~(index < other.words.count ? other.words[index] : 0) != 0 {
            return false
        }
        return true
    }

    /// Whether `body` holds for every index in both `self` and `other`; stops at the first that
    /// fails. Allocation-free, unlike `intersection(_:).indices`.
    func allCommonMembers(with other: FeatureSet, _ body: (Int) -> Bool) -> Bool {
        for wordIndex in 0..<min(self.words.count, other.words.count) {
            var word = self.words[wordIndex] & other.words[wordIndex]
            while word != 0 {
                let bit = word.trailingZeroBitCount
                if !body(wordIndex * 64 + bit) { return false }
                word &= word - 1
            }
        }
        return true
    }

    /// The indices in the set, ascending.
    public var indices: [Int] {
        var result: [Int] = []
        for (wordIndex, word) in self.words.enumerated() where word != 0 {
            for bit in 0..<64 where word & (1 << UInt64(bit)) != 0 { result.append(wordIndex * 64 + bit) }
        }
        return result
    }

    public static func == (lhs: FeatureSet, rhs: FeatureSet) -> Bool {
        let count = max(lhs.words.count, rhs.words.count)
        for index in 0..<count {
            let left = index < lhs.words.count ? lhs.words[index] : 0
            let right = index < rhs.words.count ? rhs.words[index] : 0
            if left != right { return false }
        }
        return true
    }

    public func hash(into hasher: inout Hasher) {
        var trimmed = self.words
        while trimmed.last == 0 { trimmed.removeLast() }
        hasher.combine(trimmed)
    }
}
