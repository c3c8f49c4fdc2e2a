"""Make the `trees` example: a random forest (3 trees of depth 3) trained on scikit-learn's bundled
8x8 digits (nothing downloaded), compiled by hand into tensor ops in the "GEMM" form that tree
compilers such as hummingbird use, since ezkl proves tensor ops, not ONNX-ML's TreeEnsemble:

    decisions = Relu(Sign(B - x @ A))        # 1 where x < threshold: A picks each node's feature
    hits      = Relu(1 - |decisions @ C - D|) # 1 at the leaf whose path matches: C holds +1/-1
                                              # per (node, leaf) on its path, D its left turns
    scores    = hits @ E                      # E: each leaf's class probabilities / number of trees

written with arithmetic rather than Less/Equal/Cast (ezkl 23 mis-scales a bool cast to float).

Comparisons are exact only if thresholds survive quantisation: see docs/models.md for the args.
Writes network.onnx, input.json (a test-set image) and calibration.json (32 training images).
Prints the forest's test accuracy and the tensor form's agreement with it.
Run: python models/trees/make.py
"""

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import load_digits
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import train_test_split

HERE = Path(__file__).parent


def gemm_form(forest: RandomForestClassifier, n_features: int) -> tuple[np.ndarray, ...]:
    """The forest as matrices A, B, C, D, E (see the module docstring)."""
    a_cols, b_vals, leaf_paths, leaf_values = [], [], [], []
    for tree in forest.estimators_:
        t = tree.tree_
        base = len(a_cols)
        internal = [n for n in range(t.node_count) if t.children_left[n] != -1]
        index = {n: base + i for i, n in enumerate(internal)}
        for n in internal:
            col = np.zeros(n_features, dtype=np.float32)
            col[t.feature[n]] = 1.0
            a_cols.append(col)
            b_vals.append(t.threshold[n])

        def walk(node: int, path: list[tuple[int, int]], t=t, index=index) -> None:
            if t.children_left[node] == -1:
                value = t.value[node][0]
                leaf_paths.append(path)
                leaf_values.append(value / value.sum() / len(forest.estimators_))
                return
            # sklearn goes left when x <= threshold; Less(x, thr) differs only on ties
            walk(t.children_left[node], [*path, (index[node], 1)])
            walk(t.children_right[node], [*path, (index[node], -1)])

        walk(0, [])
    n_nodes, n_leaves = len(a_cols), len(leaf_paths)
    a = np.stack(a_cols, axis=1)
    b = np.array(b_vals, dtype=np.float32)[None, :]
    c = np.zeros((n_nodes, n_leaves), dtype=np.float32)
    d = np.zeros((1, n_leaves), dtype=np.float32)
    for leaf, path in enumerate(leaf_paths):
        for node, sign in path:
            c[node, leaf] = sign
            d[0, leaf] += 1 if sign == 1 else 0
    e = np.stack(leaf_values).astype(np.float32)
    return a, b, c, d, e


def main() -> None:
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    x_train, x_test, y_train, y_test = train_test_split(
        x, digits.target, test_size=0.25, random_state=0
    )
    forest = RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(x_train, y_train)
    print(f"forest test accuracy: {forest.score(x_test, y_test):.3f}")
    a, b, c, d, e = gemm_form(forest, x.shape[1])
    scores = (((x_test @ a < b).astype(np.float32) @ c) == d).astype(np.float32) @ e
    agree = float(np.mean(scores.argmax(1) == forest.predict(x_test)))
    print(f"tensor form agrees with the forest on {agree:.3f} of the test set")
    nodes = [
        helper.make_node("MatMul", ["image", "A"], ["picked"]),
        helper.make_node("Sub", ["B", "picked"], ["margin"]),
        helper.make_node("Sign", ["margin"], ["side"]),
        helper.make_node("Relu", ["side"], ["decisions"]),
        helper.make_node("MatMul", ["decisions", "C"], ["path_sums"]),
        helper.make_node("Sub", ["path_sums", "D"], ["path_diff"]),
        helper.make_node("Abs", ["path_diff"], ["path_dist"]),
        helper.make_node("Sub", ["one", "path_dist"], ["closeness"]),
        helper.make_node("Relu", ["closeness"], ["hits"]),
        helper.make_node("MatMul", ["hits", "E"], ["scores"]),
    ]
    graph = helper.make_graph(
        nodes, "trees",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, x.shape[1]])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, e.shape[1]])],
        [numpy_helper.from_array(m, n) for m, n in ((a, "A"), (b, "B"), (c, "C"), (d, "D"), (e, "E"),
                                                        (np.ones((1, 1), np.float32), "one"))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, HERE / "network.onnx")
    sample = x_test[0:1]
    print(f"input is a test image of the digit {y_test[0]}; the forest says {forest.predict(sample)[0]}")
    (HERE / "input.json").write_text(json.dumps({"input_data": [sample.flatten().tolist()]}) + "\n")
    cal = x_train[:32]
    (HERE / "calibration.json").write_text(json.dumps({"input_data": [cal.flatten().tolist()]}) + "\n")


if __name__ == "__main__":
    main()
