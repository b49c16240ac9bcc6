"""`make corpus CORPUS=/path/to/folder`: zero-config tabpipe against a careful person's script on
real tables it has never seen, and on the bundled ones.

For each table: `tabpipe train --data FILE --target COL` (nothing else), then benchmarks/peer.py
trained on the rows tabpipe did not test on and scored on tabpipe's test rows. Wall time and peak
RSS of each whole process tree (benchmarks/run.py's `measure`); the scores, tabpipe's intervals,
the best families and the column roles tabpipe chose go to benchmarks/corpus.md.

    python -m benchmarks.corpus CORPUS_FOLDER [--only NAME ...] [--out benchmarks/corpus.md]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.run import Measurement, base_env, compile_tabpipe, measure, prefect_server

ROOT = Path(__file__).resolve().parents[1]
# The targets of the corpus tables (from the corpus README) and of the bundled data.
CORPUS_TARGETS = {
    "credit_data.csv": "Status",
    "toronto_arrests.csv": "released",
    "spam_email.csv": "spam",
    "pbc_status.csv": "status",
    "nmes_health.csv": "health",
    "birthweight_chds.csv": "wt",
    "hotel_adr.csv": "avg_price_per_room",
    "mpls_stops.csv": "personSearch",
}
BUNDLED = {
    ROOT / "data" / "penguins.csv": "species",
    ROOT / "data" / "caravan.csv": "Purchase",
    ROOT / "data" / "hitters.csv": "Salary",
}
# The headline score per task (higher is better except RMSE) and the others reported.
SCORES = {
    "binary": ("average_precision", "roc_auc"),
    "multiclass": ("f1_macro",),
    "regression": ("rmse", "r2"),
}


@dataclass
class TableResult:
    name: str
    target: str
    task: str = ""
    tabpipe: dict[str, Any] = field(default_factory=dict)
    peer: dict[str, Any] = field(default_factory=dict)
    tabpipe_wall: float = 0.0
    tabpipe_peak_mb: float = 0.0
    peer_wall: float = 0.0
    peer_peak_mb: float = 0.0
    roles: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    error: str = ""


def only_run(runs: Path) -> Path:
    found = [p for p in runs.iterdir() if p.is_dir() and not p.name.startswith(".")]
    if len(found) != 1:
        raise RuntimeError(f"expected one run directory in {runs}, found {len(found)}")
    return found[0]


def sklearn_macro_f1(predictions: Path) -> float:
    """Macro F1 as scikit-learn computes it (a never-predicted class counts as 0), which tabpipe
    reports as undefined instead; used only then, so both sides are compared alike."""
    import pandas as pd
    from sklearn.metrics import f1_score

    frame = pd.read_csv(predictions, dtype={"y_true": str, "y_pred": str})
    return float(f1_score(frame["y_true"], frame["y_pred"], average="macro", zero_division=0))


def tabpipe_scores(metrics: dict[str, Any], run: Path | None = None) -> dict[str, Any]:
    """Test scores with their 95% intervals, under the names peer.py uses."""
    test = metrics["test_metrics"]
    intervals = test.get("intervals", {}).get("metrics", {})
    scores: dict[str, Any] = {}
    for name in SCORES[metrics["task"]]:
        if name == "f1_macro":  # tabpipe keeps macro averages together, headlined as macro_f1
            value, interval_key = test.get("macro", {}).get("f1"), "macro_f1"
            if value is None and run is not None:  # a class never predicted: undefined to tabpipe
                scores[name] = {
                    "value": sklearn_macro_f1(run / "predictions.csv"),
                    "zero_division": True,
                }
                continue
        else:
            value, interval_key = test.get(name), name
        if isinstance(value, int | float):
            interval = intervals.get(interval_key, {})
            scores[name] = {
                "value": value,
                "low": interval.get("low"),
                "high": interval.get("high"),
            }
    return scores


def run_table(path: Path, target: str, env: dict[str, str], work: Path) -> TableResult:
    """tabpipe zero-config, then the peer on the same test rows."""
    result = TableResult(path.stem, target)
    runs = work / path.stem / "runs"
    runs.mkdir(parents=True)
    command = [sys.executable, "-m", "flows.cli", "train", "--data", str(path), "--target", target]
    ran: Measurement = measure([*command, "--set", f"runs_dir={runs}"], env)
    result.tabpipe_wall, result.tabpipe_peak_mb = ran.wall_seconds, ran.peak_rss_mb
    if ran.returncode != 0:
        result.error = f"tabpipe exit {ran.returncode}: {ran.stderr_tail.strip()[-300:]}"
        return result
    run = only_run(runs)
    metrics = json.loads((run / "metrics.json").read_text())
    manifest = json.loads((run / "manifest.json").read_text())
    profile = json.loads((run / "profile.json").read_text())
    result.task = metrics["task"]
    result.tabpipe = {
        "best_family": metrics["best_model"]["family"],
        "scores": tabpipe_scores(metrics, run),
        "positive_label": metrics.get("positive_label"),
        "skipped_families": manifest.get("encoding", {}).get("skipped_families", {}),
        "stage_seconds": manifest.get("stage_seconds", {}),
    }
    result.roles = {
        name: role["role"] + (f" ({role['encoding']})" if role.get("encoding") == "target" else "")
        for name, role in profile.get("column_roles", {}).items()
    }
    result.notes = manifest.get("data", {}).get("notes", [])
    test_rows = [int(row) for row in read_rows(run / "predictions.csv")]
    rows_file = work / path.stem / "test_rows.json"
    rows_file.write_text(json.dumps(test_rows))
    out = work / path.stem / "peer.json"
    peer_command = [
        sys.executable,
        "-m",
        "benchmarks.peer",
        str(path),
        target,
        "--test-rows",
        str(rows_file),
        "--task",
        result.task,
        "--out",
        str(out),
    ]
    if metrics.get("positive_label") is not None:
        peer_command += ["--positive-label", str(metrics["positive_label"])]
    peer = measure(peer_command, env)
    result.peer_wall, result.peer_peak_mb = peer.wall_seconds, peer.peak_rss_mb
    if peer.returncode != 0:
        result.error = f"peer exit {peer.returncode}: {peer.stderr_tail.strip()[-300:]}"
        return result
    result.peer = json.loads(out.read_text())
    return result


def read_rows(predictions: Path) -> list[str]:
    import csv

    with predictions.open(newline="") as handle:
        return [row["row"] for row in csv.DictReader(handle)]


def fmt(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def score_cell(scores: dict[str, Any], name: str) -> str:
    score = scores.get(name)
    if score is None:
        return "n/a"
    if score.get("zero_division"):
        return f"{fmt(score['value'])} (a class never predicted: counted as 0)"
    if score.get("low") is None:
        return fmt(score["value"])
    return f"{fmt(score['value'])} [{fmt(score['low'])}, {fmt(score['high'])}]"


def verdict(result: TableResult) -> str:
    """Met or not: score at least the peer's (PR-AUC / macro F1 within 0.01, RMSE within 2%),
    wall at most 1.5x the peer's."""
    if result.error:
        return "error"
    headline = SCORES[result.task][0]
    ours = result.tabpipe["scores"].get(headline, {}).get("value")
    theirs = result.peer.get("test", {}).get(headline)
    if ours is None or theirs is None:
        return "n/a"
    score_ok = ours <= theirs * 1.02 if headline == "rmse" else ours >= theirs - 0.01
    time_ok = result.tabpipe_wall <= 1.5 * result.peer_wall
    return ("score ok" if score_ok else "score below") + (", time ok" if time_ok else ", slower")


def markdown(results: list[TableResult], command: str) -> str:
    lines = [
        "# Corpus: zero-config tabpipe against a careful person's script",
        "",
        f"Written by `{command}`. Each table: `tabpipe train --data FILE --target COL` with no",
        "config, then `benchmarks/peer.py` (drop obvious IDs, median / most-frequent imputation,",
        "one-hot with handle_unknown=ignore, SMOTE when the minority is under 35%, six families",
        "each with a small GridSearchCV, 5 folds) trained on the rows tabpipe did not test on and",
        "scored on tabpipe's test rows. tabpipe's scores carry its 95% bootstrap interval. Wall",
        "time and peak RSS are of each whole process tree (tabpipe's includes Prefect's embedded",
        "server). The machine is shared, so times are indicative.",
        "",
        "| table | task | score | tabpipe | peer | other | tabpipe | peer | wall s tabpipe / peer "
        "| peak MB tabpipe / peer | best family tabpipe / peer | verdict |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        if r.error and not r.task:
            lines.append(f"| {r.name} | | | error: {r.error} | | | | | | | | error |")
            continue
        names = SCORES.get(r.task, ("",))
        headline, other = names[0], names[1] if len(names) > 1 else ""
        peer_test = r.peer.get("test", {})
        lines.append(
            f"| {r.name} | {r.task} | {headline} | {score_cell(r.tabpipe['scores'], headline)} "
            f"| {fmt(peer_test.get(headline))} | {other} "
            f"| {score_cell(r.tabpipe['scores'], other) if other else ''} "
            f"| {fmt(peer_test.get(other)) if other else ''} "
            f"| {r.tabpipe_wall:.0f} / {r.peer_wall:.0f} "
            f"| {r.tabpipe_peak_mb:.0f} / {r.peer_peak_mb:.0f} "
            f"| {r.tabpipe.get('best_family', '')} / {r.peer.get('best_family', '')} "
            f"| {verdict(r)} |"
        )
    lines += time_breakdown(results)
    lines += ["", "## Column roles tabpipe chose", ""]
    for r in results:
        plain = {"numeric", "categorical", "boolean"}
        special = {n: role for n, role in r.roles.items() if role.split(" ")[0] not in plain}
        shown = ", ".join(f"`{n}`: {role}" for n, role in special.items()) or "all plain"
        counts: dict[str, int] = {}
        for role in r.roles.values():
            counts[role.split(" ")[0]] = counts.get(role.split(" ")[0], 0) + 1
        summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        lines.append(f"- **{r.name}** ({summary}): {shown}.")
        skipped = r.tabpipe.get("skipped_families") or {}
        for family, why in skipped.items():
            lines.append(f"  - skipped {family}: {why}")
        if r.peer.get("dropped_columns"):
            lines.append(f"  - the peer dropped: {', '.join(r.peer['dropped_columns'])}")
        if r.error:
            lines.append(f"  - error: {r.error}")
    return "\n".join(lines) + "\n"


def time_breakdown(results: list[TableResult]) -> list[str]:
    """Where tabpipe's wall time went (its manifest's stage clock), beside the peer's."""
    lines = [
        "",
        "## Where tabpipe's time went",
        "",
        "Seconds. *Start and finish*: the command's imports, the flow run's creation, the UI",
        "artifacts and the exit (wall minus the stages). *Trust work*: evaluate (test intervals,",
        "leakage audit, permutation importance), diagnostics and write (report, plots, model,",
        "drift reference).",
        "",
        "| table | tabpipe wall | start and finish | data (load, validate, profile, split) "
        "| search | trust work | peer wall |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        stages = r.tabpipe.get("stage_seconds") if not r.error else None
        if not stages:
            continue
        data = sum(stages.get(k, 0.0) for k in ("load", "validate", "profile_and_split"))
        trust = sum(stages.get(k, 0.0) for k in ("evaluate", "diagnostics", "write"))
        search = stages.get("search", 0.0)
        outside = r.tabpipe_wall - data - search - trust
        lines.append(
            f"| {r.name} | {r.tabpipe_wall:.0f} | {outside:.1f} | {data:.1f} | {search:.1f} "
            f"| {trust:.1f} | {r.peer_wall:.0f} |"
        )
    return lines


def tables(corpus: Path) -> list[tuple[Path, str]]:
    found = [(corpus / name, target) for name, target in CORPUS_TARGETS.items()]
    return [(p, t) for p, t in found if p.is_file()] + list(BUNDLED.items())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="tabpipe vs a careful script on real tables")
    parser.add_argument("corpus", type=Path, help="the folder holding the corpus CSV files")
    parser.add_argument("--only", nargs="*", default=None, help="table names (file stems)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "corpus.md")
    parser.add_argument(
        "--ephemeral",
        action="store_true",
        help="no running Prefect server: each tabpipe run starts a temporary one (the fallback)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if not args.corpus.is_dir():
        raise SystemExit(f"Corpus folder '{args.corpus}' does not exist.")
    results = []
    compile_tabpipe()
    with tempfile.TemporaryDirectory(prefix="tabpipe-corpus-") as work, ExitStack() as stack:
        env = base_env(Path(work) / "prefect-home")
        env["PREFECT_SERVER_EPHEMERAL_ENABLED"] = "true"
        if not args.ephemeral:  # the README's set-up: a running server every command reports to
            env["PREFECT_API_URL"] = stack.enter_context(
                prefect_server(Path(work) / "prefect-home")
            )
        for path, target in tables(args.corpus):
            if args.only and path.stem not in args.only:
                continue
            print(f"{path.stem}: training ...", flush=True)
            result = run_table(path, target, env, Path(work))
            print(f"{path.stem}: {verdict(result)} {result.error}", flush=True)
            results.append(result)
            args.out.write_text(markdown(results, "make corpus CORPUS=" + str(args.corpus)))
    (args.out.with_suffix(".json")).write_text(
        json.dumps([r.__dict__ for r in results], indent=1, default=str)
    )
    print(f"Wrote {args.out}")


if __name__ == "__main__":
    main()
