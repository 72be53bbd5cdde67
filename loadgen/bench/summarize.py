"""Reads one tool's JSON output on stdin and prints the figures compare.sh reports."""
import json
import sys

kind = sys.argv[1]
r = json.load(sys.stdin)
if kind == "lab":
    g = r["send_lag_seconds"]
    print(f'{r["throughput_rps"]:.0f} rps, refused {r["refused"]}, send lag p50 {g["p50"]*1e3:.3f} ms '
          f'p99 {g["p99"]*1e3:.3f} ms max {g["max"]*1e3:.3f} ms, late>1ms {r["late_over_1ms_fraction"]*100:.3f}%')
elif kind == "oha":
    s, p = r["summary"], r["latencyPercentiles"]
    print(f'{s["requestsPerSec"]:.0f} rps, latency p99 {p["p99"]*1e3:.3f} ms')
