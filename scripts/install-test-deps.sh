#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine (idempotent).
# Each section names the tests that need it.
set -euo pipefail
PY=${PYTHON:-python3}
pip_install() { "$PY" -m pip install --quiet --disable-pip-version-check "$@"; }
apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    if [ -z "${APT_UPDATED:-}" ]; then apt-get update -qq; APT_UPDATED=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# predictor: ONNX Runtime (the shared library the server loads and the reference
# the conformance tests compare against), test-model generation, the official
# Open Inference Protocol clients, and protoc-free gRPC build (protox in build.rs).
pip_install "onnxruntime==1.32.0" skl2onnx scikit-learn numpy "tritonclient[http,grpc]" pytest

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
