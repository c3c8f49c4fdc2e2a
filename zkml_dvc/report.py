"""The run page (`zkml-dvc report`): one self-contained HTML file, opened from disk or from the store.

For each run of the project: its verdict and every claim with its basis (the clean-room verifier,
run now, or the report it last saved), the stage timeline, the artifacts with sizes and sha256, and
for a chunked run the chunk graph; across the runs, the metrics as charts; and the difference
between two runs (params, metrics, artifacts). Charts are Vega-Lite specifications rendered to SVG
by vl-convert (no JavaScript, nothing fetched when the page opens); the page is a Jinja2 template.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import runs
from .errors import ZkmlError
from .fsutil import atomic_write_text

if TYPE_CHECKING:
    from .manifest import Manifest
    from .project import Project
    from .store import Store

VEGA_LITE = "https://vega.github.io/schema/vega-lite/v5.json"
PAGE_NAME = "index.html"
STATUS_CLASS = {"established": "ok", "failed": "bad", "untrusted": "warn", "not-checked": "muted"}
VERDICT_CLASS = {"valid": "ok", "invalid": "bad", "integrity-failure": "bad",
                 "unauthenticated": "warn", "untrusted-srs": "warn"}


@dataclass
class RunView:
    run_id: str
    tag: str
    model: str
    started: str
    duration_s: float
    verdict: str  # a verifier verdict, or "not verified"
    verdict_class: str
    verdict_basis: str  # when and how the verdict was reached, or why there is none
    reason: str
    claims: list[dict[str, str]]
    output: list[list[str]]
    artifacts: list[dict[str, Any]]
    timeline_svg: str
    cached: list[str]  # stages DVC had cached (they ran in an earlier run)
    link: str | None
    chunks: list[dict[str, Any]]
    metrics: dict[str, Any]


@dataclass
class DiffView:
    a: str
    b: str
    params: list[tuple[str, Any, Any]]
    metrics: list[tuple[str, Any, Any]]
    artifacts: list[runs.ArtifactChange]


@dataclass
class Page:
    project: str
    generated: str
    tool_version: str
    runs: list[RunView]
    charts: list[tuple[str, str]] = field(default_factory=list)  # (title, svg)
    diff: DiffView | None = None


def _svg(spec: dict[str, Any]) -> str:
    import vl_convert

    return str(vl_convert.vegalite_to_svg({"$schema": VEGA_LITE, **spec}))


def _timeline(manifest: Manifest) -> str:
    """The stages that ran in this run on a time axis (seconds from the first one's start); the
    ones DVC had cached ran in an earlier run, at another time, and are left off the axis."""
    ran = [s for s in manifest.stages if s.ran]
    if not ran:
        return ""
    t0 = min(s.started for s in ran)
    rows = [{"stage": s.stage, "start": round((s.started - t0).total_seconds(), 3),
             "end": round(max((s.ended - t0).total_seconds(), (s.started - t0).total_seconds()
                              + 0.05), 3), "seconds": s.duration_s} for s in ran]
    return _svg({
        "width": 560, "height": {"step": 16}, "data": {"values": rows},
        "mark": {"type": "bar", "color": "#3b6fb6"},
        "encoding": {
            "y": {"field": "stage", "type": "nominal", "sort": None, "title": None},
            "x": {"field": "start", "type": "quantitative", "title": "seconds since the first stage"},
            "x2": {"field": "end"},
            "tooltip": [{"field": "stage"}, {"field": "seconds"}]}})


def _verdict(project: Project, ref: runs.RunRef, manifest: Manifest,
             verify: bool) -> tuple[dict[str, Any] | None, str]:
    """The verification report of a run (verified now, or the one last saved) and how it was got."""
    from .verifier import Options
    from .verifier import verify as do_verify

    saved = project.root / ".dvc" / "tmp" / "zkml-dvc" / f"verify-{ref.run_id}.json"
    if verify:
        try:
            rep = do_verify(ref.run_id, project=project, report_path=saved,
                            options=Options(evm=manifest.tools.solc is not None))
        except ZkmlError as exc:
            return None, f"not verified: {exc.message}"
        return rep.model_dump(mode="json"), "verified in a clean room when this page was made"
    if saved.exists():
        with contextlib.suppress(ValueError, OSError):
            data = json.loads(saved.read_text())
            return data, f"the verifier's saved report of {str(data.get('started', '?'))[:19]}"
    return None, "not verified (the page was made with --no-verify and no saved report exists)"


def _run_view(project: Project, ref: runs.RunRef, manifest: Manifest, verify: bool) -> RunView:
    from .metrics import of_run

    report, basis = _verdict(project, ref, manifest, verify)
    verdict = (report or {}).get("verdict", "not verified")
    claims = [{"name": c["name"], "status": c["status"], "basis": c["basis"],
               "class": STATUS_CLASS.get(c["status"], "muted")}
              for c in (report or {}).get("claims", [])]
    return RunView(
        run_id=ref.run_id, tag=ref.tag, model=manifest.model,
        started=manifest.started.strftime("%Y-%m-%d %H:%M:%S UTC"),
        duration_s=round((manifest.ended - manifest.started).total_seconds(), 1),
        verdict=verdict, verdict_class=VERDICT_CLASS.get(verdict, "muted"), verdict_basis=basis,
        reason=(report or {}).get("reason", ""), claims=claims,
        output=(report or {}).get("output", []),
        artifacts=[{"path": a.path, "category": a.category, "size": a.size, "sha256": a.sha256,
                    "stage": a.stage or "git"} for a in manifest.artifacts],
        timeline_svg=_timeline(manifest), cached=[s.stage for s in manifest.stages if not s.ran],
        link=manifest.link,
        chunks=[c.model_dump() for c in manifest.chunks], metrics=of_run(project.root, ref.run_id))


def _charts(views: list[RunView], manifests: dict[str, Manifest]) -> list[tuple[str, str]]:
    """Across runs: seconds per stage, pk size, and the proved output's error against the scale."""
    charts: list[tuple[str, str]] = []
    stage_rows = [{"run": v.run_id, "stage": s.stage, "seconds": s.duration_s}
                  for v in views for s in manifests[v.run_id].stages]
    if stage_rows:
        charts.append(("Seconds per stage, per run", _svg({
            "width": 560, "height": {"step": 18}, "data": {"values": stage_rows}, "mark": "bar",
            "encoding": {"y": {"field": "run", "type": "nominal", "sort": None, "title": None},
                         "x": {"field": "seconds", "type": "quantitative", "aggregate": "sum",
                               "title": "seconds (stacked by stage)"},
                         "color": {"field": "stage", "type": "nominal", "sort": None}}})))
    cost = [{"run": v.run_id, "pk_mb": round(v.metrics["bytes.pk"] / 1e6, 1),
             "logrows": v.metrics.get("logrows")} for v in views if "bytes.pk" in v.metrics]
    if cost:
        charts.append(("Proving key size", _svg({
            "width": 560, "height": {"step": 18}, "data": {"values": cost}, "mark": "bar",
            "encoding": {"y": {"field": "run", "type": "nominal", "sort": None, "title": None},
                         "x": {"field": "pk_mb", "type": "quantitative", "title": "pk (MB)"},
                         "tooltip": [{"field": "logrows"}]}})))
    errors = [{"run": v.run_id, "model": v.model, "input_scale": v.metrics["input_scale"],
               "error": v.metrics["output_error.max_abs"]}
              for v in views if "output_error.max_abs" in v.metrics]
    if errors:
        charts.append(("Proved output's max abs error against the float model, by input scale",
                       _svg({"width": 560, "height": 240, "data": {"values": errors},
                             "mark": {"type": "point", "filled": True, "size": 80},
                             "encoding": {
                                 "x": {"field": "input_scale", "type": "quantitative",
                                       "scale": {"zero": False}},
                                 "y": {"field": "error", "type": "quantitative",
                                       "title": "max abs error"},
                                 "color": {"field": "model", "type": "nominal"},
                                 "tooltip": [{"field": "run"}]}})))
    return charts


def _diff(views: dict[str, RunView], manifests: dict[str, Manifest], a: str, b: str) -> DiffView:
    from .metrics import changes, flatten

    pa, pb = flatten(manifests[a].params), flatten(manifests[b].params)
    return DiffView(
        a=a, b=b,
        params=[(k, pa.get(k), pb.get(k)) for k in sorted(set(pa) | set(pb)) if pa.get(k) != pb.get(k)],
        metrics=changes(views[a].metrics, views[b].metrics),
        artifacts=[c for c in runs.diff(manifests[a], manifests[b]) if c.kind != "same"])


def build(project: Project, run_ids: list[str] | None = None, verify: bool = True,
          diff: tuple[str, str] | None = None) -> Page:
    """The page's content: the given runs (default: every run of the project, oldest first),
    each verified now (``verify``) or from its saved report, and the diff of ``diff`` (default:
    the last two runs)."""
    from importlib.metadata import version

    refs = ([runs.find_run(project.root, r, project.params.project) for r in run_ids] if run_ids
            else runs.list_runs(project.root, project.params.project))
    if not refs:
        from .errors import NotFoundError

        raise NotFoundError("this project has no runs yet", "Make one with `zkml-dvc run`.")
    missing = [r for r in (diff or ()) if r not in {ref.run_id for ref in refs}]
    if missing:  # before any verification
        from .errors import InputError

        raise InputError(f"--diff names run {missing[0]}, which is not on the page",
                         "Diff two of the runs the page shows (or list both as arguments).")
    manifests = {ref.run_id: runs.load_manifest(project.root, ref.run_id, ref.project)[1]
                 for ref in refs}
    views = [_run_view(project, ref, manifests[ref.run_id], verify) for ref in refs]
    page = Page(project=project.params.project,
                generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
                tool_version=version("zkml-dvc"), runs=views, charts=_charts(views, manifests))
    by_id = {v.run_id: v for v in views}
    if diff is not None:
        page.diff = _diff(by_id, manifests, *diff)
    elif len(views) >= 2:
        page.diff = _diff(by_id, manifests, views[-2].run_id, views[-1].run_id)
    return page


def render(page: Page) -> str:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("zkml_dvc", "templates"), autoescape=True,
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["size"] = _human_size
    return env.get_template("report.html.j2").render(page=page)


def _human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1000
    return f"{n} B"


def write(page: Page, out_dir: Path) -> Path:
    """Write the page as ``out_dir/index.html`` (atomically); returns its path."""
    path = out_dir / PAGE_NAME
    atomic_write_text(path, render(page))
    return path


def report_key(project_id: str) -> str:
    """Where `zkml-dvc push --report` publishes the page in the store (beside the run index)."""
    return f"projects/{project_id}/report/{PAGE_NAME}"


def publish(store: Store, project_id: str, html: str) -> str:
    """Upload the page to the store; returns its s3:// URL."""
    key = report_key(project_id)
    store.put_bytes(html.encode(), key, content_type="text/html; charset=utf-8")
    return f"s3://{store.bucket}/{store.key(key)}"
