#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine (idempotent).
# Each section names the tests that need it.
#
# Python packages go into a virtual environment of the project's own, never
# into the system interpreter (stock Debian 12 refuses `pip install` there,
# PEP 668): $LAB_VENV, by default ~/.cache/lab-venv, so CI machines keep it
# between runs. scripts/test.sh points the tests at it (PYTHON, ORT_DYLIB_PATH).
set -euo pipefail
VENV=${LAB_VENV:-$HOME/.cache/lab-venv}
BASE_PYTHON=${LAB_BASE_PYTHON:-python3}
apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq; APT_UPDATED=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}
if [ ! -x "$VENV/bin/python" ]; then
  # Debian ships venv's pip bootstrap (ensurepip) separately.
  "$BASE_PYTHON" -c 'import ensurepip, venv' 2>/dev/null || apt_install python3-venv
  "$BASE_PYTHON" -m venv "$VENV"
fi
PY=$VENV/bin/python
pip_install() { "$PY" -m pip install --quiet --disable-pip-version-check "$@"; }

# predictor: ONNX Runtime (the shared library the server loads and the reference
# the conformance tests compare against), test-model generation, the official
# Open Inference Protocol clients, and protoc-free gRPC build (protox in build.rs).
pip_install "onnxruntime==1.32.0" skl2onnx scikit-learn numpy "tritonclient[http,grpc]" pytest schemathesis

# reports: headless Chromium opens rendered reports with the network off and
# screenshots them (reports/tests/browser.rs); xmlschema validates `lab check
# --junit` output against the Ant JUnit schema and junitparser reads it as CI
# reporters do (reports/tests/check.rs).
apt_install chromium
pip_install xmlschema junitparser

# local: Debian's Prometheus 2.42, which the local level starts for each run;
# local/tests/prometheus.rs starts its own on a free loopback port (the
# package's system service is neither needed nor relied on).
apt_install prometheus

# deploy: debootstrap builds the Debian base image (lab-base:bookworm, once)
# that deploy/tests/image.rs puts the lab image on; no image can be pulled here.
apt_install debootstrap

# deploy: the rendered manifests are checked against the upstream CRDs
# (../shared/crds/validate.py: jsonschema, pyyaml) and Kubernetes' own schemas
# (kubernetes-validate, strict) by deploy/tests/schemas.rs.
pip_install jsonschema pyyaml kubernetes-validate
