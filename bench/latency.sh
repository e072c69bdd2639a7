#!/usr/bin/env bash
# Where the latency the gateway adds at moderate load comes from: the same paced load (8
# connections, wrk's delay() pacing each) against the upstream directly, nginx as a reverse
# proxy, the gateway proxy-only, and the gateway's full pipeline (tokens, tree, Redis quotas),
# with Redis first on the servers' core and then on a core of its own. Prints p50/p99 of each
# and the p99 each adds over the direct run.
#
#   bench/latency.sh [RATE] [SECONDS] [ROUNDS]      (default 2500 req/s, 10 s per run, 3 rounds)
#
# The targets take turns, round after round, and each figure is the median over the rounds
# (with the range): a single p99 at this load moves by milliseconds from run to run here.
#
# Servers are pinned to core 0 and wrk to core 1 as in bench/compare.sh, except Redis in the
# second full-pipeline run (core 1, beside wrk), and last nginx and the gateway each alone on
# core 0 (backend and Redis on core 1, beside wrk), whose added p99 is over the backend measured
# on core 1: what a proxy adds when it does not share its core with the backend. Bounded: each run lasts SECONDS.
set -euo pipefail
cd "$(dirname "$0")/.."
rate="${1:-2500}"; duration="${2:-10}"; rounds="${3:-3}"
export PATH="$PATH:/usr/sbin"
source bench/lib.sh
require_tools wrk nginx redis-server taskset python3
swift build -c release -Xswiftc -enforce-exclusivity=unchecked --product erp-gateway >/dev/null
bin="$(swift build -c release --show-bin-path)"
make_issuer_key
mint_tokens "$work/reused.tokens" 10

redis_port=$(free_port); redis_apart_port=$(free_port); upstream_port=$(free_port); nginx_port=$(free_port)
proxy_port=$(free_port); full_port=$(free_port); apart_port=$(free_port); alone_port=$(free_port); upstream_apart_port=$(free_port)
nginx_alone_port=$(free_port); proxy_alone_port=$(free_port)
upstream_config "$upstream_port"
# The same backend on core 1, for the gateway alone on core 0.
nginx_config upstream-apart "server { listen 127.0.0.1:$upstream_apart_port; location / { default_type application/json; return 200 '{\"ok\":true,\"service\":\"erp\"}'; } }"
nginx_config proxy "upstream erp { server 127.0.0.1:$upstream_port; keepalive 64; }
    server { listen 127.0.0.1:$nginx_port; location / { proxy_pass http://erp; proxy_http_version 1.1; proxy_set_header Connection \"\"; } }"
nginx_config proxy-alone "upstream erp { server 127.0.0.1:$upstream_apart_port; keepalive 64; }
    server { listen 127.0.0.1:$nginx_alone_port; location / { proxy_pass http://erp; proxy_http_version 1.1; proxy_set_header Connection \"\"; } }"
write_tenant_tree
gateway_settings "$proxy_alone_port" proxy "$upstream_apart_port" "$redis_apart_port" > "$work/gateway-proxy-alone.yaml"
gateway_settings "$proxy_port" proxy "$upstream_port" "$redis_port" > "$work/gateway-proxy.yaml"
gateway_settings "$full_port" full "$upstream_port" "$redis_port" > "$work/gateway-full.yaml"
gateway_settings "$apart_port" full "$upstream_port" "$redis_apart_port" > "$work/gateway-apart.yaml"
gateway_settings "$alone_port" full "$upstream_apart_port" "$redis_apart_port" > "$work/gateway-alone.yaml"

start() {  # $1 core, $2 log name, rest: command
    taskset -c "$1" "${@:3}" > "$work/$2.log" 2>&1 &
    pids+=($!)
}
start 0 redis redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no
start 1 redis-apart redis-server --port "$redis_apart_port" --bind 127.0.0.1 --save "" --appendonly no
start 0 upstream nginx -p "$work" -e "$work/upstream-error.log" -c "$work/upstream.conf"
start 0 nginx nginx -p "$work" -e "$work/proxy-error.log" -c "$work/proxy.conf"
start 0 gateway-proxy "$bin/erp-gateway" serve --config "$work/gateway-proxy.yaml" --log-level error --watch-interval-ms 0
start 0 gateway-full "$bin/erp-gateway" serve --config "$work/gateway-full.yaml" --log-level error --watch-interval-ms 0
start 0 gateway-apart "$bin/erp-gateway" serve --config "$work/gateway-apart.yaml" --log-level error --watch-interval-ms 0
start 1 upstream-apart nginx -p "$work" -e "$work/upstream-apart-error.log" -c "$work/upstream-apart.conf"
start 0 gateway-alone "$bin/erp-gateway" serve --config "$work/gateway-alone.yaml" --log-level error --watch-interval-ms 0
start 0 nginx-alone nginx -p "$work" -e "$work/proxy-alone-error.log" -c "$work/proxy-alone.conf"
start 0 gateway-proxy-alone "$bin/erp-gateway" serve --config "$work/gateway-proxy-alone.yaml" --log-level error --watch-interval-ms 0
for port in "$redis_port" "$redis_apart_port" "$upstream_port" "$nginx_port" "$proxy_port" "$full_port" "$apart_port" "$upstream_apart_port" \
    "$alone_port" "$nginx_alone_port" "$proxy_alone_port"; do
    wait_port "$port"
done

connections=8
delay_ms=$(python3 -c "print('%.3f' % (1000.0 * $connections / $rate))")
wrk_script "$work/reused.tokens" "$delay_ms" > "$work/paced.lua"
wrk_script "$work/reused.tokens" 0 > "$work/warm.lua"
targets=("backend direct:$upstream_port" "nginx reverse proxy:$nginx_port" "gateway proxy-only:$proxy_port"
    "gateway full, Redis on core 0:$full_port" "gateway full, Redis on core 1:$apart_port"
    "backend direct, on core 1:$upstream_apart_port" "nginx reverse proxy, alone on core 0:$nginx_alone_port"
    "gateway proxy-only, alone on core 0:$proxy_alone_port" "gateway full, alone on core 0:$alone_port")
for target in "${targets[@]}"; do   # warm-up: pools, token cache, Redis scripts
    taskset -c 1 wrk -t1 -c32 -d2s -s "$work/warm.lua" "http://127.0.0.1:${target##*:}/v1/ledger" >/dev/null
done
declare -A results
for round in $(seq 1 "$rounds"); do
    for target in "${targets[@]}"; do
        name=${target%%:*}; port=${target##*:}
        line=$(taskset -c 1 wrk -t1 -c"$connections" -d"${duration}s" --timeout 5s -s "$work/paced.lua" "http://127.0.0.1:$port/v1/ledger" | grep RESULT)
        read -r _ rps non2xx errors _ p50 p99 <<<"$line"
        [ "$non2xx" = 0 ] && [ "$errors" = 0 ] || echo "$name: $non2xx non-2xx, $errors errors" >&2
        results[$name]+="$rps $p50 $p99;"
    done
done
python3 - "$rounds" "${targets[@]%%:*}" <<PY
import statistics, sys
rounds, names = int(sys.argv[1]), sys.argv[2:]
results = {$(for target in "${targets[@]}"; do printf '"%s": "%s", ' "${target%%:*}" "${results[${target%%:*}]}"; done)}
def column(name, i): return [float(run.split()[i]) for run in results[name].strip(";").split(";")]
direct = statistics.median(column(names[0], 2))
# The gateway alone on core 0 forwards to the backend on core 1: its own baseline.
apart = statistics.median(column("backend direct, on core 1", 2))
baseline = {name: apart for name in names if name.endswith("alone on core 0")}
print(f"{'target':<34} {'req/s':>7} {'p50 ms':>7} {'p99 ms (median, min-max)':>26} {'added p99':>10}")
for name in names:
    p99 = column(name, 2)
    print(f"{name:<34} {statistics.median(column(name, 0)):>7.0f} {statistics.median(column(name, 1)):>7.3f} "
          f"{statistics.median(p99):>9.3f} ({min(p99):.3f}-{max(p99):.3f}) {statistics.median(p99) - baseline.get(name, direct):>10.3f}")
PY
