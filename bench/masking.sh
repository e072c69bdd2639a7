#!/usr/bin/env bash
# CPU cost of masking JSON responses (field masking, docs/support-access.md): the gateway's
# one-pass masker against Foundation's JSONSerialization, per document and per KiB, for bodies of
# 1 KiB to 1 MiB, with a release build.
# Usage: bench/masking.sh [SECONDS_PER_CASE]
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release -Xswiftc -enforce-exclusivity=unchecked --product masking-benchmark >/dev/null
exec "$(swift build -c release --show-bin-path)/masking-benchmark" "${@:-1}"
