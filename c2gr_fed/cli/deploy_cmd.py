"""`c2gr-fed deploy-local`: the scenario on Flower's deployment engine as local processes on 127.0.0.1."""

from __future__ import annotations

import argparse
import json

from rich.console import Console

from .main import data_root_of


def deploy_local_command(args: argparse.Namespace, console: Console) -> int:
    from ..federation.deploy_local import deploy_local

    res = deploy_local(args.scenario, overrides=args.overrides, out=args.out, secure=args.secure,
                       data_root=data_root_of(args), timeout=args.timeout, resume=args.resume,
                       log=lambda s: console.print(f"[dim]{s}[/]", highlight=False))
    s = res.summary
    t = res.timings
    console.print(f"run {res.run_id}: {res.status.get('status')} | {s.get('completed_rounds')}/{s.get('total_rounds')} "
                  f"rounds | Overall {s.get('overall')} | run {t.get('run_s', 0):.0f}s, "
                  f"set-up {t.get('supernodes_ready_s', 0):.0f}s, stop {t.get('stop_s', 0):.1f}s", highlight=False)
    console.print(f"run directory: {res.run_dir} (matrix.json, summary.json, transfers.jsonl; "
                  f"process logs in deploy-logs/)", highlight=False)
    if args.json:
        print(json.dumps({"run_dir": str(res.run_dir), "run_id": res.run_id, "timings_s": t}))
    return 0
