/// `authentication.keyFetch.allowedHosts`: the identity providers' hosts the gateway may fetch
/// keys from. Without the list any HTTPS host is fetched, which lets an OEM admin (or a partner
/// admin with self-service) make the gateway request a URL of their choosing; with it, an
/// issuer naming another host is refused before anything is requested.
///
/// Each entry is a host name (`id.acme.example`, matched exactly) or a wildcard over the
/// names below one domain (`*.okta.com` matches `acme.okta.com` and `a.b.okta.com`, not
/// `okta.com`). Matching ignores case and one trailing dot.
public struct ProviderHosts: Sendable, Hashable {
    public let entries: [String]
    private let exact: Set<String>
    /// The suffixes of the wildcards, each with its leading dot (`.okta.com`).
    private let suffixes: [String]

    /// Why an entry is not a host pattern.
    public enum EntryError: Error, Hashable {
        case empty
        case misplacedWildcard
        case notAHostName
    }

    public init(_ entries: [String]) throws(EntryError) {
        var exact: Set<String> = []
        var suffixes: [String] = []
        for entry in entries {
            let name = Self.normalized(entry)
            guard !name.isEmpty else { throw .empty }
            if name.hasPrefix("*.") {
                let domain = String(name.dropFirst(2))
                guard !domain.contains("*") else { throw .misplacedWildcard }
                guard Self.isHostName(domain) else { throw .notAHostName }
                suffixes.append("." + domain)
            } else {
                guard !name.contains("*") else { throw .misplacedWildcard }
                guard Self.isHostName(name) else { throw .notAHostName }
                exact.insert(name)
            }
        }
        self.entries = entries
        self.exact = exact
        self.suffixes = suffixes
    }

    public func allows(host: String) -> Bool {
        let name = Self.normalized(host)
        if self.exact.contains(name) { return true }
        return self.suffixes.contains { name.hasSuffix($0) && name.count > $0.count }
    }

    private static func normalized(_ host: String) -> String {
        let lower = host.lowercased()
        return lower.hasSuffix(".") ? String(lower.dropLast()) : lower
    }

    /// Letters, digits, `-` and `.` between non-empty labels, or an IPv4 address — what a URL's
    /// host is after parsing (an IPv6 literal is named without its brackets).
    private static func isHostName(_ name: String) -> Bool {
        if name.contains(":") { return name.allSatisfy { $0.isHexDigit || $0 == ":" } }
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        return labels.allSatisfy { label in
            !label.isEmpty && label.allSatisfy { ($0.isASCII && ($0.isLetter || $0.isNumber)) || $0 == "-" }
        }
    }

    public static func == (lhs: ProviderHosts, rhs: ProviderHosts) -> Bool { lhs.entries == rhs.entries }
    public func hash(into hasher: inout Hasher) { hasher.combine(self.entries) }
}
