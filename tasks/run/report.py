"""Summaries of a finished run: leaderboard, markdown summary, a self-contained HTML page."""

from __future__ import annotations

import base64
import html
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd

REPORT_BASE_URL_VARIABLE = "TABPIPE_REPORT_BASE_URL"
# Set by the CLI while `tabpipe server start`'s report server serves REPORTS_DIR at REPORTS_URL.
REPORTS_URL_VARIABLE = "TABPIPE_REPORTS_URL"
REPORTS_DIR_VARIABLE = "TABPIPE_REPORTS_DIR"


def leaderboard_rows(families: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per family, best CV score first; failed families last with their error."""

    def sort_key(row: dict[str, Any]) -> tuple[int, float]:
        score = row.get("best_score")
        return (0, -score) if score is not None else (1, 0.0)

    rows = []
    for family in sorted(families, key=sort_key):
        score, std = family.get("best_score"), family.get("best_std")
        rows.append(
            {
                "family": family["family"],
                "status": family["status"],
                "cv_score": "n/a" if score is None else f"{score:.4f} ± {std or 0:.4f}",
                "best_params": ", ".join(f"{k}={v}" for k, v in family["best_params"].items())
                or (family.get("error") or ""),
                "fit_seconds": round(family["fit_seconds"], 2),
            }
        )
    return rows


def format_value(value: Any, number_format: str = ".4f") -> str:
    """A cell for people: floats in number_format, None as n/a."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return format(value, number_format)
    return str(value)


def metric_rows(test_metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Headline test metrics with their 95% bootstrap interval and, when a threshold was tuned,
    the value at 0.5 beside it."""
    intervals = test_metrics.get("intervals", {}).get("metrics", {})
    at_default = test_metrics.get("at_threshold_0.5")
    rows = []
    # Imported here: the CLI imports format_value at startup, and this module pulls in sklearn.
    from tasks.evaluation.metrics import headline_metrics

    for name, value in headline_metrics(test_metrics).items():
        interval = intervals.get(name, {})
        low, high = interval.get("low"), interval.get("high")
        row = {
            "metric": name,
            "value": value,
            "95% interval": "n/a" if low is None else f"{low:.4f} to {high:.4f}",
        }
        if at_default is not None:
            row["at threshold 0.5"] = at_default.get(name)
        rows.append(row)
    return rows


def leakage_line(metrics: dict[str, Any]) -> str:
    """'no leakage found' only when the computed audit passed."""
    if metrics.get("leakage_audit", {}).get("no_leakage_found"):
        return "no leakage found: no validation or test row reached any fit (leakage_audit.json)"
    return "LEAKAGE AUDIT FAILED or incomplete: see leakage_audit.json"


def flagged_diagnostics(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """The diagnostics that need a reader's attention (fail, then warn)."""
    return [d for d in metrics.get("diagnostics", []) if d["severity"] in ("fail", "warn")]


def diagnostic_line(record: dict[str, Any]) -> str:
    return f"{record['severity'].upper()} {record['code']}: {record['message']}"


def diagnostics_markdown(metrics: dict[str, Any]) -> list[str]:
    """The run summary's diagnostics: each fail and warning on one line (all in metrics.json)."""
    if "diagnostics" not in metrics:
        return []
    flagged = flagged_diagnostics(metrics)
    lines = ["## Diagnostics", ""]
    lines += [
        f"- **{d['severity']}** `{d['code']}`: {markdown_text(d['message'])}" for d in flagged
    ]
    if not flagged:
        lines.append(f"- all {len(metrics['diagnostics'])} checks passed (metrics.json)")
    return [*lines, ""]


def diagnostics_html(metrics: dict[str, Any]) -> str:
    """Every diagnostic with its severity and evidence, fails and warnings first."""
    if "diagnostics" not in metrics:
        return ""
    rows = [
        {
            "severity": d["severity"],
            "code": d["code"],
            "message": d["message"],
            "evidence": ", ".join(f"{k}={v}" for k, v in d.get("evidence", {}).items()),
        }
        for d in metrics["diagnostics"]
    ]
    return f'<h2>Diagnostics</h2><div id="diagnostics">{html_table(rows)}</div>'


MARKDOWN_SPECIALS = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")


def markdown_text(value: Any) -> str:
    """A value shown as itself in Markdown (column names and labels are data, never markup):
    HTML escaped, Markdown punctuation backslash-escaped, line breaks as spaces."""
    text = html.escape(format_value(value), quote=False).replace("\r", " ").replace("\n", " ")
    return MARKDOWN_SPECIALS.sub(r"\\\1", text)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(markdown_text(r[h]) for h in header) + " |" for r in rows]
    return "\n".join(lines)


def png_data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def positive_class_text(metrics: dict[str, Any]) -> str:
    """' (positive class: yes)' for a binary run: which class precision and recall are about."""
    if metrics.get("task") != "binary" or metrics.get("positive_label") is None:
        return ""
    return f" (positive class: {metrics['positive_label']})"


def quality_facts(metrics: dict[str, Any]) -> list[str]:
    """Brier score (probabilities) and MCC (binary), when the run has them."""
    facts = []
    brier = (metrics.get("calibration_and_importance") or {}).get("brier_score")
    if brier is not None:
        facts.append(f"Brier score {format_value(brier)} (0 is perfect; lower is better)")
    mcc = ((metrics.get("test_metrics") or {}).get("binary") or {}).get("mcc")
    if mcc is not None:
        facts.append(f"MCC {format_value(mcc)} (-1 to 1; 0 is chance)")
    return facts


def threshold_text(test_metrics: dict[str, Any]) -> str:
    threshold = test_metrics.get("decision_threshold")
    if threshold is None:
        return "default (most probable class)"
    return f"{threshold:.4f}, tuned on out-of-fold training predictions"


def run_summary_markdown(
    metrics: dict[str, Any],
    run_path: Path,
    plots: dict[str, Path],
    inline_plots: tuple[str, ...],
    column_roles: dict[str, Any] | None = None,
) -> str:
    """The `run-summary` artifact: dataset, selection metric and why, test metrics, the column
    roles, plots. Every value from the user's table is escaped (markdown_text)."""
    lines = [
        f"# {markdown_text(metrics['dataset'])}: best model `{metrics['best_model']['family']}`",
        "",
        f"- task: {metrics['task']}, target {markdown_text(metrics['target'])}"
        + (
            ", classes " + ", ".join(markdown_text(c) for c in metrics["classes"])
            if metrics["classes"]
            else ""
        ),
        f"- selection metric: **{metrics['selection_metric']}**: {metrics['selection_reason']}",
        f"- CV {metrics['selection_metric']}: {format_value(metrics['best_model']['cv_score'])}",
        f"- decision threshold: {threshold_text(metrics['test_metrics'])}",
        f"- leakage audit: {leakage_line(metrics)}",
        f"- run directory: {markdown_text(run_path)}",
        "",
        *diagnostics_markdown(metrics),
        f"## Test metrics{positive_class_text(metrics)}",
        "",
        markdown_table(metric_rows(metrics["test_metrics"])),
        "",
        *(f"- {fact}" for fact in quality_facts(metrics)),
        "",
        *champion_markdown(metrics.get("champion")),
        *(
            [f"## Drift\n\n{markdown_text(drift_summary(metrics['drift']))}\n"]
            if metrics.get("drift")
            else []
        ),
        *roles_markdown(column_roles),
    ]
    for name in inline_plots:
        if name in plots:
            lines += [f"![{name}]({png_data_uri(plots[name])})", ""]
    return "\n".join(lines)


def html_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p>none</p>"
    header = "".join(f"<th>{html.escape(str(h))}</th>" for h in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(format_value(v))}</td>" for v in row.values()) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>"


def champion_facts(decision: dict[str, Any]) -> list[dict[str, Any]]:
    """The champion decision's numbers as metric/value rows (those the decision has)."""
    names = (
        "metric",
        "outcome",
        "registry",
        "note",
        "compared_with",
        "new_score",
        "champion_score",
        "difference",
        "ci_low",
        "ci_high",
        "n_boot",
        "n_rows",
        "seed",
    )
    return [{"item": name, "value": decision[name]} for name in names if name in decision]


def champion_verdict(decision: dict[str, Any]) -> str:
    """Becomes champion only on the registry's word; a decision still waiting for it says so."""
    if decision.get("registry") == "pending":
        return "champion decision pending"
    return "becomes champion" if decision.get("becomes_champion") else "champion unchanged"


def champion_markdown(decision: dict[str, Any] | None) -> list[str]:
    if not decision:
        return []
    verdict = champion_verdict(decision)
    return [
        "## Champion",
        "",
        f"**{verdict}**: {decision.get('reason', '')}",
        "",
        markdown_table(champion_facts(decision)),
        "",
    ]


def champion_html(decision: dict[str, Any] | None) -> str:
    if not decision:
        return ""
    verdict = champion_verdict(decision).capitalize()
    return (
        f'<h2>Champion</h2><p id="champion"><b>{verdict}</b>: '
        f"{html.escape(str(decision.get('reason', '')))}</p>"
        f"{html_table(champion_facts(decision))}"
    )


def drift_summary(drift: dict[str, Any]) -> str:
    """One sentence: compared or skipped, and what drifted."""
    if drift.get("status") != "compared":
        return f"Drift not measured: {drift.get('note', 'no reference')}"
    drifted = drift.get("drifted_columns", [])
    target = drift.get("target") or {}
    parts = [
        f"{len(drifted)} of {len(drift.get('columns', []))} columns drifted "
        f"(share {format_value(drift.get('share_drifted'), '.2f')})"
        + (f": {', '.join(drifted[:10])}" if drifted else ""),
        "the target drifted" if target.get("drifted") else "the target did not drift",
    ]
    return (
        f"Against champion {drift.get('champion_run_id')}'s training rows: "
        + "; ".join(parts)
        + "."
    )


def drift_html(drift: dict[str, Any] | None) -> str:
    if not drift:
        return ""
    from tasks.evaluation.drift import drift_table  # scipy: loaded only when a report is drawn

    table = html_table(drift_table(drift)) if drift.get("columns") else ""
    return f'<h2>Drift</h2><p id="drift">{html.escape(drift_summary(drift))}</p>{table}'


def report_url(run_dir: Path) -> str:
    """Where a browser opens the report (the Prefect UI cannot open file:// links): the `tabpipe
    api` URL when TABPIPE_REPORT_BASE_URL is set, else the project server's report server when
    it serves this run's folder, else the file itself."""
    base = os.environ.get(REPORT_BASE_URL_VARIABLE, "").rstrip("/")
    if base:
        return f"{base}/runs/{quote(run_dir.name)}/report.html"
    served_url = os.environ.get(REPORTS_URL_VARIABLE, "").rstrip("/")
    served_dir = os.environ.get(REPORTS_DIR_VARIABLE)
    if served_url and served_dir and run_dir.parent.resolve() == Path(served_dir).resolve():
        return f"{served_url}/{quote(run_dir.name)}/report.html"
    return (run_dir / "report.html").resolve().as_uri()


REPORT_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;
text-align:left}th{background:#f3f3f3}figure{display:inline-block;width:48%;margin:1%}
img{max-width:100%;border:1px solid #eee}figcaption{text-align:center;color:#555}
.failed{color:#b00}
"""


def roles_markdown(column_roles: dict[str, Any] | None) -> list[str]:
    """The run summary's column roles: what each column became, and why."""
    if not column_roles:
        return []
    return ["## Column roles", "", markdown_table(role_rows({"column_roles": column_roles})), ""]


def role_rows(profile: dict[str, Any]) -> list[dict[str, Any]]:
    """Every feature column's role, how it is encoded, and why (profile.json column_roles)."""
    return [
        {
            "column": column,
            "role": role.get("role", ""),
            "encoding": role.get("encoding") or "left out",
            "reason": role.get("reason", ""),
        }
        for column, role in profile.get("column_roles", {}).items()
    ]


def report_html(
    metrics: dict[str, Any],
    manifest: dict[str, Any],
    profile: dict[str, Any],
    plots: dict[str, Path],
    leaderboard: list[dict[str, Any]],
) -> str:
    """One self-contained page (plots inlined) a person opens to see the run."""
    best = metrics["best_model"]
    profile_rows = [
        {"column": column, "missing": count, "share": count / max(profile["n_rows"], 1)}
        for column, count in profile["missing_per_column"].items()
    ]
    dropped = [{"column": c, "reason": r} for c, r in profile.get("dropped_columns", {}).items()]
    images = "".join(
        f'<figure><img alt="{html.escape(name)}" src="{png_data_uri(path)}">'
        f"<figcaption>{html.escape(name.replace('_', ' '))}</figcaption></figure>"
        for name, path in plots.items()
    )
    title = f"tabpipe run {html.escape(manifest['run_id'])}"
    configured = (manifest.get("config") or {}).get("data", "")
    data_file = str((manifest.get("data") or {}).get("path", configured))
    version = (manifest.get("package_versions") or {}).get("tabpipe", "unknown")
    started = str(manifest.get("started_at", ""))
    facts = "".join(f"<li>{html.escape(fact)}</li>" for fact in quality_facts(metrics))
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title><style>{REPORT_STYLE}</style></head>
<body>
<h1>{title}</h1>
<p id="provenance">Started {html.escape(started)} from data file
<code>{html.escape(data_file)}</code>, tabpipe {html.escape(str(version))}.</p>
<p>Dataset <b>{html.escape(metrics["dataset"])}</b> ({profile["n_rows"]} labelled rows,
target <code>{html.escape(metrics["target"])}</code>, task {metrics["task"]}).
Validation: <b>{html.escape(manifest.get("validation", {}).get("status", "passed"))}</b>.</p>
{diagnostics_html(metrics)}
<h2>Best model: <span id="best-model">{html.escape(best["family"])}</span></h2>
<p>Selection metric <b>{metrics["selection_metric"]}</b>: {html.escape(metrics["selection_reason"])}
CV score {format_value(best["cv_score"])}.</p>
<h2>Test metrics{html.escape(positive_class_text(metrics))}</h2>
<p>Decision threshold: {html.escape(threshold_text(metrics["test_metrics"]))}.
Leakage audit: {html.escape(leakage_line(metrics))}.</p>
<div id="test-metrics">{html_table(metric_rows(metrics["test_metrics"]))}</div>
<ul id="quality">{facts}</ul>
{champion_html(metrics.get("champion"))}
{drift_html(metrics.get("drift"))}
<h2>Leaderboard</h2>
{html_table(leaderboard)}
<h2>Dataset profile</h2>
{html_table([{"class": k, "rows": v} for k, v in profile["class_counts"].items()])}
{html_table(profile_rows)}
<h3>Columns left out</h3>
{html_table(dropped)}
<h3>Column roles</h3>
<div id="column-roles">{html_table(role_rows(profile))}</div>
<h2>Plots</h2>
<div id="plots">{images}</div>
</body></html>
"""


def cv_results_frame(families: list[dict[str, Any]]) -> pd.DataFrame:
    """cv_results.csv: one row per candidate and parameter set."""
    rows = [
        {
            "family": row["family"],
            "params": ", ".join(f"{k}={v}" for k, v in row["params"].items()),
            "mean_score": row["mean_score"],
            "std_score": row["std_score"],
            "mean_fit_seconds": row["mean_fit_seconds"],
        }
        for family in families
        for row in family["candidates"]
    ]
    return pd.DataFrame(
        rows, columns=["family", "params", "mean_score", "std_score", "mean_fit_seconds"]
    )
