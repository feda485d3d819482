"""One round of C2GR (and the baselines behind the same interface), as plain functions without Flower.

The names below load on first use, so that the scenario schema can read the method table
(`c2gr_fed.learning.methods`) without importing the models and the round.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "METHOD_SPECS": "methods", "MethodSpec": "methods", "method_spec": "methods",
    "RoundResult": "round", "evaluate_task": "round", "run_round": "round",
    "LearnerState": "state", "build_state": "state", "wire_schema": "state",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
