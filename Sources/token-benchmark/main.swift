// Cost of verifying one bearer token (bench/token-verify.sh): a cold verify through
// TokenVerifier (parse + signature with the pinned key + claims) for RS256, PS256, ES256 and
// EdDSA (PS256 and EdDSA parse their header outside libjwt, which does not know them), a hit in
// VerifiedTokenCache, and, for comparison, libjwt's own jwt_decode given the PEM key, which
// parses the PEM on every call.
//
// Usage: token-benchmark KEY_DIR [ITERATIONS]
//   KEY_DIR holds rsa.pem, rsa.pub.pem (RSA 2048), ec.pem, ec.pub.pem (P-256) and ed.pem,
//   ed.pub.pem (Ed25519).

import CJWT
import Foundation
import TokenAuth

let arguments = CommandLine.arguments
guard arguments.count >= 2 else {
    FileHandle.standardError.write(Data("usage: token-benchmark KEY_DIR [ITERATIONS]\n".utf8))
    exit(2)
}
let keyDirectory = URL(fileURLWithPath: arguments[1])
let iterations = arguments.count >= 3 ? Int(arguments[2]) ?? 2000 : 2000

func read(_ name: String) throws -> String {
    try String(contentsOf: keyDirectory.appendingPathComponent(name), encoding: .utf8)
}

let now: Int64 = 1_760_000_000
let issuer = "https://login.oem-a.example"
let audience = "erp-gateway"
let claims: [String: ClaimValue] = [
    "iss": .string(issuer), "sub": "user-17", "aud": .string(audience), "iat": .integer(now),
    "exp": .integer(now + 600), "jti": "jti-0001", "tenant": "contoso",
]

let rsaPrivate = try read("rsa.pem"), rsaPublic = try read("rsa.pub.pem")
let ecPrivate = try read("ec.pem"), ecPublic = try read("ec.pub.pem")
let edPrivate = try read("ed.pem"), edPublic = try read("ed.pub.pem")
let secret = Array("benchmark-hmac-secret-32-bytes-long!".utf8)

let verifier = try TokenVerifier(issuers: [
    IssuerPolicy(issuer: issuer, audience: audience, maxLifetimeSeconds: 3600, keys: [
        VerificationKey(kid: "rsa", algorithm: .RS256, pem: rsaPublic),
        VerificationKey(kid: "ec", algorithm: .ES256, pem: ecPublic),
        VerificationKey(kid: "ps", algorithm: .PS256, pem: rsaPublic),
        VerificationKey(kid: "ed", algorithm: .EdDSA, pem: edPublic),
        VerificationKey(kid: "hs", algorithm: .HS256, secret: secret),
    ]),
])
let rsaToken = try TokenMinter.mint(claims: claims, algorithm: .RS256, kid: "rsa", privateKeyPEM: rsaPrivate)
let ecToken = try TokenMinter.mint(claims: claims, algorithm: .ES256, kid: "ec", privateKeyPEM: ecPrivate)
let psToken = try TokenMinter.mint(claims: claims, algorithm: .PS256, kid: "ps", privateKeyPEM: rsaPrivate)
let edToken = try TokenMinter.mint(claims: claims, algorithm: .EdDSA, kid: "ed", privateKeyPEM: edPrivate)
let hsToken = try TokenMinter.mint(claims: claims, algorithm: .HS256, kid: "hs", secret: secret)

/// Mean microseconds per call of `body`, after a warm-up; `body` returns whether it succeeded.
func microseconds(per count: Int, _ body: () -> Bool) -> Double {
    for _ in 0..<min(count, 200) where !body() { fatalError("benchmark body failed during warm-up") }
    var failures = 0
    let elapsed = ContinuousClock().measure {
        for _ in 0..<count where !body() { failures += 1 }
    }
    precondition(failures == 0, "benchmark body failed \(failures) times")
    let (seconds, attoseconds) = elapsed.components
    return (Double(seconds) * 1e6 + Double(attoseconds) / 1e12) / Double(count)
}

func verify(_ token: String) -> Bool {
    if case .success = verifier.verify(token[...], now: now) { return true }
    return false
}

/// libjwt's own verify: `jwt_decode` with the PEM key, as libjwt is meant to be used.
func libjwtDecode(_ token: [CChar], key: [UInt8]) -> Bool {
    var jwt: OpaquePointer?
    let status = key.withUnsafeBufferPointer { jwt_decode(&jwt, token, $0.baseAddress, Int32($0.count)) }
    if let jwt { jwt_free(jwt) }
    return status == 0
}

var rows: [(String, Double)] = []
rows.append(("parse only (CompactToken + libjwt decode, no key)", microseconds(per: iterations) {
    (try? UnverifiedToken.parse(rsaToken[...], maxBytes: 8192)) != nil
}))
rows.append(("cold verify RS256 (parse + pinned-key signature + claims)", microseconds(per: iterations) { verify(rsaToken) }))
rows.append(("cold verify PS256 (parse + pinned-key signature + claims)", microseconds(per: iterations) { verify(psToken) }))
rows.append(("cold verify ES256 (parse + pinned-key signature + claims)", microseconds(per: iterations) { verify(ecToken) }))
rows.append(("cold verify EdDSA (parse + pinned-key signature + claims)", microseconds(per: iterations) { verify(edToken) }))
rows.append(("cold verify HS256 (parse + HMAC + claims)", microseconds(per: iterations) { verify(hsToken) }))

var cache = VerifiedTokenCache(capacity: 10_000)
for n in 0..<9_999 {
    // A realistic fill, so the hit is not into a near-empty table.
    cache.insert("\(rsaToken)\(n)"[...], try verifier.verify(rsaToken[...], now: now).get(), now: now)
}
cache.insert(rsaToken[...], try verifier.verify(rsaToken[...], now: now).get(), now: now)
let hot = rsaToken[...]
rows.append(("cache hit (RS256 token, 10,000 entries)", microseconds(per: iterations * 100) {
    cache.lookup(hot, now: now) != nil
}))

let rsaCString = Array(rsaToken.utf8CString), ecCString = Array(ecToken.utf8CString)
let rsaKey = Array(rsaPublic.utf8), ecKey = Array(ecPublic.utf8)
rows.append(("libjwt jwt_decode with PEM key, RS256", microseconds(per: iterations) { libjwtDecode(rsaCString, key: rsaKey) }))
rows.append(("libjwt jwt_decode with PEM key, ES256", microseconds(per: iterations) { libjwtDecode(ecCString, key: ecKey) }))

let width = rows.map(\.0.count).max()!
print("token verification, \(iterations) iterations per row (cache hit: \(iterations * 100)); token \(rsaToken.utf8.count) B (RS256), \(ecToken.utf8.count) B (ES256)")
print("\("path".padding(toLength: width, withPad: " ", startingAt: 0))   µs/token")
print(String(repeating: "-", count: width + 12))
for (name, value) in rows {
    print("\(name.padding(toLength: width, withPad: " ", startingAt: 0))   \(String(format: "%8.2f", value))")
}
