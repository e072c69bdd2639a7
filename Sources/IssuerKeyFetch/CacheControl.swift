import Foundation

/// The one thing the fetcher reads from a provider's `Cache-Control`: how long its answer may
/// be kept (RFC 9111 §5.2.2.1 `max-age`). `no-store` and `no-cache` count as zero — the answer
/// is used, and the next refresh comes as soon as the bounds allow.
public enum CacheControl {
    /// Seconds, or nil when the header does not say (absent, or no `max-age`).
    public static func maxAge(_ header: String?) -> Int64? {
        guard let header else { return nil }
        var found: Int64?
        for directive in header.split(separator: ",") {
            let parts = directive.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard let name = parts.first?.lowercased() else { continue }
            switch name {
            case "no-store", "no-cache":
                return 0
            case "max-age":
                guard parts.count == 2 else { continue }
                let value = parts[1].trimmingCharacters(in: CharacterSet(charactersIn: "\""))
                // RFC 9111 §1.2.2: a delta-seconds too large to hold is as good as "forever".
                guard !value.isEmpty, value.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else { continue }
                found = Int64(value) ?? Int64.max
            default:
                continue
            }
        }
        return found
    }
}
