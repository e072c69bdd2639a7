#!/usr/bin/env bash
# What TLS to a cell costs the gateway: the release build, proxy-only (no tenant tree), one event
# loop, against one nginx upstream that serves the same small JSON body three ways — plain HTTP,
# HTTPS, and HTTPS requiring a client certificate (mutual TLS). The runs alternate plain, tls,
# mtls, plain, … so drift on a noisy machine hits all alike.
#
#   bench/cell-tls.sh [ROUNDS] [SECONDS]          (default 3 rounds of 10 s)
#
# Environment: CONNECTIONS (wrk's, default 32), KEEP (=1 keeps the work directory).
# Certificates are made here with openssl (an EC P-256 CA, server and client certificates).
# The gateway pools upstream connections with keep-alive, so a handshake is paid once per pooled
# connection: the runs count the upstream connections nginx accepted to show it. Prints req/s,
# p99, gateway CPU µs per request and upstream connections of every run, then the medians.
# Exits non-zero if a run had errors or non-2xx answers. Every process started here is stopped
# by PID on exit (bench/lib.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"; duration="${2:-10}"
connections="${CONNECTIONS:-32}"
export PATH="$PATH:/usr/sbin"
for tool in wrk nginx openssl taskset python3; do
    command -v "$tool" >/dev/null || { echo "missing: $tool (apt-get install wrk nginx-light openssl util-linux python3)" >&2; exit 1; }
done

echo "building the gateway (release)..." >&2
swift build -c release -Xswiftc -enforce-exclusivity=unchecked --product erp-gateway >/dev/null
bin="$(swift build -c release --show-bin-path)"
source bench/lib.sh

# --- certificates ------------------------------------------------------------------------------
pki="$work/tls"; mkdir -p "$pki"
ec() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
ec "$pki/ca.key"
openssl req -x509 -new -key "$pki/ca.key" -subj "/CN=bench cells CA" -days 2 -out "$pki/ca.pem" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null
issue() {  # NAME SUBJECT EXTENSIONS
    ec "$pki/$1.key"
    openssl req -new -key "$pki/$1.key" -subj "/CN=$2" -out "$pki/$1.csr" 2>/dev/null
    printf '%s\n' "$3" > "$pki/$1.ext"
    openssl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.pem" -CAkey "$pki/ca.key" -CAcreateserial -days 2 \
        -extfile "$pki/$1.ext" -out "$pki/$1.pem" 2>/dev/null
}
issue server bench.cells.test "subjectAltName=DNS:bench.cells.test
extendedKeyUsage=serverAuth"
issue gateway bench-gateway "extendedKeyUsage=clientAuth"

# --- servers -----------------------------------------------------------------------------------
plain_port=$(free_port); tls_port=$(free_port); mtls_port=$(free_port)
body="location / { default_type application/json; return 200 '{\"ok\":true,\"service\":\"erp\"}'; }"
tls="ssl_certificate $pki/server.pem; ssl_certificate_key $pki/server.key; ssl_protocols TLSv1.2 TLSv1.3;"
nginx_config upstream "
    server { listen 127.0.0.1:$plain_port; $body }
    server { listen 127.0.0.1:$tls_port ssl; $tls $body }
    server { listen 127.0.0.1:$mtls_port ssl; $tls ssl_verify_client on; ssl_client_certificate $pki/ca.pem; $body }"
taskset -c 0 nginx -p "$work" -e "$work/upstream-error.log" -c "$work/upstream.conf" >/dev/null 2>&1 &
pids+=($!)
for port in "$plain_port" "$tls_port" "$mtls_port"; do wait_port "$port"; done
upstream_pid=$(pgrep -P "${pids[0]}" | head -1)   # nginx's one worker

gateway_port=$(free_port)
settings() {  # ENDPOINT [TLS-BLOCK]
    cat <<SETTINGS
listener: { address: 127.0.0.1, port: $gateway_port, eventLoops: 1 }
upstreamPool: { maxConnectionsPerEndpoint: 256, idleTimeout: 60s }
cells:
  - id: bench
    kind: dedicated
    region: bench
    endpoints: [$1]
${2:+    tls: $2}
defaultCell: bench
SETTINGS
}
settings "127.0.0.1:$plain_port" > "$work/gateway-plain.yaml"
settings "https://127.0.0.1:$tls_port" "{ caBundle: $pki/ca.pem, serverName: bench.cells.test }" > "$work/gateway-tls.yaml"
settings "https://127.0.0.1:$mtls_port" \
    "{ caBundle: $pki/ca.pem, serverName: bench.cells.test, clientCertificate: $pki/gateway.pem, clientKey: $pki/gateway.key }" \
    > "$work/gateway-mtls.yaml"
for variant in plain tls mtls; do "$bin/erp-gateway" check --config "$work/gateway-$variant.yaml" >/dev/null; done

# lib.sh's wrk script with one token: proxy-only, the gateway forwards it unread.
echo "bench-token" > "$work/tokens"
wrk_script "$work/tokens" 0 > "$work/load.lua"

ticks() { local s; s=$(cat "/proc/$1/stat"); set -- ${s##*) }; echo $(( ${12} + ${13} )); }
# Connections nginx accepted so far (its stub counter is not built into nginx-light): the
# established and closed sockets are gone by the time we look, so count accepts from /proc.
accepted() { ss -tnH state established "( sport = :$1 )" | wc -l; }
declare -A results
echo "running: $rounds rounds of ${duration} s per variant, $connections connections, wrk on core 1, gateway and nginx on core 0" >&2
for round in $(seq 1 "$rounds"); do
    for variant in plain tls mtls; do
        port_var="${variant}_port"
        taskset -c 0 "$bin/erp-gateway" serve --config "$work/gateway-$variant.yaml" --log-level warning --watch-interval-ms 0 > "$work/gateway-$variant.log" 2>&1 &
        gateway_pid=$!; pids+=($gateway_pid)
        wait_port "$gateway_port"
        taskset -c 1 wrk -t1 -c"$connections" -d2s -s "$work/load.lua" "http://127.0.0.1:$gateway_port/v1/ledger" >/dev/null
        before=$(ticks "$gateway_pid"); upstream_before=$(ticks "$upstream_pid")
        line=$(taskset -c 1 wrk -t1 -c"$connections" -d"${duration}s" -s "$work/load.lua" "http://127.0.0.1:$gateway_port/v1/ledger" | grep RESULT)
        after=$(ticks "$gateway_pid"); upstream_after=$(ticks "$upstream_pid")
        upstream_connections=$(accepted "${!port_var}")
        read -r _ rps non2xx errors requests _ p99 <<<"$line"
        cpu=$(python3 -c "print('%.1f' % (($after - $before) * 1e6 / $(getconf CLK_TCK) / max(1, $requests)))")
        upstream_cpu=$(python3 -c "print('%.1f' % (($upstream_after - $upstream_before) * 1e6 / $(getconf CLK_TCK) / max(1, $requests)))")
        echo "round $round $variant: $rps req/s, p99 $p99 ms, gateway $cpu µs CPU/request, upstream $upstream_cpu µs, $upstream_connections upstream connections open ($non2xx non-2xx, $errors errors)"
        results[$variant]+="$rps:$cpu:$p99:$upstream_cpu "
        kill -9 "$gateway_pid"; wait "$gateway_pid" 2>/dev/null || true
        [ "$non2xx" = 0 ] && [ "$errors" = 0 ] || { echo "run had errors" >&2; tail -5 "$work/gateway-$variant.log" >&2; exit 1; }
    done
done
python3 - "${results[plain]}" "${results[tls]}" "${results[mtls]}" <<'PY'
import statistics, sys
medians = {}
for name, runs in zip(["plain", "tls", "mtls"], sys.argv[1:]):
    rows = [tuple(map(float, run.split(":"))) for run in runs.split()]
    medians[name] = [statistics.median(r[i] for r in rows) for i in range(4)]
print("\n%-8s %10s %8s %16s %16s" % ("cell", "req/s", "p99 ms", "gateway µs/req", "upstream µs/req"))
for name, (rps, cpu, p99, upstream) in medians.items():
    print("%-8s %10.0f %8.3f %16.1f %16.1f" % (name, rps, p99, cpu, upstream))
for name in ("tls", "mtls"):
    print("%s / plain: req/s %.2f, gateway CPU %.2f" % (name, medians[name][0] / medians["plain"][0], medians[name][1] / medians["plain"][1]))
PY
