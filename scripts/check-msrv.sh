#!/usr/bin/env bash
# The minimum Rust version the workspace declares must be true:
#  1. no resolved dependency needs a newer Rust than `rust-version` says
#     (cargo metadata carries each package's own `rust-version`), and every
#     workspace member declares the workspace's value;
#  2. the workspace builds with that toolchain, when it is installed
#     (`rustup toolchain install <version>`); otherwise this says it skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

host=$(rustc -vV | sed -n 's/^host: //p')
declared=$(cargo metadata --format-version 1 --locked --filter-platform "$host" | python3 -c '
import json, sys

def key(v):
    return tuple(int(x) for x in v.split("."))

m = json.load(sys.stdin)
members = set(m["workspace_members"])
resolved = {n["id"] for n in m["resolve"]["nodes"]}
ours = [p for p in m["packages"] if p["id"] in members]
versions = {p["rust_version"] for p in ours}
if len(versions) != 1 or None in versions:
    undeclared = sorted(p["name"] for p in ours if p["rust_version"] is None)
    sys.exit(f"members disagree on rust-version {sorted(map(str, versions))}; "
             f"without one: {undeclared} (use rust-version.workspace = true)")
declared = versions.pop()
theirs = [p for p in m["packages"]
          if p["id"] in resolved and p["id"] not in members and p["rust_version"]]
newest = max(key(p["rust_version"]) for p in theirs)
above = sorted(f"{p['name']} {p['version']} needs {p['rust_version']}"
               for p in theirs if key(p["rust_version"]) > key(declared))
if above:
    sys.exit(f"rust-version {declared} is too low:\n  " + "\n  ".join(above))
newest = ".".join(map(str, newest))
print(f"msrv: rust-version {declared}; the most any dependency needs is {newest}",
      file=sys.stderr)
print(declared)
')

# rustup names toolchains by full version; "1.92" means 1.92.0.
toolchain=$declared
[[ $toolchain =~ ^[0-9]+\.[0-9]+$ ]] && toolchain=$toolchain.0
if rustup run "$toolchain" rustc --version >/dev/null 2>&1; then
  # Its own target dir: another compiler's artifacts would only evict ours.
  CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}/msrv-$toolchain" \
    cargo "+$toolchain" check --workspace --all-targets --locked
  echo "msrv: the workspace builds with Rust $toolchain" >&2
else
  echo "msrv: SKIPPED the build with Rust $toolchain: that toolchain is not installed" \
    "(rustup toolchain install $toolchain --profile minimal)" >&2
fi
