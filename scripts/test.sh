#!/usr/bin/env bash
# The project's one test command: installs what the tests need, then runs them all.
set -euo pipefail
cd "$(dirname "$0")/.."
# Python-based tests run the interpreter of the project's virtual environment
# (made by install-test-deps.sh), and ONNX Runtime is the one its pip package ships.
export LAB_VENV=${LAB_VENV:-$HOME/.cache/lab-venv}
scripts/install-test-deps.sh
export PYTHON=$LAB_VENV/bin/python
if [ -z "${ORT_DYLIB_PATH:-}" ]; then
  ORT_DYLIB_PATH=$("$PYTHON" -c 'import glob, os, onnxruntime
capi = os.path.join(os.path.dirname(onnxruntime.__file__), "capi")
print(sorted(glob.glob(os.path.join(capi, "libonnxruntime.so.*")))[-1])')
  export ORT_DYLIB_PATH
fi
cargo test --workspace --all-targets
