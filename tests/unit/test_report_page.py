"""The run page's rendering (pure: no runs, no browser; tests/integration/test_report.py opens a
real page in Chromium)."""

from __future__ import annotations

from zkml_dvc.report import Page, RunView, _human_size, render


def view(**overrides: object) -> RunView:
    fields: dict[str, object] = dict(
        run_id="r1", tag="runs/p/r1", model="mlp", started="2026-11-28 12:00:00 UTC",
        duration_s=3.0, verdict="invalid", verdict_class="bad", verdict_basis="verified now",
        reason="", claims=[], output=[], artifacts=[], timeline_svg="", cached=[], link=None,
        chunks=[], metrics={})
    fields.update(overrides)
    return RunView(**fields)  # type: ignore[arg-type]


def test_text_from_a_run_is_escaped_never_markup() -> None:
    """A verdict's reason or a claim's basis can quote what a store or producer wrote."""
    evil = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    page = Page(project="p", generated="now", tool_version="0", runs=[view(
        reason=evil, claims=[{"name": "proof", "status": "failed", "basis": evil, "class": "bad"}],
        artifacts=[{"path": evil, "category": "keys", "size": 1, "sha256": "a" * 64,
                    "stage": "setup@mlp"}])])
    html = render(page)
    assert "<script" not in html and "<img" not in html
    # the reason, the basis (in the claims table and the badge's title) and the artifact path
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 4


def test_sizes_read_as_people_write_them() -> None:
    assert [_human_size(n) for n in (999, 66_823, 138_479_371, 4_430_000_000)] == \
        ["999 B", "66.8 KB", "138.5 MB", "4.4 GB"]
