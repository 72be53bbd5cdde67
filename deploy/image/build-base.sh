#!/usr/bin/env bash
# Builds the runtime base image `lab-base:bookworm` from Debian packages with
# debootstrap and `docker import`, for machines that cannot pull `debian:` images.
# Reuses an existing image unless --force; needs root and debootstrap.
#
#   deploy/image/build-base.sh [--force] [--tag REF] [--mirror URL]
#
# The mirror defaults to the one this machine's apt already uses, so the script
# works wherever `apt-get install` does.
set -euo pipefail

TAG=lab-base:bookworm
SUITE=bookworm
FORCE=0
MIRROR=${DEBIAN_MIRROR:-}
while [ $# -gt 0 ]; do
  case "$1" in
    --force) FORCE=1 ;;
    --tag) TAG=$2; shift ;;
    --mirror) MIRROR=$2; shift ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-base.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
  shift
done

if [ "$FORCE" = 0 ] && docker image inspect "$TAG" >/dev/null 2>&1; then
  echo "build-base.sh: $TAG already exists (use --force to rebuild)"
  exit 0
fi
command -v debootstrap >/dev/null || { echo "build-base.sh: debootstrap is not installed (apt-get install debootstrap)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "build-base.sh: debootstrap needs root" >&2; exit 2; }

# The first Debian (not security) mirror in this machine's apt sources, one-line
# or deb822 style.
apt_mirror() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    awk '
      /^deb[ \t]/ { for (i = 2; i <= NF; i++) if ($i ~ /^(https?|file):/) { print $i; exit } }
      /^URIs:/    { print $2; exit }
    ' "$f" | grep -v -- '-security' | head -n1
  done | head -n1
}
[ -n "$MIRROR" ] || MIRROR=$(apt_mirror)
[ -n "$MIRROR" ] || { echo "build-base.sh: no Debian mirror found in /etc/apt; pass --mirror URL" >&2; exit 2; }

ROOT=$(mktemp -d /tmp/lab-base.XXXXXX)
trap 'rm -rf "$ROOT"' EXIT
echo "build-base.sh: debootstrap $SUITE (minbase) from $MIRROR into $ROOT"
# libonnxruntime needs libstdc++6 and libgcc-s1: minbase has them already (apt
# depends on them); they are named so that they stay if that changes.
debootstrap --variant=minbase --include=libstdc++6,libgcc-s1 "$SUITE" "$ROOT" "$MIRROR" >"$ROOT.log" 2>&1 ||
  { tail -n 30 "$ROOT.log" >&2; echo "build-base.sh: debootstrap failed (log: $ROOT.log)" >&2; exit 3; }
rm -f "$ROOT.log"

# What a runtime image never needs: package caches and lists, docs, man pages.
rm -rf "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/lib/apt/lists/* \
  "$ROOT"/usr/share/doc/* "$ROOT"/usr/share/man/* "$ROOT"/usr/share/info/* \
  "$ROOT"/var/log/*.log "$ROOT"/var/cache/debconf/*-old
# The image's own apt sources point at the same mirror, so a derived image can
# still install packages.
echo "deb $MIRROR $SUITE main" >"$ROOT/etc/apt/sources.list"

tar --numeric-owner -C "$ROOT" -c . |
  docker import --change 'CMD ["/bin/bash"]' \
    --message "debootstrap --variant=minbase $SUITE" - "$TAG" >/dev/null
echo "build-base.sh: built $TAG ($(docker image inspect -f '{{.Size}}' "$TAG" | awk '{printf "%.0f MB", $1/1e6}'))"
