"""`c2gr-fed audit RUN_DIR`: verify the transfer log and the privacy audits of a run; non-zero exit on a violation."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from ..errors import RunDirError


def audit_command(args: argparse.Namespace, console: Console) -> int:
    from ..privacy.audit import audit_run, write_audit

    run_dir = Path(args.run_dir)
    try:
        rep = audit_run(run_dir, key_path=Path(args.key) if args.key else None, head=args.head)
    except FileNotFoundError as exc:
        raise RunDirError(str(exc)) from None
    md, js = write_audit(run_dir, rep)
    t = rep["totals"]["by_direction"]
    console.print(f"transfer log: {rep['chain']['entries']} entries, chain "
                  f"{'intact' if rep['chain']['intact'] else '[bold red]BROKEN[/]'}"
                  f"{' (key checked)' if rep['chain']['key_checked'] else ''}, head {str(rep['chain']['head'])[:16]}; "
                  f"{rep['schema']['messages_rechecked']} messages re-checked against the declared schema", highlight=False)
    if rep.get("log_format") == "legacy":
        console.print("[yellow]the transfer log predates the current format[/] (written by an earlier version): "
                      "it cannot be audited as whole; re-run the scenario for an auditable log", highlight=False)
    for d, v in t.items():
        console.print(f"  {d}: {v['messages']} messages, {v['bytes'] / 2**20:.2f} MiB", highlight=False)
    mem = rep.get("memorisation")
    if mem:
        tasks = mem.get("tasks", {})
        flagged = [k for k, m in tasks.items() if m.get("flagged", 0) >= 1]
        console.print(f"memorisation audit: {len(tasks)} task(s), flagged: {flagged or 'none'}", highlight=False)
    for w in rep["warnings"]:
        console.print(f"[yellow]warning:[/] {w}", highlight=False)
    console.print(f"wrote {md} and {js.name}", highlight=False)
    if rep["ok"]:
        console.print("[bold green]audit passed[/]")
        return 0
    probs = rep["problems"]
    console.print(f"[bold red]audit FAILED[/]: {len(probs)} violation(s)", highlight=False)
    for p in probs[: args.show]:
        console.print(f"  [{p['kind']}] {p['where']}: {p['what']}", highlight=False, markup=False)
    if len(probs) > args.show:
        console.print(f"  ... {len(probs) - args.show} more in {md}", highlight=False)
    return 1
