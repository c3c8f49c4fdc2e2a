"""The run page (`zkml-dvc report`), opened in a real headless browser: Debian's Chromium, driven by
Playwright (which downloads no browser of its own). Two real runs on the real local store; the
page is also published into the store and read back with a plain S3 client."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO, S3Server, cli, connect, new_bucket, new_project

pytestmark = pytest.mark.slow
CHROMIUM = os.environ.get("ZKML_DVC_TEST_CHROMIUM", "/usr/bin/chromium")
# Where the test run leaves the page's screenshot for people to look at (git-ignored).
SHOTS = REPO / "build" / "test-screenshots"


def open_page(page_file: Path, screenshot: Path) -> dict[str, object]:
    """Load the page in headless Chromium; return what a reader sees and every console error."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} missing: `make test` installs Debian's chromium"
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(page_file.resolve().as_uri())
            page.wait_for_load_state("load")
            rows = page.locator(".run-row")
            seen = {rows.nth(i).get_attribute("data-run"):
                    rows.nth(i).locator("[data-verdict]").inner_text().strip()
                    for i in range(rows.count())}
            charts = page.locator("figure.chart svg").count()
            page.locator("section.run details summary").first.click()  # the artifact table opens
            artifacts_visible = page.locator("section.run table").nth(1).is_visible()
            diff = page.locator("#diff").inner_text() if page.locator("#diff").count() else ""
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return {"errors": errors, "runs": seen, "charts": charts, "diff": diff,
            "artifacts_visible": artifacts_visible}


def test_the_run_page_opens_in_a_browser_and_from_the_store(s3_server: S3Server,
                                                            tmp_path: Path) -> None:
    root = new_project(tmp_path, "proj", project_id="pageproj")
    params = root / "params.yaml"
    params.write_text(params.read_text().replace("evm: false", "evm: true"))
    subprocess.run(["git", "commit", "-qam", "evm on"], cwd=root, check=True)
    bucket = new_bucket(s3_server)
    connect(root, s3_server, bucket)
    assert cli("run", "--run-id", "p1", cwd=root).returncode == 0
    params.write_text(params.read_text().replace("scales:\n    - 7", "scales:\n    - 9"))
    subprocess.run(["git", "commit", "-qam", "scale 9"], cwd=root, check=True)
    res = cli("run", "--run-id", "p2", cwd=root)
    assert res.returncode == 0, res.stdout + res.stderr

    out = tmp_path / "page"
    res = cli("report", "-o", str(out), cwd=root)
    assert res.returncode == 0, res.stdout + res.stderr
    # a local test SRS: the strict verdict, with every other claim established
    assert res.stdout.strip().endswith("(2 runs: p1 untrusted-srs, p2 untrusted-srs)"), res.stdout
    html = (out / "index.html").read_text()
    assert "<script" not in html and "http://" not in html.replace(
        "http://www.w3.org/", "")  # self-contained: nothing to fetch or run
    for claim in ("manifest", "proof", "srs", "input", "output", "evm"):
        assert f"<td>{claim}</td>" in html, claim
    assert "re-rendered here, byte-identical" in html  # the EVM claim's basis (verify --evm)

    shot = SHOTS / "report.png"
    seen = open_page(out / "index.html", shot)
    print(f"\nrun page: {out / 'index.html'}; screenshot: {shot}; runs and verdicts: {seen['runs']}")
    assert seen["errors"] == [], seen["errors"]
    assert seen["runs"] == {"p1": "UNTRUSTED-SRS", "p2": "UNTRUSTED-SRS"}, seen["runs"]
    assert seen["charts"] >= 5  # stage seconds, pk size, error vs scale, one timeline per run
    assert "model.scales" in str(seen["diff"]) and "output_error.max_abs" in str(seen["diff"])
    assert seen["artifacts_visible"]
    assert shot.stat().st_size > 10_000

    # published into the store: any S3 client reads it back, served as HTML
    res = cli("push", "p2", "--report", cwd=root)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "published the run page (2 runs)" in res.stdout, res.stdout
    url = res.stdout.strip().splitlines()[-1].split(": ", 1)[1]
    assert url.startswith(f"s3://{bucket}/") and url.endswith("projects/pageproj/report/index.html")
    got = s3_server.client().get_object(Bucket=bucket, Key=url.removeprefix(f"s3://{bucket}/"))
    assert got["ContentType"].startswith("text/html")
    fetched = tmp_path / "from-store" / "index.html"
    fetched.parent.mkdir()
    fetched.write_bytes(got["Body"].read())
    again = open_page(fetched, tmp_path / "from-store.png")
    assert again["errors"] == [] and again["runs"] == seen["runs"]
    shutil.rmtree(out)
