#!/usr/bin/env bash
# Installs the Debian packages erp-gateway builds, tests and runs with, if any are missing.
# Needs root (or sudo). Swift 6 itself is expected on PATH.
set -euo pipefail

packages=(libjwt-dev libhiredis-dev libssl-dev openssl pkg-config redis-server curl gcc prometheus nghttp2-client)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

echo "installing: ${missing[*]}" >&2
as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo)
"${as_root[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
