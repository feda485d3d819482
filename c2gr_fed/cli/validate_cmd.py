"""`c2gr-fed validate` and `c2gr-fed preview`."""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from ..errors import DataError
from ..scenario import Scenario, load_scenario
from .main import data_root_of


def stream_table(scenario: Scenario) -> Table:
    t = Table(title=f"{scenario.name}: {len(scenario.stream())} tasks, {len(scenario.departments)} departments, "
                    f"method {scenario.method}, {scenario.image_size}x{scenario.image_size}")
    for col in ("#", "task", "department", "modality", "site / device", "region", "objective", "classes", "data"):
        t.add_column(col, overflow="fold")
    for i, task in enumerate(scenario.stream(), 1):
        d = task.data
        if d.kind == "phantom":
            src = f"phantom {d.generator}/{d.variant} ({d.n_train}/{d.n_val}/{d.n_test})"
        else:
            src = f"{d.kind} {d.root}"
        t.add_row(str(i), task.name, scenario.department_of(task.name), task.modality, task.site or "",
                  task.region, task.objective, ", ".join(task.classes), src)
    return t


def check_all_data(scenario: Scenario, args: argparse.Namespace, console: Console) -> None:
    """Open every task's files (or a sample with --quick); every task is checked, and the problems are raised
    together as one DataError with a line per department / task naming the path and what was expected."""
    from ..data.file_check import open_task_files

    quick = bool(getattr(args, "quick", False))
    opened, problems = [], []
    for task in scenario.stream():
        with console.status(f"opening the files of {task.name}"):
            try:
                opened.append(open_task_files(scenario, task, data_root_of(args), quick=quick))
            except DataError as exc:
                problems.append(f"  {scenario.department_of(task.name)} / {task.name}: {exc}")
    if problems:
        raise DataError(f"the data of {len(problems)} of {len(scenario.stream())} task(s) is missing or malformed "
                        "(nothing was trained):\n" + "\n".join(problems))
    files = sum(o.pairs for o in opened)
    what = "a sample of" if quick else "every file of"
    console.print(f"[green]data sources checked[/] for all {len(opened)} tasks"
                  + (f"; opened {what} the real-data tasks ({files} of {sum(o.of for o in opened)} pairs)"
                     if any(o.of for o in opened) else ""))


def validate_command(args: argparse.Namespace, console: Console) -> int:
    scenario = load_scenario(args.scenario, args.overrides)
    console.print(stream_table(scenario))
    if not args.no_data_check:
        check_all_data(scenario, args, console)
    console.print(f"[bold green]valid[/]: {args.scenario}")
    return 0


def preview_command(args: argparse.Namespace, console: Console) -> int:
    from ..reporting.preview import write_preview

    scenario = load_scenario(args.scenario, args.overrides)
    with console.status(f"rendering {len(scenario.stream())} tasks"):
        out = write_preview(scenario, args.out, data_root_of(args), per_task=args.per_task, split=args.split)
    console.print(f"[green]wrote[/] {out}")
    return 0
