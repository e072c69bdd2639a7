#!/usr/bin/env bash
# What quota leases cost Redis under the side-by-side benchmark's full-pipeline load: the gateway
# (one event loop), Redis and the nginx upstream on core 0, wrk on core 1 with the 1,000 tokens of
# 100 customers that `bench/compare.sh` rotates; after a warm-up, Redis's command counters are
# reset and read again after the measured run.
#
#   bench/lease-traffic.sh [SECONDS]          (default 10 s)
#   LEASE_REFRESH=100ms bench/lease-traffic.sh 10
#   DELAY_MS=1 bench/lease-traffic.sh 10      (paced: 8 connections — CONNECTIONS sets them — each
#                                             pausing DELAY_MS between requests, as compare.sh's
#                                             half-load latency run)
#   PAUSE=3 DELAY_MS=1 bench/lease-traffic.sh 2
#                                             (3 s idle after the warm-up: every lease is given
#                                             back, and the measured run starts as each of
#                                             compare.sh's paced rounds does — 100 customers
#                                             resuming at once)
# BIN_DIR: a directory holding another build's `erp-gateway` to measure instead.
#
# Prints requests, lease scripts (EVALSHA) per request, the commands those scripts ran per
# script, Redis's CPU per request (from /proc), the requests that waited for Redis themselves
# (`erp_gateway_quota_decisions_total` by source, from the ops listener) and every command's
# count.
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-10}"
export PATH="$PATH:/usr/sbin"
for tool in wrk nginx redis-server redis-cli curl; do command -v "$tool" >/dev/null || { echo "$tool is needed" >&2; exit 1; }; done

if [ -n "${BIN_DIR:-}" ]; then
    bin="$BIN_DIR"
else
    echo "building (release)..." >&2
    swift build -c release -Xswiftc -enforce-exclusivity=unchecked --product erp-gateway >/dev/null
    bin="$(swift build -c release --show-bin-path)"
fi
source bench/lib.sh
make_issuer_key

redis_port=$(free_port); upstream_port=$(free_port); gateway_port=$(free_port)
upstream_config "$upstream_port"
write_tenant_tree
ops_port=$(free_port)
{ gateway_settings "$gateway_port" full "$upstream_port" "$redis_port"; echo "ops: { address: 127.0.0.1, port: $ops_port }"; } > "$work/gateway.yaml"
mint_tokens "$work/tokens" 10
wrk_script "$work/tokens" 0 > "$work/load.lua"
wrk_script "$work/tokens" "${DELAY_MS:-0}" > "$work/measured.lua"
measured_connections=${CONNECTIONS:-$([ "${DELAY_MS:-0}" = 0 ] && echo 32 || echo 8)}

taskset -c 0 redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no >/dev/null 2>&1 &
redis_pid=$!
pids+=($redis_pid)
taskset -c 0 nginx -p "$work" -e "$work/upstream-error.log" -c "$work/upstream.conf" >/dev/null 2>&1 &
pids+=($!)
taskset -c 0 "$bin/erp-gateway" serve --config "$work/gateway.yaml" --log-level error --watch-interval-ms 0 > "$work/gateway.log" 2>&1 &
pids+=($!)
wait_port "$redis_port"; wait_port "$upstream_port"; wait_port "$gateway_port"

taskset -c 1 wrk -t1 -c32 -d3s -s "$work/load.lua" "http://127.0.0.1:$gateway_port/v1/ledger" >/dev/null
sleep "${PAUSE:-0}"
waited_before=$(quota_admissions "$ops_port" store); leased_before=$(quota_admissions "$ops_port" lease)
redis-cli -p "$redis_port" CONFIG RESETSTAT >/dev/null
before=$(cpu_ticks "$redis_pid")
wakes_before=$(awk '/^voluntary_ctxt_switches/ { print $2 }' "/proc/$redis_pid/status")
taskset -c 1 wrk -t1 -c"$measured_connections" -d"${duration}s" --timeout 5s -s "$work/measured.lua" "http://127.0.0.1:$gateway_port/v1/ledger" > "$work/wrk.txt"
after=$(cpu_ticks "$redis_pid")
waited=$(( $(quota_admissions "$ops_port" store) - waited_before )); leased=$(( $(quota_admissions "$ops_port" lease) - leased_before ))
wakes_after=$(awk '/^voluntary_ctxt_switches/ { print $2 }' "/proc/$redis_pid/status")
read -r _ rps non2xx errors requests _ _ <<<"$(grep RESULT "$work/wrk.txt")"
redis-cli -p "$redis_port" INFO commandstats | tr -d '\r' | grep '^cmdstat_' | grep -v resetstat > "$work/stats.txt"
scripts=$(awk -F'[:=,]' '$1 == "cmdstat_evalsha" { print $3 }' "$work/stats.txt"); scripts=${scripts:-0}
inner=$(awk -F'[:=,]' '$1 != "cmdstat_evalsha" { total += $3 } END { print total + 0 }' "$work/stats.txt")

echo "refresh interval: ${LEASE_REFRESH:-default}; $measured_connections connections, ${DELAY_MS:-0} ms between requests; $rps req/s, $requests requests ($non2xx non-2xx, $errors socket errors)"
echo "lease scripts per request:      $(python3 -c "print('%.4f' % ($scripts / $requests))")  ($scripts scripts)"
echo "commands per script:            $(python3 -c "print('%.1f' % ($inner / $scripts) if $scripts else 'n/a')")"
# Redis sleeps in epoll_wait between reads: each voluntary context switch is one wake, which
# costs Redis more CPU on this machine than a lease script's Lua does (see benchmarks.md).
echo "Redis wakes per script:         $(python3 -c "print('%.2f' % (($wakes_after - $wakes_before) / $scripts) if $scripts else 'n/a')")  ($(( wakes_after - wakes_before )) wakes)"
echo "Redis CPU per request:          $(python3 -c "print('%.2f µs' % (($after - $before) / $ticks_per_second * 1e6 / $requests))")"
echo "requests that waited for Redis: $waited of $(( waited + leased )) admitted ($(python3 -c "print('%.2f' % (100.0 * $waited / max(1, $waited + $leased)))") %; the rest from leases)"
sed "s/^cmdstat_/  /; s/,rejected_calls=.*//" "$work/stats.txt"
[ "$non2xx" = 0 ] && [ "$errors" = 0 ]
