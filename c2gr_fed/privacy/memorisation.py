"""Memorisation audit of the generator, run by a department on its own data (only aggregates leave it).

Given synthetic pairs for one task, the department's training cases and its held-out cases (val + test):

- nearest-neighbour distance ratio: a synthetic image whose nearest training image is much closer than the
  second nearest (d1/d2 < 1/3) counts as memorised;
- Carlini et al. (2023) extraction distance: l2 to the nearest training image divided by the mean l2 to its
  k nearest training images, k = min(50, n_train - 1). The threshold is calibrated on real-versus-real
  scores (held-out cases against the training set, plus each training case against the others) at 1% false
  positives, because on homogeneous medical images a fixed threshold flags most real images as copies. Run on
  the image, the mask code and the pair;
- copy detection in a feature space (the segmentor's encoder features, pooled), threshold again at 1% false
  positives of the real-versus-real nearest-neighbour distance;
- the distance distributions (synthetic to nearest train, synthetic to nearest held-out, real held-out to
  nearest train) as a histogram PNG that stays in the department's own folder.

A task is flagged when the image extraction fraction, the d1/d2 fraction or the feature-copy fraction reaches
FLAG_FRACTION with at least FLAG_MIN_COUNT samples: with 1% false positives per sample, a fresh generator flags
about 1% of its samples. Mask and pair fractions are reported but do not flag on their own: small label maps
repeat naturally between real cases (measured on the phantom departments: up to 2 of 8 real test masks fall
below the 1% threshold at 16 x 16).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

NN_RATIO = 1.0 / 3.0
FPR = 0.01
K_MAX = 50
FLAG_FRACTION = 0.10
FLAG_MIN_COUNT = 2
MIN_EMPIRICAL = 200


@dataclass
class MemorisationResult:
    metrics: dict[str, float]
    """Aggregates only (declared as MEMORISATION_METRIC_KEYS): what may leave the department."""
    distances: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    """space -> {"synthetic->train", "synthetic->heldout", "heldout->train"} nearest distances: local only."""


def _flat(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], -1).double()


def _sorted_distances(query: torch.Tensor, ref: torch.Tensor, exclude_self: bool = False) -> torch.Tensor:
    """(Nq, Nr) l2 distances per query row, ascending; with exclude_self the diagonal is dropped (query is ref)."""
    d = torch.cdist(_flat(query), _flat(ref))
    if exclude_self:
        n = d.shape[0]
        d = d.masked_fill(torch.eye(n, dtype=torch.bool), float("inf"))
        d = d.sort(dim=1).values[:, : n - 1]
        return d
    return d.sort(dim=1).values


def extraction_scores(sorted_d: torch.Tensor, k: int) -> np.ndarray:
    """Carlini-style score: nearest distance / mean of the k nearest (small = one case much closer than the rest)."""
    k = max(1, min(k, sorted_d.shape[1]))
    mean_k = sorted_d[:, :k].mean(dim=1).clamp_min(1e-12)
    return (sorted_d[:, 0] / mean_k).numpy()


def nn_ratios(sorted_d: torch.Tensor) -> np.ndarray:
    if sorted_d.shape[1] < 2:
        return np.full(sorted_d.shape[0], np.inf)
    return (sorted_d[:, 0] / sorted_d[:, 1].clamp_min(1e-12)).numpy()


def _calibrated(ref_scores: np.ndarray, fpr: float = FPR) -> float:
    """Threshold below which a real, unseen case falls with probability `fpr`.

    Empirical quantile with at least MIN_EMPIRICAL reference scores; with fewer (a department with a few dozen
    cases) the empirical 1% quantile is just the minimum and a fresh sample falls below it about 1/(n+1) of the
    time, so the lower of that and a normal fit's quantile (mean - z sd) is used."""
    ref = np.asarray(ref_scores, float)
    ref = ref[np.isfinite(ref)]
    if not len(ref):
        return float("nan")
    q = float(np.quantile(ref, fpr))
    if len(ref) >= MIN_EMPIRICAL:
        return q
    from statistics import NormalDist

    return min(q, float(ref.mean() + NormalDist().inv_cdf(fpr) * ref.std(ddof=1))) if len(ref) > 2 else q


def _space(name: str, synth: torch.Tensor, train: torch.Tensor, heldout: torch.Tensor, k: int) -> dict:
    """Extraction scores of synthetic samples and the calibrated threshold in one pixel space."""
    s_tr = _sorted_distances(synth, train)
    h_tr = _sorted_distances(heldout, train)
    t_tr = _sorted_distances(train, train, exclude_self=True)
    ref = np.concatenate([extraction_scores(h_tr, k), extraction_scores(t_tr, k - 1 if k > 1 else 1)])
    thr = _calibrated(ref)
    scores = extraction_scores(s_tr, k)
    return {"scores": scores, "threshold": thr, "sorted_synth_train": s_tr, "sorted_heldout_train": h_tr,
            "sorted_train_train": t_tr}


def memorisation_metrics(
    synth_images: torch.Tensor,
    synth_codes: torch.Tensor,
    train_images: torch.Tensor,
    train_codes: torch.Tensor,
    heldout_images: torch.Tensor,
    heldout_codes: torch.Tensor,
    features: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> MemorisationResult:
    """All the memorisation statistics for one task.

    images (N, 3, H, W) in [-1, 1]; codes (N, K, H, W) mask codes in {-1, +1} (c2gr_fed.diffusion.encode_masks);
    features: images -> (N, F) (e.g. `segmentor_features`); None skips the feature space.
    """
    n_train = int(train_images.shape[0])
    if n_train < 3:
        raise ValueError(f"the memorisation audit needs at least 3 training cases, got {n_train}")
    if heldout_images.shape[0] < 1:
        raise ValueError("the memorisation audit needs held-out cases (val or test)")
    k = min(K_MAX, n_train - 1)
    n = int(synth_images.shape[0])
    dims = synth_images[0].numel()
    rms = 1.0 / math.sqrt(dims)
    m: dict[str, float] = {"samples": float(n), "train_cases": float(n_train),
                           "heldout_cases": float(heldout_images.shape[0])}
    dists: dict[str, dict[str, np.ndarray]] = {}

    img = _space("image", synth_images, train_images, heldout_images, k)
    msk = _space("mask", synth_codes, train_codes, heldout_codes, k)
    pair = _space("pair", torch.cat([_flat(synth_images), _flat(synth_codes)], 1),
                  torch.cat([_flat(train_images), _flat(train_codes)], 1),
                  torch.cat([_flat(heldout_images), _flat(heldout_codes)], 1), k)
    counts: list[int] = []
    for key, sp in (("", img), ("_mask", msk), ("_pair", pair)):
        hits = int((sp["scores"] < sp["threshold"]).sum())
        if key == "":  # masks at low resolution repeat naturally: mask and pair are reported, the image decides
            counts.append(hits)
        m[f"extraction_fraction{key}"] = hits / n
        m[f"extraction_threshold{key}"] = sp["threshold"]
    m["extraction_score_min"] = float(np.min(img["scores"]))

    ratios = nn_ratios(img["sorted_synth_train"])
    nn_hits = int((ratios < NN_RATIO).sum())
    m["nn_ratio_fraction"] = nn_hits / n
    m["nn_ratio_threshold"] = NN_RATIO
    counts.append(nn_hits)

    s_h = _sorted_distances(synth_images, heldout_images)
    m["pixel_d_train_median"] = float(img["sorted_synth_train"][:, 0].median()) * rms
    m["pixel_d_heldout_median"] = float(s_h[:, 0].median()) * rms
    dists["pixel"] = {"synthetic->train": img["sorted_synth_train"][:, 0].numpy() * rms,
                      "synthetic->heldout": s_h[:, 0].numpy() * rms,
                      "heldout->train": img["sorted_heldout_train"][:, 0].numpy() * rms}

    if features is not None:
        fs, ft, fh = (torch.nn.functional.normalize(features(x).double(), dim=1)
                      for x in (synth_images, train_images, heldout_images))
        f_st = _sorted_distances(fs, ft)
        f_sh = _sorted_distances(fs, fh)
        f_ref = np.concatenate([_sorted_distances(fh, ft)[:, 0].numpy(),
                                _sorted_distances(ft, ft, exclude_self=True)[:, 0].numpy()])
        thr = _calibrated(f_ref)
        hits = int((f_st[:, 0].numpy() < thr).sum())
        counts.append(hits)
        m["feature_copy_fraction"] = hits / n
        m["feature_copy_threshold"] = thr
        m["feature_d_train_median"] = float(f_st[:, 0].median())
        m["feature_d_heldout_median"] = float(f_sh[:, 0].median())
        dists["feature"] = {"synthetic->train": f_st[:, 0].numpy(), "synthetic->heldout": f_sh[:, 0].numpy(),
                            "heldout->train": _sorted_distances(fh, ft)[:, 0].numpy()}
    m["flagged"] = float(any(c >= max(FLAG_MIN_COUNT, math.ceil(FLAG_FRACTION * n)) for c in counts))
    return MemorisationResult({k_: float(v) for k_, v in m.items()}, dists)


# ------------------------------------------------------------------------------------- feature extractor


@torch.no_grad()
def segmentor_features(segmentor: torch.nn.Module, context: torch.Tensor, batch: int = 64
                       ) -> Callable[[torch.Tensor], torch.Tensor]:
    """images -> (N, F): the segmentor's encoder features (every encoder stage and the bottleneck), averaged
    over space and concatenated. Read with forward hooks, so the model code is unchanged. context (L, D)."""
    unet = segmentor.unet
    stages = list(unet.down_stages) + [unet.mid]

    def extract(images: torch.Tensor) -> torch.Tensor:
        captured: list[torch.Tensor] = []
        hooks = [s.register_forward_hook(lambda _m, _i, out: captured.append(out.mean(dim=(2, 3)))) for s in stages]
        was = segmentor.training
        segmentor.eval()
        device = next(segmentor.parameters()).device
        out = []
        try:
            with torch.no_grad():
                for b in range(0, images.shape[0], batch):
                    x = images[b : b + batch].to(device)
                    captured.clear()
                    segmentor(x, context.to(device).expand(x.shape[0], -1, -1))
                    out.append(torch.cat(captured, dim=1).float().cpu())
        finally:
            for h in hooks:
                h.remove()
            segmentor.train(was)
        return torch.cat(out)

    return extract


# -------------------------------------------------------------------------------------- the figure


def distance_histogram(result: MemorisationResult, out: Path, title: str) -> Path | None:
    """Train-versus-held-out nearest-neighbour distance distributions (stays in the department's folder)."""
    if not result.distances:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    spaces = list(result.distances)
    fig, axes = plt.subplots(1, len(spaces), figsize=(5 * len(spaces), 3.4), squeeze=False)
    for ax, space in zip(axes[0], spaces):
        d = result.distances[space]
        allv = np.concatenate([v for v in d.values() if len(v)])
        bins = np.linspace(0.0, float(allv.max()) * 1.05 + 1e-9, 30)
        for label, v in d.items():
            ax.hist(v, bins=bins, alpha=0.5, density=True, label=f"{label} (n={len(v)})")
        ax.set_xlabel(f"nearest-neighbour distance ({'RMS pixel' if space == 'pixel' else 'feature, unit-normalised'})")
        ax.set_title(space)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


# -------------------------------------------------------------------- the department-side driver


def audit_generator(state, scenario, task, train, heldout, samples: int, seed: int,
                    figure: Path | None = None) -> dict[str, float]:
    """Synthesise `samples` pairs for `task` with the state's generator (its generator prompt tokens from the
    pool, as replay does) and measure memorisation against the department's own train / held-out cases.

    With a generator bank, the audited generator is the task's own (trained on exactly this department's data for
    this task) with its frozen tokens. state: LearnerState; train, heldout: TaskData. Returns aggregates only; {}
    when there is no generator or the task is not in the pool."""
    from ..diffusion import decode_masks, encode_masks, sample_pairs
    from ..prompts import embed_pool
    from ..text import build_text_encoder

    from ..learning.replay import task_generator

    if state.schedule is None or task.name not in state.pool:
        return {}
    if state.denoiser is None and (state.bank is None or task.name not in state.bank):
        return {}
    K = scenario.model.max_classes
    dc = scenario.diffusion
    encoder = build_text_encoder(scenario.text_encoder)
    idx = state.pool.index(task.name)
    emb = embed_pool(state.pool, encoder)
    state.prompts.eval()
    with torch.no_grad():
        tokens = state.prompts(emb)
    state.prompts.train()
    denoiser, gen_tokens = task_generator(state, task.name, tokens.gen[idx])
    ctx = gen_tokens.expand(samples, -1, -1).contiguous()
    pc = scenario.privacy  # its own sampler: the calibration found DDIM-10 blind to an over-fitted generator
    x, code = sample_pairs(denoiser, ctx, scenario.image_size, K, state.schedule, sampler=pc.sampler,
                           steps=min(pc.sampling_steps, state.schedule.num_timesteps), seed=seed,
                           chunk_size=dc.chunk_size)
    kb = torch.full((samples,), len(task.classes), dtype=torch.int64)
    y = decode_masks(code.cpu(), kb)
    feats = segmentor_features(state.segmentor, tokens.seg[idx].detach())
    res = memorisation_metrics(x.float().cpu(), encode_masks(y, K).float(), train.images, encode_masks(train.masks, K).float(),
                               heldout.images, encode_masks(heldout.masks, K).float(), features=feats)
    if figure is not None:
        try:
            distance_histogram(res, figure, f"{task.name}: nearest-neighbour distances ({samples} synthetic pairs)")
        except Exception as exc:  # a figure must never fail the audit
            print(f"[{task.name}] memorisation histogram not written: {exc}")
    return res.metrics
