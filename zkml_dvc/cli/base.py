"""The `zkml-dvc` command line: parse, call one library function, render.

The commands live in cli/pipeline.py, cli/store.py, cli/verify.py and cli/batch.py; this module
holds the group, the error handling and the helpers they share.

Exit codes (also in docs/errors.md):
  0 success            2 bad input or usage    3 proof invalid       4 integrity failure
  5 store error        6 configuration error   7 pipeline failure    8 not found
  9 untrusted SRS      10 unauthenticated manifest   11 not enough memory (the estimate)
  1 internal error (a bug: please report it with the -v output)
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .. import env
from ..errors import EXIT_INTERNAL, ZkmlError, exit_code_for

if TYPE_CHECKING:
    from ..project import Project

EPILOG = """\b
Exit codes: 0 ok, 2 bad input, 3 proof invalid, 4 integrity failure,
5 store error, 6 configuration error, 7 pipeline failure, 8 not found,
9 untrusted SRS, 10 unauthenticated manifest, 11 not enough memory.
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


def root() -> Path:
    from ..layout import find_root

    return find_root()


def project() -> Project:
    """The project handle for this command (the project containing the working directory),
    closed when the command ends."""
    from ..project import Project

    proj = Project.find()
    click.get_current_context().call_on_close(proj.close)
    return proj


def latest_run(proj: Project) -> str:
    from ..errors import NotFoundError
    from ..runs import list_runs

    refs = list_runs(proj.root, proj.params.project)
    if not refs:
        raise NotFoundError("this project has no runs yet", "Make one with `zkml-dvc run`.")
    return refs[-1].run_id


def warn_about_clone(proj: Project) -> None:
    """Say, before anything can fail, what the clone's tracked config sets that zkml-dvc ignores."""
    from ..remote import clone_config_warnings

    for warning in clone_config_warnings(proj.root):
        click.echo(f"Warning: {warning}", err=True)


def console() -> Any:
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
    from ..pipeline import set_verbose

    set_verbose(verbose)
    if verbose:
        import logging

        logging.basicConfig(level=logging.INFO, stream=sys.stderr)


