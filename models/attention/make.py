"""Make the `attention` example: one single-head self-attention block over 4 tokens of width 8
(Q, K, V projections, scaled dot-product scores, softmax, weighted sum, output projection), with
fixed random weights (seed 1). Built op by op with onnx.helper: MatMul, Transpose, Mul, Softmax.

Softmax makes ezkl use an exp lookup table sized to the scores calibration saw. The calibration
sequences are typical ones (|x| <= 1); the input is an outlier (|x| <= 3, as production data has),
whose scores (quadratic in x) fall outside that table: see docs/models.md for the args this needs.
Writes network.onnx, input.json (one outlier sequence) and calibration.json (8 typical ones).
Run: python models/attention/make.py
"""

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).parent
TOKENS, WIDTH = 4, 8


def main() -> None:
    rng = np.random.default_rng(1)
    weights = {name: rng.normal(0, 0.4, (WIDTH, WIDTH)).astype(np.float32)
               for name in ("Wq", "Wk", "Wv", "Wo")}
    scale = np.array(1.0 / np.sqrt(WIDTH), dtype=np.float32)
    nodes = [
        helper.make_node("MatMul", ["x", "Wq"], ["q"]),
        helper.make_node("MatMul", ["x", "Wk"], ["k"]),
        helper.make_node("MatMul", ["x", "Wv"], ["v"]),
        helper.make_node("Transpose", ["k"], ["k_t"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["q", "k_t"], ["scores_raw"]),
        helper.make_node("Mul", ["scores_raw", "scale"], ["scores"]),
        helper.make_node("Softmax", ["scores"], ["attn"], axis=-1),
        helper.make_node("MatMul", ["attn", "v"], ["context"]),
        helper.make_node("MatMul", ["context", "Wo"], ["y"]),
    ]
    inits = [numpy_helper.from_array(a, n) for n, a in weights.items()]
    inits.append(numpy_helper.from_array(scale, "scale"))
    graph = helper.make_graph(
        nodes, "attention",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, TOKENS, WIDTH])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, TOKENS, WIDTH])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, HERE / "network.onnx")
    x = rng.uniform(-3, 3, (1, TOKENS, WIDTH)).astype(np.float32)
    (HERE / "input.json").write_text(json.dumps({"input_data": [x.flatten().tolist()]}) + "\n")
    cal = rng.uniform(-1, 1, (8, TOKENS, WIDTH)).astype(np.float32)
    (HERE / "calibration.json").write_text(json.dumps({"input_data": [cal.flatten().tolist()]}) + "\n")


if __name__ == "__main__":
    main()
