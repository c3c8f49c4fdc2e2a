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


@pytest.mark.parametrize("endpoint,environ,refused", [
    ("http://o3.example.org", {}, True),
    ("http://10.0.0.5:9000", {}, True),
    ("http://o3.example.org", {"ZKML_DVC_ALLOW_HTTP": "1"}, False),
    ("http://127.0.0.1:8333", {}, False),
    ("http://localhost:8333", {}, False),
    ("https://o3-rc2.akave.xyz", {}, False),
])
def test_plain_http_to_another_host_is_refused_unless_asked(endpoint: str, environ: dict,
                                                            refused: bool) -> None:
    from zkml_dvc.errors import ConfigError

    if refused:
        with pytest.raises(ConfigError, match="plain HTTP on another host"):
            resolve_store_config("s3://b", {"endpoint": endpoint}, environ=environ)
    else:
        assert resolve_store_config("s3://b", {"endpoint": endpoint},
                                    environ=environ).endpoint == endpoint


def test_the_ca_bundle_follows_the_endpoint() -> None:
    remote = {"ssl_verify": "/store/tls/ca.pem", "endpointurl": "https://127.0.0.1:9000"}
    system = {"AWS_CA_BUNDLE": "/etc/ca.pem"}
    # the remote's endpoint comes with the remote's CA, whatever the system's bundle
    assert resolve_store_config("s3://b", environ=system, remote=remote).ca_bundle == \
        "/store/tls/ca.pem"
    # an endpoint from the environment or a flag comes with the environment's CA
    env_endpoint = {**system, "AWS_ENDPOINT_URL_S3": "https://o3.example.org"}
    assert resolve_store_config("s3://b", environ=env_endpoint, remote=remote).ca_bundle == \
        "/etc/ca.pem"
    assert resolve_store_config("s3://b", {"endpoint": "https://o3.example.org"}, environ=system,
                                remote=remote).ca_bundle == "/etc/ca.pem"
    assert resolve_store_config("s3://b", environ={}, remote=remote).ca_bundle == "/store/tls/ca.pem"
    assert resolve_store_config("s3://b", environ={}, remote={"ssl_verify": True}).ca_bundle is None


def test_store_clients_share_botocore_data_but_not_credentials(monkeypatch, tmp_path) -> None:
    """Every store client of a process parses botocore's service data once (one loader, whose
    search path does not grow per client) while each resolves its own credentials and profile."""
    from zkml_dvc import s3client
    from zkml_dvc.store import Store, StoreConfig

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    (tmp_path / "config").write_text("[profile other]\nregion = x\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    (tmp_path / "credentials").write_text("[other]\naws_access_key_id = FROMPROFILE\n"
                                          "aws_secret_access_key = s\n")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "FROMENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")

    def key_of(**kw: str) -> str:
        client = Store(StoreConfig(url=URL, endpoint="https://127.0.0.1:9", **kw)).client
        return client._request_signer._credentials.get_frozen_credentials().access_key

    import botocore.loaders

    assert key_of(access_key_id="GIVEN", secret_access_key="s") == "GIVEN"
    search_path = list(s3client._data_loader().search_paths)
    parsed: list[str] = []
    load_file = botocore.loaders.JSONFileLoader.load_file
    monkeypatch.setattr(botocore.loaders.JSONFileLoader, "load_file",
                        lambda self, path, *a: parsed.append(path) or load_file(self, path, *a))
    assert key_of() == "FROMENV"
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "CHANGED")
    assert key_of() == "CHANGED"
    assert key_of(profile="other") == "FROMPROFILE"
    assert parsed == []  # no service model or endpoint data parsed again
    assert s3client._data_loader().search_paths == search_path
