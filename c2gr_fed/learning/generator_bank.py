"""A bank of frozen per-task generators (`diffusion.generators: bank`): replay that cannot drift.

With the paper's single generator, every department relearns every earlier task only from the generator's own
samples, and after a few generations an old task's look or structure is lost. With a bank, the department that
holds task t trains the generator of task t on its own real data (the same BJD/NJD loss, conditioned on task t's
generator prompt tokens from the prompt graph), then freezes it together with the exact tokens it was trained
with. The frozen pair travels with the models, and replay of task t is always drawn from it, in every later
round, with the conditioning it was learned with.

A new task's generator starts from a copy of a banked one (`diffusion.bank_warm_start`): the generator of the
task whose prompt text is nearest (cosine of the frozen text embeddings: a fundus camera starts from another
fundus camera, a kidney CT from a pancreas CT), the previous task's, or a fresh initialisation.

Wire form: one ArrayRecord "bank" whose arrays are named "TASK/PARAM" (each generator's state_dict) and
"TASK/tokens" (L, D) float32; only tasks already learned are present (the record is declared for every task of
the stream and checked array by array).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..models import JointDenoiser

TOKENS = "tokens"
"""Array name suffix of a banked generator's frozen prompt tokens (L, D)."""


@dataclass
class BankEntry:
    """One task's frozen generator and the generator prompt tokens (L, D) it was trained with."""

    denoiser: JointDenoiser
    tokens: torch.Tensor


class GeneratorBank:
    """Task name -> frozen generator, in the order the tasks were learned."""

    def __init__(self, make_denoiser) -> None:
        self._make = make_denoiser
        """() -> a fresh JointDenoiser of the scenario's shape."""
        self.entries: dict[str, BankEntry] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, task: str) -> bool:
        return task in self.entries

    def __getitem__(self, task: str) -> BankEntry:
        try:
            return self.entries[task]
        except KeyError:
            raise KeyError(f"the generator bank holds no generator for task {task!r} (it holds "
                           f"{list(self.entries) or 'none'})") from None

    @property
    def names(self) -> list[str]:
        return list(self.entries)

    def add(self, task: str, denoiser: JointDenoiser, tokens: torch.Tensor) -> None:
        """Freeze `denoiser` (no gradients, eval mode) and bank it with its tokens (L, D), detached, on the CPU."""
        denoiser = denoiser.to("cpu").eval()
        for p in denoiser.parameters():
            p.requires_grad_(False)
        self.entries[task] = BankEntry(denoiser, tokens.detach().to("cpu", torch.float32).clone())

    def to(self, device: torch.device) -> "GeneratorBank":
        for e in self.entries.values():
            e.denoiser.to(device)
            e.tokens = e.tokens.to(device)
        return self

    def warm_start_source(self, mode: str, text: torch.Tensor, names: tuple[str, ...], current: str) -> str | None:
        """The banked task whose generator a new task's generator starts from, or None (fresh initialisation).

        mode: "nearest" (highest cosine between the pool's full-prompt text embeddings `text` (N, E), rows in
        pool order `names`), "previous" (the task banked last) or "none"."""
        if mode == "none" or not self.entries:
            return None
        if mode == "previous":
            return self.names[-1]
        if mode != "nearest":
            raise ValueError(f"unknown bank warm start {mode!r}; expected nearest, previous or none")
        row = {n: i for i, n in enumerate(names)}
        cur = torch.nn.functional.normalize(text[row[current]].float(), dim=0)
        best, best_sim = None, -2.0
        for name in self.names:  # ties keep the earlier task
            sim = float(cur @ torch.nn.functional.normalize(text[row[name]].float(), dim=0))
            if sim > best_sim + 1e-9:
                best, best_sim = name, sim
        return best

    def start_generator(self, source: str | None, seed: int) -> JointDenoiser:
        """A trainable generator for a new task: a copy of `source`'s, or a fresh one initialised from `seed`."""
        if source is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                return self._make()
        den = self._make()
        den.load_state_dict(self[source].denoiser.state_dict())
        return den.train()

    # ---- wire form ----

    def arrays(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for task, e in self.entries.items():
            for k, v in e.denoiser.state_dict().items():
                out[f"{task}/{k}"] = v.detach().cpu().contiguous().numpy()
            out[f"{task}/{TOKENS}"] = e.tokens.detach().cpu().contiguous().numpy()
        return out

    def load_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Rebuild the bank from its wire form (tasks in the order their arrays first appear)."""
        grouped: dict[str, dict[str, np.ndarray]] = {}
        for name, a in arrays.items():
            task, sep, key = name.partition("/")
            if not sep or not key:
                raise KeyError(f"bank array {name!r} is not named TASK/PARAM")
            grouped.setdefault(task, {})[key] = a
        self.entries = {}
        for task, params in grouped.items():
            if TOKENS not in params:
                raise KeyError(f"bank entry {task!r} has no {TOKENS!r} array")
            tokens = torch.from_numpy(np.array(params.pop(TOKENS), copy=True))
            den = self._make()
            den.load_state_dict({k: torch.from_numpy(np.array(v, copy=True)) for k, v in params.items()}, strict=True)
            self.add(task, den, tokens)

    def declared_arrays(self, tasks: list[str], token_shape: tuple[int, int]) -> dict[str, tuple[tuple[int, ...], str]]:
        """Array name -> (shape, dtype) for a bank holding every one of `tasks` (the wire schema's declaration)."""
        proto = {k: (tuple(v.shape), str(v.detach().cpu().numpy().dtype)) for k, v in self._make().state_dict().items()}
        out: dict[str, tuple[tuple[int, ...], str]] = {}
        for t in tasks:
            out.update({f"{t}/{k}": v for k, v in proto.items()})
            out[f"{t}/{TOKENS}"] = (tuple(token_shape), "float32")
        return out
