"""Against a real Akave O3 bucket (opt-in): cold start, clean-room verification, resume.

Selected only when ZKML_DVC_LIVE_ENDPOINT, ZKML_DVC_LIVE_BUCKET, ZKML_DVC_LIVE_ACCESS_KEY_ID and
ZKML_DVC_LIVE_SECRET_ACCESS_KEY are set (tests/conftest.py deselects them otherwise and says so in
the summary). Everything goes under a fresh prefix `zkml-dvc-live/<random>/` of the bucket, and
every version of every object under it is deleted at the end. See docs/o3.md.
"""

from __future__ import annotations

import json
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import MODELS, VERIFY, cli, clone

pytestmark = [pytest.mark.live, pytest.mark.slow]


@dataclass
class Live:
    endpoint: str
    bucket: str
    prefix: str
    access_key_id: str
    secret_access_key: str

    @property
    def root(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def env(self, home: Path) -> dict[str, str]:
        """Another machine: its own HOME and cache, the store reached through env vars only,
        the system's CAs (not the local store's)."""
        import certifi

        home.mkdir(parents=True, exist_ok=True)
        return {"HOME": str(home), "ZKML_DVC_CACHE_DIR": str(home / "cache"),
                "AWS_ACCESS_KEY_ID": self.access_key_id,
                "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
                "AWS_ENDPOINT_URL_S3": self.endpoint, "AWS_DEFAULT_REGION": "akave-network",
                "AWS_CA_BUNDLE": certifi.where()}


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    from tests.conftest import LIVE_SETTINGS

    cfg = Live(endpoint=LIVE_SETTINGS["ZKML_DVC_LIVE_ENDPOINT"],
               bucket=LIVE_SETTINGS["ZKML_DVC_LIVE_BUCKET"],
               prefix=f"zkml-dvc-live/{secrets.token_hex(6)}",
               access_key_id=LIVE_SETTINGS["ZKML_DVC_LIVE_ACCESS_KEY_ID"],
               secret_access_key=LIVE_SETTINGS["ZKML_DVC_LIVE_SECRET_ACCESS_KEY"])
    try:
        yield cfg
    finally:
        _delete_prefix(cfg)


def _delete_prefix(cfg: Live) -> None:
    """Every version and delete marker under the test's prefix (O3 keeps versions)."""
    import boto3
    import certifi
    from botocore.config import Config

    s3 = boto3.client("s3", endpoint_url=cfg.endpoint, region_name="akave-network",
                      aws_access_key_id=cfg.access_key_id,
                      aws_secret_access_key=cfg.secret_access_key, verify=certifi.where(),
                      config=Config(request_checksum_calculation="when_required",
                                    response_checksum_validation="when_required",
                                    s3={"addressing_style": "path"}))
    pages = s3.get_paginator("list_object_versions").paginate(Bucket=cfg.bucket,
                                                              Prefix=cfg.prefix + "/")
    for page in pages:
        doomed = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                  for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
        for i in range(0, len(doomed), 1000):
            s3.delete_objects(Bucket=cfg.bucket, Delete={"Objects": doomed[i:i + 1000]})


def test_cold_start_clean_room_and_resume_on_o3(live: Live, tmp_path: Path) -> None:
    producer = live.env(tmp_path / "producer-home")
    root = tmp_path / "proj"
    assert cli("init", str(root), "--model", str(MODELS / "mlp" / "network.onnx"),
               "--input", str(MODELS / "mlp" / "input.json"), "--project", "live",
               "--name", "mlp", env=producer).returncode == 0
    res = cli("remote", "set", live.root, "--endpoint", live.endpoint, "--access-key-id",
              live.access_key_id, cwd=root, env=producer, stdin=live.secret_access_key + "\n")
    assert res.returncode == 0, res.stderr
    subprocess.run(["git", "commit", "-qam", "remote o3"], cwd=root, check=True)
    # cold start: every stage, then manifest, tag and push to O3
    res = cli("run", "--run-id", "live1", cwd=root, env=producer)
    assert res.returncode == 0, res.stdout + res.stderr
    # clean room: an empty directory, another HOME, only the store
    empty = tmp_path / "empty"
    empty.mkdir()
    res = cli(*VERIFY, "live1", "--store", live.root, "--project", "live", "--trust-store",
              cwd=empty, env=live.env(tmp_path / "verifier-home"))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "VALID" in res.stdout
    # resume on another machine: a new input proved with the run's keys, fetched from O3
    other = clone(root, tmp_path / "other")
    subprocess.run(["git", "checkout", "-q", "runs/live/live1"], cwd=other, check=True)
    new_input = tmp_path / "new.json"
    new_input.write_text(json.dumps({"input_data": [[0.5, -0.25, 0.125, 0.9]]}))
    env = live.env(tmp_path / "other-home")
    res = cli("resume", "live1", "--input", str(new_input), "--run-id", "live2", cwd=other,
              env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    manifest = json.loads((other / "artifacts/mlp/reports/manifest.json").read_text())
    ran = {s["stage"] for s in manifest["stages"] if s["ran"]}
    assert ran <= {"mock", "witness", "prove", "verify", "evm", "metrics"}, ran
    res = cli(*VERIFY, "live2", cwd=other, env=env)
    assert res.returncode == 0, res.stdout + res.stderr
