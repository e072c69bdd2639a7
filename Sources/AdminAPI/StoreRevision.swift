/// A revision of the admin store's tree the way consensus stores name one: its number and the id
/// its commit drew. The number orders revisions; the id tells apart two revisions that carry one
/// number. Redis replicates asynchronously, so a failover can lose the last commits after nodes
/// have applied them; the next commit then takes a lost number again with other content, and only
/// the id shows that a node holding the lost revision is on another history than the store.
public struct StoreRevision: Hashable, Sendable, CustomStringConvertible {
    public var number: Int64
    public var id: String

    public init(number: Int64, id: String) {
        self.number = number
        self.id = id
    }

    /// The id of a revision written before revisions had ids (by an older gateway version): both
    /// the store and the nodes that read it say this, so they agree until the next commit draws
    /// a real one.
    public static let legacyID = "legacy"

    /// The id of a tree that is no revision of the store (the tree file's, served until the store
    /// answers): equal to no id the store holds.
    public static let noID = ""

    /// A fresh commit id: 64 random bits as 16 hex digits, drawn by the committing node. Two
    /// commits drawing the same id (about one in 2^64 for two commits on one number) is not a
    /// concern.
    public static func newID() -> String {
        var generator = SystemRandomNumberGenerator()
        let value: UInt64 = generator.next()
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    /// `number:id`, as announced on the change channel.
    public var description: String { "\(self.number):\(self.id)" }

    /// An announcement on the change channel: `number:id`, or a bare number (what a node of an
    /// older version announces; its id is then unknown). Nil when it is neither.
    static func announced(_ text: String) -> (number: Int64, id: String?)? {
        guard let colon = text.firstIndex(of: ":") else { return Int64(text).map { ($0, nil) } }
        guard let number = Int64(text[..<colon]) else { return nil }
        return (number, String(text[text.index(after: colon)...]))
    }
}
