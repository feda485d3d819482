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
from .records import describe


@dataclass
class Refusal:
    department: str
    round: int
    message_type: str
    violations: list[Violation]

    def __str__(self) -> str:
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
        by_node = {}
        for m in messages:
            dept = self.department_of_node(m.metadata.dst_node_id)
            info = describe(m)
            problems = self.schema.check(info, reply=False, department=dept)
            self.log.append(direction="coordinator->department", department=dept, round=round_index,
                            **info.summary(), violations=[str(v) for v in problems])
            if problems:
                raise PrivacyViolation(f"coordinator refused to send {info.message_type} to {dept!r}: "
                                       + "; ".join(map(str, problems[:3])))
            by_node[m.metadata.dst_node_id] = m
        t0 = time.perf_counter()
        replies = self._wait_for_replies(messages, timeout, stoppable)
        accepted: list[Message] = []
        refused: list[Refusal] = []
        for r in replies:
            dept = self.department_of_node(r.metadata.src_node_id)
            info = describe(r)
            problems = [] if r.has_error() else self.schema.check(info, reply=True, department=dept)
            self.log.append(direction="department->coordinator", department=dept, round=round_index,
                            **info.summary(), violations=[str(v) for v in problems],
                            wait_s=round(time.perf_counter() - t0, 3))
            if problems:
                refused.append(Refusal(dept, round_index, info.message_type, problems))
            else:
                accepted.append(r)
        answered = {r.metadata.src_node_id for r in replies}
        for node, m in by_node.items():
            if node not in answered:
                self.log.append(direction="department->coordinator", department=self.department_of_node(node),
                                round=round_index, message_type=m.metadata.message_type, records={}, bytes=0,
                                error=f"no reply within {timeout:.0f} s", violations=[])
        return accepted, refused


def reply_error(reply: Message) -> str | None:
    return str(reply.error.reason) if reply.has_error() else None


def iter_departments(messages: Iterable[Message], department_of_node: Callable[[int], str]) -> list[str]:
    return [department_of_node(m.metadata.src_node_id) for m in messages]
