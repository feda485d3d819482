"""`c2gr-fed bench SCENARIO --methods ... [--seeds ...]`: run methods x seeds, then the Table-1-style comparison.

Each run is a full `c2gr-fed run` in its own process (its own Ray), so a failure stays in its run directory.
`--jobs N` runs N at once (Ray places each run's departments; on a 2-core machine keep N = 1).
`--tabulate-only` runs nothing: it tabulates the complete runs already in the runs folder (for instance runs of
several bench commands gathered into one folder) and names every (method, seed) it did not find complete.
`--runs DIR --run-name PATTERN` point it at another folder and naming, for instance the exported runs committed
under benchmarks/results (`--run-name '{method}-genx400-seed{seed}'`).

An arm of the table is a method, a former method variant (`--methods c2gr-v`: its method with its settings,
labelled by the former name; c2gr_fed.learning.former_variants), or a label with a method and settings
(`--arm 'c2gr-v=c2gr diffusion.prediction_type=v_prediction'`). `{method}` in a run name is the arm's label.
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from ..errors import C2GRError
from ..learning.former_variants import FORMER_VARIANTS, unknown_method_message, variant_overrides
from ..learning.methods import METHOD_SPECS
from ..scenario import load_scenario, scenario_differences
from .main import data_root_of


# Settings that change how fast or how audited a run is, not what it learns: runs that differ from the bench's
# settings only in these are tabulated (the bench says so) instead of being refused.
EXECUTION_ONLY = frozenset({"training.threads", "privacy.memorisation_audit", "federation.round_timeout_s",
                            "federation.retries"})


@dataclass(frozen=True)
class Arm:
    """One row of the bench table: its label, the method it runs and the settings it adds (`--set` overrides)."""

    label: str
    method: str
    overrides: tuple[str, ...] = ()

    def scenario_overrides(self) -> list[str]:
        """The arm's settings and its method, as overrides after the bench's own."""
        return [*self.overrides, f"method={self.method}"]


_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def parse_arms(options: list[tuple[str, str]]) -> list[Arm]:
    """The bench's arms, in command-line order, from ("--methods", "a,b,...") and ("--arm", "LABEL=METHOD
    KEY=VALUE ...") pairs. A `--methods` name is a method, or a former variant (its method and settings, labelled
    by the former name). Labels must be unique."""
    out: list[Arm] = []
    for option, text in options:
        out.extend(_methods_arms(text) if option == "--methods" else [_arm(text)])
    if not out:
        raise C2GRError("bench needs --methods or at least one --arm")
    labels = [a.label for a in out]
    repeated = sorted({x for x in labels if labels.count(x) > 1})
    if repeated:
        raise C2GRError(f"arm labels repeat: {repeated}; give each arm its own label")
    return out


def _methods_arms(text: str) -> list[Arm]:
    out = []
    for name in [m.strip() for m in text.split(",") if m.strip()]:
        if name in METHOD_SPECS:
            out.append(Arm(name, name))
        elif name in FORMER_VARIANTS:
            out.append(Arm(name, FORMER_VARIANTS[name][0], tuple(variant_overrides(name))))
        else:
            raise C2GRError(f"--methods: {unknown_method_message(name)}; a former variant's name (c2gr-v, ...) "
                            "or --arm 'LABEL=METHOD KEY=VALUE ...' names an arm with settings")
    return out


def _arm(text: str) -> Arm:
    label, sep, rest = text.partition("=")
    words = rest.split()
    if not sep or not _LABEL.match(label.strip()) or not words:
        raise C2GRError(f"--arm {text!r}: expected 'LABEL=METHOD KEY=VALUE ...', e.g. "
                        "'c2gr-v=c2gr diffusion.prediction_type=v_prediction' (the label: letters, digits, '_.+-')")
    method, settings = words[0], words[1:]
    if method not in METHOD_SPECS:
        raise C2GRError(f"--arm {text!r}: {unknown_method_message(method)}")
    bad = [w for w in settings if "=" not in w]
    if bad:
        raise C2GRError(f"--arm {text!r}: settings are KEY=VALUE, got {bad}")
    return Arm(label.strip(), method, tuple(settings))


def learnable_params(scenario_path: Path, overrides: list[str], arm: Arm) -> int:
    from ..learning import build_state
    from ..learning.methods import fresh_model_each_task

    sc = load_scenario(scenario_path, [*overrides, *arm.scenario_overrides()])
    state = build_state(sc)
    n = sum(p.numel() for m in state.modules().values() for p in m.parameters() if p.requires_grad)
    if fresh_model_each_task(state.method):  # IndividualTrain trains (and keeps) one model per task of the stream
        n *= len(sc.stream())
    return n


def bench_command(args: argparse.Namespace, console: Console) -> int:
    arms = parse_arms(list(getattr(args, "arms", None) or []))
    by_label = {a.label: a for a in arms}
    for a in arms:
        if a.overrides:
            console.print(f"  arm {a.label}: method {a.method} with {' '.join('--set ' + o for o in a.overrides)}")
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
    for arm in arms:
        m = arm.label
        for s in seeds:
            run_dir = runs_root / run_name.format(method=m, seed=s)
            cmd = [sys.executable, "-m", "c2gr_fed.cli.main", "run", str(args.scenario), "--method", arm.method,
                   "--set", f"seed={s}", *[a for o in [*args.overrides, *arm.overrides] for a in ("--set", o)],
                   "--out", str(run_dir), *root_args]
            if (run_dir / "checkpoints" / "latest.json").exists():
                cmd = [sys.executable, "-m", "c2gr_fed.cli.main", "run", "--resume", str(run_dir), *root_args]
            jobs.append((m, s, run_dir, cmd))
    diffs = {(m, s): _settings_mismatch(run_dir, args.scenario, args.overrides, by_label[m], s)
             for m, s, run_dir, _ in jobs}
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
    console.print(f"bench: {len(arms)} arms x {len(seeds)} seeds = {len(jobs)} runs -> {runs_root}")

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

    by_method = {a.label: [r for mm, s, r, _ in jobs if mm == a.label and (mm, s) not in failed] for a in arms}
    by_method = {m: v for m, v in by_method.items() if v}
    if not by_method:
        raise C2GRError(f"no complete run to tabulate in {runs_root}" if tabulate_only
                        else "every run failed; see the logs beside the run directories")
    params = {m: learnable_params(args.scenario, args.overrides, by_label[m]) for m in by_method}
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


def _settings_mismatch(run_dir: Path, scenario: Path, overrides: list[str], arm: Arm, seed: int) -> list[str]:
    """Settings in which an existing run directory's own scenario differs from what the bench asks for (a run
    stored under a former variant's name reads as that variant's method and settings)."""
    saved = run_dir / "scenario.yaml"
    if not saved.exists():
        return []
    expected = load_scenario(scenario, [*overrides, f"seed={seed}", *arm.scenario_overrides()])
    try:
        return scenario_differences(load_scenario(saved, stored=True), expected)
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
