#!/usr/bin/env bash
# Where a request's time goes at moderate load, measured two ways (release build, servers on
# core 0, wrk on core 1, as in bench/compare.sh):
#
# 1. The gateway's own view: the full pipeline with its access log on, 8 paced connections
#    (DELAY_MS between requests on each), then the percentiles of each logged request's
#    `gatewayMs` (from the request head read to the answer written, upstream wait excluded) and
#    `upstreamMs` (from the request handed to the backend to its answer read), once with the
#    backend and Redis on the gateway's core and once on core 1.
# 2. The scheduler's view: one paced connection through the gateway proxy-only while
#    `perf sched` records one second: per task, the time from its wake-up to getting a CPU
#    (scheduling delay) and how long it ran each time; then a few request cycles in a row.
#
#   bench/latency-breakdown.sh [SECONDS]        (default 8 s of paced load per measurement)
#   DELAY_MS=2 bench/latency-breakdown.sh       (the pause of each paced connection, default 2 ms)
#
# Needs perf, wrk, nginx, redis-server. Every process started here is stopped by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-8}"
delay_ms="${DELAY_MS:-2}"
export PATH="$PATH:/usr/sbin"
source bench/lib.sh
require_tools perf wrk nginx redis-server taskset python3
swift build -c release -Xswiftc -enforce-exclusivity=unchecked --product erp-gateway >/dev/null
bin="$(swift build -c release --show-bin-path)"
make_issuer_key
mint_tokens "$work/reused.tokens" 10
write_tenant_tree
wrk_script "$work/reused.tokens" 0 > "$work/warm.lua"
wrk_script "$work/reused.tokens" "$delay_ms" > "$work/paced.lua"

run_on() {  # $1 core, $2 log name, rest: command
    taskset -c "$1" "${@:3}" > "$work/$2.log" 2>&1 &
    pids+=($!)
    measured+=($!)
}
# The servers of one measurement, stopped before the next starts (each nginx here writes the
# same pid file).
stop_measured() {
    for pid in "${measured[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${measured[@]}"; do wait "$pid" 2>/dev/null || true; done
    measured=()
}
measured=()

# Percentiles of the access log's gatewayMs, upstreamMs and their sum.
summarize_access_log() {
    python3 - "$1" <<'PY'
import json, sys
rows = []
with open(sys.argv[1], 'rb') as log:
    for line in log:
        line = line.strip()
        if not line.startswith(b'{'):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if 'gatewayMs' in record:
            rows.append((record['gatewayMs'], record.get('upstreamMs', 0.0)))
def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]
print(f"    {len(rows)} requests logged")
for name, values in (("gateway's own time", [g for g, _ in rows]), ("upstream leg", [u for _, u in rows]), ("both", [g + u for g, u in rows])):
    print(f"    {name:<20} p50 {percentile(values, .5):.3f}  p90 {percentile(values, .9):.3f}  p99 {percentile(values, .99):.3f}  p99.9 {percentile(values, .999):.3f} ms")
PY
}

echo "1. the gateway's own view (full pipeline, access log on, 8 connections, $delay_ms ms between requests on each)"
for core in 0 1; do
    redis_port=$(free_port); upstream_port=$(free_port); gateway_port=$(free_port); ops_port=$(free_port)
    upstream_config "$upstream_port"
    OBSERVE=1 gateway_settings "$gateway_port" full "$upstream_port" "$redis_port" > "$work/gateway-$core.yaml"
    run_on "$core" "redis-$core" redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no
    run_on "$core" "upstream-$core" nginx -p "$work" -e "$work/upstream-error.log" -c "$work/upstream.conf"
    taskset -c 0 "$bin/erp-gateway" serve --config "$work/gateway-$core.yaml" --log-level error --watch-interval-ms 0 > "$work/gateway-$core.log" 2>&1 &
    gateway_pid=$!; pids+=($gateway_pid); measured+=($gateway_pid)
    for port in "$redis_port" "$upstream_port" "$gateway_port"; do wait_port "$port"; done
    taskset -c 1 wrk -t1 -c32 -d3s -s "$work/warm.lua" "http://127.0.0.1:$gateway_port/v1/ledger" >/dev/null
    sleep 1
    lines_before=$(wc -l < "$work/gateway-$core.log")
    read -r _ rps _ _ _ p50 p99 <<<"$(taskset -c 1 wrk -t1 -c8 -d"${duration}s" -s "$work/paced.lua" "http://127.0.0.1:$gateway_port/v1/ledger" | grep RESULT)"
    sleep 0.5
    tail -n +"$((lines_before + 1))" "$work/gateway-$core.log" > "$work/access-$core.log"
    echo "  backend and Redis on core $core: $rps req/s, seen by wrk p50 $p50 ms, p99 $p99 ms"
    summarize_access_log "$work/access-$core.log"
    stop_measured
done

echo
echo "2. the scheduler's view (gateway proxy-only, one connection, $delay_ms ms between requests, perf sched for 1 s)"
upstream_port=$(free_port); gateway_port=$(free_port)
upstream_config "$upstream_port"
gateway_settings "$gateway_port" proxy "$upstream_port" 0 > "$work/gateway-proxy.yaml"
run_on 0 upstream-proxy nginx -p "$work" -e "$work/upstream-error.log" -c "$work/upstream.conf"
run_on 0 gateway-proxy "$bin/erp-gateway" serve --config "$work/gateway-proxy.yaml" --log-level error --watch-interval-ms 0
for port in "$upstream_port" "$gateway_port"; do wait_port "$port"; done
taskset -c 1 wrk -t1 -c8 -d2s -s "$work/warm.lua" "http://127.0.0.1:$gateway_port/v1/ledger" >/dev/null
taskset -c 1 wrk -t1 -c1 -d4s -s "$work/paced.lua" "http://127.0.0.1:$gateway_port/v1/ledger" > "$work/sched-wrk.txt" &
load_pid=$!; pids+=($load_pid)
sleep 1.5
perf sched record -q -o "$work/sched.data" -- sleep 1 >/dev/null 2>&1
wait "$load_pid" || true
read -r _ rps _ _ _ p50 p99 <<<"$(grep RESULT "$work/sched-wrk.txt")"
echo "  $rps req/s, seen by wrk p50 $p50 ms, p99 $p99 ms"
echo "  per task: time on the CPU, times switched in, scheduling delay after a wake-up (average, max)"
perf sched latency -i "$work/sched.data" 2>/dev/null | grep -E 'nginx|NIO-ELT|wrk' | sed 's/^/  /' || true
echo "  request cycles in a row (wait/sch delay/run time in ms; <idle> is the idle CPU):"
perf sched timehist -i "$work/sched.data" 2>/dev/null | grep -E 'nginx|NIO-ELT|wrk|<idle>' | sed -n '1,24p' | cut -c1-110 | sed 's/^/  /' || true
stop_measured
