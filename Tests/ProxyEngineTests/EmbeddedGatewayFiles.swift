import Foundation
import GatewayConfig

/// The settings and tenant tree the embedded-channel tests load: one pooled cell, the tree file
/// beside the settings, the context signed with `TenantAccessTests.secret` (which also signs
/// the tests' HS256 tokens), plus what a test adds (`extraSettings`, YAML at the top level).
enum EmbeddedGatewayFiles {
    static func load(in directory: URL, endpoint: String = "127.0.0.1:9001", extraSettings: String = "", tree: String) throws -> GatewayConfiguration {
        let secret = Data(TenantAccessTests.secret).base64EncodedString()
        try """
            listener: { port: 1 }
            cells:
              - { id: pool, kind: pooled, region: eu, endpoints: [\(endpoint)] }
            defaultCell: pool
            tenantTree: tree.yaml
            upstreamContext:
              signingKeys: [{ id: ctx, secret: \(secret) }]
              activeKey: ctx
            \(extraSettings)
            """.write(to: directory.appendingPathComponent("gateway.yaml"), atomically: true, encoding: .utf8)
        try tree.write(to: directory.appendingPathComponent("tree.yaml"), atomically: true, encoding: .utf8)
        return try GatewayConfiguration.load(path: directory.appendingPathComponent("gateway.yaml").path)
    }

}
