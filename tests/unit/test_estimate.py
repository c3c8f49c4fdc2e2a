"""The cost estimate's pure logic: features of settings, scaling by shape, the fallback fit."""

from __future__ import annotations

import pytest

from zkml_dvc import estimate
from zkml_dvc.errors import InsufficientMemoryError


def settings(logrows: int, lookups: int = 0, range_checks: int = 2, cols: int = 2,
             rows: int = 1000) -> dict[str, object]:
    return {"run_args": {"logrows": logrows, "num_inner_cols": cols, "input_visibility": "Public",
                         "output_visibility": "Public", "param_visibility": "Fixed"},
            "num_rows": rows, "total_assignments": 2 * rows, "total_const_size": 10,
            "required_lookups": [{"Op": {"n": i}} for i in range(lookups)],
            "required_range_checks": [[0, i] for i in range(range_checks)]}


def row(model: str, logrows: int, pk_per_row: float, *, lookups: int = 0, source: str = "shipped",
        setup_s: float = 1.0, prove_s: float = 2.0) -> estimate.Measurement:
    pk = int(pk_per_row * 2 ** logrows)
    return estimate.Measurement(model=model, settings=settings(logrows, lookups), pk_bytes=pk,
                                vk_bytes=1000 + lookups, setup_s=setup_s * pk / 1e8,
                                prove_s=prove_s * pk / 1e8, setup_peak_rss=2 * pk + 10**8,
                                prove_peak_rss=3 * pk, source=source)


def test_features_read_the_settings() -> None:
    f = estimate.features(settings(16, lookups=1, range_checks=3, cols=4, rows=70000))
    assert f["logrows"] == 16 and f["lookups"] == 1 and f["range_checks"] == 3
    assert f["num_inner_cols"] == 4 and f["column_blocks"] == 2  # 70000 rows > 2**16


def test_a_measured_shape_scales_with_two_to_the_logrows() -> None:
    rows = [row("small", 15, 4227.0), row("lookup", 15, 9000.0, lookups=1)]
    est = estimate.predict("big", settings(18), rows)
    assert est.pk_bytes == int(4227.0 * 2 ** 18)
    assert "same shape (small, shipped)" in est.basis
    assert est.setup_peak_rss > est.pk_bytes  # fitted: 2 x pk + 100 MB
    assert est.prove_peak_rss == pytest.approx(3 * est.pk_bytes, rel=1e-6)


def test_an_unmeasured_shape_falls_back_to_the_fit_and_says_so() -> None:
    rows = [row("a", 15, 4000.0), row("b", 15, 8000.0, lookups=1), row("c", 16, 16000.0, lookups=2)]
    est = estimate.predict("new", settings(15, lookups=3), rows)
    assert "none like this one: a rough guess" in est.basis
    assert est.pk_bytes > 16000 * 2 ** 15  # more lookups, more bytes per row


def test_the_projects_own_runs_come_first_and_correct_the_times() -> None:
    rows = [row("shipped", 15, 4000.0), row("shipped2", 16, 4000.0),
            row("mine", 15, 5000.0, source="run r1", setup_s=2.0, prove_s=4.0)]
    est = estimate.predict("m", settings(17), rows)
    assert est.pk_bytes == 5000 * 2 ** 17 and "run r1" in est.basis
    assert est.time_factor == pytest.approx(2.0, rel=0.05)  # this machine takes twice the fit


def test_the_memory_check_refuses_only_what_does_not_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    est = estimate.predict("m", settings(15), [row("a", 15, 4000.0), row("b", 16, 4000.0)])
    monkeypatch.setenv("ZKML_DVC_MEMORY_LIMIT", str(est.prove_peak_rss + 1))
    estimate.check_memory(est, {"prove"})
    monkeypatch.setenv("ZKML_DVC_MEMORY_LIMIT", str(est.prove_peak_rss - 1))
    with pytest.raises(InsufficientMemoryError, match=r"model m: prove at logrows 15 .*ZKML_DVC_"):
        estimate.check_memory(est, {"prove"})
    estimate.check_memory(est, {"witness"})  # nothing heavy runs: nothing to refuse


@pytest.mark.parametrize(("text", "expected"), [("2G", 2 << 30), ("800M", 800 << 20),
                                                ("1.5GiB", 3 << 29), ("12345", 12345)])
def test_sizes_parse(text: str, expected: int) -> None:
    assert estimate.parse_bytes(text) == expected


@pytest.mark.parametrize("text", ["", "-1G", "lots", "0"])
def test_bad_sizes_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        estimate.parse_bytes(text)


def test_the_shipped_measurements_load_and_cover_lookups_and_logrows() -> None:
    rows = estimate.shipped()
    logrows = {int(m.features["logrows"]) for m in rows}
    assert {15, 16} <= logrows and max(logrows) >= 17
    assert any(m.features["lookups"] for m in rows)
