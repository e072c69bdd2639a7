#!/usr/bin/env bash
# How fast an admin write reaches another gateway node, on the 100,000-customer tree (100 OEMs ×
# 10 partners × 100 customers, bench/tree-compile.sh's tree): a real redis-server and two gateway
# processes (release build) with the admin API. Writes go to node 1's admin API; node 2's data
# plane is polled (every 2 ms, keep-alive) until it serves the change:
#   - one customer's branding   (PATCH the customer; GET /v1/branding with its token)
#   - one customer's package    (PATCH starter ⇄ business; GET /v1/feature-8 with its token:
#                                403 "feature not enabled" until the change is served)
#   - an OEM-wide change        (PATCH the OEM's branding; GET /v1/branding of a customer below it,
#                                which inherits it — 1,111 nodes below the OEM)
# Prints, per kind, the write's own latency (request to response on node 1) and the time from the
# write's response until node 2 serves it: median, p95 and max over N writes.
#
# Usage: bench/admin-write.sh [N] (default 20 writes of each kind; each poll gives up after 20 s)
#   GATEWAY=/path/to/erp-gateway bench/admin-write.sh   — another build of the gateway (e.g. an
#   older revision, for a before/after comparison); the tree generator is this checkout's.
set -euo pipefail
cd "$(dirname "$0")/.."
writes=${1:-20}
for tool in redis-server openssl python3; do
    command -v "$tool" >/dev/null || { echo "missing: $tool (apt-get install redis-server openssl python3)" >&2; exit 1; }
done

swift build -c release -Xswiftc -enforce-exclusivity=unchecked --product erp-gateway >/dev/null
swift build -c release -Xswiftc -enforce-exclusivity=unchecked --product tree-benchmark >/dev/null
swift build -c release -Xswiftc -enforce-exclusivity=unchecked --product demo-backend >/dev/null
bin="$(swift build -c release --show-bin-path)"
gateway=${GATEWAY:-$bin/erp-gateway}

work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    sleep 0.5
    for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    if [ "${KEEP:-0}" = 1 ]; then echo "work directory kept: $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_port() {  # $1 port, $2 seconds
    for _ in $(seq 1 $(($2 * 20))); do (echo > /dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done
    echo "port $1 never opened" >&2; exit 1
}

"$bin/tree-benchmark" 100 10 100 --write-tree "$work/tenants.yaml"
echo "tree: $(grep -c '^- id:\|^  - id:' "$work/tenants.yaml" || true) nodes, $(du -m "$work/tenants.yaml" | cut -f1) MiB as YAML"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/platform.pem" 2>/dev/null
openssl pkey -in "$work/platform.pem" -pubout -out "$work/platform.public.pem"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/admin.pem" 2>/dev/null
openssl pkey -in "$work/admin.pem" -pubout -out "$work/admin.public.pem"

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no > "$work/redis.log" 2>&1 &
pids+=($!)
backend_port=$(free_port)
"$bin/demo-backend" --port "$backend_port" > "$work/backend.log" 2>&1 &
pids+=($!)
wait_port "$redis_port" 10
wait_port "$backend_port" 10

settings() {  # $1 data port, $2 admin port
    cat <<SETTINGS
listener: { address: 127.0.0.1, port: $1 }
cells:
  - { id: pooled-eu-1, kind: pooled, region: eu-west, endpoints: [127.0.0.1:$backend_port] }
  - { id: pooled-us-1, kind: pooled, region: us-east, endpoints: [127.0.0.1:$backend_port] }
defaultCell: pooled-eu-1
tenantTree: tenants.yaml
platformIssuers:
  - iss: https://id.platform.bench
    audience: erp-gateway
    keys: [{ kid: platform-1, alg: RS256, pemFile: platform.public.pem }]
upstreamContext:
  signingKeys: [{ id: ctx, secret: $(head -c 32 /dev/urandom | base64 -w0) }]
  activeKey: ctx
redis: { url: "redis://127.0.0.1:$redis_port/0", keyPrefix: bench }
admin:
  listener: { address: 127.0.0.1, port: $2 }
  issuers:
    - iss: https://admin.platform.bench
      audience: erp-admin
      keys: [{ kid: admin-1, alg: RS256, pemFile: admin.public.pem }]
SETTINGS
}
port1=$(free_port); admin1=$(free_port); port2=$(free_port); admin2=$(free_port)
settings "$port1" "$admin1" > "$work/node1.yaml"
settings "$port2" "$admin2" > "$work/node2.yaml"

started=$(date +%s.%N)
"$gateway" serve --config "$work/node1.yaml" > "$work/node1.log" 2>&1 &
pids+=($!)
wait_port "$admin1" 300
echo "node 1 serving (it seeded the store) after $(python3 -c "print('%.1f' % ($(date +%s.%N) - $started))") s"
started=$(date +%s.%N)
"$gateway" serve --config "$work/node2.yaml" > "$work/node2.log" 2>&1 &
pids+=($!)
wait_port "$admin2" 300
wait_port "$port2" 60
echo "node 2 serving (read the store) after $(python3 -c "print('%.1f' % ($(date +%s.%N) - $started))") s"

mint() {  # $1 key, $2 issuer, $3 kid, $4 tenant, rest: more options
    "$gateway" token mint --issuer "$2" --key "$work/$1" --kid "$3" --tenant "$4" --ttl 3600 "${@:5}"
}
admin_token=$(mint admin.pem https://admin.platform.bench admin-1 platform-admin --tenant-claim role --audience erp-admin --subject bench-admin)
branding_customer=c-50-5-51; package_customer=c-50-5-52; oem=o-50; oem_customer=c-50-3-7
branding_token=$(mint platform.pem https://id.platform.bench platform-1 $branding_customer)
package_token=$(mint platform.pem https://id.platform.bench platform-1 $package_customer)
oem_token=$(mint platform.pem https://id.platform.bench platform-1 $oem_customer)

python3 - "$admin1" "$port2" "$writes" "$admin_token" "$branding_customer" "$branding_token" "$package_customer" "$package_token" "$oem" "$oem_token" <<'PY'
import http.client, json, sys, time

admin_port, data_port, writes, admin_token = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
branding_customer, branding_token, package_customer, package_token, oem, oem_token = sys.argv[5:11]
admin = http.client.HTTPConnection("127.0.0.1", admin_port, timeout=120)
node2 = http.client.HTTPConnection("127.0.0.1", data_port, timeout=10)

def patch(node, body):
    start = time.perf_counter()
    admin.request("PATCH", f"/admin/v1/nodes/{node}", body=json.dumps(body),
                  headers={"Authorization": f"Bearer {admin_token}", "If-Match": "*", "Content-Type": "application/json"})
    response = admin.getresponse()
    text = response.read()
    done = time.perf_counter()
    if response.status != 200:
        sys.exit(f"PATCH {node}: {response.status} {text[:300]!r}")
    return done, done - start

def get(path, token):
    node2.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    response = node2.getresponse()
    return response.status, response.read()

def served_after(since, check):
    """Polls node 2 every 2 ms until `check` holds; seconds after `since`, or None after 20 s."""
    while time.perf_counter() - since < 20:
        if check():
            return time.perf_counter() - since
        time.sleep(0.002)
    return None

def figures(values):
    values = sorted(values)
    pick = lambda q: values[min(len(values) - 1, int(round(q * (len(values) - 1))))]
    return f"median {pick(0.5) * 1000:7.1f} ms   p95 {pick(0.95) * 1000:7.1f} ms   max {values[-1] * 1000:7.1f} ms"

def run(name, write, check):
    latencies, propagation, missed = [], [], 0
    for number in range(writes):
        expected = f"https://support.example/{name.split()[0]}/{number}/{time.time_ns()}"
        done, latency = write(number, expected)
        latencies.append(latency)
        seen = served_after(done, lambda: check(number, expected))
        if seen is None:
            missed += 1
        else:
            propagation.append(seen)
    print(f"{name}:")
    print(f"  write on node 1 (request → response)       {figures(latencies)}")
    if propagation:
        print(f"  served by node 2 after the write returned   {figures(propagation)}")
    if missed:
        print(f"  not served by node 2 within 20 s: {missed} of {writes}")

run("one customer's branding",
    lambda n, expected: patch(branding_customer, {"branding": {"supportUrl": expected}}),
    lambda n, expected: expected.encode() in get("/v1/branding", branding_token)[1])
run("one customer's package (starter ⇄ business)",
    lambda n, expected: patch(package_customer, {"package": "starter" if n % 2 == 0 else "business"}),
    lambda n, expected: (get("/v1/feature-8", package_token)[0] == 403) == (n % 2 == 0))
run("OEM-wide branding (1,111 nodes below the OEM)",
    lambda n, expected: patch(oem, {"branding": {"supportUrl": expected}}),
    lambda n, expected: expected.encode() in get("/v1/branding", oem_token)[1])
PY
echo "node 2 log: $(grep -c 'tenant tree installed' "$work/node2.log") trees installed"
