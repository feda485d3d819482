"""`c2gr-fed run`: validate, set up the run directory, run the stream on Flower + Ray, report.

Progress: one bar for the stream (rounds) and one for the current department's replay synthesis and training
steps (read from the progress files the department nodes write). Exit status is non-zero on any failure,
whatever Flower itself reports.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import signal
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ..scenario.departures import departures_from_paper
from ..errors import C2GRError, RunDirError
from ..federation.settings import AppSettings, resolve_run_target, scenario_sha
from ..runs.checkpoint import atomic_write_text, load_checkpoint
from ..runs.layout import RunDir
from ..runs.lock import RunLock
from ..runs.stop import StopSwitch
from ..runs.timing import checkpointed_rounds, time_before_resume
from ..scenario import Scenario, dump_scenario
from .main import data_root_of

if TYPE_CHECKING:
    from ..learning import MethodSpec


def resolve_run(args: argparse.Namespace) -> tuple[Scenario, RunDir, bool]:
    overrides = list(args.overrides)
    if args.method:
        overrides.append(f"method={args.method}")
    return resolve_run_target(args.scenario, overrides, args.out, args.resume)


class Display:
    """Turns coordinator events and department progress files into rich progress bars."""

    def __init__(self, progress: Progress, scenario: Scenario, run: RunDir, console: Console) -> None:
        self.p = progress
        self.console = console
        self.run = run
        n = len(scenario.stream())
        self.stream_task = progress.add_task("stream", total=n)
        self.step_task = progress.add_task("waiting for departments", total=1, visible=True)
        self.current: dict[str, Any] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def event(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "resumed":
            self.p.update(self.stream_task, completed=data["completed_rounds"])
            self.console.print(f"resuming after round {data['completed_rounds']}")
        elif kind == "checkpoint_fallback":
            self.console.print(f"[yellow]{data['problem']}[/]; going on from the previous checkpoint (round "
                               f"{data['completed_rounds']}); the corrupt file is kept as *.corrupt", highlight=False)
        elif kind == "discovered":
            self.console.print(f"[dim]{len(data['departments'])} departments connected[/]")
        elif kind == "round_start":
            self.current = data
            self.p.update(self.stream_task, description=f"round {data['round'] + 1}/{data['total']}: {data['task']} "
                                                        f"@ {data['department']}")
            self.p.update(self.step_task, description="  starting", completed=0, total=1)
        elif kind == "evaluate_start":
            self.p.update(self.step_task, description=f"  evaluating at {data['departments']} departments")
        elif kind == "round_end":
            self.p.advance(self.stream_task)
            m = data["metrics"]
            own = data["row"].get(data["task"])
            self.console.print(
                f"round {data['round'] + 1}: {data['task']} Dice {own:.3f} | replay {int(m.get('replay_samples', 0))} pairs "
                f"in {m.get('time_replay_s', 0):.0f}s, train {m.get('time_train_s', 0):.0f}s, round {data['seconds']:.0f}s"
            )
        elif kind == "warning":
            self.console.print(f"[yellow]warning[/]: {data['text']}", highlight=False)
        elif kind in ("retry", "excluded", "evaluate_failed", "evaluate_refused"):
            self.console.print(f"[yellow]{kind}[/]: " + ", ".join(f"{k}={v}" for k, v in data.items()))

    def _poll(self) -> None:
        while not self._stop.wait(0.5):
            dept = self.current.get("department")
            if not dept:
                continue
            f = self.run.progress / f"{dept}.json"
            try:
                d = json.loads(f.read_text())
            except (OSError, ValueError):
                continue
            if d.get("round") != self.current.get("round"):
                continue
            label = "replay synthesis (pairs)" if d["stage"] == "replay" else "joint training (steps)"
            self.p.update(self.step_task, description=f"  {label}", completed=d["done"], total=max(d["total"], 1))


def run_command(args: argparse.Namespace, console: Console, verbose: bool) -> int:
    scenario, run, resuming = resolve_run(args)
    from ..data.file_check import open_task_files
    from ..federation.resources import check_machine
    from ..learning import method_spec

    spec = method_spec(scenario.method)
    check_machine(scenario)
    if not os.environ.get("RAY_ADDRESS"):  # on a cluster each department checks its own data on its node
        with console.status("checking every department's data source (opening a sample of its files)"):
            for task in scenario.stream():
                open_task_files(scenario, task, data_root_of(args), quick=True)
    run.ensure()
    lock = RunLock(run).acquire(_command_line())  # refused while another run holds this directory
    try:
        return _run_locked(args, console, verbose, scenario, run, resuming, spec)
    finally:
        lock.release()


def _command_line() -> str:
    if sys.argv[0].endswith("c2gr-fed"):
        return "c2gr-fed " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    return " ".join(shlex.quote(a) for a in sys.argv)


def _run_locked(args: argparse.Namespace, console: Console, verbose: bool, scenario: Scenario, run: RunDir,
                resuming: bool, spec: MethodSpec) -> int:
    if not resuming:
        if (run.checkpoints / "latest.json").exists():  # another run finished a round here since resolve_run looked
            raise RunDirError(f"{run.root} already holds a run: use --resume {run.root} or another --out")
        atomic_write_text(run.scenario, dump_scenario(scenario))
    info = {
        "scenario": scenario.name, "method": scenario.method, "scenario_sha": scenario_sha(scenario),
        "command": _command_line(),
        "started": dt.datetime.now().isoformat(timespec="seconds"), "status": "running",
        "python": platform.python_version(), "platform": platform.platform(),
        "breaks_data_locality": spec.breaks_locality, "method_summary": spec.summary,
    }
    info["departures_from_paper"] = departures_from_paper(scenario)
    earlier = 0.0
    if resuming:
        ck = load_checkpoint(run.checkpoints, fallback=True)  # a corrupt latest checkpoint: back to the previous
        if ck is not None and ck.fell_back:
            console.print(f"[yellow]{ck.fell_back}[/]; going on from the previous checkpoint (round "
                          f"{ck.completed_rounds}); the corrupt file is kept as *.corrupt", highlight=False)
        del ck
        done = checkpointed_rounds(run)
        before = time_before_resume(run, done)
        earlier = before.seconds
        info.update(started=before.first_started or info["started"], resumed=info["started"],
                    resumed_after_round=done, sessions=before.earlier_sessions + 1,
                    wall_s_before_resume=round(before.seconds, 1), wall_s_before_resume_from=before.source)
    atomic_write_text(run.run_json, json.dumps(info, indent=1))
    console.print(f"run directory: [bold]{run.root}[/]")
    if spec.breaks_locality:
        console.print(f"[yellow]method {spec.name!r} is a reference bound that BREAKS DATA LOCALITY[/]")

    stop = StopSwitch(run.progress)
    stop.clear()  # a stop file an earlier session left behind
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False, disable=not console.is_terminal and False) as progress:
        display = Display(progress, scenario, run, console)
        settings = AppSettings(scenario_path=str(run.scenario.resolve()), run_dir=str(run.root.resolve()),
                               data_root=str(data_root_of(args)) if data_root_of(args) else None, resume=resuming,
                               progress_dir=str(run.progress.resolve()), events=display.event,
                               should_stop=stop.should_stop)
        display.start()
        t0 = time.perf_counter()
        stop.install()
        try:
            launch_simulation(settings, scenario, verbose, stop, run.log)
        except BaseException as exc:  # noqa: BLE001 - record the failure, then re-raise a clear error
            wall = round(earlier + time.perf_counter() - t0, 1)
            display.stop()
            signum = stop.signal_number or _signal_exit(exc)
            if signum is not None:
                return _stopped(run, info, wall, signum, len(scenario.stream()), console)
            info.update(status="failed", error=str(exc)[-2000:], wall_s=wall)
            atomic_write_text(run.run_json, json.dumps(info, indent=1))
            cause = _c2gr_cause(exc)
            if cause is not None:
                raise _with_log(cause, run) from None
            if isinstance(exc, KeyboardInterrupt):
                raise
            if checkpointed_rounds(run) == 0:  # nothing to resume: no hint that suggests otherwise
                raise C2GRError(f"the run failed before its first round was complete: {_one_line(exc)} (details in "
                                f"{run.log})") from exc
            raise C2GRError(f"the run failed: {_one_line(exc)} (state of the last complete round is in "
                            f"{run.checkpoints}; continue with: c2gr-fed run --resume {run.root}; details in "
                            f"{run.log})") from exc
        finally:
            stop.uninstall()
        display.stop()
    info.update(status="complete", wall_s=round(earlier + time.perf_counter() - t0, 1),
                finished=dt.datetime.now().isoformat(timespec="seconds"))
    atomic_write_text(run.run_json, json.dumps(info, indent=1))
    from ..reporting.report import write_report

    report = write_report(run.root)
    summary = json.loads(run.summary.read_text())
    t = Table(title=f"{scenario.name} / {scenario.method}: after the last task")
    for col in ("Overall", "BWT (paper)", "BWT (classic)", "TL", "FWT", "wall time"):
        t.add_column(col)
    fmt = lambda x: "missing" if x is None else f"{x:.2f}"  # noqa: E731
    t.add_row(fmt(summary["overall"]), fmt(summary["bwt"]), fmt(summary["bwt_classic"]), fmt(summary["tl"]),
              fmt(summary["fwt"]), f"{info['wall_s']:.0f} s")
    console.print(t)
    console.print(f"report: [bold]{report}[/]")
    head = _log_head(run.transfers)
    if head:
        console.print(f"transfer log head: {head} (keep it apart from the run directory; "
                      f"c2gr-fed audit {run.root} --head {head} then detects a rewritten log)", highlight=False)
    return 0


def _log_head(path: Path) -> str | None:
    """The hash of the transfer log's last entry (its end event), or None when there is no log."""
    from ..privacy import read_log

    last = None
    if path.exists():
        for last in read_log(path):
            pass
    return str(last["hash"]) if last else None


def _one_line(exc: BaseException, limit: int = 300) -> str:
    """An exception's text on one line (Flower's and Ray's errors span many), shortened to `limit` characters."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _signal_exit(exc: BaseException) -> int | None:
    """The signal behind an exception that is not ours: Ray's SIGTERM handler (set while Ray starts, before ours
    is back) exits with SystemExit(15); Ctrl-C before our handler is installed is a KeyboardInterrupt."""
    if isinstance(exc, SystemExit) and exc.code == signal.SIGTERM:
        return int(signal.SIGTERM)
    if isinstance(exc, KeyboardInterrupt):
        return int(signal.SIGINT)
    return None


def _stopped(run: RunDir, info: dict[str, Any], wall: float, signum: int, total: int, console: Console) -> int:
    """A run stopped on request: keep the last complete round, record `interrupted`, say how to go on."""
    done = checkpointed_rounds(run)
    name = signal.Signals(signum).name
    info.update(status="interrupted", stopped_by=name, stopped_after_round=done, wall_s=wall,
                finished=dt.datetime.now().isoformat(timespec="seconds"))
    atomic_write_text(run.run_json, json.dumps(info, indent=1))
    console.print(f"stopped after round {done} of {total} ({name}); resume with: c2gr-fed run --resume {run.root}",
                  highlight=False)
    return 128 + signum


def _with_log(error: C2GRError, run: RunDir) -> C2GRError:
    """The same error, naming the run's log file (where the tracebacks went) when there is one."""
    if not run.log.exists() or run.log.stat().st_size == 0:
        return error
    try:
        return type(error)(f"{error} (details in {run.log})")
    except TypeError:  # an error type with another signature: keep it as it is
        return error


def _c2gr_cause(exc: BaseException) -> C2GRError | None:
    seen = 0
    e: BaseException | None = exc
    while e is not None and seen < 10:
        if isinstance(e, C2GRError):
            return e
        e = e.__cause__ or e.__context__
        seen += 1
    return None


def launch_simulation(settings: AppSettings, scenario: Scenario, verbose: bool, stop: StopSwitch | None = None,
                      log_file: Path | None = None) -> None:
    from departments.client_app import make_client_app
    from server.server_app import make_server_app

    from ..federation.simulation import launch

    from dataclasses import replace

    # the client app travels to Ray actors: it must not carry the CLI's display callback or stop switch
    launch(make_server_app(settings), make_client_app(replace(settings, events=None, should_stop=None)), scenario,
           verbose=verbose, stop=stop, log_file=log_file)
