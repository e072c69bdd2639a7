#!/usr/bin/env bash
# System calls per request, by call, of nginx, SwiftNIO's floors and the gateway proxy-only:
# where the kernel half of the CPU per request goes (`bench/compare.sh` prints it only as a
# user/system split).
#
#   bench/syscalls.sh [SECONDS]      (default 5 s of load per target)
#   DELAY_MS=1 CONNECTIONS=8 bench/syscalls.sh   (paced: each connection pauses DELAY_MS between
#                                                 requests, as bench/compare.sh's latency rounds)
#
# Starts, pinned to core 0, the nginx upstream and in front of it: nginx as a reverse proxy,
# `nio-proxy-floor` relaying bytes, `nio-proxy-floor` with SwiftNIO's HTTP/1 codecs, and the
# gateway proxy-only (release build, one event loop). Each target gets one unmeasured second of
# load, then wrk (core 1, 32 connections, bounded by time) while `perf stat` counts the
# syscalls:sys_enter_* tracepoints of its processes. Prints, per target, the calls per request
# of every call made at least 0.01 times per request, and their total; also the upstream's
# calls per request behind each target. Needs root (tracepoints). Every process started here is
# stopped by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-5}"
connections="${CONNECTIONS:-32}"
source bench/lib.sh
build_proxy_targets
make_issuer_key
mint_tokens "$work/tokens" 10
wrk_script "$work/tokens" 0 > "$work/warm.lua"
wrk_script "$work/tokens" "${DELAY_MS:-0}" > "$work/load.lua"
start_proxy_targets
upstream_pids=$(server_pids "$(master_of "$upstream_port")" | paste -sd,)

measure() {  # $1 name, $2 port
    local name=$1 port=$2 server_pids_csv
    server_pids_csv=$(server_pids "$(master_of "$port")" | paste -sd,)
    taskset -c 1 wrk -t1 -c"$connections" -d1s -s "$work/warm.lua" "http://127.0.0.1:$port/v1/ledger" >/dev/null
    perf stat -x, -e 'syscalls:sys_enter_*' -p "$server_pids_csv" -o "$work/$name.stat" &
    local server_perf=$!
    perf stat -x, -e 'syscalls:sys_enter_*' -p "$upstream_pids" -o "$work/$name.upstream.stat" &
    local upstream_perf=$!
    sleep 0.3
    local line
    line=$(taskset -c 1 wrk -t1 -c"$connections" -d"${duration}s" --timeout 5s -s "$work/load.lua" "http://127.0.0.1:$port/v1/ledger" | grep RESULT)
    kill -INT "$server_perf" "$upstream_perf"; wait "$server_perf" "$upstream_perf" || true
    local requests; read -r _ _ _ _ requests _ _ <<<"$line"
    python3 - "$name" "$requests" "$work/$name.stat" "$work/$name.upstream.stat" <<'PY'
import sys
name, requests = sys.argv[1], int(sys.argv[2])
def counts(path):
    out = {}
    for line in open(path):
        parts = line.strip().split(",")
        if len(parts) < 3 or not parts[0].strip().isdigit():
            continue
        call = parts[2].replace("syscalls:sys_enter_", "")
        out[call] = out.get(call, 0) + int(parts[0])
    return out
own, upstream = counts(sys.argv[3]), counts(sys.argv[4])
total = sum(own.values()) / requests
print(f"{name}: {requests} requests, {total:.2f} syscalls per request (upstream behind it: {sum(upstream.values()) / requests:.2f})")
for call, count in sorted(own.items(), key=lambda item: -item[1]):
    if count / requests >= 0.01:
        print(f"  {call:<20} {count / requests:6.2f}")
PY
}

measure nginx "$nginx_port"
measure floor-bytes "$floor_bytes_port"
measure floor-http "$floor_http_port"
measure proxy-only "$proxy_port"
