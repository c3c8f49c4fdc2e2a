"""The `zkml-dvc` command line: parse, call one library function, render.

Exit codes (also in docs/errors.md):
  0 success            2 bad input or usage    3 proof invalid       4 integrity failure
  5 store error        6 configuration error   7 pipeline failure    8 not found
  1 internal error (a bug: please report it with the -v output)
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from . import env
from .errors import EXIT_INTERNAL, ZkmlError, exit_code_for

EPILOG = """\b
Exit codes: 0 ok, 2 bad input, 3 proof invalid, 4 integrity failure,
5 store error, 6 configuration error, 7 pipeline failure, 8 not found.
Docs: docs/ in the repository (errors.md lists every error and its fix)."""


class ZkmlGroup(click.Group):
    """Turns library errors into one line on stderr and a documented exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ZkmlError as exc:
            self._report(ctx, f"Error: {exc.one_line()}", exc)
            sys.exit(exit_code_for(exc))
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("Interrupted: nothing half-written was kept.", err=True)
            sys.exit(130)
        except Exception as exc:  # a bug: one line unless asked for the traceback
            self._report(ctx, f"Internal error: {type(exc).__name__}: {exc}", exc)
            sys.exit(EXIT_INTERNAL)

    @staticmethod
    def _report(ctx: click.Context, line: str, exc: BaseException) -> None:
        verbose = (ctx.obj or {}).get("verbose") or env.flag(env.TRACEBACK)
        if verbose:
            import traceback

            traceback.print_exception(exc)
        click.echo(line, err=True)


def _root() -> Path:
    from .layout import find_root

    return find_root()


def _console() -> Any:
    from rich.console import Console

    # Off a terminal rich assumes 80 columns and would cut artifact paths and hashes.
    return Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)


@click.group(cls=ZkmlGroup, epilog=EPILOG)
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks and DVC's own log.")
@click.version_option(package_name="zkml-dvc")
@click.pass_context
def main(ctx: click.Context, verbose: bool) -> None:
    """Reproducible, shareable, auditable ezkl proof pipelines on DVC and Akave O3.

    \b
    Quick start:
      zkml-dvc init myproj --model net.onnx --input input.json
      cd myproj && zkml-dvc store up && zkml-dvc run
      zkml-dvc verify RUN_ID
    """
    ctx.obj = {"verbose": verbose}
    env.apply_o3_client_env()
    if verbose:
        import logging

        logging.basicConfig(level=logging.INFO, stream=sys.stderr)


# ---- init / run / stage ----------------------------------------------------------------------
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
def init(directory: Path, model: Path, input_path: Path, calibration: Path | None,
         project: str | None, model_name: str, input_visibility: str, output_visibility: str,
         param_visibility: str, remote: str | None, endpoint: str | None, region: str | None,
         profile: str | None) -> None:
    """Create a project for any ONNX model ezkl supports.

    \b
    Example:
      zkml-dvc init myproj --model net.onnx --input input.json \\
        --remote s3://my-bucket/zkml --endpoint https://o3-rc2.akave.xyz
    """
    from .project import init as do_init
    from .remote import set_remote

    result = do_init(directory, model, input_path, calibration, project, model_name,
                     (input_visibility, output_visibility, param_visibility))
    if remote:
        set_remote(result.root, remote, endpoint=endpoint, region=region, profile=profile)
        if result.committed:
            import git

            repo = git.Repo(result.root)
            repo.git.add(".dvc/config", ".dvc/o3-aws.config")
            repo.git.commit("-m", f"zkml-dvc: remote o3 at {remote}")
    click.echo(f"Created project {result.project} in {result.root} (model {result.model}).")
    if not result.committed:
        click.echo("Not committed: git has no identity. Set one and commit the files.", err=True)
    click.echo(f"Next: cd {result.root} && zkml-dvc run", err=True)


@main.command()
@click.option("--model", help="Model name from params.yaml (default: default_model).")
@click.option("--run-id", help="Run id (default: a new time-sortable id).")
@click.option("--push/--no-push", "push", default=None,
              help="Push to the remote at the end (default: if a remote is configured).")
@click.option("--chunks", type=click.IntRange(1, 16),
              help="Chunked models: prove in N linked chunks (written to params.yaml).")
@click.option("--link", type=click.Choice(["polycommit", "hashed"]),
              help="Chunked models: how chunks are linked (written to params.yaml).")
@click.option("--ray-address", help="Chunked models: prove on this Ray cluster (host:port or "
              "auto; workers read inputs from the store). Default: a local Ray instance.")
def run(model: str | None, run_id: str | None, push: bool | None, chunks: int | None,
        link: str | None, ray_address: str | None) -> None:
    """Run the pipeline through DVC and record it as a run.

    Writes the manifest, commits dvc.lock and the manifest, tags the commit runs/<project>/<run_id>
    and pushes artifacts and the run index when a remote is configured. A model under `chunked:`
    in params.yaml is split into linked chunks whose proofs run in parallel on Ray.

    \b
    Examples:
      zkml-dvc run --model mlp --run-id baseline
      zkml-dvc run --model mlp-wide --chunks 4 --ray-address auto
    """
    from .runner import run as do_run

    def progress(msg: str) -> None:
        click.echo(msg, err=True)

    result = do_run(_root(), model, run_id, push, chunks=chunks, link=link,
                    ray_address=ray_address, progress=progress)
    m = result.manifest
    click.echo(f"run {m.run_id}: model {m.model}, {len(result.stages_ran)} of {len(m.stages)} "
               f"stages ran, proof verified; tag {result.tag}")
    if result.pushed is not None:
        p = result.pushed
        click.echo(f"pushed: {p.dvc_files_pushed} DVC objects, {p.uploaded_files} index files "
                   f"({p.uploaded_bytes} bytes), run index at {p.index_url}")


@main.command(hidden=False)
@click.argument("name")
@click.option("--model", required=True, help="Model name from params.yaml.")
@click.option("--chunk", type=int, help="Chunk index (per-chunk stages of chunked models).")
@click.pass_context
def stage(ctx: click.Context, name: str, model: str, chunk: int | None) -> None:
    """Run one pipeline stage (called by DVC from dvc.yaml).

    NAME is one of: settings, calibrate, compile, srs, setup, witness, prove, verify; for chunked
    models chunk_plan and chunk_verify (per model) and chunk_compile, chunk_setup, chunk_witness,
    chunk_prove (per chunk, with --chunk).

    \b
    Examples (what `dvc repro` runs):
      zkml-dvc stage prove --model mlp
      zkml-dvc stage chunk_prove --model mlp-wide --chunk 1
    """
    from .pipeline import record_stage_error
    from .stages import run_stage

    # ezkl prints reports on stdout; a stage's stdout is not a result, so send it to stderr.
    sys.stdout.flush()
    os.dup2(2, 1)
    root = _root()
    try:
        run_stage(root, name, model, chunk)
    except ZkmlError as exc:
        record_stage_error(root, exc.one_line())
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
    from .params import load_params, sync_chunk_stages

    root = _root()
    changed = sync_chunk_stages(root)
    n = len(load_params(root).chunk_stages)
    click.echo(f"chunk_stages: {n} chunk(s){' (updated)' if changed else ' (already current)'}")


# ---- runs / show / diff ----------------------------------------------------------------------
@main.command("runs")
@click.option("--project", help="Only this project's runs (required with --store).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--store", "store_url", help="List the runs in the store's index instead: "
              "s3://BUCKET/PREFIX (no clone needed).")
@click.option("--endpoint", help="S3 endpoint (with --store).")
def runs_cmd(project: str | None, as_json: bool, store_url: str | None,
             endpoint: str | None) -> None:
    """List runs (from the git tags runs/<project>/<run_id>, or from a store's run index).

    \b
    Examples:
      zkml-dvc runs --project zkml-demo
      zkml-dvc runs --store s3://zkml-dvc --project zkml-demo --endpoint URL
    """
    from .runs import list_runs

    if store_url:
        from .errors import InputError
        from .run_index import list_store_runs
        from .store import store_from_config

        if not project:
            raise InputError("--project is required with --store", "Pass --project PROJECT_ID.")
        ids = list_store_runs(store_from_config(store_url, endpoint), project)
        click.echo(json.dumps(ids) if as_json else "\n".join(ids))
        return

    refs = list_runs(_root(), project)
    if as_json:
        click.echo(json.dumps([{"run_id": r.run_id, "project": r.project, "model": r.model,
                                "commit": r.commit, "tag": r.tag, "date": r.date.isoformat()}
                               for r in refs], indent=2))
        return
    from rich.table import Table

    table = Table("run id", "project", "model", "commit", "date")
    for r in refs:
        table.add_row(r.run_id, r.project, r.model, r.commit[:10], r.date.strftime("%Y-%m-%d %H:%M:%S"))
    _console().print(table)


@main.command()
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest JSON.")
def show(run_id: str, as_json: bool) -> None:
    """Show one run's manifest.

    \b
    Example:
      zkml-dvc show 20261122-071500123-a1b2c3
    """
    from .runs import load_manifest

    ref, m = load_manifest(_root(), run_id)
    if as_json:
        click.echo(m.to_json(), nl=False)
        return
    from rich.table import Table

    con = _console()
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
@click.argument("run_a")
@click.argument("run_b")
def diff(run_a: str, run_b: str) -> None:
    """Compare two runs artifact by artifact.

    Differences in proof bytes are expected randomness; a different vk, pk, settings or witness is
    a real change.

    \b
    Example:
      zkml-dvc diff RUN_A RUN_B
    """
    from .runs import diff as do_diff
    from .runs import load_manifest

    root = _root()
    _, a = load_manifest(root, run_a)
    _, b = load_manifest(root, run_b)
    from rich.table import Table

    table = Table("artifact", "change", run_a, run_b)
    for c in do_diff(a, b):
        table.add_row(c.path, c.kind, (c.sha_a or "-")[:12], (c.sha_b or "-")[:12])
    _console().print(table)


# ---- store, remote, push, pull ---------------------------------------------------------------
@main.group()
def store() -> None:
    """The embedded local S3 store (SeaweedFS) that stands in for O3."""


def _state_dir(directory: Path | None) -> tuple[Path, Path | None]:
    from .errors import ConfigError
    from .layout import find_root
    from .localstore import default_state_dir

    try:
        root: Path | None = find_root()
    except ConfigError:
        root = None
    return (directory or default_state_dir(root)), root


_dir_option = click.option(
    "--dir", "directory", type=click.Path(path_type=Path),
    help="State directory (default: .dvc/tmp/store in a project, else in the user cache).")


@store.command("up")
@_dir_option
@click.option("--configure/--no-configure", default=True,
              help="Point the project's remote `o3` at it if none is set.")
def store_up(directory: Path | None, configure: bool) -> None:
    """Start the local store (idempotent); wait until its S3 API answers.

    \b
    Example:
      zkml-dvc store up && eval "$(zkml-dvc store env)"
    """
    from .localstore import credentials, up

    state_dir, root = _state_dir(directory)
    st = up(state_dir)
    click.echo(f"local store running at {st.endpoint}, bucket {st.bucket} (pid {st.pid})")
    if configure and root is not None:
        from .remote import set_remote
        from .store import remote_config

        existing = remote_config(root)
        if not existing or "127.0.0.1" in str(existing.get("endpointurl", "")) or \
                not existing.get("endpointurl"):
            creds = credentials(state_dir)
            set_remote(root, st.url, endpoint=st.endpoint, access_key_id=creds["access_key_id"],
                       secret_access_key=creds["secret_access_key"], endpoint_local=True)
            click.echo(f"remote o3 -> {st.url}/dvc (endpoint and credentials in .dvc/config.local)",
                       err=True)


@store.command("down")
@_dir_option
def store_down(directory: Path | None) -> None:
    """Stop the local store (SIGTERM, then SIGKILL after 10 s).

    \b
    Example:
      zkml-dvc store down
    """
    from .localstore import down

    state_dir, _ = _state_dir(directory)
    click.echo("stopped" if down(state_dir) else "not running")


@store.command("status")
@_dir_option
def store_status(directory: Path | None) -> None:
    """Say whether the local store runs, and where (exit 0 if it runs, 1 if not).

    \b
    Example:
      zkml-dvc store status
    """
    from .localstore import status

    state_dir, _ = _state_dir(directory)
    st = status(state_dir)
    if st is None:
        click.echo("not running")
        sys.exit(1)
    click.echo(f"running at {st.endpoint}, bucket {st.bucket}, pid {st.pid}")


@store.command("env")
@_dir_option
def store_env(directory: Path | None) -> None:
    """Print shell exports so DVC, boto3 and the aws CLI reach the local store.

    \b
    Example:
      eval "$(zkml-dvc store env)"; aws s3 ls s3://zkml-dvc --recursive
    """
    import shlex

    from .localstore import env_exports

    state_dir, _ = _state_dir(directory)
    for k, v in env_exports(state_dir).items():
        click.echo(f"export {k}={shlex.quote(v)}")


@store.command("ls")
@click.argument("prefix", default="")
def store_ls(prefix: str) -> None:
    """List the objects of the project's store (its remote `o3` root) under PREFIX.

    \b
    Example:
      zkml-dvc store ls projects/zkml-demo/runs
    """
    from .run_index import require_store

    st = require_store(_root())
    for obj in st.list(prefix):
        click.echo(f"{obj['Size']:>12}  {obj['Key']}")


@main.group()
def remote() -> None:
    """Configure the project's DVC remote `o3` (Akave O3 or any S3 endpoint)."""


@remote.command("set")
@click.argument("url")
@click.option("--endpoint", help="S3 endpoint URL, e.g. https://o3-rc2.akave.xyz.")
@click.option("--region", help="Region (default akave-network).")
@click.option("--profile", help="AWS profile holding the credentials.")
@click.option("--access-key-id", help="Stored in git-ignored .dvc/config.local.")
@click.option("--secret-access-key", help="Prompted for if --access-key-id is given without it; "
              "stored in .dvc/config.local (mode 0600).")
def remote_set(url: str, endpoint: str | None, region: str | None, profile: str | None,
               access_key_id: str | None, secret_access_key: str | None) -> None:
    """Point remote `o3` at URL (s3://BUCKET/PREFIX, the store root).

    \b
    Example:
      zkml-dvc remote set s3://my-bucket/zkml --endpoint https://o3-rc2.akave.xyz
    """
    from .remote import set_remote

    if access_key_id and not secret_access_key:
        secret_access_key = click.prompt("Secret access key", hide_input=True)
    dvc_url = set_remote(_root(), url, endpoint, region, profile, access_key_id, secret_access_key)
    click.echo(f"remote o3 -> {dvc_url}")


@remote.command("show")
def remote_show() -> None:
    """Show remote `o3` (secrets masked).

    \b
    Example:
      zkml-dvc remote show
    """
    from .store import remote_config

    conf = remote_config(_root()) or {}
    for k, v in sorted(conf.items()):
        shown = "****" if "secret" in k or "token" in k else v
        click.echo(f"{k} = {shown}")
    if not conf:
        click.echo("no remote o3 configured")


def _latest_run(root: Path) -> str:
    from .errors import NotFoundError
    from .params import load_params
    from .runs import list_runs

    refs = list_runs(root, load_params(root).project)
    if not refs:
        raise NotFoundError("this project has no runs yet", "Make one with `zkml-dvc run`.")
    return refs[-1].run_id


@main.command()
@click.argument("run_id", required=False)
def push(run_id: str | None) -> None:
    """Push a run (default: the latest): DVC objects the remote lacks, the SRS and the run index.

    \b
    Example:
      zkml-dvc push 20261122-071500123-a1b2c3
    """
    from .run_index import push_run

    root = _root()
    rep = push_run(root, run_id or _latest_run(root))
    click.echo(f"pushed run {rep.run_id}: {rep.dvc_files_pushed} DVC objects, {rep.uploaded_files} "
               f"index files ({rep.uploaded_bytes} bytes), {rep.skipped_files} already there; "
               f"run index at {rep.index_url}")
    for path in rep.repaired_objects:
        click.echo(f"repaired {path}: the store's copy was missing or truncated and was re-uploaded")


@main.command()
@click.argument("run_id")
@click.option("--for", "target", type=click.Choice(["verify", "prove", "all"]), default="verify",
              show_default=True, help="What to restore: the verification kit, what proving "
              "needs, or everything.")
def pull(run_id: str, target: str) -> None:
    """Restore a run's artifacts from the store, each checked against the manifest's sha256.

    \b
    Example:
      git checkout runs/zkml-demo/RUN_ID && zkml-dvc pull RUN_ID --for verify
    """
    from .cleanroom import pull as do_pull

    paths = do_pull(_root(), run_id, target)  # type: ignore[arg-type]
    click.echo(f"pulled {len(paths)} files of run {run_id} (--for {target}), sha256 checked")


@main.command()
@click.argument("run_id")
@click.option("--store", "store_url", help="Verify from the store alone: s3://BUCKET/PREFIX.")
@click.option("--project", help="Project id (required with --store).")
@click.option("--endpoint", help="S3 endpoint (with --store).")
@click.option("--region", help="Region (with --store).")
@click.option("--profile", help="AWS profile (with --store).")
@click.option("--manifest-sha256", help="Trust only a manifest with this sha256 (with --store).")
@click.option("--report", type=click.Path(path_type=Path), help="Where to write the report JSON.")
def verify(run_id: str, store_url: str | None, project: str | None, endpoint: str | None,
           region: str | None, profile: str | None, manifest_sha256: str | None,
           report: Path | None) -> None:
    """Verify a run's proof in a clean room, from store artifacts alone.

    Prints the verdict line first, then each check (for a chunked run: every chunk proof, every
    link, the claimed input) and the proven output. Exit 0 if the proof is valid, 3 if it is
    not, 4 on an integrity failure.

    \b
    Examples:
      zkml-dvc verify RUN_ID                      # in a clone holding the run's tag
      zkml-dvc verify RUN_ID --store s3://zkml-dvc --project zkml-demo --endpoint URL
    """
    from .cleanroom import verify as do_verify

    root = None
    st = None
    if store_url:
        from .store import store_from_config

        st = store_from_config(store_url, endpoint, region, profile)
        report = report or Path(f"verify-{run_id}.json")
    else:
        root = _root()
        report = report or root / ".dvc" / "tmp" / "zkml-dvc" / f"verify-{run_id}.json"
    from .errors import IntegrityError, ProofInvalidError

    report.unlink(missing_ok=True)  # a failure must never show an older report's checks
    try:
        rep = do_verify(run_id, root=root, store=st, project=project,
                        manifest_sha256=manifest_sha256, report_path=report)
    except (ProofInvalidError, IntegrityError) as exc:
        verdict = "INVALID" if isinstance(exc, ProofInvalidError) else "INTEGRITY FAILURE"
        click.echo(f"{verdict}: run {run_id}: {exc.message}")  # the verdict line on stdout
        if report.exists():
            _echo_checks(json.loads(report.read_text()).get("checks", []))
        raise
    click.echo(f"VALID: run {rep.run_id} ({rep.model}) verified in a clean room from "
               f"{rep.files_downloaded} files, {rep.bytes_downloaded} bytes; report {report}")
    _echo_checks([c.model_dump() for c in rep.checks])
    if rep.output:
        click.echo(f"  output: {rep.output}")


def _echo_checks(checks: list[dict[str, Any]]) -> None:
    for c in checks:
        click.echo(f"  {'ok  ' if c.get('ok') else 'FAIL'} {c.get('name')}: {c.get('detail', '')}")


@main.command()
@click.argument("run_id")
@click.option("--from", "from_stage", default="witness", show_default=True,
              help="First stage to run again.")
@click.option("--input", "new_input", type=click.Path(path_type=Path),
              help="Prove this new input with the run's keys.")
@click.option("--run-id", "new_run_id", help="Id of the new run.")
@click.option("--push/--no-push", "push", default=None)
def resume(run_id: str, from_stage: str, new_input: Path | None, new_run_id: str | None,
           push: bool | None) -> None:
    """Continue a run from STAGE, restoring earlier outputs from the store (no keygen).

    \b
    Example:
      zkml-dvc resume RUN_ID --from witness --input new_input.json
    """
    from .cleanroom import resume as do_resume

    result = do_resume(_root(), run_id, from_stage, new_input, new_run_id, push)
    m = result.manifest
    ran = ", ".join(result.stages_ran) or "none"
    click.echo(f"run {m.run_id} (parent {run_id}): stages run: {ran}; tag {result.tag}")


@main.command()
@click.argument("run_id")
def audit(run_id: str) -> None:
    """Re-derive settings, circuit and vk from the run's model, params and SRS; compare hashes.

    \b
    Example:
      zkml-dvc audit RUN_ID
    """
    from .cleanroom import audit as do_audit
    from .errors import IntegrityError

    rep = do_audit(_root(), run_id)
    for c in rep.checks:
        click.echo(f"{'MATCH' if c.ok else 'MISMATCH'} {c.name}: {c.detail}")
    if not rep.ok:
        raise IntegrityError(f"audit of run {run_id}", "recorded", "re-derived",
                             "The run's vk does not come from the model and params it claims.")
    click.echo(f"audit of run {run_id}: the vk is bound to the claimed model")


@main.command()
def schema() -> None:
    """Print the run manifest's JSON Schema (docs/manifest.schema.json is generated from it).

    \b
    Example:
      zkml-dvc schema > docs/manifest.schema.json
    """
    from .manifest import json_schema

    click.echo(json.dumps(json_schema(), indent=2))


if __name__ == "__main__":
    main()
