"""What travels between departments: the models, the prompt module and the prompt pool.

`LearnerState` is the domain object; c2gr_fed.federation turns it into Flower records and back. Its arrays
are described by `wire_schema()` so that the privacy guard can check every message against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..diffusion import NoiseSchedule
from ..models import JointDenoiser, PromptedSegmentor
from ..prompts import PromptPool, build_prompt_module
from ..scenario import Scenario
from ..text import build_text_encoder
from .methods import MethodSpec, method_spec

ArraySchema = dict[str, dict[str, tuple[tuple[int, ...], str]]]
"""record name -> array name -> (shape, numpy dtype string)."""


@dataclass
class LearnerState:
    """The learner a department receives, updates on its own data and hands back."""

    method: MethodSpec
    segmentor: PromptedSegmentor
    prompts: nn.Module
    pool: PromptPool
    denoiser: JointDenoiser | None = None
    schedule: NoiseSchedule | None = None
    extras: dict[str, torch.Tensor] = field(default_factory=dict)
    """Method-specific tensors that travel too (EWC anchors and Fisher diagonals), keyed by name."""

    def modules(self) -> dict[str, nn.Module]:
        out: dict[str, nn.Module] = {"segmentor": self.segmentor, "prompts": self.prompts}
        if self.denoiser is not None:
            out["denoiser"] = self.denoiser
        return out

    def to(self, device: torch.device) -> "LearnerState":
        for m in self.modules().values():
            m.to(device)
        if self.schedule is not None:
            self.schedule.to(device)
        return self

    # ---- wire form (plain numpy; the federation package wraps these into ArrayRecords) ----

    def arrays(self) -> dict[str, dict[str, np.ndarray]]:
        out = {name: {k: v.detach().cpu().contiguous().numpy() for k, v in m.state_dict().items()}
               for name, m in self.modules().items()}
        if self.extras:
            out["extras"] = {k: v.detach().cpu().contiguous().numpy() for k, v in self.extras.items()}
        return out

    def load_arrays(self, arrays: dict[str, dict[str, np.ndarray]]) -> None:
        for name, module in self.modules().items():
            if name not in arrays:
                raise KeyError(f"record {name!r} missing from the received state")
            sd = {k: torch.from_numpy(np.array(v, copy=True)) for k, v in arrays[name].items()}
            module.load_state_dict(sd, strict=True)
        self.extras = {k: torch.from_numpy(np.array(v, copy=True)) for k, v in arrays.get("extras", {}).items()}


def text_dim(scenario: Scenario) -> int:
    return build_text_encoder(scenario.text_encoder).dim


def build_state(scenario: Scenario, method: str | None = None) -> LearnerState:
    """Fresh models, initialised deterministically from the scenario seed."""
    spec = method_spec(method or scenario.method)
    torch.manual_seed(scenario.seed)
    pc = scenario.model.prompt
    prompts = build_prompt_module(spec.prompt_kind, text_dim(scenario), pc)
    segmentor = PromptedSegmentor(scenario.model.segmentor, scenario.model.max_classes, pc.token_dim)
    denoiser = schedule = None
    if spec.trains_generator:
        denoiser = JointDenoiser(scenario.model.denoiser, scenario.model.max_classes, pc.token_dim)
        schedule = NoiseSchedule(scenario.diffusion, prediction_type=spec.prediction_type)
    return LearnerState(spec, segmentor, prompts, PromptPool(), denoiser, schedule)


def wire_schema(scenario: Scenario, method: str | None = None) -> ArraySchema:
    """Declared names, shapes and dtypes of every array a message may carry for this scenario and method."""
    state = build_state(scenario, method)
    schema = {rec: {k: (tuple(a.shape), str(a.dtype)) for k, a in arrs.items()} for rec, arrs in state.arrays().items()}
    if state.method.regulariser == "ewc":
        seg = schema["segmentor"]
        params = dict(state.segmentor.named_parameters())
        schema["extras"] = {f"{kind}.{n}": seg[n] for n in params for kind in ("fisher", "anchor")}
    return schema
