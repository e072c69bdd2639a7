/// Which certificate answers which server name (SNI): a pure value, built once per snapshot and
/// read on every handshake.
///
/// The rule, in order:
/// 1. a certificate naming the server name exactly;
/// 2. a certificate naming the one-label wildcard of it (`*.example.com` covers
///    `erp.example.com`, neither `example.com` nor `a.b.example.com`);
/// 3. the default certificate (also for a client that sends no name).
///
/// Several certificates may claim one name. Exact names are claimed first by the files' (the
/// default first, then `certificates` in order), then by uploaded ones; wildcards likewise. So a
/// file's exact name wins over an upload for the same name, an upload's exact name wins over a
/// file's wildcard (a partner's own portal domain under an operator's wildcard), and a file's
/// wildcard wins over an uploaded wildcard. Among claims of one kind the first wins.
public struct ServerNameTable<Value> {
    public struct Claimant {
        public var names: [String]
        public var value: Value

        public init(names: [String], value: Value) {
            self.names = names
            self.value = value
        }
    }

    private var exact: [String: Value] = [:]
    /// Keyed by what follows `*.`: `*.example.com` is stored under `example.com`.
    private var wildcards: [String: Value] = [:]
    public let fallback: Value

    /// `files` are the configured certificates in their order (the default's names among them,
    /// first); `uploaded` those uploaded through the admin API.
    public init(fallback: Value, files: [Claimant], uploaded: [Claimant] = []) {
        self.fallback = fallback
        let ordered = files + uploaded
        for claimant in ordered {
            for name in claimant.names {
                guard let name = Self.normalized(name), !name.contains("*") else { continue }
                if self.exact[name] == nil { self.exact[name] = claimant.value }
            }
        }
        for claimant in ordered {
            for name in claimant.names {
                guard let name = Self.normalized(name), name.hasPrefix("*."), let suffix = Self.wildcardSuffix(name) else { continue }
                if self.wildcards[suffix] == nil { self.wildcards[suffix] = claimant.value }
            }
        }
    }

    /// The value for the name a client sent in its hello; the fallback without one.
    public func lookup(_ serverName: String?) -> Value {
        guard let serverName, let name = Self.normalized(serverName) else { return self.fallback }
        if let value = self.exact[name] { return value }
        if let dot = name.firstIndex(of: "."), dot != name.startIndex, let value = self.wildcards[String(name[name.index(after: dot)...])] {
            return value
        }
        return self.fallback
    }

    /// The names this table answers for besides the fallback, exact and wildcard (`*.` kept).
    public var names: Set<String> { Set(self.exact.keys).union(self.wildcards.keys.map { "*.\($0)" }) }

    /// Lowercase, one trailing dot removed (`Erp.Example.COM.` is `erp.example.com`); nil for
    /// an empty name or one with characters a DNS name does not have.
    public static func normalized(_ name: String) -> String? {
        var text = name.lowercased()
        if text.hasSuffix(".") { text.removeLast() }
        guard !text.isEmpty, text.utf8.count <= 253,
            text.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D || $0 == 0x2E || $0 == 0x2A || $0 == 0x5F })
        else { return nil }
        return text
    }

    /// What a wildcard covers: `*.example.com` → `example.com`. Nil for anything but a whole
    /// first label of `*` over at least two labels (`*.com`, `f*.example.com` and
    /// `*.*.example.com` cover nothing).
    static func wildcardSuffix(_ name: String) -> String? {
        guard name.hasPrefix("*.") else { return nil }
        let suffix = name.dropFirst(2)
        guard suffix.contains("."), !suffix.contains("*"), !suffix.hasPrefix("."), !suffix.hasSuffix("."), !suffix.contains("..") else {
            return nil
        }
        return String(suffix)
    }
}

extension ServerNameTable: Sendable where Value: Sendable {}
