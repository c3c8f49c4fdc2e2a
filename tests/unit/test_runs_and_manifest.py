import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from zkml_dvc import errors
from zkml_dvc.layout import ModelLayout, git_tracked
from zkml_dvc.manifest import ArtifactEntry, Manifest, json_schema, parse_manifest
from zkml_dvc.o3names import SAFE_KEY_RE
from zkml_dvc.runs import diff, new_run_id, tag_name, validate_run_id

REPO = Path(__file__).resolve().parents[2]


def test_run_ids_sort_by_time_and_are_unique():
    t0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    ids = [new_run_id(t0 + timedelta(seconds=s)) for s in (0, 0.001, 0.002, 1, 61, 3600)]
    assert ids == sorted(ids)
    same = {new_run_id(t0) for _ in range(200)}
    assert len(same) == 200
    for i in ids:
        assert validate_run_id(i) == i
        assert SAFE_KEY_RE.match(i)


@pytest.mark.parametrize("bad", ["", "-x", "../etc", "a/b", "a b", "x" * 65, "a..b", "r.lock", "é"])
def test_bad_run_ids_are_refused(bad):
    with pytest.raises(errors.InputError):
        validate_run_id(bad)


def test_tag_name_layout():
    assert tag_name("zkml-demo", "r1") == "runs/zkml-demo/r1"


def _entry(path, sha, reproducible=True, category="keys"):
    return ArtifactEntry(path=path, category=category, sha256=sha * 64, size=1,
                         reproducible=reproducible)


def _manifest(artifacts):
    data = json.loads((Path(__file__).parent / "data" / "manifest.json").read_text())
    data["artifacts"] = [a.model_dump() for a in artifacts]
    return Manifest.model_validate(data)


def test_diff_separates_randomness_from_real_change():
    a = _manifest([_entry("k/vk.key", "a"), _entry("p/proof.json", "b", False, "proofs"),
                   _entry("k/pk.key", "c"), _entry("old", "d")])
    b = _manifest([_entry("k/vk.key", "e"), _entry("p/proof.json", "f", False, "proofs"),
                   _entry("k/pk.key", "c"), _entry("new", "d")])
    kinds = {c.path: c.kind for c in diff(a, b)}
    assert kinds == {"k/vk.key": "changed", "p/proof.json": "expected-random", "k/pk.key": "same",
                     "old": "removed", "new": "added"}


@pytest.mark.parametrize("path", ["../../etc/passwd", "/etc/passwd", "a/../../b"])
def test_manifest_refuses_escaping_paths(path):
    data = json.loads((Path(__file__).parent / "data" / "manifest.json").read_text())
    data["artifacts"][0]["path"] = path
    with pytest.raises(errors.InputError, match="manifest .* invalid"):
        parse_manifest(json.dumps(data), "test")


def test_manifest_rejects_bad_hash_and_unknown_fields():
    data = json.loads((Path(__file__).parent / "data" / "manifest.json").read_text())
    data["artifacts"][0]["sha256"] = "not-a-hash"
    with pytest.raises(errors.InputError, match="sha256"):
        parse_manifest(json.dumps(data), "test")
    data = json.loads((Path(__file__).parent / "data" / "manifest.json").read_text())
    data["injected"] = 1
    with pytest.raises(errors.InputError, match="injected"):
        parse_manifest(json.dumps(data), "test")


def test_manifest_round_trip():
    text = (Path(__file__).parent / "data" / "manifest.json").read_text()
    m = parse_manifest(text, "test")
    assert parse_manifest(m.to_json(), "again") == m


def test_schema_in_docs_is_generated_from_the_model():
    doc = json.loads((REPO / "docs" / "manifest.schema.json").read_text())
    assert doc == json_schema(), "run `make schema` to regenerate docs/manifest.schema.json"


def test_dvc_yaml_matches_layout_and_template():
    import yaml

    template = (REPO / "zkml_dvc" / "templates" / "dvc.yaml").read_text()
    assert (REPO / "dvc.yaml").read_text() == template
    stages = yaml.safe_load(template)["stages"]
    lay = ModelLayout("${key}")
    for stage, outs in lay.outputs().items():
        # metrics (cache: false) are declared under `metrics:`, the rest under `outs:`
        do = stages[stage]["do"]
        declared = [*do.get("metrics", []), *do.get("plots", []), *do["outs"]]
        names = [next(iter(d)) if isinstance(d, dict) else d for d in declared]
        assert sorted(names) == sorted(str(p) for p in outs), stage
        for d in declared:
            path = next(iter(d)) if isinstance(d, dict) else d
            untracked = isinstance(d, dict) and d[path].get("cache") is False
            assert untracked == git_tracked(Path(path)), path
        assert stages[stage]["do"]["cmd"] == f"zkml-dvc stage {stage} --model ${{key}}"


def test_a_pulled_file_skips_its_check_only_when_its_object_is_the_manifests_for_it():
    """pull.checked_by_pull: a file placed from an object the pull downloaded and found to have
    the manifest's sha256 is not read again, but only if the clone's dvc.lock named the object
    the manifest names for that path, and the manifest gives that object that path's sha256."""
    from zkml_dvc.pull import checked_by_pull

    pk = _entry("k/pk.key", "a").model_copy(update={"md5": "1" * 32})
    vk = _entry("k/vk.key", "b").model_copy(update={"md5": "2" * 32})
    twin = _entry("k/twin.key", "c").model_copy(update={"md5": "2" * 32})  # vk's md5, other sha
    m = _manifest([pk, vk])
    assert checked_by_pull(m, "k/pk.key", {"k/pk.key": "1" * 32})
    assert not checked_by_pull(m, "k/pk.key", {})  # not placed from a checked download
    assert not checked_by_pull(m, "k/pk.key", {"k/pk.key": "2" * 32})  # dvc.lock named another
    # the object was checked against the sha256 the manifest gives its md5 last: vk's is c's now
    m = _manifest([pk, vk, twin])
    assert not checked_by_pull(m, "k/vk.key", {"k/vk.key": "2" * 32})
    assert checked_by_pull(m, "k/twin.key", {"k/twin.key": "2" * 32})
