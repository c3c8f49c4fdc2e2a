"""`zkml-dvc init`, `run`, `stage`, `chunks`, `runs`, `show`, `estimate`, `diff`."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from .. import env
from ..errors import ZkmlError, exit_code_for
from .base import console, main, project


@main.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--model", "model", required=True, type=click.Path(path_type=Path),
              help="ONNX model file.")
@click.option("--input", "input_path", required=True, type=click.Path(path_type=Path),
              help="Input in ezkl's JSON format: {\"input_data\": [[...]]}.")
@click.option("--calibration", type=click.Path(path_type=Path),
              help="Calibration data (ezkl's input format); defaults to the input.")
@click.option("--project", help="Project id (default: the directory name).")
@click.option("--name", "model_name", default="model", show_default=True, help="Model name.")
@click.option("--input-visibility", default="public", show_default=True)
@click.option("--output-visibility", default="public", show_default=True)
@click.option("--param-visibility", default="fixed", show_default=True)
@click.option("--remote", help="Store root s3://BUCKET/PREFIX for the DVC remote `o3`.")
@click.option("--endpoint", help="S3 endpoint of the store, e.g. https://o3-rc2.akave.xyz.")
@click.option("--region", help="Region (default akave-network).")
@click.option("--profile", help="AWS profile holding the credentials.")
@click.option("--chunks", type=click.IntRange(1, 16), help="Declare the model as chunked: proved "
              "in N linked chunks on Ray (params.yaml `chunked:`; see docs/chunked.md).")
@click.option("--scale", type=int, help="With --chunks: the one fixed-point scale every chunk "
              "uses (default 7).")
def init(directory: Path, model: Path, input_path: Path, calibration: Path | None,
         project: str | None, model_name: str, input_visibility: str, output_visibility: str,
         param_visibility: str, remote: str | None, endpoint: str | None, region: str | None,
         profile: str | None, chunks: int | None, scale: int | None) -> None:
    """Create a project for any ONNX model ezkl supports.

    \b
    Examples:
      zkml-dvc init myproj --model net.onnx --input input.json \\
        --remote s3://my-bucket/zkml --endpoint https://o3-rc2.akave.xyz
      zkml-dvc init bigproj --model big.onnx --input input.json --chunks 4
    """
    from ..remote import set_remote
    from ..scaffold import init as do_init

    result = do_init(directory, model, input_path, calibration, project, model_name,
                     (input_visibility, output_visibility, param_visibility), chunks=chunks,
                     scale=scale)
    if remote:
        set_remote(result.root, remote, endpoint=endpoint, region=region, profile=profile)
        if result.committed:
            import git

            repo = git.Repo(result.root)
            repo.git.add(".dvc/config")
            repo.git.commit("-m", f"zkml-dvc: remote o3 at {remote}")
    kind = f", chunked in {chunks}" if chunks else ""
    click.echo(f"Created project {result.project} in {result.root} (model {result.model}{kind}).")
    if not result.committed:
        click.echo("Not committed: git has no identity. Set one and commit the files.", err=True)
    click.echo(f"Next: cd {result.root} && zkml-dvc run", err=True)


@main.command()
@click.option("--model", help="Model name from params.yaml (default: default_model).")
@click.option("--run-id", help="Run id (default: a new time-sortable id).")
@click.option("--push/--no-push", "push", default=None,
              help="Use the remote: fetch what it holds, push each stage's outputs and then "
              "the run (default: if a remote is configured). --no-push: compute here, push "
              "nothing.")
@click.option("--chunks", type=click.IntRange(1, 16),
              help="Chunked models: prove in N linked chunks (written to params.yaml).")
@click.option("--link", type=click.Choice(["polycommit", "hashed"]),
              help="Chunked models: how chunks are linked (written to params.yaml).")
@click.option("--ray-address", help="Chunked models: prove on this Ray cluster (host:port or "
              "auto; workers read inputs from the store). Default: a local Ray instance.")
@click.option("--sign", is_flag=True, help="Sign the run: the tag with git's SSH signing and the "
              "manifest with a detached SSH signature (key: --signing-key, else git's "
              "user.signingkey).")
@click.option("--signing-key", type=click.Path(path_type=Path), help="SSH private key for --sign.")
@click.option("--force", is_flag=True, help="Record a new run even if an existing run already "
              "records this exact state (same dvc.lock for the model), and start setup/prove "
              "even if the cost estimate says they exceed the available memory.")
def run(model: str | None, run_id: str | None, push: bool | None, chunks: int | None,
        link: str | None, ray_address: str | None, sign: bool, signing_key: Path | None,
        force: bool) -> None:
    """Run the pipeline through DVC and record it as a run.

    Writes the manifest, commits dvc.lock and the manifest, tags the commit runs/<project>/<run_id>
    (signed with --sign) and pushes artifacts and the run index when a remote is configured. A
    model under `chunked:` in params.yaml is split into linked chunks proved in parallel on Ray.

    With a remote, stages whose outputs the store holds for the current dvc.lock are fetched, not
    recomputed (a fresh clone runs no ezkl stage; a new input runs witness, prove and verify), and
    each stage's outputs are pushed as soon as it succeeds. If nothing changed since an existing
    run, that run is named and no new one is recorded (--force records one).

    Before any keygen, the `mock` stage checks the circuit on the input with ezkl's mock (exit 7
    if the input does not satisfy it), and setup/prove refuse to start (exit 11) when the cost
    estimate (`zkml-dvc estimate`) exceeds the available memory (--force tries anyway).

    \b
    Examples:
      zkml-dvc run --model mlp --run-id baseline
      zkml-dvc run --sign --signing-key ~/.ssh/id_ed25519
      zkml-dvc run --model mlp-wide --chunks 4 --ray-address auto
    """
    from ..runner import run as do_run

    def progress(msg: str) -> None:
        click.echo(msg, err=True)

    proj = project()
    key = None
    if sign or signing_key:
        from ..trust import signing_key_of

        key = signing_key_of(proj.root, signing_key)
    result = do_run(proj, model, run_id, push, chunks=chunks, link=link,
                    ray_address=ray_address, progress=progress, signing_key=key, force=force)
    m = result.manifest
    if result.sync is not None and result.sync.fetched:
        click.echo(f"fetched from the store instead of recomputing: "
                   f"{', '.join(result.sync.fetched)}", err=True)
    if not result.recorded:
        click.echo(f"nothing changed: run {m.run_id} (tag {result.tag}) already records this "
                   f"state of model {m.model}; no new run recorded (--force records one)")
    else:
        click.echo(f"run {m.run_id}: model {m.model}, {len(result.stages_ran)} of "
                   f"{len(m.stages)} stages ran, proof verified; tag {result.tag}")
    if result.pushed is not None:
        p = result.pushed
        early = result.sync.pushed_files if result.sync is not None else 0
        click.echo(f"pushed: {p.dvc_files_pushed + early} DVC objects ({early} as their stages "
                   f"finished), {p.uploaded_files} index files ({p.uploaded_bytes} bytes), run "
                   f"index at {p.index_url}")


@main.command(hidden=False)
@click.argument("name")
@click.option("--model", required=True, help="Model name from params.yaml.")
@click.option("--chunk", type=int, help="Chunk index (per-chunk stages of chunked models).")
@click.pass_context
def stage(ctx: click.Context, name: str, model: str, chunk: int | None) -> None:
    """Run one pipeline stage (called by DVC from dvc.yaml).

    NAME is one of: settings, calibrate, compile, mock, srs, setup, witness, prove, verify,
    metrics; for chunked models chunk_plan and chunk_verify (per model) and chunk_compile,
    chunk_setup, chunk_witness, chunk_prove (per chunk, with --chunk).

    \b
    Examples (what `dvc repro` runs):
      zkml-dvc stage prove --model mlp
      zkml-dvc stage chunk_prove --model mlp-wide --chunk 1
    """
    from ..pipeline import record_stage_error
    from ..stages import run_stage

    # ezkl prints reports on stdout; a stage's stdout is not a result, so send it to stderr.
    sys.stdout.flush()
    os.dup2(2, 1)
    proj = project()
    try:
        run_stage(proj, name, model, chunk)
    except ZkmlError as exc:
        record_stage_error(proj.root, exc)
        if env.flag(env.STAGE_QUIET) and not ctx.obj.get("verbose"):
            sys.exit(exit_code_for(exc))  # `zkml-dvc run` reports it once, naming the stage
        raise


@main.group()
def chunks() -> None:
    """Chunked models (params.yaml `chunked:`; see docs/chunked.md)."""


@chunks.command("sync")
def chunks_sync() -> None:
    """Regenerate params.yaml's chunk_stages table from `chunked:`.

    `zkml-dvc run` does this itself; run it before a plain `dvc repro` after changing a chunked
    model's `chunks`.

    \b
    Example:
      zkml-dvc chunks sync && dvc repro
    """
    from ..params import load_params, sync_chunk_stages

    proj = project()
    changed = sync_chunk_stages(proj.root)
    n = len(load_params(proj.root).chunk_stages)
    click.echo(f"chunk_stages: {n} chunk(s){' (updated)' if changed else ' (already current)'}")


# ---- runs / show / diff ----------------------------------------------------------------------
@main.command("runs")
@click.option("--project", "project_id", help="Only this project's runs (required with --store).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--store", "store_url", help="List the runs in the store's index instead: "
              "s3://BUCKET/PREFIX (no clone needed).")
@click.option("--endpoint", help="S3 endpoint (with --store).")
def runs_cmd(project_id: str | None, as_json: bool, store_url: str | None,
             endpoint: str | None) -> None:
    """List runs (from the git tags runs/<project>/<run_id>, or from a store's run index).

    \b
    Examples:
      zkml-dvc runs --project zkml-demo
      zkml-dvc runs --store s3://zkml-dvc --project zkml-demo --endpoint URL
    """
    from ..runs import list_runs

    if store_url:
        from ..errors import InputError
        from ..remote import store_from_config
        from ..run_index import list_store_runs

        if not project_id:
            raise InputError("--project is required with --store", "Pass --project PROJECT_ID.")
        ids = list_store_runs(store_from_config(store_url, endpoint), project_id)
        click.echo(json.dumps(ids) if as_json else "\n".join(ids))
        return

    refs = list_runs(project().root, project_id)
    if as_json:
        click.echo(json.dumps([{"run_id": r.run_id, "project": r.project, "model": r.model,
                                "commit": r.commit, "tag": r.tag, "date": r.date.isoformat()}
                               for r in refs], indent=2))
        return
    from rich.table import Table

    table = Table("run id", "project", "model", "commit", "date")
    for r in refs:
        table.add_row(r.run_id, r.project, r.model, r.commit[:10], r.date.strftime("%Y-%m-%d %H:%M:%S"))
    console().print(table)


@main.command()
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest JSON.")
def show(run_id: str, as_json: bool) -> None:
    """Show one run's manifest.

    \b
    Example:
      zkml-dvc show 20261122-071500123-a1b2c3
    """
    from ..runs import load_manifest

    ref, m = load_manifest(project().root, run_id)
    if as_json:
        click.echo(m.to_json(), nl=False)
        return
    from rich.table import Table

    con = console()
    head = Table(show_header=False, title=f"run {m.run_id}")
    for k, v in [("project", m.project), ("model", m.model), ("tag", ref.tag),
                 ("commit", ref.commit), ("parent run", m.parent_run or "-"),
                 ("started", m.started.isoformat()), ("ended", m.ended.isoformat()),
                 ("ezkl / dvc / python", f"{m.tools.ezkl} / {m.tools.dvc} / {m.tools.python}"),
                 ("model sha256", m.model_facts.sha256),
                 ("inputs", ", ".join(f"{t.name}{t.shape}:{t.dtype}" for t in m.model_facts.inputs)),
                 ("SRS", f"k={m.srs.logrows} {m.srs.source}"
                         f"{' (INSECURE test SRS)' if m.srs.insecure else ''}"
                         f" sha256 {m.srs.sha256[:16]}...")]:
        head.add_row(k, str(v))
    con.print(head)
    st = Table("stage", "ran", "seconds", "ezkl call")
    for s in m.stages:
        st.add_row(s.stage, "ran" if s.ran else "cached", f"{s.duration_s:.2f}",
                   ", ".join(c.function for c in s.ezkl_calls))
    con.print(st)
    at = Table("artifact", "category", "bytes", "sha256", "reproducible")
    for a in m.artifacts:
        at.add_row(a.path, a.category, str(a.size), a.sha256[:16], "yes" if a.reproducible else "no")
    con.print(at)


@main.command()
@click.option("--model", help="Model name from params.yaml (default: default_model).")
@click.option("--json", "as_json", is_flag=True, help="Print the estimate as JSON.")
def estimate(model: str | None, as_json: bool) -> None:
    """Predict a model's proving cost before any keygen.

    Runs the model's settings and calibrate stages (as `dvc repro calibrate@MODEL` would; seconds,
    no keygen), then predicts from the calibrated settings the proving and verification key
    sizes, setup and prove time and peak memory on this machine. Key sizes are scaled from a
    measured circuit of the same shape (this project's runs, else the measurements shipped with
    zkml-dvc); times are fitted and corrected by this project's past runs. `run` refuses to start
    setup or prove whose predicted peak exceeds the available memory (exit 11; --force tries).

    \b
    Examples:
      zkml-dvc estimate --model digits
      zkml-dvc estimate --json
    """
    from ..estimate import estimate_model

    est, free, where = estimate_model(project(), model)
    if as_json:
        click.echo(json.dumps({**est.model_dump(), "available_memory": free,
                               "available_memory_source": where}, indent=2))
        return
    from rich.table import Table

    def mb(n: int) -> str:
        return f"{n / 1e6:,.1f} MB" if n < 1e9 else f"{n / 1e9:,.2f} GB"

    table = Table("estimate", "model " + est.model, title=f"logrows {est.logrows}, "
                  f"{est.num_rows:,} rows used")
    table.add_row("proving key", mb(est.pk_bytes))
    table.add_row("verification key", mb(est.vk_bytes))
    table.add_row("setup (keygen)", f"{est.setup_s:.1f} s, peak {mb(est.setup_peak_rss)}")
    table.add_row("prove", f"{est.prove_s:.1f} s, peak {mb(est.prove_peak_rss)}")
    table.add_row("memory available", f"{mb(free)} ({where})")
    console().print(table)
    fits = "fits" if est.peak_rss <= free else "does NOT fit: `run` will refuse (exit 11)"
    own = (f"times x{est.time_factor} and memory x{est.memory_factor} as this project's runs "
           "measured" if (est.time_factor, est.memory_factor) != (1.0, 1.0) else
           "times and memory as fitted (no run of this project to refine them yet)")
    click.echo(f"peak {mb(est.peak_rss)} {fits}; key sizes from {est.basis}; {own}")


@main.command()
@click.argument("run_a")
@click.argument("run_b")
def diff(run_a: str, run_b: str) -> None:
    """Compare two runs artifact by artifact, then metric by metric.

    Differences in proof bytes are expected randomness; a different vk, pk, settings or witness is
    a real change. The metrics table lists each metric of reports/metrics.json (proof cost, stage
    seconds, peak memory, output error) that differs, with the relative change.

    \b
    Example:
      zkml-dvc diff RUN_A RUN_B
    """
    from ..runs import diff as do_diff
    from ..runs import load_manifest

    root = project().root
    _, a = load_manifest(root, run_a)
    _, b = load_manifest(root, run_b)
    from rich.table import Table

    table = Table("artifact", "change", run_a, run_b)
    for c in do_diff(a, b):
        table.add_row(c.path, c.kind, (c.sha_a or "-")[:12], (c.sha_b or "-")[:12])
    console().print(table)
    from ..metrics import changes, of_run

    changed = changes(of_run(root, run_a), of_run(root, run_b))
    if changed:
        mt = Table("metric", run_a, run_b, "change")
        for name, va, vb in changed:
            delta = ""
            if isinstance(va, int | float) and isinstance(vb, int | float) and va:
                delta = f"{(vb - va) / abs(va):+.1%}"
            mt.add_row(name, "-" if va is None else str(va), "-" if vb is None else str(vb), delta)
        console().print(mt)


