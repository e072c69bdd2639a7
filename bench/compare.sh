#!/usr/bin/env bash
# erp-gateway side by side with nginx and HAProxy, on loopback, in one run.
#
#   bench/compare.sh [SECONDS]          (default 10 s per run)
#
# The SECONDS of each target are measured in ROUNDS (default 5) interleaved rounds: round 1 of
# every target, then round 2 of every target, and so on, so that a spell of load on the host
# behind this machine falls on every target alike instead of on whichever ran then (single
# back-to-back runs moved the gateway's figures 2-2.6x between runs, the peers' 15-45 %). CPU
# per request sums ticks and requests over the rounds; req/s is the mean of the rounds; p50 and
# p99 are the median of the rounds'. Each round follows one unmeasured second of the same load.
#
# Environment: CONNECTIONS (default 32), ROUNDS (default 5), SOAK (seconds of an extra full-pipeline run sampling
# the gateway's memory; default 0 = skip), COLD_TOKENS (default 11,000 per second of the run, more than
# the cold run can send here, so that no token repeats), KEEP (=1 keeps the work
# directory with every configuration and log), LEASE_REFRESH (quotas.leases.refreshInterval of
# the full pipeline, e.g. 500ms or 0ms; default: the gateway's default), OBSERVE (=1 gives the
# full pipeline an ops listener, so every metric is kept, scraped once a second as Prometheus
# would, and the access log of every request; compare its CPU µs/request with a run without),
# BIN_DIR (a directory holding another build's `erp-gateway` and `nio-proxy-floor`, measured
# instead of this checkout's release build).
#
# Starts, each pinned to core 0: Redis, an nginx upstream answering a small JSON body with
# keep-alive, nginx as a plain reverse proxy, HAProxy with jwt_verify (RS256) and a per-tenant
# stick-table rate limit set far above the load, the gateway (release build, one event
# loop) three times: proxy-only (no tenant tree), full pipeline (RS256 tokens, 3-level tree,
# Redis quotas at every level) and the same full pipeline for the cold-token run, and
# `nio-proxy-floor` twice: SwiftNIO's HTTP/1 codecs relaying requests with none of the
# gateway's own work, and SwiftNIO relaying bytes with no HTTP codec (the floors under the
# gateway's proxy-only figure: what the codecs cost, what the channels cost). wrk runs on
# core 1, one thread, the same connections and duration for every target; a Lua script rotates 1,000 tokens of 100 customers (the "cold" run
# sends tokens never seen before). Prints req/s, p50, p99, server CPU µs per request (from
# /proc of every server process) and ratios to HAProxy and nginx, then the gateway-added p99
# at half of the full pipeline's maximum, and for each target the backend's CPU µs per request
# behind it and the target's involuntary context switches per request. Exits non-zero if a run had errors or non-2xx
# answers. Every process started here is stopped by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-10}"
connections="${CONNECTIONS:-32}"
rounds="${ROUNDS:-5}"
(( rounds > duration )) && rounds=$duration
(( rounds < 1 )) && rounds=1
round_seconds=$(( duration / rounds ))
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

# BIN_DIR: a directory holding another build's `erp-gateway` and `nio-proxy-floor` to measure
# instead of building this checkout (e.g. the build before a change, copied aside).
if [ -n "${BIN_DIR:-}" ]; then
    bin="$BIN_DIR"
else
    echo "building the gateway (release)..." >&2
    swift build -c release -Xswiftc -enforce-exclusivity=unchecked --product erp-gateway >/dev/null
    swift build -c release -Xswiftc -enforce-exclusivity=unchecked --product nio-proxy-floor >/dev/null
    bin="$(swift build -c release --show-bin-path)"
fi

source bench/lib.sh
make_issuer_key

redis_port=$(free_port); upstream_port=$(free_port); nginx_port=$(free_port); haproxy_port=$(free_port)
proxy_port=$(free_port); full_port=$(free_port); cold_port=$(free_port); ops_port=$(free_port); cold_ops_port=$(free_port); floor_http_port=$(free_port); floor_bytes_port=$(free_port)

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
# The cold tokens go to a process of their own: with rounds interleaved, a cold round's token
# cache churn and allocations would otherwise be in the heap and caches the next reused-token
# round of the same process starts from.
(ops_port=$cold_ops_port; gateway_settings "$cold_port" full "$upstream_port" "$redis_port") > "$work/gateway-cold.yaml"

start redis redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no
start upstream nginx -p "$work" -e "$work/upstream-error.log" -c "$work/upstream.conf"
start nginx nginx -p "$work" -e "$work/proxy-error.log" -c "$work/proxy.conf"
start haproxy haproxy -db -f "$work/haproxy.cfg"
start gateway-proxy "$bin/erp-gateway" serve --config "$work/gateway-proxy.yaml" --log-level error --watch-interval-ms 0
start gateway-full "$bin/erp-gateway" serve --config "$work/gateway-full.yaml" --log-level error --watch-interval-ms 0
start gateway-cold "$bin/erp-gateway" serve --config "$work/gateway-cold.yaml" --log-level error --watch-interval-ms 0
start floor-http "$bin/nio-proxy-floor" "$floor_http_port" "$upstream_port"
start floor-bytes "$bin/nio-proxy-floor" "$floor_bytes_port" "$upstream_port" --bytes
for port in "$redis_port" "$upstream_port" "$nginx_port" "$haproxy_port" "$proxy_port" "$full_port" "$cold_port" "$floor_http_port" "$floor_bytes_port"; do wait_port "$port"; done
if [ "${OBSERVE:-0}" = 1 ]; then
    wait_port "$ops_port"
    # Rendering the exposition is part of what metrics cost the gateway.
    ( while :; do curl -s -o /dev/null "http://127.0.0.1:$ops_port/metrics"; sleep 1; done ) &
    pids+=($!)
    echo "metrics and access log on: the full pipeline's ops listener is scraped every second" >&2
fi

declare -A server_of=(
    [direct]=$(master_of "$upstream_port") [nginx]=$(master_of "$nginx_port") [haproxy]=$(master_of "$haproxy_port")
    [proxy-only]=$(master_of "$proxy_port") [full]=$(master_of "$full_port") [full-cold]=$(master_of "$cold_port")
    [floor-http]=$(master_of "$floor_http_port") [floor-bytes]=$(master_of "$floor_bytes_port")
)
redis_pid=$(listener_pid "$redis_port")

wrk_script "$work/reused.tokens" 0 > "$work/reused.lua"
# Each cold round starts at its own share of the cold tokens: no token is sent twice.
for round in $(seq 1 "$rounds"); do
    wrk_script "$work/cold.tokens" 0 $(( (round - 1) * cold_tokens / rounds + 1 )) > "$work/cold-$round.lua"
done

failed=0
declare -A rps p50 p99 cpu cpu_user cpu_redis requests cpu_backend preempted
# Sums over the rounds, and each round's figures (space-separated), per target.
declare -A ticks user_ticks_of redis_ticks backend_ticks switches round_rps round_p50 round_p99
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
run() {  # $1 name, $2 port, $3 lua: one round of one target, added to its sums
    local name=$1 port=$2 script=$3
    # One unmeasured second first: each target is idle while the others run, and what adapts to
    # the load it sees (connection pools, the full pipeline's quota leases, sized to each
    # customer's rate) should be measured settled, as in one long run, not ramping up.
    taskset -c 1 wrk -t1 -c"$connections" -d1s -s "$work/reused.lua" "http://127.0.0.1:$port/v1/ledger" >/dev/null
    local pids_of_server; pids_of_server=$(server_pids "${server_of[$name]}")
    local user_before system_before; read -r user_before system_before <<<"$(user_system_ticks $pids_of_server)"
    local redis_before; redis_before=$(cpu_ticks "$redis_pid")
    local backend_before; backend_before=$(cpu_ticks $backend_pids)
    local switches_before; switches_before=$(involuntary_switches $pids_of_server)
    local line
    line=$(taskset -c 1 wrk -t1 -c"$connections" -d"${round_seconds}s" --timeout 5s -s "$script" "http://127.0.0.1:$port/v1/ledger" | grep RESULT || true)
    local user_after system_after; read -r user_after system_after <<<"$(user_system_ticks $pids_of_server)"
    local redis_after; redis_after=$(cpu_ticks "$redis_pid")
    local backend_after; backend_after=$(cpu_ticks $backend_pids)
    local switches_after; switches_after=$(involuntary_switches $pids_of_server)
    local round_rps_value non2xx socket_errors round_requests round_p50_value round_p99_value
    read -r _ round_rps_value non2xx socket_errors round_requests round_p50_value round_p99_value <<<"$line"
    ticks[$name]=$(( ${ticks[$name]:-0} + user_after + system_after - user_before - system_before ))
    user_ticks_of[$name]=$(( ${user_ticks_of[$name]:-0} + user_after - user_before ))
    redis_ticks[$name]=$(( ${redis_ticks[$name]:-0} + redis_after - redis_before ))
    backend_ticks[$name]=$(( ${backend_ticks[$name]:-0} + backend_after - backend_before ))
    switches[$name]=$(( ${switches[$name]:-0} + switches_after - switches_before ))
    requests[$name]=$(( ${requests[$name]:-0} + ${round_requests:-0} ))
    round_rps[$name]="${round_rps[$name]:-} ${round_rps_value:-0}"
    round_p50[$name]="${round_p50[$name]:-} ${round_p50_value:-0}"
    round_p99[$name]="${round_p99[$name]:-} ${round_p99_value:-0}"
    if [ "${non2xx:-1}" != 0 ] || [ "${socket_errors:-1}" != 0 ]; then
        echo "run $name: ${non2xx:-?} non-2xx answers, ${socket_errors:-?} socket errors" >&2
        failed=1
    fi
}
median() { python3 -c "import statistics, sys; print('%.3f' % statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }
mean() { python3 -c "import statistics, sys; print('%.1f' % statistics.mean(float(x) for x in sys.argv[1:]))" "$@"; }
per_request() { python3 -c "print('%.1f' % ($1 * 1e6 / $ticks_per_second / max(1, $2)))"; }  # $1 ticks, $2 requests
summarize() {  # the figures of target $1 from its rounds
    local name=$1
    rps[$name]=$(mean ${round_rps[$name]})
    p50[$name]=$(median ${round_p50[$name]})
    p99[$name]=$(median ${round_p99[$name]})
    cpu[$name]=$(per_request "${ticks[$name]}" "${requests[$name]}")
    cpu_redis[$name]=$(per_request "${redis_ticks[$name]}" "${requests[$name]}")
    cpu_backend[$name]=$(per_request "${backend_ticks[$name]}" "${requests[$name]}")
    cpu_user[$name]=$(per_request "${user_ticks_of[$name]}" "${requests[$name]}")
    preempted[$name]=$(python3 -c "print('%.2f' % (${switches[$name]} / max(1, ${requests[$name]})))")
}

echo "running: ${duration} s per target in $rounds interleaved rounds of ${round_seconds} s, $connections connections, wrk on core 1, servers on core 0" >&2
# A short warm-up of every target (connection pools, token caches of the reused set).
for port in "$upstream_port" "$nginx_port" "$haproxy_port" "$proxy_port" "$full_port" "$cold_port" "$floor_http_port" "$floor_bytes_port"; do
    taskset -c 1 wrk -t1 -c"$connections" -d2s -s "$work/reused.lua" "http://127.0.0.1:$port/v1/ledger" >/dev/null
done
targets=(direct nginx haproxy proxy-only full full-cold floor-http floor-bytes)
for round in $(seq 1 "$rounds"); do
    run direct "$upstream_port" "$work/reused.lua"
    run nginx "$nginx_port" "$work/reused.lua"
    run haproxy "$haproxy_port" "$work/reused.lua"
    run proxy-only "$proxy_port" "$work/reused.lua"
    run full "$full_port" "$work/reused.lua"
    run full-cold "$cold_port" "$work/cold-$round.lua"
    run floor-http "$floor_http_port" "$work/reused.lua"
    run floor-bytes "$floor_bytes_port" "$work/reused.lua"
done
for name in "${targets[@]}"; do summarize "$name"; done
if (( ${requests[full-cold]} > cold_tokens )); then
    echo "note: the cold run sent ${requests[full-cold]} requests for $cold_tokens tokens; raise COLD_TOKENS for a fully cold run" >&2
fi

printf '\n%-34s %10s %8s %8s %10s %8s %8s %8s %8s\n' "target" "req/s" "p50 ms" "p99 ms" "CPU µs/req" "+redis" "rps/HAP" "rps/ngx" "CPU/HAP"
for name in "${targets[@]}"; do
    case $name in
        direct) label="backend direct (nginx upstream)" ;;
        nginx) label="nginx reverse proxy" ;;
        haproxy) label="HAProxy jwt_verify + stick table" ;;
        proxy-only) label="gateway proxy-only" ;;
        full) label="gateway full, reused tokens" ;;
        full-cold) label="gateway full, cold tokens" ;;
        floor-http) label="floor: NIO HTTP/1 codecs relaying" ;;
        floor-bytes) label="floor: NIO relaying bytes" ;;
    esac
    printf '%-34s %10s %8s %8s %10s %8s %8s %8s %8s\n' "$label" "${rps[$name]}" "${p50[$name]}" "${p99[$name]}" "${cpu[$name]}" \
        "$([ "${name#full}" != "$name" ] && echo "${cpu_redis[$name]}" || echo -)" \
        "$(ratio "${rps[$name]}" "${rps[haproxy]}")" "$(ratio "${rps[$name]}" "${rps[nginx]}")" "$(ratio "${cpu[$name]}" "${cpu[haproxy]}")"
done
echo
# Behind each proxy the same backend does the same work per request; what it spends shows how
# the proxy hands requests to it (one wake-up per request, or several requests per wake-up), and
# a server preempted about once per request is paying for a switch to the backend each time.
echo "each target's CPU µs per request outside the kernel (user) and in it (system), the backend's CPU µs per request behind it, and the target's involuntary switches per request:"
for name in "${targets[@]}"; do
    printf '  %-12s user %6s  system %6s   backend %6s µs/req   preempted %5s /req\n' "$name" "${cpu_user[$name]}" \
        "$(python3 -c "print('%.1f' % (${cpu[$name]} - ${cpu_user[$name]}))")" "${cpu_backend[$name]}" "${preempted[$name]}"
done
echo
echo "targets: proxy-only/nginx req/s $(ratio "${rps[proxy-only]}" "${rps[nginx]}") (aim ≥ 0.90), CPU $(ratio "${cpu[proxy-only]}" "${cpu[nginx]}") (≤ 1.50, aim 1.10);" \
    "full/HAProxy req/s $(ratio "${rps[full]}" "${rps[haproxy]}") (aim ≥ 1.00), CPU $(ratio "${cpu[full]}" "${cpu[haproxy]}") (≤ 1.50, aim 1.00)," \
    "with Redis $(python3 -c "print('%.2f' % ((${cpu[full]} + ${cpu_redis[full]}) / ${cpu[haproxy]}))") (≤ 1.50), Redis ${cpu_redis[full]} µs/req (< 3);" \
    "cold CPU/HAProxy $(ratio "${cpu[full-cold]}" "${cpu[haproxy]}") (≤ 2.00, aim 1.50)"
echo "floors: CPU per request ÷ nginx's: NIO HTTP/1 codecs relaying $(ratio "${cpu[floor-http]}" "${cpu[nginx]}"), NIO relaying bytes" \
    "$(ratio "${cpu[floor-bytes]}" "${cpu[nginx]}"); the gateway's proxy-only ÷ the codec floor $(ratio "${cpu[proxy-only]}" "${cpu[floor-http]}")"

# Gateway-added latency at half the full pipeline's maximum: the same paced load against the
# backend directly, through nginx, HAProxy and the gateway (proxy-only and the full pipeline);
# wrk's delay() paces each connection. wrk
# truncates delay()'s answer to whole milliseconds (a delay under 1 ms was no delay at all: the
# "paced" runs went at full speed once half the maximum passed 8,000 req/s), so the delay is a
# whole number of milliseconds, at least 1: 8 connections then ask at most 8,000 req/s, and
# each waits its delay after every response, so the rate achieved is below that.
half=$(python3 -c "print(int(${rps[full]} / 2))")
paced_connections=8
delay_ms=$(python3 -c "print(max(1, round(1000.0 * $paced_connections / max(1, $half))))")
half=$(python3 -c "print(min($half, 1000 * $paced_connections // $delay_ms))")
wrk_script "$work/reused.tokens" "$delay_ms" > "$work/paced.lua"
declare -A paced_rps paced_p99
for round in $(seq 1 "$rounds"); do
    for target in direct:"$upstream_port" nginx:"$nginx_port" haproxy:"$haproxy_port" proxy-only:"$proxy_port" full:"$full_port"; do
        name=${target%%:*}; port=${target##*:}
        line=$(taskset -c 1 wrk -t1 -c"$paced_connections" -d"${round_seconds}s" --timeout 5s -s "$work/paced.lua" "http://127.0.0.1:$port/v1/ledger" | grep RESULT || true)
        read -r _ round_rps_value non2xx socket_errors _ _ round_p99_value <<<"$line"
        paced_rps[$name]="${paced_rps[$name]:-} ${round_rps_value:-0}"
        paced_p99[$name]="${paced_p99[$name]:-} ${round_p99_value:-0}"
        if [ "${non2xx:-1}" != 0 ] || [ "${socket_errors:-1}" != 0 ]; then echo "paced run $name: errors" >&2; failed=1; fi
    done
done
# The added p99 is the median over the rounds of (gateway's p99 − direct p99 of the same round):
# each pair ran back to back, so a spell of host load falls on both.
# The peers and proxy-only go through the same pace, so what the host's scheduling adds to any
# proxy on this shared core shows beside what the gateway adds.
added_by() { python3 -c "
import statistics
d = [float(x) for x in '${paced_p99[direct]}'.split()]
g = [float(x) for x in '${paced_p99[$1]}'.split()]
print('%.3f' % statistics.median(b - a for a, b in zip(d, g)))"; }
added=$(added_by full)
echo "at about half the full pipeline's maximum (target $half req/s; achieved direct $(mean ${paced_rps[direct]}), gateway $(mean ${paced_rps[full]})):" \
    "p99 direct $(median ${paced_p99[direct]}) ms, through the full pipeline $(median ${paced_p99[full]}) ms (medians of $rounds rounds: ${paced_p99[direct]# } /${paced_p99[full]}),"  \
    "gateway-added $added ms (median of the rounds' differences; target < 1 ms)"
echo "added p99 at the same pace (median of the rounds' differences to direct): nginx $(added_by nginx) ms, HAProxy $(added_by haproxy) ms," \
    "gateway proxy-only $(added_by proxy-only) ms, full pipeline $added ms (p99 medians: nginx $(median ${paced_p99[nginx]}), HAProxy $(median ${paced_p99[haproxy]}), proxy-only $(median ${paced_p99[proxy-only]}))"

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
