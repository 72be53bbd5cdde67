"""Starts real predictor processes on 127.0.0.1 for the tests.

The binary comes from LAB_PREDICTOR_BIN (the Rust test harness sets it), and every
server asks for free ports (port 0) and reports them on stdout, so tests run in
parallel without port races. Synchronisation is by events: the "ready" line, and
polling endpoints with a deadline, never fixed sleeps.
"""
import json
import os
import queue
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.normpath(os.path.join(HERE, "..", "..", "models"))


def binary():
    b = os.environ.get("LAB_PREDICTOR_BIN")
    if not b:
        pytest.fail("LAB_PREDICTOR_BIN is not set: run through `cargo test -p lab-predictor`")
    return b


class Server:
    def __init__(self, *args, wait_ready=True, timeout=60, env=None, popen_kw=None):
        self.args = [binary(), "serve", "--host", "127.0.0.1", "--http-port", "0", "--grpc-port", "0", *args]
        env = dict(os.environ, **env) if env else None
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                     **(popen_kw or {}))
        self.lines = queue.Queue()
        self.stderr = []
        threading.Thread(target=self._pump, args=(self.proc.stdout, self.lines), daemon=True).start()
        threading.Thread(target=self._drain_err, daemon=True).start()
        line = self.wait_line("listening", timeout)
        parts = dict(p.split("=", 1) for p in line.split()[2:])
        self.http = parts["http"]
        self.grpc = parts["grpc"]
        self.url = "http://" + self.http
        if wait_ready:
            self.wait_line("ready", timeout)

    @staticmethod
    def _pump(stream, q):
        for line in stream:
            q.put(line.rstrip("\n"))
        q.put(None)

    def _drain_err(self):
        for line in self.proc.stderr:
            self.stderr.append(line)

    def wait_line(self, word, timeout):
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no '{word}' line within {timeout}s; stderr: {''.join(self.stderr)}")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                self.proc.wait(timeout=5)
                raise AssertionError(f"server exited ({self.proc.returncode}) before '{word}': {''.join(self.stderr)}")
            if word in line:
                return line

    def get(self, path):
        return request("GET", self.url + path)

    def post(self, path, body, headers=None):
        return request("POST", self.url + path, body, headers)

    def metrics(self):
        return self.get("/metrics")[1].decode()

    def metric(self, name_with_labels):
        """Value of one sample line, or None."""
        for line in self.metrics().splitlines():
            if line.startswith(name_with_labels + " "):
                return float(line.rsplit(" ", 1)[1])
        return None

    def wait_metric(self, name_with_labels, predicate, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = self.metric(name_with_labels)
            if v is not None and predicate(v):
                return v
            time.sleep(0.01)
        raise AssertionError(f"{name_with_labels} never satisfied the condition; last {self.metric(name_with_labels)}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def request(method, url, body=None, headers=None, timeout=60):
    """(status, body bytes, headers) without raising on HTTP errors."""
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    elif isinstance(body, str):
        body = body.encode()
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def write_profile(path, gpu, seconds_by_batch):
    """A lab-calibration/v1 profile with deterministic service times."""
    points = [
        {"batch_size": b, "mean_seconds": s, "p50_seconds": s, "p99_seconds": s, "samples": 1}
        for b, s in sorted(seconds_by_batch.items())
    ]
    with open(path, "w") as f:
        json.dump({"format": "lab-calibration/v1", "model": "test", "device": "cpu", "gpu": gpu,
                   "measured_on": "synthetic, for tests", "points": points}, f)
    return str(path)


@pytest.fixture
def server_factory():
    started = []

    def make(*args, **kw):
        s = Server(*args, **kw)
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()


def model_args(*names):
    out = []
    for n in names:
        out += ["--model", f"{n}={os.path.join(MODELS, n + '.onnx')}"]
    return out
