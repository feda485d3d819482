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
from ..models import JointDenoiser, PromptedSegmentor, build_denoiser, build_segmentor
from ..prompts import PromptPool, build_prompt_module
from ..scenario import Scenario
from ..text import build_text_encoder
from .generator_bank import GeneratorBank
from .methods import MethodSpec, method_spec

ArraySchema = dict[str, dict[str, tuple[tuple[int, ...], str]]]
"""record name -> array name -> (shape, numpy dtype string)."""


@dataclass
class LearnerState:
    """The learner a department receives, updates on its own data and hands back."""

    method: MethodSpec
    segmentor: PromptedSegmentor | torch.nn.Module
    prompts: nn.Module
    pool: PromptPool
    denoiser: JointDenoiser | torch.nn.Module | None = None
    schedule: NoiseSchedule | None = None
    extras: dict[str, torch.Tensor] = field(default_factory=dict)
    """Method-specific tensors that travel too (EWC anchors and Fisher diagonals), keyed by name."""
    bank: GeneratorBank | None = None
    """diffusion.generators: bank: the frozen generator of every learned task (then `denoiser` is None between
    rounds: the round trains the current task's generator and banks it)."""

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
        if self.bank is not None:
            self.bank.to(device)
        return self

    # ---- wire form (plain numpy; the federation package wraps these into ArrayRecords) ----

    def arrays(self) -> dict[str, dict[str, np.ndarray]]:
        out = {name: {k: v.detach().cpu().contiguous().numpy() for k, v in m.state_dict().items()}
               for name, m in self.modules().items()}
        if self.extras:
            out["extras"] = {k: v.detach().cpu().contiguous().numpy() for k, v in self.extras.items()}
        if self.bank is not None and len(self.bank):
            out["bank"] = self.bank.arrays()
        return out

    def load_arrays(self, arrays: dict[str, dict[str, np.ndarray]]) -> None:
        for name, module in self.modules().items():
            if name not in arrays:
                raise KeyError(f"record {name!r} missing from the received state")
            sd = {k: torch.from_numpy(np.array(v, copy=True)) for k, v in arrays[name].items()}
            module.load_state_dict(sd, strict=True)
        self.extras = {k: torch.from_numpy(np.array(v, copy=True)) for k, v in arrays.get("extras", {}).items()}
        if "bank" in arrays and self.bank is None:
            raise KeyError("received a generator bank, but this scenario keeps a single generator "
                           "(diffusion.generators: single)")
        if self.bank is not None:
            self.bank.load_arrays(arrays.get("bank", {}))


def text_dim(scenario: Scenario) -> int:
    return build_text_encoder(scenario.text_encoder).dim


def build_state(scenario: Scenario, method: str | None = None) -> LearnerState:
    """Fresh models, initialised deterministically from the scenario seed."""
    spec = method_spec(method or scenario.method)
    torch.manual_seed(scenario.seed)
    pc = scenario.model.prompt
    prompts = build_prompt_module(spec.prompt_kind, text_dim(scenario), pc)
    segmentor = build_segmentor(scenario.model.segmentor, scenario.model.max_classes, pc.token_dim)
    denoiser = schedule = bank = None
    if spec.trains_generator:
        make = _denoiser_factory(scenario)
        if scenario.diffusion.generators == "bank":
            bank = GeneratorBank(make)
        else:
            denoiser = make()
        schedule = NoiseSchedule(scenario.diffusion)
    return LearnerState(spec, segmentor, prompts, PromptPool(), denoiser, schedule, bank=bank)


def _denoiser_factory(scenario: Scenario):
    """() -> a fresh joint denoiser of the scenario's shape (initialised from the current torch RNG)."""
    cfg, k, d = scenario.model.denoiser, scenario.model.max_classes, scenario.model.prompt.token_dim
    return lambda: build_denoiser(cfg, k, d)


def wire_schema(scenario: Scenario, method: str | None = None) -> ArraySchema:
    """Declared names, shapes and dtypes of every array a message may carry for this scenario and method."""
    state = build_state(scenario, method)
    schema = {rec: {k: (tuple(a.shape), str(a.dtype)) for k, a in arrs.items()} for rec, arrs in state.arrays().items()}
    if state.method.regulariser == "ewc":
        seg = schema["segmentor"]
        params = dict(state.segmentor.named_parameters())
        schema["extras"] = {f"{kind}.{n}": seg[n] for n in params for kind in ("fisher", "anchor")}
    if state.bank is not None:
        pc = scenario.model.prompt
        schema["bank"] = state.bank.declared_arrays([t.name for t in scenario.stream()], (pc.tokens, pc.token_dim))
    return schema
