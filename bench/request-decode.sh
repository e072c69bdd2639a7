#!/usr/bin/env bash
# CPU per request of reading a client's HTTP/1.1 request, release build: the gateway's
# ClientRequestDecoder against SwiftNIO's HTTPRequestDecoder under a ByteToMessageHandler (the
# decoder the gateway used before), each alone in an EmbeddedChannel (no sockets: what the
# decoding costs, and the channel's own hand-over, which both pay alike), for three requests: the
# GET with a bearer token bench/compare.sh sends, a POST with a body, a chunked PUT with a trailer.
# Rounds alternate between the two so drift on the host hits both. Counts CPU (getrusage).
#
#   bench/request-decode.sh [REQUESTS]      (default 200,000 per round)
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release -Xswiftc -enforce-exclusivity=unchecked --product request-decode-benchmark >/dev/null
"$(swift build -c release --show-bin-path)/request-decode-benchmark" "${1:-200000}"
