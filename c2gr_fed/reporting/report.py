"""report.md for one run, and the side-by-side table of several runs in the layout of the paper's Table 1."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from ..errors import RunDirError
from ..metrics import TrainTestMatrix, stream_metrics
from ..privacy import read_log
from ..runs.layout import RunDir
from .figures import dice_over_rounds, matrix_heatmap


def _fmt(x: Any, nd: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "missing"
    return f"{x:.{nd}f}" if isinstance(x, (int, float)) else str(x)


def load_run(root: Path) -> dict[str, Any]:
    run = RunDir(Path(root))
    if not run.matrix_json.exists():
        raise RunDirError(f"{root}: no matrix.json: not a c2gr-fed run directory, or no round has completed yet")
    matrix = TrainTestMatrix.from_json(json.loads(run.matrix_json.read_text()))
    info = json.loads(run.run_json.read_text()) if run.run_json.exists() else {}
    rounds = run.read_rounds()
    done = len(rounds)
    summary = stream_metrics(matrix, upto=max(done - 1, 0))
    saved = json.loads(run.summary.read_text()) if run.summary.exists() else {}
    breaks = bool(info.get("breaks_data_locality") or saved.get("breaks_data_locality"))  # exports carry no run.json
    return {"run": run, "matrix": matrix, "info": info, "rounds": rounds, "summary": summary, "breaks_data_locality": breaks,
            "warnings": list(saved.get("warnings", [])),  # the coordinator's, e.g. a granted GPU torch could not see
            "method": info.get("method") or saved.get("method") or run.root.name}


def transfer_totals(run: RunDir) -> dict[str, Any]:
    by_dir: dict[str, int] = defaultdict(int)
    by_type: dict[str, int] = defaultdict(int)
    n = 0
    violations = 0
    if run.transfers.exists():
        for e in read_log(run.transfers):
            n += 1
            by_dir[e["direction"]] += int(e.get("bytes", 0))
            by_type[f"{e['direction']} {e.get('message_type')}"] += int(e.get("bytes", 0))
            violations += len(e.get("violations", []))
    return {"messages": n, "bytes_by_direction": dict(by_dir), "bytes_by_type": dict(by_type), "violations": violations}


def write_report(root: Path) -> Path:
    d = load_run(root)
    run: RunDir = d["run"]
    matrix: TrainTestMatrix = d["matrix"]
    s = d["summary"]
    info = d["info"]
    method = info.get("method", "?")
    title = f"{info.get('scenario', '?')} / {method}"
    heat = matrix_heatmap(matrix, run.figures / "matrix.png", f"Train-test matrix (Dice): {title}")
    curves = dice_over_rounds(matrix, run.figures / "dice_over_rounds.png", f"Dice per task over rounds: {title}")
    lines = [f"# Run report: {title}", ""]
    if d["breaks_data_locality"]:
        lines += ["> **Reference bound that breaks data locality**: all tasks' real data were trained in one place.", ""]
    lines += [f"- command: `{info.get('command', '?')}`", f"- started: {info.get('started', '?')}, status: **{info.get('status', '?')}**",
              f"- rounds completed: {len(d['rounds'])} of {len(matrix.tasks)}"]
    if "departures_from_paper" in info:
        dep = info["departures_from_paper"]
        lines.append("- settings: " + ("departs from the paper in " + "; ".join(dep) + "." if dep else "the paper's."))
    if isinstance(info.get("wall_s"), (int, float)):
        sessions = info.get("sessions", 1)
        lines.append(f"- wall time: {info['wall_s'] / 60:.1f} min" + (
            f" over {sessions} sessions (resumed after round {info.get('resumed_after_round')}; time before the "
            f"resume from {info.get('wall_s_before_resume_from')})" if sessions > 1 else ""))
    lines.append("")
    lines += ["## Stream metrics", "", "| Overall | BWT (paper scale) | BWT (classic) | TL | FWT |", "|---|---|---|---|---|",
              f"| {_fmt(s['overall'])} | {_fmt(s['bwt'])} | {_fmt(s['bwt_classic'])} | {_fmt(s['tl'])} | {_fmt(s['fwt'])} |", "",
              "Overall = mean Dice over all tasks after the last round; BWT = mean over earlier tasks of "
              "R[T][j] / R[j][j] x 100 (JointTrain = 100); classic BWT = mean of R[T][j] - R[j][j]; TL = mean of R[j][j]; "
              "FWT = mean Dice on a task just before it is trained. Dice in points (x100).", ""]
    if info.get("note"):  # runs made before the departures were listed; after the facts it qualifies
        lines += [f"> **Note on these settings:** {info['note']}", ""]
    for text in d["warnings"]:
        lines += [f"> **Warning:** {text}", ""]
    if s["missing"]:
        lines += [f"**Missing entries** ({len(s['missing'])}): evaluations that failed are recorded as missing, not zero: "
                  + ", ".join(f"{m['after']}->{m['on']}" for m in s["missing"][:20]), ""]
    lines += _retention_lines(matrix, d["rounds"])
    lines += ["", f"![train-test matrix](figures/{heat.name})", "", f"![Dice over rounds](figures/{curves.name})", ""]
    grids = sorted(run.root.glob("departments/*/replay_round_*.png"), key=lambda g: (g.stem, g.parent.name))
    if grids:
        lines += ["## Replay in the last round", "", "What the last department trained on for every earlier task (kept "
                  "in its own folder, never sent); the masks shown are the replay masks, and each overlay is titled "
                  "with the agreement of the generator's own mask with the received segmentor.", "", f"![last replay grid]({grids[-1].relative_to(run.root)})", ""]
    if d["rounds"]:
        lines += ["## Rounds", "", "| round | task | department | train samples | replay samples | steps | replay s | train s | wall s |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in d["rounds"]:
            lines.append(f"| {int(r['round']) + 1} | {r['task']} | {r['department']} | {int(r.get('train_samples', 0))} | "
                         f"{int(r.get('replay_samples', 0))} | {int(r.get('steps', 0))} | {r.get('time_replay_s', 0):.1f} | "
                         f"{r.get('time_train_s', 0):.1f} | {r.get('wall_s', 0):.1f} |")
        tr = sum(r.get("time_replay_s", 0) for r in d["rounds"])
        tt = sum(r.get("time_train_s", 0) for r in d["rounds"])
        tw = sum(r.get("wall_s", 0) for r in d["rounds"])
        lines += ["", f"Totals: replay synthesis {tr:.0f} s, training {tt:.0f} s, round wall time incl. evaluation {tw:.0f} s.", ""]
    try:
        from .prompt_relations import prompt_similarity_figure

        fig7 = prompt_similarity_figure(run.root, run.figures / "prompt_similarity.png")
        lines += ["## Prompt relations (paper Fig. 7)", "", "Cosine similarity of the task prompts: plain text-encoder "
                  "embeddings vs the relation-aware prompts the RUPS graph learned.", "", f"![prompt similarity](figures/{fig7.name})", ""]
    except Exception as exc:  # noqa: BLE001 - a figure must not stop the report
        lines += [f"(prompt-relation figure not drawn: {exc})", ""]
    if grids:
        lines += ["## Replay grids of every round (kept in each department's own folder, never sent)", ""]
        lines += [f"- [{g.parent.name} round {g.stem.rsplit('_', 1)[-1]}]({g.relative_to(run.root)})" for g in grids]
        lines += [""]
    lines += _memorisation_lines(run.root)
    t = transfer_totals(run)
    lines += ["## What crossed the wire", "", f"{t['messages']} messages logged in `transfers.jsonl` (hash-chained); "
              f"schema violations: {t['violations']}.", "", "| direction and type | MB |", "|---|---|"]
    lines += [f"| {k} | {v / 2**20:.2f} |" for k, v in sorted(t["bytes_by_type"].items())]
    lines += ["", "Run `c2gr-fed audit " + str(run.root) + "` for the full privacy audit.", ""]
    run.report.write_text("\n".join(lines))
    return run.report


def _retention_lines(matrix: TrainTestMatrix, rounds: list[dict[str, Any]]) -> list[str]:
    """Per task: Dice when learned, Dice after the last completed round, the share kept, and the last round's
    replay agreement for that task (when the run's replay reports it)."""
    done = len(rounds) if rounds else len(matrix.tasks)
    if done == 0:
        return []
    T = done - 1
    R = matrix.values
    last = rounds[-1] if rounds else {}
    lines = ["## Retention per task", "", f"Dice (x100) when each task was learned and after round {T + 1}; kept = "
             "the ratio (the paper's BWT averages it over the earlier tasks); replay agreement = mean Dice, in the last "
             "round, between the masks the generator drew with each replay image and the received segmentor's "
             "prediction on that image.", "",
             "| task | Dice when learned | Dice now | kept % | replay agreement (last round) |", "|---|---|---|---|---|"]
    for j in range(T + 1):
        name = matrix.tasks[j]
        learned, now = R[j][j], R[T][j]
        kept = now / learned * 100.0 if learned and not (math.isnan(now) or math.isnan(learned)) else float("nan")
        agree = last.get(f"replay_agreement/{name}") if j < T else None
        lines.append(f"| {name} | {_fmt(100 * learned, 1)} | {_fmt(100 * now, 1)} | "
                     f"{_fmt(kept, 0) if j < T else 'current'} | {_fmt(agree) if agree is not None else '-'} |")
    return lines


def _memorisation_lines(root: Path) -> list[str]:
    """The memorisation audit's aggregates per task, when the run did one (privacy.memorisation_audit)."""
    import json

    path = root / "memorisation.json"
    if not path.exists():
        return []
    try:
        mem = json.loads(path.read_text())
        tasks = mem["tasks"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return ["## Memorisation audit", "", f"(memorisation.json unreadable: {exc})", ""]
    flagged = [t for t, v in tasks.items() if v.get("metrics", v).get("flagged")]
    lines = ["## Memorisation audit of the final generator", "",
             f"{mem.get('samples_per_task', '?')} synthetic pairs per task, compared by each department with its own "
             "training and held-out cases (thresholds at 1% false positives of real-vs-real). Flagged tasks: "
             f"**{', '.join(flagged) if flagged else 'none'}**. Full table: `c2gr-fed audit {root}` (audit.md).", "",
             "| task | image extraction fraction | d1/d2 < 1/3 | feature copy | pixel distance train / held-out | "
             "membership AUC |", "|---|---|---|---|---|---|"]
    for name, v in tasks.items():
        m = v.get("metrics", v)
        lines.append(f"| {name} | {_fmt(m.get('extraction_fraction'))} | {_fmt(m.get('nn_ratio_fraction'))} | "
                     f"{_fmt(m.get('feature_copy_fraction'))} | {_fmt(m.get('pixel_d_train_median'))} / "
                     f"{_fmt(m.get('pixel_d_heldout_median'))} | {_fmt(m.get('mia_auc'))} |")
    hist = sorted(root.glob("departments/*/memorisation_*.png"))
    if hist:
        lines += ["", f"![distances of synthetic and held-out cases to the training set]({hist[0].relative_to(root)})"]
    return lines + [""]


def compare_runs(roots: list[Path]) -> tuple[str, list[list[str]]]:
    """A Table-1-style markdown table: one row per run, per-task final Dice, Overall, BWT, TL."""
    runs = [load_run(r) for r in roots]
    tasks = runs[0]["matrix"].tasks
    header = ["method", *tasks, "Overall", "BWT", "TL"]
    rows = []
    for d in runs:
        s = d["summary"]
        label = d["method"]
        if d["breaks_data_locality"]:
            label += " (breaks locality)"
        per = s["per_task_final"]
        rows.append([label, *[_fmt(per.get(t)) for t in tasks], _fmt(s["overall"]), _fmt(s["bwt"]), _fmt(s["tl"])])
    md = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    md += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(md) + "\n", [header, *rows]
