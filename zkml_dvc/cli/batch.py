"""`zkml-dvc prove-batch`."""

from __future__ import annotations

from pathlib import Path

import click

from .base import main, project


@main.command("prove-batch")
@click.argument("run_id")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--batch", "batch_id", help="Batch id (default: derived from the inputs, so the same "
              "inputs resume the same batch).")
@click.option("--ray-address", help="Prove on this Ray cluster (host:port or auto; workers read "
              "the run's keys from the store). Default: a local Ray instance.")
def prove_batch(run_id: str, inputs: tuple[Path, ...], batch_id: str | None,
                ray_address: str | None) -> None:
    """Prove many INPUTS with run RUN_ID's keys (no keygen), in parallel on Ray.

    Each Ray worker fetches the run's compiled circuit, pk, vk and SRS once (checked by sha256)
    and proves input after input. Every input and proof is stored under the run with a batch
    manifest (input sha256, proof sha256, the output decoded from the proof's instances), which is
    rewritten after every proof. A failed input is reported and the rest complete (exit 7 if any
    failed); running the same command again proves only what has no proof yet. Check the batch
    with `zkml-dvc verify RUN_ID --batch ID --batch-sha256 SHA` (both printed at the end).

    \b
    Examples:
      zkml-dvc prove-batch baseline inputs/*.json
      zkml-dvc prove-batch baseline inputs/*.json --batch nightly --ray-address auto
    """
    from ..batch import prove_batch as do_prove_batch
    from ..errors import PipelineError

    def progress(msg: str) -> None:
        click.echo(msg, err=True)

    res = do_prove_batch(project(), run_id, list(inputs), batch_id, ray_address, progress)
    b = res.batch
    for e in sorted(b.entries, key=lambda e: e.input_name):
        shown = e.output if e.status == "proved" else e.error
        click.echo(f"  {e.status:<7} {e.input_name} ({e.input_sha256[:12]}) {shown}")
    click.echo(f"batch {b.batch_id} of run {run_id}: {len(res.proved_now)} proved now, "
               f"{len(res.already)} already proved, {len(res.failed)} failed; "
               f"batch.json sha256 {res.batch_sha256}; local copy {res.local_dir}")
    for i, sources in enumerate(res.worker_sources):
        click.echo(f"  worker {i}: files from {', '.join(f'{k} {v}' for k, v in sources.items())}",
                   err=True)
    click.echo(f"verify: zkml-dvc verify {run_id} --batch {b.batch_id} "
               f"--batch-sha256 {res.batch_sha256}")
    if res.failed:
        total = len(res.failed) + len(res.proved_now) + len(res.already)
        raise PipelineError(f"{len(res.failed)} of {total} inputs of batch {b.batch_id} failed "
                            "(listed above)",
                            "Fix those inputs (or the cause shown) and run the same command again: "
                            "inputs already proved are not redone.")
