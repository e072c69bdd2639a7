#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Tokens already verified, so that a hot token costs a hash and a comparison instead of a
/// signature check.
///
/// One per event loop, owned by it: a plain value with no locks, not shared across threads.
///
/// - Keyed by the exact token bytes: entries are found by a seeded hash of the token's length
///   and last bytes (`hash`) and the whole token is compared on every hit, so two tokens that
///   hash alike never share an answer.
///   (Not by `String` equality, which is Unicode-canonical: "K" equals the Kelvin sign.)
/// - Bounded: when full, the oldest-inserted entry is evicted (a ring); eviction costs O(1).
/// - An entry is never returned at or after its token's `exp` (no clock skew is granted here;
///   a token in its skew window is simply verified again).
/// - Revocation and tenant removal scan the ring (O(capacity)); they are rare, lookups are not.
///
/// The cache does not check revocation on a hit: callers remove revoked `jti`s as they learn
/// of them and check their revocation set as for any verified token.
public struct VerifiedTokenCache {
    public let capacity: Int

    /// An object: a hit reads the slot's entry, and a value there was copied out of the ring
    /// whole (its verified token's every field retained and released) on every request.
    /// Immutable, so copies of the cache never share a change.
    private final class Entry {
        let token: String
        let hash: Int
        let verified: VerifiedToken

        init(token: String, hash: Int, verified: VerifiedToken) {
            self.token = token
            self.hash = hash
            self.verified = verified
        }
    }

    /// Insertion order: `nextSlot` is the oldest (or an empty) slot, overwritten next.
    private var ring: [Entry?]
    private var nextSlot = 0
    /// Token hash → ring slot.
    private var slotByHash: [Int: Int] = [:]

    public init(capacity: Int) {
        precondition(capacity > 0, "a cache needs room for one token")
        self.capacity = capacity
        self.ring = Array(repeating: nil, count: capacity)
        self.slotByHash.reserveCapacity(capacity)
    }

    /// Number of entries held, expired ones not yet dropped included.
    public var count: Int { slotByHash.count }

    /// The verified claims of exactly `token`, if cached and not expired at `now`. An expired
    /// entry is dropped.
    public mutating func lookup(_ token: Substring, now: Int64) -> VerifiedToken? {
        let hash = Self.hash(token)
        guard let slot = slotByHash[hash], let entry = ring[slot], Self.sameBytes(entry.token, token) else {
            return nil
        }
        guard now < entry.verified.expiresAt else {
            clear(slot: slot)
            return nil
        }
        return entry.verified
    }

    /// Caches `verified` for `token`, evicting the oldest entry when full. Tokens already
    /// expired at `now` are not cached.
    public mutating func insert(_ token: Substring, _ verified: VerifiedToken, now: Int64) {
        guard now < verified.expiresAt else { return }
        let hash = Self.hash(token)
        if let slot = slotByHash[hash] {
            if let entry = ring[slot], Self.sameBytes(entry.token, token) {
                ring[slot] = Entry(token: entry.token, hash: hash, verified: verified)
                return
            }
            // Another token with the same hash: it gives way, the cache keeps one per hash.
            clear(slot: slot)
        }
        if let evicted = ring[nextSlot] {
            slotByHash[evicted.hash] = nil
        }
        ring[nextSlot] = Entry(token: String(token), hash: hash, verified: verified)
        slotByHash[hash] = nextSlot
        nextSlot = nextSlot + 1 == capacity ? 0 : nextSlot + 1
    }

    /// Drops every entry whose `jti` is `jwtID` (a revocation). Returns how many.
    @discardableResult
    public mutating func remove(jwtID: String) -> Int {
        removeAll { $0.jwtID == jwtID }
    }

    /// Drops every entry for `tenant` (the tenant was suspended, deleted or moved).
    /// Returns how many.
    @discardableResult
    public mutating func removeAll(tenant: String) -> Int {
        removeAll { $0.tenant == tenant }
    }

    /// Drops everything, e.g. when the issuer configuration changes.
    public mutating func removeAll() {
        ring = Array(repeating: nil, count: capacity)
        slotByHash.removeAll(keepingCapacity: true)
        nextSlot = 0
    }

    private mutating func removeAll(where shouldRemove: (VerifiedToken) -> Bool) -> Int {
        var removed = 0
        for slot in ring.indices {
            if let entry = ring[slot], shouldRemove(entry.verified) {
                clear(slot: slot)
                removed += 1
            }
        }
        return removed
    }

    /// Empties a slot; the ring order is unchanged, the slot is reused when its turn comes.
    private mutating func clear(slot: Int) {
        guard let entry = ring[slot] else { return }
        slotByHash[entry.hash] = nil
        ring[slot] = nil
    }

    /// The bytes hashed: a token's last ones.
    static let hashedBytes = 32

    /// SipHash, with the process's random seed so that collisions cannot be aimed at, of the
    /// token's length and its last `hashedBytes` bytes. A compact JWS ends with its signature,
    /// so two valid tokens that end alike are in practice the same token; and entries are told
    /// apart by all their bytes anyway (`sameBytes`), so tokens that did would only share a slot
    /// (only a verified token is ever inserted). The whole token (hundreds of bytes) hashed on
    /// every lookup was 0.7 % of a full-pipeline request's samples, its last bytes are 0.2 %
    /// (`PERF_CALLGRAPH="--call-graph dwarf,16384" bench/profile.sh full`).
    static func hash(_ token: Substring) -> Int {
        var hasher = Hasher()
        var token = token
        token.withUTF8 { bytes in
            hasher.combine(bytes: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes.suffix(Self.hashedBytes))))
            hasher.combine(bytes.count)
        }
        return hasher.finalize()
    }

    private static func sameBytes(_ cached: String, _ token: Substring) -> Bool {
        var cached = cached
        return cached.withUTF8 { cached in
            let utf8 = token.utf8
            guard cached.count == utf8.count else { return false }
            guard cached.count > 0 else { return true }
            if let equal = utf8.withContiguousStorageIfAvailable({
                memcmp(cached.baseAddress!, $0.baseAddress!, cached.count) == 0
            }) {
                return equal
            }
            return cached.elementsEqual(utf8)
        }
    }
}
