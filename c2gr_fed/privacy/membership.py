"""Membership inference on the segmentor (loss-threshold attack), run by a department on its own data.

Attack score = minus the per-case segmentation loss (Dice + CE, as in training): a training case tends to
have a lower loss than an unseen one. Reported as AUC (0.5 = chance) and TPR at 1% and 0.1% FPR over the
department's training cases (members) versus its held-out cases (non-members). Only these aggregates leave
the department.
"""

from __future__ import annotations

import numpy as np
import torch


def roc_auc(members: np.ndarray, non_members: np.ndarray) -> float:
    """P(score of a member > score of a non-member), ties counted half (Mann-Whitney U / n1 n0)."""
    members, non_members = np.asarray(members, float), np.asarray(non_members, float)
    if len(members) == 0 or len(non_members) == 0:
        return float("nan")
    allv = np.concatenate([members, non_members])
    order = allv.argsort(kind="mergesort")
    ranks = np.empty(len(allv))
    sorted_v = allv[order]
    i = 0
    while i < len(allv):  # average ranks over ties
        j = i
        while j + 1 < len(allv) and sorted_v[j + 1] == sorted_v[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    n1, n0 = len(members), len(non_members)
    u = ranks[:n1].sum() - n1 * (n1 + 1) / 2.0
    return float(u / (n1 * n0))


def tpr_at_fpr(members: np.ndarray, non_members: np.ndarray, fpr: float) -> float:
    """Largest true-positive rate of a threshold rule (score >= t) whose false-positive rate is <= fpr.

    With fewer than 1/fpr non-members this means no non-member may exceed the threshold."""
    members, non_members = np.asarray(members, float), np.asarray(non_members, float)
    if len(members) == 0 or len(non_members) == 0:
        return float("nan")
    best = 0.0
    for t in np.unique(np.concatenate([members, non_members])):
        if float((non_members >= t).mean()) <= fpr:
            best = max(best, float((members >= t).mean()))
    return best


def attack_metrics(loss_train: np.ndarray, loss_heldout: np.ndarray) -> dict[str, float]:
    s_in, s_out = -np.asarray(loss_train, float), -np.asarray(loss_heldout, float)
    return {
        "mia_auc": roc_auc(s_in, s_out),
        "mia_tpr_at_1fpr": tpr_at_fpr(s_in, s_out, 0.01),
        "mia_tpr_at_0.1fpr": tpr_at_fpr(s_in, s_out, 0.001),
        "mia_loss_train_mean": float(np.mean(loss_train)),
        "mia_loss_heldout_mean": float(np.mean(loss_heldout)),
    }


@torch.no_grad()
def per_case_losses(state, scenario, task, data, batch: int = 64) -> np.ndarray:
    """Segmentation loss of every case of `data` (TaskData) with the state's segmentor, prompted for `task`."""
    from ..models import segmentation_loss
    from ..prompts import PromptPool, TaskDescriptor, embed_pool
    from ..text import build_text_encoder

    pool = PromptPool()
    for d in state.pool:
        pool.add(d)
    idx = pool.add(TaskDescriptor.from_task(task))
    emb = embed_pool(pool, build_text_encoder(scenario.text_encoder))
    seg, prompts = state.segmentor, state.prompts
    was = (seg.training, prompts.training)
    seg.eval()
    prompts.eval()
    try:
        tokens = prompts(emb)
        out = []
        for b in range(0, len(data), batch):
            x = data.images[b : b + batch]
            y = data.masks[b : b + batch]
            logits = seg(x, tokens.seg[idx].expand(x.shape[0], -1, -1)).float()
            kb = torch.full((1,), len(task.classes), dtype=torch.int64)
            for i in range(x.shape[0]):
                out.append(float(segmentation_loss(logits[i : i + 1], y[i : i + 1], kb)["loss"]))
    finally:
        seg.train(was[0])
        prompts.train(was[1])
    return np.asarray(out)


def membership_inference(state, scenario, task, train, heldout) -> dict[str, float]:
    """Loss-threshold attack on the segmentor for one task: aggregates only."""
    return attack_metrics(per_case_losses(state, scenario, task, train), per_case_losses(state, scenario, task, heldout))
