"""Pure logic of chunked proving: where a model can be cut, row balancing, the chunk stage table,
params validation and the link comparison on proof files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zkml_dvc.chunked.links import check_link, link_values
from zkml_dvc.chunked.plan import balance, cut_candidates
from zkml_dvc.chunked.records import LinkCounts
from zkml_dvc.errors import InputError
from zkml_dvc.params import chunk_stage_table, parse_params

REPO = Path(__file__).resolve().parents[2]


def test_cut_candidates_of_the_example_mlp() -> None:
    import onnx

    model = onnx.load(str(REPO / "models" / "mlp" / "network.onnx"))
    assert cut_candidates(model) == ["hidden", "hidden_relu"]


@pytest.mark.parametrize(("costs", "parts", "cuts"), [
    ([10, 10, 10, 10], 2, [1]),
    ([30, 5, 5, 5, 5, 5, 5], 2, [0]),          # one heavy piece stands alone
    ([5, 5, 5, 5, 5, 5, 30], 2, [5]),
    ([10, 1, 10, 1, 10, 1, 10], 4, [0, 2, 4]),  # ties: the earlier cuts
    ([4, 4, 4], 3, [0, 1]),
])
def test_balance_minimises_the_largest_chunk(costs: list[int], parts: int, cuts: list[int]) -> None:
    assert balance(costs, parts) == cuts


def test_balance_refuses_more_parts_than_pieces() -> None:
    with pytest.raises(ValueError):
        balance([1, 2], 3)


BASE = {
    "project": "p", "default_model": "m",
    "models": {"m": {"onnx": "a.onnx", "input": "i.json", "calibration": "c.json",
                     "run_args": {"input_visibility": "public", "output_visibility": "public",
                                  "param_visibility": "fixed"}}},
}


def _chunked(**extra: object) -> dict[str, object]:
    entry = {**BASE["models"]["m"], "scales": [7], **extra}  # type: ignore[index]
    return {**BASE, "chunked": {"wide": entry}}


def test_chunk_stage_table_chains_witnesses() -> None:
    params = parse_params(_chunked(chunks=3), "params.yaml")
    table = chunk_stage_table(params.chunked)
    assert list(table) == ["wide-c0", "wide-c1", "wide-c2"]
    assert table["wide-c0"].data == "i.json"
    assert table["wide-c2"].data == "artifacts/wide/chunks/1/proofs/witness.json"


@pytest.mark.parametrize(("raw", "says"), [
    (_chunked(scales=[7, 8]), "pins one scale"),
    (_chunked(chunks=3, boundaries=["x"]), "need 2 boundaries"),
    (_chunked(link="zip"), "chunked.wide.link"),
    ({**BASE, "chunked": {"m": {**BASE["models"]["m"]}}}, "under both"),  # type: ignore[index]
])
def test_chunked_params_are_validated(raw: dict[str, object], says: str) -> None:
    with pytest.raises(InputError, match=says):
        parse_params(raw, "params.yaml")


def _proof(tmp: Path, name: str, points: list[bytes], instances: list[str]) -> Path:
    p = tmp / name
    p.write_text(json.dumps({"proof": list(b"".join(points) + b"\x00" * 256),
                             "instances": [instances]}))
    return p


def test_polycommit_link_compares_output_points_with_next_input_points(tmp_path: Path) -> None:
    a, b, c = (bytes([i]) * 64 for i in (1, 2, 3))
    p0 = _proof(tmp_path, "p0.json", [a], [])           # chunk 0: output point a
    p1 = _proof(tmp_path, "p1.json", [a, b], [])        # chunk 1: input a, output b
    p2 = _proof(tmp_path, "p2.json", [c], [])           # chunk 2: input c (does not link)
    c0, c1, c2 = (LinkCounts(index=0, link_outputs=1), LinkCounts(index=1, link_inputs=1,
                  link_outputs=1), LinkCounts(index=2, link_inputs=1))
    assert link_values(p1, c1, "polycommit", "output") == [b.hex()]
    assert check_link(p0, c0, p1, c1, "polycommit")[0]
    ok, detail = check_link(p1, c1, p2, c2, "polycommit")
    assert not ok and "!=" in detail
    # No link values at all (a count of 0) never passes.
    assert not check_link(p0, LinkCounts(index=0), p1, c1, "polycommit")[0]


def test_hashed_link_compares_instances(tmp_path: Path) -> None:
    p0 = _proof(tmp_path, "p0.json", [], ["x1", "x2", "h"])
    p1 = _proof(tmp_path, "p1.json", [], ["h", "y"])
    p2 = _proof(tmp_path, "p2.json", [], ["other", "y"])
    c0, c1 = LinkCounts(index=0, link_outputs=1), LinkCounts(index=1, link_inputs=1)
    assert check_link(p0, c0, p1, c1, "hashed")[0]
    assert not check_link(p0, c0, p2, c1, "hashed")[0]
