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
