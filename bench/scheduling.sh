#!/usr/bin/env bash
# How the scheduler shares core 0 between a proxy and the upstream behind it, for nginx, SwiftNIO's
# two floors and the gateway proxy-only: whether the kernel time per request that
# `bench/compare.sh` shows over nginx's comes from sharing the core, or from the proxy itself.
#
#   bench/scheduling.sh [SECONDS]      (default 4 s of load per target and placement)
#
# Starts the nginx upstream and, in front of it, nginx as a reverse proxy, `nio-proxy-floor`
# relaying bytes, `nio-proxy-floor` with SwiftNIO's HTTP/1 codecs and the gateway proxy-only
# (release build, one event loop), every target pinned to core 0. Two placements of the
# upstream: on core 0 with the targets (as `bench/compare.sh` runs), then moved to core 1 beside
# wrk. Each target gets one unmeasured second of load, then wrk (core 1, 32 connections,
# bounded by time). Prints per target and placement: req/s, its CPU µs per request (user and
# system), the times the kernel took the core from it (involuntary switches) and the TCP segments
# sent per request (all of the machine's loopback traffic, /proc/net/snmp). On the shared core
# it also records one second of `sched_switch` on core 0 (`perf record`; needs root): how the
# target's turns on the core ended — taken by the upstream (preempted) or given up with nothing
# left to do (slept) — per request, and the median length of each kind of turn. Every process
# started here is stopped by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-4}"
connections="${CONNECTIONS:-32}"
source bench/lib.sh
build_proxy_targets
start_proxy_targets
upstream_pids=$(server_pids "$(master_of "$upstream_port")")

involuntary_switches() {  # summed over every thread of the given pids
    local total=0 pid task
    for pid in "$@"; do
        for task in /proc/"$pid"/task/*; do
            total=$((total + $(awk '/^nonvoluntary_ctxt_switches/ {print $2}' "$task/status")))
        done
    done
    echo "$total"
}
tcp_segments_sent() { awk '/^Tcp:/ { if (++seen == 2) print $12 }' /proc/net/snmp; }

measure() {  # $1 name, $2 port, $3 placement (shared or apart)
    local name=$1 port=$2 placement=$3 pids
    # shellcheck disable=SC2207
    pids=($(server_pids "$(master_of "$port")"))
    taskset -c 1 wrk -t1 -c"$connections" -d1s "http://127.0.0.1:$port/v1/ledger" >/dev/null
    local ticks_before switches_before segments_before
    ticks_before=$(user_system_ticks "${pids[@]}"); switches_before=$(involuntary_switches "${pids[@]}"); segments_before=$(tcp_segments_sent)
    taskset -c 1 wrk -t1 -c"$connections" -d"${duration}s" --timeout 5s "http://127.0.0.1:$port/v1/ledger" > "$work/$name-$placement.wrk" &
    local load=$!
    local tids=""
    if [ "$placement" = shared ]; then
        sleep 1
        perf record -q -e sched:sched_switch -C 0 -o "$work/$name.sched" -- sleep 1 >/dev/null 2>&1 || true
        tids=$(for pid in "${pids[@]}"; do ls /proc/"$pid"/task; done | paste -sd,)
    fi
    wait "$load"
    local ticks_after switches_after segments_after
    ticks_after=$(user_system_ticks "${pids[@]}"); switches_after=$(involuntary_switches "${pids[@]}"); segments_after=$(tcp_segments_sent)
    local requests
    requests=$(awk '/requests in/ {print $1}' "$work/$name-$placement.wrk")
    [ "$placement" = shared ] && perf script -i "$work/$name.sched" -F time,trace > "$work/$name.switches" 2>/dev/null || true
    python3 - "$name" "$placement" "$requests" "$duration" "$(getconf CLK_TCK)" "$ticks_before" "$ticks_after" \
        "$switches_before" "$switches_after" "$segments_before" "$segments_after" "$tids" "$work/$name.switches" <<'PY'
import re, statistics, sys
name, placement, requests, duration, hz = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
user0, system0 = map(int, sys.argv[6].split()); user1, system1 = map(int, sys.argv[7].split())
switches = int(sys.argv[9]) - int(sys.argv[8]); segments = int(sys.argv[11]) - int(sys.argv[10])
micro = lambda ticks: ticks * 1e6 / hz / requests
print(f"{name:<12} {placement:<7} {requests / duration:9.0f} req/s  CPU {micro(user1 - user0 + system1 - system0):5.1f} µs/req "
      f"(user {micro(user1 - user0):4.1f}, system {micro(system1 - system0):4.1f})  preempted {switches / requests:.2f}/req  "
      f"TCP segments {segments / requests:.2f}/req")
tids = set(sys.argv[12].split(",")) if sys.argv[12] else set()
if tids:
    turns = {"preempted": [], "slept": []}
    started = None
    for line in open(sys.argv[13]):
        match = re.search(r"([\d.]+):\s+prev_comm=.* prev_pid=(\d+) .*prev_state=(\S+) ==> next_comm=.* next_pid=(\d+)", line)
        if not match:
            continue
        time, previous, state, following = float(match[1]), match[2], match[3], match[4]
        if previous in tids and started is not None:
            turns["preempted" if state.startswith("R") else "slept"].append((time - started) * 1e6)
            started = None
        if following in tids:
            started = time
    # the recorded second, at the run's mean rate
    per_second = requests / duration
    for kind, lengths in turns.items():
        if lengths:
            print(f"{'':<21}turns on core 0 ending {kind}: {len(lengths) / per_second:.2f}/req, median {statistics.median(lengths):.0f} µs")
PY
}

echo "the upstream on core 0 with the targets (shared), then on core 1 beside wrk (apart); targets on core 0, wrk on core 1"
for placement in shared apart; do
    if [ "$placement" = apart ]; then
        for pid in $upstream_pids; do taskset -p -c 1 "$pid" >/dev/null; done
    fi
    measure nginx "$nginx_port" "$placement"
    measure floor-bytes "$floor_bytes_port" "$placement"
    measure floor-http "$floor_http_port" "$placement"
    measure proxy-only "$proxy_port" "$placement"
done
