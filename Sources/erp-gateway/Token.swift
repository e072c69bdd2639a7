import ArgumentParser
import Foundation
import GatewayConfig
import Hierarchy
import NIOPosix
import RedisClient
import Revocations
import TokenAuth

/// `erp-gateway token mint`: signs a token the way an OEM's or partner's identity service
/// would, for local use and tests. The gateway itself never mints.
struct Token: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Work with bearer tokens.", subcommands: [Mint.self, Revoke.self])

    struct Mint: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Mint a signed token (prints it on standard output).",
            discussion: "Example: erp-gateway token mint --issuer https://id.acme.example --key acme-private.pem --alg RS256 --kid acme-1 --tenant contoso-dist --audience erp-gateway --ttl 900"
        )

        @Option(help: "The issuer (iss).") var issuer: String
        @Option(help: "Private key PEM file (RS*, PS*, ES*, EdDSA), or a file holding a base64 secret (HS*).") var key: String
        @Option(help: "Signing algorithm: RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA (Ed25519), HS256, HS384, HS512.") var alg: String = "RS256"
        @Option(help: "Key id (kid) in the header.") var kid: String?
        @Option(help: "The customer the token speaks for.") var tenant: String
        @Option(help: "Name of the tenant claim.") var tenantClaim: String = "tenant"
        @Option(help: "Audience (aud).") var audience: String = "erp-gateway"
        @Option(help: "Subject (sub).") var subject: String = "local-user"
        @Option(help: "Lifetime in seconds.") var ttl: Int64 = 900
        @Option(help: "Token id (jti); random when omitted.") var jti: String?
        @Option(name: .customLong("claim"), help: "Extra claim NAME=VALUE (repeatable; integers stay integers).") var claims: [String] = []
        @Option(help: "Tokens to mint, one per line, each with its own random jti (for load tests).") var count: Int = 1

        func validate() throws {
            guard self.count >= 1 else { throw ValidationError("--count must be at least 1") }
            if self.count > 1, self.jti != nil { throw ValidationError("--jti names one token; it cannot be combined with --count") }
        }

        func run() throws {
            for _ in 0..<self.count { print(try self.mintOne()) }
        }

        private func mintOne() throws -> String {
            guard let algorithm = SigningAlgorithm(rawValue: self.alg) else {
                throw ValidationError("unknown algorithm '\(self.alg)'")
            }
            let now = UnixTime.nowSeconds()
            var values: [String: ClaimValue] = [
                "iss": .string(self.issuer), "sub": .string(self.subject), "aud": .string(self.audience),
                "iat": .integer(now), "exp": .integer(now + self.ttl),
                "jti": .string(self.jti ?? UUID().uuidString.lowercased()),
                self.tenantClaim: .string(self.tenant),
            ]
            for claim in self.claims {
                guard let equals = claim.firstIndex(of: "="), equals != claim.startIndex else {
                    throw ValidationError("--claim takes NAME=VALUE, got '\(claim)'")
                }
                let name = String(claim[..<equals])
                let value = String(claim[claim.index(after: equals)...])
                values[name] = Int64(value).map(ClaimValue.integer) ?? .string(value)
            }
            let keyText: String
            do {
                keyText = try String(contentsOfFile: self.key, encoding: .utf8)
            } catch {
                throw ValidationError("cannot read key file '\(self.key)'")
            }
            let token: String
            if self.alg.hasPrefix("HS") {
                guard let secret = Data(base64Encoded: keyText.trimmingCharacters(in: .whitespacesAndNewlines)) else {
                    throw ValidationError("an HS key file holds a base64 secret")
                }
                token = try TokenMinter.mint(claims: values, algorithm: algorithm, kid: self.kid, secret: Array(secret))
            } else {
                token = try TokenMinter.mint(claims: values, algorithm: algorithm, kid: self.kid, privateKeyPEM: keyText)
            }
            return token
        }
    }
}

extension Token {
    /// `erp-gateway token revoke`: revokes one token (by `jti`) or every token of a tenant issued
    /// until now, in the shared store every gateway node listens to. Nodes refuse the token
    /// within a second.
    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a token (--jti) or every token of a tenant (--tenant).")

        @Option(name: .long, help: "Path of the settings file (for redis).") var config: String
        @Option(help: "The token id to revoke.") var jti: String?
        @Option(help: "The token's expiry (unix seconds); the revocation is kept until then. Default: 30 days from now.") var expiresAt: Int64?
        @Option(help: "Revoke every token of this tenant issued before now.") var tenant: String?

        static let longestLifetime: Int64 = 30 * 24 * 3600

        func run() async throws {
            let settings: GatewaySettings
            do {
                settings = try SettingsLoader.load(path: self.config)
            } catch {
                printToStandardError(error.description)
                throw ExitCode(2)
            }
            guard let redisSettings = settings.redis else {
                throw ValidationError("\(self.config) configures no redis: revocations live there")
            }
            let now = UnixTime.nowSeconds()
            let message: RevocationMessage
            switch (self.jti, self.tenant) {
            case (let jti?, nil):
                guard !jti.isEmpty, !jti.contains(where: \.isWhitespace) else { throw ValidationError("a jti has no spaces") }
                message = .token(jwtID: jti, expiresAt: self.expiresAt ?? now + Self.longestLifetime)
            case (nil, let tenant?):
                guard (try? NodeID(tenant)) != nil else { throw ValidationError("'\(tenant)' is not a tenant id") }
                message = .tenant(tenant, issuedBefore: now, until: now + Self.longestLifetime)
            default:
                throw ValidationError("give exactly one of --jti or --tenant")
            }
            let url = try redisSettings.clientURL()
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            let client = RedisClient(url: url, group: group)
            let loop = group.next()
            do {
                let listeners = try await RevocationStore(keyPrefix: redisSettings.keyPrefix).revoke(message, using: client, on: loop, now: now).get()
                if url.topology == .cluster {
                    // A cluster node counts only its own subscribers; the message reaches all.
                    print("revoked (\(message.text)); announced to every node of the cluster")
                } else {
                    print("revoked (\(message.text)); \(listeners) gateway node\(listeners == 1 ? "" : "s") notified")
                }
            } catch {
                try? await client.shutdown().get()
                try? await group.shutdownGracefully()
                printToStandardError("cannot revoke: \(error)")
                throw ExitCode(1)
            }
            try? await client.shutdown().get()
            try? await group.shutdownGracefully()
        }
    }
}
