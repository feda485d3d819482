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

from ..errors import PrivacyViolation
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
                 department_of_node: Callable[[int], str]) -> None:
        self.grid = grid
        self.schema = schema
        self.log = log
        self.department_of_node = department_of_node

    def send_and_receive(self, messages: list[Message], round_index: int, timeout: float
                         ) -> tuple[list[Message], list[Refusal]]:
        """Send, wait up to `timeout` s, return (accepted replies, refused replies). Errors pass through."""
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
        replies = list(self.grid.send_and_receive(messages, timeout=timeout))
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
