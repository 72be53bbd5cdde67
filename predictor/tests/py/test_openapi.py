"""schemathesis against the committed OpenAPI description (predictor/openapi.yaml):
generated requests to every V2 REST route, each response checked for a
documented status, content type and schema, and never a 5xx."""
import os
import shutil
import subprocess
import sys

import pytest

from conftest import model_args

SCHEMA = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "openapi.yaml"))


def schemathesis():
    exe = shutil.which("schemathesis", path=os.path.dirname(sys.executable)) or shutil.which("schemathesis")
    if exe is None:
        pytest.fail("schemathesis is not installed: run scripts/install-test-deps.sh")
    return exe


def test_every_v2_route_answers_as_described(server_factory, tmp_path):
    s = server_factory(*model_args("iris", "int32"))
    r = subprocess.run(
        [schemathesis(), "run", SCHEMA, "--url", s.url, "--no-color", "--seed", "1",
         "--max-examples", "25",
         "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"],
        # It keeps a .schemathesis/ folder where it runs.
        capture_output=True, text=True, timeout=600, cwd=tmp_path)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    # schemathesis exits 0 even when no request got through: check it tested
    # every operation and nothing errored.
    assert "Tested: 9" in out and "errored" not in out, out
