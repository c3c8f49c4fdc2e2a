"""Where inputs and outputs sit in a proof's instances, from the settings alone (instances.py),
on the settings ezkl 23.0.5 writes for the example MLP (public/public and chunks linked by hashes)."""

from __future__ import annotations

import pytest

from zkml_dvc.errors import InputError
from zkml_dvc.instances import layout, visibility_kind

HASHED = {"Hashed": {"hash_is_public": True, "outlets": []}}


def _settings(vin, vout, shapes, n_in=1, n_out=1) -> dict:  # type: ignore[no-untyped-def]
    return {"run_args": {"input_visibility": vin, "output_visibility": vout,
                         "param_visibility": "Fixed"},
            "model_instance_shapes": shapes, "model_input_scales": [7] * n_in,
            "model_output_scales": [21] * n_out}


def test_public_input_then_public_output() -> None:
    lay = layout(_settings("Public", "Public", [[1, 4], [1, 2]]))
    assert [(s.side, s.start, s.length) for s in lay.segments] == [("input", 0, 4), ("output", 4, 2)]
    assert lay.total == 6 and lay.output_scales == [21]


def test_a_hashed_tensor_is_one_instance_and_not_in_the_shapes() -> None:
    first = layout(_settings("Public", HASHED, [[1, 4]]))  # chunk 0 of a hashed-linked model
    assert [(s.side, s.kind, s.start, s.length) for s in first.segments] == [
        ("input", "public", 0, 4), ("output", "hashed", 4, 1)]
    last = layout(_settings(HASHED, "Public", [[1, 2]]))
    assert [(s.side, s.kind, s.start, s.length) for s in last.segments] == [
        ("input", "hashed", 0, 1), ("output", "public", 1, 2)]


def test_committed_and_private_tensors_are_not_instances() -> None:
    lay = layout(_settings("KZGCommit", "Public", [[1, 2]]))
    assert [(s.side, s.start) for s in lay.segments] == [("output", 0)] and lay.total == 2
    assert layout(_settings("Private", "Private", [])).total == 0


@pytest.mark.parametrize(("raw", "kind"), [
    ("Public", "public"), ("public", "public"), ("hashed/public", "hashed"), (HASHED, "hashed"),
    ({"Hashed": {"hash_is_public": False}}, "none"), ("KZGCommit", "none"), ("Fixed", "none"),
    ("polycommit", "none"), (None, "none"),
])
def test_visibility_kinds(raw, kind) -> None:  # type: ignore[no-untyped-def]
    assert visibility_kind(raw) == kind


def test_settings_that_contradict_themselves_are_refused() -> None:
    with pytest.raises(InputError, match="malformed"):
        layout(_settings("Public", "Public", [[1, 4]]))
    with pytest.raises(InputError, match="parameters public"):
        layout({**_settings("Public", "Public", [[1, 4], [1, 2]]),
                "run_args": {"input_visibility": "Public", "output_visibility": "Public",
                             "param_visibility": "Public"}})
