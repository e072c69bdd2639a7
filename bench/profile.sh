#!/usr/bin/env bash
# Where the gateway spends its CPU per request: perf's cpu-clock sampling (software event; this
# machine has no hardware counters) of the release binary under load.
#
#   bench/profile.sh [full|proxy|cold] [SECONDS]      (default: full, 15 s of load)
#
# Runs the gateway (one event loop) in front of an nginx upstream (and Redis for full/cold),
# warms it up, then samples it at 4 kHz while wrk drives it on loopback (bounded by time), and
# prints the share of samples per shared object and the functions that dominate, by their own
# time and with their callees. `cold` sends a token never seen before on every request.
# DELAY_MS: sample a paced load (8 connections, each pausing DELAY_MS between requests; CONNECTIONS
# sets their number), as bench/compare.sh's latency run paces it.
# EXTRA: YAML appended to the settings (e.g. the access log or tracing; UPSTREAM_PORT in it
# stands for the upstream nginx's port, which answers 200 to any POST: a stand-in collector).
# (valgrind 3.19 stops with an internal error on this binary, so callgrind is not used.)
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-full}"
duration="${2:-15}"
for tool in perf wrk nginx redis-server; do
    command -v "$tool" >/dev/null || PATH="$PATH:/usr/sbin" command -v "$tool" >/dev/null || { echo "$tool is needed" >&2; exit 1; }
done
export PATH="$PATH:/usr/sbin"

echo "building (release)..." >&2
swift build -c release -Xswiftc -enforce-exclusivity=unchecked --product erp-gateway >/dev/null
bin="$(swift build -c release --show-bin-path)"
source bench/lib.sh
make_issuer_key

redis_port=$(free_port); upstream_port=$(free_port); gateway_port=$(free_port)
upstream_config "$upstream_port"
write_tenant_tree
gateway_settings "$gateway_port" "$([ "$mode" = proxy ] && echo proxy || echo full)" "$upstream_port" "$redis_port" > "$work/gateway.yaml"
printf '%s\n' "${EXTRA:-}" | sed "s/UPSTREAM_PORT/$upstream_port/g" >> "$work/gateway.yaml"
echo "minting tokens..." >&2
mint_tokens "$work/tokens" "$([ "$mode" = cold ] && echo 800 || echo 10)"
wrk_script "$work/tokens" 0 > "$work/load.lua"
# DELAY_MS (default 0): sample a paced load instead — CONNECTIONS (default 8 then) connections,
# each pausing that long between requests, as bench/compare.sh's half-load latency run.
wrk_script "$work/tokens" "${DELAY_MS:-0}" > "$work/sampled.lua"
sampled_connections=${CONNECTIONS:-$([ "${DELAY_MS:-0}" = 0 ] && echo 32 || echo 8)}

taskset -c 0 redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no >/dev/null 2>&1 &
pids+=($!)
taskset -c 0 nginx -p "$work" -e "$work/upstream-error.log" -c "$work/upstream.conf" >/dev/null 2>&1 &
pids+=($!)
taskset -c 0 "$bin/erp-gateway" serve --config "$work/gateway.yaml" --log-level error --watch-interval-ms 0 > "$work/gateway.log" 2>&1 &
gateway_pid=$!
pids+=($gateway_pid)
wait_port "$redis_port"; wait_port "$upstream_port"; wait_port "$gateway_port"

# Warm-up (pools, the token cache of a reused set), then sample while the load runs.
taskset -c 1 wrk -t1 -c32 -d3s -s "$work/load.lua" "http://127.0.0.1:$gateway_port/v1/ledger" >/dev/null
taskset -c 1 wrk -t1 -c"$sampled_connections" -d"${duration}s" --timeout 5s -s "$work/sampled.lua" "http://127.0.0.1:$gateway_port/v1/ledger" > "$work/wrk.txt" &
load_pid=$!; pids+=($load_pid)
sleep 1
perf record -q -e cpu-clock -F ${PERF_FREQ:-4000} ${PERF_CALLGRAPH:--g} -p "$gateway_pid" -o "$work/perf.data" -- sleep $((duration - 2)) 2>/dev/null
wait "$load_pid" || true
read -r _ rps non2xx errors requests _ _ <<<"$(grep RESULT "$work/wrk.txt")"
echo "mode $mode: $rps req/s ($requests requests, $non2xx non-2xx, $errors socket errors) while sampled"
echo
echo "--- samples per shared object ---"
perf report -i "$work/perf.data" --stdio --no-children --sort dso 2>/dev/null | grep -v '^#' | grep '%' | head -12
echo
echo "--- own time per function ---"
perf report -i "$work/perf.data" --stdio --no-children -g none --sort symbol 2>/dev/null | grep -v '^#' | grep '%' | head -40 | cut -c1-200
echo
echo "--- with callees (top entries) ---"
perf report -i "$work/perf.data" --stdio --children -g none --sort symbol 2>/dev/null | grep -v '^#' | grep '%' | head -40 | cut -c1-200
[ "$non2xx" = 0 ] && [ "$errors" = 0 ]
