import COpenSSL
import GatewayConfig
import Hierarchy
import NIOHTTP1
import SupportAccess
import TokenAuth

/// The tenant context the gateway hands to a backend, and the signature that lets the backend
/// trust it. Every `X-ERP-*` header a client sent is removed first, so a backend only ever sees
/// the gateway's own values. `docs/backend-contract.md` shows how to verify.
///
/// Canonical form (UTF-8, each line ending in `\n`):
///
///     v1
///     <method>
///     <path and query, as forwarded>
///     <x-erp-tenant>
///     <x-erp-partner>
///     <x-erp-oem>
///     <x-erp-tenant-path>
///     <x-erp-features>
///     <x-erp-tier>
///     <x-request-id>
///     <x-erp-context-time>
///
/// A request a support engineer makes under a grant (docs/support-access.md) adds three lines,
/// and their headers, after the time — so a backend that does not know them fails to verify a
/// support request rather than mistaking it for the customer's own:
///
///     <x-erp-support-grant>
///     <x-erp-support-engineer>
///     <x-erp-support-scope>
///
/// Signature header: `X-ERP-Context-Signature: v1;key=<key id>;sig=<base64url HMAC-SHA256>`.
/// Binding method and target stops a context captured from one request being replayed on
/// another route; the time lets a backend refuse old contexts.
struct UpstreamContext {
    static let headerPrefix: StaticString = "x-erp-"

    var method: String
    var target: String
    var tenant: String
    var partner: String
    var oem: String
    var tenantPath: String
    /// Catalog order, comma-separated, no spaces.
    var features: String
    var tier: String
    var requestID: String
    /// Unix seconds when the gateway forwarded the request.
    var time: Int64
    /// The grant, engineer and scope of a support engineer's request; nil otherwise.
    var support: SupportRequest?

    init(policy: EffectivePolicy, catalog: Catalog, tier: GatewaySettings.Cell.Kind?, method: String, target: String, requestID: String, time: Int64) {
        self.method = method
        self.target = target
        self.tenant = policy.id.rawValue
        self.partner = policy.path.partner?.rawValue ?? ""
        self.oem = policy.path.oem.rawValue
        self.tenantPath = policy.path.description
        self.features = catalog.joinedNames(policy.features)
        self.tier = tier?.rawValue ?? "pooled"
        self.requestID = requestID
        self.time = time
    }

    /// The lines of the canonical form, each without its `\n`, in order.
    func writeCanonicalLines(_ line: (String) -> Void) {
        line("v1")
        line(self.method)
        line(self.target)
        line(self.tenant)
        line(self.partner)
        line(self.oem)
        line(self.tenantPath)
        line(self.features)
        line(self.tier)
        line(self.requestID)
        line(String(self.time))
        if let support = self.support {
            line(support.grant)
            line(support.engineer)
            line(support.scope.claim)
        }
    }

    /// Sets the context and its signature on `headers`, from which every client-sent `X-ERP-*`
    /// field has been removed (`removeClientCopies`, done once for every forwarded request).
    func apply<Fields: FieldEditing>(to headers: inout Fields, signer: ContextSigner) {
        headers.add(name: "x-erp-tenant", value: self.tenant)
        headers.add(name: "x-erp-partner", value: self.partner)
        headers.add(name: "x-erp-oem", value: self.oem)
        headers.add(name: "x-erp-tenant-path", value: self.tenantPath)
        headers.add(name: "x-erp-features", value: self.features)
        headers.add(name: "x-erp-tier", value: self.tier)
        headers.add(name: "x-erp-context-time", value: String(self.time))
        if let support = self.support {
            headers.add(name: "x-erp-support-grant", value: support.grant)
            headers.add(name: "x-erp-support-engineer", value: support.engineer)
            headers.add(name: "x-erp-support-scope", value: support.scope.claim)
        }
        headers.add(name: "x-erp-context-signature", value: signer.signatureField(self.writeCanonicalLines))
    }

    /// Removes every field named `X-ERP-…`, whatever its case. Nearly every request has none, and
    /// finding that out compares bytes without building a lower-cased copy of each name.
    static func removeClientCopies<Fields: FieldEditing>(from headers: inout Fields) {
        headers.removeAll(whereName: { ForwardedHeaders.matches(bytes: $0, Self.headerPrefix, prefixOnly: true) })
    }

    static func hmacSHA256(key: [UInt8], message: [UInt8]) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        key.withUnsafeBytes { keyBytes in
            message.withUnsafeBytes { messageBytes in
                _ = HMAC(EVP_sha256(), keyBytes.baseAddress, Int32(keyBytes.count), messageBytes.bindMemory(to: UInt8.self).baseAddress,
                         messageBytes.count, &output, &length)
            }
        }
        return Array(output.prefix(Int(length)))
    }
}
