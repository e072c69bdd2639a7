#!/usr/bin/env bash
# Two builds of the gateway against each other, full pipeline, in one run: the runs alternate
# A, B, A, B… on the same Redis and upstream, so drift on a noisy machine hits both alike.
#
#   bench/ab.sh BIN_DIR_A BIN_DIR_B [ROUNDS] [SECONDS]     (default 3 rounds of 10 s)
#
# BIN_DIR_*: directories holding an `erp-gateway` binary, e.g. a release build of another
# commit (`git worktree add /tmp/before HEAD~1 && (cd /tmp/before && swift build -c release -Xswiftc -enforce-exclusivity=unchecked)`),
# built as the scripts here build the release binary: a build without that flag is another binary.
# MODE=proxy compares the proxy-only configuration instead (no tenant tree, tokens or Redis);
# MODE=cold the full pipeline with a token never seen before on every request (80,000 tokens;
# the warm-up sends the first 16,000, each measured run starts after them in a fresh process).
# EXTRA_A / EXTRA_B: YAML appended to A's / B's settings, e.g. to compare one binary with and
# without the access log or tracing (`bench/ab.sh DIR DIR` with EXTRA_B set); UPSTREAM_PORT in
# them stands for the upstream nginx's port, which answers 200 to any POST (a stand-in collector).
# DELAY_MS (default 0): each connection pauses that long between requests, and CONNECTIONS
# (default 32) sets their number — e.g. DELAY_MS=1 CONNECTIONS=8 for a paced load, to compare p99s.
# Prints req/s, p99 and gateway CPU µs per request of every run (user and system apart), the times
# the kernel took the core from the gateway (involuntary switches) and the upstream's CPU per
# request, then the medians.
set -euo pipefail
cd "$(dirname "$0")/.."
dir_a=$(cd "$1" && pwd); dir_b=$(cd "$2" && pwd)
rounds="${3:-3}"; duration="${4:-10}"
export PATH="$PATH:/usr/sbin"
bin="$dir_a"   # tokens are minted with A's binary
source bench/lib.sh
make_issuer_key

redis_port=$(free_port); upstream_port=$(free_port); gateway_port=$(free_port)
upstream_config "$upstream_port"
write_tenant_tree
mode="${MODE:-full}"
gateway_settings "$gateway_port" "$([ "$mode" = cold ] && echo full || echo "$mode")" "$upstream_port" "$redis_port" > "$work/gateway.yaml"
for variant in A B; do
    extra_name="EXTRA_$variant"
    { cat "$work/gateway.yaml"; printf '%s\n' "${!extra_name:-}" | sed "s/UPSTREAM_PORT/$upstream_port/g"; } > "$work/gateway-$variant.yaml"
done
if [ "$mode" = cold ]; then
    mint_tokens "$work/tokens" 800
    wrk_script "$work/tokens" 0 > "$work/warm.lua"
    wrk_script "$work/tokens" "${DELAY_MS:-0}" 16001 > "$work/load.lua"
else
    mint_tokens "$work/tokens" 10
    wrk_script "$work/tokens" 0 > "$work/warm.lua"
    wrk_script "$work/tokens" "${DELAY_MS:-0}" > "$work/load.lua"
fi
taskset -c 0 redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no >/dev/null 2>&1 &
pids+=($!)
taskset -c 0 nginx -p "$work" -e "$work/upstream-error.log" -c "$work/upstream.conf" >/dev/null 2>&1 &
pids+=($!)
wait_port "$redis_port"; wait_port "$upstream_port"

upstream_pids=$(server_pids "$(master_of "$upstream_port")")
switches() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '$1 == "nonvoluntary_ctxt_switches:" { s += $2 } END { print s + 0 }'; }
declare -A results
for round in $(seq 1 "$rounds"); do
    for variant in A B; do
        dir=$([ "$variant" = A ] && echo "$dir_a" || echo "$dir_b")
        taskset -c 0 "$dir/erp-gateway" serve --config "$work/gateway-$variant.yaml" --log-level error --watch-interval-ms 0 > "$work/gateway-$variant.log" 2>&1 &
        gateway_pid=$!; pids+=($gateway_pid)
        wait_port "$gateway_port"
        taskset -c 1 wrk -t1 -c32 -d2s -s "$work/warm.lua" "http://127.0.0.1:$gateway_port/v1/ledger" >/dev/null
        read -r user_before system_before <<<"$(user_system_ticks "$gateway_pid")"
        switches_before=$(switches "$gateway_pid"); upstream_before=$(cpu_ticks $upstream_pids)
        line=$(taskset -c 1 wrk -t1 -c"${CONNECTIONS:-32}" -d"${duration}s" -s "$work/load.lua" "http://127.0.0.1:$gateway_port/v1/ledger" | grep RESULT)
        read -r user_after system_after <<<"$(user_system_ticks "$gateway_pid")"
        switches_after=$(switches "$gateway_pid"); upstream_after=$(cpu_ticks $upstream_pids)
        read -r _ rps non2xx errors requests _ p99 <<<"$line"
        read -r cpu user system preempted upstream_cpu <<<"$(python3 -c "
per = 1e6 / $ticks_per_second / max(1, $requests)
user, system = ($user_after - $user_before) * per, ($system_after - $system_before) * per
print('%.1f %.1f %.1f %.2f %.1f' % (user + system, user, system, ($switches_after - $switches_before) / max(1, $requests), ($upstream_after - $upstream_before) * per))")"
        echo "round $round $variant: $rps req/s, p99 $p99 ms, $cpu µs CPU/request (user $user, system $system), preempted $preempted/request, upstream $upstream_cpu µs/request ($non2xx non-2xx, $errors errors)"
        results[$variant]+="$rps:$cpu:$user:$system:$preempted:$upstream_cpu:$p99 "
        kill -9 "$gateway_pid"; wait "$gateway_pid" 2>/dev/null || true
        [ "$non2xx" = 0 ] && [ "$errors" = 0 ] || { echo "run had errors" >&2; exit 1; }
    done
done
python3 - "${results[A]}" "${results[B]}" <<'PY'
import statistics, sys
for name, runs in zip("AB", sys.argv[1:]):
    pairs = [tuple(map(float, run.split(":"))) for run in runs.split()]
    median = [statistics.median(p[i] for p in pairs) for i in range(7)]
    print("%s median: %.0f req/s, %.1f µs CPU/request (user %.1f, system %.1f), preempted %.2f/request, upstream %.1f µs/request, p99 %.3f ms" % (name, *median))
PY
