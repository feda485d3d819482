"""`c2gr-fed export RUN_DIR DEST`: copy a run's results (no model weights) into a folder to commit or share."""

from __future__ import annotations

import argparse

from rich.console import Console

from ..runs.export import export_results


def export_command(args: argparse.Namespace, console: Console) -> int:
    written = export_results(args.run_dir, args.dest, with_transfer_log=args.with_transfer_log)
    size = sum((args.dest / p).stat().st_size for p in written)
    for p in written:
        console.print(f"  {p}")
    console.print(f"[green]exported[/] {len(written)} files ({size / 1e6:.2f} MB) from {args.run_dir} to {args.dest} "
                  "(no checkpoints, logs or progress files)")
    return 0
