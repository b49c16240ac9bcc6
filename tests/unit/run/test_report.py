"""report.html: self-contained, and a real browser shows the best model and every plot."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tasks.run.report import metric_rows, report_url, run_summary_markdown
from tests.trained_run import TrainedRun

CHROMIUM = Path("/usr/bin/chromium")
# Appended to a copy of the report: records how many images the browser actually decoded.
IMAGE_PROBE = """<script>
window.addEventListener("load", () => {
  const images = [...document.images];
  document.body.dataset.decodedImages = images.filter(i => i.complete && i.naturalWidth > 0).length;
});
</script>"""


def browser_dom(page: Path, profile_dir: Path) -> str:
    """The DOM of a page after load, from headless chromium (offline, sandbox off)."""
    command = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={profile_dir}", "--virtual-time-budget=10000",
        "--dump-dom", page.as_uri(),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    return result.stdout


def test_report_is_self_contained(trained_run: TrainedRun) -> None:
    page = (trained_run.run_dir / "report.html").read_text()
    sources = re.findall(r'src="([^"]*)"', page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "<link" not in page and "http://" not in page and "https://" not in page


@pytest.mark.e2e
@pytest.mark.skipif(not CHROMIUM.exists(), reason="chromium is not installed (make browser)")
def test_browser_shows_best_model_metrics_and_every_plot(
    trained_run: TrainedRun, tmp_path: Path
) -> None:
    metrics = json.loads((trained_run.run_dir / "metrics.json").read_text())
    page = tmp_path / "report.html"
    page.write_text(
        (trained_run.run_dir / "report.html")
        .read_text()
        .replace("</body>", IMAGE_PROBE + "</body>")
    )
    dom = browser_dom(page, tmp_path / "chromium-profile")
    best = re.search(r'<span id="best-model">([^<]+)</span>', dom)
    assert best is not None and best.group(1) == metrics["best_model"]["family"]
    plots = sorted(p.stem for p in (trained_run.run_dir / "plots").glob("*.png"))
    assert len(plots) >= 6
    decoded = re.search(r'data-decoded-images="(\d+)"', dom)
    assert decoded is not None and int(decoded.group(1)) == len(plots)
    alts = sorted(re.findall(r'<img alt="([^"]+)"', dom))
    assert alts == plots
    for heading in ("Leaderboard", "Dataset profile", "Champion", "Plots"):
        assert f">{heading}<" in dom or f">{heading}</h2>" in dom
    positive = metrics["positive_label"]
    assert f">Test metrics (positive class: {positive})</h2>" in dom
    brier = metrics["calibration_and_importance"]["brier_score"]
    assert f"Brier score {brier:.4f}" in dom
    assert f"MCC {metrics['test_metrics']['binary']['mcc']:.4f}" in dom
    manifest = json.loads((trained_run.run_dir / "manifest.json").read_text())
    assert manifest["package_versions"]["tabpipe"] in dom
    assert manifest["started_at"] in dom and manifest["data"]["path"] in dom
    average_precision = metrics["test_metrics"]["average_precision"]
    assert f"{average_precision:.4f}" in dom
    assert "Validation: <b>passed</b>" in dom


def test_metric_rows_show_intervals_and_the_default_threshold_when_present() -> None:
    binary = {
        "accuracy": 0.9,
        "precision": 0.5,
        "recall": 0.6,
        "specificity": 0.95,
        "npv": None,
        "f1": 0.55,
    }
    test_metrics = {
        "binary": binary,
        "roc_auc": 0.9,
        "average_precision": 0.7,
        "balanced_accuracy": 0.8,
        "intervals": {"metrics": {"roc_auc": {"estimate": 0.9, "low": 0.8, "high": 0.95}}},
        "at_threshold_0.5": {"roc_auc": 0.9, "f1": 0.4},
    }
    rows = {row["metric"]: row for row in metric_rows(test_metrics)}
    assert rows["roc_auc"]["95% interval"] == "0.8000 to 0.9500"
    assert rows["npv"]["95% interval"] == "n/a"
    assert rows["f1"]["at threshold 0.5"] == 0.4
    without = metric_rows({key: v for key, v in test_metrics.items() if key != "at_threshold_0.5"})
    assert "at threshold 0.5" not in without[0]


def test_run_summary_states_the_champion_decision(trained_run: TrainedRun) -> None:
    metrics = json.loads((trained_run.run_dir / "metrics.json").read_text())
    assert "champion" not in metrics  # history-dependent, so kept out of metrics.json
    champion = json.loads((trained_run.run_dir / "champion.json").read_text())
    summary = run_summary_markdown({**metrics, "champion": champion}, trained_run.run_dir, {}, ())
    assert "## Champion" in summary
    assert "**becomes champion**: the first good run of this dataset." in summary


def test_report_url_uses_the_api_when_configured(
    trained_run: TrainedRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TABPIPE_REPORT_BASE_URL", raising=False)
    assert report_url(trained_run.run_dir) == (trained_run.run_dir / "report.html").as_uri()
    monkeypatch.setenv("TABPIPE_REPORT_BASE_URL", "http://127.0.0.1:8000/")
    assert report_url(trained_run.run_dir) == (
        f"http://127.0.0.1:8000/runs/{trained_run.run_dir.name}/report.html"
    )


def test_run_summary_lists_the_column_roles_and_keeps_user_text_as_text(
    trained_run: TrainedRun,
) -> None:
    """Column names, the target and labels are data: no markup of theirs survives in the
    Markdown the Prefect UI renders, and the roles table has one row per column."""
    metrics = json.loads((trained_run.run_dir / "metrics.json").read_text())
    hostile = "<img src=x onerror=alert(1)>|`x`"
    roles = {
        hostile: {"role": "numeric", "encoding": "scaled", "reason": "numbers"},
        "id": {"role": "identifier", "encoding": None, "reason": "unique per row"},
    }
    summary = run_summary_markdown(
        {**metrics, "target": "*bold* [link](http://x)"},
        trained_run.run_dir,
        {},
        (),
        column_roles=roles,
    )
    assert "## Column roles" in summary
    assert "<img" not in summary and "[link](" not in summary and "*bold*" not in summary
    assert "&lt;img src=x onerror=alert\\(1\\)&gt;\\|\\`x\\`" in summary
    assert "| id | identifier | left out | unique per row |" in summary
