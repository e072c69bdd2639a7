/// Syntax rules for the values partners and OEMs write into the tree. They end up in portals,
/// browsers and headers, so they are checked strictly: what a partner types must not become a
/// script, a mixed-content warning or a header injection on someone's login page.
enum ValueRules {
    static let maxURLLength = 2048
    static let maxDisplayNameLength = 80
    static let maxEmailLength = 254
    static let maxDomainLength = 253

    /// A problem with a branding value, or nil when it is acceptable.
    static func brandingProblem(_ field: BrandingField, _ value: String) -> String? {
        switch field {
        case .displayName:
            if value.isEmpty || value.count > self.maxDisplayNameLength {
                return "must be 1 to \(self.maxDisplayNameLength) characters"
            }
            if value.unicodeScalars.contains(where: { $0.properties.generalCategory == .control || $0 == "<" || $0 == ">" }) {
                return "must not contain control characters or angle brackets"
            }
            return nil
        case .logoUrl, .faviconUrl, .supportUrl, .termsUrl, .privacyUrl:
            return self.httpsURLProblem(value)
        case .primaryColor, .accentColor:
            return self.isHexColour(value) ? nil : "must be a hex colour like #1a2b3c or #fc0"
        case .supportEmail:
            return self.isEmail(value) ? nil : "must be an e-mail address like help@example.com"
        }
    }

    static func httpsURLProblem(_ value: String) -> String? {
        guard value.utf8.count <= self.maxURLLength else { return "must be at most \(self.maxURLLength) characters" }
        guard value.hasPrefix("https://") else { return "must be an https:// URL" }
        let rest = value.dropFirst("https://".count)
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        // No userinfo: in `https://support.acme.example@evil.example/` the host is evil.example.
        guard !authority.contains("@") else { return "must not contain user information ('@') before the host" }
        let parts = authority.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard self.isHostname(String(parts[0])) else { return "must name a valid host after https://" }
        if parts.count == 2, !self.isPort(parts[1]) { return "has an invalid port" }
        guard value.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7f && $0 != "\"" && $0 != "<" && $0 != ">" && $0 != "\\" }) else {
            return "must not contain spaces, quotes, angle brackets or non-ASCII characters (percent-encode them)"
        }
        return nil
    }

    static func isHexColour(_ value: String) -> Bool {
        let bytes = Array(value.utf8)
        guard bytes.first == UInt8(ascii: "#"), bytes.count == 4 || bytes.count == 7 else { return false }
        return bytes.dropFirst().allSatisfy(Self.isHexDigit)
    }

    static func isEmail(_ value: String) -> Bool {
        guard value.utf8.count <= self.maxEmailLength else { return false }
        let parts = value.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty else { return false }
        let localAllowed = parts[0].utf8.allSatisfy { byte in
            Self.isAlphanumeric(byte) || ".!#$%&'*+-/=?^_`{|}~".utf8.contains(byte)
        }
        return localAllowed && self.isHostname(String(parts[1])) && parts[1].contains(".")
    }

    /// Lowercase or mixed-case DNS name: labels of letters, digits and hyphens.
    static func isHostname(_ value: String) -> Bool {
        guard !value.isEmpty, value.utf8.count <= self.maxDomainLength else { return false }
        let labels = value.split(separator: ".", omittingEmptySubsequences: false)
        return labels.allSatisfy { label in
            !label.isEmpty && label.utf8.count <= 63 && label.first != "-" && label.last != "-"
                && label.utf8.allSatisfy { Self.isAlphanumeric($0) || $0 == UInt8(ascii: "-") }
        }
    }

    /// A portal domain: a lowercase host name with at least two labels, written exactly as
    /// browsers send it in `Host`.
    static func portalDomainProblem(_ value: String) -> String? {
        guard self.isHostname(value), value.contains(".") else { return "'\(value)' is not a host name like erp.example.com" }
        guard value == value.lowercased() else { return "'\(value)' must be lowercase" }
        return nil
    }

    /// A CORS origin: `https://host[:port]`, or `http://localhost[:port]` for development.
    static func originProblem(_ value: String) -> String? {
        let secure = value.hasPrefix("https://")
        guard secure || value.hasPrefix("http://") else {
            return "'\(value)' must be an https:// origin (http:// only for localhost)"
        }
        let rest = value.dropFirst(secure ? "https://".count : "http://".count)
        let parts = rest.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard self.isHostname(String(parts[0])), value == value.lowercased() else {
            return "'\(value)' must be scheme://host[:port], lowercase, with no path"
        }
        // Plain http only for the machine itself: the whole host, not a prefix of it
        // (http://localhost.evil.example is someone else's site).
        if !secure, parts[0] != "localhost", parts[0] != "127.0.0.1" {
            return "'\(value)' must be an https:// origin (http:// only for localhost)"
        }
        if parts.count == 2, !self.isPort(parts[1]) {
            return "'\(value)' has an invalid port"
        }
        return nil
    }

    static func isPort(_ text: Substring) -> Bool {
        guard !text.isEmpty, text.utf8.count <= 5, text.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let port = Int(text) else { return false }
        return (1...65535).contains(port)
    }

    /// Catalog feature and package names, regions: the node id alphabet.
    static func isName(_ value: String) -> Bool {
        (try? NodeID(value)) != nil
    }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        (byte >= 48 && byte <= 57) || (byte >= 97 && byte <= 102) || (byte >= 65 && byte <= 70)
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (byte >= 48 && byte <= 57) || (byte >= 97 && byte <= 122) || (byte >= 65 && byte <= 90)
    }
}
