#!/usr/bin/env bash
# Heap allocations per proxied request, counted in the gateway process by the allocator shim
# Tests/AllocationCounter/allocation-counter.c (LD_PRELOAD; built here with cc), for the release
# and the debug build, proxy-only and full pipeline (RS256 token reused, so a verified-token
# cache hit; 3-level tree with Redis quotas at every level), configured as bench/compare.sh
# configures them, in front of an nginx upstream.
#
#   bench/allocations.sh [REQUESTS]        (default 2,000 measured requests per run)
#
# Environment: BUILDS (default "release debug"); SITES=1 also records the call stack of every
# measured allocation and prints, per configuration, where they come from (slower; the counts
# of that run include no allocation of the recording itself).
#
# `cold` is the full pipeline with a token never seen before on every request.
#
# Each run: one gateway (one event loop, --log-level error), one keep-alive connection, 200
# warm-up requests, then REQUESTS requests one after another; the count is read before and after
# them once it has settled, and divided by REQUESTS. Counts, not times: the figures repeat to a
# fraction of an allocation, whatever else runs on the machine. Bounded: 200 + REQUESTS requests
# per run, each with a 10 s timeout. Every process started here is stopped by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
requests="${1:-2000}"
builds="${BUILDS:-release debug}"
sites="${SITES:-0}"
export PATH="$PATH:/usr/sbin"
for tool in cc nginx redis-server openssl python3; do
    command -v "$tool" >/dev/null || { echo "missing: $tool (apt-get install gcc nginx-light redis-server)" >&2; exit 1; }
done

first_build=${builds%% *}
# A release build is built as every script here and the Dockerfile build it (see Package.swift).
build_flags() { [ "$1" = release ] && echo "-Xswiftc -enforce-exclusivity=unchecked" || true; }
echo "building the gateway ($first_build)..." >&2
swift build -c "$first_build" $(build_flags "$first_build") --product erp-gateway >/dev/null
bin="$(swift build -c "$first_build" --show-bin-path)"
source bench/lib.sh
make_issuer_key
write_tenant_tree
cc -shared -fPIC -O2 -o "$work/liballocation-counter.so" Tests/AllocationCounter/allocation-counter.c
# Cold tokens: a token never seen before on every request (each verified, none from the cache).
# Minted before any server starts: mint_tokens waits on its own background jobs.
mint_tokens "$work/cold.tokens" $(( (requests + 200 + 99) / 100 ))
token=$("$bin/erp-gateway" token mint --issuer "$issuer" --key "$work/issuer.pem" --kid bench-1 --tenant c000 --ttl 3600)

redis_port=$(free_port); upstream_port=$(free_port)
upstream_config "$upstream_port"
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no > "$work/redis.log" 2>&1 &
pids+=($!)
nginx -p "$work" -e "$work/upstream-error.log" -c "$work/upstream.conf" > /dev/null 2>&1 &
pids+=($!)
wait_port "$redis_port"; wait_port "$upstream_port"

# measure NAME BIN CONFIGURATION: starts the counted gateway, drives it, prints the line of the run.
# CONFIGURATION: proxy, full (one token, reused) or cold (the full pipeline, a new token each time).
measure() {
    local name=$1 bin=$2 configuration=$3 credential=""
    case "$configuration" in full) credential="$token" ;; cold) credential="@$work/cold.tokens"; configuration=full ;; esac
    local port; port=$(free_port)
    gateway_settings "$port" "$configuration" "$upstream_port" "$redis_port" > "$work/$name.yaml"
    local traces=()
    [ "$sites" = 1 ] && traces=(ALLOCATION_BACKTRACES="$work/$name.stacks")
    env ALLOCATION_COUNTERS="$work/$name.counters" "${traces[@]}" LD_PRELOAD="$work/liballocation-counter.so" \
        "$bin/erp-gateway" serve --config "$work/$name.yaml" --log-level error --watch-interval-ms 0 > "$work/$name.log" 2>&1 &
    local gateway_pid=$!
    pids+=($gateway_pid)
    wait_port "$port"
    python3 - "$port" "$work/$name.counters" "$requests" "$credential" "$name" <<'PY'
import mmap, socket, struct, sys, time
port, path, count, credential, name = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
# One token for every request, or (@FILE) the next token of FILE for each.
tokens = iter(open(credential[1:]).read().split()) if credential.startswith("@") else None
counters_file = open(path, "r+b")
counters = mmap.mmap(counters_file.fileno(), 4096)
def allocations():
    return struct.unpack_from("<Q", counters, 0)[0]
def settled():  # unchanged over 100 ms (what the last response set off is done), at most 3 s
    last, deadline = allocations(), time.time() + 3
    while time.time() < deadline:
        time.sleep(0.1)
        now = allocations()
        if now == last: break
        last = now
    return last
def request():
    token = next(tokens) if tokens else credential
    return b"GET /v1/ledger HTTP/1.1\r\nHost: bench\r\n" + (f"Authorization: Bearer {token}\r\n".encode() if token else b"") + b"\r\n"
connection = socket.create_connection(("127.0.0.1", port), timeout=10)
buffer = b""
def exchange():
    global buffer
    connection.sendall(request())
    def receive():
        global buffer
        chunk = connection.recv(65536)
        if not chunk: sys.exit(f"{name}: the gateway closed the connection")
        buffer += chunk
    while b"\r\n\r\n" not in buffer: receive()
    head, buffer = buffer.split(b"\r\n\r\n", 1)
    status = head.split(b" ", 2)[1]
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
    while len(buffer) < length: receive()
    buffer = buffer[length:]
    if status != b"200": sys.exit(f"{name}: status {status.decode()}")
for _ in range(200): exchange()
before = settled()
struct.pack_into("<Q", counters, 32, 1)  # the shim records call stacks from here on (ALLOCATION_BACKTRACES)
for _ in range(count): exchange()
struct.pack_into("<Q", counters, 32, 0)
after = settled()
print(f"{name:<16} {(after - before) / count:10.1f}")
PY
    [ "$sites" = 1 ] && allocation_sites "$work/$name.stacks" "$gateway_pid" "$bin/erp-gateway"
    kill "$gateway_pid"; wait "$gateway_pid" 2>/dev/null || true
}

# allocation_sites STACKS PID BINARY: the call stacks recorded in STACKS, by the innermost frame in
# the gateway's own modules (who asked) and by the innermost frame in the binary at all (SwiftNIO
# and the other packages are linked into it), each per measured request.
allocation_sites() {
    python3 - "$1" "$2" "$3" "$requests" <<'PY'
import bisect, collections, subprocess, sys
stacks_path, pid, binary, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
maps = []
for line in open(f"/proc/{pid}/maps"):
    fields = line.split()
    if len(fields) >= 6 and fields[5].startswith("/"):
        start, end = (int(x, 16) for x in fields[0].split("-"))
        maps.append((start, end, int(fields[2], 16), fields[5]))
maps.sort()
starts = [m[0] for m in maps]
def locate(address):
    index = bisect.bisect_right(starts, address) - 1
    if index >= 0 and maps[index][0] <= address < maps[index][1]:
        start, _, offset, path = maps[index]
        return path, address - start + offset
    return None, address
stacks = [[int(x, 16) for x in line.split()] for line in open(stacks_path) if line.strip()]
# Symbolize each distinct return address of the binary once (address - 1: the call itself).
wanted = sorted({locate(a)[1] - 1 for stack in stacks for a in stack if locate(a)[0] == binary})
names = {}
if wanted:
    output = subprocess.run(["addr2line", "-f", "-e", binary], input="\n".join(hex(a) for a in wanted), capture_output=True, text=True).stdout.split("\n")
    mangled = "\n".join(output[0::2][:len(wanted)])
    def demangle(*options):
        return subprocess.run(["swift-demangle", *options], input=mangled, capture_output=True, text=True).stdout.split("\n")
    # Full names say the module (matched below), simplified ones are shown.
    names = dict(zip(wanted, zip(demangle(), demangle("--simplified"))))
own = ("AdminAPI.", "Cells.", "GatewayConfig.", "Hierarchy.", "JSONText.", "ProxyEngine.", "Quotas.", "RedisClient.", "TokenAuth.", "erp_gateway.")
def is_own(full):  # a function of a gateway module, not a library's generic code specialized for one of its types
    head = full.split("(")[0]
    return head.startswith(own) or any(" " + module in head for module in own)
def frames(stack):
    for address in stack:
        path, offset = locate(address)
        if path == binary: yield names.get(offset - 1, ("?", "?"))
by_own, by_binary = collections.Counter(), collections.Counter()
for stack in stacks:
    symbols = list(frames(stack))
    by_binary[symbols[0][1] if symbols else "(outside the binary)"] += 1
    by_own[next((short for full, short in symbols if is_own(full)), "(no gateway frame)")] += 1
def show(title, counter):
    print(f"  {title}:")
    for symbol, n in counter.most_common(25):
        print(f"    {n / count:7.1f}  {symbol[:150]}")
print(f"  {len(stacks) / count:.1f} stacks per request recorded")
show("by the innermost frame in the gateway's modules", by_own)
show("by the innermost frame in the binary (SwiftNIO and other packages included)", by_binary)
PY
}

echo "heap allocations per request ($requests requests after 200 warm-up, one keep-alive connection)"
for build in $builds; do
    if [ "$build" != "$first_build" ]; then
        echo "building the gateway ($build)..." >&2
        swift build -c "$build" $(build_flags "$build") --product erp-gateway >/dev/null
    fi
    build_bin="$(swift build -c "$build" --show-bin-path)"
    measure "$build-proxy" "$build_bin" proxy
    measure "$build-full" "$build_bin" full
    measure "$build-cold" "$build_bin" cold
done
