import Hierarchy
import NIOHTTP1

/// `GET /v1/branding`: with a bearer token, the effective branding of the caller's tenant; without
/// one, that of the portal served on the request's `Host`, for a partner's login page before
/// anyone has signed in. Cacheable: a strong `ETag` computed
/// when the snapshot was compiled, `If-None-Match` answered 304.
enum BrandingEndpoint {
    static let path = "/v1/branding"
    /// Browsers and CDNs may keep it briefly; a reload is visible within this many seconds.
    static let maxAgeSeconds = 60

    /// The branding for a `Host` header value (port and letter case ignored).
    static func branding(forHost host: String?, in tenants: TenantSnapshot) -> EffectiveBranding? {
        guard let host else { return nil }
        var name = Substring(host)
        if let colon = name.lastIndex(of: ":"), !name.hasSuffix("]") { name = name[..<colon] }
        return tenants.node(forPortalDomain: name.lowercased())?.branding
    }

    struct Response {
        var status: HTTPResponseStatus
        var headers: HTTPHeaders
        var body: String?
    }

    static func response(for branding: EffectiveBranding, request: RelayedRequestHead) -> Response {
        var headers = HTTPHeaders()
        headers.add(name: "etag", value: branding.etag)
        // A tenant's own branding depends on the token: shared caches must not keep it.
        let personal = request.fields.contains(name: "authorization")
        headers.add(name: "cache-control", value: personal ? "private, max-age=\(self.maxAgeSeconds)" : "public, max-age=\(self.maxAgeSeconds)")
        headers.add(name: "vary", value: personal ? "Authorization" : "Host")
        if self.matches(request.fields, etag: branding.etag) {
            return Response(status: .notModified, headers: headers, body: nil)
        }
        headers.add(name: "content-type", value: "application/json")
        headers.add(name: "content-length", value: String(branding.json.utf8.count))
        return Response(status: .ok, headers: headers, body: branding.json)
    }

    /// RFC 9110 §13.1.2: `*` or any listed tag, compared weakly (a `W/` prefix is ignored).
    /// The `If-None-Match` items are read in place, as the head's other fields are.
    static func matches(_ fields: some FieldEditing, etag: String) -> Bool {
        var matched = false
        ForwardedHeaders.withBytes(of: etag) { etag in
            ForwardedHeaders.forEachItem(of: fields, named: "if-none-match") { item in
                let weak = item.count >= 2 && item[0] == UInt8(ascii: "W") && item[1] == UInt8(ascii: "/")
                let tag = weak ? UnsafeRawBufferPointer(rebasing: item[2...]) : item
                matched = (tag.count == 1 && tag[0] == UInt8(ascii: "*")) || tag.elementsEqual(etag)
                return !matched
            }
        }
        return matched
    }
}
