import Hierarchy

/// `cors`: what a browser app on an allowed origin may read of the gateway's answers beyond
/// the CORS-safelisted response fields. Which origins are allowed is the tenant tree's
/// (`origins` on its nodes); this is the part that is the same for every tenant.
public struct CORSSettings: Sendable, Hashable {
    /// `exposeHeaders`: further response fields every route's app may read (backend fields
    /// such as `ETag` or `X-Total-Count`), as the settings spell them.
    public let exposeHeaders: [String]
    /// `Access-Control-Expose-Headers` of every answer to an allowed origin:
    /// `ExposedHeaders.always`, then `exposeHeaders`; joined once per settings, not per response.
    public let exposeHeadersValue: String

    public init(exposeHeaders: [String] = []) {
        self.exposeHeaders = exposeHeaders
        self.exposeHeadersValue = (ExposedHeaders.always + exposeHeaders).joined(separator: ", ")
    }
}

extension SettingsLoader {
    /// `cors: { exposeHeaders: [name, …] }`.
    static func cors(_ cursor: YAMLReader.Cursor, _ reader: inout YAMLReader) -> CORSSettings {
        guard let map = reader.mapping(cursor, allowedKeys: ["exposeHeaders"]) else { return CORSSettings() }
        var names: [String] = []
        if let c = map["exposeHeaders"], let items = reader.sequence(c) {
            for item in items {
                guard let name = reader.presentString(item) else { continue }
                if let problem = ExposedHeaders.problem(with: name, listedBefore: names) {
                    reader.report(item, problem)
                } else {
                    names.append(name)
                }
            }
        }
        return CORSSettings(exposeHeaders: names)
    }
}
