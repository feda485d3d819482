"""Regularisers of the non-replay baselines: EWC (Kirkpatrick et al. 2017) and LwF (Li & Hoiem 2017) on the
segmentor. The round reaches them through the method hooks (c2gr_fed.learning.methods)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ..models import restrict_logits, segmentation_loss
from .state import LearnerState


def ewc_penalty(segmentor: torch.nn.Module, extras: dict[str, torch.Tensor]) -> torch.Tensor:
    """sum_i F_i (theta_i - theta*_i)^2 / 2 over the segmentor's parameters, from the travelling extras."""
    total = torch.zeros((), device=next(segmentor.parameters()).device)
    for name, p in segmentor.named_parameters():
        f, a = extras.get(f"fisher.{name}"), extras.get(f"anchor.{name}")
        if f is None or a is None:
            continue
        total = total + (f.to(p.device) * (p - a.to(p.device)) ** 2).sum()
    return total / 2


def update_ewc(state: LearnerState, images, masks, task_ids, emb, n_classes_pool, device, batches: int = 8,
               batch_size: int = 16) -> None:
    """Accumulate the diagonal empirical Fisher of the current task into the running Fisher; new anchors."""
    seg = state.segmentor
    fisher = {n: torch.zeros_like(p) for n, p in seg.named_parameters()}
    n = images.shape[0]
    count = 0
    for b in range(min(batches, (n + batch_size - 1) // batch_size)):
        sl = slice(b * batch_size, (b + 1) * batch_size)
        x, y, tid = images[sl].to(device), masks[sl].to(device), task_ids[sl].to(device)
        seg.zero_grad(set_to_none=True)
        tokens = state.prompts(emb)
        loss = segmentation_loss(seg(x, tokens.seg[tid]), y, n_classes_pool[tid])["loss"]
        loss.backward()
        for name, p in seg.named_parameters():
            if p.grad is not None:
                fisher[name] += p.grad.detach() ** 2
        count += 1
    seg.zero_grad(set_to_none=True)
    state.prompts.zero_grad(set_to_none=True)
    for name, p in seg.named_parameters():
        old = state.extras.get(f"fisher.{name}")
        f = fisher[name].cpu() / max(count, 1)
        state.extras[f"fisher.{name}"] = f if old is None else old + f
        state.extras[f"anchor.{name}"] = p.detach().cpu().clone()


def lwf_loss(previous: LearnerState, state: LearnerState, emb: Any, x: torch.Tensor,
             n_classes_pool: torch.Tensor) -> torch.Tensor:
    """LwF: on current images x (B, 3, H, W), the KL divergence per pixel from the previous model's class
    distribution to the current one's, under the prompt of one earlier task drawn at random (torch's RNG).

    0 when the current segmentor and prompts equal the previous ones; positive when their predictions differ."""
    n_old = len(state.pool) - 1
    j = int(torch.randint(0, n_old, (1,)))
    kb = n_classes_pool[j].expand(x.shape[0])
    with torch.no_grad():
        old_tokens = previous.prompts(emb.subset(slice(0, n_old)))
        target = previous.segmentor(x, old_tokens.seg[j].expand(x.shape[0], -1, -1))
    new_tokens = state.prompts(emb)
    student = state.segmentor(x, new_tokens.seg[j].expand(x.shape[0], -1, -1))
    t = F.softmax(restrict_logits(target.float(), kb), 1)
    s = F.log_softmax(restrict_logits(student.float(), kb), 1)
    return F.kl_div(s, t, reduction="batchmean") / (x.shape[-1] * x.shape[-2])
