#!/usr/bin/env bash
# Regenerates docs/report-spike.png and docs/report-compare.png from simulator
# runs of the example scenarios, rendered by headless Chromium with the network
# off. Needs a built `lab` (cargo build -p lab-harness) and chromium.
#   reports/scripts/docs-screenshots.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
LAB=${LAB:-${CARGO_TARGET_DIR:-target}/debug/lab}
out=$(mktemp -d)

# `lab run` exits 1 when an SLO fails, which these scenarios are meant to show.
run() { local rc=0; "$LAB" run "$@" >/dev/null || rc=$?; [ "$rc" -le 1 ]; }
run scenarios/spike.toml --out "$out/spike"
run scenarios/timeslice-vs-mig.toml --out "$out/time-slicing"
run scenarios/timeslice-vs-mig.toml --out "$out/mig" \
  --set 'node_pools.a100.sharing={ strategy = "mig", layout = ["3g.20gb", "3g.20gb"] }'

"$LAB" report "$out/spike/results.json" -o "$out/spike.html"
"$LAB" report "$out/time-slicing/results.json" "$out/mig/results.json" \
  --label time-slicing --label "MIG 2×3g.20gb" -o "$out/compare.html"

shot() {
  chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --host-resolver-rules="MAP * ~NOTFOUND" --hide-scrollbars \
    --user-data-dir="$(mktemp -d)" --window-size="1280,$3" \
    --screenshot="$2" "file://$1" 2>/dev/null
}
shot "$out/spike.html" "$PWD/docs/report-spike.png" 3200
shot "$out/compare.html" "$PWD/docs/report-compare.png" 2940
echo "wrote docs/report-spike.png and docs/report-compare.png"
