"""One round of C2GR (and the baselines behind the same interface), as plain functions without Flower."""

from .methods import METHOD_SPECS, MethodSpec, method_spec
from .round import RoundResult, evaluate_task, run_round
from .state import LearnerState, build_state, wire_schema

__all__ = ["METHOD_SPECS", "LearnerState", "MethodSpec", "RoundResult", "build_state", "evaluate_task",
           "method_spec", "run_round", "wire_schema"]
