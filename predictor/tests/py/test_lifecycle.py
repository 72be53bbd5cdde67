"""Readiness, SIGTERM drain and metrics as Kubernetes and Prometheus expect them."""
import signal
import threading
import time
import urllib.error

import pytest

from conftest import model_args, request, write_profile

NAMES = [
    "lab_predictor_requests_total", "lab_predictor_request_duration_seconds",
    "lab_predictor_queue_duration_seconds", "lab_predictor_compute_duration_seconds",
    "lab_predictor_batch_size", "lab_predictor_inflight_requests", "lab_predictor_queue_depth",
    "lab_predictor_gpu_busy_seconds_total", "lab_predictor_build_info",
]


def body():
    return {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}


def test_live_before_ready_and_ready_after_warm_up(server_factory):
    s = server_factory(*model_args("iris", "mlp"), wait_ready=False)
    # Listening comes before loading: liveness answers at once.
    assert s.get("/v2/health/live")[0] == 200
    s.wait_line("ready", 60)
    assert s.get("/v2/health/ready")[0] == 200
    assert s.get("/v2/models/iris/ready")[0] == 200
    assert "warm" not in "".join(s.stderr)  # no warm-up failure reported


def test_metrics_have_the_documented_names_and_types(server_factory):
    s = server_factory(*model_args("iris"))
    for _ in range(3):
        assert s.post("/v2/models/iris/infer", body())[0] == 200
    text = s.metrics()
    for n in NAMES:
        assert f"# TYPE {n} " in text, n
    assert 'lab_predictor_requests_total{model="iris",code="200"} 3' in text
    assert 'lab_predictor_request_duration_seconds_count{model="iris"} 3' in text
    assert 'lab_predictor_compute_duration_seconds_bucket{model="iris",le="+Inf"} 3' in text
    assert 'lab_predictor_queue_duration_seconds_count{model="iris"} 3' in text
    assert 'lab_predictor_inflight_requests{model="iris"} 0' in text
    assert s.metric('lab_predictor_gpu_busy_seconds_total{model="iris"}') > 0
    assert 'lab_predictor_build_info{version="' in text


def test_busy_seconds_count_an_emulated_device(server_factory, tmp_path):
    prof = write_profile(tmp_path / "p.json", "cpu", {1: 0.5, 32: 0.5})
    s = server_factory(*model_args("iris"), "--emulate", prof)
    for _ in range(3):
        assert s.post("/v2/models/iris/infer", body())[0] == 200
    # Three holds of 0.5 s each, one after the other: 1.5 s busy, as a counter.
    busy = s.metric('lab_predictor_gpu_busy_seconds_total{model="iris"}')
    assert 1.45 <= busy < 3.0, busy


def test_sigterm_drains_in_flight_requests_then_exits(server_factory, tmp_path):
    prof = write_profile(tmp_path / "p.json", "cpu", {1: 1.0, 32: 1.0})
    s = server_factory(*model_args("iris"), "--emulate", prof, "--max-batch-size", "1",
                       "--grace-period-secs", "20")
    results = []

    def call():
        results.append(request("POST", s.url + "/v2/models/iris/infer", body())[0])

    threads = [threading.Thread(target=call) for _ in range(2)]
    for t in threads:
        t.start()
    # One executing, one queued behind it.
    s.wait_metric('lab_predictor_inflight_requests{model="iris"}', lambda v: v == 2)
    s.proc.send_signal(signal.SIGTERM)
    # Not ready any more (or no longer accepting connections) while draining.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            status = request("GET", s.url + "/v2/health/ready", timeout=2)[0]
        except (urllib.error.URLError, ConnectionError):
            break
        if status == 503:
            break
        time.sleep(0.01)
    else:
        pytest.fail("still ready after SIGTERM")
    for t in threads:
        t.join(30)
    assert results == [200, 200], results
    assert s.proc.wait(timeout=20) == 0


def test_grace_period_bounds_the_drain(server_factory, tmp_path):
    prof = write_profile(tmp_path / "p.json", "cpu", {1: 30.0, 32: 30.0})
    s = server_factory(*model_args("iris"), "--emulate", prof, "--grace-period-secs", "0.5")
    outcome = []

    def call():
        try:
            outcome.append(request("POST", s.url + "/v2/models/iris/infer", body(), timeout=60)[0])
        except (urllib.error.URLError, ConnectionError) as e:
            outcome.append(type(e).__name__)

    t = threading.Thread(target=call, daemon=True)
    t.start()
    s.wait_metric('lab_predictor_inflight_requests{model="iris"}', lambda v: v == 1)
    t0 = time.monotonic()
    s.proc.send_signal(signal.SIGTERM)
    assert s.proc.wait(timeout=10) == 0
    assert time.monotonic() - t0 < 5
    t.join(10)
    # The 30 s request was cut off by the exit, not answered.
    assert outcome and outcome[0] != 200, outcome
