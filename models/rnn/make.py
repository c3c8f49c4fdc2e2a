"""Make the `rnn` example: a recurrent network (ONNX's own `RNN` op, tanh cell, hidden size 6)
reading a sequence of 5 steps of 3 features, then a linear read-out of the last hidden state; fixed
random weights (seed 2).

The tanh lookups and the recurrence (each step rescales the last one's output) need run args beyond
the defaults: see docs/models.md.
Writes network.onnx, input.json (one sequence) and calibration.json (8 sequences).
Run: python models/rnn/make.py
"""

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).parent
STEPS, FEATURES, HIDDEN, OUT = 5, 3, 6, 2


def main() -> None:
    rng = np.random.default_rng(2)
    w = rng.normal(0, 0.5, (1, HIDDEN, FEATURES)).astype(np.float32)  # input weights
    r = rng.normal(0, 0.3, (1, HIDDEN, HIDDEN)).astype(np.float32)  # recurrence weights
    b = rng.normal(0, 0.1, (1, 2 * HIDDEN)).astype(np.float32)  # Wb and Rb
    w_out = rng.normal(0, 0.5, (HIDDEN, OUT)).astype(np.float32)
    b_out = rng.normal(0, 0.1, OUT).astype(np.float32)
    nodes = [
        # x: [seq, batch, features] (ONNX's RNN layout); Y_h: [directions, batch, hidden]
        helper.make_node("RNN", ["x", "W", "R", "B"], ["", "h_last"], hidden_size=HIDDEN),
        helper.make_node("Reshape", ["h_last", "h_shape"], ["h"]),
        helper.make_node("Gemm", ["h", "W_out", "b_out"], ["y"]),
    ]
    inits = [numpy_helper.from_array(a, n) for a, n in
             ((w, "W"), (r, "R"), (b, "B"), (w_out, "W_out"), (b_out, "b_out"),
              (np.array([1, HIDDEN], dtype=np.int64), "h_shape"))]
    graph = helper.make_graph(
        nodes, "rnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["seq_len", 1, FEATURES])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, OUT])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, HERE / "network.onnx")
    x = rng.uniform(-1, 1, (STEPS, 1, FEATURES)).astype(np.float32)
    (HERE / "input.json").write_text(json.dumps({"input_data": [x.flatten().tolist()]}) + "\n")
    cal = rng.uniform(-1, 1, (8, STEPS, 1, FEATURES)).astype(np.float32)
    (HERE / "calibration.json").write_text(json.dumps({"input_data": [cal.flatten().tolist()]}) + "\n")


if __name__ == "__main__":
    main()
