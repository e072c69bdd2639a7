/// The keys fetched from one issuer's identity provider, parsed once, immutable.
///
/// The fetcher builds one after each successful fetch and publishes it to every event loop
/// inside a `FetchedKeySets`; the request path only reads it. `usableUntil` bounds how long the
/// set is trusted without a successful refresh: past it, the issuer's tokens are refused with
/// `TokenRejection.keysUnavailable` instead of being checked with keys the provider may have
/// withdrawn.
public final class IssuerKeySet: Sendable {
    /// Every usable key; a `kid` may appear once per algorithm (a JWK without `alg` under
    /// several pinned algorithms).
    public let keys: [VerificationKey]
    /// Unix seconds; from then on the set is no longer used.
    public let usableUntil: Int64
    private let keysByID: [String: [VerificationKey]]

    public init(keys: [VerificationKey], usableUntil: Int64) {
        var byID: [String: [VerificationKey]] = [:]
        var kept: [VerificationKey] = []
        for key in keys where !(byID[key.kid]?.contains { $0.algorithm == key.algorithm } ?? false) {
            byID[key.kid, default: []].append(key)
            kept.append(key)
        }
        self.keys = kept
        self.keysByID = byID
        self.usableUntil = usableUntil
    }

    /// The same keys, trusted until `usableUntil` (a refresh that found the same keys).
    public func extended(until usableUntil: Int64) -> IssuerKeySet {
        IssuerKeySet(keys: self.keys, usableUntil: usableUntil)
    }

    /// The key a token's `kid` and header `alg` select: nil when the `kid` is unknown,
    /// `.some(nil)` when the `kid` is known but not for that algorithm.
    func key(id: String, headerAlgorithm: String) -> VerificationKey?? {
        guard let candidates = self.keysByID[id] else { return nil }
        return .some(candidates.first { $0.algorithm.rawValue == headerAlgorithm })
    }

    /// The `(kid, alg)` pairs, for comparing two sets and for messages.
    public var keyIDs: Set<String> { Set(keysByID.keys) }
}

/// Every fetched issuer's key set, by `iss`: one immutable value published whole.
public struct FetchedKeySets: Sendable {
    public let byIssuer: [String: IssuerKeySet]

    public init(_ byIssuer: [String: IssuerKeySet] = [:]) {
        self.byIssuer = byIssuer
    }

    public static let none = FetchedKeySets()
}
