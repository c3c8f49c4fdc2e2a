"""Where every artifact lives: ``artifacts/<model>/{inputs,models,circuits,keys,proofs,reports}``.

One definition shared by the stages, the manifest, the pull/verify code and the dvc.yaml template.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .errors import ConfigError

Category = Literal["inputs", "models", "circuits", "keys", "proofs", "reports"]

# The ezkl steps in pipeline order: one DVC stage each (generated per model with foreach).
# `mock` checks the circuit on the run's input before keygen (setup depends on its report);
# `evm` renders the Solidity verifier and the proof's calldata when params.yaml says `evm: true`;
# `metrics` (not an ezkl step) writes the run's DVC metrics.
STAGES: tuple[str, ...] = (
    "settings", "calibrate", "compile", "mock", "srs", "setup", "witness", "prove", "verify",
    "evm", "metrics",
)
# Stages a project made before them lacks in its dvc.yaml (it keeps working without them).
LATER_STAGES: tuple[str, ...] = ("mock", "evm", "metrics")


# A chunked model's stages (see docs/chunked.md): per model (plan, verify) and per chunk (the rest).
CHUNK_MODEL_STAGES: tuple[str, ...] = ("chunk_plan", "chunk_verify")
CHUNK_STAGES: tuple[str, ...] = ("chunk_compile", "chunk_setup", "chunk_witness", "chunk_prove")


@dataclass(frozen=True)
class ModelLayout:
    """Repo-relative paths of one model's artifacts (or, with ``chunk``, of one chunk's: the same
    taxonomy under ``artifacts/<model>/chunks/<chunk>/``)."""

    model: str
    chunk: int | None = None

    @property
    def base(self) -> Path:
        root = Path("artifacts") / self.model
        return root if self.chunk is None else root / "chunks" / str(self.chunk)

    def chunk_layout(self, index: int) -> ModelLayout:
        return ModelLayout(self.model, index)

    @property
    def plan_dir(self) -> Path:
        """A chunked model's plan: the chunk ONNX files, their settings and plan.json."""
        return Path("artifacts") / self.model / "chunks" / "plan"

    @property
    def plan(self) -> Path:
        return self.plan_dir / "plan.json"

    def plan_onnx(self, index: int) -> Path:
        return self.plan_dir / f"{index}.onnx"

    def plan_settings(self, index: int) -> Path:
        return self.plan_dir / f"{index}.settings.json"

    @property
    def settings_gen(self) -> Path:
        return self.base / "circuits" / "settings.gen.json"

    @property
    def settings(self) -> Path:
        return self.base / "circuits" / "settings.json"

    @property
    def compiled(self) -> Path:
        return self.base / "circuits" / "network.compiled"

    @property
    def fingerprint(self) -> Path:
        return self.base / "circuits" / "fingerprint.json"

    @property
    def srs_pointer(self) -> Path:
        """One SRS per model: the chunks of a chunked model share it."""
        return Path("artifacts") / self.model / "keys" / "srs.json"

    @property
    def chunk_input(self) -> Path:
        """What a chunk's witness was computed from (the previous chunk's outputs)."""
        return self.base / "proofs" / "input.json"

    @property
    def pk(self) -> Path:
        return self.base / "keys" / "pk.key"

    @property
    def vk(self) -> Path:
        return self.base / "keys" / "vk.key"

    @property
    def witness(self) -> Path:
        return self.base / "proofs" / "witness.json"

    @property
    def proof(self) -> Path:
        return self.base / "proofs" / "proof.json"

    @property
    def mock_report(self) -> Path:
        """ezkl mock's verdict on the circuit; a function of the circuit only (see stages._mock)."""
        return self.base / "reports" / "mock.json"

    @property
    def metrics(self) -> Path:
        """The run's DVC metrics (git-tracked: `cache: false` in dvc.yaml)."""
        return self.base / "reports" / "metrics.json"

    @property
    def plot_stage_seconds(self) -> Path:
        """DVC plot data: one row per stage with its seconds (`dvc plots diff` across runs)."""
        return self.base / "reports" / "plots" / "stage_seconds.json"

    @property
    def plot_accuracy(self) -> Path:
        """DVC plot data: the scale against the proved output's error and the pk size."""
        return self.base / "reports" / "plots" / "accuracy.json"

    @property
    def evm_dir(self) -> Path:
        """The EVM verifier of the run (a DVC directory output: with `evm: false`, only evm.json)."""
        return self.base / "evm"

    @property
    def evm_report(self) -> Path:
        return self.evm_dir / "evm.json"

    @property
    def evm_verifier(self) -> Path:
        """ezkl's Solidity verifier for the vk (byte-stable)."""
        return self.evm_dir / "Verifier.sol"

    @property
    def evm_abi(self) -> Path:
        return self.evm_dir / "abi.json"

    @property
    def evm_bytecode(self) -> Path:
        """The verifier's creation bytecode, hex (what a deployment sends)."""
        return self.evm_dir / "Verifier.bin"

    @property
    def evm_calldata(self) -> Path:
        """verifyProof(proof, instances) calldata for this run's proof."""
        return self.evm_dir / "calldata.bin"

    def batch_dir(self, run_id: str, batch_id: str) -> Path:
        """The local copy of a batch of proofs (`prove-batch`): neither git nor DVC tracks it
        (the store holds the batch; a `.gitignore` inside keeps git out)."""
        return self.base / "batches" / f"{run_id}--{batch_id}"

    @property
    def verify_report(self) -> Path:
        return self.base / "reports" / "verify.json"

    @property
    def manifest(self) -> Path:
        """The run manifest: committed to git (not a DVC output), one version per run tag."""
        return self.base / "reports" / "manifest.json"

    def stage_record(self, stage: str) -> Path:
        return self.base / "reports" / "stages" / f"{stage}.json"

    def outputs(self) -> dict[str, list[Path]]:
        """Each stage's DVC outputs (must match the dvc.yaml template)."""
        rec = self.stage_record
        return {
            "settings": [self.settings_gen, rec("settings")],
            "calibrate": [self.settings, rec("calibrate")],
            "compile": [self.compiled, self.fingerprint, rec("compile")],
            "mock": [self.mock_report, rec("mock")],
            "srs": [self.srs_pointer, rec("srs")],
            "setup": [self.pk, self.vk, rec("setup")],
            "witness": [self.witness, rec("witness")],
            "prove": [self.proof, rec("prove")],
            "verify": [self.verify_report, rec("verify")],
            "evm": [self.evm_dir, rec("evm")],
            "metrics": [self.metrics, self.plot_stage_seconds, self.plot_accuracy, rec("metrics")],
        }


# (category, byte-reproducible) of each output, by file name. Reproducible means: the same inputs and
# the same SRS give the same bytes (see docs/pipeline.md); proofs are randomised by design.
_KINDS: dict[str, tuple[Category, bool]] = {
    "settings.gen.json": ("circuits", True),
    "settings.json": ("circuits", True),
    "network.compiled": ("circuits", False),
    "fingerprint.json": ("circuits", True),
    "srs.json": ("keys", True),
    "pk.key": ("keys", True),
    "vk.key": ("keys", True),
    "witness.json": ("proofs", True),
    "proof.json": ("proofs", False),
    "verify.json": ("reports", False),
    "mock.json": ("reports", True),
    "metrics.json": ("reports", False),
    "plan": ("circuits", True),
}


def git_tracked(path: Path) -> bool:
    """Whether an output is one DVC does not cache (`cache: false` in the dvc.yaml template): the
    run's metrics and plot data, committed to git with each run, never DVC objects in the store."""
    return (path.name == "metrics.json" and path.parent.name == "reports") or \
        path.parent.name == "plots"


_EVM_KINDS: dict[str, tuple[Category, bool]] = {
    "Verifier.sol": ("keys", True), "abi.json": ("keys", True), "Verifier.bin": ("keys", True),
    "calldata.bin": ("proofs", False), "evm.json": ("reports", False),
}


def classify(path: Path) -> tuple[Category, bool]:
    if path.parent.name in ("stages", "plots"):
        return "reports", False
    if path.parent.name == "evm":
        return _EVM_KINDS.get(path.name, ("reports", False))
    if path.name in _KINDS:
        return _KINDS[path.name]
    if path.suffix == ".onnx":
        return "models", True
    return "inputs", True


def check_stage(stage: str) -> str:
    if stage not in STAGES + CHUNK_MODEL_STAGES + CHUNK_STAGES:
        from .errors import NotFoundError

        raise NotFoundError(
            f"unknown stage {stage!r}",
            f"Use one of: {', '.join(STAGES + CHUNK_MODEL_STAGES + CHUNK_STAGES)}.",
        )
    return stage


def find_root(start: Path | None = None) -> Path:
    """The project root: the nearest directory upward holding dvc.yaml and params.yaml."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "dvc.yaml").exists() and (candidate / "params.yaml").exists():
            return candidate
    raise ConfigError(
        f"{here} is not inside a zkml-dvc project (no dvc.yaml and params.yaml found)",
        "cd into a project, or create one with `zkml-dvc init DIR --model M.onnx --input I.json`.",
    )


# ---- Store layout (relative to the store root s3://BUCKET/PREFIX; see docs/store-layout.md) ----
STORE_DVC_PREFIX = "dvc"  # the DVC remote `o3` points here (content-addressed by md5)
VERIFY_KIT = ("proof.json", "settings.json", "vk.key")
EVM_KIT = "evm"  # the kit's EVM verifier and calldata: evm/Verifier.sol, evm/calldata.bin, ...


def dvc_object_key(md5: str) -> str:
    """Where DVC 3 keeps an object on the remote, relative to the store root."""
    return f"{STORE_DVC_PREFIX}/files/md5/{md5[:2]}/{md5[2:]}"


def run_index_prefix(project: str, run_id: str) -> str:
    return f"projects/{project}/runs/{run_id}"


def batch_prefix(project: str, run_id: str, batch_id: str) -> str:
    """A batch of proofs made with a run's keys (`prove-batch`): batch.json, inputs/, proofs/."""
    return f"{run_index_prefix(project, run_id)}/batches/{batch_id}"


def srs_key(sha256: str) -> str:
    return f"srs/{sha256}"
