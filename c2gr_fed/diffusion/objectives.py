"""NJD and BJD training objectives of the joint denoiser (C2GR Eq. 1-3).

Notation: x0 (B, 3, H, W) clean image, y0 (B, K_max, H, W) clean mask code, t ~ U[0, T), e_x, e_y independent
standard normal noises, x_t / y_t the noised parts. A clean part is fed with timestep 0.

- joint (Eq. 1, NJD):       || (e_x, e_y) - eps(x_t, y_t, t, t) ||^2, mean over all 3 + K_max channels.
- img_given_mask (Eq. 2):   || e_x - eps_x(x_t, y0, t, 0) ||^2, mean over the image channels only.
- mask_given_img (Eq. 3):   || e_y - eps_y(x0, y_t, 0, t) ||^2, mean over the mask channels only.
- BJD = joint + img_given_mask + mask_given_img, each term with its own t and noise draws.

The equations are written for the paper's epsilon prediction. With `prediction_type` v_prediction or sample
(variants beyond the paper) each term scores the same output against v or x0 instead of e (schedule.target).

Two loss weightings beyond the paper, both off by default: `snr_gamma` (min-SNR-gamma, Hang et al. 2023) scales
each sample's term by min(SNR(t), gamma) / w_pred(t), with w_pred = SNR + 1 for v, SNR for epsilon and 1 for x0,
so that every prediction type weighs timesteps as a truncated-SNR x0 loss; `mask_weight` scales the mask channels'
squared error against the image channels' in the joint term and the mask-given-image term.

Every term is evaluated by one per-sample function (`bjd_terms`) that takes a per-sample choice of term, so
the full BJD runs as ONE denoiser call on a 3B batch (same arithmetic as three calls, better throughput; the
networks here have no batch-coupled layers) and the stochastic estimator as one call on a B batch.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .schedule import NoiseSchedule

JOINT, IMG_GIVEN_MASK, MASK_GIVEN_IMG = 0, 1, 2
TERM_NAMES = ("joint", "img_given_mask", "mask_given_img")


def bjd_terms(
    denoiser: nn.Module,
    x0: Tensor,
    y0: Tensor,
    context: Tensor,
    schedule: NoiseSchedule,
    t: Tensor,
    e_x: Tensor,
    e_y: Tensor,
    which: Tensor,
    snr_gamma: float | None = None,
    mask_weight: float = 1.0,
) -> Tensor:
    """Per-sample loss (B,) float32 of the term `which[b]` in {0 joint, 1 img_given_mask, 2 mask_given_img}.

    Each value is the mean squared error over the elements that term scores for that sample (image and mask
    channels for joint, image channels for img_given_mask, mask channels for mask_given_img), the mask channels'
    error weighted by `mask_weight`, the whole scaled by the min-SNR weight of t when `snr_gamma` is set. The
    noise of a part that is fed clean is ignored.
    """
    which, t = which.to(x0.device), t.to(x0.device)
    out_x, out_y = denoiser(*_term_inputs(x0, y0, schedule, t, e_x, e_y, which), context)
    target_x, target_y = schedule.target(x0, e_x, t), schedule.target(y0, e_y, t)
    per = _scored_mse(out_x, out_y, target_x, target_y, which, mask_weight)
    return per if snr_gamma is None else per * min_snr_weight(schedule, t, snr_gamma)


def min_snr_weight(schedule: NoiseSchedule, t: Tensor, gamma: float) -> Tensor:
    """(B,) float32 min-SNR-gamma weights of timesteps t (B,) for the schedule's prediction type.

    SNR(t) = a_t / (1 - a_t). The weight turns the prediction type's MSE into min(SNR, gamma) x the x0 MSE:
    epsilon: min(SNR, gamma) / SNR; v: min(SNR, gamma) / (SNR + 1); sample: min(SNR, gamma)."""
    if gamma <= 0:
        raise ValueError(f"snr_gamma must be > 0, got {gamma}")
    a = schedule.alphas_cumprod.to(t.device)[t].float()
    snr = a / (1.0 - a).clamp_min(1e-12)
    clipped = snr.clamp(max=gamma)
    if schedule.prediction_type == "epsilon":
        return clipped / snr
    if schedule.prediction_type == "v_prediction":
        return clipped / (snr + 1.0)
    return clipped


def distillation_terms(
    student: nn.Module,
    teacher: nn.Module,
    x0: Tensor,
    y0: Tensor,
    student_context: Tensor,
    teacher_context: Tensor,
    schedule: NoiseSchedule,
    t: Tensor,
    e_x: Tensor,
    e_y: Tensor,
    which: Tensor,
) -> Tensor:
    """Per-sample (B,) float32 mean squared difference between the student's and the (frozen) teacher's outputs
    on the inputs that term `which[b]` builds from x0, y0, t and the noises (as `bjd_terms`, scored over the same
    channels). The teacher runs without gradient; each network reads its own prompt tokens (B, L, D)."""
    which, t = which.to(x0.device), t.to(x0.device)
    inputs = _term_inputs(x0, y0, schedule, t, e_x, e_y, which)
    with torch.no_grad():
        target_x, target_y = teacher(*inputs, teacher_context)
    out_x, out_y = student(*inputs, student_context)
    return _scored_mse(out_x, out_y, target_x, target_y, which)


def _term_inputs(x0: Tensor, y0: Tensor, schedule: NoiseSchedule, t: Tensor, e_x: Tensor, e_y: Tensor,
                 which: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The denoiser inputs (x_in (B, 3, H, W), y_in (B, K_max, H, W), t_x (B,), t_y (B,)) of term `which` per
    sample: the part a conditional term conditions on is fed clean with timestep 0."""
    x_t = schedule.add_noise(x0, e_x, t)
    y_t = schedule.add_noise(y0, e_y, t)
    img_clean = (which == MASK_GIVEN_IMG)[:, None, None, None]
    mask_clean = (which == IMG_GIVEN_MASK)[:, None, None, None]
    zero = torch.zeros_like(t)
    return (torch.where(img_clean, x0, x_t), torch.where(mask_clean, y0, y_t),
            torch.where(which == MASK_GIVEN_IMG, zero, t), torch.where(which == IMG_GIVEN_MASK, zero, t))


def _scored_mse(out_x: Tensor, out_y: Tensor, target_x: Tensor, target_y: Tensor, which: Tensor,
                mask_weight: float = 1.0) -> Tensor:
    """Per-sample (B,) mean squared error over the channels term `which[b]` scores (image, mask or both), the mask
    channels' elements counted `mask_weight` times."""
    sq_x = (out_x.float() - target_x.float()).square().flatten(1).sum(1)  # (B,)
    sq_y = (out_y.float() - target_y.float()).square().flatten(1).sum(1)
    w_x = (which != MASK_GIVEN_IMG).to(torch.float32)
    w_y = (which != IMG_GIVEN_MASK).to(torch.float32) * mask_weight
    n_x, n_y = float(out_x[0].numel()), float(out_y[0].numel())
    return (w_x * sq_x + w_y * sq_y) / (w_x * n_x + w_y * n_y)


def joint_diffusion_loss(
    denoiser: nn.Module,
    x0: Tensor,
    y0: Tensor,
    context: Tensor,
    schedule: NoiseSchedule,
    objective: str = "bjd",
    estimator: str = "full",
    generator: torch.Generator | None = None,
    snr_gamma: float | None = None,
    mask_weight: float = 1.0,
) -> dict[str, Tensor]:
    """The NJD or BJD loss of one batch (weighted per `snr_gamma` and `mask_weight`, see the module docstring). Returns {"loss", "joint", "img_given_mask", "mask_given_img"}.

    objective "njd": loss = joint; the two conditional entries are 0 (not computed). `estimator` is ignored.
    objective "bjd", estimator "full": all three terms on every sample (one denoiser call on a 3B batch).
    objective "bjd", estimator "stochastic": every sample draws one term uniformly; loss = 3 x the batch mean of
    the drawn per-sample terms, an unbiased estimate of the full loss at a third of the cost. The three term
    entries are then the means over the samples that drew each term (0 when none did), for logging only.

    Random draws come from `generator` (global RNG when None) in a fixed order: joint t, e_x, e_y first, so NJD
    and full BJD with the same seed share the joint term's draws exactly; then t, e_x for img_given_mask; then
    t, e_y for mask_given_img. Stochastic: t, e_x, e_y, then the term choice.
    """
    _check_objective(objective)
    if estimator not in ("full", "stochastic"):
        raise ValueError(f"estimator must be 'full' or 'stochastic', got {estimator!r}")
    b = x0.shape[0]
    draw = _Draws(x0, schedule, generator)
    randt, randn_like = draw.t, draw.noise
    zero = x0.new_zeros((), dtype=torch.float32)
    if objective == "njd" or estimator == "full":
        t1, ex1, ey1 = randt(), randn_like(x0), randn_like(y0)
        if objective == "njd":
            which = torch.full((b,), JOINT, dtype=torch.long, device=x0.device)
            joint = bjd_terms(denoiser, x0, y0, context, schedule, t1, ex1, ey1, which, snr_gamma, mask_weight).mean()
            return {"loss": joint, "joint": joint, "img_given_mask": zero, "mask_given_img": zero}
        t2, ex2 = randt(), randn_like(x0)
        t3, ey3 = randt(), randn_like(y0)
        which = torch.arange(3, device=x0.device).repeat_interleave(b)  # (3B,) 0..0 1..1 2..2
        per = bjd_terms(
            denoiser,
            x0.repeat(3, 1, 1, 1),
            y0.repeat(3, 1, 1, 1),
            context.repeat(3, 1, 1),
            schedule,
            torch.cat([t1, t2, t3]),
            torch.cat([ex1, ex2, torch.zeros_like(ex2)]),
            torch.cat([ey1, torch.zeros_like(ey3), ey3]),
            which,
            snr_gamma,
            mask_weight,
        )  # (3B,)
        joint, img, mask = per.view(3, b).mean(dim=1)
        return {"loss": joint + img + mask, "joint": joint, "img_given_mask": img, "mask_given_img": mask}

    t, ex, ey = randt(), randn_like(x0), randn_like(y0)
    which = draw.terms()
    per = bjd_terms(denoiser, x0, y0, context, schedule, t, ex, ey, which, snr_gamma, mask_weight)  # (B,)
    out = {"loss": 3.0 * per.mean()}
    for k, name in enumerate(TERM_NAMES):
        sel = (which == k).to(per.dtype)
        out[name] = (per * sel).sum() / sel.sum().clamp_min(1.0)
    return out


def generator_distillation_loss(
    student: nn.Module,
    teacher: nn.Module,
    x0: Tensor,
    y0: Tensor,
    student_context: Tensor,
    teacher_context: Tensor,
    schedule: NoiseSchedule,
    objective: str = "bjd",
    generator: torch.Generator | None = None,
) -> Tensor:
    """Generative distillation (beyond the paper): the student denoiser matches a frozen teacher's outputs on
    noised pairs x0 (B, 3, H, W), y0 (B, K_max, H, W), with one t and noise draw per sample.

    NJD distils the joint term only; BJD draws one of its three terms per sample, so the conditional branches
    (the mask-given-image one that re-masking uses) are kept too. Draw order: t, e_x, e_y, then the term.
    Returns the batch mean, a scalar float32.
    """
    _check_objective(objective)
    draw = _Draws(x0, schedule, generator)
    t, e_x, e_y = draw.t(), draw.noise(x0), draw.noise(y0)
    if objective == "njd":
        which = torch.full((x0.shape[0],), JOINT, dtype=torch.long, device=x0.device)
    else:
        which = draw.terms()
    return distillation_terms(student, teacher, x0, y0, student_context, teacher_context, schedule, t, e_x, e_y,
                              which).mean()


def _check_objective(objective: str) -> None:
    if objective not in ("bjd", "njd"):
        raise ValueError(f"objective must be 'bjd' or 'njd', got {objective!r}")


class _Draws:
    """The random draws of one batch x0 (B, ...) from `generator` (the global RNG when None), each drawn on the
    generator's device and moved to the batch's: timesteps (B,), noises shaped like a given tensor, BJD terms (B,)."""

    def __init__(self, x0: Tensor, schedule: NoiseSchedule, generator: torch.Generator | None) -> None:
        self.b, self.target = x0.shape[0], x0.device
        self.timesteps, self.generator = schedule.num_timesteps, generator
        self.device = generator.device if generator is not None else x0.device

    def t(self) -> Tensor:
        return torch.randint(0, self.timesteps, (self.b,), generator=self.generator, device=self.device).to(self.target)

    def noise(self, ref: Tensor) -> Tensor:
        return torch.randn(ref.shape, generator=self.generator, device=self.device).to(ref.device, ref.dtype)

    def terms(self) -> Tensor:
        return torch.randint(0, 3, (self.b,), generator=self.generator, device=self.device).to(self.target)
