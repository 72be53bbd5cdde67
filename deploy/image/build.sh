#!/usr/bin/env bash
# Builds the `lab` container image and tags it lab:<version>-<commit>[-dirty]-<variant>
# (never `latest`). The last line on stdout is the image reference.
#
#   deploy/image/build.sh [--variant cpu|cuda] [--binary PATH] [--ort-dir DIR]
#                         [--repo NAME] [--from-source] [--base IMAGE] [--cuda-base IMAGE]
#
#   --variant cpu|cuda  cpu (default): Debian + libonnxruntime from the onnxruntime
#                       wheel; cuda: NVIDIA's CUDA 13 + cuDNN 9 runtime image and
#                       onnxruntime-gpu's libraries (needs that base image locally
#                       or a registry that has it)
#   --binary PATH       the `lab` binary to put in the image (default: build one
#                       with `cargo build --release --locked -p lab-harness`)
#   --ort-dir DIR       a folder holding libonnxruntime.so* for the variant
#                       (default: the wheel's libraries, downloaded once with pip
#                       into target/lab-image/)
#   --repo NAME         image repository (default: lab), e.g. a registry path
#   --from-source       build everything in Docker from the repository (the
#                       Dockerfile's builder stages; needs a registry for the
#                       rust, debian and nvidia/cuda images)
#   --base IMAGE        the CPU runtime base (default: lab-base:bookworm, made by
#                       deploy/image/build-base.sh when missing)
#   --cuda-base IMAGE   the CUDA runtime base (default: the Dockerfile's)
#
# Without --from-source the Docker context is a small folder with only the
# binary, the libraries and dist.sh, so no image has to be pulled.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VARIANT=cpu
BINARY=
ORT_DIR=
REPO=lab
FROM_SOURCE=0
BASE=lab-base:bookworm
CUDA_BASE=
ORT_VERSION=1.32.0
ORT_GPU_VERSION=1.31.1
PY=${PYTHON:-python3}

die() { echo "build.sh: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --variant) VARIANT=${2:-}; shift ;;
    --binary) BINARY=${2:-}; shift ;;
    --ort-dir) ORT_DIR=${2:-}; shift ;;
    --repo) REPO=${2:-}; shift ;;
    --from-source) FROM_SOURCE=1 ;;
    --base) BASE=${2:-}; shift ;;
    --cuda-base) CUDA_BASE=${2:-}; shift ;;
    -h|--help) sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (try --help)" ;;
  esac
  shift
done
case "$VARIANT" in cpu|cuda) ;; *) die "--variant must be cpu or cuda, not '$VARIANT'" ;; esac
[ -n "$REPO" ] || die "--repo must not be empty"
case "$REPO" in *:*) die "--repo takes a repository without a tag ('$REPO'); the tag is always <version>-<commit>-<variant>" ;; esac

VERSION=$(awk -F'"' '/^\[workspace.package\]/ {w=1} w && /^version *=/ {print $2; exit}' "$ROOT/Cargo.toml")
[ -n "$VERSION" ] || die "no [workspace.package] version in $ROOT/Cargo.toml"
COMMIT=$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null) || die "not a git checkout: the tag needs a commit"
# A tree with changes is not that commit: say so in the tag.
if ! git -C "$ROOT" diff --quiet HEAD -- 2>/dev/null; then COMMIT="$COMMIT-dirty"; fi
TAG="$REPO:$VERSION-$COMMIT-$VARIANT"
case "$TAG" in *:latest|*:latest-*) die "refusing to tag '$TAG': images are tagged by version and commit, never latest" ;; esac

BUILD_ARGS=(--build-arg "LAB_VERSION=$VERSION" --build-arg "LAB_REVISION=$COMMIT")
[ -n "$CUDA_BASE" ] && BUILD_ARGS+=(--build-arg "CUDA_BASE_IMAGE=$CUDA_BASE")

if [ "$FROM_SOURCE" = 1 ]; then
  [ -z "$BINARY$ORT_DIR" ] || die "--from-source builds the binary and fetches the libraries itself; drop --binary/--ort-dir"
  echo "build.sh: building $TAG from source (the repository is the context)" >&2
  docker build --force-rm -f "$ROOT/deploy/Dockerfile" --target "$VARIANT" "${BUILD_ARGS[@]}" -t "$TAG" "$ROOT" >&2
  echo "$TAG"
  exit 0
fi

# ---- the binary ----
if [ -z "$BINARY" ]; then
  echo "build.sh: cargo build --release --locked -p lab-harness --bin lab" >&2
  (cd "$ROOT" && cargo build --release --locked -p lab-harness --bin lab >&2)
  BINARY="${CARGO_TARGET_DIR:-$ROOT/target}/release/lab"
fi
[ -x "$BINARY" ] || die "--binary $BINARY is not an executable file"

# ---- the ONNX Runtime libraries ----
if [ -z "$ORT_DIR" ]; then
  if [ "$VARIANT" = cpu ]; then pkg="onnxruntime==$ORT_VERSION"; else pkg="onnxruntime-gpu==$ORT_GPU_VERSION"; fi
  ORT_DIR="$ROOT/target/lab-image/ort-${pkg/==/-}"
  if ! ls "$ORT_DIR"/libonnxruntime.so* >/dev/null 2>&1; then
    echo "build.sh: fetching the $pkg wheel's libraries into $ORT_DIR" >&2
    tmp=$(mktemp -d)
    "$PY" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: --dest "$tmp" "$pkg" >&2 ||
      { rm -rf "$tmp"; echo "build.sh: pip download $pkg failed" >&2; exit 3; }
    mkdir -p "$ORT_DIR.partial"
    "$PY" - "$tmp"/*.whl "$ORT_DIR.partial" <<'EOF'
import os, sys, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        base = os.path.basename(name)
        if name.startswith("onnxruntime/capi/") and base.startswith("libonnxruntime") and ".so" in base:
            with open(os.path.join(out, base), "wb") as f:
                f.write(z.read(name))
EOF
    rm -rf "$tmp" "$ORT_DIR"
    mv "$ORT_DIR.partial" "$ORT_DIR"
  fi
fi
ls "$ORT_DIR"/libonnxruntime.so* >/dev/null 2>&1 || die "--ort-dir $ORT_DIR holds no libonnxruntime.so*"
if [ "$VARIANT" = cuda ] && ! ls "$ORT_DIR"/libonnxruntime_providers_cuda.so >/dev/null 2>&1; then
  die "--ort-dir $ORT_DIR has no libonnxruntime_providers_cuda.so: the cuda variant needs onnxruntime-gpu's libraries"
fi

# ---- the base images ----
if ! docker image inspect "$BASE" >/dev/null 2>&1; then
  [ "$BASE" = lab-base:bookworm ] || die "base image $BASE is not present locally"
  "$ROOT/deploy/image/build-base.sh" >&2
fi
if [ "$VARIANT" = cuda ]; then
  cuda_base=${CUDA_BASE:-$(awk -F= '/^ARG CUDA_BASE_IMAGE=/ {print $2; exit}' "$ROOT/deploy/Dockerfile")}
  docker image inspect "$cuda_base" >/dev/null 2>&1 ||
    echo "build.sh: $cuda_base is not present locally; docker will try to pull it" >&2
fi

# ---- the small context ----
CTX="$ROOT/target/lab-image/context-$VARIANT"
rm -rf "$CTX"
mkdir -p "$CTX/deploy/image" "$CTX/dist/ort-$VARIANT"
cp "$ROOT/deploy/Dockerfile" "$CTX/Dockerfile"
cp "$ROOT/deploy/image/dist.sh" "$CTX/deploy/image/dist.sh"
# Debug info stays on the host: a debug build is mostly DWARF, and symbols are
# enough for a readable backtrace.
if command -v objcopy >/dev/null; then
  objcopy --strip-debug "$BINARY" "$CTX/dist/lab"
else
  cp "$BINARY" "$CTX/dist/lab"
fi
cp -L "$ORT_DIR"/libonnxruntime*.so* "$CTX/dist/ort-$VARIANT/"

echo "build.sh: docker build $TAG (context $(du -sh "$CTX" | cut -f1))" >&2
docker build --force-rm --target "$VARIANT" "${BUILD_ARGS[@]}" \
  --build-arg LAB_DIST=context \
  --build-arg "BUILDER_IMAGE=$BASE" \
  --build-arg "CPU_BASE_IMAGE=$BASE" \
  -t "$TAG" "$CTX" >&2
# The classic builder leaves each builder stage behind as an untagged image;
# only this project's (by label) are removed.
docker image prune -f --filter label=lab.image.stage=build >/dev/null 2>&1 || true
echo "$TAG"
