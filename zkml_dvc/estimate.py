"""What a circuit will cost before any keygen: pk/vk bytes, setup and prove time, peak memory.

The proving key holds every fixed and permutation column of the circuit, each over 2**logrows rows
(in several forms), so for circuits of one *shape* (inner columns, lookups, range checks, dynamic
lookups, shuffles, column blocks) its size is a fixed number of bytes per row times 2**logrows.
``estimate`` therefore predicts:

- pk and vk bytes: from a measured circuit of the same shape (scaled by 2**logrows), the project's
  own runs first, then the measurements shipped with the package (``data/cost_measurements.json``,
  made by ``benchmarks/estimate_measure.py``); a shape never measured falls back to a least-squares
  fit over all of them, and says so;
- setup and prove seconds and their peak RSS: linear in the pk's bytes (fitted to the same rows),
  the times scaled by how this project's past runs compared with the fit on this machine.

Pure functions over settings dicts and measurement rows; the library's callers gather the rows.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from .errors import ConfigError, InsufficientMemoryError, MissingFileError, ZkmlError

if TYPE_CHECKING:
    from .project import Project

# the settings.json fields a circuit's shape is made of (see features)
SHAPE_FIELDS = ("num_inner_cols", "lookups", "range_checks", "dynamic_lookups", "shuffles",
                "column_blocks", "hashed", "polycommit")


def features(settings: dict[str, Any]) -> dict[str, Any]:
    """The numbers of ezkl's settings.json that a circuit's cost depends on."""
    run_args = settings.get("run_args", {})
    logrows = int(run_args["logrows"])
    num_rows = int(settings.get("num_rows", 0))
    visibilities = " ".join(str(run_args.get(k, "")).lower()
                            for k in ("input_visibility", "output_visibility", "param_visibility"))
    return {
        "logrows": logrows,
        "num_rows": num_rows,
        "total_assignments": int(settings.get("total_assignments", 0)),
        "total_const_size": int(settings.get("total_const_size", 0)),
        "num_inner_cols": int(run_args.get("num_inner_cols", 2)),
        "lookups": len(settings.get("required_lookups") or []),
        "range_checks": len(settings.get("required_range_checks") or []),
        "dynamic_lookups": int(settings.get("num_dynamic_lookups", 0) or 0),
        "shuffles": int(settings.get("num_shuffles", 0) or 0),
        # rows beyond 2**logrows spill into further blocks of columns
        "column_blocks": max(1, math.ceil(num_rows / 2 ** logrows)),
        "hashed": int("hashed" in visibilities),
        "polycommit": int("polycommit" in visibilities),
    }


class Measurement(BaseModel):
    """One measured circuit: its settings (the fields features() reads) and what keygen and
    proving cost."""

    model: str
    settings: dict[str, Any]
    pk_bytes: int
    vk_bytes: int
    setup_s: float | None = None
    prove_s: float | None = None
    setup_peak_rss: int | None = None
    prove_peak_rss: int | None = None
    source: str = "shipped"  # "shipped" or "run <id>" (this project's own)

    @property
    def features(self) -> dict[str, Any]:
        return features(self.settings)


class Estimate(BaseModel):
    """A prediction for one circuit, and what it rests on."""

    model: str
    logrows: int
    num_rows: int
    pk_bytes: int
    vk_bytes: int
    setup_s: float
    prove_s: float
    setup_peak_rss: int
    prove_peak_rss: int
    basis: str = Field(description="what the key sizes were scaled from")
    time_factor: float = Field(description="this project's past runs / the fitted times")
    memory_factor: float = Field(description="this project's past runs / the fitted peak memory")

    @property
    def peak_rss(self) -> int:
        return max(self.setup_peak_rss, self.prove_peak_rss)


def shipped() -> list[Measurement]:
    """The measurements that ship with the package."""
    text = resources.files("zkml_dvc").joinpath("data/cost_measurements.json").read_text()
    return [Measurement.model_validate(r) for r in json.loads(text)["rows"]]


def _shape(f: dict[str, Any]) -> tuple[int, ...]:
    return tuple(int(f.get(k, 0)) for k in SHAPE_FIELDS)


def _per_row(m: Measurement, attr: str) -> float:
    return float(getattr(m, attr)) / 2 ** int(m.features["logrows"])


def _lstsq(xs: Sequence[Sequence[float]], ys: Sequence[float], ridge: float = 0.0) -> list[float]:
    """Least squares (ridge-regularised, intercept excluded, when ``ridge`` > 0)."""
    import numpy as np

    x, y = np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)
    if ridge > 0:
        penalty = np.sqrt(ridge) * np.eye(x.shape[1])[1:]
        x, y = np.vstack([x, penalty]), np.concatenate([y, np.zeros(len(penalty))])
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    return [float(c) for c in coef]


def _fit_features(f: dict[str, Any]) -> list[float]:
    """What the fallback fit regresses log(bytes per row) on: the column count (log, as columns
    multiply), and the counts of lookups, range checks and the rest."""
    return [1.0, math.log2(max(int(f["num_inner_cols"]), 1)), float(f["lookups"]),
            float(f["range_checks"]), float(f["dynamic_lookups"] + f["shuffles"]),
            float(f["hashed"] + f["polycommit"]), math.log2(int(f["column_blocks"]))]


def _key_bytes(feats: dict[str, Any], rows: Sequence[Measurement], attr: str) -> tuple[float, str]:
    """Bytes of ``attr`` (pk_bytes or vk_bytes) per row for a circuit of ``feats``' shape."""
    same = [m for m in rows if _shape(m.features) == _shape(feats)]
    if same:
        own = [m for m in same if m.source != "shipped"] or same
        per_row = sorted(_per_row(m, attr) for m in own)[len(own) // 2]
        return per_row, f"a measured circuit of the same shape ({own[0].model}, {own[0].source})"
    # never measured: log(bytes per row) linear in the shape's numbers, one point per shape
    shapes: dict[tuple[int, ...], Measurement] = {}
    for m in rows:
        shapes.setdefault(_shape(m.features), m)
    coef = _lstsq([_fit_features(m.features) for m in shapes.values()],
                  [math.log(_per_row(m, attr)) for m in shapes.values()], ridge=0.1)
    x = _fit_features(feats)
    return math.exp(sum(c * v for c, v in zip(coef, x, strict=True))), \
        f"a fit over {len(shapes)} measured shapes (none like this one: a rough guess)"


def _linear(rows: Iterable[tuple[float, float]]) -> tuple[float, float]:
    """(intercept, slope) of y on x, least squares; slope only if fewer than two distinct x."""
    pts = list(rows)
    if len({x for x, _ in pts}) < 2:
        return 0.0, sum(y for _, y in pts) / max(sum(x for x, _ in pts), 1.0)
    # the closed form (no numpy import: setup and prove check their estimate before they start)
    mx, my = sum(x for x, _ in pts) / len(pts), sum(y for _, y in pts) / len(pts)
    b = sum((x - mx) * (y - my) for x, y in pts) / sum((x - mx) ** 2 for x, _ in pts)
    return my - b * mx, b


def predict(model: str, settings: dict[str, Any], rows: Sequence[Measurement]) -> Estimate:
    """The estimate for ``settings`` from measurement ``rows`` (shipped and the project's own)."""
    if not rows:
        raise ValueError("no measurements to estimate from")
    feats = features(settings)
    n = 2 ** int(feats["logrows"])
    pk_row, basis = _key_bytes(feats, rows, "pk_bytes")
    vk_row, _ = _key_bytes(feats, rows, "vk_bytes")
    pk = pk_row * n
    shipped_rows = [m for m in rows if m.source == "shipped"] or list(rows)

    def fit(attr: str) -> tuple[float, float]:
        return _linear((m.pk_bytes, float(getattr(m, attr))) for m in shipped_rows
                       if getattr(m, attr) is not None)

    times = {a: fit(a) for a in ("setup_s", "prove_s")}
    rss = {a: fit(a) for a in ("setup_peak_rss", "prove_peak_rss")}
    # how this project's own runs on this machine compare with the fits (1.0 without own runs)
    time_factor = _own_factor(rows, times)
    rss_factor = _own_factor(rows, rss)

    def at(ab: tuple[float, float]) -> float:
        return max(ab[0] + ab[1] * pk, 0.0)

    return Estimate(
        model=model, logrows=int(feats["logrows"]), num_rows=int(feats["num_rows"]),
        pk_bytes=int(pk), vk_bytes=int(vk_row * n),
        setup_s=round(at(times["setup_s"]) * time_factor, 1),
        prove_s=round(at(times["prove_s"]) * time_factor, 1),
        setup_peak_rss=int(at(rss["setup_peak_rss"]) * rss_factor),
        prove_peak_rss=int(at(rss["prove_peak_rss"]) * rss_factor),
        basis=basis, time_factor=round(time_factor, 2), memory_factor=round(rss_factor, 2),
    )


def _own_factor(rows: Sequence[Measurement], fits: dict[str, tuple[float, float]]) -> float:
    """The median of measured / fitted over the project's own runs, for the fitted figures."""
    ratios = []
    for m in rows:
        for attr, (a, b) in fits.items():
            value, fitted = getattr(m, attr), a + b * m.pk_bytes
            if m.source != "shipped" and value and fitted > 0:
                ratios.append(float(value) / fitted)
    return sorted(ratios)[len(ratios) // 2] if ratios else 1.0


def parse_bytes(text: str) -> int:
    """``2G``, ``1.5GiB``, ``800M``, ``123456`` -> bytes (powers of 1024 for the suffixes)."""
    s = text.strip().upper().removesuffix("B").removesuffix("I")
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    mult = units.get(s[-1:], 1)
    number = s[:-1] if s[-1:] in units else s
    value = float(number)
    if value <= 0 or not math.isfinite(value):
        raise ValueError(f"not a positive size: {text!r}")
    return int(value * mult)


# ---- the project's side: its own runs, this machine's memory, the check `run` makes ---------------
OWN_RUNS = 50  # the most recent runs the estimate learns from


def own_measurements(root: Path, project: str) -> list[Measurement]:
    """Measurements from this project's latest runs (monolithic ones whose settings are in the local
    DVC cache or the workspace): the pk/vk sizes, and setup/prove seconds and peak RSS of the
    stages that ran (not those restored from a cache)."""
    from . import runs
    from .fsutil import sha256_file

    out: list[Measurement] = []
    for ref in runs.list_runs(root, project)[-OWN_RUNS:]:
        try:
            _, man = runs.load_manifest(root, ref.run_id, project)
        except ZkmlError:
            continue
        by_name = {Path(a.path).relative_to(Path("artifacts") / man.model).as_posix(): a
                   for a in man.artifacts if a.path.startswith(f"artifacts/{man.model}/")}
        settings, pk, vk = (by_name.get(k) for k in ("circuits/settings.json", "keys/pk.key",
                                                       "keys/vk.key"))
        if settings is None or pk is None or vk is None:
            continue  # a chunked run: per-chunk keys
        candidates = [root / settings.path]
        if settings.md5:
            candidates.insert(0, root / ".dvc/cache/files/md5" / settings.md5[:2] / settings.md5[2:])
        text = next((c.read_text() for c in candidates
                     if c.is_file() and sha256_file(c) == settings.sha256), None)
        if text is None:
            continue
        ran = {s.stage: s for s in man.stages if s.ran}
        setup, prove = ran.get("setup"), ran.get("prove")
        out.append(Measurement(
            model=man.model, settings=json.loads(text), pk_bytes=pk.size,
            vk_bytes=vk.size, setup_s=setup.duration_s if setup else None,
            prove_s=prove.duration_s if prove else None,
            setup_peak_rss=setup.peak_rss_bytes if setup else None,
            prove_peak_rss=prove.peak_rss_bytes if prove else None, source=f"run {ref.run_id}"))
    return out


def available_memory() -> tuple[int, str]:
    """Bytes this process may still use, and where that figure comes from: $ZKML_DVC_MEMORY_LIMIT,
    else the smaller of the system's available memory and the cgroup's remaining limit."""
    from . import env

    configured = env.get(env.MEMORY_LIMIT)
    if configured:
        try:
            return parse_bytes(configured), f"${env.MEMORY_LIMIT}"
        except ValueError:
            raise ConfigError(f"${env.MEMORY_LIMIT}={configured!r} is not a size",
                              "Set it to bytes or a size such as 8G or 800M.") from None
    import psutil

    free, where = int(psutil.virtual_memory().available), "available memory"
    cgroup = Path("/sys/fs/cgroup")
    try:
        limit = (cgroup / "memory.max").read_text().strip()
        if limit != "max":
            left = int(limit) - int((cgroup / "memory.current").read_text().strip())
            if left < free:
                free, where = left, "the cgroup's memory limit"
    except (OSError, ValueError):
        pass
    return free, where


def estimate_model(project: Project, model: str | None = None) -> tuple[Estimate, int, str]:
    """Calibrate ``model`` (its settings and calibrate stages, as `dvc repro calibrate@MODEL`: no
    keygen) and estimate its cost; also return the available memory and where that comes from."""
    from . import pipeline

    shape = project.shape(model)
    stage, _ = shape.calibrated_settings()
    pipeline.repro_targets(project, [stage], what=f"calibration of {shape.model}")
    free, where = available_memory()
    return for_model(project, shape.model), free, where


def for_model(project: Project, model: str) -> Estimate:
    """The estimate for a model whose calibrated settings are in the workspace."""
    from .fsutil import read_json
    from .layout import ModelLayout

    settings = project.root / ModelLayout(model).settings
    if not settings.exists():
        raise MissingFileError(settings, "calibrated settings",
                               f"Run `dvc repro calibrate@{model}` (or `zkml-dvc estimate`).")
    rows = [*own_measurements(project.root, project.params.project), *shipped()]
    return predict(model, read_json(settings, "settings"), rows)


def check_memory(est: Estimate, stages: set[str]) -> None:
    """Refuse (InsufficientMemoryError) if the stages about to run (``setup``, ``prove``) are
    predicted to need more memory than this machine has available."""
    need = max([est.setup_peak_rss] * ("setup" in stages) + [est.prove_peak_rss] * ("prove" in stages),
               default=0)
    free, where = available_memory()
    if need > free:
        which = " and ".join(s for s in ("setup", "prove") if s in stages)
        raise InsufficientMemoryError(
            f"model {est.model}: {which} at logrows {est.logrows} is estimated to peak at "
            f"{need / 1e9:.1f} GB (pk {est.pk_bytes / 1e9:.1f} GB), more than the {free / 1e9:.1f} GB "
            f"of {where}; the kernel would kill it",
            "Lower logrows or scales, prove it as chunks (docs/chunked.md), run on a larger "
            "machine, or pass --force to try anyway.")
