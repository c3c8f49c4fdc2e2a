"""`zkml-dvc verify RUN_ID --batch ID`: every proof of a batch (`prove-batch`) checked in a clean
room, from the store alone.

What each item's verdict rests on is the same as for a run (verifier.py): the run's manifest is
authenticated as ``verify`` authenticates it, and pins the settings, the vk and the SRS; each
proof and input is downloaded into a fresh temp dir and must hash to what the batch manifest
records; ezkl verifies each proof against the pinned vk in a clean-room child process; the input
is bound and the output decoded through the proof's instances, never from the batch manifest.

The batch manifest itself is the store's word unless the verifier pins its sha256
(``--batch-sha256``, printed by `prove-batch`): it decides which inputs are listed, so without a
pin a store could have dropped entries. Each listed proof is established on its own either way.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from . import bulk, cleanroom, ezkl_adapter, trust
from .batch import BatchManifest, check_batch_id, parse_batch
from .errors import InputError, IntegrityError, NotFoundError, UnauthenticatedError, ZkmlError
from .fsutil import atomic_write_json, sha256_bytes
from .instances import bind_input, decode_output
from .layout import batch_prefix, srs_key
from .manifest import Manifest
from .project import Project
from .records import Check
from .shapes import shape_for_manifest
from .store import Store
from .verifier import (
    ClaimReport,
    Options,
    Verdict,
    authenticated_manifest,
    check_version,
    srs_claim,
)

ItemStatus = Literal["valid", "invalid", "integrity-failure", "not-proved"]


class BatchItemReport(BaseModel):
    input_name: str
    input_sha256: str
    status: ItemStatus
    detail: str
    output: list[list[str]] = Field(default_factory=list,
                                    description="decoded from this proof's instances")


class BatchVerificationReport(BaseModel):
    run_id: str
    batch_id: str
    project: str
    model: str
    verdict: Verdict
    reason: str = ""
    claims: list[ClaimReport]
    items: list[BatchItemReport]
    checks: list[Check]
    warnings: list[str] = Field(default_factory=list)
    manifest_sha256: str
    batch_sha256: str
    srs_trusted: bool
    ezkl_version: str
    mode: Literal["clone", "store-only"]
    proofs_verified: int
    proofs_listed: int
    not_proved: int
    bytes_downloaded: int
    started: datetime
    duration_s: float


def verify_batch(
    run_id: str, batch_id: str, project: Project | None = None, store: Store | None = None,
    project_id: str | None = None, options: Options | None = None,
    batch_sha256: str | None = None, report_path: Path | None = None,
) -> BatchVerificationReport:
    """Verify every proof of batch ``batch_id`` of run ``run_id`` in a clean room (modes, options
    and errors as ``verifier.verify``). Returns the report whatever the verdict."""
    opts = options or Options()
    started, t0 = datetime.now(UTC), time.monotonic()
    check_batch_id(batch_id)
    if store is None:
        if project is None:
            raise InputError("nothing to verify from", "Run inside a clone or pass --store.")
        store = project.verifier_store(opts.warnings)
    store.check_access()
    before = store.stats.downloaded_bytes
    pid = project_id or (project.params.project if project else "?")

    def report(**kw: object) -> BatchVerificationReport:
        rep = BatchVerificationReport.model_validate({
            "run_id": run_id, "batch_id": batch_id, "warnings": opts.warnings,
            "ezkl_version": ezkl_adapter.version(), "started": started,
            "bytes_downloaded": store.stats.downloaded_bytes - before,
            "duration_s": round(time.monotonic() - t0, 3), **kw})
        if report_path is not None:
            atomic_write_json(report_path, rep.model_dump(mode="json"))
        return rep

    try:
        manifest, msha, mode, manifest_claim = authenticated_manifest(
            project, store, project_id, run_id, opts)
    except (UnauthenticatedError, IntegrityError) as exc:
        return report(**_refused(pid, "store-only" if project is None else "clone", exc))
    check_version(manifest)
    keys = shape_for_manifest(manifest).batch_keys(manifest)
    prefix = batch_prefix(manifest.project, run_id, batch_id)
    if store.head(f"{prefix}/batch.json") is None:
        raise NotFoundError(f"run {run_id} has no batch {batch_id} in the store {store.where}",
                            "Use the batch id `zkml-dvc prove-batch` printed.")
    common = {"project": manifest.project, "model": manifest.model, "mode": mode,
              "manifest_sha256": msha,
              "srs_trusted": trust.srs_is_public(manifest.srs.logrows, manifest.srs.sha256)}
    try:
        raw = store.get_bytes(f"{prefix}/batch.json", expected_sha256=batch_sha256)
        batch = parse_batch(raw, f"{prefix}/batch.json")
        _check_belongs(batch, manifest, msha, manifest.artifact(keys["vk"]).sha256)
    except (IntegrityError, InputError) as exc:
        verdict: Verdict = "integrity-failure" if isinstance(exc, IntegrityError) else "invalid"
        return report(**common, verdict=verdict, reason=exc.message, batch_sha256="",
                      claims=[manifest_claim, ClaimReport(name="batch", status="failed",
                                                          basis=exc.message)],
                      items=[], checks=[Check(name="batch manifest", ok=False, detail=exc.one_line())],
                      proofs_verified=0, proofs_listed=0, not_proved=0)
    bsha = sha256_bytes(raw)
    batch_claim = ClaimReport(name="batch", status="established", basis=(
        f"batch.json sha256 {bsha[:16]}... pinned by you (--batch-sha256): the list of inputs is "
        "the prover's")) if batch_sha256 else ClaimReport(name="batch", status="untrusted", basis=(
        f"batch.json (sha256 {bsha[:16]}...) is the store's word: which inputs it lists rests on it "
        "(pin it with --batch-sha256); each proof below is checked on its own"))
    items, checks = _verify_items(store, manifest, keys, prefix, batch)
    proved = [i for i in items if i.status != "not-proved"]
    valid = [i for i in proved if i.status == "valid"]
    claims = [manifest_claim, batch_claim, _proofs_claim(manifest, len(valid), len(proved)),
              srs_claim(manifest, bool(common["srs_trusted"]))]
    verdict, reason = "valid", ""
    bad = [i for i in proved if i.status != "valid"]
    if any(i.status == "integrity-failure" for i in bad):
        verdict = "integrity-failure"
    elif bad or not proved:
        verdict = "invalid"
    if bad:
        more = f" (+{len(bad) - 1} more)" if len(bad) > 1 else ""
        reason = f"input {bad[0].input_name} ({bad[0].input_sha256[:12]}): {bad[0].detail}{more}"
    elif not proved:
        reason = f"batch {batch_id} holds no proof"
    elif not common["srs_trusted"] and not opts.allow_untrusted_srs:
        verdict, reason = "untrusted-srs", claims[-1].basis
    return report(**common, verdict=verdict, reason=reason, batch_sha256=bsha, claims=claims,
                  items=items, checks=checks, proofs_verified=len(valid), proofs_listed=len(proved),
                  not_proved=len(items) - len(proved))


def _check_belongs(batch: BatchManifest, manifest: Manifest, msha: str, vk_sha: str) -> None:
    if (batch.run_id, batch.project, batch.model) != (manifest.run_id, manifest.project,
                                                      manifest.model):
        raise IntegrityError(f"batch.json names run {batch.run_id} of {batch.project}, not run "
                             f"{manifest.run_id} of {manifest.project}")
    if batch.vk_sha256 != vk_sha or batch.run_manifest_sha256 != msha:
        raise IntegrityError(f"batch {batch.batch_id} was made against another vk or manifest than "
                             f"run {manifest.run_id}'s")


def _verify_items(store: Store, manifest: Manifest, keys: dict[str, Path], prefix: str,
                  batch: BatchManifest) -> tuple[list[BatchItemReport], list[Check]]:
    checks: list[Check] = []
    items: list[BatchItemReport] = []
    with cleanroom.room() as room:
        files = room / "files"
        pinned = {}
        for name in ("settings", "vk"):
            entry = manifest.artifact(keys[name])
            pinned[name] = store.get_file(entry.object_key or "", files / name, entry.sha256,
                                          use_cache=False, max_size=entry.size)
            checks.append(Check(name=f"sha256 {name}", ok=True, detail=entry.sha256[:16]))
        srs = store.get_file(srs_key(manifest.srs.sha256), files / "kzg.srs", manifest.srs.sha256,
                             use_cache=False, max_size=manifest.srs.size)
        checks.append(Check(name="sha256 srs", ok=True, detail=manifest.srs.sha256[:16]))
        fetched: list[tuple[int, Path, Path]] = []
        proved = [e for e in batch.entries if e.status == "proved" and e.proof_sha256 is not None]
        wanted = {(e.input_sha256, kind): bulk.Fetch(
            f"{prefix}/{kind}s/{e.input_sha256}.json", files / f"{e.input_sha256}.{kind}.json",
            sha, size) for e in proved for kind, sha, size in (
                ("input", e.input_sha256, e.input_size), ("proof", e.proof_sha256 or "", e.proof_size))}
        order = list(wanted.values())
        in_place = {order[i].dest for i in bulk.get_small(store, order, use_cache=False)}

        def get(f: bulk.Fetch) -> Path:  # what get_small could not place: the store client's error
            return f.dest if f.dest in in_place else store.get_file(
                f.rel, f.dest, f.sha256, use_cache=False, max_size=f.size)

        for e in batch.entries:
            item = BatchItemReport(input_name=e.input_name, input_sha256=e.input_sha256,
                                   status="not-proved", detail=f"no proof: {e.error}")
            items.append(item)
            if e.status != "proved" or e.proof_sha256 is None:
                continue
            try:
                inp = get(wanted[(e.input_sha256, "input")])
                proof = get(wanted[(e.input_sha256, "proof")])
            except (IntegrityError, NotFoundError) as exc:
                item.status, item.detail = "integrity-failure", exc.message
                continue
            fetched.append((len(items) - 1, inp, proof))
        if fetched:
            res = cleanroom.run(room, "verify-many", {
                "proofs": [str(p) for _, _, p in fetched], "settings": str(pinned["settings"]),
                "vk": str(pinned["vk"]), "srs": str(srs)})
            for (index, inp, proof), error in zip(fetched, res["errors"], strict=True):
                _judge(items[index], error, proof, inp, pinned["settings"])
    return items, checks


def _judge(item: BatchItemReport, error: str | None, proof: Path, inp: Path, settings: Path) -> None:
    if error is not None:
        item.status, item.detail = "invalid", f"the proof does not verify ({error})"
        return
    try:
        bound = bind_input(proof, settings, inp)
        out = decode_output(proof, settings)
    except ZkmlError as exc:
        item.status, item.detail = "invalid", exc.message
        return
    if bound.status == "failed":
        item.status, item.detail = "invalid", f"the proof is not about this input ({bound.basis})"
    elif out.status == "failed":
        item.status, item.detail = "invalid", f"the output cannot be read ({out.basis})"
    else:
        item.status, item.output = "valid", out.value or []
        item.detail = ("proof verified; input bound by its instances" if bound.status ==
                       "established" else f"proof verified; {bound.basis}")


def _proofs_claim(manifest: Manifest, valid: int, listed: int) -> ClaimReport:
    vk = manifest.artifact(shape_for_manifest(manifest).batch_keys(manifest)["vk"]).sha256
    return ClaimReport(
        name="proofs", status="established" if listed and valid == listed else "failed",
        basis=f"ezkl {ezkl_adapter.version()} verify accepted {valid} of {listed} proofs for vk "
              f"sha256 {vk[:16]}... (pinned by the run's manifest) in a clean room; each proof's "
              "input and output read from its instances")


def _refused(project_id: str, mode: str, exc: ZkmlError) -> dict[str, object]:
    verdict = "unauthenticated" if isinstance(exc, UnauthenticatedError) else "integrity-failure"
    return {"project": project_id, "model": "?", "verdict": verdict, "reason": exc.message,
            "claims": [ClaimReport(name="manifest", status="failed", basis=exc.message)],
            "items": [], "checks": [Check(name="manifest", ok=False, detail=exc.one_line())],
            "manifest_sha256": "", "batch_sha256": "", "srs_trusted": False, "mode": mode,
            "proofs_verified": 0, "proofs_listed": 0, "not_proved": 0}
