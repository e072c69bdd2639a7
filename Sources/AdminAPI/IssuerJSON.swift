import GatewayConfig
import TokenAuth

/// The token issuers registered on one node, as the admin API shows and accepts them: the whole
/// list at once, so that adding a key next to the old one, and later retiring the old one, are
/// two writes of the list (an overlap without a flag day). Public keys only: a shared secret
/// never travels through the API.
enum IssuerJSON {
    static let issuerFields: Set<String> = [
        "iss", "audience", "maxLifetimeSeconds", "clockSkewSeconds", "tenantClaim", "keys", "jwksUri", "discovery", "algorithms",
    ]
    static let keyFields: Set<String> = ["kid", "alg", "pem"]

    static func encode(_ issuers: [IssuerDefinition]) -> JSONValue {
        .object(["issuers": .array(issuers.map { issuer in
            var members: [String: JSONValue] = [
                "iss": .string(issuer.issuer),
                "audience": .string(issuer.audience),
                "maxLifetimeSeconds": .integer(issuer.maxLifetime.components.seconds),
                "clockSkewSeconds": .integer(issuer.clockSkew.components.seconds),
                "tenantClaim": .string(issuer.tenantClaim),
            ]
            switch issuer.keySource {
            case .configured:
                members["keys"] = .array(issuer.keys.map { key in
                    var members: [String: JSONValue] = ["kid": .string(key.kid), "alg": .string(key.algorithm)]
                    if case .publicKeyPEM(let pem) = key.material { members["pem"] = .string(pem) }
                    return .object(members)
                })
            case .jwks(let url):
                members["jwksUri"] = .string(url)
                members["algorithms"] = .strings(issuer.algorithms)
            case .discovery(let url):
                members["discovery"] = .string(url)
                members["algorithms"] = .strings(issuer.algorithms)
            }
            return .object(members)
        })])
    }

    /// What the audit log keeps of a list: issuers and key ids, not the keys themselves.
    static func summary(_ issuers: [IssuerDefinition]) -> JSONValue {
        .array(issuers.map { issuer in
            var members: [String: JSONValue] = ["iss": .string(issuer.issuer), "kids": .strings(issuer.keys.map(\.kid))]
            if let url = issuer.keySource.url { members["keysFrom"] = .string(url) }
            return .object(members)
        })
    }

    static func etag(_ issuers: [IssuerDefinition]) -> String {
        Self.encode(issuers).etag
    }

    /// Reads `{"issuers": [...]}`. Keys are checked (parsed, algorithm known) when the changed
    /// tree is compiled, like every issuer of the tree file.
    static func decode(_ json: JSONValue, node: String, label: String) -> Result<[IssuerDefinition], FieldProblems> {
        var problems: [FieldProblem] = []
        func report(_ field: String, _ message: String) { problems.append(FieldProblem(node: label, field: field, message: message)) }
        guard let items = json["issuers"]?.array, json.object?.keys.allSatisfy({ $0 == "issuers" }) == true else {
            return .failure(FieldProblems(list: [FieldProblem(node: label, field: "issuers", message: "expected {\"issuers\": [ … ]}")]))
        }
        var issuers: [IssuerDefinition] = []
        for (index, item) in items.enumerated() {
            let field = "issuers[\(index)]"
            guard let members = item.object else {
                report(field, "expected an object")
                continue
            }
            for key in members.keys.sorted() where !Self.issuerFields.contains(key) {
                report("\(field).\(key)", "unknown field (known: \(Self.issuerFields.sorted().joined(separator: ", ")))")
            }
            guard let iss = members["iss"]?.string, let audience = members["audience"]?.string else {
                report(field, "iss and audience are required strings")
                continue
            }
            func seconds(_ name: String, default value: Int64, in range: ClosedRange<Int64>) -> Int64 {
                guard let member = members[name] else { return value }
                guard case .integer(let number) = member, range.contains(number) else {
                    report("\(field).\(name)", "must be a whole number of seconds between \(range.lowerBound) and \(range.upperBound)")
                    return value
                }
                return number
            }
            // The ranges of the tree file's reader.
            let lifetime = seconds("maxLifetimeSeconds", default: 3600, in: 1...(30 * 24 * 3600))
            let skew = seconds("clockSkewSeconds", default: 30, in: 0...600)
            var keySource = IssuerDefinition.KeySource.configured
            var algorithms: [String] = []
            let sources = ["keys", "jwksUri", "discovery"].filter { members[$0] != nil }
            if sources.count > 1 { report(field, "give one of keys, jwksUri or discovery") }
            if let name = sources.first, name != "keys" {
                if let url = members[name]?.string, IssuerDefinition.isHTTPSURL(url) {
                    keySource = name == "jwksUri" ? .jwks(url) : .discovery(url)
                } else {
                    report("\(field).\(name)", "must be an https:// URL")
                }
                if let list = members["algorithms"]?.array, !list.isEmpty, list.allSatisfy({ $0.string != nil }) {
                    algorithms = list.compactMap(\.string)
                } else {
                    report("\(field).algorithms", "a non-empty list of algorithms is required with \(name)")
                }
            } else if members["algorithms"] != nil {
                report("\(field).algorithms", "algorithms belong to issuers with jwksUri or discovery")
            }
            var keys: [IssuerDefinition.KeyDefinition] = []
            for (keyIndex, key) in (members["keys"]?.array ?? []).enumerated() {
                let keyField = "\(field).keys[\(keyIndex)]"
                guard let kid = key["kid"]?.string, let alg = key["alg"]?.string, let pem = key["pem"]?.string,
                    key.object?.keys.allSatisfy(Self.keyFields.contains) == true
                else {
                    report(keyField, "a key is {\"kid\", \"alg\", \"pem\"}: a public key (RS*, ES*); secrets are not accepted here")
                    continue
                }
                if alg.hasPrefix("HS") { report(keyField, "HMAC keys are not accepted through the admin API") }
                keys.append(.init(kid: kid, algorithm: alg, material: .publicKeyPEM(pem), path: keyField))
            }
            if keySource == .configured, sources.count <= 1, keys.isEmpty, members["keys"]?.array?.isEmpty != false {
                report("\(field).keys", "an issuer needs at least one key, or jwksUri or discovery")
            }
            issuers.append(IssuerDefinition(
                issuer: iss, audience: audience, maxLifetime: .seconds(lifetime), clockSkew: .seconds(skew),
                tenantClaim: members["tenantClaim"]?.string ?? "tenant", keys: keys, keySource: keySource, algorithms: algorithms, node: node, path: field
            ))
        }
        return problems.isEmpty ? .success(issuers) : .failure(FieldProblems(list: problems))
    }
}

extension IssuerJSON {
    /// The issuers of `issuers` whose keys come from an identity provider, as the fetcher takes
    /// them; an unknown algorithm is left out here (the compile reports it).
    static func fetched(_ issuers: [IssuerDefinition]) -> [(index: Int, issuer: FetchedIssuer)] {
        issuers.enumerated().compactMap { index, definition in
            guard definition.keySource != .configured else { return nil }
            let algorithms = Set(definition.algorithms.compactMap(SigningAlgorithm.init(rawValue:)).filter(\.isAsymmetric))
            guard !algorithms.isEmpty else { return nil }
            return (index, FetchedIssuer(issuer: definition.issuer, source: definition.keySource, algorithms: algorithms))
        }
    }
}
