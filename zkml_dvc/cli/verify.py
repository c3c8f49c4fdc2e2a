"""`zkml-dvc verify`, `resume`, `audit`, `schema`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .base import main, project, warn_about_clone

if TYPE_CHECKING:
    from ..records import Check


_VERDICT_LINES = {"valid": "VALID", "invalid": "INVALID", "integrity-failure": "INTEGRITY FAILURE",
                  "unauthenticated": "UNAUTHENTICATED", "untrusted-srs": "UNTRUSTED SRS"}


@main.command()
@click.argument("run_id")
@click.option("--store", "store_url", help="Verify from the store alone: s3://BUCKET/PREFIX.")
@click.option("--project", "project_id", help="Project id (required with --store).")
@click.option("--endpoint", help="S3 endpoint (with --store).")
@click.option("--region", help="Region (with --store).")
@click.option("--profile", help="AWS profile (with --store).")
@click.option("--manifest-sha256", help="Trust only a manifest with this sha256 (with --store).")
@click.option("--allowed-signers", type=click.Path(path_type=Path),
              help="OpenSSH allowed-signers file: require a signature from one of its keys "
                   "(the run tag in a clone, the manifest's signature with --store).")
@click.option("--trust-store", is_flag=True,
              help="With --store and no pin or signature: take the store's manifest on trust "
                   "(the verdict says so).")
@click.option("--allow-untrusted-srs", is_flag=True,
              help="Accept an SRS that is not ezkl's public ceremony SRS (e.g. a local test SRS); "
                   "the verdict still says UNTRUSTED SRS.")
@click.option("--evm", is_flag=True,
              help="Also check the run's Solidity verifier (a run made with `evm: true`): it must "
                   "be ezkl's verifier for the vk and accept the run's calldata in a local EVM.")
@click.option("--batch", "batch_id", help="Verify batch ID of the run (`prove-batch`): every proof "
              "in it, instead of the run's own proof.")
@click.option("--batch-sha256", help="With --batch: trust only a batch manifest with this sha256 "
              "(prove-batch prints it); without it the list of inputs is the store's word.")
@click.option("--report", type=click.Path(path_type=Path), help="Where to write the report JSON.")
def verify(run_id: str, store_url: str | None, project_id: str | None, endpoint: str | None,
           region: str | None, profile: str | None, manifest_sha256: str | None,
           allowed_signers: Path | None, trust_store: bool, allow_untrusted_srs: bool,
           evm: bool, batch_id: str | None, batch_sha256: str | None, report: Path | None) -> None:
    """Verify a run's proof in a clean room, from store artifacts alone.

    Prints the verdict line first, then what was established and by what (proof, manifest, SRS,
    input, output; with --evm the EVM verifier's verdict beside ezkl's), then each check. The
    output is decoded from the proof's instances. Exit 0 VALID, 3 INVALID, 4 INTEGRITY FAILURE,
    9 UNTRUSTED SRS, 10 UNAUTHENTICATED (docs/security.md). With --batch: every proof of the
    batch, each with its input bound and its output decoded through its instances.

    \b
    Examples:
      zkml-dvc verify RUN_ID                      # in a clone holding the run's tag
      zkml-dvc verify RUN_ID --evm                # and its Solidity verifier in a local EVM
      zkml-dvc verify RUN_ID --allowed-signers ~/.config/zkml-dvc/allowed_signers
      zkml-dvc verify RUN_ID --store s3://zkml-dvc --project zkml-demo --endpoint URL \\
          --manifest-sha256 SHA256
      zkml-dvc verify RUN_ID --batch ID --batch-sha256 SHA256
    """
    from ..verifier import Options
    from ..verifier import verify as do_verify

    if batch_sha256 and not batch_id:
        raise click.UsageError("--batch-sha256 needs --batch")
    if batch_id and evm:
        raise click.UsageError("--evm checks the run's own proof: verify it without --batch")
    proj = None
    st = None
    name = f"verify-{run_id}" + (f"-batch-{batch_id}" if batch_id else "") + ".json"
    if store_url:
        from ..remote import store_from_config

        st = store_from_config(store_url, endpoint, region, profile)
        report = report or Path(name)
    else:
        proj = project()
        warn_about_clone(proj)
        report = report or proj.root / ".dvc" / "tmp" / "zkml-dvc" / name
    opts = Options(manifest_sha256=manifest_sha256, allowed_signers=allowed_signers,
                   trust_store=trust_store, allow_untrusted_srs=allow_untrusted_srs, evm=evm)
    if batch_id:
        from ..batch_verify import verify_batch

        brep = verify_batch(run_id, batch_id, project=proj, store=st, project_id=project_id,
                            options=opts, batch_sha256=batch_sha256, report_path=report)
        line = _VERDICT_LINES[brep.verdict]
        if brep.verdict == "valid":
            line += "" if brep.srs_trusted else " (UNTRUSTED SRS)"
            skipped = f"; {brep.not_proved} inputs have no proof" if brep.not_proved else ""
            click.echo(f"{line}: batch {batch_id} of run {run_id} ({brep.model}): "
                       f"{brep.proofs_verified} of {brep.proofs_listed} proofs verified in a clean "
                       f"room{skipped}; report {report}")
        else:
            click.echo(f"{line}: batch {batch_id} of run {run_id}: {brep.reason}")
        for claim in brep.claims:
            click.echo(f"  {claim.name:<8} {claim.status.upper():<12} {claim.basis}")
        _echo_checks(brep.checks)
        for item in brep.items:
            shown = f"output {item.output}; {item.detail}" if item.status == "valid" else item.detail
            click.echo(f"  {item.status.upper():<17} {item.input_name} ({item.input_sha256[:12]}) "
                       f"{shown}")
        _raise_for(brep.verdict, f"batch {batch_id} of run {run_id}: {brep.reason}")
        return
    rep = do_verify(run_id, project=proj, store=st, project_id=project_id, options=opts,
                    report_path=report)
    line = _VERDICT_LINES[rep.verdict]
    if rep.verdict == "valid":
        if not rep.srs_trusted:
            line += " (UNTRUSTED SRS)"
        click.echo(f"{line}: run {rep.run_id} ({rep.model}) verified in a clean room from "
                   f"{rep.files_downloaded} files, {rep.bytes_downloaded} bytes; report {report}")
    else:
        click.echo(f"{line}: run {run_id}: {rep.reason}")  # the verdict line on stdout
    for claim in rep.claims:
        click.echo(f"  {claim.name:<8} {claim.status.upper():<12} {claim.basis}")
    _echo_checks(rep.checks)
    if rep.verdict == "valid" and rep.output:
        click.echo(f"  output: {rep.output}")
    _raise_for(rep.verdict, f"run {run_id}: {rep.reason}")


def _raise_for(verdict: str, what: str) -> None:
    """A verdict other than VALID ends the command with its error (and exit code)."""
    from ..errors import (
        IntegrityError,
        ProofInvalidError,
        UnauthenticatedError,
        UntrustedSrsError,
    )

    errors = {"invalid": ProofInvalidError, "integrity-failure": IntegrityError,
              "untrusted-srs": UntrustedSrsError, "unauthenticated": UnauthenticatedError}
    remedies = {
        "invalid": "The proof, vk, settings, SRS or claimed input in the store were altered or do "
                   "not belong together.",
        "integrity-failure": "",
        "untrusted-srs": "Verify with a run proved on ezkl's public SRS (`srs: {source: public}`), "
                         "or pass --allow-untrusted-srs if you made the SRS yourself.",
        "unauthenticated": "Pin the manifest (--manifest-sha256), require a signature "
                           "(--allowed-signers), or pass --trust-store to accept the store's word.",
    }
    if verdict in errors:
        raise errors[verdict](what, remedies[verdict])


def _echo_checks(checks: list[Check]) -> None:
    for c in checks:
        click.echo(f"  {'ok  ' if c.ok else 'FAIL'} {c.name}: {c.detail}")


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
    from ..resume import resume as do_resume

    result = do_resume(project(), run_id, from_stage, new_input, new_run_id, push)
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
    from ..audit import audit as do_audit
    from ..errors import IntegrityError

    rep = do_audit(project(), run_id)
    for c in rep.checks:
        click.echo(f"{'MATCH' if c.ok else 'MISMATCH'} {c.name}: {c.detail}")
    if not rep.ok:
        failed = ", ".join(c.name for c in rep.checks if not c.ok)
        raise IntegrityError(f"audit of run {run_id}: the re-derived {failed} does not match the "
                             "recorded one",
                             "The run's vk does not come from the model and params it claims.")
    click.echo(f"audit of run {run_id}: the vk is bound to the claimed model")



@main.command()
def schema() -> None:
    """Print the run manifest's JSON Schema (docs/manifest.schema.json is generated from it).

    \b
    Example:
      zkml-dvc schema > docs/manifest.schema.json
    """
    from ..manifest import json_schema

    click.echo(json.dumps(json_schema(), indent=2))


if __name__ == "__main__":
    main()


@main.command()
@click.argument("run_ids", nargs=-1)
@click.option("-o", "--output", "out_dir", type=click.Path(path_type=Path, file_okay=False),
              default=Path("report"), show_default=True, help="Directory to write index.html into.")
@click.option("--verify/--no-verify", default=True, show_default=True,
              help="Verify each run in a clean room now (needs the store), or show the verdict the "
                   "verifier last saved for it.")
@click.option("--diff", "diff_runs", nargs=2, help="The two runs to compare (default: the last two).")
@click.option("--publish", is_flag=True,
              help="Also upload the page to the store (projects/<project>/report/index.html).")
def report(run_ids: tuple[str, ...], out_dir: Path, verify: bool,
           diff_runs: tuple[str, str] | None, publish: bool) -> None:
    """Write a static page of the project's runs (default: all): each run's verdict and what it
    established, stage timeline, artifacts with sizes and sha256, the chunk graph of chunked runs,
    metrics charts across runs, and the difference between two runs.

    One self-contained HTML file (charts are Vega-Lite rendered to SVG; no script, nothing fetched):
    open it from disk, or publish it into the store for anyone with read access.

    \b
    Examples:
      zkml-dvc report -o report && xdg-open report/index.html
      zkml-dvc report r1 r2 --diff r1 r2 --no-verify
      zkml-dvc report --publish
    """
    from ..report import build, write
    from ..report import publish as do_publish

    proj = project()
    page = build(proj, list(run_ids) or None, verify=verify, diff=diff_runs)
    path = write(page, out_dir)
    verdicts = ", ".join(f"{r.run_id} {r.verdict}" for r in page.runs)
    click.echo(f"wrote {path} ({len(page.runs)} runs: {verdicts})")
    if publish:
        url = do_publish(proj.require_store(), page.project, path.read_text())
        click.echo(f"published {url}")
