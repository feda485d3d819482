"""One learning round at one department: the whole of C2GR's Eq. 7-9 in one readable function.

    1. synthesise replay pairs for every earlier task with the received denoiser and the earlier prompts;
    2. add the current task to the prompt pool and compute its prompt;
    3. train segmentor, denoiser and prompt graph jointly on current data + replay with L_seg + L_BJD.

With `diffusion.generators: bank` (beyond the paper) step 1 draws each earlier task's replay from that task's own
frozen generator with the prompt tokens it was trained with, step 3 trains a generator for the current task on the
current real data only (warm-started from a banked one), and the round ends by freezing it into the bank.

Baselines use the same function: a `MethodSpec` says which replay, objective and regulariser apply, and the round
asks the method's hooks (c2gr_fed.learning.methods) for its replay masks, its extra loss and its after-round step;
it has no branch on a method's name.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from ..data.types import TaskData
from ..diffusion import encode_masks, generator_distillation_loss, joint_diffusion_loss
from ..errors import NumericalFault
from ..models import predict_masks, segmentation_loss
from ..prompts import TaskDescriptor, embed_pool
from ..scenario import Scenario, TaskSpec
from ..text import build_text_encoder
from .device import autocast, pick_device
from .ema import Ema
from .methods import after_round, extra_loss, needs_teacher
from .replay import ReplaySet, relabel_current_images, synthesise_replay
from .round_metrics import RoundMetrics
from .state import LearnerState

Progress = Callable[[str, int, int], None]
"""progress(stage, done, total): stage is "replay" or "train"."""


@dataclass
class RoundResult:
    """Round metrics (numbers only, named in RoundMetrics: these are what may leave the department) and a local
    replay preview."""

    metrics: dict[str, float]
    replay_preview: ReplaySet | None = None
    """A few replay pairs per earlier task for the department's own figures. Never sent over the wire."""
    loss_history: list[dict[str, float]] = field(default_factory=list)


def _augment(images: torch.Tensor, masks: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random flips and 90-degree rotations applied identically to images (B,3,H,W) and masks (B,H,W).

    Exact for label maps (no interpolation), unlike angle rotations with bilinear resampling.
    """
    k = int(torch.randint(0, 4, (1,), generator=gen))
    flip = bool(torch.randint(0, 2, (1,), generator=gen))
    if flip:
        images, masks = images.flip(-1), masks.flip(-1)
    if k:
        images, masks = torch.rot90(images, k, (-2, -1)), torch.rot90(masks, k, (-2, -1))
    return images.contiguous(), masks.contiguous()


def _check_finite(value: torch.Tensor, model: str, step: int, task: str) -> None:
    if not torch.isfinite(value).all():
        raise NumericalFault(
            f"task {task}: the {model} loss became {value.item()} at optimiser step {step}; the round is stopped "
            "and the last good state is kept (lower training.lr or enable training.grad_clip)"
        )


def run_round(
    state: LearnerState,
    task: TaskSpec,
    train: TaskData,
    scenario: Scenario,
    round_index: int,
    progress: Progress | None = None,
    device: torch.device | None = None,
    past_data: list[tuple[TaskSpec, TaskData]] | None = None,
) -> RoundResult:
    """Run one round of the state's method on `task` and update `state` in place.

    `past_data`: the earlier tasks' real data that the method's `round_data` hook lets the round see (only the
    `joint` reference bound has any); every other method sees only `train`, the department's own training split.
    """
    t0 = time.perf_counter()
    spec = state.method
    device = device or pick_device(scenario.training.device)
    state.to(device)
    encoder = build_text_encoder(scenario.text_encoder)
    seed = scenario.seed * 1_000_003 + round_index * 7919
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # diffusion noise and timesteps: repeatable whatever ran before in this process

    # -- (1) replay for every earlier task, with the received generator and the earlier prompts ----------
    replay: ReplaySet | None = None
    t_replay = 0.0
    bank = state.bank
    has_generator = state.denoiser is not None or (bank is not None and len(bank) > 0)
    if spec.replay != "none" and len(state.pool) > 0 and has_generator:
        t1 = time.perf_counter()
        replay = synthesise_replay(state, scenario, encoder, seed=seed, device=device, progress=progress,
                                   current_train_size=len(train))
        t_replay = time.perf_counter() - t1
    relabelled = None  # own images under earlier same-modality prompts (diffusion.replay_current_images)
    if replay is not None and scenario.diffusion.replay_current_images == "same_modality":
        t1 = time.perf_counter()
        relabelled = relabel_current_images(state, scenario, encoder, train.images, task.modality, seed, device)
        t_replay += time.perf_counter() - t1

    # -- (2) the current task joins the prompt pool ------------------------------------------------------
    desc = TaskDescriptor.from_task(task)
    cur_idx = state.pool.add(desc)
    emb = embed_pool(state.pool, encoder)
    emb = emb.to(device)
    n_classes_pool = torch.tensor([d.num_classes for d in state.pool], dtype=torch.int64, device=device)
    warm_source = None
    if bank is not None:  # the current task's own generator, warm-started from a banked one
        warm_source = bank.warm_start_source(scenario.diffusion.bank_warm_start, emb.full, emb.names, task.name)
        state.denoiser = bank.start_generator(warm_source, seed).to(device)

    # -- assemble the round's training set: current data (+ replay) (+ other real tasks for `joint`) -----
    images = [train.images]
    masks = [train.masks]
    task_ids = [torch.full((len(train),), cur_idx, dtype=torch.int64)]
    if past_data:
        for p_task, p_data in past_data:
            idx = state.pool.add(TaskDescriptor.from_task(p_task))
            images.append(p_data.images)
            masks.append(p_data.masks)
            task_ids.append(torch.full((len(p_data),), idx, dtype=torch.int64))
        emb = embed_pool(state.pool, encoder)
        emb = emb.to(device)
        n_classes_pool = torch.tensor([d.num_classes for d in state.pool], dtype=torch.int64, device=device)
    if replay is not None:
        images.append(replay.images)
        masks.append(replay.masks)
        task_ids.append(replay.task_ids)
    if relabelled is not None:
        images.append(relabelled[0])
        masks.append(relabelled[1])
        task_ids.append(relabelled[2])
    n_replay = (0 if replay is None else len(replay.images)) + (0 if relabelled is None else len(relabelled[0]))
    all_images = torch.cat(images)  # (N, 3, H, W)
    all_masks = torch.cat(masks)  # (N, H, W)
    all_tasks = torch.cat(task_ids)  # (N,)
    n = all_images.shape[0]

    # -- (3) joint optimisation of segmentor + denoiser + prompt graph ----------------------------------
    tc = scenario.training
    seg_params = list(state.segmentor.parameters()) + list(state.prompts.parameters())
    groups = [{"params": seg_params, "lr": tc.lr}]
    if state.denoiser is not None:
        groups.append({"params": list(state.denoiser.parameters()), "lr": tc.denoiser_lr or tc.lr})
    opt = torch.optim.Adam(groups, weight_decay=tc.weight_decay)
    n_current = n - n_replay  # replay rows (generated, then relabelled own images) are the last ones
    previous = _frozen_copy(state) if needs_teacher(spec, scenario, has_replay=replay is not None) else None
    distils = scenario.training.generator_distill and previous is not None and previous.denoiser is not None
    teacher_gen_tokens = None
    if distils:  # the received prompt graph's generator tokens of the earlier tasks (P_old, L, D), computed once
        with torch.no_grad():
            teacher_gen_tokens = previous.prompts(emb.subset(slice(0, len(state.pool) - 1))).gen

    steps_per_epoch = max(1, math.ceil(n / tc.batch_size))
    total_steps = steps_per_epoch * tc.epochs
    if tc.max_steps is not None:
        total_steps = min(total_steps, tc.max_steps)
    fraction = tc.replay_fraction if replay is not None else None
    batches = _batch_indices(n, n_current, tc.batch_size, fraction, total_steps, gen)
    trains_denoiser = state.denoiser is not None and spec.trains_generator
    extra = tc.generator_extra_steps if trains_denoiser else 0
    dc = scenario.diffusion
    ema = Ema(state.denoiser, dc.ema, dc.ema_warmup) if trains_denoiser and dc.ema else None
    seg_net, den_net = _prepare_models(state, tc, device)
    if device.type == "cuda":  # page-locked host memory: batch copies overlap with GPU work
        all_images, all_masks = all_images.pin_memory(), all_masks.pin_memory()
    history: list[dict[str, float]] = []
    sums = {"seg": 0.0, "diff": 0.0, "reg": 0.0, "gdist": 0.0}
    step = 0
    state.segmentor.train()
    state.prompts.train()
    if state.denoiser is not None:
        state.denoiser.train()
    for idx in batches:
        x, y = _batch(all_images, all_masks, idx, tc.augment, gen, device)
        if tc.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        tid = all_tasks[idx].to(device)
        kb = n_classes_pool[tid]
        with autocast(device, tc.precision):
            tokens = state.prompts(emb)
            seg_ctx = tokens.seg[tid]  # (B, L, D)
            logits = seg_net(x, seg_ctx)  # (B, K_max + 1, H, W)
            seg = segmentation_loss(logits.float(), y, kb)
            loss = seg["loss"]
            parts = {"seg": float(seg["loss"].detach())}
            own = None if bank is None else (idx < n_current).to(device)  # a bank generator learns real data only
            if trains_denoiser and (own is None or bool(own.any())):
                gx, gy, gt = (x, y, tokens.gen[tid]) if own is None else (x[own], y[own], tokens.gen[tid[own]])
                diff = _diffusion_loss(state, den_net, scenario, gt, gx, gy)
                loss = loss + diff
                parts["diff"] = float(diff.detach())
                if teacher_gen_tokens is not None:
                    gd = _generator_distillation(state, den_net, previous, scenario, tokens.gen, teacher_gen_tokens,
                                                 x, y, all_tasks[idx], idx >= n_current)
                    loss = loss + gd
                    parts["gdist"] = float(gd.detach())
            reg = extra_loss(spec, state, previous, scenario, emb, x, n_classes_pool)
            if reg is not None:
                loss = loss + reg
                parts["reg"] = float(reg.detach())
        _check_finite(loss.detach(), "segmentor" if "diff" not in parts else "joint (segmentor + denoiser)", step, task.name)
        _optimiser_step(opt, loss, groups, tc.grad_clip, ema, state.denoiser)
        for k, v in parts.items():
            sums[k] += v
        history.append({"step": float(step), **parts})
        step += 1
        if progress is not None:
            progress("train", step, total_steps + extra)

    # -- (3b) optional denoiser-only steps (training.generator_extra_steps; 0 in the paper's schedule) ---------
    # The prompt graph is frozen here (its tokens are computed once, without gradient): it is shared with the
    # segmentor, which these steps do not train, so segmentor and prompt graph stay as the joint steps left them.
    if extra:
        with torch.no_grad(), autocast(device, tc.precision):
            frozen_gen_tokens = state.prompts(emb).gen  # (P, L, D)
    extra_batches = (_batch_indices(n, n_current, tc.batch_size, fraction, extra, gen) if bank is None
                     else _batch_indices(n_current, n_current, tc.batch_size, None, extra, gen))  # bank: own data
    for idx in extra_batches:
        x, y = _batch(all_images, all_masks, idx, tc.augment, gen, device)
        with autocast(device, tc.precision):
            diff = _diffusion_loss(state, den_net, scenario, frozen_gen_tokens[all_tasks[idx].to(device)], x, y)
            gd = None
            if teacher_gen_tokens is not None:
                gd = _generator_distillation(state, den_net, previous, scenario, frozen_gen_tokens,
                                             teacher_gen_tokens, x, y, all_tasks[idx], idx >= n_current)
        loss = diff if gd is None else diff + gd
        _check_finite(loss.detach(), "denoiser", step, task.name)
        # segmentor and prompt graph get no gradient here: Adam leaves them untouched
        _optimiser_step(opt, loss, groups, tc.grad_clip, ema, state.denoiser)
        sums["diff_extra"] = sums.get("diff_extra", 0.0) + float(diff.detach())
        if gd is not None:
            sums["gdist"] += float(gd.detach())
        history.append({"step": float(step), "diff": float(diff.detach())})
        step += 1
        if progress is not None:
            progress("train", step, total_steps + extra)

    if ema is not None:
        ema.copy_to(state.denoiser)  # the generator that travels (and samples next round) is the EMA one
    if bank is not None and state.denoiser is not None:
        # freeze the current task's generator with the very tokens its last steps were conditioned on
        if extra:
            own_tokens = frozen_gen_tokens[cur_idx]
        else:
            with torch.no_grad(), autocast(device, tc.precision):
                own_tokens = state.prompts(emb).gen[cur_idx]
        bank.add(task.name, state.denoiser, own_tokens.float())
        state.denoiser = None
    after_round(spec, state, all_images, all_masks, all_tasks, emb, n_classes_pool, device)

    t_total = time.perf_counter() - t0
    metrics = RoundMetrics(
        round=float(round_index),
        train_samples=float(len(train)),
        replay_samples=float(0 if replay is None else len(replay.images)),
        relabelled_samples=float(0 if relabelled is None else len(relabelled[0])),
        steps=float(step),
        generator_extra_steps=float(extra),
        loss_seg=sums["seg"] / max(step - extra, 1),
        loss_diffusion=sums["diff"] / max(step - extra, 1),
        loss_diffusion_extra=sums.get("diff_extra", 0.0) / max(extra, 1),
        loss_reg=sums["reg"] / max(step - extra, 1),
        loss_generator_distill=sums["gdist"] / max(step, 1),
        time_replay_s=t_replay,
        time_train_s=t_total - t_replay,
        time_total_s=t_total,
    )
    if bank is not None:
        metrics.generator_bank_size = float(len(bank))
        metrics.generator_warm_started = float(warm_source is not None)
    if replay is not None and replay.agreement is not None:
        metrics.replay_agreement = float(replay.agreement.mean())
        metrics.replay_agreement_candidates = replay.candidate_agreement
        if scenario.diffusion.replay_masks == "gated":
            metrics.replay_generated_mask_share = replay.generated_mask_share
        metrics.per_task["replay_agreement"] = {
            name: float(replay.agreement[replay.task_ids == t_idx].mean())
            for t_idx, name in enumerate(replay.task_names) if bool((replay.task_ids == t_idx).any())}
    if device.type == "cuda":
        metrics.peak_gpu_mem_mb = torch.cuda.max_memory_allocated(device) / 2**20
    state.to(torch.device("cpu"))
    preview = replay.preview(4) if replay is not None else None
    return RoundResult(metrics=metrics.as_dict(), replay_preview=preview, loss_history=history)


def _batch(images: torch.Tensor, masks: torch.Tensor, idx: torch.Tensor, augment: bool, gen: torch.Generator,
           device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """One training batch on `device`: images (B, 3, H, W) and label maps (B, H, W), augmented if asked."""
    x, y = images[idx], masks[idx]
    if augment:
        x, y = _augment(x, y, gen)
    return x.to(device, non_blocking=True), y.to(device, non_blocking=True)


def _optimiser_step(opt: torch.optim.Optimizer, loss: torch.Tensor, groups: list[dict], grad_clip: float | None,
                    ema: "Ema | None", denoiser: torch.nn.Module | None) -> None:
    """Backward, optional gradient clipping over every group, the update, and the EMA of the denoiser."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip is not None:
        torch.nn.utils.clip_grad_norm_([p for g in groups for p in g["params"]], grad_clip)
    opt.step()
    if ema is not None and denoiser is not None:
        ema.update(denoiser)


def _diffusion_loss(state: LearnerState, den_net, scenario: Scenario, gen_ctx: torch.Tensor, x: torch.Tensor,
                    y: torch.Tensor) -> torch.Tensor:
    """The method's NJD/BJD loss of one batch: x (B, 3, H, W), label maps y (B, H, W), generator tokens (B, L, D)."""
    code = encode_masks(y, scenario.model.max_classes)  # (B, K_max, H, W) in {-1, +1}
    dc = scenario.diffusion
    return joint_diffusion_loss(den_net, x, code, gen_ctx, state.schedule, objective=state.method.objective,
                                estimator=dc.bjd_estimator, generator=None, snr_gamma=dc.min_snr_gamma,
                                mask_weight=dc.mask_loss_weight)["loss"]


def _generator_distillation(state: LearnerState, den_net, previous: LearnerState, scenario: Scenario,
                            gen_tokens: torch.Tensor, teacher_tokens: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
                            task_ids: torch.Tensor, is_replay: torch.Tensor) -> torch.Tensor:
    """training.generator_distill_weight x the generative-distillation loss on the batch's replay rows.

    x (B, 3, H, W), label maps y (B, H, W), pool task ids (B,) and the replay flags (B,) bool; gen_tokens
    (P, L, D) are the current prompt graph's generator tokens, teacher_tokens (P_old, L, D) the received one's.
    The received denoiser (frozen, in `previous`) is the teacher: on replay of earlier tasks the new denoiser
    learns its outputs, not only the few samples it drew. 0 (with a graph) when the batch holds no replay.
    """
    rows = torch.nonzero(is_replay).flatten()
    if rows.numel() == 0:
        return gen_tokens.sum() * 0.0
    dev = x.device
    tid = task_ids[rows].to(dev)
    rows = rows.to(dev)
    code = encode_masks(y[rows], scenario.model.max_classes)
    loss = generator_distillation_loss(den_net, previous.denoiser, x[rows], code, gen_tokens[tid],
                                       teacher_tokens[tid], state.schedule, objective=state.method.objective)
    return scenario.training.generator_distill_weight * loss


def _prepare_models(state: LearnerState, tc, device: torch.device):
    """The callables the round trains through: the state's own modules, in channels-last memory format and/or
    wrapped by torch.compile when the scenario asks. The wrappers share the modules' parameters, so the state (and
    what travels) is unchanged; the wire form is made contiguous again (`LearnerState.arrays`)."""
    seg, den = state.segmentor, state.denoiser
    if tc.channels_last:
        seg = seg.to(memory_format=torch.channels_last)
        den = den.to(memory_format=torch.channels_last) if den is not None else None
    if tc.compile:
        seg = torch.compile(seg)
        den = torch.compile(den) if den is not None else None
    return seg, den


def _batch_indices(n: int, n_current: int, batch_size: int, replay_fraction: float | None, total_steps: int,
                   gen: torch.Generator):
    """Yield `total_steps` index batches into the round's training set (current data first, then replay).

    replay_fraction None: epochs of random permutations over current + replay (every sample equally likely).
    replay_fraction f: each batch holds round(f * B) replay samples and the rest current samples, each part
    drawn from its own running permutation (balanced batches whatever the replay size).
    """
    if replay_fraction is None or n_current >= n or n_current == 0:
        steps_per_epoch = max(1, math.ceil(n / batch_size))
        step = 0
        while step < total_steps:
            perm = torch.randperm(n, generator=gen)
            for b in range(steps_per_epoch):
                if step >= total_steps:
                    return
                yield perm[b * batch_size : (b + 1) * batch_size]
                step += 1
        return
    b_rep = min(batch_size - 1, max(1, round(replay_fraction * batch_size)))
    b_cur = batch_size - b_rep

    def stream(offset: int, size: int, k: int):
        buf = torch.empty(0, dtype=torch.int64)
        while True:
            while buf.numel() < k:
                buf = torch.cat([buf, torch.randperm(size, generator=gen) + offset])
            out, buf = buf[:k], buf[k:]
            yield out

    cur, rep = stream(0, n_current, b_cur), stream(n_current, n - n_current, b_rep)
    for _ in range(total_steps):
        yield torch.cat([next(cur), next(rep)])


def _frozen_copy(state: LearnerState) -> LearnerState:
    """A deep copy of the received state with every parameter frozen: LwF's teacher, distillation's teacher."""
    prev = copy.deepcopy(state)
    for m in prev.modules().values():
        m.eval()
        for p in m.parameters():
            p.requires_grad_(False)
    return prev


def evaluate_task(
    state: LearnerState,
    task: TaskSpec,
    data: TaskData,
    scenario: Scenario,
    device: torch.device | None = None,
    batch_size: int = 64,
) -> dict[str, float | list[float]]:
    """Dice per foreground class and their mean for one task, with the state's segmentor.

    A task that is not yet in the pool (forward transfer) is prompted through a temporary pool that
    includes it; the state is not changed.
    """
    from ..metrics import DiceAccumulator
    from ..prompts import PromptPool

    device = device or pick_device(scenario.training.device)
    encoder = build_text_encoder(scenario.text_encoder)
    pool = PromptPool()
    for d in state.pool:
        pool.add(d)
    idx = pool.add(TaskDescriptor.from_task(task))
    emb = embed_pool(pool, encoder)
    emb = emb.to(device)
    state.segmentor.to(device).eval()
    state.prompts.to(device).eval()
    acc = DiceAccumulator(len(task.classes))
    with torch.inference_mode():
        tokens = state.prompts(emb)
        for b in range(0, len(data), batch_size):
            x = data.images[b : b + batch_size].to(device)
            kb = torch.full((x.shape[0],), len(task.classes), dtype=torch.int64, device=device)
            with autocast(device, scenario.training.precision):
                logits = state.segmentor(x, tokens.seg[idx].expand(x.shape[0], -1, -1))
            acc.update(predict_masks(logits.float(), kb).cpu(), data.masks[b : b + batch_size])
    state.segmentor.to("cpu").train()
    state.prompts.to("cpu").train()
    return {"dice": acc.mean(), "dice_per_class": acc.per_class()}
