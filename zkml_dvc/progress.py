"""Progress display for long transfers (rich bars) and long ezkl steps (an elapsed-time line): on a
terminal only, nothing on a pipe or when ``ZKML_DVC_NO_PROGRESS`` is set; on stderr (stdout is for
results)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

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


@contextlib.contextmanager
def elapsed_line(label: str, after_s: float = 2.0) -> Iterator[None]:
    """A live ``label: N s`` line on stderr while a long step runs (shown once it has run
    ``after_s``), on a terminal only and unless ZKML_DVC_NO_PROGRESS; it erases itself."""
    import sys
    import threading
    import time

    if env.flag(env.NO_PROGRESS) or not sys.stderr.isatty():
        yield
        return
    done = threading.Event()
    start = time.monotonic()

    def tick() -> None:
        shown = False
        while not done.wait(0.5):
            elapsed = time.monotonic() - start
            if elapsed >= after_s:
                sys.stderr.write(f"\r\x1b[2K{label}: {elapsed:.0f} s elapsed")
                sys.stderr.flush()
                shown = True
        if shown:
            sys.stderr.write("\r\x1b[2K")
            sys.stderr.flush()

    thread = threading.Thread(target=tick, name="zkml-dvc-elapsed", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
