"""The predictor under hostile or careless input: errors every client can read
(urllib included), value checks, timeouts, a connection cap under a low
descriptor limit, SIGTERM with half-sent requests, gRPC limits, and a metrics
exposition that promtool accepts."""
import json
import resource
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from conftest import model_args, write_profile

LIMIT = 1024 * 1024


def iris_body(data, shape=(1, 4), dtype="FP32"):
    return {"inputs": [{"name": "input", "shape": list(shape), "datatype": dtype, "data": data}]}


def urllib_post(url, body, timeout=30):
    """urllib writes the whole body before reading: the status must still arrive."""
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.fixture(scope="module")
def server():
    from conftest import Server
    s = Server(*model_args("iris", "int32"), "--max-body-bytes", str(LIMIT))
    yield s
    s.stop()


def test_urllib_gets_its_413_for_a_body_over_the_limit(server):
    big = b'{"inputs": [' + b" " * (8 * LIMIT) + b"]}"
    status, body = urllib_post(server.url + "/v2/models/iris/infer", big)
    assert status == 413 and "limit" in body["error"]


def test_urllib_gets_its_404_for_an_unknown_model_with_a_large_body(server):
    big = b'{"inputs": [' + b" " * (4 * LIMIT) + b"]}"
    status, body = urllib_post(server.url + "/v2/models/nope/infer", big)
    assert status == 404 and "unknown model" in body["error"]
    status, body = urllib_post(server.url + "/v1/models/nope:predict", big)
    assert status == 404


def raw_exchange(server, data, read_timeout=10):
    host, port = server.http.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=read_timeout) as c:
        c.sendall(data)
        out = b""
        while True:
            try:
                chunk = c.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
    head, _, body = out.partition(b"\r\n\r\n")
    return int(head.split()[1]), head.decode(), body


def test_http_level_errors_carry_a_json_error_body(server):
    # 405 from the router.
    status, _, body = raw_exchange(server, b"GET /v2/models/iris/infer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status == 405 and json.loads(body)["error"]
    # 431 and 400 are written by the HTTP layer itself.
    huge = b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 1_000_000 + b"\r\n\r\n"
    status, head, body = raw_exchange(server, huge)
    assert status == 431 and "application/json" in head and "too large" in json.loads(body)["error"]
    status, head, body = raw_exchange(server, b"NOT A REQUEST\r\n\r\n")
    assert status == 400 and json.loads(body)["error"]


def test_values_the_datatype_cannot_hold_and_ragged_data_are_400(server):
    status, body = urllib_post(server.url + "/v2/models/iris/infer", json.dumps(iris_body([1, 2, 3, 3.5e38])).encode())
    assert status == 400 and "FP32" in body["error"], body
    ints = {"inputs": [{"name": "ids", "shape": [1, 3], "datatype": "INT32", "data": [1, 2, 2 ** 31]}]}
    status, body = urllib_post(server.url + "/v2/models/int32/infer", json.dumps(ints).encode())
    assert status == 400 and "INT32" in body["error"], body
    # Eight elements for [2, 4], nested unevenly.
    ragged = iris_body([[1, 2, 3, 4, 5], [6, 7, 8]], shape=(2, 4))
    status, body = urllib_post(server.url + "/v2/models/iris/infer", json.dumps(ragged).encode())
    assert status == 400 and "ragged" in body["error"], body
    # Evenly nested, but not as the shape says.
    wrong = iris_body([[1, 2], [3, 4], [5, 6], [7, 8]], shape=(2, 4))
    status, body = urllib_post(server.url + "/v2/models/iris/infer", json.dumps(wrong).encode())
    assert status == 400 and "nested" in body["error"], body
    # Nested as the shape says is fine.
    ok = iris_body([[1, 2, 3, 4], [5, 6, 7, 8]], shape=(2, 4))
    assert urllib_post(server.url + "/v2/models/iris/infer", json.dumps(ok).encode())[0] == 200


def test_non_finite_outputs_reach_tritonclient(server_factory, tmp_path):
    import tritonclient.http as httpclient
    prof = write_profile(tmp_path / "p.json", "cpu", {1: 0.0001, 32: 0.0001})
    s = server_factory("--emulate", prof, "--emulated-model", "sum")
    # Two FP32 maxima sum to infinity in FP32.
    c = httpclient.InferenceServerClient(s.http)
    i = httpclient.InferInput("input", [2, 4], "FP32")
    i.set_data_from_numpy(np.array([[3e38, 3e38, 0, 0], [1, 2, 3, 4]], dtype=np.float32), binary_data=False)
    out = httpclient.InferRequestedOutput("output", binary_data=False)
    r = c.infer("sum", [i], outputs=[out]).as_numpy("output")
    assert np.isinf(r[0, 0]) and r[0, 0] > 0 and r[1, 0] == 10


def test_grpc_size_and_malformed_messages(server):
    import grpc
    from tritonclient.grpc import service_pb2, service_pb2_grpc
    opts = [("grpc.max_send_message_length", -1)]
    with grpc.insecure_channel(server.grpc, options=opts) as ch:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(ch)
        req = service_pb2.ModelInferRequest(model_name="iris")
        t = req.inputs.add()
        t.name, t.datatype = "input", "FP32"
        t.shape.extend([4 * LIMIT // 16 + 1, 4])
        # Over four times the limit: refused from its length prefix.
        req.raw_input_contents.append(b"\0" * (4 * LIMIT + 16))
        with pytest.raises(grpc.RpcError) as e:
            stub.ModelInfer(req, timeout=30)
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        raw = ch.unary_unary("/inference.GRPCInferenceService/ModelInfer",
                             request_serializer=lambda b: b, response_deserializer=lambda b: b)
        with pytest.raises(grpc.RpcError) as e:
            raw(b"\xff\xff\xff\xff", timeout=10)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert stub.ServerReady(service_pb2.ServerReadyRequest()).ready


def test_half_open_connections_under_a_low_descriptor_limit(tmp_path):
    from conftest import Server

    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (160, 160))

    s = Server(*model_args("iris"), "--header-timeout-secs", "1", popen_kw={"preexec_fn": low_limit})
    host, port = s.http.rsplit(":", 1)
    socks = []
    try:
        for _ in range(300):
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex((host, int(port)))
            socks.append(c)
        time.sleep(0.2)
        for c in socks:
            try:
                c.send(b"POST /v2/models/iris/infer HTTP/1.1\r\nHost: x\r\n")
            except OSError:
                pass
        # New clients are served within a few header timeouts, not starved.
        t0 = time.monotonic()
        req = urllib.request.Request(s.url + "/v2/health/live")
        with urllib.request.urlopen(req, timeout=15) as r:
            assert r.status == 200
        assert time.monotonic() - t0 < 10
        assert "Too many open files" not in "".join(s.stderr)
    finally:
        for c in socks:
            c.close()
        s.stop()
    assert s.proc.returncode == 0


def test_sigterm_does_not_wait_for_half_sent_requests(server_factory):
    s = server_factory(*model_args("iris"), "--grace-period-secs", "30")
    host, port = s.http.rsplit(":", 1)
    idle = socket.create_connection((host, int(port)))
    partial_head = socket.create_connection((host, int(port)))
    partial_head.sendall(b"POST /v2/models/iris/infer HTTP/1.1\r\nHost: x\r\n")
    partial_body = socket.create_connection((host, int(port)))
    partial_body.sendall(b"POST /v2/models/iris/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"inputs\"")
    time.sleep(0.3)
    t0 = time.monotonic()
    s.proc.send_signal(signal.SIGTERM)
    assert s.proc.wait(timeout=10) == 0
    assert time.monotonic() - t0 < 5
    # The half-sent body is refused as a new request during shutdown.
    partial_body.settimeout(5)
    assert b" 503 " in partial_body.recv(65536)
    log = "".join(s.stderr)
    assert "drained" in log and "closed at once" in log, log
    for c in (idle, partial_head, partial_body):
        c.close()


def test_silent_and_slow_heads_are_closed_at_the_header_timeout(server_factory):
    s = server_factory(*model_args("iris"), "--header-timeout-secs", "1")
    host, port = s.http.rsplit(":", 1)
    silent = socket.create_connection((host, int(port)), timeout=10)
    slow = socket.create_connection((host, int(port)), timeout=10)
    slow.sendall(b"GET /v2/health/live HTTP/1.1\r\n")
    t0 = time.monotonic()
    assert silent.recv(100) == b""  # closed without a word
    out = slow.recv(65536)
    assert b" 408 " in out and b"header timeout" in out
    assert time.monotonic() - t0 < 5
    silent.close()
    slow.close()


def test_a_slow_body_gets_408(server_factory):
    s = server_factory(*model_args("iris"), "--body-timeout-secs", "1")
    host, port = s.http.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as c:
        c.sendall(b"POST /v2/models/iris/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{\"inp")
        out = c.recv(65536)
    assert b" 408 " in out and b"body timeout" in out


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian's prometheus package) is not installed")
def test_promtool_accepts_the_exposition(server):
    body = json.dumps(iris_body([5.1, 3.5, 1.4, 0.2])).encode()
    assert urllib_post(server.url + "/v2/models/iris/infer", body)[0] == 200
    urllib_post(server.url + "/v2/models/nope/infer", body)
    text = server.metrics()
    assert 'lab_predictor_gpu_busy_seconds_total{model="iris"}' in text
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_health_answers_while_two_at_limit_bodies_decode(server_factory, tmp_path):
    import threading
    limit = 32 * 1024 * 1024
    prof = write_profile(tmp_path / "p.json", "cpu", {1: 0.0001, 1 << 23: 0.0001})
    s = server_factory("--emulate", prof, "--emulated-model", "m", "--max-body-bytes", str(limit),
                       "--max-batch-size", str(1 << 23), "--max-queue-rows", str(1 << 25))
    # Single digits: the most elements a body of this size can hold.
    n = (limit - 200) // 8 * 4
    data = ",".join(["1"] * n)
    body = ('{"inputs":[{"name":"input","shape":[%d,4],"datatype":"FP32","data":[%s]}]}' % (n // 4, data)).encode()
    assert len(body) <= limit
    statuses = []

    def big():
        statuses.append(urllib_post(s.url + "/v2/models/m/infer", body, timeout=120)[0])

    threads = [threading.Thread(target=big) for _ in range(2)]
    for t in threads:
        t.start()
    worst = 0.0
    while any(t.is_alive() for t in threads):
        t0 = time.monotonic()
        with urllib.request.urlopen(s.url + "/v2/health/live", timeout=10) as r:
            assert r.status == 200
        worst = max(worst, time.monotonic() - t0)
        time.sleep(0.05)
    assert statuses == [200, 200], statuses
    # The kubelet's default probe timeout; the p99 figures are in BENCHMARKS.md.
    assert worst < 1.0, worst
