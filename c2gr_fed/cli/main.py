"""`c2gr-fed` console script: one verb per command, clear errors, non-zero exit on failure."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from rich.console import Console

from ..errors import C2GRError
from ..learning.methods import METHOD_SPECS

# Width of the output when it is not a terminal (CI logs, `tee`, a file): wide enough that no table wraps its
# columns, and no message is broken across lines; a terminal keeps its own width.
LOG_WIDTH = 240


def make_console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(stderr=stderr)
    return Console(stderr=stderr, width=LOG_WIDTH, soft_wrap=True)


console = make_console(stderr=False)
err_console = make_console(stderr=True)


class _OrderedArms(argparse.Action):
    """Collects `--methods` and `--arm` values into one list of (option, value), in command-line order, so the
    table's rows follow the command."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values, option_string=None):
        items = list(getattr(namespace, self.dest, None) or [])
        items.append((option_string, values))
        setattr(namespace, self.dest, items)


def _add_scenario_args(p: argparse.ArgumentParser, optional: bool = False) -> None:
    if optional:
        p.add_argument("scenario", nargs="?", type=Path, help="scenario YAML (e.g. scenarios/20tasks.yaml)")
    else:
        p.add_argument("scenario", type=Path, help="scenario YAML (e.g. scenarios/20tasks.yaml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a scenario field, e.g. --set training.epochs=3 (validated like the file)")
    p.add_argument("--data-root", type=Path, default=None,
                   help="root of real data folders (default: $C2GR_DATA_ROOT)")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="c2gr-fed", description=__doc__)
    ap.add_argument("--verbose", action="store_true", help="show tracebacks and Flower/Ray logs")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="validate a scenario and print its stream")
    _add_scenario_args(p)
    p.add_argument("--no-data-check", action="store_true", help="skip checking that every task's data is there")
    p.add_argument("--quick", action="store_true",
                   help="open only a sample of each task's files (first, last, one of each file type) instead of all")

    p = sub.add_parser("preview", help="write a PNG grid of image/mask overlays per task")
    _add_scenario_args(p)
    p.add_argument("--out", type=Path, required=True, help="PNG file to write")
    p.add_argument("--per-task", type=int, default=6)
    p.add_argument("--split", choices=["train", "val", "test"], default="train")

    p = sub.add_parser("run", help="run the task stream through the federated simulator")
    _add_scenario_args(p, optional=True)
    p.add_argument("--method", default=None,
                   help=f"learning method, overrides the scenario's: {', '.join(METHOD_SPECS)} (docs/methods.md)")
    p.add_argument("--out", type=Path, default=None, help="run directory (default: runs/<scenario>-<method>-<time>)")
    p.add_argument("--resume", type=Path, default=None, metavar="RUN_DIR", help="continue a run after its last complete round")
    p.add_argument("--verbose", action="store_true", help="show tracebacks and Flower/Ray logs")

    p = sub.add_parser("deploy-local", help="run a scenario on Flower's deployment engine as local processes (127.0.0.1)")
    _add_scenario_args(p, optional=True)
    p.add_argument("--out", type=Path, default=None, help="run directory (default: runs/<scenario>-<method>-deploy-<time>)")
    p.add_argument("--resume", type=Path, default=None, metavar="RUN_DIR",
                   help="continue a run (made by deploy-local or run) after its last complete round")
    p.add_argument("--secure", action="store_true", help="TLS on every connection + SuperNode authentication")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for the run to finish")
    p.add_argument("--json", action="store_true", help="also print run directory, run id and timings as JSON")

    p = sub.add_parser("bench", help="run several methods (and seeds) and write the Table-1-style comparison")
    _add_scenario_args(p)
    p.add_argument("--methods", dest="arms", action=_OrderedArms, default=[],
                   help=f"comma-separated arms: methods ({', '.join(METHOD_SPECS)}) or former variants' names "
                   "(docs/methods.md), each a row labelled by its name")
    p.add_argument("--arm", dest="arms", action=_OrderedArms, default=[], metavar="'LABEL=METHOD KEY=VALUE ...'",
                   help="an arm with settings, e.g. --arm 'c2gr-v=c2gr diffusion.prediction_type=v_prediction' "
                   "(repeatable; rows follow the order of --methods and --arm on the command line)")
    p.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    p.add_argument("--jobs", type=int, default=1, help="runs at once (each starts its own Ray)")
    p.add_argument("--out", type=Path, default=None, help="output stem (default benchmarks/results/bench-<scenario>)")
    p.add_argument("--tabulate-only", action="store_true",
                   help="run nothing; tabulate the complete runs already in <out>-runs (missing ones are named)")
    p.add_argument("--runs", type=Path, default=None, metavar="DIR", help="folder of the run directories (default <out>-runs)")
    p.add_argument("--run-name", default=None, metavar="PATTERN",
                   help="run directory name inside --runs (default '{method}-seed{seed}')")

    p = sub.add_parser("adapt", help="fine-tune runs' final segmentors on unseen downstream tasks (paper Table 2)")
    p.add_argument("runs", nargs="+", type=Path, help="run directories (same model settings)")
    p.add_argument("--downstream", type=Path, default=Path("scenarios/downstream-5tasks.yaml"))
    p.add_argument("--epochs", type=int, default=20, help="fixed fine-tuning budget per task")
    p.add_argument("--lr", type=float, default=None, help="default: the run's training.lr")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--data-root", type=Path, default=None)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/adapt"), help="output stem")

    p = sub.add_parser("report", help="(re)write report.md of runs and print a Table-1-style comparison")
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--out", type=Path, default=None, help="also write the comparison as markdown + CSV with this stem")

    p = sub.add_parser("export", help="copy a run's results (matrices, summary, report, figures; no weights) to a folder")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument("dest", type=Path, metavar="DEST")
    p.add_argument("--with-transfer-log", action="store_true", help="also copy transfers.jsonl (sizes and hashes only)")

    p = sub.add_parser("audit", help="verify a run's transfer log, wire schema and privacy audits; writes audit.md/.json")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument("--show", type=int, default=10, help="violations to print (all are in audit.md)")
    p.add_argument("--key", default=None, help="the run's transfer-log key (default RUN_DIR/keys/transfer-log.key): "
                   "with it, a rewritten chain is found")
    p.add_argument("--head", default=None, help="the log head (last entry's hash) recorded when the run ended: the "
                   "log must end exactly there")

    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    verbose = bool(getattr(args, "verbose", False))
    try:
        if args.command == "validate":
            from .validate_cmd import validate_command

            return validate_command(args, console)
        if args.command == "preview":
            from .validate_cmd import preview_command

            return preview_command(args, console)
        if args.command == "run":
            from .run_cmd import run_command

            return run_command(args, console, verbose)
        if args.command == "deploy-local":
            from .deploy_cmd import deploy_local_command

            return deploy_local_command(args, console)
        if args.command == "bench":
            from .bench_cmd import bench_command

            return bench_command(args, console)
        if args.command == "adapt":
            from .adapt_cmd import adapt_command

            return adapt_command(args, console)
        if args.command == "report":
            from .report_cmd import report_command

            return report_command(args, console)
        if args.command == "export":
            from .export_cmd import export_command

            return export_command(args, console)
        if args.command == "audit":
            from .audit_cmd import audit_command

            return audit_command(args, console)
    except C2GRError as exc:
        if verbose:
            err_console.print_exception()
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        return 2
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]: completed rounds are checkpointed; continue with --resume RUN_DIR")
        return 130
    return 1


def data_root_of(args: argparse.Namespace) -> Path | None:
    if getattr(args, "data_root", None):
        return Path(args.data_root)
    env = os.environ.get("C2GR_DATA_ROOT")
    return Path(env) if env else None


if __name__ == "__main__":
    sys.exit(main())
