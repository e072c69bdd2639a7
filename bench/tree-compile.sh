#!/usr/bin/env bash
# Compiles a generated tenant tree of 100 OEMs × 10 partners × 100 customers (100,000 customers)
# with a release build and prints compile time, memory and lookup cost.
# Usage: bench/tree-compile.sh [OEMS PARTNERS_PER_OEM CUSTOMERS_PER_PARTNER] [--yaml] [--no-requires]
# The catalog declares module dependencies (requires) unless --no-requires is given.
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release -Xswiftc -enforce-exclusivity=unchecked --product tree-benchmark >/dev/null
exec "$(swift build -c release --show-bin-path)/tree-benchmark" "${@:-100 10 100}"
