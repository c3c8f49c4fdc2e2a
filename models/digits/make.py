"""Make the `digits` example: a 64-16-10 MLP classifier trained on scikit-learn's bundled 8x8
digits data set (shipped with scikit-learn: nothing is downloaded), exported to ONNX by hand as
Gemm/Relu/Gemm so ezkl supports every op.

Writes network.onnx, input.json (a real test-set digit image, scaled to [0, 1]) and
calibration.json (32 training images). Prints the test accuracy. Run: python models/digits/make.py
"""

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

HERE = Path(__file__).parent


def main() -> None:
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(
        x, digits.target, test_size=0.25, random_state=0
    )
    clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=600, random_state=0)
    clf.fit(x_train, y_train)
    print(f"digits test accuracy: {clf.score(x_test, y_test):.3f}")
    w1, w2 = (w.astype(np.float32) for w in clf.coefs_)
    b1, b2 = (b.astype(np.float32) for b in clf.intercepts_)
    nodes = [
        helper.make_node("Gemm", ["image", "W1", "b1"], ["hidden"]),
        helper.make_node("Relu", ["hidden"], ["hidden_relu"]),
        helper.make_node("Gemm", ["hidden_relu", "W2", "b2"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes,
        "digits",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])],
        [numpy_helper.from_array(a, n) for a, n in ((w1, "W1"), (b1, "b1"), (w2, "W2"), (b2, "b2"))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, HERE / "network.onnx")
    sample = x_test[0:1]
    print(f"input is a test image of the digit {y_test[0]}; the model says {clf.predict(sample)[0]}")
    (HERE / "input.json").write_text(json.dumps({"input_data": [sample.flatten().tolist()]}) + "\n")
    cal = x_train[:32]
    (HERE / "calibration.json").write_text(json.dumps({"input_data": [cal.flatten().tolist()]}) + "\n")


if __name__ == "__main__":
    main()
