"""A reply is checked against the request it answers, not only against the schema.

Metadata: message type, group, run, nodes and the replied-to id are echoes of the request, byte for byte; the
times Flower stamps must fall inside the wait. Content: the instruction's round is echoed in "round_metrics";
a train reply's prompt pool is exactly the request's pool plus the trained task's declared descriptor; a
discover reply echoes the scenario hash; records and keys come in a fixed order (sorted record names and keys;
arrays in their declared order), so no ordering carries anything either.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from .redact import redacted
from .schema import Violation, WireSchema
from .wire import MessageInfo

CLOCK_SLACK_S = 5.0
"""How far a reply's creation time may lie outside [request created, now] (clock steps, float rounding)."""
ECHOED = ("run_id", "group_id")


def check_reply(schema: WireSchema, reply: MessageInfo, request: MessageInfo, department: str | None,
                now: float) -> list[Violation]:
    out = _check_metadata(reply, request, now)
    if reply.error is not None:
        return out
    out += schema.check(reply, reply=True, department=department)
    if reply.message_type != request.message_type:
        return out
    out += _check_order(reply)
    if reply.message_type == "train":
        out += _check_round_echo(reply, request)
        out += _check_pool(schema, reply, request)
    if reply.message_type == "query.discover":
        ident = reply.records.get("identity")
        disc = request.records.get("discover")
        if ident and disc and ident.items.get("scenario_sha") != disc.items.get("scenario_sha"):
            out.append(Violation("identity.scenario_sha", "does not echo the request's scenario hash"))
    return out


def _check_metadata(reply: MessageInfo, request: MessageInfo, now: float) -> list[Violation]:
    out: list[Violation] = []
    r, q = reply.meta, request.meta
    if reply.message_type != request.message_type:
        out.append(Violation("message_type", f"{redacted(reply.message_type)} is not the request's "
                             f"{request.message_type!r} (a reply's type must equal its request's)"))
    for key in ECHOED:
        if key in q and r.get(key) != q.get(key):
            out.append(Violation(f"metadata.{key}", f"{redacted(r.get(key))} does not echo the request's"))
    if q.get("message_id") and r.get("reply_to_message_id") != q.get("message_id"):
        out.append(Violation("metadata.reply_to_message_id", "does not name the request"))
    if "dst_node_id" in q and r.get("src_node_id") != q.get("dst_node_id"):
        out.append(Violation("metadata.src_node_id", "is not the node the request went to"))
    if "src_node_id" in q and r.get("dst_node_id") != q.get("src_node_id"):
        out.append(Violation("metadata.dst_node_id", "is not the node the request came from"))
    created, ttl = r.get("created_at"), r.get("ttl")
    q_created, q_ttl = q.get("created_at"), q.get("ttl")
    if not _finite(created) or not _finite(ttl):
        out.append(Violation("metadata.created_at/ttl", "must be finite numbers"))
        return out
    if _finite(q_created) and not (q_created - CLOCK_SLACK_S <= created <= now + CLOCK_SLACK_S):
        out.append(Violation("metadata.created_at", "lies outside the time between the request and its receipt"))
    if _finite(q_created) and _finite(q_ttl) and abs((created + ttl) - (q_created + q_ttl)) > 1e-3:
        out.append(Violation("metadata.ttl", "does not end when the request's time to live ends"))
    delivered = r.get("delivered_at", "")
    if delivered not in ("", None) and not _iso_within(delivered, (q_created or 0) - CLOCK_SLACK_S, now + CLOCK_SLACK_S):
        out.append(Violation("metadata.delivered_at", f"{redacted(delivered)} is not a delivery time within the wait"))
    return out


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _iso_within(text: Any, lo: float, hi: float) -> bool:
    if not isinstance(text, str) or len(text) > 32:
        return False
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        return False
    if t.tzinfo is None or t.isoformat() != text:
        return False
    return lo <= t.timestamp() <= hi


def _check_order(reply: MessageInfo) -> list[Violation]:
    out: list[Violation] = []
    names = list(reply.records)
    if names != sorted(names):
        out.append(Violation("records", "are not in sorted order (the order is fixed)"))
    for name, rec in reply.records.items():
        if rec.kind != "arrays" and list(rec.items) != sorted(rec.items):
            out.append(Violation(f"record {name!r}", "keys are not in sorted order (the order is fixed)"))
    return out


def _check_round_echo(reply: MessageInfo, request: MessageInfo) -> list[Violation]:
    metrics = reply.records.get("round_metrics")
    train = request.records.get("train")
    if metrics is None or train is None or "round" not in metrics.items:
        return []
    if metrics.items["round"] != train.items.get("round"):
        return [Violation("round_metrics.round", "does not echo the request's round")]
    return []


def _check_pool(schema: WireSchema, reply: MessageInfo, request: MessageInfo) -> list[Violation]:
    got, sent, train = reply.records.get("pool"), request.records.get("pool"), request.records.get("train")
    if got is None or sent is None or train is None:
        return []
    expected = schema.pool_after(sent.items, str(train.items.get("task")))
    if expected is None:
        return [Violation("pool", "the request's pool cannot be extended by a declared descriptor")]
    for column, values in expected.items():
        if list(got.items.get(column, [])) != values:
            return [Violation(f"pool.{column}", "is not the request's pool plus the trained task's declared descriptor")]
    return []
