#!/usr/bin/env bash
# What the full pipeline's added p99 at a steady pace comes from: the same paced load against
# the backend directly, the gateway proxy-only, the full pipeline without Redis (no `redis`
# settings: quotas are not enforced), the full pipeline, and the full pipeline with its Redis
# on core 1 (wrk's core) instead of core 0 (the gateway's, the backend's). Rounds interleave
# the five; each gateway is started fresh, warmed up at full speed, then paced for 3 s before
# the measured run, so every lease is sized for the pace it is measured at.
#
#   bench/paced-p99.sh [ROUNDS] [SECONDS]      (default 4 rounds of 8 s)
#   DELAY_MS=2 CONNECTIONS=16 bench/paced-p99.sh   (the pace: default 1 ms between requests on
#                                                  each of 8 connections, as bench/compare.sh)
#
# Prints each run's req/s, p50, p99 and gateway CPU µs per request, the requests that waited
# for Redis (`erp_gateway_quota_decisions_total{source="store"}`), then the medians per target.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-4}"; duration="${2:-8}"
export PATH="$PATH:/usr/sbin"
for tool in wrk nginx redis-server curl taskset python3; do command -v "$tool" >/dev/null || { echo "$tool is needed" >&2; exit 1; }; done
echo "building (release)..." >&2
swift build -c release -Xswiftc -enforce-exclusivity=unchecked --product erp-gateway >/dev/null
bin="$(swift build -c release --show-bin-path)"
source bench/lib.sh
make_issuer_key

redis_port=$(free_port); far_redis_port=$(free_port); upstream_port=$(free_port); gateway_port=$(free_port); ops_port=$(free_port)
upstream_config "$upstream_port"
write_tenant_tree
mint_tokens "$work/tokens" 10
wrk_script "$work/tokens" 0 > "$work/warm.lua"
wrk_script "$work/tokens" "${DELAY_MS:-1}" > "$work/paced.lua"
connections="${CONNECTIONS:-8}"

gateway_settings "$gateway_port" proxy "$upstream_port" "$redis_port" > "$work/proxy-only.yaml"
{ gateway_settings "$gateway_port" full "$upstream_port" "$redis_port"; echo "ops: { address: 127.0.0.1, port: $ops_port }"; } > "$work/full.yaml"
grep -v '^redis:' "$work/full.yaml" > "$work/full-no-redis.yaml"
{ gateway_settings "$gateway_port" full "$upstream_port" "$far_redis_port"; echo "ops: { address: 127.0.0.1, port: $ops_port }"; } > "$work/full-redis-core1.yaml"

taskset -c 0 redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no >/dev/null 2>&1 &
pids+=($!)
taskset -c 1 redis-server --port "$far_redis_port" --bind 127.0.0.1 --save "" --appendonly no >/dev/null 2>&1 &
pids+=($!)
taskset -c 0 nginx -p "$work" -e "$work/upstream-error.log" -c "$work/upstream.conf" >/dev/null 2>&1 &
pids+=($!)
wait_port "$redis_port"; wait_port "$far_redis_port"; wait_port "$upstream_port"

targets=(direct proxy-only full-no-redis full full-redis-core1)
declare -A results
for round in $(seq 1 "$rounds"); do
    for target in "${targets[@]}"; do
        gateway_pid=""
        port=$upstream_port
        if [ "$target" != direct ]; then
            taskset -c 0 "$bin/erp-gateway" serve --config "$work/$target.yaml" --log-level error --watch-interval-ms 0 > "$work/gateway-$target.log" 2>&1 &
            gateway_pid=$!; pids+=($gateway_pid); port=$gateway_port
            wait_port "$gateway_port"
        fi
        taskset -c 1 wrk -t1 -c32 -d2s -s "$work/warm.lua" "http://127.0.0.1:$port/v1/ledger" >/dev/null
        taskset -c 1 wrk -t1 -c"$connections" -d3s -s "$work/paced.lua" "http://127.0.0.1:$port/v1/ledger" >/dev/null
        cpu=0; waited=0
        if [ -n "$gateway_pid" ]; then read -r user_before system_before <<<"$(user_system_ticks "$gateway_pid")"; waited=$(quota_admissions "$ops_port" store); fi
        line=$(taskset -c 1 wrk -t1 -c"$connections" -d"${duration}s" --timeout 5s -s "$work/paced.lua" "http://127.0.0.1:$port/v1/ledger" | grep RESULT)
        read -r _ rps non2xx errors requests p50 p99 <<<"$line"
        if [ -n "$gateway_pid" ]; then
            read -r user_after system_after <<<"$(user_system_ticks "$gateway_pid")"
            waited=$(( $(quota_admissions "$ops_port" store) - waited ))
            cpu=$(python3 -c "print('%.1f' % ((($user_after - $user_before) + ($system_after - $system_before)) * 1e6 / $ticks_per_second / max(1, $requests)))")
            kill -TERM "$gateway_pid"; wait "$gateway_pid" 2>/dev/null || true
        fi
        echo "round $round $target: $rps req/s, p50 $p50 ms, p99 $p99 ms, $cpu µs CPU/request, $waited of $requests waited for Redis ($non2xx non-2xx, $errors errors)"
        [ "$non2xx" = 0 ] && [ "$errors" = 0 ] || { echo "run had errors" >&2; exit 1; }
        results[$target]+="$p99:$p50:$cpu:$waited "
    done
done
echo
for target in "${targets[@]}"; do
    python3 - "$target" "${results[$target]}" "${results[direct]}" <<'PY'
import statistics, sys
name, runs, direct = sys.argv[1], [tuple(map(float, r.split(":"))) for r in sys.argv[2].split()], [float(r.split(":")[0]) for r in sys.argv[3].split()]
added = statistics.median(run[0] - d for run, d in zip(runs, direct))
print("%-17s p99 %.3f ms (adds %.3f to direct, median of the rounds' differences), p50 %.3f ms, %.1f µs CPU/request, %d waited for Redis; p99 of each round: %s"
      % (name, statistics.median(r[0] for r in runs), added, statistics.median(r[1] for r in runs), statistics.median(r[2] for r in runs),
         sum(r[3] for r in runs), " ".join("%.3f" % r[0] for r in runs)))
PY
done
