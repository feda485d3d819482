"""Coordinator side of the wire: every message in both directions is described, checked and logged.

`GuardedGrid` wraps a Flower Grid. Outgoing messages are checked against the declared schema (the
coordinator must not send anything undeclared either); replies are checked before anyone uses them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Iterable

from flwr.app import Message
from flwr.serverapp import Grid

from ..errors import PrivacyViolation, StopRequested
from ..privacy import TransferLog, Violation, WireSchema
from ..privacy.error_codes import ERROR_CODES
from ..privacy.redact import declared_or_redacted, redacted
from ..privacy.reply_check import check_reply
from ..privacy.schema import MESSAGE_TYPES
from .error_replies import error_code_of
from .records import describe

NO_REPLY = "no-reply"
"""The error the log records for a request that got no reply within its time-out."""


@dataclass
class Refusal:
    department: str
    round: int
    message_type: str
    violations: list[Violation]

    def __str__(self) -> str:
        if [v.field for v in self.violations] == ["error"]:  # failed outside the handlers' declared error codes
            return (f"department {self.department!r}, round {self.round}: its {self.message_type} handling failed "
                    "outside the department's declared error reporting, and its free-text error was withheld from "
                    f"the coordinator ({self.violations[0].problem}); the text is in the department's own logs")
        first = "; ".join(str(v) for v in self.violations[:3])
        more = f" (+{len(self.violations) - 3} more)" if len(self.violations) > 3 else ""
        return (f"department {self.department!r}, round {self.round}, {self.message_type} reply refused: "
                f"{first}{more}")


class GuardedGrid:
    def __init__(self, grid: Grid, schema: WireSchema, log: TransferLog,
                 department_of_node: Callable[[int], str],
                 should_stop: Callable[[bool], bool] | None = None) -> None:
        self.grid = grid
        self.schema = schema
        self.log = log
        self.department_of_node = department_of_node
        self.should_stop = should_stop
        self.last_refused_seq: int | None = None
        """the log entry of the last refused reply (the coordinator's end event names it)."""
        self.guard_s = 0.0
        """seconds spent checking messages and writing their log entries (waiting for replies excluded)."""

    def _wait_for_replies(self, messages: list[Message], timeout: float, stoppable: bool) -> list[Message]:
        """Flower's Grid.send_and_receive, but a stop request ends the wait (StopRequested): any request when
        `stoppable`, else only an urgent one (a second signal, or the runtime failed)."""
        if self.should_stop is None:
            return list(self.grid.send_and_receive(messages, timeout=timeout))
        ids = set(self.grid.push_messages(messages))
        end = time.monotonic() + timeout
        interval = float(getattr(self.grid, "pull_interval", 3.0) or 3.0)  # Flower polls every 3 s over HTTP
        replies: list[Message] = []
        while True:
            got = list(self.grid.pull_messages(ids))
            replies.extend(got)
            ids.difference_update(m.metadata.reply_to_message_id for m in got)
            if not ids or time.monotonic() >= end:
                return replies
            if self.should_stop(not stoppable):
                kinds = sorted({m.metadata.message_type for m in messages})
                raise StopRequested(f"stop requested while waiting for {', '.join(kinds)} replies")
            time.sleep(min(interval, max(0.0, end - time.monotonic())))

    def send_and_receive(self, messages: list[Message], round_index: int, timeout: float, stoppable: bool = True
                         ) -> tuple[list[Message], list[Refusal]]:
        """Send, wait up to `timeout` s, return (accepted replies, refused replies). Errors pass through. With
        `stoppable`, a stop request ends the wait with StopRequested (the replies still to come are dropped)."""
        sent: list[tuple[Message, int]] = []  # (request, its log entry's seq)
        t_guard = time.perf_counter()
        for m in messages:
            dept = self.department_of_node(m.metadata.dst_node_id)
            info = describe(m)
            problems = self.schema.check(info, reply=False, department=dept)
            entry = self.log.append(direction="coordinator->department", department=dept, round=round_index,
                                    **self.schema.log_form(info, reply=False, department=dept),
                                    violations=[str(v) for v in problems])
            if problems:
                raise PrivacyViolation(f"coordinator refused to send {info.message_type} to {dept!r}: "
                                       + "; ".join(map(str, problems[:3])))
            sent.append((m, entry["seq"]))
        t0 = time.perf_counter()
        self.guard_s += t0 - t_guard
        replies = self._wait_for_replies(messages, timeout, stoppable)
        t_guard = time.perf_counter()
        open_requests = list(range(len(sent)))
        infos = [describe(m) for m, _ in sent]  # after the push: message ids are assigned
        accepted: list[Message] = []
        refused: list[Refusal] = []
        for r in replies:
            dept = self.department_of_node(r.metadata.src_node_id)
            info = describe(r)
            i = _match(r, [sent[j][0] for j in open_requests])
            if i is None:
                problems = [Violation("metadata.reply_to_message_id", "the reply does not answer an open request")]
                request_seq = None
            else:
                k = open_requests.pop(i)
                problems = check_reply(self.schema, info, infos[k], dept, time.time())
                request_seq = sent[k][1]
            error = None
            if info.error is not None:
                code = error_code_of(info.meta.get("error_code"), info.error)
                if code is None:
                    problems.append(Violation("error", f"Flower code {redacted(info.meta.get('error_code'))} with "
                                              f"reason {redacted(info.error)} is not a declared error "
                                              f"(declared codes: {sorted(ERROR_CODES)})"))
                error = code or redacted(info.error)
            entry = self.log.append(direction="department->coordinator", department=dept, round=round_index,
                            **{**self.schema.log_form(info, reply=True, department=dept), "error": error},
                            violations=[str(v) for v in problems], reply_to=request_seq,
                            wait_s=round(time.perf_counter() - t0, 3))
            if problems:
                self.last_refused_seq = entry["seq"]
                refused.append(Refusal(dept, round_index, declared_or_redacted(info.message_type, MESSAGE_TYPES),
                                       problems))
            else:
                accepted.append(r)
        for k in open_requests:
            m, seq = sent[k]
            self.log.append(direction="department->coordinator", department=self.department_of_node(m.metadata.dst_node_id),
                            round=round_index, message_type=m.metadata.message_type, records={}, bytes=0,
                            error=NO_REPLY, violations=[], reply_to=seq, timeout_s=round(timeout, 3))
        self.guard_s += time.perf_counter() - t_guard
        return accepted, refused


def _match(reply: Message, requests: list[Message]) -> int | None:
    """Index of the request `reply` answers: by the replied-to message id, else (grids that assign no ids) the
    first open request to the reply's node."""
    want = reply.metadata.reply_to_message_id
    for i, m in enumerate(requests):
        if want and m.metadata.message_id == want:
            return i
    if not want:
        for i, m in enumerate(requests):
            if not m.metadata.message_id and m.metadata.dst_node_id == reply.metadata.src_node_id:
                return i
    return None


def reply_error(reply: Message) -> str | None:
    """The declared code of an accepted error reply (the guard refused any other), for messages to the user."""
    if not reply.has_error():
        return None
    return error_code_of(reply.error.code, reply.error.reason) or "failed"


def iter_departments(messages: Iterable[Message], department_of_node: Callable[[int], str]) -> list[str]:
    return [department_of_node(m.metadata.src_node_id) for m in messages]
