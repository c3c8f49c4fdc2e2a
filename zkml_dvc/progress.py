"""Progress display for long transfers: rich bars on a terminal, nothing on a pipe or when
``ZKML_DVC_NO_PROGRESS`` is set; they go to stderr (stdout is for results)."""

from __future__ import annotations

from collections.abc import Callable

from . import env


def transfer_bar(total: int, label: str) -> tuple[Callable[[int], None] | None, Callable[[], None]]:
    """A rich progress bar for transfers over 8 MB on a TTY, unless ZKML_DVC_NO_PROGRESS."""
    import sys

    if total < 8 * 1024 * 1024 or env.flag(env.NO_PROGRESS) or not sys.stderr.isatty():
        return None, lambda: None
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    bar = Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                   TransferSpeedColumn(), transient=True)
    task = bar.add_task(label, total=total)
    bar.start()
    return (lambda n: bar.advance(task, n)), bar.stop
