#!/usr/bin/env bash
# Installs the Debian packages erp-gateway builds, tests and runs with, if any are missing, and
# the deploy files' schema validator (kubernetes-validate, in .build/deploy-tools).
# Needs root (or sudo). Swift 6 itself is expected on PATH.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

# systemd (systemd-analyze) and strace check deploy/systemd; python3-venv holds the validator;
# chromium runs the browser tests headless.
packages=(libjwt-dev libhiredis-dev libssl-dev openssl pkg-config redis-server curl gcc prometheus nghttp2-client
    systemd strace python3 python3-venv chromium)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}" >&2
    as_root=()
    [ "$(id -u)" -eq 0 ] || as_root=(sudo)
    "${as_root[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The Kubernetes API schemas, offline: KubernetesManifestsTests validates deploy/kubernetes with it.
tools="$root/.build/deploy-tools"
if [ ! -x "$tools/bin/kubernetes-validate" ]; then
    echo "installing: kubernetes-validate (in $tools)" >&2
    python3 -m venv "$tools"
    "$tools/bin/pip" install --quiet --disable-pip-version-check kubernetes-validate==1.37.0
fi
