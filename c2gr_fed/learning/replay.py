"""Replay synthesis: image-mask pairs for every earlier task from the received generator (C2GR step 1).

For `gr` (image-only generative replay, Shin et al. 2017) the generated masks are discarded and the received
segmentor labels the generated images instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ..diffusion import decode_masks, sample_pairs
from ..models import predict_masks
from ..prompts import embed_pool
from ..scenario import Scenario
from ..text import TextEncoder
from .state import LearnerState


@dataclass
class ReplaySet:
    """images (M, 3, H, W) in [-1, 1]; masks (M, H, W) int64; task_ids (M,) pool indices. CPU tensors."""

    images: torch.Tensor
    masks: torch.Tensor
    task_ids: torch.Tensor
    task_names: tuple[str, ...]

    def preview(self, per_task: int) -> "ReplaySet":
        keep = torch.cat([torch.nonzero(self.task_ids == t).flatten()[:per_task] for t in self.task_ids.unique()])
        return ReplaySet(self.images[keep], self.masks[keep], self.task_ids[keep], self.task_names)


def replay_count(scenario: Scenario, current_train_size: int | None = None) -> int:
    r = scenario.diffusion.replay_per_task
    if r == "train_size":
        # The pool does not carry earlier tasks' sizes (less metadata on the wire); use the scenario's
        # declared n_train where the task is a phantom, else the current task's size.
        return current_train_size or 64
    return int(r)


def synthesise_replay(
    state: LearnerState,
    scenario: Scenario,
    encoder: TextEncoder,
    seed: int,
    device: torch.device,
    progress: Callable[[str, int, int], None] | None = None,
) -> ReplaySet:
    """Sample `replay_per_task` pairs for each task already in the pool, prompted with the earlier prompts."""
    assert state.denoiser is not None and state.schedule is not None
    dc = scenario.diffusion
    n_per = replay_count(scenario)
    pool = state.pool
    emb = embed_pool(pool, encoder)
    emb = type(emb)(full=emb.full.to(device), attributes={k: v.to(device) for k, v in emb.attributes.items()})
    state.prompts.eval()
    with torch.no_grad():
        tokens = state.prompts(emb)
    state.prompts.train()
    images, masks, ids = [], [], []
    total = n_per * len(pool)
    done = 0
    for t_idx, desc in enumerate(pool):
        ctx = tokens.gen[t_idx].expand(n_per, -1, -1).contiguous()  # (n, L, D)

        def cb(d: int, tot: int, base: int = done) -> None:
            if progress is not None:
                progress("replay", base + d, total)

        x, code = sample_pairs(
            state.denoiser, ctx, scenario.image_size, scenario.model.max_classes, state.schedule,
            sampler=dc.sampler, steps=dc.sampling_steps, seed=seed + 104_729 * (t_idx + 1),
            chunk_size=dc.chunk_size, progress=cb,
        )
        kb = torch.full((n_per,), desc.num_classes, dtype=torch.int64, device=x.device)
        if state.method.replay == "images":
            y = _label_with_segmentor(state, x, tokens.seg[t_idx], kb)
        else:
            y = decode_masks(code, kb)
        images.append(x.float().cpu())
        masks.append(y.cpu())
        ids.append(torch.full((n_per,), t_idx, dtype=torch.int64))
        done += n_per
    return ReplaySet(torch.cat(images), torch.cat(masks), torch.cat(ids), tuple(pool.names))


def _label_with_segmentor(state: LearnerState, x: torch.Tensor, seg_tokens: torch.Tensor, kb: torch.Tensor) -> torch.Tensor:
    state.segmentor.eval()
    with torch.no_grad():
        logits = state.segmentor(x, seg_tokens.expand(x.shape[0], -1, -1))
    state.segmentor.train()
    return predict_masks(logits.float(), kb)
