"""The clean-room verifier: a verdict a skeptical verifier can rely on, and what it rests on.

Trusted: the verifier's machine and ezkl. Untrusted: the producer, the store and the clone
(docs/security.md). So the verifier establishes, and reports with its basis, each of:

- **manifest**: authenticated by a signature from a key the verifier lists (``--allowed-signers``;
  the run tag in a clone, ``manifest.json.sig`` in the store), a sha256 the verifier pins
  (``--manifest-sha256``), or the run tag of the clone (unsigned: as trustworthy as the clone).
  Store-only without any of these is UNAUTHENTICATED unless ``--trust-store``;
- **files**: every file of the verification kit and the SRS is downloaded into a fresh temp dir
  (no cache) and must hash to the manifest's sha256;
- **proof**: ezkl's ``verify`` accepts it for the pinned vk, in a child process whose HOME and
  EZKL_REPO_PATH are empty (``cleanroom.py``); for a chunked run every chunk and every link;
- **SRS**: public only if its sha256 is ezkl's pinned hash of the ceremony SRS for its logrows
  (``trust.py``); anything else is UNTRUSTED and refused unless ``--allow-untrusted-srs``;
- **input** and **output**: read from the proof's instances with the pinned settings
  (``instances.py``), never from ``pretty_public_inputs``;
- **evm** (with ``--evm``): the run's Solidity verifier is ezkl's rendering of the pinned vk, its
  calldata is exactly the pinned proof, and the compiled verifier accepts it in a local EVM
  (``evm.py``).

``verify`` returns its report whatever the verdict; the caller maps the verdict to an exit code.
Errors that stop verification before any verdict (no store, unknown run, another ezkl version) are
raised.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from . import bulk, cleanroom, ezkl_adapter, runs, trust
from .errors import (
    InputError,
    IntegrityError,
    NotFoundError,
    ProofInvalidError,
    UnauthenticatedError,
    VersionMismatchError,
    ZkmlError,
)
from .fsutil import atomic_write_json, confined, read_json, sha256_bytes, sha256_file
from .instances import Claim, bind_input, decode_output, pretty_disagrees
from .layout import EVM_KIT, run_index_prefix, srs_key
from .manifest import Manifest
from .project import Project
from .records import Check
from .run_index import fetch_manifest, fetch_manifest_bytes, fetch_manifest_signature
from .shapes import shape_for_manifest
from .store import Store

Verdict = Literal["valid", "invalid", "integrity-failure", "unauthenticated", "untrusted-srs"]


class ClaimReport(BaseModel):
    name: str
    status: Literal["established", "not-checked", "failed", "untrusted"]
    basis: str
    value: list[list[str]] | None = None


class VerificationReport(BaseModel):
    run_id: str
    project: str
    model: str
    verdict: Verdict
    reason: str = Field(default="", description="why the verdict is not plain valid (one line)")
    claims: list[ClaimReport] = Field(description="what was established, and by what")
    checks: list[Check]
    warnings: list[str] = Field(default_factory=list)
    hashes: dict[str, str]
    output: list[list[str]] = Field(default_factory=list,
                                    description="the output the proof commits to, decoded from its "
                                                "instances (empty if not public)")
    srs_trusted: bool
    ezkl_version: str
    manifest_sha256: str
    mode: Literal["clone", "store-only"]
    bytes_downloaded: int
    files_downloaded: int
    run_bytes_total: int
    started: datetime
    duration_s: float


@dataclass
class Options:
    """What the verifier is willing to accept (all off: the strict default)."""

    manifest_sha256: str | None = None
    allowed_signers: Path | None = None
    trust_store: bool = False
    allow_untrusted_srs: bool = False
    evm: bool = False  # also run the run's Solidity verifier on its calldata in a local EVM
    warnings: list[str] = field(default_factory=list)


def check_version(manifest: Manifest, settings: Path | None = None) -> None:
    """Refuse a run (or its settings) made with another ezkl than the installed one."""
    installed = ezkl_adapter.version()
    if manifest.tools.ezkl != installed:
        raise VersionMismatchError(f"run {manifest.run_id}", manifest.tools.ezkl, installed)
    if settings is not None:
        recorded = str(read_json(settings, "settings").get("version", installed))
        if recorded != installed:
            raise VersionMismatchError(f"settings of run {manifest.run_id}", recorded, installed)


def authenticated_manifest(
    project: Project | None, store: Store, project_id: str | None, run_id: str, opts: Options,
) -> tuple[Manifest, str, Literal["clone", "store-only"], ClaimReport]:
    """The manifest, its sha256, the mode, and the claim saying how it was authenticated.
    Raises UnauthenticatedError when nothing the verifier holds authenticates it, IntegrityError
    when it fails its pinned hash."""
    if project is not None:
        ref, manifest = runs.load_manifest(project.root, run_id, project_id)
        git_sha = sha256_bytes(runs.read_at(project.root, ref.commit, ref.manifest_path))
        # The store's copy must be byte-identical to the committed one: an edit is tampering.
        fetch_manifest(store, manifest.project, run_id, expected_sha256=git_sha)
        if opts.allowed_signers is not None:
            signer = trust.verify_tag_signature(project.root, ref.tag, opts.allowed_signers)
            basis = f"run tag {ref.tag} signed by {signer} (listed in {opts.allowed_signers.name})"
            return manifest, git_sha, "clone", ClaimReport(name="manifest", status="established",
                                                           basis=basis)
        basis = (f"run tag {ref.tag} pins its sha256; no signature was checked (pass "
                 "--allowed-signers), so this is only as trustworthy as the clone")
        return manifest, git_sha, "clone", ClaimReport(name="manifest", status="untrusted", basis=basis)
    if not project_id:
        raise InputError("--project is required with --store", "Pass --project PROJECT_ID.")
    if opts.manifest_sha256:
        manifest, sha = fetch_manifest(store, project_id, run_id, expected_sha256=opts.manifest_sha256)
        return manifest, sha, "store-only", ClaimReport(
            name="manifest", status="established", basis=f"sha256 {sha[:16]}... pinned by you "
                                                         "(--manifest-sha256)")
    manifest, sha, raw = fetch_manifest_bytes(store, project_id, run_id)
    if opts.allowed_signers is not None:
        try:
            sig = fetch_manifest_signature(store, project_id, run_id)
        except NotFoundError:
            raise UnauthenticatedError(f"run {run_id} has no signature in the store",
                                       "Ask its producer to sign it (`zkml-dvc run --sign`), or "
                                       "pin the manifest with --manifest-sha256.") from None
        signer = trust.verify_signature(raw, sig, opts.allowed_signers, f"the manifest of run {run_id}")
        return manifest, sha, "store-only", ClaimReport(
            name="manifest", status="established",
            basis=f"signature by {signer} (listed in {opts.allowed_signers.name})")
    if opts.trust_store:
        return manifest, sha, "store-only", ClaimReport(
            name="manifest", status="untrusted",
            basis="nothing: the store's copy was taken on trust (--trust-store); anyone who can "
                  "write the bucket could have replaced every file")
    raise UnauthenticatedError(
        f"nothing authenticates the manifest of run {run_id} in the store",
        "Pin it (--manifest-sha256 SHA from the run tag), check its signature "
        "(--allowed-signers FILE), or accept the store's word with --trust-store.")


def verify(
    run_id: str,
    project: Project | None = None,
    store: Store | None = None,
    project_id: str | None = None,
    options: Options | None = None,
    report_path: Path | None = None,
) -> VerificationReport:
    """Verify a run's proof from store artifacts alone, in a clean room.

    With ``project`` (a clone holding the run's tag) the manifest comes from git; without it, from
    ``store`` (store-only mode, ``project_id`` names the project). Returns the report (also
    written to ``report_path``) whatever the verdict. Raises StoreError/ConfigError when the
    store cannot be used, NotFoundError for an unknown run, VersionMismatchError.
    """
    opts = options or Options()
    started = datetime.now(UTC)
    t0 = time.monotonic()
    if store is None:
        if project is None:
            raise InputError("nothing to verify from", "Run inside a clone or pass --store.")
        store = project.verifier_store(opts.warnings)
    store.check_access()
    try:
        manifest, msha, mode, manifest_claim = authenticated_manifest(
            project, store, project_id, run_id, opts)
    except (UnauthenticatedError, IntegrityError) as exc:  # no manifest to go on
        verdict: Verdict = ("unauthenticated" if isinstance(exc, UnauthenticatedError)
                            else "integrity-failure")
        return _write(_refused(run_id, project_id or (project.params.project if project else "?"),
                               "store-only" if project is None else "clone", verdict, exc, opts,
                               started, t0), report_path)
    check_version(manifest)
    kit = shape_for_manifest(manifest).kit_paths(manifest)
    if opts.evm and f"{EVM_KIT}/Verifier.sol" not in kit:
        raise InputError(f"run {run_id} has no EVM verifier (made with `evm: false`, or chunked)",
                         f"Set models.{manifest.model}.evm: true in params.yaml and run again "
                         "(docs/evm.md), or verify without --evm.")
    if not opts.evm:
        kit = {k: v for k, v in kit.items() if not k.startswith(f"{EVM_KIT}/")}
    before = (store.stats.downloaded_bytes, store.stats.downloaded_files)  # the run's files only
    shape = shape_for_manifest(manifest)
    checks: list[Check] = [Check(name="manifest", ok=True, detail=f"sha256 {msha[:16]}... ({mode})")]
    claims: list[ClaimReport] = [manifest_claim]
    hashes: dict[str, str] = {}
    verdict = "valid"
    reason = ""
    output: list[list[str]] = []
    srs_public = trust.srs_is_public(manifest.srs.logrows, manifest.srs.sha256)
    with cleanroom.room() as room:
        files = room / "files"
        try:
            prefix = run_index_prefix(manifest.project, run_id)
            local: dict[str, Path] = {}
            fetches = [bulk.Fetch(f"{prefix}/{name}", confined(files, name),
                                  manifest.artifact(path).sha256, manifest.artifact(path).size)
                       for name, path in kit.items()]
            fetches.append(bulk.Fetch(srs_key(manifest.srs.sha256), files / "kzg.srs",
                                      manifest.srs.sha256, manifest.srs.size))
            done = bulk.get_small(store, fetches, use_cache=False)  # the rest, in order, below
            for i, (name, f) in enumerate(zip(kit, fetches, strict=False)):
                local[name] = f.dest if i in done else store.get_file(
                    f.rel, f.dest, f.sha256, use_cache=False, max_size=f.size)
                hashes[name] = f.sha256
                checks.append(Check(name=f"sha256 {name}", ok=True, detail=f.sha256[:16]))
            srs_file = fetches[-1].dest if len(fetches) - 1 in done else store.get_file(
                fetches[-1].rel, fetches[-1].dest, manifest.srs.sha256, use_cache=False,
                max_size=manifest.srs.size)
            hashes["srs"] = manifest.srs.sha256
            checks.append(Check(name="sha256 srs", ok=True, detail=manifest.srs.sha256[:16]))

            def room_verify(proof: Path, settings: Path, vk: Path) -> str | None:
                check_version(manifest, settings)
                result = cleanroom.run(room, "verify", {
                    "proof": str(proof), "settings": str(settings), "vk": str(vk),
                    "srs": str(srs_file)})
                return None if result["ok"] else str(result["error"])

            result = shape.verify_in_room(manifest, local, room_verify)
            checks.append(Check(name="ezkl version", ok=True, detail=ezkl_adapter.version()))
            checks.extend(result.checks)
            failures = list(result.failures)
            proof_ok = not failures
            vks = ", ".join(hashes[k][:16] + "..." for k in sorted(hashes) if k.endswith("vk.key"))
            claims.append(ClaimReport(
                name="proof", status="established" if proof_ok else "failed",
                basis=(f"ezkl {ezkl_adapter.version()} verify accepted "
                       f"{'every chunk proof and every link' if len(result.proofs) > 1 else 'the proof'}"
                       f" for vk sha256 {vks} in a clean room") if proof_ok else failures[0]))
            claims.append(srs_claim(manifest, srs_public))
            input_claim = bind_input(result.proofs[0], result.settings[0], local["input.json"])
            claims.append(claim_report(input_claim))
            if input_claim.status == "failed":
                failures.append(f"the proof is not about the claimed input ({input_claim.basis})")
            checks.append(Check(name="claimed input", ok=input_claim.status != "failed",
                                detail=input_claim.basis))
            output_claim = decode_output(result.proofs[-1], result.settings[-1])
            claims.append(claim_report(output_claim))
            if output_claim.status == "failed":
                failures.append(f"the output cannot be read from the proof ({output_claim.basis})")
            elif output_claim.value is not None:
                output = output_claim.value
                if pretty_disagrees(result.proofs[-1], output):
                    checks.append(Check(name="pretty_public_inputs", ok=False, detail=(
                        "the proof's pretty output (which ezkl does not check) disagrees with its "
                        "instances: ignored, the output shown is the one decoded from the instances")))
            if opts.evm and proof_ok:
                evm_claim, evm_checks = _evm_claim(room, manifest, local, srs_file)
                claims.append(evm_claim)
                checks.extend(evm_checks)
                if evm_claim.status == "failed":
                    failures.append(f"the EVM verifier: {evm_claim.basis}")
            if failures:
                more = f" (+{len(failures) - 1} more)" if len(failures) > 1 else ""
                verdict, reason = "invalid", f"{failures[0]}{more}"
            elif not srs_public and not opts.allow_untrusted_srs:
                verdict, reason = "untrusted-srs", srs_claim(manifest, False).basis
        except IntegrityError as exc:
            checks.append(Check(name="integrity", ok=False, detail=exc.one_line()))
            verdict, reason = "integrity-failure", exc.message
        except InputError as exc:  # a pinned plan, settings or proof that makes no sense
            checks.append(Check(name="well-formed", ok=False, detail=exc.one_line()))
            verdict, reason = "invalid", exc.message
    report = VerificationReport(
        run_id=run_id, project=manifest.project, model=manifest.model, verdict=verdict,
        reason=reason, claims=claims, checks=checks, warnings=opts.warnings, hashes=hashes,
        output=output, srs_trusted=srs_public, ezkl_version=ezkl_adapter.version(),
        manifest_sha256=msha, mode=mode,
        bytes_downloaded=store.stats.downloaded_bytes - before[0],
        files_downloaded=store.stats.downloaded_files - before[1],
        run_bytes_total=sum(a.size for a in manifest.artifacts) + manifest.srs.size,
        started=started, duration_s=round(time.monotonic() - t0, 3),
    )
    return _write(report, report_path)


def _evm_claim(room: Path, manifest: Manifest, local: dict[str, Path],
               srs: Path) -> tuple[ClaimReport, list[Check]]:
    """The run's Solidity verifier and calldata, checked (evm.py): the verifier is ezkl's rendering
    of the pinned vk, the calldata is exactly the pinned proof, and the compiled verifier returns
    true for it in a fresh local EVM."""
    from . import evm

    sol, calldata = local[f"{EVM_KIT}/Verifier.sol"], local[f"{EVM_KIT}/calldata.bin"]
    checks: list[Check] = []

    def failed(detail: str) -> tuple[ClaimReport, list[Check]]:
        checks.append(Check(name="EVM verifier", ok=False, detail=detail))
        return ClaimReport(name="evm", status="failed", basis=detail), checks

    rendered = room / "rendered-Verifier.sol"
    result = cleanroom.run(room, "evm-render", {
        "vk": str(local["vk.key"]), "settings": str(local["settings.json"]), "srs": str(srs),
        "out": str(rendered)})
    if not result["ok"]:
        return failed(f"ezkl could not render a verifier for the vk ({result['error']})")
    if result["sha256"] != sha256_file(sol):
        return failed("the run's Verifier.sol is not ezkl's verifier for its vk (re-rendered "
                      "here, the bytes differ)")
    checks.append(Check(name="EVM verifier source", ok=True,
                        detail="byte-identical to ezkl's rendering of the vk"))
    compiled = evm.compile_verifier(sol)
    recorded = manifest.tools.solc
    bytecode = local.get(f"{EVM_KIT}/Verifier.bin")
    if recorded == compiled.solc and bytecode is not None:
        if bytecode.read_text().strip() != compiled.bytecode.hex():
            return failed(f"the run's Verifier.bin is not what {compiled.solc} compiles "
                          "Verifier.sol to")
        checks.append(Check(name="EVM bytecode", ok=True,
                            detail=f"Verifier.bin is what {compiled.solc} compiles it to"))
    else:
        checks.append(Check(name="EVM bytecode", ok=True, detail=(
            f"compiled here with {compiled.solc}; the run used {recorded}: its Verifier.bin "
            "was not compared")))
    try:
        evm.check_calldata(calldata, local["proof.json"], compiled.selector)
    except (InputError, ProofInvalidError) as exc:
        return failed(exc.message)
    checks.append(Check(name="EVM calldata", ok=True,
                        detail="carries exactly the proof's bytes and instances"))
    run = evm.execute(compiled.bytecode, calldata.read_bytes())
    if not run.accepted:
        return failed(f"the verifier did not accept the calldata: {run.detail}")
    checks.append(Check(name="EVM verify", ok=True,
                        detail=f"{run.detail}, {run.gas_used:,} gas ({evm.pyrevm_version()})"))
    return ClaimReport(name="evm", status="established", basis=(
        f"ezkl's Solidity verifier for the vk (re-rendered here, byte-identical to the run's), "
        f"compiled with {compiled.solc}, returned true in a local EVM ({evm.pyrevm_version()}, "
        f"{run.gas_used:,} gas) for the run's calldata, which carries exactly the proof's bytes "
        "and instances")), checks


def claim_report(claim: Claim) -> ClaimReport:
    return ClaimReport(name=claim.name, status=claim.status, basis=claim.basis, value=claim.value)


def srs_claim(manifest: Manifest, public: bool) -> ClaimReport:
    k, sha = manifest.srs.logrows, manifest.srs.sha256
    if public:
        return ClaimReport(name="srs", status="established", basis=(
            f"sha256 {sha[:16]}... is ezkl's pinned hash of the public ceremony SRS for logrows {k}"))
    return ClaimReport(name="srs", status="untrusted", basis=(
        f"UNTRUSTED SRS: sha256 {sha[:16]}... is not ezkl's public ceremony SRS for logrows {k} "
        f"(recorded source: {manifest.srs.source}); whoever made it could forge proofs"))


def _refused(run_id: str, project_id: str, mode: Literal["clone", "store-only"], verdict: Verdict,
             exc: ZkmlError, opts: Options, started: datetime, t0: float) -> VerificationReport:
    """The report when no manifest can be trusted: nothing else was downloaded or checked."""
    return VerificationReport(
        run_id=run_id, project=project_id, model="?", verdict=verdict,
        reason=exc.message, claims=[ClaimReport(name="manifest", status="failed", basis=exc.message)],
        checks=[Check(name="manifest", ok=False, detail=exc.one_line())], warnings=opts.warnings,
        hashes={}, srs_trusted=False, ezkl_version=ezkl_adapter.version(), manifest_sha256="",
        mode=mode, bytes_downloaded=0, files_downloaded=0, run_bytes_total=0, started=started,
        duration_s=round(time.monotonic() - t0, 3))


def _write(report: VerificationReport, path: Path | None) -> VerificationReport:
    if path is not None:
        atomic_write_json(path, report.model_dump(mode="json"))
    return report
