"""`c2gr-fed audit RUN_DIR`: what a privacy officer can verify afterwards, from the run directory alone.

1. the transfer log's hash chain is intact (no entry edited, inserted or removed);
2. every logged message, in both directions, matches the declared wire schema rebuilt from RUN_DIR/scenario.yaml
   (records, array names, shapes, dtypes and byte counts; config keys, types, lengths and value hashes against
   the values the scenario declares; metric keys and numeric types), and none was refused during the run;
3. totals per direction, department and round;
4. the memorisation audit of the generator and the membership-inference attack on the segmentor
   (RUN_DIR/memorisation.json, aggregates returned by the departments), when the run asked for them.

Writes RUN_DIR/audit.md and RUN_DIR/audit.json; `ok` is false on any violation.
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from .redact import as_logged
from .schema import Violation, WireSchema, schema_for_scenario, value_hash
from .error_codes import ERROR_CODES
from .log_completeness import completeness_problems
from .transfer_log import KEY_FILE, read_log, verify_chain

DECLARED_ERRORS = set(ERROR_CODES) | {"no-reply"}
MIA_WARN_AUC = 0.8
"""Membership-inference AUC at or above this is reported as a warning (the segmentor is not a generator that
travels with samples; its overfitting is measured and shown, not a wire violation)."""
DIRECTIONS = ("coordinator->department", "department->coordinator")


LEGACY_FORMAT = ("the log predates the current transfer-log format (no request/reply pairing, no coordinator "
                 "round-done or end events, no key MACs), so this audit cannot establish that it is whole or that "
                 "its replies passed the current guard; its hash chain and totals are reported, its messages are "
                 "not re-checked. Re-run the scenario with this version for an auditable log")
"""The one problem an audit of a log written by an earlier version reports (instead of one per entry)."""


def is_legacy_log(entries: list[dict[str, Any]]) -> bool:
    """True for a non-empty log with none of the current format's marks: a reply's `reply_to`, a coordinator
    event, an entry's key MAC. (A log stripped of them to look old fails the audit all the same.)"""
    return bool(entries) and not any("reply_to" in e or "event" in e or "mac" in e for e in entries)


def _problem(kind: str, where: str, what: str) -> dict[str, str]:
    return {"kind": kind, "where": where, "what": what}


def audit_run(run_dir: Path, schema: WireSchema | None = None, key_path: Path | None = None,
              head: str | None = None) -> dict[str, Any]:
    """The audit as a JSON-able dict (see module docstring). Raises FileNotFoundError when RUN_DIR is not a run."""
    from ..scenario import load_scenario

    run_dir = Path(run_dir)
    log_path, sc_path = run_dir / "transfers.jsonl", run_dir / "scenario.yaml"
    for p in (sc_path, log_path):
        if not p.exists():
            raise FileNotFoundError(f"{run_dir}: no {p.name} (not a c2gr-fed run directory, or the run never started)")
    scenario = load_scenario(sc_path, stored=True)
    schema = schema or schema_for_scenario(scenario, pin_sha=True)
    problems: list[dict[str, str]] = []
    warnings: list[str] = []

    key_path = Path(key_path) if key_path else run_dir / KEY_FILE
    key = bytes.fromhex(key_path.read_text().strip()) if key_path.exists() else None
    chain = verify_chain(log_path, key)
    problems += [_problem("chain", "transfers.jsonl", p) for p in chain]
    if key is None:
        warnings.append(f"no log key at {key_path}: a chain rewritten end to end cannot be told from the original "
                        "(pass --key, or --head with the head recorded when the run ended)")

    try:
        entries = list(read_log(log_path))
    except ValueError as exc:
        entries = []
        problems.append(_problem("chain", "transfers.jsonl", str(exc)))
    per_dir: dict[str, dict[str, int]] = {d: {"messages": 0, "bytes": 0} for d in DIRECTIONS}
    per_dept: dict[str, dict[str, int]] = defaultdict(lambda: {"messages": 0, "bytes_to": 0, "bytes_from": 0})
    per_round: dict[str, dict[str, int]] = defaultdict(lambda: {"messages": 0, "bytes": 0})
    per_type: dict[str, dict[str, int]] = defaultdict(lambda: {"messages": 0, "bytes": 0})
    refused_live = rechecked = errors = 0
    legacy = is_legacy_log(entries)
    if legacy:
        problems.insert(0, _problem("format", "transfers.jsonl", LEGACY_FORMAT))
    else:
        for p in completeness_problems(entries, run_dir):
            problems.append(_problem("completeness", "transfers.jsonl", p))
    if head is not None and (entries[-1].get("hash") if entries else None) != head:
        problems.append(_problem("chain", "transfers.jsonl", "the log's last entry is not the head you hold "
                                 "(shortened, extended or rewritten)"))
    for e in entries:
        if e.get("direction") == "coordinator":
            continue  # the coordinator's own events (round-done, end): checked by completeness_problems
        seq, dept, rnd = e.get("seq"), str(e.get("department")), e.get("round")
        where = f"entry {seq} ({e.get('direction')}, department {dept!r}, round {rnd}, {e.get('message_type')})"
        direction = e.get("direction")
        if direction not in DIRECTIONS:
            problems.append(_problem("schema", where, f"unknown direction {direction!r}"))
            continue
        reply = direction == "department->coordinator"
        nbytes = int(e.get("bytes") or 0)
        per_dir[direction]["messages"] += 1
        per_dir[direction]["bytes"] += nbytes
        per_dept[dept]["messages"] += 1
        per_dept[dept]["bytes_from" if reply else "bytes_to"] += nbytes
        per_round[str(rnd)]["messages"] += 1
        per_round[str(rnd)]["bytes"] += nbytes
        per_type[str(e.get("message_type"))]["messages"] += 1
        per_type[str(e.get("message_type"))]["bytes"] += nbytes
        if e.get("error"):
            errors += 1
            if e.get("error") not in DECLARED_ERRORS and not str(e.get("error")).startswith("flower:"):
                problems.append(_problem("schema", where, f"error {as_logged(e.get('error'), ())} is not a declared "
                                         "error code"))
        if dept not in schema.department_tasks and not (e.get("message_type") == "query.discover"
                                                         and re.fullmatch(r"node-\d+", dept)):
            problems.append(_problem("schema", where, f"department {dept!r} is not in the scenario"))
        for v in e.get("violations") or []:
            refused_live += 1
            problems.append(_problem("refused", where, f"refused during the run: {v}"))
        if legacy:
            continue  # written before the current schema and log form: totals only (the format problem says why)
        found = schema.check_logged(e, reply=reply, department=dept)
        # the instruction's round must be the log's round
        for rname in ("train", "evaluate", "audit"):
            d = ((e.get("records") or {}).get(rname) or {}).get("keys", {}).get("round")
            if d is not None and isinstance(rnd, int) and d.get("sha256") != value_hash(rnd):
                found.append(Violation(f"{rname}.round", f"differs from the logged round {rnd}"))
        rechecked += 1
        for v in found:
            problems.append(_problem("schema", where, str(v)))
        sum_rec = sum(int((r or {}).get("bytes") or 0) for r in (e.get("records") or {}).values())
        if not e.get("error") and sum_rec != nbytes:
            problems.append(_problem("schema", where, f"logged {nbytes} bytes but its records add up to {sum_rec}"))

    mem = _memorisation(run_dir, problems, warnings)
    end = entries[-1] if entries and entries[-1].get("event") == "end" else {}
    guard = None
    if isinstance(end.get("guard_s"), (int, float)) and isinstance(end.get("session_s"), (int, float)):
        guard = {"guard_s": end["guard_s"], "session_s": end["session_s"],
                 "share": end["guard_s"] / end["session_s"] if end["session_s"] > 0 else None}
    report = {
        "run_dir": str(run_dir),
        "scenario": scenario.name,
        "scenario_sha": schema.scenario_sha,
        "ok": not problems,
        "log_format": "legacy" if legacy else "current",
        "problems": problems,
        "warnings": warnings,
        "chain": {"entries": len(entries), "intact": not chain, "problems": chain, "key_checked": key is not None,
                  "head": entries[-1].get("hash") if entries else None},
        "schema": {"messages_rechecked": rechecked, "refused_during_run": refused_live, "error_replies": errors},
        "totals": {"by_direction": per_dir, "by_department": dict(sorted(per_dept.items())),
                   "by_round": dict(sorted(per_round.items(), key=lambda kv: _round_key(kv[0]))),
                   "by_message_type": dict(sorted(per_type.items()))},
        "memorisation": mem,
        "guard_time": guard,
    }
    return report


def _round_key(r: str) -> float:
    try:
        return float(r)
    except ValueError:
        return math.inf


def _memorisation(run_dir: Path, problems: list[dict[str, str]], warnings: list[str]) -> dict[str, Any] | None:
    path = run_dir / "memorisation.json"
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        problems.append(_problem("memorisation", path.name, f"not JSON ({exc})"))
        return None
    from .schema import MEMORISATION_METRIC_KEYS

    for task, m in (data.get("tasks") or {}).items():
        where = f"task {task} (department {m.get('department')!r})"
        if "error" in m:
            problems.append(_problem("memorisation", where, f"the audit did not complete: {str(m['error'])[:200]}"))
            continue
        extra = sorted(set(m) - set(MEMORISATION_METRIC_KEYS) - {"department"})
        if extra:
            problems.append(_problem("memorisation", where, f"undeclared keys {extra}"))
        if m.get("flagged", 0.0) >= 1.0:
            problems.append(_problem(
                "memorisation", where,
                f"the generator reproduces training cases: extraction fraction {m.get('extraction_fraction', float('nan')):.2f} "
                f"(threshold {m.get('extraction_threshold', float('nan')):.3f}), d1/d2<1/3 fraction "
                f"{m.get('nn_ratio_fraction', float('nan')):.2f}, feature-copy fraction {m.get('feature_copy_fraction', float('nan')):.2f}"))
        if m.get("mia_auc", 0.0) >= MIA_WARN_AUC:
            warnings.append(f"{where}: membership-inference AUC {m['mia_auc']:.2f} (>= {MIA_WARN_AUC}): the segmentor "
                            "separates its training cases from unseen ones")
    return data


# ------------------------------------------------------------------------------------------------ writing


def _fmt(v: Any, nd: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return "-" if math.isnan(v) else f"{v:.{nd}f}"
    return str(v)


def _mb(n: int) -> str:
    return f"{n / 2**20:.2f}"


def _guard_line(g: dict[str, Any] | None) -> str:
    if not g:
        return "- time spent by the guard: not recorded by this run"
    share = f", {100 * g['share']:.2f}% of it" if g.get("share") is not None else ""
    return (f"- time spent by the guard (checking every message and writing its log entry) in the run's last session: "
            f"{g['guard_s']:.1f} s of {g['session_s']:.0f} s{share}")


def render_markdown(rep: dict[str, Any]) -> str:
    lines = [f"# Privacy audit: {rep['run_dir']}", "",
             f"**{'PASS' if rep['ok'] else 'FAIL'}**: scenario `{rep['scenario']}` "
             f"({str(rep['scenario_sha'])[:12]}), {rep['chain']['entries']} logged messages, "
             f"{len(rep['problems'])} violation(s), {len(rep['warnings'])} warning(s).", ""]
    if rep["problems"]:
        lines += ["## Violations", ""]
        for p in rep["problems"][:200]:
            lines.append(f"- [{p['kind']}] {p['where']}: {p['what']}")
        if len(rep["problems"]) > 200:
            lines.append(f"- ... and {len(rep['problems']) - 200} more (audit.json)")
        lines.append("")
    if rep["warnings"]:
        lines += ["## Warnings", ""] + [f"- {w}" for w in rep["warnings"]] + [""]
    c, s = rep["chain"], rep["schema"]
    lines += ["## Transfer log", "",
              f"- hash chain: {'intact' if c['intact'] else 'BROKEN'} ({c['entries']} entries)",
              f"- log format: {rep.get('log_format', 'current')}"
              + (" (written by an earlier version: not re-checked, see the format violation)"
                 if rep.get("log_format") == "legacy" else ""),
              f"- messages re-checked against the declared schema rebuilt from scenario.yaml: {s['messages_rechecked']}",
              f"- replies refused by the guard during the run: {s['refused_during_run']}",
              f"- error replies (no content): {s['error_replies']}",
              _guard_line(rep.get("guard_time")), "",
              "## Totals", "", "| direction | messages | MiB |", "|---|---:|---:|"]
    for d, t in rep["totals"]["by_direction"].items():
        lines.append(f"| {d} | {t['messages']} | {_mb(t['bytes'])} |")
    lines += ["", "| department | messages | MiB to | MiB from |", "|---|---:|---:|---:|"]
    for d, t in rep["totals"]["by_department"].items():
        lines.append(f"| {d} | {t['messages']} | {_mb(t['bytes_to'])} | {_mb(t['bytes_from'])} |")
    lines += ["", "| round | messages | MiB |", "|---:|---:|---:|"]
    for r, t in rep["totals"]["by_round"].items():
        lines.append(f"| {r} | {t['messages']} | {_mb(t['bytes'])} |")
    lines += ["", "| message type | messages | MiB |", "|---|---:|---:|"]
    for r, t in rep["totals"]["by_message_type"].items():
        lines.append(f"| {r} | {t['messages']} | {_mb(t['bytes'])} |")
    mem = rep.get("memorisation")
    lines += ["", "## Memorisation (generator) and membership inference (segmentor)", ""]
    if not mem:
        lines.append("Not run (enable with `--set privacy.memorisation_audit=true`).")
    else:
        lines += [f"Final models, {mem.get('samples_per_task')} synthetic pairs per task, computed by each department "
                  "on its own data; thresholds calibrated on real-vs-real at 1% FPR. Histograms stay in "
                  "`departments/NAME/memorisation_TASK.png`.", "",
                  "| task | department | extraction (img) | thr | mask | pair | d1/d2<1/3 | feature copy | "
                  "pixel d train / held-out | feature d train / held-out | flagged | MIA AUC | TPR@1%FPR |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
        for task, m in mem.get("tasks", {}).items():
            if "error" in m:
                lines.append(f"| {task} | {m.get('department')} | error: {str(m['error'])[:80]} |||||||||||")
                continue
            g = m.get
            lines.append(
                f"| {task} | {g('department')} | {_fmt(g('extraction_fraction'), 2)} | {_fmt(g('extraction_threshold'))} | "
                f"{_fmt(g('extraction_fraction_mask'), 2)} | {_fmt(g('extraction_fraction_pair'), 2)} | "
                f"{_fmt(g('nn_ratio_fraction'), 2)} | {_fmt(g('feature_copy_fraction'), 2)} | "
                f"{_fmt(g('pixel_d_train_median'))} / {_fmt(g('pixel_d_heldout_median'))} | "
                f"{_fmt(g('feature_d_train_median'))} / {_fmt(g('feature_d_heldout_median'))} | "
                f"{'YES' if g('flagged', 0) >= 1 else 'no'} | {_fmt(g('mia_auc'), 2)} | {_fmt(g('mia_tpr_at_1fpr'), 2)} |")
    lines += ["", "## What this audit cannot see", "",
              "- Weights of the declared shapes could still encode data; the memorisation audit measures what the "
              "generator reproduces, not what a malicious department could hide in its weights.",
              "- Metric values are numbers of declared keys only (a few dozen floats per reply).", ""]
    return "\n".join(lines)


def write_audit(run_dir: Path, rep: dict[str, Any]) -> tuple[Path, Path]:
    run_dir = Path(run_dir)
    md, js = run_dir / "audit.md", run_dir / "audit.json"
    md.write_text(render_markdown(rep))
    js.write_text(json.dumps(rep, indent=1, default=str))
    return md, js
