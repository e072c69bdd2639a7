/// Where Redis is and how to log in: `redis://[user[:password]@]host[:port][/db]`.
///
/// Parsed once from configuration so that a typo fails at startup, not at the first request.
/// Defaults: port 6379, database 0. User and password are percent-decoded (a password with `@`,
/// `:` or `/` must be percent-encoded). An IPv6 host is written in brackets (`[::1]:6379`).
///
/// Never reveals the password: `description` masks it and the mirror (`dump`, debuggers)
/// omits it, so a URL can be logged as it is.
public struct RedisURL: Hashable, Sendable, CustomStringConvertible, CustomReflectable {
    /// A host name or an IP address, without brackets.
    public var host: String
    /// In `1...65535`.
    public var port: Int
    /// Redis 6 ACL user; `nil` logs in as `default` (plain `AUTH password`).
    public var username: String?
    /// `nil`: no `AUTH` is sent.
    public var password: String?
    /// `SELECT`ed on every new connection when not 0.
    public var database: Int

    public static let defaultPort = 6379

    public init(host: String, port: Int = RedisURL.defaultPort, username: String? = nil, password: String? = nil, database: Int = 0) {
        precondition((1...65535).contains(port), "port out of range")
        precondition(database >= 0, "negative database index")
        precondition(username == nil || password != nil, "a username needs a password")
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
    }

    /// - Throws: `RedisClientError.unsupportedURLScheme` for any scheme but `redis`;
    ///   `RedisClientError.invalidURL` for anything else that does not fit the grammar above.
    public init(_ string: String) throws(RedisClientError) {
        let scheme = "redis://"
        guard let schemeEnd = string.firstRange(of: "://") else { throw .invalidURL }
        guard string[..<schemeEnd.upperBound].lowercased() == scheme else { throw .unsupportedURLScheme }
        let rest = string[schemeEnd.upperBound...]
        guard !rest.contains("?"), !rest.contains("#") else { throw .invalidURL }

        let authority: Substring
        let path: Substring
        if let slash = rest.firstIndex(of: "/") {
            authority = rest[..<slash]
            path = rest[rest.index(after: slash)...]
        } else {
            authority = rest
            path = ""
        }

        var username: String?
        var password: String?
        let hostAndPort: Substring
        // The last `@`: an unencoded `@` in a password is forgiven, an unencoded `@` in a host
        // cannot occur.
        if let at = authority.lastIndex(of: "@") {
            let userInfo = authority[..<at]
            hostAndPort = authority[authority.index(after: at)...]
            if let colon = userInfo.firstIndex(of: ":") {
                let user = try Self.percentDecoded(userInfo[..<colon])
                username = user.isEmpty ? nil : user
                password = try Self.percentDecoded(userInfo[userInfo.index(after: colon)...])
            } else {
                // `user@host` names an ACL user with nothing to authenticate it: refuse rather
                // than silently connect as `default`.
                throw .invalidURL
            }
        } else {
            hostAndPort = authority
        }

        let host: Substring
        var port = Self.defaultPort
        let portText: Substring?
        if hostAndPort.hasPrefix("[") {
            guard let close = hostAndPort.firstIndex(of: "]") else { throw .invalidURL }
            host = hostAndPort[hostAndPort.index(after: hostAndPort.startIndex)..<close]
            let after = hostAndPort[hostAndPort.index(after: close)...]
            if after.isEmpty {
                portText = nil
            } else if after.hasPrefix(":") {
                portText = after.dropFirst()
            } else {
                throw .invalidURL
            }
        } else if let colon = hostAndPort.firstIndex(of: ":") {
            host = hostAndPort[..<colon]
            portText = hostAndPort[hostAndPort.index(after: colon)...]
        } else {
            host = hostAndPort
            portText = nil
        }
        guard !host.isEmpty else { throw .invalidURL }
        if let portText {
            guard let parsed = Self.decimal(portText), (1...65535).contains(parsed) else { throw .invalidURL }
            port = parsed
        }

        var database = 0
        if !path.isEmpty {
            guard let parsed = Self.decimal(path), parsed <= Int(Int32.max) else { throw .invalidURL }
            database = parsed
        }

        self.init(host: String(host), port: port, username: username, password: password, database: database)
    }

    /// `redis://user:***@host:port/db` — the password replaced by `***` when there is one.
    public var description: String {
        var text = "redis://"
        if password != nil {
            text += (username ?? "") + ":***@"
        }
        text += host.contains(":") ? "[\(host)]" : host
        text += ":\(port)/\(database)"
        return text
    }

    public var customMirror: Mirror {
        Mirror(self, children: ["host": host, "port": port, "username": username as Any, "database": database], displayStyle: .struct)
    }

    /// ASCII digits only (no sign, no spaces), at most 9 of them so the value cannot overflow.
    private static func decimal(_ text: Substring) -> Int? {
        guard !text.isEmpty, text.count <= 9, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        return Int(text)
    }

    private static func percentDecoded(_ text: Substring) throws(RedisClientError) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(Self.hexValue), let low = iterator.next().flatMap(Self.hexValue) else {
                throw .invalidURL
            }
            bytes.append(high << 4 | low)
        }
        guard let decoded = String(validating: bytes, as: UTF8.self) else { throw .invalidURL }
        return decoded
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
