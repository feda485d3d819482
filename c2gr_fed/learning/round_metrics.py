"""The numbers one round reports: the only registry of round-metric names.

`run_round` fills a `RoundMetrics`; the wire schema (c2gr_fed.privacy.schema) declares exactly its field names as
the keys a department may return, so a metric cannot be added to the round without being declared, or declared
without being reported. This module imports nothing from c2gr_fed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields


@dataclass
class RoundMetrics:
    """Numbers only: these are what may leave the department. Optional ones are left out when None."""

    round: float
    train_samples: float
    replay_samples: float
    relabelled_samples: float
    steps: float
    generator_extra_steps: float
    loss_seg: float
    loss_diffusion: float
    loss_diffusion_extra: float
    loss_reg: float
    loss_generator_distill: float
    time_replay_s: float
    time_train_s: float
    time_total_s: float
    peak_gpu_mem_mb: float | None = None
    """this round's peak GPU memory (CUDA only)."""
    gpu_unseen: float | None = None
    """1 when the department was granted a GPU (federation.gpus_per_department) that torch on its node cannot see."""
    replay_agreement: float | None = None
    """mean Dice of the replay masks with the received segmentor's predictions (kept pairs)."""
    replay_agreement_candidates: float | None = None
    """the same over every sampled candidate, before diffusion.replay_filter."""
    replay_generated_mask_share: float | None = None
    """diffusion.replay_masks: gated: share of replay pairs whose mask is the generated one."""
    generator_bank_size: float | None = None
    """diffusion.generators: bank: generators banked after the round."""
    generator_warm_started: float | None = None
    """diffusion.generators: bank: whether this round's generator started from a banked one."""
    per_task: dict[str, dict[str, float]] = field(default_factory=dict)
    """PER_TASK_ROUND_METRICS by earlier task: metric -> {task name: value}, reported as "metric/task"."""

    def as_dict(self) -> dict[str, float]:
        out = {f.name: float(v) for f in fields(self) if f.name != "per_task" and (v := getattr(self, f.name)) is not None}
        for metric, by_task in self.per_task.items():
            if metric not in PER_TASK_ROUND_METRICS:
                raise KeyError(f"round metric {metric!r} is not reported per task; per-task metrics: "
                               f"{PER_TASK_ROUND_METRICS}")
            out.update({f"{metric}/{task}": float(v) for task, v in by_task.items()})
        return out


ROUND_METRIC_KEYS: tuple[str, ...] = tuple(f.name for f in fields(RoundMetrics) if f.name != "per_task")
"""Every round metric's name, in report order."""
PER_TASK_ROUND_METRICS: tuple[str, ...] = ("replay_agreement",)
"""Round metrics also reported per earlier task, as "NAME/TASK" for a task of the stream."""
