#!/usr/bin/env bash
# HTTP/2 with prior knowledge (h2c): the gateway (proxy-only) beside nginx, on loopback, one run.
#
#   bench/http2.sh [SECONDS]          (default 10 s per run)
#
# Environment: CONNECTIONS (default 32), STREAMS (concurrent streams per connection, default
# 10), IDLE (idle HTTP/2 connections held for the memory figure, default 5000), KEEP (=1 keeps
# the work directory).
#
# Starts, each pinned to core 0: an nginx upstream answering a small JSON body with keep-alive
# (bench/lib.sh), nginx as a reverse proxy speaking h2c to clients (`listen … http2;`, nginx
# 1.22's spelling) and HTTP/1.1 keep-alive upstream, and the gateway (release build, one event
# loop, no tenant tree, `listener.http2.cleartext`). h2load runs on core 1, one thread, the same
# connections, streams and duration for both, first over HTTP/2 and then over HTTP/1.1 (--h1,
# the same tool, one request at a time per connection; nginx on a second, HTTP/1.1 listener).
# Prints req/s, mean and longest request time and
# server CPU µs per request (/proc of every server process). Then IDLE connections that have
# exchanged the preface and SETTINGS are opened to each server and held: resident memory added
# per idle HTTP/2 connection is (RSS with them − RSS before) / IDLE. Exits non-zero if a run had
# failed requests. Every process started here is stopped by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-10}"
connections="${CONNECTIONS:-32}"
streams="${STREAMS:-10}"
idle="${IDLE:-5000}"

export PATH="$PATH:/usr/sbin"
for tool in h2load nginx taskset python3 ss; do
    command -v "$tool" >/dev/null || { echo "missing: $tool (apt-get install nghttp2-client nginx-light util-linux iproute2)" >&2; exit 1; }
done

echo "building the gateway (release)..." >&2
swift build -c release -Xswiftc -enforce-exclusivity=unchecked --product erp-gateway >/dev/null
bin="$(swift build -c release --show-bin-path)"

source bench/lib.sh
upstream_port=$(free_port); nginx_port=$(free_port); nginx_h1_port=$(free_port); gateway_port=$(free_port)

upstream_config "$upstream_port"
nginx_config h2c "upstream erp { server 127.0.0.1:$upstream_port; keepalive 64; }
    http2_max_concurrent_streams 128;
    server { listen 127.0.0.1:$nginx_port http2; location / { proxy_pass http://erp; proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_set_header Host \$host; proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for; } }
    server { listen 127.0.0.1:$nginx_h1_port; location / { proxy_pass http://erp; proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_set_header Host \$host; proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for; } }"
H2C=1 gateway_settings "$gateway_port" proxy "$upstream_port" 0 > "$work/gateway.yaml"

start upstream nginx -p "$work" -e "$work/upstream-error.log" -c "$work/upstream.conf"
start nginx nginx -p "$work" -e "$work/h2c-error.log" -c "$work/h2c.conf"
start gateway "$bin/erp-gateway" serve --config "$work/gateway.yaml" --log-level error --watch-interval-ms 0
for port in "$upstream_port" "$nginx_port" "$nginx_h1_port" "$gateway_port"; do wait_port "$port"; done
declare -A server_of=([nginx]=$(master_of "$nginx_port") [gateway]=$(master_of "$gateway_port"))
declare -A port_of=([nginx]=$nginx_port [gateway]=$gateway_port)

failed=0
declare -A rps mean longest cpu
run() {  # $1 server, $2 h2|h1
    local name=$1 protocol=$2
    local options=(-c "$connections" -m "$streams")
    local port=${port_of[$name]}
    # nginx's h2c listener speaks HTTP/2 only (prior knowledge); its HTTP/1.1 one is beside it.
    if [ "$protocol" = h1 ]; then
        options=(--h1 -c "$connections" -m 1)
        [ "$name" = nginx ] && port=$nginx_h1_port
    fi
    local pids_of_server; pids_of_server=$(server_pids "${server_of[$name]}")
    # Warm-up apart: h2load leaves --warm-up-time's requests out of its count, while the CPU read
    # from /proc would include theirs.
    taskset -c 1 h2load -t 1 "${options[@]}" -D 2 "http://127.0.0.1:$port/v1/ledger" >/dev/null
    local before; before=$(cpu_ticks $pids_of_server)
    local output
    output=$(taskset -c 1 h2load -t 1 "${options[@]}" -D "$duration" "http://127.0.0.1:$port/v1/ledger")
    local after; after=$(cpu_ticks $pids_of_server)
    local done_requests succeeded
    read -r done_requests succeeded <<<"$(sed -n 's/^requests: .* \([0-9]*\) done, \([0-9]*\) succeeded.*/\1 \2/p' <<<"$output")"
    rps[$name-$protocol]=$(sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p' <<<"$output")
    # h2load's line: "time for request: min max mean sd +/-sd".
    mean[$name-$protocol]=$(awk '/^time for request:/ { print $6 }' <<<"$output")
    longest[$name-$protocol]=$(awk '/^time for request:/ { print $5 }' <<<"$output")
    cpu[$name-$protocol]=$(python3 -c "print('%.1f' % (($after - $before) * 1e6 / $ticks_per_second / max(1, $done_requests)))")
    # Every request done succeeded, and none was answered with another status than 2xx. (The
    # 2xx count can exceed the done count by a response that came as the run ended.)
    if [ "$done_requests" != "$succeeded" ] || ! grep -q "^status codes: [0-9]* 2xx, 0 3xx, 0 4xx, 0 5xx" <<<"$output"; then
        echo "run $name over $protocol: $succeeded of $done_requests succeeded" >&2
        grep -E "^(requests|status codes):" <<<"$output" >&2
        failed=1
    fi
}

echo "running: ${duration} s per target, $connections connections × $streams streams, h2load on core 1, servers on core 0" >&2
for name in nginx gateway; do
    run "$name" h2
    run "$name" h1
done

printf '\n%-32s %10s %12s %12s %10s\n' "target" "req/s" "mean/request" "max/request" "CPU µs/req"
for key in nginx-h2 gateway-h2 nginx-h1 gateway-h1; do
    case $key in
        nginx-h2) label="nginx, h2c" ;;
        gateway-h2) label="gateway proxy-only, h2c" ;;
        nginx-h1) label="nginx, HTTP/1.1 (h2load --h1)" ;;
        gateway-h1) label="gateway proxy-only, HTTP/1.1" ;;
    esac
    printf '%-32s %10s %12s %12s %10s\n' "$label" "${rps[$key]}" "${mean[$key]}" "${longest[$key]}" "${cpu[$key]}"
done
echo
echo "gateway/nginx over h2c: req/s $(ratio "${rps[gateway-h2]}" "${rps[nginx-h2]}"), CPU per request $(ratio "${cpu[gateway-h2]}" "${cpu[nginx-h2]}")"

# Memory per idle HTTP/2 connection: IDLE connections that sent the preface and SETTINGS and
# acknowledged the server's, then stay silent. One client process per server, on core 1.
cat > "$work/idle.py" <<'PY'
import socket, sys, time
port, count = int(sys.argv[1]), int(sys.argv[2])
preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
ack = b"\x00\x00\x00\x04\x01\x00\x00\x00\x00"
held = []
for _ in range(count):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(preface)
    s.settimeout(5)
    s.recv(4096)  # the server's SETTINGS
    s.sendall(ack)
    held.append(s)
print("ready", flush=True)
sys.stdin.read()  # held until told to stop
PY
declare -A per_connection
for name in nginx gateway; do
    pids_of_server=$(server_pids "${server_of[$name]}")
    before=$(rss_kib $pids_of_server)
    coproc IDLE_CLIENT { taskset -c 1 python3 "$work/idle.py" "${port_of[$name]}" "$idle"; }
    client_pid=$IDLE_CLIENT_PID
    pids+=("$client_pid")
    read -r ready <&"${IDLE_CLIENT[0]}"
    sleep 1
    after=$(rss_kib $pids_of_server)
    kill "$client_pid" 2>/dev/null || true
    wait "$client_pid" 2>/dev/null || true
    per_connection[$name]=$(python3 -c "print('%.1f' % (($after - $before) * 1024 / $idle / 1024))")
    echo "$name: RSS $before KiB before, $after KiB with $idle idle HTTP/2 connections: ${per_connection[$name]} KiB per connection"
    sleep 2
done
exit "$failed"
