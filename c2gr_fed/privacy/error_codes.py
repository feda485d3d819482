"""The declared error codes: all an error reply may say. A department's own error text stays on its node (its
errors log holds the text, its hash and length); the wire carries one of these codes and nothing else."""

from __future__ import annotations

ERROR_CODES: dict[str, str] = {
    "stopped": "the round was abandoned because the run was asked to stop",
    "refused-request": "the department refused the coordinator's message (it does not match the declared schema)",
    "scenario-mismatch": "the department runs a different scenario than the coordinator",
    "not-its-task": "the department was asked about a task it does not hold",
    "data-unreadable": "the department could not read or check its data",
    "numerical-fault": "training diverged (a loss or weight became non-finite)",
    "out-of-memory": "the department ran out of memory",
    "failed": "the department failed for another reason",
}
WIRE_PREFIX = "c2gr-fed department error: "
"""An error reply's text is exactly WIRE_PREFIX + a code (wrapped by Flower in its fixed form)."""


def wire_text(code: str) -> str:
    if code not in ERROR_CODES:
        raise KeyError(f"undeclared error code {code!r}; declared: {sorted(ERROR_CODES)}")
    return WIRE_PREFIX + code


def describe_code(code: str) -> str:
    """'data-unreadable (the department could not read or check its data)'."""
    return f"{code} ({ERROR_CODES[code]})" if code in ERROR_CODES else code
