#!/usr/bin/env bash
# TLS at the listener: erp-gateway and nginx side by side on loopback, with the same certificate
# (ECDSA P-256, signed by a CA made here), in one run.
#
#   bench/tls.sh [SECONDS]          (default 5 s per run)
#
# Environment: ROUNDS (default 3: every run is repeated, the servers alternating, and the median
# is shown — the machine is shared, and one run can land on a busy moment), CONNECTIONS (wrk's,
# default 32), IDLE (connections held open for the memory figure, default 5000; 0 skips it),
# KEEP (=1 keeps the work directory).
#
# Starts, each pinned to core 0: an nginx upstream answering a small JSON body, nginx as a
# reverse proxy (one worker) twice: with TLS (1.2 and 1.3, the gateway's TLS 1.2 suites, a shared
# session cache and tickets) and plain; and the gateway (release build, one event loop, proxy
# only) twice: with `listener.tls` on the same files, and plain. The plain listeners show
# what TLS itself adds to each server. Clients run on core 1:
#
# - handshakes per second, full and resumed: `openssl s_time`, which opens a connection, does
#   the handshake and closes, as many times as it can in the time given (`-new`: full handshakes;
#   `-reuse`: the session of the first connection resumed, TLS 1.2, since s_time does not read
#   TLS 1.3's tickets, which come after the handshake). s_time is one process on one core: its
#   own half of each handshake (key exchange, signature check) may bound the rate, so the
#   servers' CPU per handshake (from /proc, as bench/compare.sh measures it) is the figure to
#   compare; the rate is shown for both alike.
# - HTTP/1.1 over TLS: wrk over https with keep-alive connections (the handshake once per
#   connection), requests per second and the server's CPU per request; the same over plain
#   HTTP, and the difference: TLS's own CPU per request.
# - HTTP/2 over TLS: h2load over https (ALPN h2; nginx's TLS listener has `http2`), the same
#   connections with 10 concurrent streams each, requests per second and server CPU per request.
# - memory per idle TLS connection: IDLE connections opened with a TLS handshake and one
#   request each, then held idle; (RSS with them − RSS before) / IDLE, RSS over every process
#   of the server. The same over plain HTTP.
#
# Prints each figure and its ratio to nginx. Every process started here is stopped by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-5}"
rounds="${ROUNDS:-3}"
connections="${CONNECTIONS:-32}"
idle="${IDLE:-5000}"

missing=()
for tool in wrk h2load nginx openssl taskset python3 ss; do
    command -v "$tool" >/dev/null || PATH="$PATH:/usr/sbin" command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "missing: ${missing[*]} (apt-get install wrk nghttp2-client nginx-light openssl util-linux python3 iproute2)" >&2
    exit 1
fi
export PATH="$PATH:/usr/sbin"
if [ "$idle" != 0 ] && [ "$(ulimit -n)" -lt $((idle + 1000)) ]; then
    ulimit -n $((idle + 1000)) 2>/dev/null || { echo "raise the open-file limit above $((idle + 1000)) (or IDLE=0)" >&2; exit 1; }
fi

echo "building the gateway (release)..." >&2
swift build -c release -Xswiftc -enforce-exclusivity=unchecked --product erp-gateway >/dev/null
bin="$(swift build -c release --show-bin-path)"

source bench/lib.sh

# --- the certificate: a CA and a P-256 leaf for bench.test --------------------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=bench-ca \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=bench.test -keyout "$work/server.key" -out "$work/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:bench.test\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > "$work/server.ext"
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial -days 2 -extfile "$work/server.ext" -out "$work/server.pem" 2>/dev/null
cat "$work/server.pem" "$work/ca.pem" > "$work/server.chain.pem"

upstream_port=$(free_port); nginx_port=$(free_port); nginx_plain_port=$(free_port); gateway_port=$(free_port); gateway_plain_port=$(free_port)

# --- servers ----------------------------------------------------------------------------------
upstream_config "$upstream_port"
suites="ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
nginx_config proxy "upstream erp { server 127.0.0.1:$upstream_port; keepalive 64; }
    server {
        listen 127.0.0.1:$nginx_port ssl http2;
        ssl_certificate $work/server.chain.pem;
        ssl_certificate_key $work/server.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ciphers $suites;
        ssl_session_cache shared:TLS:20m;
        ssl_session_tickets on;
        keepalive_timeout 300s;
        location / { proxy_pass http://erp; proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_set_header Host \$host;
                     proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for; proxy_set_header X-Forwarded-Proto https; }
    }"
nginx_config proxy-plain "upstream erp { server 127.0.0.1:$upstream_port; keepalive 64; }
    server {
        listen 127.0.0.1:$nginx_plain_port;
        keepalive_timeout 300s;
        location / { proxy_pass http://erp; proxy_http_version 1.1; proxy_set_header Connection \"\"; proxy_set_header Host \$host;
                     proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for; }
    }"
# The proxy-only settings of bench/compare.sh, with TLS and long idle timeouts (the memory run
# holds its connections idle).
gateway_settings "$gateway_port" proxy "$upstream_port" 0 \
    | sed "s|eventLoops: 1 }|eventLoops: 1, tls: { certificate: server.chain.pem, key: server.key } }|" > "$work/gateway.yaml"
gateway_settings "$gateway_plain_port" proxy "$upstream_port" 0 > "$work/gateway-plain.yaml"
for file in gateway gateway-plain; do echo "timeouts: { headerRead: 60s, keepAliveIdle: 300s }" >> "$work/$file.yaml"; done

start upstream nginx -p "$work" -e "$work/upstream-error.log" -c "$work/upstream.conf"
start nginx nginx -p "$work" -e "$work/proxy-error.log" -c "$work/proxy.conf"
start nginx-plain nginx -p "$work" -e "$work/proxy-plain-error.log" -c "$work/proxy-plain.conf"
start gateway "$bin/erp-gateway" serve --config "$work/gateway.yaml" --log-level error --watch-interval-ms 0
start gateway-plain "$bin/erp-gateway" serve --config "$work/gateway-plain.yaml" --log-level error --watch-interval-ms 0
for port in "$upstream_port" "$nginx_port" "$nginx_plain_port" "$gateway_port" "$gateway_plain_port"; do wait_port "$port"; done
# A process (and worker) per listener: each one's CPU and memory are its own.
declare -A server_of=(
    [nginx]=$(master_of "$nginx_port") [nginx-plain]=$(master_of "$nginx_plain_port")
    [gateway]=$(master_of "$gateway_port") [gateway-plain]=$(master_of "$gateway_plain_port")
)
declare -A port_of=([nginx]=$nginx_port [nginx-plain]=$nginx_plain_port [gateway]=$gateway_port [gateway-plain]=$gateway_plain_port)
scheme_of() { [ "${1%-plain}" = "$1" ] && echo https || echo http; }

failed=0
per_unit() {  # $1 ticks, $2 units → µs per unit
    python3 -c "print('%.1f' % ($1 * 1e6 / $ticks_per_second / max(1, $2)))"
}

# --- handshakes --------------------------------------------------------------------------------
declare -A handshakes handshake_cpu
handshake_run() {  # $1 server, $2 label, rest: s_time options
    local server=$1 label=$2; shift 2
    local server_pids; server_pids=$(server_pids "${server_of[$server]}")
    local before; before=$(cpu_ticks $server_pids)
    local started; started=$(date +%s.%N)
    local output
    output=$(taskset -c 1 openssl s_time -connect "127.0.0.1:${port_of[$server]}" -CAfile "$work/ca.pem" -verify 2 -time "$duration" "$@" 2>&1 || true)
    local ended; ended=$(date +%s.%N)
    local after; after=$(cpu_ticks $server_pids)
    local count; count=$(grep -o '[0-9]* connections in [0-9.]*s;' <<<"$output" | tail -1 | cut -d' ' -f1)
    if [ -z "$count" ] || [ "$count" = 0 ]; then
        echo "s_time $server $label failed: $output" | tail -5 >&2
        failed=1
        count=0
    fi
    if [[ " $* " == *" -reuse "* ]] && grep -q '\*' <<<"$output"; then
        echo "note: $server $label: some connections were not resumed (s_time prints '*' for a full handshake)" >&2
    fi
    handshakes[$server,$label]+=" $(python3 -c "print('%.0f' % ($count / ($ended - $started)))")"
    handshake_cpu[$server,$label]+=" $(per_unit $((after - before)) "$count")"
}

# --- requests over TLS -------------------------------------------------------------------------
declare -A rps request_cpu p99
cat > "$work/result.lua" <<'LUA'
done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT %.1f %d %d %d %.3f\n", summary.requests / (summary.duration / 1e6),
    summary.errors.status, errors, summary.requests, latency:percentile(99) / 1000))
end
LUA
request_run() {  # $1 server
    local server=$1
    local server_pids; server_pids=$(server_pids "${server_of[$server]}")
    local before; before=$(cpu_ticks $server_pids)
    local line
    line=$(taskset -c 1 wrk -t1 -c"$connections" -d"${duration}s" --timeout 5s -s "$work/result.lua" -H "Host: bench.test" \
        "$(scheme_of "$server")://127.0.0.1:${port_of[$server]}/v1/ledger" | grep RESULT || true)
    local after; after=$(cpu_ticks $server_pids)
    local rate non2xx errors requests latency
    read -r _ rate non2xx errors requests latency <<<"$line"
    rps[$server]+=" $rate"
    p99[$server]+=" $latency"
    request_cpu[$server]+=" $(per_unit $((after - before)) "$requests")"
    if [ "$non2xx" != 0 ] || [ "$errors" != 0 ]; then
        echo "wrk $server: $non2xx non-2xx answers, $errors socket errors" >&2
        failed=1
    fi
}

# --- HTTP/2 over TLS (ALPN h2) ------------------------------------------------------------------
declare -A h2_rps h2_cpu
h2_run() {  # $1 server: h2load, one thread, $connections connections × 10 concurrent streams
    local server=$1
    local server_pids; server_pids=$(server_pids "${server_of[$server]}")
    local before; before=$(cpu_ticks $server_pids)
    local output
    # No --warm-up-time: h2load leaves the warm-up's requests out of its count, and the CPU read
    # from /proc would include theirs (the servers are warmed up before the rounds).
    output=$(taskset -c 1 h2load -t 1 -c "$connections" -m 10 -D "$duration" "https://127.0.0.1:${port_of[$server]}/v1/ledger" 2>&1 || true)
    local after; after=$(cpu_ticks $server_pids)
    local done_requests succeeded
    read -r done_requests succeeded <<<"$(sed -n 's/^requests: .* \([0-9]*\) done, \([0-9]*\) succeeded.*/\1 \2/p' <<<"$output")"
    if ! grep -q "Application protocol: h2" <<<"$output" || [ -z "$done_requests" ] || [ "$done_requests" != "$succeeded" ]; then
        echo "h2load $server: $(grep -E '^(requests|Application protocol)' <<<"$output" | tr '\n' ' ')" >&2
        failed=1
    fi
    h2_rps[$server]+=" $(sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p' <<<"$output")"
    h2_cpu[$server]+=" $(per_unit $((after - before)) "${done_requests:-0}")"
}

# --- memory per idle connection ----------------------------------------------------------------
cat > "$work/hold.py" <<'PY'
# Opens N TLS connections (64 handshakes at a time; plain ones when the CA file is "-"), sends
# one request on each and reads its answer, then holds them all idle until stdin closes.
# Prints "open N" once they are.
import asyncio, re, ssl, sys

async def main(port, count, ca):
    context = ssl.create_default_context(cafile=ca) if ca != "-" else None
    gate = asyncio.Semaphore(64)
    held = []
    async def one():
        async with gate:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="bench.test" if context else None)
            writer.write(b"GET /v1/ledger HTTP/1.1\r\nHost: bench.test\r\n\r\n")
            head = await reader.readuntil(b"\r\n\r\n")
            await reader.readexactly(int(re.search(rb"(?i)content-length: *(\d+)", head).group(1)))
            held.append(writer)
    await asyncio.gather(*(one() for _ in range(count)))
    print("open", len(held), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]))
PY
declare -A idle_bytes
idle_run() {  # $1 server
    local server=$1
    local server_pids; server_pids=$(server_pids "${server_of[$server]}")
    local before; before=$(rss_kib $server_pids)
    mkfifo "$work/hold-$server.in"
    : > "$work/hold-$server.out"
    local ca="$work/ca.pem"; [ "$(scheme_of "$server")" = http ] && ca=-
    taskset -c 1 python3 "$work/hold.py" "${port_of[$server]}" "$idle" "$ca" < "$work/hold-$server.in" > "$work/hold-$server.out" 2>&1 &
    local holder=$!; pids+=($holder)
    exec 9> "$work/hold-$server.in"
    for _ in $(seq 1 1200); do grep -q '^open' "$work/hold-$server.out" && break; kill -0 "$holder" 2>/dev/null || break; sleep 0.1; done
    if ! grep -q "^open $idle" "$work/hold-$server.out"; then
        echo "idle $server: $(tail -3 "$work/hold-$server.out")" >&2
        failed=1
        idle_bytes[$server]=0
    else
        sleep 1
        local with; with=$(rss_kib $server_pids)
        idle_bytes[$server]=$(python3 -c "print('%.0f' % (($with - $before) * 1024 / $idle))")
    fi
    exec 9>&-
    wait "$holder" 2>/dev/null || true
}

echo "running: ${duration} s per run, $rounds rounds, clients on core 1, servers on core 0" >&2
for server in nginx nginx-plain gateway gateway-plain; do  # warm-up: pools, session caches, page faults
    taskset -c 1 wrk -t1 -c"$connections" -d2s -H "Host: bench.test" "$(scheme_of "$server")://127.0.0.1:${port_of[$server]}/v1/ledger" >/dev/null
done
for server in nginx gateway; do taskset -c 1 h2load -t 1 -c "$connections" -m 10 -D 2 "https://127.0.0.1:${port_of[$server]}/v1/ledger" >/dev/null 2>&1 || true; done
for _ in $(seq 1 "$rounds"); do
    for server in nginx gateway; do
        handshake_run "$server" "full TLS 1.3" -new -tls1_3
        handshake_run "$server" "full TLS 1.2" -new -tls1_2
        handshake_run "$server" "resumed TLS 1.2" -reuse -tls1_2
    done
done
for _ in $(seq 1 "$rounds"); do
    for server in nginx gateway nginx-plain gateway-plain; do request_run "$server"; done
    for server in nginx gateway; do h2_run "$server"; done
done
# Medians of the rounds from here on.
median() { python3 -c "import statistics, sys; print(statistics.median(float(x) for x in sys.argv[1:]))" $1; }
for key in "${!handshakes[@]}"; do handshakes[$key]=$(median "${handshakes[$key]}"); done
for key in "${!handshake_cpu[@]}"; do handshake_cpu[$key]=$(median "${handshake_cpu[$key]}"); done
for key in "${!h2_rps[@]}"; do h2_rps[$key]=$(median "${h2_rps[$key]}"); h2_cpu[$key]=$(median "${h2_cpu[$key]}"); done
for key in "${!rps[@]}"; do rps[$key]=$(median "${rps[$key]}"); p99[$key]=$(median "${p99[$key]}"); request_cpu[$key]=$(median "${request_cpu[$key]}"); done
if [ "$idle" != 0 ]; then
    for server in nginx nginx-plain gateway gateway-plain; do idle_run "$server"; done
fi

printf '\n%-36s %12s %12s %10s\n' "(medians of $rounds rounds)" "nginx" "gateway" "gw/nginx"
for label in "full TLS 1.3" "full TLS 1.2" "resumed TLS 1.2"; do
    printf '%-36s %12s %12s %10s\n' "handshakes/s, $label" "${handshakes[nginx,$label]}" "${handshakes[gateway,$label]}" \
        "$(ratio "${handshakes[gateway,$label]}" "${handshakes[nginx,$label]}")"
    printf '%-36s %12s %12s %10s\n' "  server CPU µs/handshake" "${handshake_cpu[nginx,$label]}" "${handshake_cpu[gateway,$label]}" \
        "$(ratio "${handshake_cpu[gateway,$label]}" "${handshake_cpu[nginx,$label]}")"
done
printf '%-36s %12s %12s %10s\n' "HTTP/1.1 over TLS req/s ($connections conn.)" "${rps[nginx]}" "${rps[gateway]}" "$(ratio "${rps[gateway]}" "${rps[nginx]}")"
printf '%-36s %12s %12s %10s\n' "  server CPU µs/request" "${request_cpu[nginx]}" "${request_cpu[gateway]}" "$(ratio "${request_cpu[gateway]}" "${request_cpu[nginx]}")"
printf '%-36s %12s %12s %10s\n' "  p99 ms" "${p99[nginx]}" "${p99[gateway]}" "$(ratio "${p99[gateway]}" "${p99[nginx]}")"
printf '%-36s %12s %12s %10s\n' "HTTP/1.1 plain req/s" "${rps[nginx-plain]}" "${rps[gateway-plain]}" "$(ratio "${rps[gateway-plain]}" "${rps[nginx-plain]}")"
printf '%-36s %12s %12s %10s\n' "  server CPU µs/request" "${request_cpu[nginx-plain]}" "${request_cpu[gateway-plain]}" \
    "$(ratio "${request_cpu[gateway-plain]}" "${request_cpu[nginx-plain]}")"
printf '%-36s %12s %12s %10s\n' "HTTP/2 over TLS req/s ($connections × 10)" "${h2_rps[nginx]}" "${h2_rps[gateway]}" "$(ratio "${h2_rps[gateway]}" "${h2_rps[nginx]}")"
printf '%-36s %12s %12s %10s\n' "  server CPU µs/request" "${h2_cpu[nginx]}" "${h2_cpu[gateway]}" "$(ratio "${h2_cpu[gateway]}" "${h2_cpu[nginx]}")"
difference() { python3 -c "print('%.1f' % ($1 - $2))"; }
tls_cpu_nginx=$(difference "${request_cpu[nginx]}" "${request_cpu[nginx-plain]}")
tls_cpu_gateway=$(difference "${request_cpu[gateway]}" "${request_cpu[gateway-plain]}")
printf '%-36s %12s %12s %10s\n' "TLS's own CPU µs/request" "$tls_cpu_nginx" "$tls_cpu_gateway" "$(ratio "$tls_cpu_gateway" "$tls_cpu_nginx")"
if [ "$idle" != 0 ]; then
    printf '%-36s %12s %12s %10s\n' "bytes per idle TLS connection ($idle)" "${idle_bytes[nginx]}" "${idle_bytes[gateway]}" \
        "$(ratio "${idle_bytes[gateway]}" "${idle_bytes[nginx]}")"
    printf '%-36s %12s %12s %10s\n' "bytes per idle plain connection" "${idle_bytes[nginx-plain]}" "${idle_bytes[gateway-plain]}" \
        "$(ratio "${idle_bytes[gateway-plain]}" "${idle_bytes[nginx-plain]}")"
fi
exit "$failed"
