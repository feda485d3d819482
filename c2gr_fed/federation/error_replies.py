"""Error replies carry a declared code, nothing else.

Department side: `with_error_codes` wraps a handler; any exception is written, with its text, hash and length,
to the department's own errors log (RUN_DIR/departments/NAME/errors.jsonl on that node) and re-raised as a
`DepartmentFailure` whose text is only `WIRE_PREFIX + code`.
Coordinator side: `error_code_of` accepts exactly the reasons Flower builds around those texts and Flower's own
fixed infrastructure errors; any other code or reason is refused by the guard (and logged only as a hash).
"""

from __future__ import annotations

import hashlib
import json
import time
import traceback
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from flwr.app import Context, Message
from flwr.common.constant import ErrorCode

from ..errors import DataError, DepartmentFailure, NumericalFault, PrivacyViolation, StopRequested
from ..privacy.error_codes import ERROR_CODES, describe_code, wire_text

SIMULATION_WRAPPER = "<class 'flwr.clientapp.client_app.ClientAppException'>:<'\nException ClientAppException occurred. Message: {}'>"
"""How the simulation engine reports a ClientApp exception (ray_actor wraps it in ClientAppException)."""
DEPLOYMENT_WRAPPER = "<class 'c2gr_fed.errors.DepartmentFailure'>:<'{}'>"
"""How a SuperNode reports the DepartmentFailure a handler raised."""


@lru_cache(maxsize=1)
def _infrastructure_errors() -> dict[tuple[int, str], str]:
    from flwr.server.superlink.linkstate.utils import (MESSAGE_UNAVAILABLE_ERROR_REASON,
                                                       NODE_UNAVAILABLE_ERROR_REASON,
                                                       REPLY_MESSAGE_UNAVAILABLE_ERROR_REASON)

    return {
        (ErrorCode.MESSAGE_UNAVAILABLE, MESSAGE_UNAVAILABLE_ERROR_REASON): "flower:message-unavailable",
        (ErrorCode.REPLY_MESSAGE_UNAVAILABLE, REPLY_MESSAGE_UNAVAILABLE_ERROR_REASON): "flower:reply-unavailable",
        (ErrorCode.NODE_UNAVAILABLE, NODE_UNAVAILABLE_ERROR_REASON): "flower:node-unavailable",
        (ErrorCode.CLIENT_APP_CRASHED, "ClientApp stopped responding."): "flower:clientapp-crashed",
        (ErrorCode.LOAD_CLIENT_APP_EXCEPTION, "An exception was raised when attempting to load `ClientApp`"):
            "flower:clientapp-not-loaded",
    }


@lru_cache(maxsize=1)
def accepted_errors() -> dict[tuple[int, str], str]:
    """(Flower error code, reason) -> the code the log and the coordinator use. Nothing else is accepted."""
    out = dict(_infrastructure_errors())
    for code in ERROR_CODES:
        for wrapper in (SIMULATION_WRAPPER, DEPLOYMENT_WRAPPER):
            out[(ErrorCode.CLIENT_APP_RAISED_EXCEPTION, wrapper.format(wire_text(code)))] = code
    return out


def error_code_of(flower_code: Any, reason: Any) -> str | None:
    """The declared code of an error reply, or None when its code or reason is not one of the accepted forms."""
    if not isinstance(flower_code, int) or not isinstance(reason, str):
        return None
    return accepted_errors().get((flower_code, reason))


def error_text(code: str) -> str:
    """What the coordinator says about an accepted error reply."""
    if code.startswith("flower:"):
        return f"{code} (reported by Flower)"
    return f"{describe_code(code)}; the department's own message is in its errors log"


def code_for_exception(exc: BaseException) -> str:
    from ..errors import FederationError

    if isinstance(exc, DepartmentFailure):
        text = str(exc)
        return text.rsplit(": ", 1)[-1] if text.rsplit(": ", 1)[-1] in ERROR_CODES else "failed"
    if isinstance(exc, StopRequested):
        return "stopped"
    if isinstance(exc, PrivacyViolation):
        return "refused-request"
    if isinstance(exc, FederationError):
        text = str(exc)
        if "scenario" in text:
            return "scenario-mismatch"
        if "does not hold" in text:
            return "not-its-task"
        return "failed"
    if isinstance(exc, (DataError, FileNotFoundError, OSError)):
        return "data-unreadable"
    if isinstance(exc, NumericalFault):
        return "numerical-fault"
    if isinstance(exc, MemoryError) or "out of memory" in str(exc).lower():
        return "out-of-memory"
    return "failed"


def errors_log_path(run_dir: str | Path, department: str) -> Path:
    return Path(run_dir) / "departments" / department / "errors.jsonl"


def report_locally(run_dir: str | Path | None, department: str, msg: Message, exc: BaseException, code: str) -> None:
    """Append the full error to the department's own errors log (never sent)."""
    if not run_dir:
        return
    text = f"{type(exc).__name__}: {exc}"
    path = errors_log_path(run_dir, department)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        row = {"time": round(time.time(), 3), "message_type": msg.metadata.message_type, "group": msg.metadata.group_id,
               "code": code, "chars": len(text), "sha256": hashlib.sha256(text.encode()).hexdigest(), "error": text,
               "traceback": "".join(traceback.format_exception(exc))}
        with path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
    except OSError:  # the error reply must still go out
        pass


def with_error_codes(handler: Callable[[Message, Context], Message],
                     where: Callable[[Context], tuple[str | None, str]]) -> Callable[[Message, Context], Message]:
    """Wrap a department handler: failures leave as a DepartmentFailure carrying only a declared code.
    `where(context)` -> (run_dir, department name) for the department's own errors log."""

    def wrapped(msg: Message, context: Context) -> Message:
        try:
            return handler(msg, context)
        except Exception as exc:  # noqa: BLE001 - every failure leaves as a declared code
            code = code_for_exception(exc)
            try:
                run_dir, dept = where(context)
            except Exception:  # noqa: BLE001 - the department's name itself may be what failed
                run_dir, dept = None, "unknown-department"
            report_locally(run_dir, dept, msg, exc, code)
            raise DepartmentFailure(wire_text(code)) from exc

    return wrapped
