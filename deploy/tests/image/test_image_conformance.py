"""The predictor's Open Inference Protocol conformance suite
(predictor/tests/py/test_conformance.py, official tritonclient) run against a
predictor that is already running: the container deploy/tests/image.rs starts.

The tests are the predictor's own, imported unchanged; only the `server`
fixture differs: instead of starting a process it points at the addresses in
LAB_IMAGE_HTTP and LAB_IMAGE_GRPC (host:port each). The container must serve
the suite's models with its flags (test_conformance.NAMES, --max-batch-size 64,
--max-body-bytes test_conformance.BODY_LIMIT).
"""
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
PREDICTOR_PY = os.path.normpath(os.path.join(HERE, "..", "..", "..", "predictor", "tests", "py"))
sys.path.insert(0, PREDICTOR_PY)

import conftest as predictor  # noqa: E402  (the predictor's helpers: Server, request)
from test_conformance import *  # noqa: E402,F401,F403  (the tests, collected here)


class RunningServer(predictor.Server):
    """A predictor someone else started: addresses only, no process to stop."""

    def __init__(self, http, grpc):
        self.http = http
        self.grpc = grpc
        self.url = "http://" + http
        self.proc = None

    def stop(self):
        pass


# Defined after the import, so it replaces the suite's own `server` fixture in
# this module.
@pytest.fixture(scope="module")
def server():
    http = os.environ.get("LAB_IMAGE_HTTP")
    grpc = os.environ.get("LAB_IMAGE_GRPC")
    if not http or not grpc:
        pytest.fail("LAB_IMAGE_HTTP and LAB_IMAGE_GRPC are not set: run through `cargo test -p lab-deploy --test image`")
    return RunningServer(http, grpc)
