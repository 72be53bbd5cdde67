"""Writes the small ONNX test models the predictor's tests and benchmark use.

Run: python3 predictor/tests/make_models.py [OUT_DIR]   (default: predictor/models)
Deterministic (fixed seeds), so the committed files can be regenerated.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType
from sklearn.datasets import load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.neural_network import MLPRegressor

OPSET = {"": 17, "ai.onnx.ml": 3}


def save(model, out, name):
    path = os.path.join(out, name + ".onnx")
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
    print(f"{path}: {os.path.getsize(path)} bytes")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "models")
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(7)

    # Classifier: FP32 input, INT64 label and FP32 probabilities (no ZipMap, so both are tensors).
    x, y = load_iris(return_X_y=True)
    clf = LogisticRegression(max_iter=500).fit(x, y)
    m = convert_sklearn(clf, initial_types=[("input", FloatTensorType([None, 4]))],
                        options={id(clf): {"zipmap": False}}, target_opset=OPSET)
    save(m, out, "iris")

    # Small MLP: FP32 in and out, enough arithmetic for batching to matter.
    xm = rng.normal(size=(512, 32)).astype(np.float32)
    # One target: skl2onnx declares a regressor's output as [N, 1] and reshapes to it.
    ym = xm[:, :8].sum(1) + np.sin(xm[:, 8]) + xm[:, 9] * xm[:, 10]
    mlp = MLPRegressor(hidden_layer_sizes=(128, 128), max_iter=200, random_state=0).fit(xm, ym)
    m = convert_sklearn(mlp, initial_types=[("input", FloatTensorType([None, 32]))], target_opset=OPSET)
    save(m, out, "mlp")

    # Linear regression in double precision: FP64 input and output.
    xl = rng.normal(size=(64, 3))
    lin = LinearRegression().fit(xl, xl @ np.array([1.5, -2.0, 0.25]) + 3.0)
    m = convert_sklearn(lin, initial_types=[("x", DoubleTensorType([None, 3]))], target_opset=OPSET)
    save(m, out, "linear64")

    # INT32 input, two outputs of different types: y = 2x + 1 (INT32) and x as FP32.
    inp = helper.make_tensor_value_info("ids", TensorProto.INT32, [None, 3])
    out_i = helper.make_tensor_value_info("scaled", TensorProto.INT32, [None, 3])
    out_f = helper.make_tensor_value_info("as_float", TensorProto.FLOAT, [None, 3])
    two = helper.make_tensor("two", TensorProto.INT32, [], [2])
    one = helper.make_tensor("one", TensorProto.INT32, [], [1])
    graph = helper.make_graph(
        [helper.make_node("Mul", ["ids", "two"], ["doubled"]),
         helper.make_node("Add", ["doubled", "one"], ["scaled"]),
         helper.make_node("Cast", ["ids"], ["as_float"], to=TensorProto.FLOAT)],
        "int32_affine", [inp], [out_i, out_f], initializer=[two, one])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    save(m, out, "int32")


if __name__ == "__main__":
    main()
