# Shared by the bench/ scripts that run the gateway against an nginx upstream: the work
# directory and process cleanup, ports, each server's processes and their CPU time from /proc,
# the issuer key and tokens, the benchmark tenant tree, gateway settings and the wrk script.
# Source it from the repository root; set `bin` before minting tokens.

work="$(mktemp -d)"
pids=()
cleanup() {
    # A polite stop first: an nginx master stops its workers on SIGTERM, whereas a worker killed
    # under a live master is replaced by a new one, which then outlived the master's SIGKILL.
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    sleep 0.5
    # Then children (a worker outlives a killed master), then the processes started here.
    for pid in "${pids[@]}"; do pkill -9 -P "$pid" 2>/dev/null || true; kill -9 "$pid" 2>/dev/null || true; done
    if [ "${KEEP:-0}" = 1 ]; then echo "work directory kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

# require_tools TOOL...: stops with the first one missing named.
require_tools() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || { echo "missing: $tool (bench/compare.sh installs the servers)" >&2; exit 1; }
    done
}

start() {  # $1 log name, rest: command; pinned to core 0, stopped on exit
    taskset -c 0 "${@:2}" > "$work/$1.log" 2>&1 &
    pids+=($!)
}
ratio() { python3 -c "print('%.2f' % ($1 / $2) if $2 else 'n/a')"; }  # $1 / $2, two decimals
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_port() { for _ in $(seq 1 600); do (echo > /dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; exit 1; }

# Every process of a server: the started one and its children (nginx's worker).
server_pids() { local pid=$1; echo "$pid"; pgrep -P "$pid" || true; }
listener_pid() { ss -ltnpH "sport = :$1" | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1; }
user_system_ticks() {  # summed utime and stime of the given pids, in clock ticks: "USER SYSTEM"
    local user=0 system=0 pid stat
    for pid in "$@"; do
        stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        set -- ${stat##*) }
        user=$((user + ${12})); system=$((system + ${13}))
    done
    echo "$user $system"
}
cpu_ticks() {  # summed utime+stime of the given pids, in clock ticks
    local user system
    read -r user system <<<"$(user_system_ticks "$@")"
    echo $((user + system))
}
ticks_per_second=$(getconf CLK_TCK)
rss_kib() {  # summed resident memory of the given pids, in KiB
    local total=0
    for pid in "$@"; do total=$((total + $(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0))); done
    echo "$total"
}

master_of() {  # the started process behind a listening port (nginx: its master)
    local pid; pid=$(listener_pid "$1")
    local parent; parent=$(awk '{print $4}' "/proc/$pid/stat")
    if [ "$(cat "/proc/$parent/comm" 2>/dev/null)" = "$(cat "/proc/$pid/comm")" ]; then echo "$parent"; else echo "$pid"; fi
}

issuer=https://id.bench.test
customers=$(seq -f 'c%03g' 0 99)

# make_issuer_key: the RS256 key pair of the benchmark issuer (issuer.pem, issuer.public.pem).
make_issuer_key() {
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/issuer.pem" 2>/dev/null
    openssl pkey -in "$work/issuer.pem" -pubout -out "$work/issuer.public.pem"
}

# mint_tokens FILE PER_CUSTOMER: RS256 tokens for each of the 100 customers, shuffled so that
# consecutive requests come from different tenants. Two minting processes at a time.
mint_tokens() {
    local file=$1 count=$2
    mkdir -p "$file.parts"
    for customer in $customers; do
        # One file per process: concurrent appends to one file would interleave partial lines.
        "$bin/erp-gateway" token mint --issuer "$issuer" --key "$work/issuer.pem" --kid bench-1 --tenant "$customer" --ttl 3600 --count "$count" > "$file.parts/$customer" &
        if (( $(jobs -r | wc -l) >= 2 )); then wait -n; fi
    done
    wait
    # A seeded shuffle: the same order every run. (`shuf --random-source=<(yes)`, used before,
    # is not a shuffle: fed constant bytes it left runs of up to 108 tokens of one customer, and
    # 500 consecutive cold tokens named 49-87 customers instead of about 99. The full pipeline's
    # cold run then saw each customer's requests in floods and droughts, and its quota leases,
    # sized to each customer's recent rate, sent a third of the requests to Redis.)
    cat "$file.parts"/* | python3 -c 'import random, sys; lines = sys.stdin.readlines(); random.Random(7).shuffle(lines); sys.stdout.writelines(lines)' > "$file"
    rm -r "$file.parts"
}

# nginx_config NAME SERVER-BLOCKS: one worker, no access log, long keep-alive.
nginx_config() {
    cat > "$work/$1.conf" <<NGINX
worker_processes 1;
daemon off;
pid $work/$1.pid;
error_log $work/$1-error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 120s;
    client_body_temp_path $work/$1-body;
    proxy_temp_path $work/$1-proxy;
    $2
}
NGINX
}

# upstream_config PORT: the fast backend, a small JSON body with keep-alive.
upstream_config() {
    nginx_config upstream "server { listen 127.0.0.1:$1; location / { default_type application/json; return 200 '{\"ok\":true,\"service\":\"erp\"}'; } }"
}

# One OEM with the RS256 issuer, 10 partners, 100 customers; limits at all three levels far
# above any load here, so every request is checked and charged at three levels.
write_tenant_tree() {
    {
        cat <<TREE
catalog:
  features: [ledger]
  packages: { basic: [ledger] }
  routes: [{ path: /v1/ledger, feature: ledger }]
tenants:
  - id: bench-oem
    kind: oem
    placement: { tier: pooled, region: bench }
    limits: { rate: 900000, burst: 900000, perDay: 1000000000000, perMonth: 1000000000000 }
    issuers:
      - iss: $issuer
        audience: erp-gateway
        keys: [{ kid: bench-1, alg: RS256, pemFile: issuer.public.pem }]
TREE
        for partner in $(seq -f 'p%02g' 0 9); do
            echo "  - { id: $partner, kind: partner, parent: bench-oem, limits: { rate: 500000, burst: 500000, perDay: 1000000000000 } }"
        done
        local index=0
        for customer in $customers; do
            echo "  - { id: $customer, kind: customer, parent: p$(printf %02d $((index / 10))), package: basic, limits: { rate: 100000, burst: 100000, perDay: 1000000000000 } }"
            index=$((index + 1))
        done
    } > "$work/tenants.yaml"
}

# quota_admissions OPS-PORT SOURCE: the requests a gateway's quotas admitted so far from SOURCE —
# `lease` (from a lease, no round trip) or `store` (the request waited for Redis) — summed over
# `erp_gateway_quota_decisions_total`'s series; 0 when nothing listens on OPS-PORT.
quota_admissions() {
    { curl -s "http://127.0.0.1:$1/metrics" 2>/dev/null || true; } |
        awk -v source="source=\"$2\"" 'index($0, "erp_gateway_quota_decisions_total{") == 1 && index($0, source) { total += $NF } END { print total + 0 }'
}

# gateway_settings PORT full|proxy UPSTREAM-PORT REDIS-PORT: one event loop; `full` adds the
# tenant tree, RS256 issuer, token cache and Redis quotas (leases as LEASE_REFRESH says, else
# the default), and with OBSERVE=1 an ops listener on $ops_port (metrics on) and the access log.
# H2C=1 turns on HTTP/2 with prior knowledge on the listener (HTTP/1.1 stays on).
gateway_settings() {
    cat <<SETTINGS
listener: { address: 127.0.0.1, port: $1, eventLoops: 1$( [ "${H2C:-0}" = 1 ] && echo ", http2: { cleartext: true }" ) }
upstreamPool: { maxConnectionsPerEndpoint: 256, idleTimeout: 60s }
cells:
  - { id: bench, kind: pooled, region: bench, endpoints: [127.0.0.1:$3] }
defaultCell: bench
SETTINGS
    if [ "$2" = full ]; then
        cat <<SETTINGS
tenantTree: tenants.yaml
authentication: { tokenCacheEntries: 10000 }
upstreamContext:
  signingKeys: [{ id: ctx, secret: $(head -c 32 /dev/urandom | base64 -w0) }]
  activeKey: ctx
redis: { url: "redis://127.0.0.1:$4/0", keyPrefix: bench }
SETTINGS
        # LEASE_REFRESH: quotas.leases.refreshInterval (e.g. 500ms; 0ms = a round trip per request).
        if [ -n "${LEASE_REFRESH:-}" ]; then echo "quotas: { leases: { refreshInterval: $LEASE_REFRESH } }"; fi
        # OBSERVE=1: an ops listener on $ops_port, and with it every metric kept, and the access
        # log of every request (written to the gateway's log file, as in production).
        if [ "${OBSERVE:-0}" = 1 ]; then
            echo "ops: { address: 127.0.0.1, port: $ops_port }"
            echo "accessLog: { enabled: true }"
        fi
    fi
}

# wrk_script TOKEN-FILE DELAY-MS [FIRST-LINE]: rotates the tokens of a file from FIRST-LINE
# (default 1; 0 ms = as fast as possible, else each connection pauses that long between
# requests); prints one RESULT line: req/s, non-2xx, socket errors, requests, p50 ms, p99 ms.
wrk_script() {
    cat <<LUA
local tokens = {}
for line in io.lines("$1") do tokens[#tokens + 1] = line end
local index = ${3:-1} - 1
request = function()
  index = index + 1
  if index > #tokens then index = 1 end
  return wrk.format("GET", "/v1/ledger", { ["Authorization"] = "Bearer " .. tokens[index] })
end
$( [ "$2" != 0 ] && echo "delay = function() return $2 end" )
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT %.1f %d %d %d %.3f %.3f\n", summary.requests / (summary.duration / 1e6),
    summary.errors.status, errors, summary.requests, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
LUA
}

# build_proxy_targets: the release binaries of the gateway and `nio-proxy-floor`; sets bin.
build_proxy_targets() {
    export PATH="$PATH:/usr/sbin"
    require_tools perf wrk nginx taskset python3
    echo "building (release)..." >&2
    swift build -c release -Xswiftc -enforce-exclusivity=unchecked --product erp-gateway >/dev/null
    swift build -c release -Xswiftc -enforce-exclusivity=unchecked --product nio-proxy-floor >/dev/null
    bin="$(swift build -c release --show-bin-path)"
}

# start_proxy_targets: starts, each pinned to core 0, the nginx upstream and in front of it nginx
# as a reverse proxy, the gateway proxy-only (one event loop), and `nio-proxy-floor` relaying
# bytes and with SwiftNIO's HTTP/1 codecs; waits for every port. Sets upstream_port, nginx_port,
# proxy_port, floor_http_port and floor_bytes_port. After `mint_tokens`, whose last `wait` would
# wait for these servers too.
start_proxy_targets() {
    upstream_port=$(free_port); nginx_port=$(free_port); proxy_port=$(free_port); floor_http_port=$(free_port); floor_bytes_port=$(free_port)
    upstream_config "$upstream_port"
    nginx_config proxy "upstream erp { server 127.0.0.1:$upstream_port; keepalive 64; }
    server { listen 127.0.0.1:$nginx_port; location / { proxy_pass http://erp; proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_set_header Host \$host; proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for; } }"
    gateway_settings "$proxy_port" proxy "$upstream_port" 0 > "$work/gateway-proxy.yaml"
    start upstream nginx -p "$work" -e "$work/upstream-error.log" -c "$work/upstream.conf"
    start nginx nginx -p "$work" -e "$work/proxy-error.log" -c "$work/proxy.conf"
    start gateway-proxy "$bin/erp-gateway" serve --config "$work/gateway-proxy.yaml" --log-level error --watch-interval-ms 0
    start floor-http "$bin/nio-proxy-floor" "$floor_http_port" "$upstream_port"
    start floor-bytes "$bin/nio-proxy-floor" "$floor_bytes_port" "$upstream_port" --bytes
    local port
    for port in "$upstream_port" "$nginx_port" "$proxy_port" "$floor_http_port" "$floor_bytes_port"; do wait_port "$port"; done
}
