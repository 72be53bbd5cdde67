#!/usr/bin/env bash
# Simulator benchmarks, side by side with SimPy in one run (see BENCHMARKS.md).
#   pip install simpy && cargo build --release -p lab-harness && benches/sim.sh
set -euo pipefail
cd "$(dirname "$0")/.."
LAB=${LAB:-target/release/lab}
PEER=${PEER:-../shared/peers/sim_simpy.py}
out=$(mktemp -d)
echo "# M/M/c, lambda 800, mu 100, c 10, 1.25 M requests: user CPU seconds"
for i in 1 2 3; do
  simpy=$( { /usr/bin/time -f "%U" python3 "$PEER" 800 100 10 1250000 >/dev/null; } 2>&1 | tail -1)
  ours=$( { /usr/bin/time -f "%U" "$LAB" run benches/mmc-1m.toml --no-report --out "$out/mmc" >/dev/null; } 2>&1 | tail -1)
  python3 -c "s,o=$simpy,$ours; print(f'simpy {s:.2f} s ({1.25e6/s:,.0f} req/s)  lab {o:.2f} s ({1.25e6/max(o,1e-3):,.0f} req/s)  ratio {s/max(o,1e-3):.0f}x')"
done
echo "# 24 h at 10k req/s (864 M requests), full model"
/usr/bin/time -f "wall %e s, user %U s, peak RSS %M KiB" "$LAB" run benches/day-10k.toml --no-report --out "$out/day" | head -3
