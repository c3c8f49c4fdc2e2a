"""The pure parts of batch proving: batch ids, input reading, the batch manifest's parsing, and
which runs can be batch-proved."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from zkml_dvc.batch import (
    BatchEntry,
    BatchManifest,
    check_batch_id,
    default_batch_id,
    parse_batch,
    read_inputs,
)
from zkml_dvc.errors import InputError, MissingFileError
from zkml_dvc.layout import batch_prefix
from zkml_dvc.manifest import Manifest
from zkml_dvc.shapes import shape_for_manifest

DATA = Path(__file__).parent / "data" / "manifest.json"


def _manifest(**changes: object) -> Manifest:
    return Manifest.model_validate({**json.loads(DATA.read_text()), **changes})


def _write(path: Path, values: list[float]) -> Path:
    path.write_text(json.dumps({"input_data": [values]}))
    return path


def test_inputs_are_read_once_per_content_and_bad_ones_carry_their_error(tmp_path: Path) -> None:
    m = _manifest()
    width = 4  # the example MLP's input
    a = _write(tmp_path / "a.json", [0.1] * width)
    copy = tmp_path / "copy.json"
    copy.write_bytes(a.read_bytes())
    short = _write(tmp_path / "short.json", [0.1])
    items = read_inputs(m, [a, copy, short])
    assert [i.name for i in items] == ["a.json", "short.json"]
    assert items[0].error is None
    assert items[1].error is not None and "has 1 values but the model expects" in items[1].error
    (tmp_path / "bad.json").write_text("{not json")
    assert "bad.json" in (read_inputs(m, [tmp_path / "bad.json"])[0].error or "")
    with pytest.raises(MissingFileError, match="input file not found"):
        read_inputs(m, [tmp_path / "missing.json"])


def test_the_default_batch_id_names_the_set_of_inputs(tmp_path: Path) -> None:
    m = _manifest()
    a, b, c = (_write(tmp_path / f"{n}.json", [v] * 4) for n, v in (("a", .1), ("b", .2), ("c", .3)))
    one = default_batch_id(read_inputs(m, [a, b]))
    assert one == default_batch_id(read_inputs(m, [b, a]))  # order does not matter
    assert one != default_batch_id(read_inputs(m, [a, c]))
    assert check_batch_id(one) == one


@pytest.mark.parametrize("bad", ["", "../x", "a/b", "-x", "x" * 65, "a..b", "a b"])
def test_bad_batch_ids_are_refused(bad: str) -> None:
    with pytest.raises(InputError, match="is not allowed"):
        check_batch_id(bad)


def test_batch_manifest_round_trips_and_refuses_edits() -> None:
    now = datetime(2026, 11, 28, tzinfo=UTC)
    b = BatchManifest(batch_id="b1", project="p", run_id="r1", model="mlp",
                      run_manifest_sha256="a" * 64, vk_sha256="b" * 64, ezkl="23.0.5",
                      started=now, updated=now, workers="2 Ray actors",
                      entries=[BatchEntry(input_name="x.json", input_sha256="c" * 64,
                                          input_size=10, status="proved", proof_sha256="d" * 64,
                                          proof_size=5, output=[["0.5"]], seconds=1.0)])
    again = parse_batch(b.to_bytes(), "batch.json")
    assert again == b and again.entry("c" * 64) is not None and again.entry("e" * 64) is None
    data = json.loads(b.to_bytes())
    data["entries"][0]["proof_sha256"] = "not a hash"
    with pytest.raises(InputError, match=r"batch manifest batch.json is invalid at `entries.0"):
        parse_batch(json.dumps(data).encode(), "batch.json")
    data = json.loads(b.to_bytes())
    data["extra"] = 1
    with pytest.raises(InputError, match="invalid at `extra`"):
        parse_batch(json.dumps(data).encode(), "batch.json")


def test_a_monolithic_run_names_its_keys_and_a_chunked_one_refuses() -> None:
    m = _manifest()
    keys = shape_for_manifest(m).batch_keys(m)
    assert {k: str(v) for k, v in keys.items()} == {
        "settings": "artifacts/mlp/circuits/settings.json",
        "compiled": "artifacts/mlp/circuits/network.compiled",
        "pk": "artifacts/mlp/keys/pk.key", "vk": "artifacts/mlp/keys/vk.key"}
    chunked = _manifest(link="hashed", chunk_scale=7)
    with pytest.raises(InputError, match="is chunked: prove-batch proves monolithic runs"):
        shape_for_manifest(chunked).batch_keys(chunked)
    assert batch_prefix("p", "r1", "b1") == "projects/p/runs/r1/batches/b1"
