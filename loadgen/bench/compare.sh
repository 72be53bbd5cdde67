#!/usr/bin/env bash
# Load-generator benchmark: lab load, oha and wrk against the same trivial HTTP
# server on 127.0.0.1, in one run so the ratios share the machine's conditions.
# Results: BENCHMARKS.md ("Load generator"). Needs: wrk (apt), oha (cargo install oha),
# and release builds of `lab` and the trivial_server example:
#   cargo build --release -p lab-harness
#   cargo build --release -p lab-loadgen --example trivial_server
# Usage: loadgen/bench/compare.sh [SECONDS] [ROUNDS] [CONNECTIONS]
# Env: LAB_BASE=path/to/older/lab adds its max open-loop rate to every round;
# RATES="20000 30000" sets the fixed rates tried; LAB_THREADS=N passes
# --threads N to lab (default: one pacing thread per CPU the generator may use).
set -euo pipefail
SECS=${1:-10}
ROUNDS=${2:-3}
CONN=${3:-64}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
LAB=${LAB:-$TARGET_DIR/release/lab}
SERVER=${SERVER:-$TARGET_DIR/release/examples/trivial_server}
PORT=${PORT:-8099}
URL="http://127.0.0.1:$PORT/"
OUT=$(mktemp -d)
HERE=$(cd "$(dirname "$0")" && pwd)
# Two cores: the server gets CPU 0, every load generator CPU 1.
SRV_CPU=${SRV_CPU:-0}
GEN_CPU=${GEN_CPU:-1}
THREADS=()
if [ -n "${LAB_THREADS:-}" ]; then THREADS=(--threads "$LAB_THREADS"); fi

taskset -c "$SRV_CPU" "$SERVER" "127.0.0.1:$PORT" 1 2>/dev/null &
SERVER_PID=$!
trap 'kill $SERVER_PID' EXIT
sleep 0.5

# Runs a generator; prints its stdout, then the CPU time it used (user+system
# seconds), and that time per completed request when the first word of its
# output is a rate: on a shared machine the CPU share a tool gets varies, the
# CPU it needs per request much less.
cpu() {
  local times
  times=$( { TIMEFORMAT="%U %S"; time "$@" >"$OUT/stdout" 2>/dev/null; } 2>&1 )
  python3 - "$OUT/stdout" "$times" "$SECS" <<'PY'
import sys
out = open(sys.argv[1]).read().strip()
user, system = (float(x) for x in sys.argv[2].split())
cpu = user + system
try:
    rps = float(out.split()[0])
    per = f", {cpu / (rps * float(sys.argv[3])) * 1e6:.2f} us CPU per request" if rps > 0 else ""
except (ValueError, IndexError):
    per = ""
print(f"{out} | CPU {cpu:.2f} s{per}")
PY
}

max_lab() { cpu run_max_lab "$@"; }
run_max_lab() {
  # Open loop far above capacity; completions per second is the ceiling.
  taskset -c "$GEN_CPU" "$LAB" load --protocol http --target "$URL" --rate "$1" "${THREADS[@]}" \
    --duration "${SECS}s" --max-in-flight "$CONN" --timeout 5s --json -o "$OUT/lab.json" \
    | python3 "$HERE/summarize.py" lab
}
max_base() { cpu run_max_base "$@"; }
run_max_base() {
  # The same as max_lab with another build (LAB_BASE), for before/after figures.
  taskset -c "$GEN_CPU" "$LAB_BASE" load --protocol http --target "$URL" --rate "$1" \
    --duration "${SECS}s" --max-in-flight "$CONN" --timeout 5s --json -o "$OUT/base.json" \
    | python3 "$HERE/summarize.py" lab
}
max_oha() { cpu run_max_oha; }
run_max_oha() {
  taskset -c "$GEN_CPU" oha -z "${SECS}s" -c "$CONN" --no-tui --output-format json "$URL" \
    | python3 "$HERE/summarize.py" oha
}
max_wrk() { cpu run_max_wrk; }
run_max_wrk() {
  taskset -c "$GEN_CPU" wrk -t1 -c"$CONN" -d"${SECS}s" "$URL" | awk '/Requests\/sec/ {printf "%.0f\n", $2}'
}
fixed_lab() {
  # rate, then: achieved rps, refused, send-lag p50/p99/max (ms), % late > 1 ms
  taskset -c "$GEN_CPU" "$LAB" load --protocol http --target "$URL" --rate "$1" "${THREADS[@]}" \
    --duration "${SECS}s" --max-in-flight 1024 --timeout 5s --json -o "$OUT/lab.json" \
    | python3 "$HERE/summarize.py" lab
}
fixed_oha() {
  taskset -c "$GEN_CPU" oha -z "${SECS}s" -c "$CONN" -q "$1" --latency-correction --no-tui --output-format json "$URL" \
    | python3 "$HERE/summarize.py" oha
}

echo "# $(date -u +%FT%TZ) secs=$SECS rounds=$ROUNDS connections=$CONN cpus: server=$SRV_CPU generators=$GEN_CPU lab threads: ${LAB_THREADS:-default}"
echo "# load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$ROUNDS"); do
  echo "round $r"
  echo "  wrk  max rps: $(max_wrk)"
  echo "  oha  max rps: $(max_oha)"
  echo "  lab  max (open loop, 200k/s offered): $(max_lab 200000)"
  if [ -n "${LAB_BASE:-}" ]; then
    echo "  base max (open loop, 200k/s offered, $LAB_BASE): $(max_base 200000)"
  fi
  for rate in ${RATES:-20000 30000 40000}; do
    echo "  lab  fixed $rate/s: $(fixed_lab "$rate")"
  done
  echo "  oha  fixed 20000/s (-q, latency correction): $(fixed_oha 20000)"
done
echo "# load average: $(cut -d' ' -f1-3 /proc/loadavg)"
