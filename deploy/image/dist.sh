#!/bin/sh
# Runs inside the Dockerfile's builder stages: puts what the runtime stage copies
# under OUT, either built here from the source tree in /src (LAB_DIST=source) or
# taken from a context that deploy/image/build.sh prepared (LAB_DIST=context).
#
#   dist.sh binary OUT          OUT/lab
#   dist.sh ort cpu|cuda OUT    OUT/libonnxruntime*.so* (and the CUDA provider)
#
# POSIX sh on purpose: the builder image may be rust:*-bookworm or lab-base.
set -eu

what=$1
shift

case "${LAB_DIST:-source}:$what" in
  context:binary)
    mkdir -p "$1"
    install -m 0755 /src/dist/lab "$1/lab"
    ;;
  context:ort)
    mkdir -p "$2"
    # The classic builder builds every stage before the target, so building
    # `cuda` passes through `ort-cpu` too, with a context made for cuda only;
    # build.sh checks the libraries of the variant it builds.
    if [ -d /src/dist/ort-"$1" ]; then
      cp -a /src/dist/ort-"$1"/. "$2"/
    else
      echo "dist.sh: no $1 libraries in this context (a stage the target does not use)"
    fi
    ;;
  source:binary)
    mkdir -p "$1"
    cd /src
    cargo build --profile "${CARGO_PROFILE:-release}" --locked -p lab-harness --bin lab
    dir=${CARGO_PROFILE:-release}
    [ "$dir" = dev ] && dir=debug
    install -m 0755 "target/$dir/lab" "$1/lab"
    ;;
  source:ort)
    variant=$1
    out=$2
    mkdir -p "$out"
    case "$variant" in
      cpu) pkg="onnxruntime==${ORT_VERSION:?}" ;;
      cuda) pkg="onnxruntime-gpu==${ORT_GPU_VERSION:?}" ;;
      *) echo "dist.sh: unknown variant '$variant'" >&2; exit 2 ;;
    esac
    if ! python3 -m pip --version >/dev/null 2>&1; then
      apt-get update -qq && apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
    fi
    tmp=$(mktemp -d)
    # Only the wheel's shared libraries are used; Python never reaches the image.
    python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$tmp" "$pkg"
    python3 - "$tmp"/*.whl "$out" <<'EOF'
import sys, zipfile, os
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        base = os.path.basename(name)
        if name.startswith("onnxruntime/capi/") and base.startswith("libonnxruntime") and ".so" in base:
            with open(os.path.join(out, base), "wb") as f:
                f.write(z.read(name))
EOF
    rm -rf "$tmp"
    ;;
  *)
    echo "dist.sh: unknown step '$what' or LAB_DIST '${LAB_DIST:-}'" >&2
    exit 2
    ;;
esac
