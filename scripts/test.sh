#!/usr/bin/env bash
# Runs the whole test suite: unit tests of every module and end-to-end tests of the real binary
# against real upstream servers on loopback. Installs missing system packages first.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
command -v swift >/dev/null || { echo "swift (6.x) is not on PATH" >&2; exit 1; }

swift build --build-tests
# The output is kept so that a failing run ends with the failures themselves: the suite prints
# thousands of lines, and whoever sees only the end of them should still see what failed.
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
swift test --skip-build "$@" 2>&1 | tee "$log" || status=$?
if [ "$status" != 0 ]; then
    echo
    echo "=== the suite failed (exit $status); the failures:"
    grep -E ": error: |' failed \(|✘ " "$log" | tail -60 || echo "(no failing test named; see above)"
fi
exit "$status"
