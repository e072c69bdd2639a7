#!/usr/bin/env bash
# Connection churn: resident memory of the gateway (proxy only, two event loops) over rounds of
# short connections, to show that what a closed connection held is freed. Each round opens and
# closes N connections one after another — without sending a byte, or with one request each —
# then prints the gateway's RSS.
#
#   bench/churn.sh [BIN_DIR] [ROUNDS] [CONNECTIONS]      (default: release build, 4 rounds of 20,000)
#
# Bounded: ROUNDS × CONNECTIONS connections in all, each with a 5 s timeout.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-$(swift build -c release --show-bin-path)}"
rounds="${2:-4}"; connections="${3:-20000}"
export PATH="$PATH:/usr/sbin"
command -v nginx >/dev/null || { echo "missing: nginx (apt-get install nginx-light)" >&2; exit 1; }
source bench/lib.sh

upstream_port=$(free_port); gateway_port=$(free_port)
upstream_config "$upstream_port"
taskset -c 0 nginx -p "$work" -e "$work/upstream-error.log" -c "$work/upstream.conf" >/dev/null 2>&1 &
pids+=($!)
gateway_settings "$gateway_port" proxy "$upstream_port" | sed 's/eventLoops: 1/eventLoops: 2/' > "$work/gateway.yaml"
"$bin/erp-gateway" serve --config "$work/gateway.yaml" --log-level error > "$work/gateway.log" 2>&1 &
gateway_pid=$!; pids+=($gateway_pid)
wait_port "$upstream_port"; wait_port "$gateway_port"

python3 - "$gateway_port" "$gateway_pid" "$rounds" "$connections" <<'PY'
import socket, sys, time
port, pid, rounds, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def rss_kib():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"): return int(line.split()[1])
request = b"GET /v1/ledger HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
def churn(send):
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        if send:
            s.sendall(request)
            while s.recv(65536): pass
        s.close()
    time.sleep(0.5)
print(f"gateway RSS, KiB, after each round of {count:,} connections")
for kind, send in (("connect-and-close", False), ("one request each", True)):
    start = rss_kib(); row = [f"{start:>7}"]
    for _ in range(rounds):
        churn(send); row.append(f"{rss_kib():>7}")
    print(f"{kind:<18} " + " ".join(row) + f"   (+{(rss_kib() - start) / 1024:.1f} MiB)")
PY
