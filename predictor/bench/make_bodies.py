"""Writes request bodies for the load client: OIP V2 JSON with ROWS rows, and the
same request with the binary tensor extension (prints its JSON header length).

Usage: python3 make_bodies.py OUT_DIR ROWS [ROWS ...]
"""
import json
import os
import sys

import numpy as np


def main():
    out, rows_list = sys.argv[1], [int(r) for r in sys.argv[2:]]
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(0)
    for rows in rows_list:
        x = rng.normal(size=(rows, 32)).astype(np.float32)
        body = {"inputs": [{"name": "input", "shape": [rows, 32], "datatype": "FP32", "data": x.ravel().tolist()}]}
        with open(os.path.join(out, f"json-{rows}.json"), "w") as f:
            json.dump(body, f)
        raw = x.tobytes()
        header = json.dumps({
            "inputs": [{"name": "input", "shape": [rows, 32], "datatype": "FP32",
                        "parameters": {"binary_data_size": len(raw)}}],
            "outputs": [{"name": "variable", "parameters": {"binary_data": True}}],
        }).encode()
        with open(os.path.join(out, f"bin-{rows}.bin"), "wb") as f:
            f.write(header + raw)
        with open(os.path.join(out, f"bin-{rows}.len"), "w") as f:
            f.write(str(len(header)))


if __name__ == "__main__":
    main()
