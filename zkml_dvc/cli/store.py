"""`zkml-dvc store ...`, `remote ...`, `push`, `pull`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .base import latest_run, main, project, root, warn_about_clone


@main.group()
def store() -> None:
    """The embedded local S3 store (SeaweedFS) that stands in for O3."""


def _state_dir(directory: Path | None) -> tuple[Path, Path | None]:
    from ..errors import ConfigError
    from ..layout import find_root
    from ..localstore import default_state_dir

    try:
        root: Path | None = find_root()
    except ConfigError:
        root = None
    return (directory or default_state_dir()), root


_dir_option = click.option(
    "--dir", "directory", type=click.Path(path_type=Path),
    help="State directory (default: one store per user, $ZKML_DVC_STORE_DIR or "
         "~/.local/share/zkml-dvc/store, shared by every project).")


@store.command("up")
@_dir_option
@click.option("--configure/--no-configure", default=True,
              help="Point the project's remote `o3` at it if none is set.")
@click.option("--http", "plain_http", is_flag=True,
              help="Serve plain HTTP instead of HTTPS (loopback only; O3 itself is HTTPS).")
def store_up(directory: Path | None, configure: bool, plain_http: bool) -> None:
    """Start the machine's local store (idempotent); wait until its S3 API answers.

    One store per user serves every project: in a project without a remote, `up` points the
    project's remote `o3` at its own root, s3://zkml-dvc/<project>. `store down` stops it for all.

    It serves S3 over HTTPS on 127.0.0.1 with a certificate from its own CA (created once in the
    store's directory); `store env` exports the CA as AWS_CA_BUNDLE, and the project's remote
    gets it as `ssl_verify` in .dvc/config.local.

    \b
    Example:
      zkml-dvc store up && eval "$(zkml-dvc store env)"
    """
    from ..localstore import credentials, project_root_url, up

    state_dir, root = _state_dir(directory)
    st = up(state_dir, https=not plain_http)
    click.echo(f"local store running at {st.endpoint}, bucket {st.bucket} (pid {st.pid}, "
               f"state in {state_dir})")
    if st.ca_bundle:
        click.echo(f"its CA certificate: {st.ca_bundle}", err=True)
    if configure and root is not None:
        from ..params import load_params
        from ..remote import remote_config, set_remote

        existing = remote_config(root)
        if not existing or "127.0.0.1" in str(existing.get("endpointurl", "")) or \
                not existing.get("endpointurl"):
            creds = credentials(state_dir)
            url = project_root_url(load_params(root).project)
            set_remote(root, url, endpoint=st.endpoint, access_key_id=creds["access_key_id"],
                       secret_access_key=creds["secret_access_key"], endpoint_local=True,
                       ca_bundle=st.ca_bundle or None)
            click.echo(f"remote o3 -> {url}/dvc (endpoint and credentials in .dvc/config.local)",
                       err=True)


@store.command("down")
@_dir_option
def store_down(directory: Path | None) -> None:
    """Stop the local store (SIGTERM, then SIGKILL after 10 s).

    \b
    Example:
      zkml-dvc store down
    """
    from ..localstore import down

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
    from ..localstore import status

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

    from ..localstore import env_exports

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
    st = project().require_store()
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
@click.option("--access-key-id", help="Stored in git-ignored .dvc/config.local; the secret key "
              "is then asked for (hidden) or read from standard input, never from the command "
              "line.")
def remote_set(url: str, endpoint: str | None, region: str | None, profile: str | None,
               access_key_id: str | None) -> None:
    """Point remote `o3` at URL (s3://BUCKET/PREFIX, the store root).

    With --access-key-id, the secret access key is prompted for (or read from stdin when it is
    not a terminal), so it never appears in process listings or shell history; both go to
    git-ignored .dvc/config.local, created with mode 0600 before anything is written to it.

    \b
    Examples:
      zkml-dvc remote set s3://my-bucket/zkml --endpoint https://o3-rc2.akave.xyz
      pass show o3/secret | zkml-dvc remote set s3://my-bucket/zkml --access-key-id AKID...
    """
    from ..remote import set_remote

    secret_access_key = None
    if access_key_id:
        secret_access_key = click.prompt("Secret access key", hide_input=True, err=True)
    dvc_url = set_remote(root(), url, endpoint, region, profile, access_key_id, secret_access_key)
    click.echo(f"remote o3 -> {dvc_url}")


@remote.command("show")
def remote_show() -> None:
    """Show remote `o3` (secrets masked).

    \b
    Example:
      zkml-dvc remote show
    """
    from ..remote import remote_config

    conf = remote_config(root()) or {}
    for k, v in sorted(conf.items()):
        shown = "****" if "secret" in k or "token" in k else v
        click.echo(f"{k} = {shown}")
    if not conf:
        click.echo("no remote o3 configured")


@main.command()
@click.argument("run_id", required=False)
@click.option("--report", "with_report", is_flag=True,
              help="Also publish the project's run page (`zkml-dvc report`, with each run's "
                   "last saved verdict) to projects/<project>/report/index.html.")
def push(run_id: str | None, with_report: bool) -> None:
    """Push a run (default: the latest): DVC objects the remote lacks, the SRS and the run index.

    \b
    Example:
      zkml-dvc push 20261122-071500123-a1b2c3
      zkml-dvc push --report
    """
    from ..run_index import push_run

    proj = project()
    rep = push_run(proj, run_id or latest_run(proj))
    click.echo(f"pushed run {rep.run_id}: {rep.dvc_files_pushed} DVC objects, {rep.uploaded_files} "
               f"index files ({rep.uploaded_bytes} bytes), {rep.skipped_files} already there; "
               f"run index at {rep.index_url}")
    for path in rep.repaired_objects:
        click.echo(f"repaired {path}: the store's copy was missing or truncated and was re-uploaded")
    if with_report:
        from ..report import build, publish, render

        page = build(proj, verify=False)
        click.echo(f"published the run page ({len(page.runs)} runs): "
                   f"{publish(proj.require_store(), page.project, render(page))}")


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
    from ..pull import pull as do_pull

    proj = project()
    warn_about_clone(proj)
    result = do_pull(proj, run_id, target)  # type: ignore[arg-type]
    click.echo(f"pulled {len(result.paths)} files of run {run_id} (--for {target}), sha256 checked")
