"""`c2gr-fed bench SCENARIO --methods ... [--seeds ...]`: run methods x seeds, then the Table-1-style comparison.

Each run is a full `c2gr-fed run` in its own process (its own Ray), so a failure stays in its run directory.
`--jobs N` runs N at once (Ray places each run's departments; on a 2-core machine keep N = 1).
`--tabulate-only` runs nothing: it tabulates the complete runs already in the runs folder (for instance runs of
several bench commands gathered into one folder) and names every (method, seed) it did not find complete.
`--runs DIR --run-name PATTERN` point it at another folder and naming, for instance the exported runs committed
under benchmarks/results (`--run-name '{method}-genx400-seed{seed}'`).
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rich.console import Console

from ..errors import C2GRError
from ..learning import METHOD_SPECS
from ..scenario import load_scenario, scenario_differences
from .main import data_root_of


# Settings that change how fast or how audited a run is, not what it learns: runs that differ from the bench's
# settings only in these are tabulated (the bench says so) instead of being refused.
EXECUTION_ONLY = frozenset({"training.threads", "privacy.memorisation_audit", "federation.round_timeout_s",
                            "federation.retries"})


def learnable_params(scenario_path: Path, overrides: list[str], method: str) -> int:
    from ..learning import build_state

    sc = load_scenario(scenario_path, [*overrides, f"method={method}"])
    state = build_state(sc)
    n = sum(p.numel() for m in state.modules().values() for p in m.parameters() if p.requires_grad)
    if state.method.name == "individual":  # IndividualTrain trains (and keeps) one model per task of the stream
        n *= len(sc.stream())
    return n


def bench_command(args: argparse.Namespace, console: Console) -> int:
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHOD_SPECS]
    if unknown:
        raise C2GRError(f"unknown methods {unknown}; methods: {', '.join(METHOD_SPECS)}")
    seeds = [int(s) for s in str(args.seeds).split(",")]
    sc = load_scenario(args.scenario, args.overrides)  # validate once, before anything runs
    out: Path = args.out or Path("benchmarks/results") / f"bench-{sc.name}"
    runs_root: Path = getattr(args, "runs", None) or out.parent / (out.name + "-runs")
    run_name = getattr(args, "run_name", None) or "{method}-seed{seed}"
    if "{method}" not in run_name or "{seed}" not in run_name:
        raise C2GRError(f"--run-name {run_name!r} must contain both {{method}} and {{seed}}")
    data_root = data_root_of(args)
    tabulate_only = bool(getattr(args, "tabulate_only", False))
    if not tabulate_only:  # a missing or unreadable data folder stops the bench here, not in every run
        from ..data.loading import check_task_source

        for task in sc.stream():
            check_task_source(sc, task, data_root)
    # every run gets the data root explicitly (absolute: the runs may resolve paths elsewhere)
    root_args = ["--data-root", str(data_root.expanduser().resolve())] if data_root is not None else []
    jobs = []
    for m in methods:
        for s in seeds:
            run_dir = runs_root / run_name.format(method=m, seed=s)
            cmd = [sys.executable, "-m", "c2gr_fed.cli.main", "run", str(args.scenario), "--method", m,
                   "--set", f"seed={s}", *[a for o in args.overrides for a in ("--set", o)], "--out", str(run_dir),
                   *root_args]
            if (run_dir / "checkpoints" / "latest.json").exists():
                cmd = [sys.executable, "-m", "c2gr_fed.cli.main", "run", "--resume", str(run_dir), *root_args]
            jobs.append((m, s, run_dir, cmd))
    diffs = {(m, s): _settings_mismatch(run_dir, args.scenario, args.overrides, m, s) for m, s, run_dir, _ in jobs}
    mismatched = {k: learning for k, d in diffs.items() if (learning := [f for f in d if f not in EXECUTION_ONLY])}
    for (m, s), d in diffs.items():
        if d and (m, s) not in mismatched:
            console.print(f"  {m} seed {s}: [yellow]run with other execution settings ({_fields(d)}); same learning "
                          "settings, so it is tabulated, but its wall time is not comparable[/]")
    if mismatched and not tabulate_only:
        (m, s), diff = next(iter(mismatched.items()))
        raise C2GRError(
            f"{runs_root / run_name.format(method=m, seed=s)} was run with other settings than this command asks for "
            f"({_fields(diff)}); resuming or reusing it would mix settings in one table. Give another --out or "
            "remove that run directory")
    console.print(f"bench: {len(methods)} methods x {len(seeds)} seeds = {len(jobs)} runs -> {runs_root}")

    def run_one(job):
        m, s, run_dir, cmd = job
        if _complete(run_dir):
            return m, s, run_dir, 0, "already complete"
        t0 = time.perf_counter()
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        with open(_log_path(run_dir), "w") as log:
            rc = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT)
        return m, s, run_dir, rc, f"{time.perf_counter() - t0:.0f} s"

    failed = []
    if tabulate_only:
        for m, s, run_dir, _ in jobs:
            if (m, s) in mismatched:
                console.print(f"  {m} seed {s}: [yellow]{run_dir} was run with other settings "
                              f"({_fields(mismatched[(m, s)])}); left out of the table[/]")
                failed.append((m, s))
            elif not _complete(run_dir):
                console.print(f"  {m} seed {s}: [yellow]no complete run at {run_dir}; left out of the table[/]")
                failed.append((m, s))
    jobs_to_run = [] if tabulate_only else jobs
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for m, s, run_dir, rc, note in pool.map(run_one, jobs_to_run):
            status = "[green]ok[/]" if rc == 0 else f"[red]failed (exit {rc}); see {_log_path(run_dir)}[/]"
            console.print(f"  {m} seed {s}: {status} {note}")
            if rc != 0:
                failed.append((m, s))
    from ..reporting.bench import bench_table

    by_method = {m: [r for mm, s, r, _ in jobs if mm == m and (mm, s) not in failed] for m in methods}
    by_method = {m: v for m, v in by_method.items() if v}
    if not by_method:
        raise C2GRError(f"no complete run to tabulate in {runs_root}" if tabulate_only
                        else "every run failed; see the logs beside the run directories")
    params = {m: learnable_params(args.scenario, args.overrides, m) for m in by_method}
    bench_table(by_method, params, out)
    cmdline = "c2gr-fed " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    _record_command(out.with_name(out.name + ".command.txt"), cmdline)
    console.print(out.with_suffix(".md").read_text())
    console.print(f"wrote {out}.md/.csv/.json/.png")
    return 1 if failed and not tabulate_only else 0


def _record_command(path: Path, cmdline: str) -> None:
    """Append this bench command to the table's command file (the runs' commands written before stay), unless it
    is already the file's last command (re-tabulating with the same command adds nothing)."""
    lines = path.read_text().splitlines() if path.exists() else []
    last = next((line.split("   #")[0].strip() for line in reversed(lines) if line.strip()), None)
    if last != cmdline:
        path.write_text("".join(f"{line}\n" for line in [*lines, cmdline]))


def _log_path(run_dir: Path) -> Path:
    """Where a bench run's console output goes: beside its run directory."""
    return run_dir.with_name(run_dir.name + ".log")


def _settings_mismatch(run_dir: Path, scenario: Path, overrides: list[str], method: str, seed: int) -> list[str]:
    """Settings in which an existing run directory's own scenario differs from what the bench asks for."""
    saved = run_dir / "scenario.yaml"
    if not saved.exists():
        return []
    expected = load_scenario(scenario, [*overrides, f"seed={seed}", f"method={method}"])
    try:
        return scenario_differences(load_scenario(saved), expected)
    except C2GRError as exc:
        return [f"unreadable scenario.yaml: {exc}"]


def _fields(diff: list[str], shown: int = 4) -> str:
    more = f" and {len(diff) - shown} more" if len(diff) > shown else ""
    return "differs in " + ", ".join(diff[:shown]) + more


def _complete(run_dir: Path) -> bool:
    import json

    try:
        s = json.loads((run_dir / "summary.json").read_text())
        return s["completed_rounds"] == s["total_rounds"]
    except (OSError, ValueError, KeyError):
        return False
