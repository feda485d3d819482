"""The learning methods of the paper's table, and the hooks through which the round asks them what to do.

A method is a small record, not a class hierarchy: which prompt module, which diffusion objective, what replay,
which regulariser and which real data a round may see. Everything else that changes how a method learns
(prediction type, where replay masks come from, replay filtering, generator distillation, generator design) is a
scenario setting, so it composes with every method that it applies to.

The round calls these hooks and has no branch on a method's name:
    replay_masks(spec, diffusion)  where the replay masks come from (none, generated, segmentor, gated, resampled);
    needs_teacher(spec, scenario, has_replay)  whether the round keeps a frozen copy of the received state;
    extra_loss(...)                the method's loss term beside L_seg (+ L_diffusion) on one batch;
    after_round(...)               the method's step after training (EWC's Fisher and anchors);
    round_data(spec, stream, r, load)  the other tasks' real data a round may see (`joint` only);
    fresh_model_each_task(spec)    whether every task gets a model of its own (`individual`).
Adding a method adds a row to METHOD_SPECS and, where it needs a new mechanism, a branch in one of these hooks.

This module imports nothing from c2gr_fed at import time except the error types, so the scenario schema can
derive its method names from METHOD_SPECS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Literal, TypeVar

from ..errors import ScenarioError

if TYPE_CHECKING:  # pragma: no cover - types only
    import torch

    from .state import LearnerState

ReplayMasks = Literal["none", "generated", "segmentor", "gated", "resampled"]
T = TypeVar("T")


@dataclass(frozen=True)
class MethodSpec:
    name: str
    prompt_kind: Literal["rups", "plain"]
    replay: Literal["none", "pairs", "images"]
    """pairs: C2GR image-mask replay (masks per diffusion.replay_masks); images: GR's image-only replay, masks from
    the received segmentor's predictions on the generated images; none: no replay."""
    objective: Literal["bjd", "njd"] | None
    """diffusion objective of the generator, None when the method trains no generator."""
    regulariser: Literal["none", "ewc", "lwf"] = "none"
    data: Literal["own", "seen"] = "own"
    """real data a round may see: its department's own current task (own), or every task seen so far (seen:
    the `joint` reference bound, which breaks data locality)."""
    model_per_task: bool = False
    """every task trains a fresh model of its own and is evaluated with it (`individual`)."""
    summary: str = ""

    @property
    def trains_generator(self) -> bool:
        return self.objective is not None

    @property
    def breaks_locality(self) -> bool:
        return self.data == "seen"


METHOD_SPECS: dict[str, MethodSpec] = {
    "c2gr": MethodSpec("c2gr", "rups", "pairs", "bjd", summary="C2GR: BJD image-mask replay + RUPS unified prompt (the paper)"),
    "c2gr-njd": MethodSpec("c2gr-njd", "rups", "pairs", "njd", summary="C2GR w/o BJD: naive joint diffusion"),
    "c2gr-norups": MethodSpec("c2gr-norups", "plain", "pairs", "bjd", summary="C2GR w/o RUPS: plain text prompts, separate projections"),
    "finetune": MethodSpec("finetune", "rups", "none", None, summary="FineTune: current task only"),
    "ewc": MethodSpec("ewc", "rups", "none", None, regulariser="ewc", summary="EWC on the segmentor"),
    "lwf": MethodSpec("lwf", "rups", "none", None, regulariser="lwf", summary="LwF: distil the previous segmentor on current images"),
    "gr": MethodSpec("gr", "rups", "images", "njd", summary="GR: image-only replay, masks from the previous segmentor"),
    "joint": MethodSpec("joint", "rups", "none", None, data="seen",
                        summary="JointTrain: all tasks' real data together (reference bound, BREAKS DATA LOCALITY)"),
    "individual": MethodSpec("individual", "rups", "none", None, model_per_task=True,
                             summary="IndividualTrain: one segmentor per task (reference)"),
}

NO_GENERATOR_METHODS: tuple[str, ...] = tuple(n for n, s in METHOD_SPECS.items() if not s.trains_generator)
"""Methods that train no generator: the diffusion section's generator settings do not apply to them."""


def method_spec(name: str) -> MethodSpec:
    try:
        return METHOD_SPECS[name]
    except KeyError:
        from .former_variants import unknown_method_message

        raise ScenarioError(unknown_method_message(name)) from None


# ------------------------------------------------------------------------------------------------------ hooks


def replay_masks(spec: MethodSpec, diffusion: Any) -> ReplayMasks:
    """Where the replay masks of `spec` come from under the scenario's `diffusion` section.

    none: the method does not replay; pair replay follows diffusion.replay_masks (generated: the paper's coupled
    masks; segmentor: the received segmentor's predictions on the generated images; gated: those predictions
    where they agree with the generated masks; resampled: masks re-sampled given the clean generated image by
    BJD's mask-given-image branch); image-only replay (GR) takes the segmentor's predictions (gated if asked).
    """
    if spec.replay == "none":
        return "none"
    if spec.replay == "images":
        return "gated" if diffusion.replay_masks == "gated" else "segmentor"
    return diffusion.replay_masks


def needs_teacher(spec: MethodSpec, scenario: Any, has_replay: bool) -> bool:
    """Whether a round keeps a frozen copy of the received state: LwF's teacher segmentor, or the received single
    denoiser that training.generator_distill distils on the round's replay (`has_replay`)."""
    distils = (scenario.training.generator_distill and has_replay and spec.trains_generator
               and scenario.diffusion.generators == "single")
    return spec.regulariser == "lwf" or bool(distils)


def extra_loss(spec: MethodSpec, state: "LearnerState", previous: "LearnerState | None", scenario: Any, emb: Any,
               x: "torch.Tensor", n_classes_pool: "torch.Tensor") -> "torch.Tensor | None":
    """The method's regulariser on one batch x (B, 3, H, W), weighted by its scenario weight; None when it has
    none (or nothing to regularise towards yet: the first task)."""
    tc = scenario.training
    if spec.regulariser == "ewc" and state.extras:
        from .regularisers import ewc_penalty

        return tc.ewc_lambda * ewc_penalty(state.segmentor, state.extras)
    if spec.regulariser == "lwf" and previous is not None and len(state.pool) > 1:
        from .regularisers import lwf_loss

        return tc.distill_weight * lwf_loss(previous, state, emb, x, n_classes_pool)
    return None


def after_round(spec: MethodSpec, state: "LearnerState", images: "torch.Tensor", masks: "torch.Tensor",
                task_ids: "torch.Tensor", emb: Any, n_classes_pool: "torch.Tensor", device: "torch.device") -> None:
    """The method's step once the round has trained: EWC accumulates the task's Fisher and moves its anchors."""
    if spec.regulariser == "ewc":
        from .regularisers import update_ewc

        update_ewc(state, images, masks, task_ids, emb, n_classes_pool, device)


def round_data(spec: MethodSpec, stream: list[Any], round_index: int,
               load: Callable[[Any], T]) -> list[tuple[Any, T]] | None:
    """The earlier tasks' real training data a round may see, as (task, data) pairs: every task seen so far for a
    method with data "seen" (`joint`), None (its own current data only) for every other method. `load(task)`
    reads one task's training split; it is called only when the method may see the data."""
    if spec.data != "seen":
        return None
    return [(t, load(t)) for t in stream[:round_index]]


def fresh_model_each_task(spec: MethodSpec) -> bool:
    """Whether every task is learned by a fresh model of its own (and evaluated with it): `individual`."""
    return spec.model_per_task
