#!/usr/bin/env bash
# Installs what is missing, builds, and runs the gateway on the embedded example settings:
# a local Redis, three demo backend endpoints (the cells of deploy/examples/gateway.yaml) and the
# gateway on 127.0.0.1:8080. Ctrl-C stops all of it.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
swift build

run_dir="$PWD/.run"
mkdir -p "$run_dir"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

if redis-cli -p 6379 ping >/dev/null 2>&1; then
    echo "redis: already running on 127.0.0.1:6379"
else
    redis-server --bind 127.0.0.1 --port 6379 --dir "$run_dir" --save "" --appendonly no --daemonize no \
        >"$run_dir/redis.log" 2>&1 &
    pids+=($!)
    echo "redis: started on 127.0.0.1:6379 (log: $run_dir/redis.log)"
fi

bin="$(swift build --show-bin-path)"
for endpoint in pooled-eu-1a:9101 pooled-eu-1b:9102 dedicated-acme:9103; do
    "$bin/demo-backend" --name "${endpoint%%:*}" --port "${endpoint##*:}" >"$run_dir/${endpoint%%:*}.log" 2>&1 &
    pids+=($!)
done
echo "demo cells: endpoints on 127.0.0.1:9101, :9102, :9103"

"$bin/erp-gateway" check --config deploy/examples/gateway.yaml
echo "gateway: http://127.0.0.1:8080/  (try: curl -i http://127.0.0.1:8080/v1/health)"
echo "admin API: http://127.0.0.1:8081/admin/v1/  (docs/admin-api.md, \"Trying it with the demo\")"
"$bin/erp-gateway" serve --config deploy/examples/gateway.yaml &
pids+=($!)
wait "${pids[-1]}"
