#!/usr/bin/env bash
# A/B of two lab binaries on the M/M/c workload, 10x longer than sim.sh's
# (12.5 M requests), alternating A and B so both see the same machine.
#   benches/ab.sh /tmp/lab-before target/release/lab [rounds]
# Prints the minimum over the rounds, per binary, of user CPU and of
# wall_clock.elapsed_seconds, in ns per request.
set -euo pipefail
cd "$(dirname "$0")/.."
a=$1 b=$2 rounds=${3:-9}
out=$(mktemp -d)
for i in $(seq "$rounds"); do
  for bin in "$a" "$b"; do
    tag=$([ "$bin" = "$a" ] && echo A || echo B)
    user=$( { /usr/bin/time -f "%U" "$bin" run benches/mmc-1m.toml --no-report --out "$out/r-$i-$tag" \
      --set run.duration='"15625s"' --set 'traffic.0.phases.0.duration="15625s"' >/dev/null; } 2>&1 | tail -1)
    wall=$(python3 -c "import json; print(json.load(open('$out/r-$i-$tag/results.json'))['wall_clock']['elapsed_seconds'])")
    echo "$user $wall" >>"$out/$tag"
  done
done
for tag in A B; do
  bin=$([ "$tag" = A ] && echo "$a" || echo "$b")
  python3 -c "
rows = [l.split() for l in open('$out/$tag')]
u = min(float(r[0]) for r in rows); w = min(float(r[1]) for r in rows)
print(f'$tag $bin: user {u / 12.5e6 * 1e9:.1f} ns/request, simulation {w / 12.5e6 * 1e9:.1f} ns/request')"
done
rm -rf "$out"
