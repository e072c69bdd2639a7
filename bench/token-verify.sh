#!/usr/bin/env bash
# Cost of one bearer-token verify with a release build: cold RS256 / PS256 / ES256 / EdDSA through TokenVerifier
# (parse + signature with the key parsed once + claims), a VerifiedTokenCache hit, and libjwt's
# own jwt_decode with the PEM key for comparison. Keys are generated afresh in a temp directory.
# Usage: bench/token-verify.sh [ITERATIONS]   (default 2000)
set -euo pipefail
cd "$(dirname "$0")/.."
keys="$(mktemp -d)"
trap 'rm -rf "$keys"' EXIT
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$keys/rsa.pem" 2>/dev/null
openssl pkey -in "$keys/rsa.pem" -pubout -out "$keys/rsa.pub.pem"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$keys/ec.pem"
openssl pkey -in "$keys/ec.pem" -pubout -out "$keys/ec.pub.pem"
openssl genpkey -algorithm ED25519 -out "$keys/ed.pem"
openssl pkey -in "$keys/ed.pem" -pubout -out "$keys/ed.pub.pem"
swift build -c release -Xswiftc -enforce-exclusivity=unchecked --product token-benchmark >/dev/null
"$(swift build -c release --show-bin-path)/token-benchmark" "$keys" "${1:-2000}"
