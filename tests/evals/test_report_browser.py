"""The HTML report as a real browser renders it: Debian's headless Chromium, no network."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness.evals.report import write_reports
from tests.evals.test_report import _parse, results_document

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Debian's chromium for the headless check: apt-get install -y chromium",
)


def _dump_dom(url: str, profile: Path) -> str:
    """The DOM after the page loaded and its script ran, as Chromium serialises it."""
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--dump-dom",
        url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "</html>" in done.stdout, done.stderr[-2000:]
    return done.stdout


def _index(case: str) -> int:
    return next(n for n, i in enumerate(results_document()["items"]) if i["case"] == case)


@pytest.fixture(scope="module")
def dom(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The report opened at one result's link, as Chromium left it (one browser run)."""
    out = tmp_path_factory.mktemp("report")
    report = write_reports(results_document(), out)["html"]
    return _dump_dom(f"{report.as_uri()}#r-{_index('explain-recursion')}", out / "profile")


def test_chromium_renders_the_matrix_and_runs_only_the_reports_script(dom: str) -> None:
    page = _parse(dom)
    data = results_document()
    expected = {(i["suite"], i["case"], i["model"]): i["status"] for i in data["items"]}
    assert {key: cell["data-status"] for key, cell in page.cells.items()} == expected
    for key, cell in page.cells.items():
        assert cell["link-class"] == f"st-{expected[key]}"
    assert page.missing == ["factual-qa"]
    # the report's script ran (its hash is allowed by the page's CSP) ...
    assert 'data-report-ready="1"' in dom.split(">", 2)[1]
    # ... and the reply's markup did not: the title is the report's, no image was made
    assert "<title>harness evals · 7/12 passed</title>" in dom
    assert "pwned" not in dom.split("<body", 1)[0]
    assert not any(tag == "img" for tag, _ in page.links)
    assert '&lt;script&gt;document.title="pwned"&lt;/script&gt;' in dom


def test_a_link_to_a_result_opens_it_in_the_dialog(dom: str) -> None:
    start = dom.index('<dialog id="viewer"')
    dialog = dom[start : dom.index("</dialog>", start)]
    assert " open=" in dialog.split(">", 1)[0]
    assert "explain-recursion" in dialog and "Attempts (3)" in dialog
    assert "circular explanation" in dialog
