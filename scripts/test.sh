#!/usr/bin/env bash
# Runs the whole test suite: unit tests of every module and end-to-end tests of the real binary
# against real upstream servers on loopback. Installs missing system packages first.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
command -v swift >/dev/null || { echo "swift (6.x) is not on PATH" >&2; exit 1; }

swift build --build-tests
swift test --skip-build "$@"
