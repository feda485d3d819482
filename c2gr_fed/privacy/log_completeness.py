"""What the audit checks beyond the chain: the log is whole and agrees with the run's artefacts.

- it is not empty and ends with the coordinator's "end" event (a shortened log lacks it);
- every request has exactly one reply (or a no-reply record) and every reply names its request;
- the end event's completed rounds equal its "round-done" events, each round's train request is logged, and a
  finished run completed every planned round; a refused run's end event names a refused entry that exists;
- the artefacts the audit reports on hash to what the last coordinator event recorded, and run.json's status
  agrees with the end event.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .artefacts import artefact_hashes

RUN_STATUS = {"finished": {"complete"}, "stopped": {"interrupted"}, "refused": {"failed"}, "failed": {"failed"}}
"""end event status -> the run.json statuses that agree with it."""


def completeness_problems(entries: list[dict[str, Any]], run_dir: Path) -> list[str]:
    if not entries:
        return ["the transfer log is empty: every run logs at least its discovery"]
    out: list[str] = []
    requests = {e["seq"]: e for e in entries if e.get("direction") == "coordinator->department"}
    replies: dict[int, int] = {}
    for e in entries:
        if e.get("direction") != "department->coordinator":
            continue
        to = e.get("reply_to")
        if to not in requests:
            out.append(f"entry {e.get('seq')}: a reply that names no logged request")
        elif to in replies:
            out.append(f"entry {e.get('seq')}: a second reply to request {to}")
        else:
            replies[to] = e["seq"]
    end = entries[-1]
    is_end = end.get("direction") == "coordinator" and end.get("event") == "end"
    for seq in sorted(set(requests) - set(replies)):
        if not (is_end and end.get("status") in ("stopped", "failed") and seq > _last_round_done(entries)):
            out.append(f"entry {seq}: a request without a reply")
    if not is_end:
        out.append("the log does not end with the coordinator's end event: it was shortened (or the run was killed "
                   "before it could close the log)")
        return out
    done = [e for e in entries if e.get("event") == "round-done"]
    completed, planned = end.get("completed_rounds"), end.get("planned_rounds")
    rounds_done = sorted({int(e.get("round", -1)) for e in done})
    if rounds_done and rounds_done[-1] + 1 != completed:
        out.append(f"the end event says {completed} round(s) completed but the last round-done event is round "
                   f"{rounds_done[-1]}")
    trained = {e.get("round") for e in requests.values() if e.get("message_type") == "train"}
    for r in range(int(completed or 0)):
        if r not in trained and r in rounds_done:
            out.append(f"round {r}: no train request is logged")
    if end.get("status") == "finished" and completed != planned:
        out.append(f"the run is logged as finished after {completed} of {planned} planned rounds")
    ref = end.get("refused_entry")
    if end.get("status") == "refused":
        target = next((e for e in entries if e.get("seq") == ref), None)
        if target is None or not target.get("violations"):
            out.append(f"the run stopped on a refused reply (entry {ref}) that is not in the log")
    recorded = end.get("artefacts") or {}
    for name, digest in artefact_hashes(run_dir).items():
        if recorded.get(name) != digest:
            out.append(f"{name} differs from what the coordinator recorded when the run ended (edited afterwards)")
    run_json = run_dir / "run.json"
    if run_json.exists():
        try:
            status = json.loads(run_json.read_text()).get("status")
        except (json.JSONDecodeError, AttributeError):
            status = None
        allowed = RUN_STATUS.get(str(end.get("status")), set())
        if status not in allowed and status != "running":
            out.append(f"run.json's status {str(status)[:20]!r} disagrees with the log's end event "
                       f"({end.get('status')})")
    return out


def _last_round_done(entries: list[dict[str, Any]]) -> int:
    seqs = [e["seq"] for e in entries if e.get("event") == "round-done"]
    return seqs[-1] if seqs else -1
