"""`zkml-dvc init`: a new project (git + DVC, dvc.yaml, params.yaml) around any ONNX model."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from .errors import InputError
from .onnx_model import check_input, inspect_model
from .params import check_name, chunk_stage_table, parse_params
from .pipeline import prepare_process_env

GITIGNORE = """\
# zkml-dvc: pipeline outputs are DVC-tracked (per-directory .gitignore files list them)
/.venv/
__pycache__/
"""


@dataclass
class InitResult:
    root: Path
    project: str
    model: str
    committed: bool


def dvc_yaml_text() -> str:
    return (Path(__file__).parent / "templates" / "dvc.yaml").read_text()


def init(
    target: Path,
    model: Path,
    input_path: Path,
    calibration: Path | None = None,
    project: str | None = None,
    model_name: str = "model",
    visibility: tuple[str, str, str] = ("public", "public", "fixed"),
    chunks: int | None = None,
    scale: int | None = None,
) -> InitResult:
    """Create a project at ``target`` for ``model``. Everything is checked first and built in a
    temporary directory renamed into place, so a failure leaves nothing behind. With ``chunks``,
    the model is declared under `chunked:` (proved in that many linked chunks, at one pinned
    ``scale``, default 7) and the project has no monolithic model."""
    import git
    from dvc.repo import Repo

    target = target.resolve()
    if target.exists() and any(target.iterdir()):
        raise InputError(f"{target} exists and is not empty",
                         "Choose a new directory: init never writes over existing files.")
    project = project or target.name.lower().replace(" ", "-")
    try:
        check_name(project, "project id")
        check_name(model_name, "model name")
    except ValueError as exc:
        raise InputError(str(exc), "Pass --project / --name with an allowed value.") from None
    check_input(inspect_model(model), input_path)
    calibration = calibration or input_path
    check_input(inspect_model(model), calibration, batch=True)

    entry: dict[str, object] = {
        "onnx": f"models/{model_name}/network.onnx",
        "input": f"models/{model_name}/input.json",
        "calibration": f"models/{model_name}/calibration.json",
        "run_args": dict(zip(("input_visibility", "output_visibility", "param_visibility"),
                             visibility, strict=True)),
        "calibration_target": "resources",
        "scales": None,
        "calibration_options": {},
    }
    if scale is not None and chunks is None:
        raise InputError("--scale applies to chunked models only", "Add --chunks N, or drop --scale.")
    if chunks is None:
        entry["evm"] = False  # true: an EVM verifier and calldata per run (docs/evm.md)
    else:
        entry.update(scales=[scale if scale is not None else 7], chunks=chunks, link="polycommit",
                     boundaries=[])
    raw: dict[str, object] = {
        "project": project,
        "default_model": model_name,
        "srs": {"source": "local"},
        # monolithic models; chunked ones (docs/chunked.md) go under `chunked:`, whose per-chunk
        # stages dvc.yaml expands from the generated `chunk_stages` table
        "models": {} if chunks is not None else {model_name: entry},
        "chunked": {model_name: entry} if chunks is not None else {},
        "chunk_stages": {},
    }
    params = parse_params(raw, "params.yaml")  # validate before writing anything
    if chunks is not None:
        raw["chunk_stages"] = {k: v.model_dump() for k, v in
                               chunk_stage_table(params.chunked).items()}
        parse_params(raw, "params.yaml")

    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        mdir = work / "models" / model_name
        mdir.mkdir(parents=True)
        shutil.copyfile(model, mdir / "network.onnx")
        shutil.copyfile(input_path, mdir / "input.json")
        shutil.copyfile(calibration, mdir / "calibration.json")
        (work / "dvc.yaml").write_text(dvc_yaml_text())
        (work / "params.yaml").write_text(
            "# zkml-dvc parameters: see docs/pipeline.md. Visibilities are always explicit.\n"
            + yaml.safe_dump(raw, sort_keys=False)
        )
        (work / ".gitignore").write_text(GITIGNORE)
        repo = git.Repo.init(work, initial_branch="main")
        prepare_process_env()  # DVC's messages go to stderr, not our stdout
        Repo.init(str(work)).close()
        repo.git.add("-A")
        committed = True
        try:
            repo.git.commit("-m", f"zkml-dvc init: project {project}, model {model_name}")
        except git.GitCommandError:
            committed = False  # no git identity: the user commits after setting one
        if target.exists():
            target.rmdir()
        work.rename(target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return InitResult(root=target, project=project, model=model_name, committed=committed)
