/// Response fields a browser app on another origin may read (`Access-Control-Expose-Headers`),
/// as the settings (`cors.exposeHeaders`) and catalog routes (`exposeHeaders`) list them. Both
/// are checked by the one rule here.
public enum ExposedHeaders {
    /// The fields the gateway itself sets that an app needs and cannot read otherwise: the
    /// request id for a support ticket, the quota headers to pace itself, and when to retry.
    /// Exposed on every answer to an allowed origin.
    public static let always = ["X-Request-Id", "RateLimit", "RateLimit-Policy", "Retry-After"]

    /// Why `name` cannot be listed after `listedBefore`, or nil. Only field names: `*` (expose
    /// everything) is refused, so what an app on another origin reads is always a named choice.
    public static func problem(with name: String, listedBefore: [String]) -> String? {
        if name.isEmpty || !name.utf8.allSatisfy(Self.isNameCharacter) {
            return "'\(name)' is not a header field name"
        }
        let lowered = name.lowercased()
        if Self.always.contains(where: { $0.lowercased() == lowered }) {
            return "'\(name)' is always exposed; list only further fields"
        }
        if listedBefore.contains(where: { $0.lowercased() == lowered }) {
            return "'\(name)' is listed twice"
        }
        return nil
    }

    /// The field value for `names`, joined once when the configuration is compiled, not per
    /// response; nil for none.
    public static func value(_ names: [String]) -> String? {
        names.isEmpty ? nil : names.joined(separator: ", ")
    }

    /// RFC 9110 token characters, without `*`.
    private static func isNameCharacter(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
            || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || "!#$%&'+-.^_`|~".utf8.contains(byte)
    }
}
