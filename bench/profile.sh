#!/usr/bin/env bash
# Where the gateway spends its instructions per request, with valgrind's callgrind.
#
#   bench/profile.sh [full|proxy|cold] [SECONDS]      (default: full, 20 s of load)
#
# Builds the gateway in release mode with DWARF 4 (valgrind 3.19 cannot read DWARF 5) in its own
# scratch path (.build-dwarf4), runs it under callgrind in front of an nginx upstream (and Redis
# for `full`/`cold`), zeroes the counters after a warm-up, drives it with wrk on loopback
# (bounded by time), and prints instructions per request and the functions that dominate,
# inclusive and exclusive. `cold` sends a token never seen before on every request.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-full}"
duration="${2:-20}"
for tool in valgrind callgrind_annotate callgrind_control wrk nginx redis-server; do
    command -v "$tool" >/dev/null || PATH="$PATH:/usr/sbin" command -v "$tool" >/dev/null || { echo "$tool is needed" >&2; exit 1; }
done
export PATH="$PATH:/usr/sbin"

echo "building (release, DWARF 4, .build-dwarf4)..." >&2
flags=(-c release --product erp-gateway --scratch-path .build-dwarf4 -Xswiftc -g -Xswiftc -dwarf-version=4 -Xcc -gdwarf-4)
swift build "${flags[@]}" >/dev/null
bin="$(swift build "${flags[@]}" --show-bin-path)"
source bench/lib.sh

redis_port=$(free_port); upstream_port=$(free_port); gateway_port=$(free_port)
upstream_config "$upstream_port"
write_tenant_tree
gateway_settings "$gateway_port" "$([ "$mode" = proxy ] && echo proxy || echo full)" "$upstream_port" "$redis_port" > "$work/gateway.yaml"
mint_tokens "$work/tokens" "$([ "$mode" = cold ] && echo 100 || echo 10)"
wrk_script "$work/tokens" 0 > "$work/load.lua"

taskset -c 0 redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no >/dev/null 2>&1 &
pids+=($!)
taskset -c 0 nginx -p "$work" -e "$work/upstream-error.log" -c "$work/upstream.conf" >/dev/null 2>&1 &
pids+=($!)
taskset -c 0 valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out" \
    "$bin/erp-gateway" serve --config "$work/gateway.yaml" --log-level error --watch-interval-ms 0 > "$work/valgrind.log" 2>&1 &
gateway_pid=$!
pids+=($gateway_pid)
wait_port "$redis_port"; wait_port "$upstream_port"; wait_port "$gateway_port"

# Warm-up (pools, the token cache of a reused set), then count from zero.
taskset -c 1 wrk -t1 -c8 -d5s -s "$work/load.lua" "http://127.0.0.1:$gateway_port/v1/ledger" >/dev/null
callgrind_control -z "$gateway_pid" >/dev/null
line=$(taskset -c 1 wrk -t1 -c8 -d"${duration}s" --timeout 10s -s "$work/load.lua" "http://127.0.0.1:$gateway_port/v1/ledger" | grep RESULT)
read -r _ _ non2xx errors requests _ _ <<<"$line"
callgrind_control -d "$gateway_pid" >/dev/null
sleep 1
out=$(ls -t "$work"/callgrind.out* | head -1)
total=$(callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1; exit }')
echo "mode $mode: $requests requests ($non2xx non-2xx, $errors socket errors) under callgrind"
echo "instructions per request: $(python3 -c "print(int($total / max(1, $requests)))")"
echo
echo "--- inclusive (share of all instructions) ---"
callgrind_annotate --inclusive=yes --threshold=100 "$out" 2>/dev/null | sed -n '/^Ir/,$p' | sed -n '3,45p' | cut -c1-220
echo
echo "--- exclusive ---"
callgrind_annotate --threshold=100 "$out" 2>/dev/null | sed -n '/^Ir/,$p' | sed -n '3,35p' | cut -c1-220
[ "$non2xx" = 0 ] && [ "$errors" = 0 ]
