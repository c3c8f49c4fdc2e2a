"""The store configuration resolver: flag > environment > project remote `o3` > default, for every
setting and every pair of sources (remote.resolve_store_config)."""

from __future__ import annotations

import itertools

import pytest

from zkml_dvc.remote import resolve_store_config

URL = "s3://bucket/prefix"
# setting -> (flag name, env variable(s) in precedence order, remote key, default)
SETTINGS = {
    "endpoint": ("endpoint", ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"), "endpointurl", None),
    "region": ("region", ("AWS_DEFAULT_REGION",), "region", "akave-network"),
    "profile": ("profile", ("AWS_PROFILE",), "profile", None),
}
SOURCES = ("flag", "env", "remote")


def _sources(setting: str, present: tuple[str, ...]) -> tuple[dict, dict, dict]:
    flag, env_names, remote_key, _ = SETTINGS[setting]
    flags = {flag: f"{setting}-from-flag"} if "flag" in present else {}
    environ = {env_names[0]: f"{setting}-from-env"} if "env" in present else {}
    remote = {remote_key: f"{setting}-from-remote"} if "remote" in present else {}
    return flags, environ, remote


@pytest.mark.parametrize("setting", sorted(SETTINGS))
@pytest.mark.parametrize("present", [c for n in range(4) for c in itertools.combinations(SOURCES, n)])
def test_every_pair_of_sources_resolves_in_the_documented_order(setting: str, present: tuple) -> None:
    flags, environ, remote = _sources(setting, present)
    cfg = resolve_store_config(URL, flags, environ, remote)
    winner = next((s for s in SOURCES if s in present), None)
    expected = f"{setting}-from-{winner}" if winner else SETTINGS[setting][3]
    assert getattr(cfg, setting) == expected


def test_the_s3_specific_endpoint_variable_wins_over_the_generic_one() -> None:
    cfg = resolve_store_config(URL, {}, {"AWS_ENDPOINT_URL": "generic", "AWS_ENDPOINT_URL_S3": "s3"})
    assert cfg.endpoint == "s3"
    assert resolve_store_config(URL, {}, {"AWS_ENDPOINT_URL": "generic"}).endpoint == "generic"


@pytest.mark.parametrize(("environ", "expected_id"), [
    ({}, "remote-id"),  # only the remote's keys (git-ignored .dvc/config.local)
    ({"AWS_ACCESS_KEY_ID": "env-id", "AWS_SECRET_ACCESS_KEY": "env-secret"}, None),  # botocore reads env
])
def test_environment_keys_win_over_the_remotes(environ: dict, expected_id: str | None) -> None:
    remote = {"access_key_id": "remote-id", "secret_access_key": "remote-secret"}
    cfg = resolve_store_config(URL, {}, environ, remote)
    assert cfg.access_key_id == expected_id
    assert (cfg.secret_access_key is None) == bool(environ)


def test_secrets_are_not_in_the_config_repr() -> None:
    cfg = resolve_store_config(URL, {}, {}, {"access_key_id": "AKIDSECRET", "secret_access_key": "S3CR3T"})
    assert "S3CR3T" not in repr(cfg) and "AKIDSECRET" not in repr(cfg)
