"""`make bench`: tabpipe end to end (the CLI, a subprocess) against the hand-written baseline,
side by side and alternating, on generated and bundled data. Measures wall time and the peak RSS
of the whole process tree, against a running `prefect server start` and with the embedded
ephemeral server, and reads tabpipe's per-stage seconds from manifest.json. Results go to
benchmarks/results/ (JSON) and the table in benchmarks/README.md. Nothing here is asserted."""

from __future__ import annotations

import argparse
import compileall
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from benchmarks.generate import TARGET, ensure_data

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "benchmarks" / "results"
README = ROOT / "benchmarks" / "README.md"
TABLE_START, TABLE_END = "<!-- results:start -->", "<!-- results:end -->"
SIZES = {"10k": 10_000, "100k": 100_000, "1m": 1_000_000}
MODELS = ["logistic_regression", "hist_gradient_boosting"]
GRIDS = {
    "logistic_regression": {"C": [0.1, 1.0]},
    "hist_gradient_boosting": {"max_leaf_nodes": [31, 63]},
}
# Successive halving pays off only with many candidates: 12 grid points x 2 rebalancings = 24.
HALVING_GRID = {
    "hist_gradient_boosting": {
        "learning_rate": [0.05, 0.1, 0.2],
        "max_leaf_nodes": [15, 31, 63, 127],
    }
}
BUNDLED: dict[str, dict[str, str | None]] = {
    "penguins": {"config": "configs/penguins.yaml", "target": "species", "positive": None},
    "caravan": {"config": "configs/caravan.yaml", "target": "Purchase", "positive": "Yes"},
}
# Minutes of search.time_budget tried on 100k rows with every default family (zero-config):
# the unbudgeted search takes several times longer, so each budget binds.
BUDGET_MINUTES = (0.5, 1.0)
SEED = 42
FOLDS = 3
POLL_SECONDS = 0.05


@dataclass
class Measurement:
    wall_seconds: float
    peak_rss_mb: float
    returncode: int
    stdout: str = ""
    stderr_tail: str = ""
    cpu_seconds: float = 0.0  # user + system of the whole tree (psutil only)
    peak_threads: int = 0  # the most threads alive in the tree at once (psutil only)


@dataclass
class CaseResult:
    case: str
    runner: str  # baseline | tabpipe-server | tabpipe-ephemeral
    wall_seconds: float
    peak_rss_mb: float
    ok: bool
    stage_seconds: dict[str, float] = field(default_factory=dict)
    cv_score: float | None = None
    test_score: float | None = None
    best_family: str | None = None
    note: str = ""
    cpu_seconds: float = 0.0
    peak_threads: int = 0


class TreeSampler:
    """Polls a process tree with psutil: RSS now, threads now, CPU seconds per process so far."""

    def __init__(self, pid: int) -> None:
        import psutil

        self.root = psutil.Process(pid)
        self.cpu_by_pid: dict[int, float] = {}

    def sample(self) -> tuple[int, int]:
        import psutil

        rss = threads = 0
        try:
            members = [self.root, *self.root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0, 0
        for member in members:
            try:
                with member.oneshot():
                    rss += member.memory_info().rss
                    threads += member.num_threads()
                    times = member.cpu_times()
                self.cpu_by_pid[member.pid] = times.user + times.system
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return rss, threads


def proc_tree_rss(pid: int) -> int:
    """The same from /proc, for machines without psutil (Linux only)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry.name))
            rss[int(entry.name)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        total += rss.get(current, 0)
        todo.extend(children.get(current, []))
    return total


def measure(command: list[str], env: dict[str, str]) -> Measurement:
    """Run a command; wall seconds and the peak RSS of its whole process tree, polled."""
    try:
        import psutil
    except ImportError:
        psutil = None  # type: ignore[assignment]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=err)
        sampler = TreeSampler(process.pid) if psutil else None
        peak = peak_threads = 0
        while process.poll() is None:
            if sampler:
                rss, threads = sampler.sample()
                peak_threads = max(peak_threads, threads)
            else:
                rss = proc_tree_rss(process.pid)
            peak = max(peak, rss)
            time.sleep(POLL_SECONDS)
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        return Measurement(
            wall,
            peak / 2**20,
            process.returncode,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace")[-2000:],
            sum(sampler.cpu_by_pid.values()) if sampler else 0.0,
            peak_threads,
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def compile_tabpipe() -> None:
    """Byte-compile tabpipe's own modules, as pip compiles an installed package: with
    PYTHONDONTWRITEBYTECODE set (as on the machines these figures come from) every run and every
    CV worker would compile them again, about 0.3 s of CPU each, which a user's machine does
    once."""
    for folder in ("flows", "tasks", "schemas"):
        compileall.compile_dir(ROOT / folder, quiet=1)


def base_env(prefect_home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(
        PREFECT_HOME=str(prefect_home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        PYTHONPATH=str(ROOT),
    )
    return env


@contextmanager
def prefect_server(prefect_home: Path) -> Iterator[str]:
    """`prefect server start` on a free loopback port; stopped by its own PID."""
    import httpx

    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = {**base_env(prefect_home), "PREFECT_API_URL": api_url}
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    log = (RESULTS_DIR / "prefect-server.log").open("wb")
    command = [str(Path(sys.executable).with_name("prefect")), "server", "start"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen(
        command,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{api_url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None:
                raise RuntimeError(
                    "prefect server exited; see benchmarks/results/prefect-server.log"
                )
            time.sleep(0.5)
        else:
            raise RuntimeError("prefect server did not become healthy in 120 s")
        yield api_url
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def tabpipe_config(case: str, data: Path, rebalance: str, extra: dict[str, Any]) -> Path:
    """The benchmark config: same families, grids, sampler and folds as the baseline."""
    config = {
        "name": case,
        "data": str(data),
        "target": TARGET,
        "positive_label": "yes",
        "rebalance": [rebalance],
        "models": MODELS,
        "grids": GRIDS,
        "split": {"test_size": 0.2, "cv_folds": FOLDS},
        # The floor's search: the whole grid (strategy auto would pick the same for 2 candidates,
        # but the comparison should not depend on that rule).
        "search": {"strategy": "grid"},
        "seed": SEED,
        **extra,
    }
    path = RESULTS_DIR / "configs" / f"{case}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def run_tabpipe(case: str, runner: str, config_args: list[str], env: dict[str, str]) -> CaseResult:
    runs_dir = Path(tempfile.mkdtemp(prefix=f"{case}-", dir=RESULTS_DIR / "runs"))
    command = [sys.executable, "-m", "flows.cli.main", "train", *config_args]
    command += ["--set", f"runs_dir={runs_dir}"]
    measured = measure(command, env)
    result = CaseResult(case, runner, measured.wall_seconds, measured.peak_rss_mb, False)
    result.cpu_seconds, result.peak_threads = measured.cpu_seconds, measured.peak_threads
    manifests = list(runs_dir.glob("*/manifest.json"))
    if measured.returncode != 0 or not manifests:
        result.note = (
            measured.stderr_tail.strip().splitlines()[-1:][0] if measured.stderr_tail else ""
        )
        return result
    manifest = json.loads(manifests[0].read_text())
    metrics = json.loads((manifests[0].parent / "metrics.json").read_text())
    result.ok = manifest["status"] == "completed"
    result.stage_seconds = manifest.get("stage_seconds", {})
    result.cv_score = metrics["best_model"]["cv_score"]
    result.best_family = metrics["best_model"]["family"]
    if case.startswith("budget-"):
        families = metrics["families"]
        tried = sum(len(f.get("candidates") or []) for f in families)
        scored = [f["family"] for f in families if f["status"] == "completed"]
        skipped = [note for f in families for note in f.get("notes", [])]
        result.note = (
            f"{tried} candidates tried; families with a score: {', '.join(scored)}; "
            f"{len(skipped)} families cut short by the budget"
        )
    test = metrics["test_metrics"]
    result.test_score = test.get("average_precision") if "binary" in test else test["macro"]["f1"]
    return result


def run_baseline(
    case: str, data: Path, target: str, rebalance: str, positive: str | None, env: dict[str, str]
) -> CaseResult:
    command = [sys.executable, "-m", "benchmarks.baseline", str(data), "--target", target]
    command += ["--rebalance", rebalance, "--seed", str(SEED), "--folds", str(FOLDS)]
    if positive:
        command += ["--positive-label", positive]
    measured = measure(command, env)
    result = CaseResult(case, "baseline", measured.wall_seconds, measured.peak_rss_mb, False)
    result.cpu_seconds, result.peak_threads = measured.cpu_seconds, measured.peak_threads
    if measured.returncode != 0:
        result.note = measured.stderr_tail.strip().splitlines()[-1] if measured.stderr_tail else ""
        return result
    payload = json.loads(measured.stdout.strip().splitlines()[-1])
    result.ok = True
    result.stage_seconds = payload["stage_seconds"]
    result.cv_score = payload["cv_score"]
    result.test_score = payload["test_score"]
    result.best_family = payload["best_family"]
    return result


def side_by_side(
    case: str,
    baseline: Any,
    tabpipe_args: list[str],
    modes: list[str],
    envs: dict[str, dict[str, str]],
    repeats: int,
) -> list[CaseResult]:
    """Baseline and tabpipe (per Prefect mode) in turn; the order rotates with each repeat."""
    runners = ["baseline", *(f"tabpipe-{mode}" for mode in modes)]
    results = []
    for repeat in range(repeats):
        order = runners[repeat % len(runners) :] + runners[: repeat % len(runners)]
        for runner in order:
            if runner == "baseline":
                result = baseline()
            else:
                result = run_tabpipe(case, runner, tabpipe_args, envs[runner.split("-", 1)[1]])
            status = "ok" if result.ok else f"FAILED {result.note}"
            busy = result.cpu_seconds / result.wall_seconds
            print(
                f"{case:<36} {runner:<18} {result.wall_seconds:7.1f} s "
                f"{result.peak_rss_mb:7.0f} MB {busy:4.2f} cores {result.peak_threads:3d} threads "
                f"{status}",
                flush=True,
            )
            results.append(result)
    return results


def generated_cases(args: argparse.Namespace, envs: dict[str, dict[str, str]]) -> list[CaseResult]:
    results = []
    for size in args.sizes:
        paths = ensure_data(SIZES[size])
        for fmt in args.formats:
            for rebalance in args.rebalance:
                case = f"generated-{size}-{fmt}-{rebalance}".replace("_", "-")
                config = tabpipe_config(case, paths[fmt], rebalance, {})
                results += side_by_side(
                    case,
                    lambda p=paths[fmt], r=rebalance, c=case: run_baseline(
                        c, p, TARGET, r, "yes", envs["plain"]
                    ),
                    [str(config)],
                    args.modes,
                    envs,
                    args.repeats,
                )
    return results


def bundled_cases(args: argparse.Namespace, envs: dict[str, dict[str, str]]) -> list[CaseResult]:
    results = []
    for name, spec in BUNDLED.items():
        config = ROOT / str(spec["config"])
        data = ROOT / yaml.safe_load(config.read_text())["data"]
        overrides = [
            f"models={json.dumps(MODELS)}",
            f"grids={json.dumps(GRIDS)}",
            "rebalance=[class_weight]",
            f"split.cv_folds={FOLDS}",
            "split.test_size=0.2",
            f"seed={SEED}",
        ]
        tabpipe_args = [str(config)] + [arg for o in overrides for arg in ("--set", o)]
        results += side_by_side(
            f"{name}-class-weight",
            lambda d=data, s=spec, n=name: run_baseline(
                f"{n}-class-weight",
                d,
                str(s["target"]),
                "class_weight",
                s["positive"],
                envs["plain"],
            ),
            tabpipe_args,
            args.modes,
            envs,
            args.repeats,
        )
    return results


def halving_case(envs: dict[str, dict[str, str]]) -> list[CaseResult]:
    """Exhaustive grid vs successive halving on 100k rows, 24 candidates, against the server."""
    paths = ensure_data(SIZES["100k"])
    results = []
    for strategy in ("grid", "halving"):
        case = f"search-{strategy}-100k-24-candidates"
        extra = {
            "models": ["hist_gradient_boosting"],
            "grids": HALVING_GRID,
            "search": {"strategy": strategy},
        }
        config = tabpipe_config(case, paths["parquet"], "class_weight", extra)
        config_text = yaml.safe_load(config.read_text())
        config_text["rebalance"] = ["class_weight", "random_under"]
        config.write_text(yaml.safe_dump(config_text), encoding="utf-8")
        result = run_tabpipe(case, "tabpipe-server", [str(config)], envs["server"])
        print(f"{case:<36} {result.wall_seconds:7.1f} s cv={result.cv_score}", flush=True)
        results.append(result)
    return results


def budget_case(envs: dict[str, dict[str, str]]) -> list[CaseResult]:
    """search.time_budget on 100k rows with zero-config families and grids, against the
    server: how close the search stage ends to its budget, and what it found in it."""
    paths = ensure_data(SIZES["100k"])
    results = []
    for minutes in BUDGET_MINUTES:
        case = f"budget-{round(minutes * 60)}s-100k"
        config = {
            "name": case,
            "data": str(paths["parquet"]),
            "target": TARGET,
            "positive_label": "yes",
            "search": {"time_budget": minutes},
            "seed": SEED,
        }
        path = RESULTS_DIR / "configs" / f"{case}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        result = run_tabpipe(case, "tabpipe-server", [str(path)], envs["server"])
        searched = result.stage_seconds.get("search", 0.0)
        print(
            f"{case:<36} search {searched:6.1f} s of {minutes * 60:.0f} s, wall "
            f"{result.wall_seconds:.1f} s, {result.note}",
            flush=True,
        )
        results.append(result)
    return results


def budget_rows(result: CaseResult) -> tuple[float, float]:
    """(budget seconds, search-stage seconds) of a budget case."""
    return float(result.case.split("-")[1].removesuffix("s")), result.stage_seconds.get(
        "search", 0.0
    )


def fixed_cost_case(envs: dict[str, dict[str, str]], repeats: int) -> list[CaseResult]:
    """A tiny run (500 rows, both families) against the running server, and the floor on the
    same file: tabpipe's fixed cost is the difference."""
    paths = ensure_data(500)
    config = tabpipe_config("tiny-500", paths["csv"], "class_weight", {})
    results = []
    for _ in range(repeats):
        result = run_tabpipe("tiny-500", "tabpipe-server", [str(config)], envs["server"])
        floor = run_baseline("tiny-500", paths["csv"], TARGET, "class_weight", "yes", envs["plain"])
        print(
            f"tiny-500 fixed cost {result.wall_seconds:7.1f} s (floor {floor.wall_seconds:.1f} s) "
            f"{result.stage_seconds}",
            flush=True,
        )
        results += [result, floor]
    return results


# Mistakes a user makes on the command line (issue 12: answered before any server, under 2 s).
MISTAKES = {
    "answer-wrong-target": ["--data", "data/penguins.csv", "--target", "specis"],
    "answer-missing-file": ["--data", "no/such/file.csv", "--target", "species"],
    "answer-bad-key": ["configs/penguins.yaml", "--set", "splitt.cv_folds=3"],
}


def answer_cases(envs: dict[str, dict[str, str]], repeats: int) -> list[CaseResult]:
    """How long a mistake takes to be answered (exit 2, one sentence), with no server up."""
    results = []
    for case, args in MISTAKES.items():
        for _ in range(repeats):
            measured = measure(
                [sys.executable, "-m", "flows.cli.main", "train", *args], envs["plain"]
            )
            result = CaseResult(case, "tabpipe", measured.wall_seconds, measured.peak_rss_mb, False)
            result.ok = measured.returncode == 2
            result.note = (
                measured.stderr_tail.strip().splitlines()[-1][:160] if measured.stderr_tail else ""
            )
            print(f"{case} {result.wall_seconds:5.2f} s exit {measured.returncode}", flush=True)
            results.append(result)
    return results


def answers_table(results: list[CaseResult]) -> list[str]:
    from statistics import median

    rows = [r for r in results if r.case.startswith("answer-")]
    if not rows:
        return []
    lines = ["", "Mistakes answered before any server starts (no server up; median of runs):", ""]
    lines += ["| mistake | wall s (median) | runs | exit 2 | the answer |", "|---|---|---|---|---|"]
    for case in MISTAKES:
        mine = [r for r in rows if r.case == case]
        if mine:
            walls = [r.wall_seconds for r in mine]
            answer = mine[-1].note.replace("|", "\\|")
            lines.append(
                f"| {case.removeprefix('answer-')} | {median(walls):.2f} "
                f"({min(walls):.2f}-{max(walls):.2f}) | {len(mine)} "
                f"| {all(r.ok for r in mine)} | {answer} |"
            )
    return lines


def fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def ratio_text(pairs: list[tuple[float, float]]) -> str:
    """Median of the ratios of runs measured back to back, with their range when repeated."""
    from statistics import median

    ratios = sorted(mine / theirs for mine, theirs in pairs)
    text = f"{median(ratios):.2f}"
    return (
        text if len(ratios) == 1 else f"{text} ({ratios[0]:.2f}-{ratios[-1]:.2f}, n={len(ratios)})"
    )


def comparison_table(results: list[CaseResult]) -> str:
    """One row per case and Prefect mode. Ratios pair each tabpipe run with the baseline run of
    the same repeat (measured back to back), so a noisy minute spoils one pair, not the row;
    seconds and MB are medians."""
    from statistics import median

    by_case: dict[str, dict[str, list[CaseResult]]] = {}
    for r in results:
        by_case.setdefault(r.case, {}).setdefault(r.runner, []).append(r)
    lines = [
        "| case | prefect | tabpipe s | baseline s | wall ratio | tabpipe MB | baseline MB "
        "| memory ratio | busy cores t / b | peak threads t / b | tabpipe stages (s) "
        "| test score t / b |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for case, runners in by_case.items():
        base = runners.get("baseline", [])
        for runner, rows in runners.items():
            pairs = [(r, b) for r, b in zip(rows, base, strict=False) if r.ok and b.ok]
            if runner == "baseline" or not pairs:
                continue
            mine, theirs = [p[0] for p in pairs], [p[1] for p in pairs]
            fastest = min(mine, key=lambda r: r.wall_seconds)
            stages = ", ".join(f"{k} {v:.1f}" for k, v in fastest.stage_seconds.items())
            busy = f"{median(r.cpu_seconds / r.wall_seconds for r in mine):.2f} / "
            busy += f"{median(r.cpu_seconds / r.wall_seconds for r in theirs):.2f}"
            lines.append(
                f"| {case} | {runner.removeprefix('tabpipe-')} "
                f"| {median(r.wall_seconds for r in mine):.1f} "
                f"| {median(r.wall_seconds for r in theirs):.1f} "
                f"| {ratio_text([(a.wall_seconds, b.wall_seconds) for a, b in pairs])} "
                f"| {median(r.peak_rss_mb for r in mine):.0f} "
                f"| {median(r.peak_rss_mb for r in theirs):.0f} "
                f"| {ratio_text([(a.peak_rss_mb, b.peak_rss_mb) for a, b in pairs])} "
                f"| {busy} | {fastest.peak_threads} / {theirs[0].peak_threads} "
                f"| {stages} | {fmt(mine[0].test_score, 3)} / {fmt(theirs[0].test_score, 3)} |"
            )
    return "\n".join(lines)


def extra_tables(results: list[CaseResult]) -> str:
    lines = []
    search = {r.case: r for r in results if r.case.startswith("search-") and r.ok}
    grid = search.get("search-grid-100k-24-candidates")
    halving = search.get("search-halving-100k-24-candidates")
    if grid and halving:
        lines += [
            "",
            "Successive halving vs exhaustive grid (100k rows, hist gradient boosting, 24 "
            "candidates, 3-fold, against the running server):",
            "",
            "| strategy | wall s | search s | best CV PR-AUC | test PR-AUC |",
            "|---|---|---|---|---|",
        ]
        for r in (grid, halving):
            lines.append(
                f"| {r.case.split('-')[1]} | {r.wall_seconds:.1f} "
                f"| {r.stage_seconds.get('search', 0):.1f} | {fmt(r.cv_score, 4)} "
                f"| {fmt(r.test_score, 4)} |"
            )
        score_gap = (grid.cv_score or 0) - (halving.cv_score or 0)
        search_ratio = halving.stage_seconds["search"] / grid.stage_seconds["search"]
        lines.append(
            f"\nHalving: best CV score of the grid minus halving's {fmt(score_gap, 4)}, "
            f"search time ratio {search_ratio:.2f}, "
            f"wall ratio {halving.wall_seconds / grid.wall_seconds:.2f}."
        )
    budgeted = [r for r in results if r.case.startswith("budget-") and r.ok]
    if budgeted:
        lines += [
            "",
            "Time budget (search.time_budget, 100k rows, zero-config families, running server):",
            "",
            "| budget s | search stage s | search / budget | wall s | best | CV score | what ran |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in budgeted:
            budget, searched = budget_rows(r)
            lines.append(
                f"| {budget:.0f} | {searched:.1f} | {searched / budget:.2f} | "
                f"{r.wall_seconds:.1f} | {r.best_family} | {fmt(r.cv_score, 4)} | {r.note} |"
            )
    tiny = [r for r in results if r.case == "tiny-500" and r.ok and r.runner != "baseline"]
    floors = [r for r in results if r.case == "tiny-500" and r.ok and r.runner == "baseline"]
    if tiny:
        lines += ["", "Fixed cost of a tiny run (500 rows, two families, running server):", ""]
        lines += [
            "| tabpipe wall s | floor wall s | difference s | stages (s) |",
            "|---|---|---|---|",
        ]
        for r, floor in zip(tiny, floors + [None] * len(tiny), strict=False):
            stages = ", ".join(f"{k} {v:.2f}" for k, v in r.stage_seconds.items())
            base = floor.wall_seconds if floor else None
            gap = r.wall_seconds - base if base is not None else None
            lines.append(f"| {r.wall_seconds:.1f} | {fmt(base)} | {fmt(gap)} | {stages} |")
    lines += answers_table(results)
    lines += targets_table(results)
    return "\n".join(lines)


def targets_table(results: list[CaseResult]) -> list[str]:
    """The issue-15 targets against the running server, computed from the paired runs."""
    from statistics import median

    rows = []
    for size in ("100k", "1m"):
        pairs = paired(results, f"generated-{size}-")
        if pairs:
            wall = median(a.wall_seconds / b.wall_seconds for a, b in pairs)
            memory = median(a.peak_rss_mb / b.peak_rss_mb for a, b in pairs)
            verdict = "met" if wall <= 1.0 else "missed"
            goal = " (goal 0.8 met)" if wall <= 0.8 else ""
            rows.append(
                f"| wall at {size}, tabpipe / floor, same grids <= 1.0 | {wall:.2f} "
                f"(median of {len(pairs)}) | {verdict}{goal} |"
            )
            rows.append(
                f"| memory at {size} <= 1.25 | {memory:.2f} | "
                f"{'met' if memory <= 1.25 else 'missed'} |"
            )
    gaps = [
        t.wall_seconds - f.wall_seconds
        for t, f in zip(
            [r for r in results if r.case == "tiny-500" and r.ok and r.runner != "baseline"],
            [r for r in results if r.case == "tiny-500" and r.ok and r.runner == "baseline"],
            strict=False,
        )
    ]
    if gaps:
        gap = median(gaps)
        rows.append(
            f"| tiny run within 1.5 s of the floor | {gap:.1f} s | "
            f"{'met' if gap <= 1.5 else 'missed'} |"
        )
    budgeted = [budget_rows(r) for r in results if r.case.startswith("budget-") and r.ok]
    if budgeted:
        worst = max(searched / budget for budget, searched in budgeted)
        rows.append(
            f"| search within 10% of its time budget | {worst:.2f} x the budget (worst of "
            f"{len(budgeted)}) | {'met' if worst <= 1.10 else 'missed'} |"
        )
    if not rows:
        return []
    return [
        "",
        "Targets (running server):",
        "",
        "| target | measured | verdict |",
        "|---|---|---|",
        *rows,
    ]


def paired(results: list[CaseResult], prefix: str) -> list[tuple[CaseResult, CaseResult]]:
    """(tabpipe against the server, baseline) runs of the cases starting with prefix, by repeat."""
    pairs = []
    for case in sorted({r.case for r in results if r.case.startswith(prefix)}):
        mine = [r for r in results if r.case == case and r.runner == "tabpipe-server" and r.ok]
        base = [r for r in results if r.case == case and r.runner == "baseline" and r.ok]
        pairs += list(zip(mine, base, strict=False))
    return pairs


def write_readme(results: list[CaseResult], command: str) -> None:
    """Replace the measured table between the markers of benchmarks/README.md."""
    table = "\n".join(
        [
            TABLE_START,
            f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} with `{command}` "
            f"({os.cpu_count()} cores, shared):",
            "",
            comparison_table(results),
            extra_tables(results),
            TABLE_END,
        ]
    )
    text = (
        README.read_text(encoding="utf-8") if README.exists() else f"{TABLE_START}\n{TABLE_END}\n"
    )
    head, rest = text.split(TABLE_START, 1)
    README.write_text(head + table + rest.split(TABLE_END, 1)[1], encoding="utf-8")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", nargs="+", choices=list(SIZES), default=["100k", "1m"])
    parser.add_argument("--with-1m", action="store_true", help="Add 1M rows (the default has it).")
    parser.add_argument("--formats", nargs="+", choices=["csv", "parquet"], default=["parquet"])
    parser.add_argument(
        "--rebalance",
        nargs="+",
        choices=["class_weight", "random_under", "smote"],
        default=["class_weight", "random_under"],
    )
    parser.add_argument("--modes", nargs="+", choices=["server", "ephemeral"], default=["server"])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=["generated", "bundled", "halving", "budget", "fixed-cost", "answers"],
    )
    parser.add_argument(
        "--no-readme", action="store_true", help="Do not rewrite benchmarks/README.md."
    )
    parser.add_argument(
        "--report",
        nargs="+",
        type=Path,
        metavar="RESULTS_JSON",
        help="Measure nothing: rewrite the README table from earlier results files.",
    )
    args = parser.parse_args(argv)
    if args.with_1m and "1m" not in args.sizes:
        args.sizes.append("1m")
    return args


def load_results(paths: list[Path]) -> list[CaseResult]:
    return [CaseResult(**row) for path in paths for row in json.loads(path.read_text())]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.report:
        earlier = load_results(args.report)
        print(comparison_table(earlier))
        print(extra_tables(earlier))
        write_readme(earlier, "python -m benchmarks.run " + " ".join(sys.argv[1:]))
        return
    (RESULTS_DIR / "runs").mkdir(parents=True, exist_ok=True)
    compile_tabpipe()
    prefect_home = ROOT / ".prefect"  # persistent: a fresh one costs database migrations
    envs = {"plain": base_env(prefect_home), "ephemeral": base_env(prefect_home)}
    envs["ephemeral"]["PREFECT_SERVER_EPHEMERAL_ENABLED"] = "true"
    with prefect_server(RESULTS_DIR / "prefect-server-home") as api_url:
        envs["server"] = {**base_env(prefect_home), "PREFECT_API_URL": api_url}
        results: list[CaseResult] = []
        if "answers" not in args.skip:
            results += answer_cases(envs, 3)
        if "fixed-cost" not in args.skip:
            results += fixed_cost_case(envs, 3)
        if "generated" not in args.skip:
            results += generated_cases(args, envs)
        if "bundled" not in args.skip:
            results += bundled_cases(args, envs)
        if "halving" not in args.skip:
            results += halving_case(envs)
        if "budget" not in args.skip:
            results += budget_case(envs)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    out = RESULTS_DIR / f"results-{stamp}.json"
    out.write_text(json.dumps([asdict(r) for r in results], indent=2), encoding="utf-8")
    print(f"results: {out}")
    print(comparison_table(results))
    print(extra_tables(results))
    if not args.no_readme:
        write_readme(
            results, "python -m benchmarks.run " + " ".join(sys.argv[1:] if argv is None else argv)
        )


if __name__ == "__main__":
    main()
