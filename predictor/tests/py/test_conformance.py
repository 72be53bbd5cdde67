"""Open Inference Protocol conformance with the official tritonclient (HTTP and
gRPC) and KServe V1 over plain HTTP, compared against onnxruntime in Python."""
import json
import os

import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from conftest import MODELS, Server, model_args, request

NAMES = ["iris", "mlp", "linear64", "int32"]
BODY_LIMIT = 200_000


@pytest.fixture(scope="module")
def server():
    s = Server(*model_args(*NAMES), "--max-batch-size", "64", "--max-body-bytes", str(BODY_LIMIT))
    yield s
    s.stop()


def reference(name, feeds):
    sess = ort.InferenceSession(os.path.join(MODELS, name + ".onnx"), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, feeds)))


def sample_inputs(name, rows=5):
    rng = np.random.default_rng(rows)
    if name == "iris":
        return {"input": rng.uniform(0, 7, size=(rows, 4)).astype(np.float32)}
    if name == "mlp":
        return {"input": rng.normal(size=(rows, 32)).astype(np.float32)}
    if name == "linear64":
        return {"x": rng.normal(size=(rows, 3))}
    if name == "int32":
        return {"ids": rng.integers(-1000, 1000, size=(rows, 3)).astype(np.int32)}
    raise KeyError(name)


DTYPES = {np.float32: "FP32", np.float64: "FP64", np.int32: "INT32", np.int64: "INT64"}


def check_outputs(name, got, want):
    assert set(got) == set(want), (got.keys(), want.keys())
    for k, w in want.items():
        g = got[k]
        assert g.dtype == w.dtype, f"{name}.{k}: {g.dtype} vs {w.dtype}"
        assert g.shape == w.shape, f"{name}.{k}: {g.shape} vs {w.shape}"
        if np.issubdtype(w.dtype, np.floating):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
        else:
            np.testing.assert_array_equal(g, w)


def test_health_and_server_metadata_http(server):
    c = httpclient.InferenceServerClient(server.http)
    assert c.is_server_live()
    assert c.is_server_ready()
    for n in NAMES:
        assert c.is_model_ready(n)
    assert not c.is_model_ready("nope")
    meta = c.get_server_metadata()
    assert "binary_tensor_data" in meta["extensions"]
    assert meta["name"] == "lab-predictor"


def test_model_metadata_matches_the_onnx_graph(server):
    c = httpclient.InferenceServerClient(server.http)
    g = grpcclient.InferenceServerClient(server.grpc)
    for n in NAMES:
        sess = ort.InferenceSession(os.path.join(MODELS, n + ".onnx"))
        m = c.get_model_metadata(n)
        assert m["platform"] == "onnxruntime_onnx" and m["versions"] == ["1"]
        assert [i["name"] for i in m["inputs"]] == [i.name for i in sess.get_inputs()]
        assert [o["name"] for o in m["outputs"]] == [o.name for o in sess.get_outputs()]
        assert m["inputs"][0]["shape"][0] == -1
        gm = g.get_model_metadata(n, as_json=True)
        assert [i["datatype"] for i in gm["inputs"]] == [i["datatype"] for i in m["inputs"]]
    versioned = request("GET", server.url + "/v2/models/iris/versions/1")
    assert versioned[0] == 200


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("binary", [True, False])
def test_http_inference_matches_onnxruntime(server, name, binary):
    c = httpclient.InferenceServerClient(server.http)
    feeds = sample_inputs(name)
    inputs = []
    for k, v in feeds.items():
        i = httpclient.InferInput(k, list(v.shape), DTYPES[v.dtype.type])
        i.set_data_from_numpy(v, binary_data=binary)
        inputs.append(i)
    want = reference(name, feeds)
    outputs = [httpclient.InferRequestedOutput(k, binary_data=binary) for k in want]
    r = c.infer(name, inputs, outputs=outputs, request_id="req-7")
    assert r.get_response()["id"] == "req-7"
    check_outputs(name, {k: r.as_numpy(k) for k in want}, want)


@pytest.mark.parametrize("name", NAMES)
def test_grpc_inference_matches_onnxruntime(server, name):
    c = grpcclient.InferenceServerClient(server.grpc)
    assert c.is_server_live() and c.is_server_ready() and c.is_model_ready(name)
    feeds = sample_inputs(name, rows=3)
    inputs = []
    for k, v in feeds.items():
        i = grpcclient.InferInput(k, list(v.shape), DTYPES[v.dtype.type])
        i.set_data_from_numpy(v)
        inputs.append(i)
    want = reference(name, feeds)
    r = c.infer(name, inputs)
    check_outputs(name, {k: r.as_numpy(k) for k in want}, want)


def test_grpc_server_metadata_and_output_selection(server):
    c = grpcclient.InferenceServerClient(server.grpc)
    assert "binary_tensor_data" in c.get_server_metadata().extensions
    feeds = sample_inputs("iris", rows=2)
    i = grpcclient.InferInput("input", [2, 4], "FP32")
    i.set_data_from_numpy(feeds["input"])
    r = c.infer("iris", [i], outputs=[grpcclient.InferRequestedOutput("label")])
    assert r.as_numpy("probabilities") is None
    np.testing.assert_array_equal(r.as_numpy("label"), reference("iris", feeds)["label"])


def test_kserve_v1_predict(server):
    x = sample_inputs("mlp", rows=4)["input"]
    status, body, _ = request("POST", server.url + "/v1/models/mlp:predict", {"instances": x.tolist()})
    assert status == 200, body
    got = np.array(json.loads(body)["predictions"], dtype=np.float32)
    np.testing.assert_allclose(got, reference("mlp", {"input": x})["variable"], rtol=1e-5, atol=1e-6)
    # Several outputs: one object per row.
    xi = sample_inputs("iris", rows=2)["input"]
    status, body, _ = request("POST", server.url + "/v1/models/iris:predict", {"instances": xi.tolist()})
    assert status == 200, body
    preds = json.loads(body)["predictions"]
    assert [p["label"] for p in preds] == reference("iris", {"input": xi})["label"].tolist()
    assert request("GET", server.url + "/v1/models/iris")[0] == 200


# ---- errors: status codes and messages that name the input and the problem ----

def infer_json(server, model, inputs):
    return request("POST", f"{server.url}/v2/models/{model}/infer", {"inputs": inputs})


def error_of(resp):
    status, body, _ = resp
    return status, json.loads(body)["error"]


def test_malformed_json_is_400(server):
    status, msg = error_of(request("POST", server.url + "/v2/models/iris/infer", "{not json"))
    assert status == 400 and "malformed" in msg


def test_wrong_datatype_is_400_naming_the_input(server):
    status, msg = error_of(infer_json(server, "iris", [{"name": "input", "shape": [1, 4], "datatype": "FP64", "data": [1, 2, 3, 4]}]))
    assert status == 400 and "'input'" in msg and "FP64" in msg and "FP32" in msg


def test_wrong_shape_is_400(server):
    status, msg = error_of(infer_json(server, "iris", [{"name": "input", "shape": [1, 5], "datatype": "FP32", "data": [1, 2, 3, 4, 5]}]))
    assert status == 400 and "'input'" in msg and "shape" in msg
    status, msg = error_of(infer_json(server, "iris", [{"name": "input", "shape": [2, 4], "datatype": "FP32", "data": [1, 2, 3]}]))
    assert status == 400 and "8 elements" in msg


def test_bad_element_and_missing_input_are_400(server):
    status, msg = error_of(infer_json(server, "int32", [{"name": "ids", "shape": [1, 3], "datatype": "INT32", "data": [1, 2.5, 3]}]))
    assert status == 400 and "'ids'" in msg and "INT32" in msg
    status, msg = error_of(infer_json(server, "iris", []))
    assert status == 400 and "missing input 'input'" in msg
    status, msg = error_of(infer_json(server, "iris", [{"name": "bogus", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]))
    assert status == 400 and "'bogus'" in msg


def test_unknown_model_and_version_are_404(server):
    status, msg = error_of(infer_json(server, "nope", []))
    assert status == 404 and "nope" in msg
    assert request("GET", server.url + "/v2/models/nope")[0] == 404
    assert request("GET", server.url + "/v2/models/iris/versions/9")[0] == 404
    assert request("POST", server.url + "/v1/models/nope:predict", {"instances": [[1]]})[0] == 404


def test_body_over_the_limit_is_413(server):
    big = {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}], "pad": "x" * (BODY_LIMIT + 1)}
    status, msg = error_of(request("POST", server.url + "/v2/models/iris/infer", big))
    assert status == 413 and str(BODY_LIMIT) in msg


def test_errors_through_tritonclient(server):
    c = httpclient.InferenceServerClient(server.http)
    i = httpclient.InferInput("input", [1, 4], "FP64")
    i.set_data_from_numpy(np.zeros((1, 4)))
    with pytest.raises(InferenceServerException) as e:
        c.infer("iris", [i])
    assert "FP64" in str(e.value)
    g = grpcclient.InferenceServerClient(server.grpc)
    gi = grpcclient.InferInput("input", [1, 4], "FP64")
    gi.set_data_from_numpy(np.zeros((1, 4)))
    with pytest.raises(InferenceServerException) as e:
        g.infer("iris", [gi])
    assert "INVALID_ARGUMENT" in str(e.value.status())
    ok = grpcclient.InferInput("input", [1, 4], "FP32")
    ok.set_data_from_numpy(np.zeros((1, 4), dtype=np.float32))
    with pytest.raises(InferenceServerException) as e:
        g.infer("nope", [ok])
    assert "NOT_FOUND" in str(e.value.status())


def test_binary_header_longer_than_body_is_400(server):
    status, msg = error_of(request("POST", server.url + "/v2/models/iris/infer", b"{}",
                                   {"Inference-Header-Content-Length": "99"}))
    assert status == 400 and "Inference-Header-Content-Length" in msg


def test_requests_counted_by_code(server):
    infer_json(server, "iris", [])
    text = server.metrics()
    assert 'lab_predictor_requests_total{model="iris",code="400"}' in text
    assert 'lab_predictor_requests_total{model="iris",code="200"}' in text


def test_grpc_message_over_the_limit_is_resource_exhausted(server):
    g = grpcclient.InferenceServerClient(server.grpc)
    i = grpcclient.InferInput("input", [13000, 4], "FP32")
    i.set_data_from_numpy(np.zeros((13000, 4), dtype=np.float32))
    with pytest.raises(InferenceServerException) as e:
        g.infer("iris", [i])
    assert "RESOURCE_EXHAUSTED" in str(e.value.status())
    # The server is still fine afterwards.
    assert g.is_server_ready()


def test_grpc_typed_contents_without_raw_bytes(server):
    # tritonclient always sends raw bytes; the typed InferTensorContents path is
    # exercised with the protocol's own messages.
    import grpc
    from tritonclient.grpc import service_pb2, service_pb2_grpc

    x = sample_inputs("linear64", rows=2)["x"]
    req = service_pb2.ModelInferRequest(model_name="linear64")
    t = req.inputs.add(name="x", datatype="FP64", shape=[2, 3])
    t.contents.fp64_contents.extend(x.ravel().tolist())
    with grpc.insecure_channel(server.grpc) as ch:
        resp = service_pb2_grpc.GRPCInferenceServiceStub(ch).ModelInfer(req)
        got = np.frombuffer(resp.raw_output_contents[0], dtype=np.float64).reshape(list(resp.outputs[0].shape))
        np.testing.assert_allclose(got, reference("linear64", {"x": x})["variable"], rtol=1e-12)
        bad = service_pb2.ModelInferRequest(model_name="int32")
        b = bad.inputs.add(name="ids", datatype="INT32", shape=[1, 3])
        b.contents.int_contents.extend([1, 2])
        with pytest.raises(grpc.RpcError) as e:
            service_pb2_grpc.GRPCInferenceServiceStub(ch).ModelInfer(bad)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "'ids'" in e.value.details() and "3 elements" in e.value.details()
