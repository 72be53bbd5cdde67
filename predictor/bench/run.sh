#!/usr/bin/env bash
# Side-by-side benchmark: lab-predictor, MLServer (with the shared peer runtime) and
# ONNX Runtime in-process, same model, same machine, same load client (oha), one run.
# Prints one line per measurement; BENCHMARKS.md ("Predictor") has the figures.
#
# Needs: a release build of lab-predictor, oha, onnxruntime, and MLServer in
# $MLSERVER_VENV (default /work/venv-mlserver): `pip install mlserver onnxruntime`.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/lab-predictor}
OHA=${OHA:-oha}
MLSERVER_VENV=${MLSERVER_VENV:-/work/venv-mlserver}
PEERS=${PEERS:-/work/shared/peers}
MODEL=$ROOT/predictor/models/mlp.onnx
DUR=${DUR:-10s}
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

python3 "$ROOT/predictor/bench/make_bodies.py" "$WORK" 1 64 256 >/dev/null

wait_ready() {
  for _ in $(seq 1 600); do curl -sf "$1/v2/health/ready" >/dev/null && return 0; sleep 0.1; done
  echo "not ready: $1" >&2; exit 1
}

# oha run; prints "rps p50_ms p99_ms success_ratio" from its JSON summary.
load() {
  local url=$1 body=$2 ctype=$3 extra_header=$4; shift 4
  local hdr=()
  [ -n "$extra_header" ] && hdr=(-H "$extra_header")
  "$OHA" --no-tui --output-format json -m POST -T "$ctype" "${hdr[@]}" -D "$body" -z "$DUR" "$@" "$url" > "$WORK/oha.json"
  python3 - "$WORK/oha.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
s = d["summary"]; p = d["latencyPercentiles"]
codes = d.get("statusCodeDistribution", {})
ok = sum(v for k, v in codes.items() if k == "200"); total = sum(codes.values()) or 1
print(f"{s['requestsPerSec']:.0f} {p['p50']*1e3:.2f} {p['p99']*1e3:.2f} {ok/total:.3f}")
PY
}

# In-process ONNX Runtime: the limit, from Python and from Rust (our own session
# code, through `calibrate`), one intra-op thread.
python3 "$ROOT/predictor/bench/inprocess.py" "$MODEL" 3 1 64 256
"$BIN" calibrate --model "$MODEL" --threads 1 --batch-sizes 1,64,256 --warmup 200 --repetitions 20000 -o "$WORK/cal.json" 2>/dev/null
python3 - "$WORK/cal.json" <<'PY'
import json, sys
for p in json.load(open(sys.argv[1]))["points"]:
    b = p["batch_size"]
    print(f"inprocess-rust batch={b} rows_per_s_mean={b / p['mean_seconds']:.0f} rows_per_s_p50={b / p['p50_seconds']:.0f}")
PY

# lab-predictor, batching off and on (one intra-op thread, like the peer).
"$BIN" serve --model "mlp=$MODEL" --host 127.0.0.1 --http-port 18280 --no-grpc --threads 1 --max-batch-size 1 >/dev/null 2>&1 &
PIDS+=($!)
"$BIN" serve --model "mlp=$MODEL" --host 127.0.0.1 --http-port 18281 --no-grpc --threads 1 --max-batch-size 256 --max-queue-rows 4096 >/dev/null 2>&1 &
PIDS+=($!)
# MLServer with the peer runtime; parallel_workers 0 because its worker pool dies at
# start-up here ("There is no current event loop in thread 'MainThread'").
mkdir -p "$WORK/mls/mlp"
cp "$MODEL" "$WORK/mls/mlp/model.onnx"
echo '{"http_port": 18282, "grpc_port": 18283, "metrics_port": 18284, "host": "127.0.0.1", "parallel_workers": 0}' > "$WORK/mls/settings.json"
echo '{"name": "mlp", "implementation": "mlserver_onnx.OnnxModel", "parameters": {"uri": "model.onnx"}}' > "$WORK/mls/mlp/model-settings.json"
(cd "$WORK/mls" && PYTHONPATH="$PEERS" exec "$MLSERVER_VENV/bin/mlserver" start . >"$WORK/mlserver.log" 2>&1) &
PIDS+=($!)
OURS=http://127.0.0.1:18280; OURS_B=http://127.0.0.1:18281; MLS=http://127.0.0.1:18282
wait_ready $OURS; wait_ready $OURS_B; wait_ready $MLS
INFER=/v2/models/mlp/infer
J1="$WORK/json-1.json"; B64="$WORK/bin-64.bin"; H64="Inference-Header-Content-Length: $(cat "$WORK/bin-64.len")"
B256="$WORK/bin-256.bin"; H256="Inference-Header-Content-Length: $(cat "$WORK/bin-256.len")"
J64="$WORK/json-64.json"

# Warm every server up.
for u in $OURS $OURS_B $MLS; do DUR=2s load "$u$INFER" "$J1" application/json "" -c 8 >/dev/null; done

echo "saturation single-row c=32 (rps p50_ms p99_ms ok)"
echo "  lab-predictor-nobatch $(load $OURS$INFER "$J1" application/json "" -c 32)"
echo "  lab-predictor-batch256 $(load $OURS_B$INFER "$J1" application/json "" -c 32)"
echo "  mlserver              $(load $MLS$INFER "$J1" application/json "" -c 32)"

RATE=${RATE:-500}
echo "fixed rate $RATE req/s single-row, open loop with latency correction (rps p50_ms p99_ms ok)"
echo "  lab-predictor-nobatch $(load $OURS$INFER "$J1" application/json "" -c 64 -q "$RATE" --latency-correction)"
echo "  mlserver              $(load $MLS$INFER "$J1" application/json "" -c 64 -q "$RATE" --latency-correction)"

echo "dynamic batching, single-row requests c=256 (rps = rows/s, p50_ms p99_ms ok)"
echo "  lab-predictor-batch256 $(load $OURS_B$INFER "$J1" application/json "" -c 256)"

echo "client batches of 64 rows c=8 (rps x 64 = rows/s, p50_ms p99_ms ok)"
echo "  lab-predictor-binary  $(load $OURS_B$INFER "$B64" application/octet-stream "$H64" -c 8)"
echo "  lab-predictor-json    $(load $OURS_B$INFER "$J64" application/json "" -c 8)"
echo "  mlserver-json         $(load $MLS$INFER "$J64" application/json "" -c 8)"
echo "client batches of 256 rows c=8 (rps x 256 = rows/s, p50_ms p99_ms ok)"
echo "  lab-predictor-binary  $(load $OURS_B$INFER "$B256" application/octet-stream "$H256" -c 8)"
