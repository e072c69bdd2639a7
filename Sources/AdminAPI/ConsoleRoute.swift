import ConsoleAssets

/// The brand portal console on the admin listener: `/console/` and its files, answered before
/// the admin API's routes. The console is static files that call the admin API with the bearer
/// token the user pastes; it has no route, session or privilege of its own.
public enum ConsoleRoute {
    public static let prefix = "/console/"

    /// Sent with every console file. The page runs only its own scripts and styles (no inline
    /// code, no other origin), loads nothing from another origin (the branding preview names
    /// the logo's address instead of fetching it: the console works offline and tells no
    /// third party who is looking at it), talks only to this listener, and cannot be framed.
    public static let securityHeaders: [(name: String, value: String)] = [
        (
            "content-security-policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
                + "frame-ancestors 'none'; base-uri 'none'; form-action 'none'; object-src 'none'"
        ),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("cross-origin-opener-policy", "same-origin"),
    ]

    /// One file ready to answer: its bytes as text (every console file is UTF-8) and a strong
    /// ETag of them, computed once.
    struct Served: Sendable {
        let contentType: String
        let body: String
        let etag: String
    }

    static let served: [String: Served] = {
        var served: [String: Served] = [:]
        for (name, file) in ConsoleAssets.files {
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            for byte in file.bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
            let hex = String(hash, radix: 16)
            let etag = "\"" + String(repeating: "0", count: 16 - hex.count) + hex + "\""
            served[name] = Served(contentType: file.contentType, body: String(decoding: file.bytes, as: UTF8.self), etag: etag)
        }
        return served
    }()

    /// The answer to a console request; nil when the path is not the console's (the admin API
    /// answers it).
    public static func answer(_ request: AdminRequest) -> AdminResponse? {
        let path = request.path
        guard path == "/console" || path.hasPrefix(Self.prefix) else { return nil }
        var headers = Self.securityHeaders
        guard request.method == "GET" else {
            headers.append(("allow", "GET"))
            headers.append(("content-type", "text/plain; charset=utf-8"))
            return AdminResponse(status: 405, headers: headers, body: "The console's files are read with GET.\n")
        }
        if path == "/console" {
            headers.append(("location", Self.prefix))
            return AdminResponse(status: 301, headers: headers, body: "")
        }
        let name = path == Self.prefix ? "index.html" : String(path.dropFirst(Self.prefix.count))
        guard let file = Self.served[name] else {
            headers.append(("content-type", "text/plain; charset=utf-8"))
            return AdminResponse(status: 404, headers: headers, body: "No such console file.\n")
        }
        headers.append(("etag", file.etag))
        // Revalidated on every load: a new gateway version serves new files at once, and an
        // unchanged file costs a 304.
        headers.append(("cache-control", "no-cache"))
        if let ifNoneMatch = request.header("if-none-match"),
            ifNoneMatch.split(separator: ",").contains(where: { $0.trimmingCharacters(in: .whitespaces) == file.etag || $0.trimmingCharacters(in: .whitespaces) == "*" })
        {
            return AdminResponse(status: 304, headers: headers, body: "")
        }
        headers.append(("content-type", file.contentType))
        return AdminResponse(status: 200, headers: headers, body: file.body)
    }
}
