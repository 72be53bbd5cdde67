#!/usr/bin/env bash
# The gateway's added latency: `lab load` against the trivial server directly
# and through the gateway, alternating in one run so both share the machine's
# conditions. Results: BENCHMARKS.md ("Gateway").
# Needs release builds:
#   cargo build --release -p lab-harness
#   cargo build --release -p lab-loadgen --example trivial_server -p lab-gateway --example gateway_bench
# Usage: gateway/bench/added_latency.sh [SECONDS] [ROUNDS]
# Env: RATES (default "1000 5000"), SERVER_THREADS / GATEWAY_THREADS (default 1),
# SRV_CPU (pod and gateway, default 0), GEN_CPU (lab load, default 1).
set -euo pipefail
SECS=${1:-10}
ROUNDS=${2:-3}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
LAB=${LAB:-$TARGET_DIR/release/lab}
SERVER=${SERVER:-$TARGET_DIR/release/examples/trivial_server}
GATEWAY=${GATEWAY:-$TARGET_DIR/release/examples/gateway_bench}
POD=127.0.0.1:${POD_PORT:-8099}
GW=127.0.0.1:${GW_PORT:-8098}
OUT=$(mktemp -d)

# Two CPUs: the pod and the gateway share CPU 0 (the gateway's cost includes
# the CPU it takes from the pod), the load generator has CPU 1.
SRV_CPU=${SRV_CPU:-0}
GEN_CPU=${GEN_CPU:-1}
taskset -c "$SRV_CPU" "$SERVER" "$POD" "${SERVER_THREADS:-1}" 2>/dev/null &
SERVER_PID=$!
taskset -c "$SRV_CPU" "$GATEWAY" "$GW" "$POD" "${GATEWAY_THREADS:-1}" 2>/dev/null &
GATEWAY_PID=$!
trap 'kill $SERVER_PID $GATEWAY_PID' EXIT
# Both listen within milliseconds; wait until they answer.
for addr in "$POD" "$GW/v2/health/ready"; do
  for _ in $(seq 100); do curl -sf -o /dev/null "http://$addr" && break; sleep 0.05; done
done

# CPU seconds (user + system) a process has used so far.
cpu_of() { awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$1/stat"; }

run() { # label, target, rate
  local before pod_before; before=$(cpu_of "$GATEWAY_PID"); pod_before=$(cpu_of "$SERVER_PID")
  taskset -c "$GEN_CPU" "$LAB" load --threads 1 --protocol v2-rest --target "http://$2" --model m --rate "$3" \
    --duration "${SECS}s" --timeout 5s --json -o "$OUT/results.json" >"$OUT/r.json" 2>/dev/null
  rm -rf "$OUT/results.json"
  python3 - "$1" "$3" "$OUT/r.json" "$before" "$(cpu_of "$GATEWAY_PID")" "$pod_before" "$(cpu_of "$SERVER_PID")" <<'PY'
import json, sys
label, rate, path, before, after, pod_before, pod_after = sys.argv[1:]
r = json.load(open(path))
l, s = r["latency_seconds"], r["service_time_seconds"]
why = ",".join(f"{k}={v}" for k, v in r["failed_by_reason"].items())
print(f"  {label:8} {rate:>5}/s: {r['throughput_rps']:.0f} rps, failed {r['failed']}{' (' + why + ')' if why else ''}, "
      f"latency p50 {l['p50']*1e3:.3f} p99 {l['p99']*1e3:.3f} ms, "
      f"service time p50 {s['p50']*1e3:.3f} p99 {s['p99']*1e3:.3f} ms", end="")
n = max(r["completed"] + r["failed"], 1)
pod = (float(pod_after) - float(pod_before)) / n * 1e6
gw = (float(after) - float(before)) / n * 1e6
print(f", CPU per request: pod {pod:.1f} us" + (f", gateway {gw:.1f} us" if label == "gateway" else ""))
PY
}

echo "# $(date -u +%FT%TZ) secs=$SECS rounds=$ROUNDS $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$ROUNDS"); do
  echo "round $r"
  for rate in ${RATES:-1000 5000}; do
    run direct "$POD" "$rate"
    run gateway "$GW" "$rate"
  done
done
echo "# load average $(cut -d' ' -f1-3 /proc/loadavg)"
