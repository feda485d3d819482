"""Every metric a department may return has a declared range and resolution.

The department rounds each value to its rule before sending (`quantise`); the coordinator refuses a value that
is not finite, out of range, or not exactly on the rule's grid (`metric_problem`), so a number carries what it
claims and little else. `bits` is the most one value can carry; docs/privacy.md states the totals per round.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class MetricRule:
    lo: float
    hi: float
    integer: bool = False
    digits: int = 0
    """significant digits (for unbounded-scale values: losses, times, distances); 0 with `decimals`/`integer`."""
    decimals: int = 0
    """absolute resolution 10^-decimals (for values in a fixed interval: Dice, fractions, AUCs)."""
    floor: float = 0.0
    """with `digits`: magnitudes below this are sent as 0 (bounds the number of representable values)."""

    def quantise(self, v: float) -> float:
        v = float(v)
        if not math.isfinite(v):
            return v
        if self.integer:
            return float(round(v))
        if self.digits:
            if abs(v) < self.floor:
                return 0.0
            return float(f"{v:.{self.digits - 1}e}")
        return round(v, self.decimals)

    def problem(self, v: float) -> str | None:
        if not math.isfinite(v):
            return f"{v!r} is not finite"
        if not self.lo <= v <= self.hi:
            return f"value outside the declared range [{self.lo:g}, {self.hi:g}]"
        if self.quantise(v) != v:
            what = ("an integer" if self.integer else f"{self.digits} significant digits" if self.digits
                    else f"{self.decimals} decimals")
            return f"value is not rounded to the declared resolution ({what})"
        return None

    def bits(self) -> float:
        """log2 of the number of values this rule allows: the most one value can carry."""
        if self.integer:
            return math.log2(self.hi - self.lo + 1)
        if self.digits:
            decades = 0.0
            for lo, hi in ((max(self.lo, 0.0), self.hi), (max(-self.hi, 0.0), -self.lo)):
                if hi >= self.floor:
                    decades += math.log10(hi / self.floor)
            return math.log2(1 + math.ceil(decades) * 9 * 10 ** (self.digits - 1))
        return math.log2((self.hi - self.lo) * 10 ** self.decimals + 1)


COUNT = MetricRule(0, 10_000_000, integer=True)
FLAG = MetricRule(0, 1, integer=True)
FRACTION = MetricRule(0.0, 1.0, decimals=4)
LOSS = MetricRule(0.0, 1e6, digits=4, floor=1e-6)
SECONDS = MetricRule(0.0, 1e6, digits=3, floor=1e-3)
SIGNED = MetricRule(-1e6, 1e6, digits=4, floor=1e-6)
ROUND = MetricRule(0, 100_000, integer=True)

ROUND_METRIC_RULES: dict[str, MetricRule] = {
    "round": ROUND,  # an echo: it must equal the request's round (the coordinator keeps its own)
    "train_samples": COUNT, "replay_samples": COUNT, "relabelled_samples": COUNT, "steps": COUNT, "generator_extra_steps": COUNT,
    "loss_seg": LOSS, "loss_diffusion": LOSS, "loss_diffusion_extra": LOSS, "loss_generator_distill": LOSS,
    "loss_reg": LOSS,
    "time_replay_s": SECONDS, "time_train_s": SECONDS, "time_total_s": SECONDS,
    "peak_gpu_mem_mb": MetricRule(0, 10_000_000, digits=4, floor=1.0), "gpu_unseen": FLAG,
    "replay_agreement": FRACTION, "replay_agreement_candidates": FRACTION, "replay_generated_mask_share": FRACTION,
    "generator_bank_size": MetricRule(0, 10_000, integer=True), "generator_warm_started": FLAG,
}
MEMORISATION_METRIC_RULES: dict[str, MetricRule] = {
    "samples": COUNT, "train_cases": COUNT, "heldout_cases": COUNT, "flagged": FLAG,
    "nn_ratio_fraction": FRACTION, "extraction_fraction": FRACTION, "extraction_fraction_mask": FRACTION,
    "extraction_fraction_pair": FRACTION, "feature_copy_fraction": FRACTION,
    "mia_auc": FRACTION, "mia_tpr_at_1fpr": FRACTION, "mia_tpr_at_0.1fpr": FRACTION,
    "nn_ratio_threshold": SIGNED, "extraction_threshold": SIGNED, "extraction_threshold_mask": SIGNED,
    "extraction_threshold_pair": SIGNED, "extraction_score_min": SIGNED, "feature_copy_threshold": SIGNED,
    "pixel_d_train_median": SIGNED, "pixel_d_heldout_median": SIGNED, "feature_d_train_median": SIGNED,
    "feature_d_heldout_median": SIGNED, "mia_loss_train_mean": SIGNED, "mia_loss_heldout_mean": SIGNED,
}
DICE = FRACTION
"""Dice per task and per class ("TASK" and "TASK/classK" in an evaluate reply)."""


def rule_for(record: str, key: str) -> MetricRule | None:
    """The rule of a declared metric key of `record` (None: no rule, the key is refused)."""
    if record == "round_metrics":
        base = re.sub(r"/.*", "", key)  # per-task keys ("replay_agreement/TASK") share their metric's rule
        return ROUND_METRIC_RULES.get(base)
    if record == "memorisation":
        return MEMORISATION_METRIC_RULES.get(key)
    if record == "dice":
        return DICE
    return None


def quantise_metrics(record: str, values: dict[str, float]) -> dict[str, float]:
    """What a department sends: every value on its rule's grid, non-finite values and undeclared keys dropped
    (the coordinator would refuse them), keys in sorted order (the order is fixed, not a channel)."""
    out: dict[str, float] = {}
    for k in sorted(values):
        rule = rule_for(record, k)
        v = float(values[k])
        if rule is None or not math.isfinite(v):
            continue
        out[k] = rule.quantise(min(max(v, rule.lo), rule.hi))
    return out
