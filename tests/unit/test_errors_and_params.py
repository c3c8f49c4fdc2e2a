from pathlib import Path

import pytest
import yaml

from zkml_dvc import errors
from zkml_dvc.params import load_params, parse_params

REPO = Path(__file__).resolve().parents[2]


def test_exit_codes_are_distinct_and_documented():
    codes = list(errors.EXIT_CODES.values())
    assert len(codes) == len(set(codes))
    doc = (REPO / "docs" / "errors.md").read_text()
    for klass, code in errors.EXIT_CODES.items():
        assert f"| {code} |" in doc, f"exit code {code} ({klass.__name__}) missing in docs/errors.md"


@pytest.mark.parametrize(("doc", "at_least"), [("errors.md", 20), ("security.md", 14)])
def test_every_test_named_in_the_catalogues_exists(doc: str, at_least: int):
    """docs/errors.md and docs/security.md name the test that checks each case: each must exist."""
    import re

    named = set(re.findall(r"(test_[a-z_]+\.py)::(test_[a-z0-9_]+)", (REPO / "docs" / doc).read_text()))
    assert len(named) >= at_least
    for module, name in named:
        files = list((REPO / "tests").rglob(module))
        assert files, f"docs/{doc} names {module}, which does not exist"
        assert any(f"def {name}(" in f.read_text() for f in files), f"{module}::{name} not found"


@pytest.mark.parametrize("exc,code", [
    (errors.MissingFileError("x.onnx", "ONNX model"), 2),
    (errors.HashMismatchError("vk", "a" * 64, "b" * 64), 4),
    (errors.IntegrityError("the manifest names another run"), 4),
    (errors.VersionMismatchError("run r", "22.0.0", "23.0.5"), 6),
    (errors.EzklError("prove", {"pk": "pk.key"}, "boom"), 7),
    (errors.ProofInvalidError("bad", ""), 3),
    (errors.StoreError("down", ""), 5),
    (errors.NotFoundError("no run", ""), 8),
    (RuntimeError("bug"), 1),
])
def test_most_specific_exit_code_wins(exc, code):
    assert errors.exit_code_for(exc) == code


def test_integrity_errors_say_what_they_know():
    plain = errors.IntegrityError("audit of run r1: the re-derived vk does not match the recorded one")
    assert "sha256" not in str(plain) and "recorded recorded" not in str(plain)
    assert "do not use it" in str(plain)  # the default remedy
    mismatch = errors.HashMismatchError("vk.key", "a" * 64, "b" * 64)
    assert isinstance(mismatch, errors.IntegrityError)
    assert "its sha256 is bbbbbbbbbbbb..., not the recorded aaaaaaaaaaaa... The stored" in str(mismatch)


def test_errors_are_one_line_with_remedy_and_stdlib_bases():
    e = errors.MissingFileError("models/x.onnx", "ONNX model", "Check params.yaml.")
    assert isinstance(e, FileNotFoundError) and isinstance(e, errors.ZkmlError)
    assert "\n" not in str(e) and "models/x.onnx" in str(e) and "Check params.yaml" in str(e)


def test_repository_params_are_valid_and_explicit():
    params = load_params(REPO)
    assert params.default_model in params.models
    for mp in params.models.values():
        ra = mp.run_args
        assert {ra.input_visibility, ra.output_visibility, ra.param_visibility} <= {
            "public", "private", "fixed", "hashed", "polycommit"}


def _raw():
    return yaml.safe_load((REPO / "params.yaml").read_text())


def test_missing_visibility_is_rejected_with_the_key():
    raw = _raw()
    del raw["models"]["mlp"]["run_args"]["input_visibility"]
    with pytest.raises(errors.InputError, match=r"models\.mlp\.run_args\.input_visibility"):
        parse_params(raw, "params.yaml")


@pytest.mark.parametrize("field,value,msg", [
    ("param_visibility", "public", "rejected by ezkl"),
    ("input_visibility", "secret", "unknown visibility"),
])
def test_bad_visibilities(field, value, msg):
    raw = _raw()
    raw["models"]["mlp"]["run_args"][field] = value
    with pytest.raises(errors.InputError, match=msg):
        parse_params(raw, "params.yaml")


def test_unknown_model_names_the_known_ones():
    params = parse_params(_raw(), "params.yaml")
    with pytest.raises(errors.NotFoundError, match="digits, mlp"):
        params.model("resnet")


def test_bad_project_id_and_default_model():
    raw = _raw()
    raw["project"] = "Bad Name"
    with pytest.raises(errors.InputError, match="project"):
        parse_params(raw, "params.yaml")
    raw = _raw()
    raw["default_model"] = "nope"
    with pytest.raises(errors.InputError, match="default_model"):
        parse_params(raw, "params.yaml")



def test_a_project_may_have_only_chunked_models_but_not_none():
    raw = _raw()
    only = {**raw["models"]["mlp"], "scales": [7], "chunks": 2, "evm": False}
    raw["chunked"] = {"net": only}
    raw["models"] = {}
    raw["default_model"] = "net"
    params = parse_params(raw, "params.yaml")
    assert params.model(None)[0] == "net" and not params.models
    del raw["models"]  # omitted altogether: the same
    assert parse_params(raw, "params.yaml").chunked["net"].chunks == 2
    raw["chunked"] = {}
    with pytest.raises(errors.InputError, match="no model: `models:` and `chunked:` are both empty"):
        parse_params(raw, "params.yaml")


def test_any_ezkl_run_arg_is_accepted_and_checked_by_ezkl_itself():
    raw = _raw()
    ra = raw["models"]["mlp"]["run_args"]
    ra.update(num_inner_cols=1, lookup_range=[-1000, 1000], check_mode="unsafe",
              variables=[["batch_size", 1]], decomp_legs=3)
    args = parse_params(raw, "params.yaml").models["mlp"].run_args
    assert args.for_ezkl()["lookup_range"] == [-1000, 1000]
    assert args.for_ezkl()["input_visibility"] == ra["input_visibility"]
    ra["num_inner_colz"] = 2
    with pytest.raises(errors.InputError, match=r"has no run arg 'num_inner_colz'.*num_inner_cols"):
        parse_params(raw, "params.yaml")
    del ra["num_inner_colz"]
    ra["num_inner_cols"] = "two"
    with pytest.raises(errors.InputError, match=r"run_args.*ezkl refuses run arg num_inner_cols='two'"):
        parse_params(raw, "params.yaml")
    ra["num_inner_cols"] = 1
    ra["check_mode"] = "bogus"
    with pytest.raises(errors.InputError, match="check_mode"):
        parse_params(raw, "params.yaml")


def test_calibration_options_are_ezkls_own():
    raw = _raw()
    raw["models"]["mlp"]["calibration_options"] = {"max_logrows": 16, "lookup_safety_margin": 2}
    assert parse_params(raw, "params.yaml").models["mlp"].calibration_options["max_logrows"] == 16
    raw["models"]["mlp"]["calibration_options"] = {"max_log_rows": 16}
    with pytest.raises(errors.InputError,
                       match=r"no option 'max_log_rows'.*lookup_safety_margin.*max_logrows"):
        parse_params(raw, "params.yaml")


def test_a_chunked_model_cannot_ask_for_an_evm_verifier():
    raw = _raw()
    raw["chunked"] = {"net": {**raw["models"]["mlp"], "scales": [7], "chunks": 2, "evm": True}}
    with pytest.raises(errors.InputError, match="chunked.net.evm: .*has no EVM verifier"):
        parse_params(raw, "params.yaml")
