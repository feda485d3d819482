"""Replay synthesis: image-mask pairs for every earlier task from the received generator (C2GR step 1).

Where the replay masks come from is the method's `replay_masks` hook (c2gr_fed.learning.methods). For `gr`
(image-only generative replay, Shin et al. 2017), and with `diffusion.replay_masks: segmentor`, the generated masks
are discarded and the received segmentor labels the generated images instead. With `diffusion.replay_masks:
resampled` (beyond the paper) the jointly generated masks are discarded too, and each mask is re-sampled from its
clean generated image with the generator's own mask-given-image branch (BJD Eq. 3), so that images and masks come
from one generator but the mask is drawn conditioned on the finished image. With `gated` the replay mask is the
segmentor's prediction where it agrees with the generated mask and the generated mask where it does not.

Every replay also scores each pair's agreement with the received segmentor (the Dice between the generated mask
and the segmentor's prediction on the generated image): a replay-quality diagnostic in the round metrics. With
`diffusion.replay_filter` (beyond the paper) replay samples `diffusion.replay_oversample` candidates per pair it
needs and keeps the most agreeing ones.

With a generator bank (`diffusion.generators: bank`) each earlier task is drawn from its own frozen generator,
conditioned on the frozen tokens banked with it; otherwise from the one received generator with the prompt
graph's current generator tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ..diffusion import decode_masks, sample_masks_given_images, sample_pairs
from ..metrics import case_dice
from ..models import predict_masks
from ..prompts import embed_pool
from ..scenario import Scenario
from ..text import TextEncoder
from .methods import replay_masks
from .device import sampling_autocast
from .state import LearnerState


@dataclass
class ReplaySet:
    """images (M, 3, H, W) in [-1, 1]; masks (M, H, W) int64; task_ids (M,) pool indices. CPU tensors."""

    images: torch.Tensor
    masks: torch.Tensor
    task_ids: torch.Tensor
    task_names: tuple[str, ...]
    agreement: torch.Tensor | None = None
    """(M,) float: Dice of each pair's generated mask with the received segmentor's prediction on its image (with
    replay masks from the segmentor (gr, or diffusion.replay_masks: segmentor), the prediction is the replay mask
    and the generated mask is only scored)."""
    candidate_agreement: float | None = None
    """mean agreement over every sampled candidate, before any filtering."""
    generated_mask_share: float = 0.0
    """diffusion.replay_masks: gated: share of the pairs whose replay mask is the generated one (the segmentor's
    prediction disagreed); 0 otherwise."""

    def preview(self, per_task: int) -> "ReplaySet":
        keep = torch.cat([torch.nonzero(self.task_ids == t).flatten()[:per_task] for t in self.task_ids.unique()])
        agree = None if self.agreement is None else self.agreement[keep]
        return ReplaySet(self.images[keep], self.masks[keep], self.task_ids[keep], self.task_names, agree,
                         self.candidate_agreement, self.generated_mask_share)


def replay_count(scenario: Scenario, task_name: str | None = None, current_train_size: int | None = None) -> int:
    """Replay pairs to synthesise for the earlier task `task_name`.

    `diffusion.replay_per_task` is a number, or "train_size" (the paper: each task's training-set size). The
    prompt pool does not carry earlier tasks' sizes (less metadata on the wire), so "train_size" resolves from
    the scenario that every node shares: a phantom task's declared `n_train`; for a folder or NIfTI task, whose
    size only its own department knows, the current department's training-set size; 64 if neither is known.
    """
    r = scenario.diffusion.replay_per_task
    if r != "train_size":
        return int(r)
    if task_name is not None:
        for t in scenario.stream():
            if t.name == task_name and getattr(t.data, "kind", None) == "phantom":
                return int(t.data.n_train)
    return int(current_train_size or 64)


def synthesise_replay(
    state: LearnerState,
    scenario: Scenario,
    encoder: TextEncoder,
    seed: int,
    device: torch.device,
    progress: Callable[[str, int, int], None] | None = None,
    current_train_size: int | None = None,
) -> ReplaySet:
    """Sample `replay_count(...)` pairs for each task already in the pool, prompted with the earlier prompts.

    With diffusion.replay_filter, `diffusion.replay_oversample` times as many candidates are sampled and, per task,
    the pairs whose mask agrees best with the received segmentor are kept.
    """
    assert state.schedule is not None and (state.denoiser is not None or state.bank is not None)
    dc = scenario.diffusion
    pool = state.pool
    counts = [replay_count(scenario, desc.name, current_train_size) for desc in pool]
    oversample = dc.replay_oversample if dc.replay_filter else 1
    source = replay_masks(state.method, dc)
    emb = embed_pool(pool, encoder)
    emb = emb.to(device)
    state.prompts.eval()
    with torch.no_grad():
        tokens = state.prompts(emb)
    state.prompts.train()
    images, masks, ids, agreements, candidates = [], [], [], [], []
    n_generated_masks = 0
    total = sum(counts) * oversample
    done = 0
    for t_idx, desc in enumerate(pool):
        n_per = counts[t_idx] * oversample
        denoiser, gen_tokens = task_generator(state, desc.name, tokens.gen[t_idx])
        ctx = gen_tokens.to(device).expand(n_per, -1, -1).contiguous()  # (n, L, D)

        def cb(d: int, tot: int, base: int = done) -> None:
            if progress is not None:
                progress("replay", base + d, total)

        with sampling_autocast(device, scenario.training.precision):  # bf16 on CUDA only
            x, generated, y = _draw(state, scenario, ctx, tokens.seg[t_idx], desc.num_classes,
                                    seed=seed + 104_729 * (t_idx + 1), progress=cb, denoiser=denoiser)
        done += n_per
        # every replay is scored: the generated mask against the received segmentor's prediction
        labelled = source in ("segmentor", "gated")
        labels = y if labelled else _label_with_segmentor(state, x, tokens.seg[t_idx], desc.num_classes)
        agree = case_dice(labels, generated, desc.num_classes).cpu()
        if source == "gated":
            y = gated_masks(y, generated, agree, dc.replay_mask_gate)
            n_generated_masks += int((agree < dc.replay_mask_gate).sum())
        candidates.append(agree)
        if oversample > 1:
            keep = most_agreeing(agree, counts[t_idx])
            x, y, agree = x[keep], y[keep], agree[keep]
        agreements.append(agree)
        images.append(x.float().cpu())
        masks.append(y.cpu())
        ids.append(torch.full((x.shape[0],), t_idx, dtype=torch.int64))
    return ReplaySet(torch.cat(images), torch.cat(masks), torch.cat(ids), tuple(pool.names),
                     torch.cat(agreements), float(torch.cat(candidates).mean()),
                     generated_mask_share=n_generated_masks / max(1, sum(len(i) for i in ids)))


def gated_masks(predicted: torch.Tensor, generated: torch.Tensor, agreement: torch.Tensor, gate: float) -> torch.Tensor:
    """diffusion.replay_masks: gated. Per pair, the segmentor's label map where its Dice with the generated mask is
    at least `gate`, else the generated mask. predicted, generated (N, S, S) int64; agreement (N,) on any device."""
    keep = (agreement.to(predicted.device) >= gate)[:, None, None]  # (N, 1, 1)
    return torch.where(keep, predicted, generated.to(predicted.device))


def task_generator(state: LearnerState, task: str, pool_tokens: torch.Tensor) -> tuple[torch.nn.Module, torch.Tensor]:
    """The generator that replays `task` and its conditioning tokens (L, D): the task's banked generator and frozen
    tokens with a bank, else the state's one generator with the prompt graph's tokens `pool_tokens` (L, D)."""
    if state.bank is not None:
        entry = state.bank[task]
        return entry.denoiser, entry.tokens
    assert state.denoiser is not None
    return state.denoiser, pool_tokens


def most_agreeing(agreement: torch.Tensor, n_keep: int) -> torch.Tensor:
    """Indices (n_keep,) of the highest agreement scores (N,), in their original order; ties keep the earlier."""
    if n_keep > agreement.shape[0]:
        raise ValueError(f"cannot keep {n_keep} replay pairs out of {agreement.shape[0]} candidates")
    order = torch.sort(agreement, descending=True, stable=True).indices[:n_keep]
    return order.sort().values


def generate_task_pairs(
    state: LearnerState,
    scenario: Scenario,
    gen_tokens: torch.Tensor,
    seg_tokens: torch.Tensor,
    num_classes: int,
    seed: int,
    progress: Callable[[int, int], None] | None = None,
    denoiser: torch.nn.Module | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """N replay pairs of one task as the method makes them: images (N, 3, S, S) in [-1, 1], masks (N, S, S) int64.

    gen_tokens (N, L, D) are the generator's prompt tokens (one row per pair), seg_tokens (L, D) the segmentor's
    for the same task. Masks per the method's `replay_masks` hook: generated (and gated, before gating): the
    jointly sampled mask code, decoded; resampled: a mask re-sampled given the clean generated image (seed + 7919);
    segmentor: the received segmentor's prediction on the generated image. denoiser: the generator to draw from
    (default: the state's one generator).
    """
    x, _, masks = _draw(state, scenario, gen_tokens, seg_tokens, num_classes, seed, progress, denoiser)
    return x, masks


def _draw(state: LearnerState, scenario: Scenario, gen_tokens: torch.Tensor, seg_tokens: torch.Tensor,
          num_classes: int, seed: int, progress: Callable[[int, int], None] | None = None,
          denoiser: torch.nn.Module | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """generate_task_pairs, also returning the generator's own masks (N, S, S): images, generated masks (decoded
    joint or re-sampled code) and the replay masks the method uses (the generated ones, or the segmentor's)."""
    denoiser = denoiser if denoiser is not None else state.denoiser
    assert denoiser is not None and state.schedule is not None
    dc = scenario.diffusion
    source = replay_masks(state.method, dc)
    x, code = sample_pairs(
        denoiser, gen_tokens, scenario.image_size, scenario.model.max_classes, state.schedule,
        sampler=dc.sampler, steps=dc.sampling_steps, seed=seed, chunk_size=dc.chunk_size, progress=progress,
    )
    if source == "resampled":
        code = sample_masks_given_images(
            denoiser, x, gen_tokens, scenario.model.max_classes, state.schedule, sampler=dc.sampler,
            steps=dc.sampling_steps, seed=seed + 7_919, chunk_size=dc.chunk_size,
        )
    generated = decode_masks(code, _class_counts(x, num_classes))
    if source in ("segmentor", "gated"):
        return x, generated, _label_with_segmentor(state, x, seg_tokens, num_classes)
    return x, generated, generated


def _class_counts(x: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(N,) int64 on x's device: every one of the N pairs of x (N, 3, S, S) belongs to a task with num_classes."""
    return torch.full((x.shape[0],), num_classes, dtype=torch.int64, device=x.device)


def _label_with_segmentor(state: LearnerState, x: torch.Tensor, seg_tokens: torch.Tensor, num_classes: int) -> torch.Tensor:
    """The received segmentor's label maps (N, S, S) int64 for images x (N, 3, S, S), prompted with seg_tokens (L, D)."""
    kb = _class_counts(x, num_classes)
    state.segmentor.eval()
    with torch.no_grad():
        logits = state.segmentor(x, seg_tokens.expand(x.shape[0], -1, -1))
    state.segmentor.train()
    return predict_masks(logits.float(), kb)


def relabel_current_images(
    state: LearnerState,
    scenario: Scenario,
    encoder: TextEncoder,
    images: torch.Tensor,
    modality: str,
    seed: int,
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """diffusion.replay_current_images: same_modality. For every task already in the pool whose modality text equals
    `modality` (case-insensitive), `diffusion.replay_current_per_task` of the department's own training images
    (N, 3, H, W), drawn without replacement, labelled by the received segmentor under that task's prompt.

    Returns images (M, 3, H, W), masks (M, H, W) int64 and pool indices (M,), CPU; M = 0 when no earlier task
    shares the modality. Nothing here leaves the department: the images are its own.
    """
    pool = state.pool
    same = [i for i, d in enumerate(pool) if d.modality.strip().lower() == modality.strip().lower()]
    h, w = images.shape[-2:]
    if not same or images.shape[0] == 0:
        return images.new_zeros((0, 3, h, w)), torch.zeros((0, h, w), dtype=torch.int64), torch.zeros(0, dtype=torch.int64)
    n = min(scenario.diffusion.replay_current_per_task, images.shape[0])
    emb = embed_pool(pool, encoder).to(device)
    state.prompts.eval()
    with torch.no_grad():
        tokens = state.prompts(emb)
    state.prompts.train()
    gen = torch.Generator().manual_seed(seed + 15_485_863)
    xs, ys, ids = [], [], []
    for t_idx in same:
        pick = torch.randperm(images.shape[0], generator=gen)[:n]
        x = images[pick].to(device)
        ys.append(_label_with_segmentor(state, x, tokens.seg[t_idx], pool[t_idx].num_classes).cpu())
        xs.append(images[pick])
        ids.append(torch.full((n,), t_idx, dtype=torch.int64))
    return torch.cat(xs), torch.cat(ys), torch.cat(ids)

