#!/usr/bin/env bash
# erp-gateway side by side with nginx and HAProxy, on loopback, in one run.
#
#   bench/compare.sh [SECONDS]          (default 10 s per run)
#
# Environment: CONNECTIONS (default 32), SOAK (seconds of an extra full-pipeline run sampling
# the gateway's memory; default 0 = skip), COLD_TOKENS (default 11,000 per second of the run, more than
# the cold run can send here, so that no token repeats), KEEP (=1 keeps the work
# directory with every configuration and log), LEASE_REFRESH (quotas.leases.refreshInterval of
# the full pipeline, e.g. 500ms or 0ms; default: the gateway's default), OBSERVE (=1 gives the
# full pipeline an ops listener, so every metric is kept, scraped once a second as Prometheus
# would, and the access log of every request; compare its CPU µs/request with a run without).
#
# Starts, each pinned to core 0: Redis, an nginx upstream answering a small JSON body with
# keep-alive, nginx as a plain reverse proxy, HAProxy with jwt_verify (RS256) and a per-tenant
# stick-table rate limit set far above the load, and the gateway (release build, one event
# loop) twice: proxy-only (no tenant tree) and full pipeline (RS256 tokens, 3-level tree,
# Redis quotas at every level). wrk runs on core 1, one thread, the same connections and
# duration for every target; a Lua script rotates 1,000 tokens of 100 customers (the "cold" run
# sends tokens never seen before). Prints req/s, p50, p99, server CPU µs per request (from
# /proc of every server process) and ratios to HAProxy and nginx, then the gateway-added p99
# at half of the full pipeline's maximum, and for each target the backend's CPU µs per request
# behind it and the target's involuntary context switches per request. Exits non-zero if a run had errors or non-2xx
# answers. Every process started here is stopped by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-10}"
connections="${CONNECTIONS:-32}"
soak="${SOAK:-0}"
cold_tokens="${COLD_TOKENS:-$(( 11000 * duration ))}"

missing=()
for tool in wrk nginx haproxy redis-server openssl taskset python3; do
    command -v "$tool" >/dev/null || PATH="$PATH:/usr/sbin" command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk nginx-light haproxy redis-server openssl util-linux python3 >/dev/null
    else
        echo "missing: ${missing[*]} (apt-get install wrk nginx-light haproxy redis-server)" >&2
        exit 1
    fi
fi
export PATH="$PATH:/usr/sbin"

echo "building the gateway (release)..." >&2
swift build -c release --product erp-gateway >/dev/null
bin="$(swift build -c release --show-bin-path)"

source bench/lib.sh
make_issuer_key

redis_port=$(free_port); upstream_port=$(free_port); nginx_port=$(free_port); haproxy_port=$(free_port)
proxy_port=$(free_port); full_port=$(free_port); ops_port=$(free_port)

echo "minting 1,000 reused tokens and $cold_tokens cold ones..." >&2
mint_tokens "$work/reused.tokens" 10
mint_tokens "$work/cold.tokens" $(( (cold_tokens + 99) / 100 ))

# --- servers ----------------------------------------------------------------------------------
upstream_config "$upstream_port"
nginx_config proxy "upstream erp { server 127.0.0.1:$upstream_port; keepalive 64; }
    server { listen 127.0.0.1:$nginx_port; location / { proxy_pass http://erp; proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_set_header Host \$host; proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for; } }"

cat > "$work/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 4096
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    option http-keep-alive
frontend api
    bind 127.0.0.1:$haproxy_port
    http-request deny deny_status 401 unless { req.hdr(authorization) -m found }
    http-request set-var(txn.alg) http_auth_bearer,jwt_header_query('\$.alg')
    http-request deny deny_status 401 unless { var(txn.alg) -m str RS256 }
    http-request deny deny_status 401 unless { http_auth_bearer,jwt_verify(txn.alg,"$work/issuer.public.pem") -m int 1 }
    http-request deny deny_status 401 unless { http_auth_bearer,jwt_payload_query('\$.iss') -m str $issuer }
    http-request deny deny_status 401 unless { http_auth_bearer,jwt_payload_query('\$.aud') -m str erp-gateway }
    http-request set-var(txn.exp) http_auth_bearer,jwt_payload_query('\$.exp','int')
    http-request set-var(txn.now) date()
    http-request deny deny_status 401 if { var(txn.exp),sub(txn.now) -m int lt 0 }
    http-request set-var(txn.tenant) http_auth_bearer,jwt_payload_query('\$.tenant')
    http-request track-sc0 var(txn.tenant) table per_tenant
    http-request deny deny_status 429 if { sc_http_req_rate(0,per_tenant) gt 100000000 }
    default_backend erp
backend per_tenant
    stick-table type string len 64 size 100k expire 60s store http_req_rate(1s)
backend erp
    http-reuse always
    server upstream 127.0.0.1:$upstream_port
EOF

write_tenant_tree
gateway_settings "$proxy_port" proxy "$upstream_port" "$redis_port" > "$work/gateway-proxy.yaml"
gateway_settings "$full_port" full "$upstream_port" "$redis_port" > "$work/gateway-full.yaml"

start redis redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no
start upstream nginx -p "$work" -e "$work/upstream-error.log" -c "$work/upstream.conf"
start nginx nginx -p "$work" -e "$work/proxy-error.log" -c "$work/proxy.conf"
start haproxy haproxy -db -f "$work/haproxy.cfg"
start gateway-proxy "$bin/erp-gateway" serve --config "$work/gateway-proxy.yaml" --log-level error --watch-interval-ms 0
start gateway-full "$bin/erp-gateway" serve --config "$work/gateway-full.yaml" --log-level error --watch-interval-ms 0
for port in "$redis_port" "$upstream_port" "$nginx_port" "$haproxy_port" "$proxy_port" "$full_port"; do wait_port "$port"; done
if [ "${OBSERVE:-0}" = 1 ]; then
    wait_port "$ops_port"
    # Rendering the exposition is part of what metrics cost the gateway.
    ( while :; do curl -s -o /dev/null "http://127.0.0.1:$ops_port/metrics"; sleep 1; done ) &
    pids+=($!)
    echo "metrics and access log on: the full pipeline's ops listener is scraped every second" >&2
fi

declare -A server_of=(
    [direct]=$(master_of "$upstream_port") [nginx]=$(master_of "$nginx_port") [haproxy]=$(master_of "$haproxy_port")
    [proxy-only]=$(master_of "$proxy_port") [full]=$(master_of "$full_port") [full-cold]=$(master_of "$full_port")
)
redis_pid=$(listener_pid "$redis_port")

wrk_script "$work/reused.tokens" 0 > "$work/reused.lua"
wrk_script "$work/cold.tokens" 0 > "$work/cold.lua"

failed=0
declare -A rps p50 p99 cpu cpu_redis requests cpu_backend preempted
# Times the kernel took the CPU from a running thread of these processes (summed over every
# thread): on the shared core, mostly the backend or Redis woken by the server's own write.
involuntary_switches() {
    local total=0 pid
    for pid in "$@"; do
        total=$((total + $(cat /proc/"$pid"/task/*/status 2>/dev/null | awk '$1 == "nonvoluntary_ctxt_switches:" { s += $2 } END { print s + 0 }')))
    done
    echo "$total"
}
backend_pids=$(server_pids "${server_of[direct]}")
run() {  # $1 name, $2 port, $3 lua
    local name=$1 port=$2 script=$3
    local pids_of_server; pids_of_server=$(server_pids "${server_of[$name]}")
    local before; before=$(cpu_ticks $pids_of_server)
    local redis_before; redis_before=$(cpu_ticks "$redis_pid")
    local backend_before; backend_before=$(cpu_ticks $backend_pids)
    local switches_before; switches_before=$(involuntary_switches $pids_of_server)
    local line
    line=$(taskset -c 1 wrk -t1 -c"$connections" -d"${duration}s" --timeout 5s -s "$script" "http://127.0.0.1:$port/v1/ledger" | grep RESULT || true)
    local after; after=$(cpu_ticks $pids_of_server)
    local redis_after; redis_after=$(cpu_ticks "$redis_pid")
    local backend_after; backend_after=$(cpu_ticks $backend_pids)
    local switches_after; switches_after=$(involuntary_switches $pids_of_server)
    read -r _ rps[$name] non2xx socket_errors requests[$name] p50[$name] p99[$name] <<<"$line"
    cpu[$name]=$(python3 -c "print('%.1f' % (($after - $before) * 1e6 / $ticks_per_second / max(1, ${requests[$name]})))")
    cpu_backend[$name]=$(python3 -c "print('%.1f' % (($backend_after - $backend_before) * 1e6 / $ticks_per_second / max(1, ${requests[$name]})))")
    preempted[$name]=$(python3 -c "print('%.2f' % (($switches_after - $switches_before) / max(1, ${requests[$name]})))")
    cpu_redis[$name]=$(python3 -c "print('%.1f' % (($redis_after - $redis_before) * 1e6 / $ticks_per_second / max(1, ${requests[$name]})))")
    if [ "$non2xx" != 0 ] || [ "$socket_errors" != 0 ]; then
        echo "run $name: $non2xx non-2xx answers, $socket_errors socket errors" >&2
        failed=1
    fi
}

echo "running: ${duration} s per target, $connections connections, wrk on core 1, servers on core 0" >&2
# A short warm-up of every target (connection pools, token caches of the reused set).
for port in "$upstream_port" "$nginx_port" "$haproxy_port" "$proxy_port" "$full_port"; do
    taskset -c 1 wrk -t1 -c"$connections" -d2s -s "$work/reused.lua" "http://127.0.0.1:$port/v1/ledger" >/dev/null
done
run direct "$upstream_port" "$work/reused.lua"
run nginx "$nginx_port" "$work/reused.lua"
run haproxy "$haproxy_port" "$work/reused.lua"
run proxy-only "$proxy_port" "$work/reused.lua"
run full "$full_port" "$work/reused.lua"
run full-cold "$full_port" "$work/cold.lua"
if (( ${requests[full-cold]} > cold_tokens )); then
    echo "note: the cold run sent ${requests[full-cold]} requests for $cold_tokens tokens; raise COLD_TOKENS for a fully cold run" >&2
fi

printf '\n%-34s %10s %8s %8s %10s %8s %8s %8s %8s\n' "target" "req/s" "p50 ms" "p99 ms" "CPU µs/req" "+redis" "rps/HAP" "rps/ngx" "CPU/HAP"
for name in direct nginx haproxy proxy-only full full-cold; do
    case $name in
        direct) label="backend direct (nginx upstream)" ;;
        nginx) label="nginx reverse proxy" ;;
        haproxy) label="HAProxy jwt_verify + stick table" ;;
        proxy-only) label="gateway proxy-only" ;;
        full) label="gateway full, reused tokens" ;;
        full-cold) label="gateway full, cold tokens" ;;
    esac
    printf '%-34s %10s %8s %8s %10s %8s %8s %8s %8s\n' "$label" "${rps[$name]}" "${p50[$name]}" "${p99[$name]}" "${cpu[$name]}" \
        "$([ "${name#full}" != "$name" ] && echo "${cpu_redis[$name]}" || echo -)" \
        "$(ratio "${rps[$name]}" "${rps[haproxy]}")" "$(ratio "${rps[$name]}" "${rps[nginx]}")" "$(ratio "${cpu[$name]}" "${cpu[haproxy]}")"
done
echo
# Behind each proxy the same backend does the same work per request; what it spends shows how
# the proxy hands requests to it (one wake-up per request, or several requests per wake-up), and
# a server preempted about once per request is paying for a switch to the backend each time.
echo "the backend's CPU µs per request behind each target, and the target's involuntary switches per request:"
for name in direct nginx haproxy proxy-only full full-cold; do
    printf '  %-12s backend %6s µs/req   preempted %5s /req\n' "$name" "${cpu_backend[$name]}" "${preempted[$name]}"
done
echo
echo "targets: proxy-only/nginx req/s $(ratio "${rps[proxy-only]}" "${rps[nginx]}") (≥ 0.90), CPU $(ratio "${cpu[proxy-only]}" "${cpu[nginx]}") (≤ 1.10);" \
    "full/HAProxy req/s $(ratio "${rps[full]}" "${rps[haproxy]}") (≥ 1.00), CPU $(ratio "${cpu[full]}" "${cpu[haproxy]}") (≤ 1.00);" \
    "cold CPU/HAProxy $(ratio "${cpu[full-cold]}" "${cpu[haproxy]}") (≤ 1.50)"

# Gateway-added latency at half the full pipeline's maximum: the same paced load against the
# backend directly and through the full pipeline; wrk's delay() paces each connection.
half=$(python3 -c "print(int(${rps[full]} / 2))")
paced_connections=8
delay_ms=$(python3 -c "print('%.3f' % (1000.0 * $paced_connections / max(1, $half)))")
wrk_script "$work/reused.tokens" "$delay_ms" > "$work/paced.lua"
declare -A paced_rps paced_p99
for target in direct:"$upstream_port" full:"$full_port"; do
    name=${target%%:*}; port=${target##*:}
    line=$(taskset -c 1 wrk -t1 -c"$paced_connections" -d"${duration}s" --timeout 5s -s "$work/paced.lua" "http://127.0.0.1:$port/v1/ledger" | grep RESULT || true)
    read -r _ paced_rps[$name] non2xx socket_errors _ _ paced_p99[$name] <<<"$line"
    if [ "$non2xx" != 0 ] || [ "$socket_errors" != 0 ]; then echo "paced run $name: errors" >&2; failed=1; fi
done
echo "at about half the full pipeline's maximum (target $half req/s; achieved direct ${paced_rps[direct]}, gateway ${paced_rps[full]}):" \
    "p99 direct ${paced_p99[direct]} ms, through the full pipeline ${paced_p99[full]} ms," \
    "gateway-added $(python3 -c "print('%.3f' % (${paced_p99[full]} - ${paced_p99[direct]}))") ms (target < 1 ms)"

if [ "$soak" != 0 ]; then
    gateway_pid=${server_of[full]}
    rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$gateway_pid/status"; }
    taskset -c 1 wrk -t1 -c"$connections" -d"${soak}s" --timeout 5s -s "$work/reused.lua" "http://127.0.0.1:$full_port/v1/ledger" > "$work/soak.txt" &
    soak_pid=$!; pids+=($soak_pid)
    samples=()
    for _ in $(seq 1 $((soak / 10))); do sleep 10; samples+=("$(rss)"); done
    wait "$soak_pid" || true
    read -r _ soak_rps soak_non2xx soak_errors _ _ _ <<<"$(grep RESULT "$work/soak.txt")"
    echo "soak ${soak} s at ${soak_rps} req/s: gateway RSS KiB every 10 s: ${samples[*]}"
    python3 -c "
s=[int(x) for x in '${samples[*]}'.split()]
print('RSS first %d KiB, last %d KiB, max %d KiB, last/first %.2f' % (s[0], s[-1], max(s), s[-1]/s[0]))"
    if [ "$soak_non2xx" != 0 ] || [ "$soak_errors" != 0 ]; then echo "soak: errors" >&2; failed=1; fi
fi
exit "$failed"
