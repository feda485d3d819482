"""The learning methods behind one round interface, described by what they use.

A method is a small record, not a class hierarchy: the round reads which prompt module, which diffusion
objective, what replay and which regulariser it needs. `joint` is a reference bound that breaks data locality.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..errors import ScenarioError


@dataclass(frozen=True)
class MethodSpec:
    name: str
    prompt_kind: Literal["rups", "plain"]
    replay: Literal["none", "pairs", "remask", "images"]
    """pairs: C2GR image-mask replay; remask: C2GR images whose masks are re-sampled from the clean generated
    image with BJD's mask-given-image branch; images: masks from the received segmentor's predictions on the
    generated images (GR; with the BJD objective, c2gr-vs); none: no replay."""
    objective: Literal["bjd", "njd"] | None
    """diffusion objective of the generator, None when the method trains no generator."""
    regulariser: Literal["none", "ewc", "lwf"] = "none"
    breaks_locality: bool = False
    summary: str = ""
    prediction_type: Literal["epsilon", "v_prediction", "sample"] | None = None
    """what the generator predicts; None: the scenario's diffusion.prediction_type (epsilon, the paper's, by
    default). A method that sets it overrides the scenario."""
    filter_replay: bool = False
    """sample diffusion.replay_oversample candidates per replay pair and keep those whose mask agrees best with
    the received segmentor's prediction on the generated image."""
    distil_generator: bool = False
    """train the denoiser to also match the received (frozen) denoiser's outputs on noised replay, with the
    earlier prompts (generative distillation; training.generator_distill_weight)."""

    def __post_init__(self) -> None:
        if self.replay == "remask" and self.objective != "bjd":
            raise ValueError(f"method {self.name!r}: remask replay needs the BJD objective (NJD never trains "
                             "the mask-given-image branch)")
        if self.filter_replay and self.replay not in ("pairs", "remask"):
            raise ValueError(f"method {self.name!r}: replay filtering scores generated masks, so it needs pair "
                             f"replay, not {self.replay!r}")
        if self.distil_generator and (self.objective is None or self.replay == "none"):
            raise ValueError(f"method {self.name!r}: generator distillation needs a trained generator and replay "
                             "to distil on")

    @property
    def trains_generator(self) -> bool:
        return self.objective is not None


METHOD_SPECS: dict[str, MethodSpec] = {
    "c2gr": MethodSpec("c2gr", "rups", "pairs", "bjd", summary="C2GR: BJD image-mask replay + RUPS unified prompt (the paper)"),
    "c2gr-njd": MethodSpec("c2gr-njd", "rups", "pairs", "njd", summary="C2GR w/o BJD: naive joint diffusion"),
    "c2gr-norups": MethodSpec("c2gr-norups", "plain", "pairs", "bjd", summary="C2GR w/o RUPS: plain text prompts, separate projections"),
    "c2gr-remask": MethodSpec("c2gr-remask", "rups", "remask", "bjd",
                              summary="C2GR + masks re-sampled given the generated image (BJD Eq. 3 branch; beyond the paper)"),
    "c2gr-v": MethodSpec("c2gr-v", "rups", "pairs", "bjd", prediction_type="v_prediction",
                         summary="C2GR whose generator predicts v instead of the noise (beyond the paper)"),
    "c2gr-vf": MethodSpec("c2gr-vf", "rups", "pairs", "bjd", prediction_type="v_prediction", filter_replay=True,
                          summary="c2gr-v + replay pairs filtered by agreement with the received segmentor "
                                  "(beyond the paper)"),
    "c2gr-vr": MethodSpec("c2gr-vr", "rups", "remask", "bjd", prediction_type="v_prediction",
                          summary="c2gr-v whose replay masks are re-sampled given the clean generated image with "
                                  "BJD's mask-given-image branch (beyond the paper)"),
    "c2gr-vd": MethodSpec("c2gr-vd", "rups", "pairs", "bjd", prediction_type="v_prediction", distil_generator=True,
                          summary="c2gr-v whose denoiser also distils the received denoiser on noised replay "
                                  "(generative distillation; beyond the paper)"),
    "c2gr-vs": MethodSpec("c2gr-vs", "rups", "images", "bjd", prediction_type="v_prediction",
                          summary="c2gr-v whose replay masks are the received segmentor's predictions on the "
                                  "generated images, as in GR (coupled BJD generator, GR labels; beyond the paper)"),
    "c2gr-vsp": MethodSpec("c2gr-vsp", "plain", "images", "bjd", prediction_type="v_prediction",
                           summary="c2gr-vs with c2gr-norups's plain text prompts: each task's own text embedding, "
                                   "site included, conditions the generator, where RUPS merges tasks whose modality, "
                                   "region and objective coincide (beyond the paper)"),
    "finetune": MethodSpec("finetune", "rups", "none", None, summary="FineTune: current task only"),
    "ewc": MethodSpec("ewc", "rups", "none", None, regulariser="ewc", summary="EWC on the segmentor"),
    "lwf": MethodSpec("lwf", "rups", "none", None, regulariser="lwf", summary="LwF: distil the previous segmentor on current images"),
    "gr": MethodSpec("gr", "rups", "images", "njd", summary="GR: image-only replay, masks from the previous segmentor"),
    "gr-v": MethodSpec("gr-v", "rups", "images", "njd", prediction_type="v_prediction",
                       summary="GR whose generator predicts v (beyond the paper; the image-only control for c2gr-v)"),
    "joint": MethodSpec("joint", "rups", "none", None, breaks_locality=True,
                        summary="JointTrain: all tasks' real data together (reference bound, BREAKS DATA LOCALITY)"),
    "individual": MethodSpec("individual", "rups", "none", None, summary="IndividualTrain: one segmentor per task (reference)"),
}


def method_spec(name: str) -> MethodSpec:
    try:
        return METHOD_SPECS[name]
    except KeyError:
        raise ScenarioError(f"unknown method {name!r}; methods: {', '.join(METHOD_SPECS)}") from None
