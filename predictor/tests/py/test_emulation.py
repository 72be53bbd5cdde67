"""GPU emulation: service times from a profile, MIG slices, and time-slicing
contention that is real between predictor processes; CUDA and calibration paths."""
import json
import os
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from conftest import MODELS, binary, model_args, write_profile


def body():
    return {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}


def timed(server):
    t0 = time.monotonic()
    status = server.post("/v2/models/iris/infer", body())[0]
    assert status == 200
    return time.monotonic() - t0


def test_time_slicing_slows_co_tenants_in_other_processes(server_factory, tmp_path):
    prof = write_profile(tmp_path / "p.json", "T4", {1: 0.4, 32: 0.4})
    gpu = "test-" + uuid.uuid4().hex[:8]
    args = [*model_args("iris"), "--emulate", prof, "--sharing", "time-slicing:2", "--gpu-id", gpu]
    a = server_factory(*args)
    b = server_factory(*args)
    alone = timed(a)
    assert 0.38 <= alone < 0.6, alone
    with ThreadPoolExecutor(2) as pool:
        both = list(pool.map(timed, [a, b]))
    # Two busy tenants each run at (1 - 0.05) / 2 of the GPU: about 0.84 s each.
    assert all(t > 0.65 for t in both), both
    assert all(t < 1.3 for t in both), both
    os.path.exists(f"/dev/shm/lab-gpu-{gpu}") and os.remove(f"/dev/shm/lab-gpu-{gpu}")


def test_mig_slice_runs_at_its_sm_fraction(server_factory, tmp_path):
    # A100-40GB 1g.5gb has 14 of 108 SMs: 0.05 s of work takes about 0.386 s.
    prof = write_profile(tmp_path / "p.json", "A100-40GB", {1: 0.05, 32: 0.05})
    s = server_factory(*model_args("iris"), "--emulate", prof, "--sharing", "mig:1g.5gb")
    t = timed(s)
    assert 0.36 < t < 0.6, t


def test_bad_emulation_flags_exit_2(tmp_path):
    prof = write_profile(tmp_path / "p.json", "cpu", {1: 0.01, 8: 0.01})
    cases = [
        (["--emulate", prof, "--sharing", "mig:1g.5gb"], "MIG needs a GPU type"),
        (["--emulate", prof], "past the profile's largest batch size"),
        (["--emulate", str(tmp_path / "missing.json")], "missing.json"),
    ]
    for extra, words in cases:
        r = subprocess.run([binary(), "serve", *model_args("iris"), "--http-port", "0", "--grpc-port", "0",
                            "--host", "127.0.0.1", *extra], capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and words in r.stderr, (extra, r.returncode, r.stderr)


def test_cuda_without_the_gpu_build_is_a_clear_error():
    # No GPU here and the CPU build of onnxruntime is installed: this is the error path.
    r = subprocess.run([binary(), "serve", *model_args("iris"), "--device", "cuda", "--http-port", "0",
                        "--grpc-port", "0", "--host", "127.0.0.1"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    assert "CUDA" in r.stderr and "onnxruntime-gpu" in r.stderr


def test_missing_onnxruntime_names_both_ways_to_provide_it(tmp_path):
    env = dict(os.environ, ORT_DYLIB_PATH=str(tmp_path / "nope.so"))
    r = subprocess.run([binary(), "calibrate", "--model", os.path.join(MODELS, "iris.onnx")],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 2
    assert "ORT_DYLIB_PATH" in r.stderr and "pip install onnxruntime" in r.stderr


def test_calibrate_writes_a_profile_that_emulation_reads(server_factory, tmp_path):
    out = tmp_path / "iris.json"
    r = subprocess.run([binary(), "calibrate", "--model", os.path.join(MODELS, "iris.onnx"),
                        "--batch-sizes", "1,4,2", "--warmup", "5", "--repetitions", "30", "-o", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    p = json.loads(out.read_text())
    assert p["format"] == "lab-calibration/v1" and p["device"] == "cpu" and p["gpu"] == "cpu"
    assert [pt["batch_size"] for pt in p["points"]] == [1, 2, 4]
    for pt in p["points"]:
        assert 0 < pt["p50_seconds"] <= pt["p99_seconds"] and pt["samples"] == 30
    s = server_factory(*model_args("iris"), "--emulate", str(out), "--max-batch-size", "4")
    assert s.post("/v2/models/iris/infer", body())[0] == 200


def test_stand_in_through_tritonclient_without_onnxruntime(server_factory, tmp_path):
    # The official clients see the stand-in as a model like any other; ONNX
    # Runtime is out of reach, so it is never loaded.
    import numpy as np
    import tritonclient.grpc as grpcclient
    import tritonclient.http as httpclient

    prof = write_profile(tmp_path / "p.json", "T4", {1: 0.002, 32: 0.002})
    env = {"ORT_DYLIB_PATH": str(tmp_path / "nope.so")}
    s = server_factory("--emulate", prof, "--emulated-model", "sum", env=env)
    x = np.arange(12, dtype=np.float32).reshape(3, 4) / 4
    want = x.sum(axis=1, keepdims=True)
    h = httpclient.InferenceServerClient(s.http)
    meta = h.get_model_metadata("sum")
    assert meta["platform"] == "lab_stand_in"
    assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}]
    assert meta["outputs"] == [{"name": "output", "datatype": "FP32", "shape": [-1, 1]}]
    for binary in (False, True):
        i = httpclient.InferInput("input", [3, 4], "FP32")
        i.set_data_from_numpy(x, binary_data=binary)
        out = httpclient.InferRequestedOutput("output", binary_data=binary)
        np.testing.assert_allclose(h.infer("sum", [i], outputs=[out]).as_numpy("output"), want)
    g = grpcclient.InferenceServerClient(s.grpc)
    assert g.is_server_ready() and g.is_model_ready("sum")
    i = grpcclient.InferInput("input", [1, 4], "FP32")
    i.set_data_from_numpy(x[:1])
    np.testing.assert_allclose(g.infer("sum", [i]).as_numpy("output"), want[:1])
