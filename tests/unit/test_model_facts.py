"""ONNX model facts: inspected once per file content, then read from the user cache."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from zkml_dvc.errors import InputError, MissingFileError
from zkml_dvc.fsutil import sha256_file
from zkml_dvc.onnx_model import _facts_cache, inspect_model

MLP = Path(__file__).resolve().parents[2] / "models" / "mlp" / "network.onnx"


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("ZKML_DVC_CACHE_DIR", str(cache))
    return cache


def test_facts_are_cached_under_the_files_sha256_and_read_back(tmp_path: Path) -> None:
    model = tmp_path / "a.onnx"
    shutil.copyfile(MLP, model)
    first = inspect_model(model)
    cached = _facts_cache(sha256_file(model))
    assert cached.is_file() and first.sha256 == sha256_file(MLP) and first.parameter_count > 0
    # the second call reads the cache: an entry edited in place is what it returns
    cached.write_text(first.model_copy(update={"parameter_count": 7}).model_dump_json())
    other = tmp_path / "b.onnx"
    shutil.copyfile(MLP, other)
    again = inspect_model(other)
    assert again.parameter_count == 7 and again.path == str(other)


def test_a_cache_entry_for_other_bytes_is_not_believed(tmp_path: Path) -> None:
    model = tmp_path / "a.onnx"
    shutil.copyfile(MLP, model)
    real = inspect_model(model)
    cached = _facts_cache(real.sha256)
    cached.write_text(real.model_copy(update={"sha256": "0" * 64,
                                             "parameter_count": 7}).model_dump_json())
    assert inspect_model(model).parameter_count == real.parameter_count
    cached.write_text("{not json")
    assert inspect_model(model) == real


def test_an_invalid_model_is_an_input_error_and_is_not_cached(tmp_path: Path,
                                                              own_cache: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a protobuf at all")
    with pytest.raises(InputError, match="bad.onnx is not a valid ONNX model"):
        inspect_model(bad)
    with pytest.raises(InputError, match="bad.onnx is not a valid ONNX model"):
        inspect_model(bad)
    assert not list(own_cache.rglob("*.json"))
    with pytest.raises(MissingFileError, match="missing.onnx"):
        inspect_model(tmp_path / "missing.onnx")
