"""`zkml-dvc prove-batch`: many inputs proved with one run's keys, in parallel on Ray.

No keygen: the run's settings, compiled circuit, pk and vk (pinned by its manifest) prove every
input. Each Ray worker is an actor that obtains those files once (the driver's copy if it has the
recorded sha256, else the store: ``raywork.materialize``) and proves input after input with them.

In the store, under the run (``layout.batch_prefix``)::

    batches/<batch_id>/inputs/<input sha256>.json   each input, as given
    batches/<batch_id>/proofs/<input sha256>.json   its proof
    batches/<batch_id>/batch.json                   the batch manifest (BatchManifest)

The batch manifest is rewritten after every proof, so an interrupted batch records what it
finished; an entry is "proved" only once its proof is stored. Re-running the same batch proves
only the inputs without a proof (new ones and failed ones); proved entries are kept, failed ones
only while their input is given again. A failed input is recorded with its error and the rest go
on. ``batch_verify.py`` checks a batch in a clean room.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from . import runs
from . import srs as srs_mod
from .errors import InputError, IntegrityError, MissingFileError, PipelineError, ZkmlError
from .fsutil import atomic_write_bytes, atomic_write_text, sha256_bytes
from .instances import decode_output
from .layout import ModelLayout, batch_prefix, srs_key
from .manifest import Manifest
from .onnx_model import check_input
from .project import Project
from .raywork import FileRef, ProgressFn, StoreRef, materialize, private_ezkl_dir, session
from .run_index import fetch_manifest
from .shapes import shape_for_manifest
from .store import Store
from .verifier import check_version

BATCH_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_HEX64 = r"^[0-9a-f]{64}$"


class BatchEntry(BaseModel):
    input_name: str = Field(description="the input file's name as the prover gave it (a label)")
    input_sha256: str = Field(pattern=_HEX64)
    input_size: int = Field(ge=0)
    status: Literal["proved", "failed"]
    proof_sha256: str | None = Field(default=None, pattern=_HEX64)
    proof_size: int | None = None
    output: list[list[str]] | None = Field(
        default=None, description="decoded from the proof's instances by the prover (the verifier "
                                  "decodes it again and shows its own)")
    seconds: float | None = Field(default=None, description="witness + prove, on the worker")
    error: str | None = None


class BatchManifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = 1
    batch_id: str
    project: str
    run_id: str
    model: str
    run_manifest_sha256: str = Field(pattern=_HEX64)
    vk_sha256: str = Field(pattern=_HEX64)
    ezkl: str
    started: datetime
    updated: datetime
    workers: str = Field(description="where the proofs were made (Ray)")
    entries: list[BatchEntry]

    def entry(self, input_sha256: str) -> BatchEntry | None:
        return next((e for e in self.entries if e.input_sha256 == input_sha256), None)

    def to_bytes(self) -> bytes:
        return (self.model_dump_json(indent=2) + "\n").encode()


def parse_batch(data: bytes, source: str) -> BatchManifest:
    try:
        return BatchManifest.model_validate_json(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise InputError(f"batch manifest {source} is invalid at `{loc}`: {err['msg']}",
                         "It is corrupt or was edited; do not trust it.") from None


def check_batch_id(batch_id: str) -> str:
    if not BATCH_ID_RE.match(batch_id) or ".." in batch_id:
        raise InputError(f"batch id {batch_id!r} is not allowed",
                         "Use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit.")
    return batch_id


@dataclass
class InputFile:
    name: str
    data: bytes
    sha256: str
    error: str | None  # why it cannot be proved (read before any proving)


@dataclass
class ItemResult:
    input_sha256: str
    proof: bytes | None
    seconds: float
    error: str | None


class Prover:
    """A Ray actor: the run's files obtained once (checked by sha256), then one proof per call."""

    def __init__(self, refs: dict[str, FileRef], store: StoreRef | None, threads: int) -> None:
        private_ezkl_dir()
        # ezkl proves on rayon's pool (read once, at its first use in this process): one thread
        # per CPU the actor holds, so actors sharing a machine do not oversubscribe it (two
        # one-thread provers on 2 cores did 8 proofs of the example MLP in 28.2 s; one
        # two-thread prover after the other, 30.8 s)
        os.environ["RAYON_NUM_THREADS"] = str(threads)
        self.scratch = Path(tempfile.mkdtemp(prefix="zkml-batch-worker-"))
        self.paths: dict[str, Path] = {}
        self.fetched: dict[str, str] = {}
        for name, ref in refs.items():
            self.paths[name], self.fetched[name] = materialize(ref, store, self.scratch)

    def sources(self) -> dict[str, str]:
        return self.fetched

    def prove(self, input_sha256: str, data: bytes) -> ItemResult:
        from . import ezkl_adapter

        work = self.scratch / input_sha256
        work.mkdir()
        t0 = time.monotonic()
        p = self.paths
        try:
            (work / "input.json").write_bytes(data)
            ezkl_adapter.gen_witness(work / "input.json", p["compiled"], work / "witness.json",
                                     p["vk"], p["srs"])
            ezkl_adapter.prove(work / "witness.json", p["compiled"], p["pk"], work / "proof.json",
                               p["srs"])
            return ItemResult(input_sha256, (work / "proof.json").read_bytes(),
                              round(time.monotonic() - t0, 3), None)
        except ZkmlError as exc:
            return ItemResult(input_sha256, None, round(time.monotonic() - t0, 3), exc.message)
        finally:
            shutil.rmtree(work, ignore_errors=True)


@dataclass
class BatchResult:
    batch: BatchManifest
    batch_sha256: str
    local_dir: Path
    proved_now: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)  # proved by an earlier call: not redone
    failed: list[str] = field(default_factory=list)
    worker_sources: list[dict[str, str]] = field(default_factory=list)


def read_inputs(manifest: Manifest, paths: list[Path]) -> list[InputFile]:
    """Each input file once (by content); one that cannot be proved carries its error."""
    seen: dict[str, InputFile] = {}
    for path in paths:
        if not path.is_file():
            raise MissingFileError(path, "input file", "Pass ezkl input JSON files "
                                   '({"input_data": [[...]]}).')
        data = path.read_bytes()
        sha = sha256_bytes(data)
        if sha in seen:
            continue
        error = None
        try:
            check_input(manifest.model_facts, path)
        except InputError as exc:
            error = exc.message
        seen[sha] = InputFile(path.name, data, sha, error)
    return list(seen.values())


def default_batch_id(inputs: list[InputFile]) -> str:
    """The same inputs name the same batch, so re-running a command resumes it."""
    return "b-" + sha256_bytes("\n".join(sorted(i.sha256 for i in inputs)).encode())[:12]


def _load_existing(store: Store, prefix: str, manifest: Manifest, vk_sha: str) -> BatchManifest | None:
    if store.head(f"{prefix}/batch.json") is None:
        return None
    batch = parse_batch(store.get_bytes(f"{prefix}/batch.json"), f"{prefix}/batch.json")
    if (batch.run_id, batch.project, batch.vk_sha256) != (manifest.run_id, manifest.project, vk_sha):
        raise IntegrityError(f"{prefix}/batch.json in the store belongs to another run or vk",
                             "Use another --batch id.")
    return batch


def _file_ref(project: Project, manifest: Manifest, name: str, path: Path) -> FileRef:
    entry = manifest.artifact(path)
    if entry.object_key is None:
        raise InputError(f"{path} of run {manifest.run_id} is not in the store",
                         f"Push the run first: zkml-dvc push {manifest.run_id}")
    local = project.root / path
    return FileRef(name=name, sha256=entry.sha256, size=entry.size,
                   local_path=str(local.resolve()) if local.is_file() else None,
                   store_key=entry.object_key)


def prove_batch(project: Project, run_id: str, input_paths: list[Path],
                batch_id: str | None = None, ray_address: str | None = None,
                progress: ProgressFn | None = None) -> BatchResult:
    """Prove every input in ``input_paths`` with run ``run_id``'s keys on Ray; store each proof
    and the batch manifest under the run. Inputs the batch already has a proof for are skipped.
    Raises InputError for a chunked run, a missing file or a bad batch id; a failed input is not
    raised but recorded (``BatchResult.failed``)."""
    say = progress or (lambda _msg: None)
    ref, manifest = runs.load_manifest(project.root, run_id)
    check_version(manifest)
    keys = shape_for_manifest(manifest).batch_keys(manifest)
    inputs = read_inputs(manifest, input_paths)
    if not inputs:
        raise InputError("no input files given", "Pass one or more ezkl input JSON files.")
    bid = check_batch_id(batch_id) if batch_id else default_batch_id(inputs)
    store = project.require_store()
    store.check_access()
    msha = sha256_bytes(runs.read_at(project.root, ref.commit, ref.manifest_path))
    fetch_manifest(store, manifest.project, run_id, expected_sha256=msha)  # the run is pushed
    vk_sha = manifest.artifact(keys["vk"]).sha256
    prefix = batch_prefix(manifest.project, run_id, bid)
    lay = ModelLayout(manifest.model)
    local_dir = project.root / lay.batch_dir(run_id, bid)
    (local_dir / "proofs").mkdir(parents=True, exist_ok=True)
    atomic_write_text(local_dir / ".gitignore", "*\n")
    refs = {name: _file_ref(project, manifest, name, path) for name, path in keys.items()}
    settings_ref = refs.pop("settings")  # read here (to decode outputs), not by the workers
    settings = store.get_file(settings_ref.store_key or "", local_dir / "settings.json",
                              settings_ref.sha256)
    now = datetime.now(UTC)
    batch = _load_existing(store, prefix, manifest, vk_sha) or BatchManifest(
        batch_id=bid, project=manifest.project, run_id=run_id, model=manifest.model,
        run_manifest_sha256=msha, vk_sha256=vk_sha, ezkl=manifest.tools.ezkl, started=now,
        updated=now, workers="", entries=[])
    # a failed entry whose input is not given again is superseded (the file was fixed or dropped)
    given = {i.sha256 for i in inputs}
    batch.entries = [e for e in batch.entries if e.status == "proved" or e.input_sha256 in given]
    result = BatchResult(batch=batch, batch_sha256="", local_dir=local_dir)
    todo: list[InputFile] = []
    for item in inputs:
        old = batch.entry(item.sha256)
        if old is not None and old.status == "proved":
            result.already.append(item.sha256)
            continue
        if item.error is not None:
            _record(batch, BatchEntry(input_name=item.name, input_sha256=item.sha256,
                                      input_size=len(item.data), status="failed", error=item.error))
            result.failed.append(item.sha256)
            continue
        todo.append(item)
    for item in todo:
        store.put_bytes(item.data, f"{prefix}/inputs/{item.sha256}.json")

    def save() -> None:
        batch.updated = datetime.now(UTC)
        data = batch.to_bytes()
        store.put_bytes(data, f"{prefix}/batch.json", content_type="application/json")
        atomic_write_bytes(local_dir / "batch.json", data)
        result.batch_sha256 = sha256_bytes(data)

    save()
    if todo:
        srs_path = srs_mod.path_for(manifest.srs, store)
        refs["srs"] = FileRef(name="srs", sha256=manifest.srs.sha256, size=manifest.srs.size,
                              local_path=str(srs_path), store_key=srs_key(manifest.srs.sha256))
        cfg = store.cfg
        store_ref = StoreRef(url=cfg.url, endpoint=cfg.endpoint, region=cfg.region)
        by_sha = {i.sha256: i for i in todo}

        def finished(res: ItemResult) -> None:
            item = by_sha[res.input_sha256]
            entry = _entry_for(item, res, settings, local_dir, store, prefix)
            _record(batch, entry)
            (result.proved_now if entry.status == "proved" else result.failed).append(item.sha256)
            done = len(result.proved_now) + len(result.failed)
            say(f"{item.name}: {entry.status} ({done}/{len(inputs) - len(result.already)})"
                + (f" in {res.seconds:.1f}s" if res.proof else f": {entry.error}"))
            save()

        with session(ray_address, os.cpu_count() or 1, say):
            batch.workers = _prove_on_ray(todo, refs, store_ref, ray_address, say, finished,
                                          result.worker_sources)
        save()
    return result


def _entry_for(item: InputFile, res: ItemResult, settings: Path, local_dir: Path, store: Store,
               prefix: str) -> BatchEntry:
    base: dict[str, Any] = {"input_name": item.name, "input_sha256": item.sha256,
                            "input_size": len(item.data), "seconds": res.seconds}
    if res.proof is None:
        return BatchEntry(**base, status="failed", error=res.error)
    local = local_dir / "proofs" / f"{item.sha256}.json"
    atomic_write_bytes(local, res.proof)
    try:
        claim = decode_output(local, settings)
    except InputError as exc:
        return BatchEntry(**base, status="failed", error=f"the proof is unreadable: {exc.message}")
    store.put_bytes(res.proof, f"{prefix}/proofs/{item.sha256}.json",
                    content_type="application/json")
    return BatchEntry(**base, status="proved", proof_sha256=sha256_bytes(res.proof),
                      proof_size=len(res.proof), output=claim.value)


def _record(batch: BatchManifest, entry: BatchEntry) -> None:
    batch.entries = [e for e in batch.entries if e.input_sha256 != entry.input_sha256] + [entry]


def _prove_on_ray(todo: list[InputFile], refs: dict[str, FileRef], store_ref: StoreRef,
                  ray_address: str | None, say: ProgressFn,
                  finished: Callable[[ItemResult], None], sources: list[dict[str, str]]) -> str:
    """One actor per CPU (at most one per input, each with a share of the CPUs when there are
    fewer inputs), each kept busy with one input at a time;
    ``finished`` gets each result as it comes. An actor that dies fails its input and the rest
    go on. Returns where the proofs were made; ``sources`` gets where each actor's files came
    from."""
    import ray
    from ray.exceptions import RayActorError, RayTaskError

    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    n = min(len(todo), cpus)
    # fewer inputs than CPUs: each actor takes several (never more than the smallest node has)
    smallest = min((int(nd["Resources"].get("CPU", 1)) for nd in ray.nodes() if nd.get("Alive")),
                   default=1)
    threads = max(1, min(cpus // n, smallest))
    actor_cls = ray.remote(num_cpus=threads, max_restarts=0)(Prover)
    actors: list[Any] = [actor_cls.remote(refs, store_ref, threads)  # type: ignore[attr-defined]
                         for _ in range(n)]
    where = f"Ray at {ray_address}" if ray_address else "a local Ray instance"
    workers = f"{n} Ray actors of {threads} CPU on {where} ({cpus} CPUs)"
    say(f"proving {len(todo)} inputs with {workers}")
    queue = list(todo)
    pending: dict[Any, tuple[Any, InputFile]] = {}
    errors: list[str] = []

    def submit(actor: Any) -> None:
        if queue:
            item = queue.pop(0)
            pending[actor.prove.remote(item.sha256, item.data)] = (actor, item)

    for actor in actors:
        submit(actor)
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        actor, item = pending.pop(done[0])
        try:
            res = ray.get(done[0])
        except (RayActorError, RayTaskError) as exc:
            cause = getattr(exc, "cause", None) or exc
            text = cause.one_line() if isinstance(cause, ZkmlError) else \
                (str(cause).strip().splitlines() or [type(cause).__name__])[-1]
            errors.append(text)
            finished(ItemResult(item.sha256, None, 0.0, f"the worker failed: {text}"))
            actors.remove(actor)
            if not actors:  # every worker is gone: the rest cannot be proved in this call
                for rest in queue:
                    finished(ItemResult(rest.sha256, None, 0.0, f"no worker left ({text})"))
                queue.clear()
            continue
        finished(res)
        submit(actor)
    for actor in actors:
        sources.append(ray.get(actor.sources.remote()))
    if not sources and errors:
        raise PipelineError(f"no Ray worker could start: {errors[0]}",
                            "Fix the cause and re-run prove-batch; proved inputs are kept.")
    return workers
