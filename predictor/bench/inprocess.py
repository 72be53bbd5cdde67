"""The limit: ONNX Runtime in-process (Python bindings, same model, one intra-op
thread like the servers), rows per second at each batch size.

Usage: python3 inprocess.py MODEL.onnx SECONDS BATCH [BATCH ...]
"""
import sys
import time

import numpy as np
import onnxruntime as ort


def main():
    path, seconds, batches = sys.argv[1], float(sys.argv[2]), [int(b) for b in sys.argv[3:]]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    width = inp.shape[1]
    rng = np.random.default_rng(0)
    for b in batches:
        x = rng.normal(size=(b, width)).astype(np.float32)
        for _ in range(50):
            sess.run(None, {inp.name: x})
        n = 0
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            sess.run(None, {inp.name: x})
            n += 1
        dt = time.perf_counter() - t0
        print(f"inprocess batch={b} runs={n} rows_per_s={n * b / dt:.0f} mean_us={dt / n * 1e6:.1f}")


if __name__ == "__main__":
    main()
