"""Make the `mlp` example: a 4-8-2 ReLU MLP with fixed random weights (seed 0).

Writes network.onnx, input.json (one sample) and calibration.json (16 samples) in ezkl's format.
Run: python models/mlp/make.py
"""

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).parent


def main() -> None:
    rng = np.random.default_rng(0)
    w1 = rng.normal(0, 0.5, (4, 8)).astype(np.float32)
    b1 = rng.normal(0, 0.1, 8).astype(np.float32)
    w2 = rng.normal(0, 0.5, (8, 2)).astype(np.float32)
    b2 = rng.normal(0, 0.1, 2).astype(np.float32)
    nodes = [
        helper.make_node("Gemm", ["input", "W1", "b1"], ["hidden"]),
        helper.make_node("Relu", ["hidden"], ["hidden_relu"]),
        helper.make_node("Gemm", ["hidden_relu", "W2", "b2"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 2])],
        [numpy_helper.from_array(a, n) for a, n in ((w1, "W1"), (b1, "b1"), (w2, "W2"), (b2, "b2"))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, HERE / "network.onnx")
    x = rng.uniform(-1, 1, (1, 4)).astype(np.float32)
    (HERE / "input.json").write_text(json.dumps({"input_data": [x.flatten().tolist()]}) + "\n")
    cal = rng.uniform(-1, 1, (16, 4)).astype(np.float32)
    (HERE / "calibration.json").write_text(json.dumps({"input_data": [cal.flatten().tolist()]}) + "\n")


if __name__ == "__main__":
    main()
