"""Dynamic batching against a running server: batches form while the model is
busy, rows count, preferred sizes and the queue delay, and a bounded queue."""
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from conftest import model_args, write_profile

MODEL = 'model="mlp"'


def body(rows):
    x = np.zeros((rows, 32), dtype=np.float32)
    return {"inputs": [{"name": "input", "shape": [rows, 32], "datatype": "FP32", "data": x.ravel().tolist()}]}


def infer(server, rows=1):
    return server.post("/v2/models/mlp/infer", body(rows))


def batch_hist(server):
    return (server.metric(f"lab_predictor_batch_size_count{{{MODEL}}}"),
            server.metric(f"lab_predictor_batch_size_sum{{{MODEL}}}"))


def test_requests_queued_behind_a_busy_model_go_as_one_batch(server_factory, tmp_path):
    # Each batch holds the (emulated) device for 0.8 s, so arrivals during the
    # first execution queue up and leave together.
    prof = write_profile(tmp_path / "p.json", "cpu", {1: 0.8, 16: 0.8})
    s = server_factory(*model_args("mlp"), "--emulate", prof, "--max-batch-size", "16")
    with ThreadPoolExecutor(8) as pool:
        first = pool.submit(infer, s, 1)
        # Queue time is recorded when a batch starts executing.
        s.wait_metric(f"lab_predictor_queue_duration_seconds_count{{{MODEL}}}", lambda v: v == 1)
        rest = [pool.submit(infer, s, r) for r in [1, 2, 3, 1]]
        s.wait_metric(f"lab_predictor_queue_depth{{{MODEL}}}", lambda v: v == 4)
        assert first.result()[0] == 200
        assert all(f.result()[0] == 200 for f in rest)
    count, total = batch_hist(s)
    assert (count, total) == (2, 8), (count, total)
    # The second batch carried 7 rows: above the 4 bucket, within 8.
    assert s.metric(f'lab_predictor_batch_size_bucket{{{MODEL},le="4"}}') == 1
    assert s.metric(f'lab_predictor_batch_size_bucket{{{MODEL},le="8"}}') == 2


def test_preferred_size_dispatches_before_the_queue_delay(server_factory):
    s = server_factory(*model_args("mlp"), "--max-batch-size", "16", "--preferred-batch-sizes", "4",
                       "--max-queue-delay-us", "3000000")
    t0 = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: infer(s, 1), range(4)))
    assert all(r[0] == 200 for r in results)
    assert time.monotonic() - t0 < 2.5, "waited for the queue delay despite a preferred batch"
    assert batch_hist(s) == (1, 4)
    # A lone request waits out the delay (3 s) for company.
    t0 = time.monotonic()
    assert infer(s, 1)[0] == 200
    assert time.monotonic() - t0 >= 2.9
    assert batch_hist(s) == (2, 5)


def test_rows_over_the_max_batch_size_are_refused(server_factory):
    s = server_factory(*model_args("mlp"), "--max-batch-size", "4")
    status, text, _ = infer(s, 5)
    assert status == 400 and b"max batch size 4" in text
    assert infer(s, 4)[0] == 200


def test_a_full_queue_answers_503_and_grpc_unavailable(server_factory, tmp_path):
    prof = write_profile(tmp_path / "p.json", "cpu", {1: 1.0, 4: 1.0})
    s = server_factory(*model_args("mlp"), "--emulate", prof, "--max-batch-size", "4", "--max-queue-rows", "4")
    with ThreadPoolExecutor(2) as pool:
        running = pool.submit(infer, s, 4)
        # Wait until the first request is executing, then fill the queue.
        s.wait_metric(f"lab_predictor_queue_duration_seconds_count{{{MODEL}}}", lambda v: v == 1)
        queued = pool.submit(infer, s, 4)
        s.wait_metric(f"lab_predictor_queue_depth{{{MODEL}}}", lambda v: v == 1)
        status, text, _ = infer(s, 1)
        assert status == 503 and b"queue full" in text
        g = grpcclient.InferenceServerClient(s.grpc)
        i = grpcclient.InferInput("input", [1, 32], "FP32")
        i.set_data_from_numpy(np.zeros((1, 32), dtype=np.float32))
        try:
            g.infer("mlp", [i])
            raise AssertionError("gRPC request was accepted into a full queue")
        except InferenceServerException as e:
            assert "UNAVAILABLE" in str(e.status())
        assert running.result()[0] == 200 and queued.result()[0] == 200
    assert s.metric(f'lab_predictor_requests_total{{{MODEL},code="503"}}') == 2
