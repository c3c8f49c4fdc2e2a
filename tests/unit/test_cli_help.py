from pathlib import Path

import click
from click.testing import CliRunner

from zkml_dvc.cli import main

REPO = Path(__file__).resolve().parents[2]


def _commands(group: click.Group, prefix: str = ""):
    for name, cmd in group.commands.items():
        full = f"{prefix}{name}"
        yield full, cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, full + " ")


def test_every_command_has_help_and_is_documented():
    doc = (REPO / "docs" / "cli.md").read_text()
    runner = CliRunner()
    for full, cmd in _commands(main):
        res = runner.invoke(main, [*full.split(), "--help"])
        assert res.exit_code == 0, full
        assert (cmd.help or "").strip(), f"`zkml-dvc {full}` has no help"
        if not isinstance(cmd, click.Group):
            assert "Example" in (cmd.help or ""), f"`zkml-dvc {full}` --help has no example"
        assert f"zkml-dvc {full}" in doc, f"`zkml-dvc {full}` is not in docs/cli.md"


def test_errors_are_one_line_without_traceback(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(main, ["runs"])
    assert res.exit_code == 6
    assert "Traceback" not in res.output
    assert "not inside a zkml-dvc project" in res.output


def test_console_script_flushes_its_output_and_keeps_the_exit_code(tmp_path):
    """The installed `zkml-dvc` ends without Python's teardown (cli/entry.py): all its output
    still arrives through a pipe, atexit handlers still run, and its exit code is the command's."""
    import subprocess
    import sys

    exe = Path(sys.executable).parent / "zkml-dvc"
    helps = subprocess.run([str(exe), "--help"], capture_output=True, text=True)
    assert helps.returncode == 0
    assert all(f"  {name} " in helps.stdout for name in main.commands)  # to the last line:
    assert helps.stdout.rstrip().endswith("(errors.md lists every error and its fix).")
    runs = subprocess.run([str(exe), "runs"], capture_output=True, text=True, cwd=tmp_path)
    assert runs.returncode == 6 and "not inside a zkml-dvc project" in runs.stderr
    bad = subprocess.run([str(exe), "no-such-command"], capture_output=True, text=True)
    assert bad.returncode == 2 and "No such command" in bad.stderr
    marker = tmp_path / "atexit-ran"
    code = ("import atexit, sys; from zkml_dvc.cli.entry import run; "
            f"atexit.register(lambda: open({str(marker)!r}, 'w').write('x')); "
            "sys.argv = ['zkml-dvc', '--version']; run()")
    ver = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert ver.returncode == 0 and "version" in ver.stdout and marker.read_text() == "x"
