"""The predictor under hostile input: memory per at-limit request, and health-probe
and small-inference latency while two at-limit bodies are being decoded.

Usage: python3 hostile.py BIN [--seconds S] [--body-mib M]

BIN is a `lab-predictor` binary. Each measurement starts a fresh server serving
the built-in stand-in model (FP32 `input` [-1, 4], no ONNX Runtime needed) with
`--max-body-bytes` at M MiB (default 64, the server's default limit), on
127.0.0.1. Prints one line per measurement; BENCHMARKS.md ("Predictor under
hostile input") has the figures.

- rss: peak RSS growth (VmHWM after `clear_refs`, minus VmRSS before) for one
  request just under the limit, as a multiple of its body size: V2 JSON with
  6-decimal numbers and with single digits ("short", the most elements per
  byte), V2 binary extension, KServe V1 (both kinds of numbers), gRPC raw contents (needs tritonclient[grpc]),
  and a gRPC message 4x over the limit (refused; growth in MiB).
- probes: for S seconds (default 10) two clients send at-limit V2 JSON bodies
  of single-digit numbers back to back, while one GETs /v2/health/live on a new connection every 50 ms
  (as the kubelet does) and one sends a single-row inference every 50 ms to a
  second stand-in model (its own queue: what is measured is decoding, not
  waiting behind the big requests' batch);
  p50/p99/max in ms of each, and how many took over 1 s (the kubelet's default
  probe timeout).
"""
import argparse
import http.client
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time

MIB = 1024 * 1024


def numbers_text(target_bytes, per_row, nested, short=False):
    """A JSON array of FP32 numbers about `target_bytes` long (flat, or one
    nested array per row), and its row count. `short` numbers are single
    digits: the most elements a body of this size can hold."""
    rng = random.Random(0)
    if short:
        pool = [str(rng.randrange(10)) for _ in range(4096 * per_row)]
    else:
        pool = [f"{rng.uniform(-10, 10):.6f}" for _ in range(4096 * per_row)]
    row_texts = []
    for i in range(0, len(pool), per_row):
        row = ",".join(pool[i:i + per_row])
        row_texts.append("[" + row + "]" if nested else row)
    sep = ","
    avg = sum(len(r) + 1 for r in row_texts) / len(row_texts)
    rows = int(target_bytes / avg)
    reps, rest = divmod(rows, len(row_texts))
    block = sep.join(row_texts)
    parts = [block] * reps + ([sep.join(row_texts[:rest])] if rest else [])
    return "[" + sep.join(parts) + "]", rows


def v2_json_body(limit, short=False):
    data, rows = numbers_text(limit - 200, 4, nested=False, short=short)
    head = '{"inputs":[{"name":"input","shape":[%d,4],"datatype":"FP32","data":' % rows
    return (head + data + "}]}").encode(), rows


def v1_body(limit, short=False):
    data, rows = numbers_text(limit - 100, 4, nested=True, short=short)
    return ('{"instances":' + data + "}").encode(), rows


def v2_binary_body(limit):
    rows = (limit - 400) // 16
    raw = os.urandom(16) * rows
    header = json.dumps({
        "inputs": [{"name": "input", "shape": [rows, 4], "datatype": "FP32",
                    "parameters": {"binary_data_size": len(raw)}}],
        "outputs": [{"name": "output", "parameters": {"binary_data": True}}],
    }).encode()
    return header + raw, rows, len(header)


def write_profile(path, max_rows):
    points = [{"batch_size": b, "mean_seconds": 0.0001, "p50_seconds": 0.0001,
               "p99_seconds": 0.0001, "samples": 1} for b in (1, max_rows)]
    with open(path, "w") as f:
        json.dump({"format": "lab-calibration/v1", "model": "stand-in", "device": "cpu", "gpu": "cpu",
                   "measured_on": "synthetic, for the hostile-input benchmark", "points": points,
                   "distribution": {"kind": "deterministic"}}, f)


class Server:
    def __init__(self, binary, limit, max_rows, profile):
        self.proc = subprocess.Popen(
            [binary, "serve", "--host", "127.0.0.1", "--http-port", "0", "--grpc-port", "0",
             "--emulate", profile, "--emulated-model", "m", "--emulated-model", "small",
             "--max-body-bytes", str(limit),
             "--max-batch-size", str(max_rows), "--max-queue-rows", str(4 * max_rows)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        ports = None
        for line in self.proc.stdout:
            if "listening" in line:
                ports = dict(p.split("=", 1) for p in line.split()[2:])
            if "ready" in line and "listening" not in line:
                break
        if ports is None:
            raise SystemExit("the server did not start")
        self.http = ports["http"]
        self.grpc = ports["grpc"]
        host, port = self.http.rsplit(":", 1)
        self.host, self.port = host, int(port)

    def status(self, field):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
        return 0

    def reset_peak(self):
        with open(f"/proc/{self.proc.pid}/clear_refs", "w") as f:
            f.write("5")

    def post(self, path, body, headers=None, timeout=120):
        c = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            c.request("POST", path, body=body, headers=headers or {})
            r = c.getresponse()
            r.read()
            return r.status
        finally:
            c.close()

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def peak_growth(server, send):
    """Peak RSS growth (bytes) while `send()` runs, and what it returned."""
    time.sleep(0.2)
    server.reset_peak()
    before = server.status("VmRSS")
    result = send()
    return server.status("VmHWM") - before, result


def rss(binary, limit, profile, max_rows):
    binary_body, _, header_len = v2_binary_body(limit)
    cases = [
        ("v2-json", v2_json_body(limit)[0], "/v2/models/m/infer", {"Content-Type": "application/json"}),
        ("v2-json-short", v2_json_body(limit, True)[0], "/v2/models/m/infer", {"Content-Type": "application/json"}),
        ("v2-binary", binary_body, "/v2/models/m/infer",
         {"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(header_len)}),
        ("v1-json", v1_body(limit)[0], "/v1/models/m:predict", {"Content-Type": "application/json"}),
        ("v1-json-short", v1_body(limit, True)[0], "/v1/models/m:predict", {"Content-Type": "application/json"}),
    ]
    for name, b, path, headers in cases:
        s = Server(binary, limit, max_rows, profile)
        try:
            grew, status = peak_growth(s, lambda: s.post(path, b, headers))
            print(f"rss {name} body_mib={len(b) / MIB:.1f} status={status} "
                  f"peak_growth_mib={grew / MIB:.0f} ratio={grew / len(b):.2f}", flush=True)
        finally:
            s.stop()
    try:
        import grpc
        from tritonclient.grpc import service_pb2, service_pb2_grpc
    except ImportError:
        print("rss grpc skipped: tritonclient[grpc] is not installed")
        return

    def grpc_call(s, payload_bytes):
        rows = payload_bytes // 16
        req = service_pb2.ModelInferRequest(model_name="m")
        t = req.inputs.add()
        t.name, t.datatype = "input", "FP32"
        t.shape.extend([rows, 4])
        req.raw_input_contents.append(os.urandom(16) * rows)
        size = req.ByteSize()
        opts = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
        with grpc.insecure_channel(s.grpc, options=opts) as ch:
            stub = service_pb2_grpc.GRPCInferenceServiceStub(ch)
            try:
                stub.ModelInfer(req, timeout=120)
                return size, "OK"
            except grpc.RpcError as e:
                return size, e.code().name

    for name, payload in (("grpc-raw", limit - 1024), ("grpc-4x-over", 4 * limit - 1024)):
        s = Server(binary, limit, max_rows, profile)
        try:
            grew, (size, code) = peak_growth(s, lambda: grpc_call(s, payload))
            print(f"rss {name} message_mib={size / MIB:.1f} code={code} "
                  f"peak_growth_mib={grew / MIB:.0f} ratio={grew / size:.2f}", flush=True)
        finally:
            s.stop()


def percentiles(xs):
    xs = sorted(xs)
    if not xs:
        return "none"
    p = lambda q: xs[min(len(xs) - 1, int(q * len(xs)))] * 1e3
    over = sum(1 for x in xs if x > 1.0)
    return f"n={len(xs)} p50_ms={p(0.5):.1f} p99_ms={p(0.99):.1f} max_ms={xs[-1] * 1e3:.1f} over_1s={over}"


def probes(binary, limit, profile, max_rows, seconds):
    body, _ = v2_json_body(limit, short=True)
    small = json.dumps({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32",
                                    "data": [1, 2, 3, 4]}]}).encode()
    s = Server(binary, limit, max_rows, profile)
    stop = threading.Event()
    big_done = []
    live, infer = [], []

    def big():
        while not stop.is_set():
            t = time.monotonic()
            try:
                st = s.post("/v2/models/m/infer", body, {"Content-Type": "application/json"})
            except OSError as e:
                st = type(e).__name__
            big_done.append((st, time.monotonic() - t))

    def prober():
        while not stop.is_set():
            t = time.monotonic()
            try:
                c = http.client.HTTPConnection(s.host, s.port, timeout=10)
                c.request("GET", "/v2/health/live")
                c.getresponse().read()
                c.close()
                live.append(time.monotonic() - t)
            except (OSError, socket.timeout):
                live.append(10.0)
            time.sleep(max(0.0, 0.05 - (time.monotonic() - t)))

    def small_infer():
        c = http.client.HTTPConnection(s.host, s.port, timeout=10)
        while not stop.is_set():
            t = time.monotonic()
            try:
                c.request("POST", "/v2/models/small/infer", body=small, headers={"Content-Type": "application/json"})
                c.getresponse().read()
                infer.append(time.monotonic() - t)
            except (OSError, socket.timeout, http.client.HTTPException):
                infer.append(10.0)
                c.close()
                c = http.client.HTTPConnection(s.host, s.port, timeout=10)
            time.sleep(max(0.0, 0.05 - (time.monotonic() - t)))

    threads = [threading.Thread(target=f, daemon=True) for f in (big, big, prober, small_infer)]
    try:
        for t in threads:
            t.start()
        time.sleep(seconds)
        stop.set()
        for t in threads:
            t.join(timeout=120)
        codes = sorted({str(st) for st, _ in big_done})
        mean = sum(d for _, d in big_done) / max(1, len(big_done))
        print(f"probes at-limit-bodies n={len(big_done)} statuses={','.join(codes)} mean_s={mean:.2f}")
        print(f"probes health-live {percentiles(live)}")
        print(f"probes small-infer {percentiles(infer)}", flush=True)
    finally:
        s.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("binary")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--body-mib", type=int, default=64)
    ap.add_argument("--only", choices=["rss", "probes"])
    a = ap.parse_args()
    limit = a.body_mib * MIB
    # Rows of the at-limit JSON body (about 10 bytes a number, 4 numbers a row), with room.
    max_rows = 1 << (limit // 16).bit_length()
    with tempfile.TemporaryDirectory() as tmp:
        profile = os.path.join(tmp, "profile.json")
        write_profile(profile, max_rows)
        if a.only in (None, "rss"):
            rss(a.binary, limit, profile, max_rows)
        if a.only in (None, "probes"):
            probes(a.binary, limit, profile, max_rows, a.seconds)


if __name__ == "__main__":
    sys.exit(main())
