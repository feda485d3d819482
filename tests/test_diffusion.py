"""Mask code, schedule, NJD/BJD objectives and samplers."""

from __future__ import annotations

import pytest
import torch
from diffusers import DDPMScheduler
from torch import nn

from c2gr_fed.diffusion.objectives import IMG_GIVEN_MASK, JOINT, MASK_GIVEN_IMG, min_snr_weight
from c2gr_fed.diffusion import (
    NoiseSchedule,
    bjd_terms,
    decode_masks,
    distillation_terms,
    encode_masks,
    generator_distillation_loss,
    joint_diffusion_loss,
    sample_masks_given_images,
    sample_pairs,
)
from c2gr_fed.models import JointDenoiser
from c2gr_fed.scenario.schema import DiffusionConfig, UNetConfig

torch.set_num_threads(2)
K_MAX = 5


# ------------------------------------------------------------------------------------------------ mask code


@pytest.mark.parametrize("k", range(1, K_MAX + 1))
def test_encode_decode_round_trip(k: int) -> None:
    g = torch.Generator().manual_seed(k)
    masks = torch.randint(0, k + 1, (3, 9, 7), generator=g)
    code = encode_masks(masks, K_MAX)
    assert code.shape == (3, K_MAX, 9, 7) and code.dtype == torch.float32
    assert set(code.unique().tolist()) <= {-1.0, 1.0}
    assert torch.equal(decode_masks(code, k), masks)
    assert torch.equal(decode_masks(code, torch.full((3,), k)), masks)
    # decode of a noisy code (|noise| < 1 keeps every sign) gives the same labels
    noisy = code + (torch.rand(code.shape, generator=g) * 1.8 - 0.9)
    assert torch.equal(decode_masks(noisy, k), masks)


def test_code_is_fixed_per_label() -> None:
    only_two = torch.full((1, 2, 2), 2)
    mixed = torch.tensor([[[2, 0], [1, 3]]])
    a, b = encode_masks(only_two, 3), encode_masks(mixed, 3)
    assert torch.equal(a[0, :, 0, 0], torch.tensor([-1.0, 1.0, -1.0]))
    assert torch.equal(a[0, :, 0, 0], b[0, :, 0, 0])  # never per-sample min-max
    assert torch.equal(b[0, :, 0, 1], torch.tensor([-1.0, -1.0, -1.0]))  # background


def test_decode_uses_each_samples_class_count() -> None:
    code = -torch.ones(2, 3, 1, 1)
    code[:, 2] = 1.0  # channel of class 3 positive
    code[:, 0] = 0.5  # class 1 weaker
    out = decode_masks(code, torch.tensor([3, 1]))
    assert out[:, 0, 0].tolist() == [3, 1]  # a 1-class task never sees channel 3
    code[1, 0] = -0.2
    assert decode_masks(code, torch.tensor([3, 2]))[1, 0, 0] == 0


def test_mask_code_errors() -> None:
    with pytest.raises(ValueError, match="0..2"):
        encode_masks(torch.tensor([[[3]]]), 2)
    with pytest.raises(ValueError, match="num_classes"):
        decode_masks(torch.zeros(1, 2, 1, 1), 3)


# ------------------------------------------------------------------------------------------------ schedule


@pytest.mark.parametrize("beta_schedule", ["linear", "scaled_linear", "squaredcos_cap_v2"])
def test_schedule_matches_diffusers(beta_schedule: str) -> None:
    s = NoiseSchedule(DiffusionConfig(timesteps=100, beta_schedule=beta_schedule))
    ref = DDPMScheduler(**s.to_diffusers_config())  # the samplers are built from the same config
    x0, noise = torch.randn(4, 2, 3, 3), torch.randn(4, 2, 3, 3)
    t = torch.tensor([0, 5, 50, 99])
    assert torch.allclose(s.add_noise(x0, noise, t), ref.add_noise(x0, noise, t), atol=1e-6)
    assert s.to_diffusers_config()["num_train_timesteps"] == 100
    assert set(dict(s.named_buffers())) == {"betas", "alphas_cumprod"}


@pytest.mark.parametrize("timesteps", [50, 100, 1000])
def test_x_T_is_pure_noise_for_every_T(timesteps: int) -> None:
    """Samplers start from N(0, I): training must reach (almost) no signal at t = T - 1 whatever T is."""
    s = NoiseSchedule(DiffusionConfig(timesteps=timesteps, beta_schedule="linear"))
    assert float(s.alphas_cumprod[-1]) < 1e-3


# ------------------------------------------------------------------------------------------------ objectives


class OracleDenoiser(nn.Module):
    """Knows the clean batch: predicts the exact noise of a noised part and garbage (1e3) for a clean part.

    Records every call. A loss that scores only noised parts is therefore exactly ~0.
    """

    def __init__(self, x0: torch.Tensor, y0: torch.Tensor, schedule: NoiseSchedule) -> None:
        super().__init__()
        self.x0, self.y0, self.schedule = x0, y0, schedule
        self.calls: list[tuple[torch.Tensor, ...]] = []

    def _eps(self, z: torch.Tensor, z0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        reps = z.shape[0] // z0.shape[0]
        z0 = z0.repeat(reps, *([1] * (z0.dim() - 1)))
        a = self.schedule.alphas_cumprod[t].view(-1, 1, 1, 1)
        eps = (z - a.sqrt() * z0) / (1 - a).sqrt()
        clean = (z == z0).flatten(1).all(1)[:, None, None, None]
        return torch.where(clean, torch.full_like(eps, 1e3), eps)

    def forward(self, x, y, t_x, t_y, context):
        self.calls.append((x, y, t_x, t_y, context))
        return self._eps(x, self.x0, t_x), self._eps(y, self.y0, t_y)


class AffineDenoiser(nn.Module):
    """A deterministic per-sample function of all inputs (so the loss depends on t, noise and the term)."""

    def forward(self, x, y, t_x, t_y, context):
        sx = (t_x.float() / 1000)[:, None, None, None]
        sy = (t_y.float() / 1000)[:, None, None, None]
        c = context.mean(dim=(1, 2))[:, None, None, None]
        return 0.7 * x + 0.3 * y.mean(1, keepdim=True) + sx + c, 0.5 * y - 0.2 * x.mean(1, keepdim=True) + sy


def _batch(b: int = 4, k: int = 3, s: int = 8, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.rand(b, 3, s, s, generator=g) * 2 - 1
    y0 = encode_masks(torch.randint(0, k + 1, (b, s, s), generator=g), k)
    ctx = torch.randn(b, 2, 4, generator=g)
    return x0, y0, ctx


def test_oracle_scores_zero_so_only_noised_parts_count() -> None:
    sched = NoiseSchedule(DiffusionConfig(timesteps=1000))
    x0, y0, ctx = _batch()
    den = OracleDenoiser(x0, y0, sched)
    out = joint_diffusion_loss(den, x0, y0, ctx, sched, "bjd", "full", torch.Generator().manual_seed(1))
    for name in ("loss", "joint", "img_given_mask", "mask_given_img"):
        assert out[name].item() < 1e-6, name  # the 1e3 garbage of clean parts never enters a term
    out = joint_diffusion_loss(den, x0, y0, ctx, sched, "bjd", "stochastic", torch.Generator().manual_seed(1))
    assert out["loss"].item() < 1e-6


def test_bjd_is_njd_plus_conditional_terms_exactly() -> None:
    sched = NoiseSchedule(DiffusionConfig(timesteps=1000))
    x0, y0, ctx = _batch()
    b = x0.shape[0]
    den = OracleDenoiser(x0, y0, sched)
    affine = AffineDenoiser()

    def recording_affine(x, y, t_x, t_y, c):
        den.calls.append((x, y, t_x, t_y, c))
        return affine(x, y, t_x, t_y, c)

    den.forward = recording_affine  # type: ignore[method-assign]
    njd = joint_diffusion_loss(den, x0, y0, ctx, sched, "njd", generator=torch.Generator().manual_seed(7))
    den.calls.clear()
    bjd = joint_diffusion_loss(den, x0, y0, ctx, sched, "bjd", "full", torch.Generator().manual_seed(7))
    assert torch.equal(njd["joint"], bjd["joint"]) and njd["loss"] == njd["joint"]
    assert njd["img_given_mask"] == 0 and njd["mask_given_img"] == 0
    assert torch.equal(bjd["loss"], bjd["joint"] + bjd["img_given_mask"] + bjd["mask_given_img"])

    # replay the documented draw order and recompute each conditional term by hand
    g = torch.Generator().manual_seed(7)
    t1 = torch.randint(0, 1000, (b,), generator=g)
    ex1, ey1 = torch.randn(x0.shape, generator=g), torch.randn(y0.shape, generator=g)
    t2, ex2 = torch.randint(0, 1000, (b,), generator=g), torch.randn(x0.shape, generator=g)
    t3, ey3 = torch.randint(0, 1000, (b,), generator=g), torch.randn(y0.shape, generator=g)
    zero = torch.zeros(b, dtype=torch.long)
    x_t2 = sched.add_noise(x0, ex2, t2)
    y_t3 = sched.add_noise(y0, ey3, t3)
    img = (affine(x_t2, y0, t2, zero, ctx)[0] - ex2).square().mean()
    mask = (affine(x0, y_t3, zero, t3, ctx)[1] - ey3).square().mean()
    ex_j, ey_j = affine(sched.add_noise(x0, ex1, t1), sched.add_noise(y0, ey1, t1), t1, t1, ctx)
    joint = torch.cat([(ex_j - ex1).flatten(1), (ey_j - ey1).flatten(1)], 1).square().mean()
    assert torch.allclose(bjd["img_given_mask"], img, rtol=1e-5)
    assert torch.allclose(bjd["mask_given_img"], mask, rtol=1e-5)
    assert torch.allclose(bjd["joint"], joint, rtol=1e-5)

    # the conditional parts receive the clean side with timestep 0
    (x, y, t_x, t_y, _), = den.calls
    assert torch.equal(y[b : 2 * b], y0) and torch.equal(t_y[b : 2 * b], zero) and torch.equal(t_x[b : 2 * b], t2)
    assert torch.equal(x[2 * b :], x0) and torch.equal(t_x[2 * b :], zero) and torch.equal(t_y[2 * b :], t3)
    assert torch.equal(t_x[:b], t1) and torch.equal(t_y[:b], t1)


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction", "sample"])
def test_min_snr_weight_is_the_truncated_snr_x0_loss(prediction_type: str) -> None:
    sched = NoiseSchedule(DiffusionConfig(timesteps=1000), prediction_type=prediction_type)
    t = torch.tensor([0, 10, 100, 500, 999])
    a = sched.alphas_cumprod[t]
    snr = a / (1 - a)
    w = min_snr_weight(sched, t, 5.0)
    # each prediction type's squared error is a fixed multiple of the x0 error: eps SNR, v SNR + 1, x0 1
    per_x0 = {"epsilon": snr, "v_prediction": snr + 1, "sample": torch.ones_like(snr)}[prediction_type]
    assert torch.allclose(w * per_x0, snr.clamp(max=5.0), rtol=1e-5)
    assert w[0] < w[2] or prediction_type == "sample"  # nearly clean timesteps weigh less than mid-range ones
    with pytest.raises(ValueError, match="snr_gamma"):
        min_snr_weight(sched, t, 0.0)


def test_loss_weightings_scale_the_terms_they_name() -> None:
    sched = NoiseSchedule(DiffusionConfig(timesteps=1000), prediction_type="v_prediction")
    x0, y0, ctx = _batch()
    den = AffineDenoiser()
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    plain = joint_diffusion_loss(den, x0, y0, ctx, sched, "bjd", "full", g())
    heavy = joint_diffusion_loss(den, x0, y0, ctx, sched, "bjd", "full", g(), mask_weight=3.0)
    assert torch.allclose(heavy["img_given_mask"], plain["img_given_mask"])  # no mask channel in that term
    assert torch.allclose(heavy["mask_given_img"], plain["mask_given_img"])  # mask-only: a weighted mean is the mean
    assert not torch.allclose(heavy["joint"], plain["joint"])  # image and mask channels: the mask counts 3x

    # per sample, with fixed timesteps and noises: the min-SNR term is the plain term times the weight of its t
    b = x0.shape[0]
    t = torch.tensor([5, 200, 600, 990])[:b]
    e_x, e_y = torch.randn(x0.shape, generator=g()), torch.randn(y0.shape, generator=g())
    for which in (JOINT, IMG_GIVEN_MASK, MASK_GIVEN_IMG):
        w = torch.full((b,), which)
        base = bjd_terms(den, x0, y0, ctx, sched, t, e_x, e_y, w)
        snr = bjd_terms(den, x0, y0, ctx, sched, t, e_x, e_y, w, snr_gamma=5.0)
        assert torch.allclose(snr, base * min_snr_weight(sched, t, 5.0), rtol=1e-5)
    # the joint term by hand with the mask channels counted 3x
    out_x, out_y = den(sched.add_noise(x0, e_x, t), sched.add_noise(y0, e_y, t), t, t, ctx)
    sx = (out_x - sched.target(x0, e_x, t)).square().flatten(1).sum(1)
    sy = (out_y - sched.target(y0, e_y, t)).square().flatten(1).sum(1)
    by_hand = (sx + 3 * sy) / (x0[0].numel() + 3 * y0[0].numel())
    got = bjd_terms(den, x0, y0, ctx, sched, t, e_x, e_y, torch.full((b,), JOINT), mask_weight=3.0)
    assert torch.allclose(got, by_hand, rtol=1e-5)


def test_stochastic_estimator_enumeration_and_expectation() -> None:
    sched = NoiseSchedule(DiffusionConfig(timesteps=1000))
    affine = AffineDenoiser()
    x0, y0, ctx = _batch(b=6)
    # exact: the stochastic loss is 3 x the mean of the drawn per-sample terms (replayed draw order)
    out = joint_diffusion_loss(affine, x0, y0, ctx, sched, "bjd", "stochastic", torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    t = torch.randint(0, 1000, (6,), generator=g)
    ex, ey = torch.randn(x0.shape, generator=g), torch.randn(y0.shape, generator=g)
    which = torch.randint(0, 3, (6,), generator=g)
    per = bjd_terms(affine, x0, y0, ctx, sched, t, ex, ey, which)
    assert torch.allclose(out["loss"], 3 * per.mean())
    # enumeration: averaging 3 x term over the three equally likely choices gives the sum of the three terms
    per_k = [bjd_terms(affine, x0, y0, ctx, sched, t, ex, ey, torch.full((6,), k)) for k in range(3)]
    assert torch.allclose(sum(3 * p.mean() for p in per_k) / 3, sum(p.mean() for p in per_k))
    # statistically: same expectation as the full estimator
    x0, y0, ctx = _batch(b=4000, s=4, seed=1)
    full = joint_diffusion_loss(affine, x0, y0, ctx, sched, "bjd", "full", torch.Generator().manual_seed(0))
    stoch = joint_diffusion_loss(affine, x0, y0, ctx, sched, "bjd", "stochastic", torch.Generator().manual_seed(1))
    assert abs(stoch["loss"].item() - full["loss"].item()) < 0.03 * full["loss"].item()


def test_loss_errors_and_real_denoiser_backward() -> None:
    sched = NoiseSchedule(DiffusionConfig(timesteps=100))
    x0, y0, ctx = _batch(b=2, s=16)
    den = JointDenoiser(UNetConfig(channels=[8, 16], attention_levels=[1], heads=2, groups=4), 3, 4)
    with pytest.raises(ValueError, match="objective"):
        joint_diffusion_loss(den, x0, y0, ctx, sched, "xjd")
    with pytest.raises(ValueError, match="estimator"):
        joint_diffusion_loss(den, x0, y0, ctx, sched, "bjd", "half")
    for est in ("full", "stochastic"):
        out = joint_diffusion_loss(den, x0, y0, ctx, sched, "bjd", est)
        out["loss"].backward()
        assert torch.isfinite(out["loss"])
    assert den.unet.out_conv.weight.grad.abs().sum() > 0


def test_generator_distillation_matches_the_teacher_on_each_terms_inputs() -> None:
    """Distillation scores student - teacher on the inputs BJD's term builds (clean side fed with timestep 0),
    over the channels that term scores; it is 0 for a student equal to its teacher; only the student learns."""
    sched = NoiseSchedule(DiffusionConfig(timesteps=1000))
    x0, y0, ctx = _batch(b=6)
    affine = AffineDenoiser()

    class Shifted(nn.Module):  # the affine denoiser + a learnable offset on its image output only
        def __init__(self) -> None:
            super().__init__()
            self.shift = nn.Parameter(torch.tensor(0.5))

        def forward(self, x, y, t_x, t_y, c):
            ox, oy = affine(x, y, t_x, t_y, c)
            return ox + self.shift, oy

    student = Shifted()
    g = torch.Generator().manual_seed(4)
    t = torch.randint(0, 1000, (6,), generator=g)
    ex, ey = torch.randn(x0.shape, generator=g), torch.randn(y0.shape, generator=g)
    which = torch.tensor([0, 1, 2, 0, 1, 2])
    assert torch.equal(distillation_terms(affine, affine, x0, y0, ctx, ctx, sched, t, ex, ey, which), torch.zeros(6))
    per = distillation_terms(student, affine, x0, y0, ctx, ctx, sched, t, ex, ey, which)
    n_x, n_y = x0[0].numel(), y0[0].numel()
    expected = torch.tensor([n_x / (n_x + n_y), 1.0, 0.0] * 2) * 0.25  # shift^2 on the image channels scored
    assert torch.allclose(per, expected, atol=1e-6)
    # the teacher reads its own prompt tokens: a different teacher context changes the target
    assert not torch.equal(distillation_terms(affine, affine, x0, y0, ctx, ctx + 1, sched, t, ex, ey, which),
                           torch.zeros(6))
    teacher = Shifted()
    loss = generator_distillation_loss(student, teacher, x0, y0, ctx, ctx, sched, "bjd",
                                       torch.Generator().manual_seed(0))
    loss.backward()
    assert loss.item() == 0.0 and student.shift.grad is not None and teacher.shift.grad is None
    with torch.no_grad():
        student.shift += 1.0
    njd = generator_distillation_loss(student, teacher, x0, y0, ctx, ctx, sched, "njd",
                                      torch.Generator().manual_seed(0))
    assert njd.item() == pytest.approx(n_x / (n_x + n_y), rel=1e-5)  # the joint term only, on every sample
    with pytest.raises(ValueError, match="objective"):
        generator_distillation_loss(student, teacher, x0, y0, ctx, ctx, sched, "xjd")


# ------------------------------------------------------------------------------------------------ samplers


def _tiny_denoiser() -> JointDenoiser:
    torch.manual_seed(0)
    den = JointDenoiser(UNetConfig(channels=[8, 16], attention_levels=[1], heads=2, groups=4), 2, 4)
    nn.init.normal_(den.unet.out_conv.weight, std=0.05)
    return den


@pytest.mark.parametrize("sampler", ["ddpm", "ddim", "dpmsolver++"])
def test_sampler_repeatable_and_chunk_invariant(sampler: str) -> None:
    den = _tiny_denoiser()
    sched = NoiseSchedule(DiffusionConfig(timesteps=1000))
    ctx = torch.randn(8, 2, 4)
    seen: list[tuple[int, int]] = []
    kw = dict(image_size=16, max_classes=2, schedule=sched, sampler=sampler, steps=4)
    a_img, a_code = sample_pairs(den, ctx, seed=5, chunk_size=3, progress=lambda d, n: seen.append((d, n)), **kw)
    assert seen == [(3, 8), (6, 8), (8, 8)]
    assert den.training  # train mode restored
    assert a_img.shape == (8, 3, 16, 16) and a_code.shape == (8, 2, 16, 16)
    assert a_img.abs().max() <= 1.0 and torch.isfinite(a_code).all()
    b_img, b_code = sample_pairs(den, ctx, seed=5, chunk_size=3, **kw)
    assert torch.equal(a_img, b_img) and torch.equal(a_code, b_code)
    c_img, _ = sample_pairs(den, ctx, seed=6, chunk_size=3, **kw)
    assert not torch.allclose(a_img, c_img)
    # per-sample seeding: chunking changes only batched-convolution round-off
    d_img, d_code = sample_pairs(den, ctx, seed=5, chunk_size=7, **kw)
    assert torch.allclose(a_img, d_img, atol=1e-4, rtol=1e-4)
    assert torch.allclose(a_code, d_code, atol=1e-4, rtol=1e-4)
    # and the first pairs do not depend on how many are requested
    e_img, _ = sample_pairs(den, ctx[:3], seed=5, chunk_size=3, **kw)
    assert torch.equal(e_img, a_img[:3])


def test_sampler_rejects_unknown_name() -> None:
    with pytest.raises(ValueError, match="sampler"):
        sample_pairs(_tiny_denoiser(), torch.randn(1, 2, 4), 16, 2, NoiseSchedule(), sampler="euler")


class _OracleDenoiser(nn.Module):
    """The exact noise predictor for a data set of a few points: eps*(z_t, t) = (z_t - sqrt(a_t) E[z_0 | z_t]) /
    sqrt(1 - a_t), with E[z_0 | z_t] the posterior mean over the points. Any correct sampler must return the
    points themselves (up to numerical error), so this tests the schedule/sampler wiring independently of training.
    """

    def __init__(self, points: torch.Tensor, schedule: NoiseSchedule) -> None:
        super().__init__()
        self.points, self.schedule = points, schedule  # points (P, 3 + K, S, S)

    def forward(self, x, y, t_img, t_mask, ctx):
        assert torch.equal(t_img, t_mask)  # C2GR samples image and mask on one timestep
        z = torch.cat([x, y], 1)
        a = self.schedule.alphas_cumprod[t_img].view(-1, 1)  # (B, 1)
        d = ((z[:, None] - a.sqrt()[:, :, None, None, None] * self.points[None]) ** 2).sum(dim=(2, 3, 4))  # (B, P)
        w = torch.softmax(-d / (2 * (1 - a)), dim=1)
        z0 = torch.einsum("bp,pchw->bchw", w, self.points)
        eps = (z - a.sqrt()[:, :, None, None] * z0) / (1 - a).sqrt()[:, :, None, None]
        out = self.schedule.target(z0, eps, t_img)  # eps, v or x0, whatever the schedule trains
        return out[:, :3], out[:, 3:]


@pytest.mark.parametrize("timesteps", [100, 1000])
@pytest.mark.parametrize("sampler,steps", [("ddpm", 100), ("ddpm", 25), ("ddim", 10), ("dpmsolver++", 10)])
def test_every_sampler_recovers_the_data_with_the_exact_denoiser(timesteps: int, sampler: str, steps: int) -> None:
    g = torch.Generator().manual_seed(0)
    points = torch.rand(4, 3 + 2, 8, 8, generator=g) * 1.8 - 0.9  # inside [-1, 1]: DDIM/DDPM clip x0 there
    sched = NoiseSchedule(DiffusionConfig(timesteps=timesteps))
    img, code = sample_pairs(_OracleDenoiser(points, sched), torch.zeros(12, 1, 4), 8, 2, sched, sampler=sampler,
                             steps=steps, seed=3)
    z = torch.cat([img, code], 1)
    nearest = ((z[:, None] - points[None]) ** 2).mean(dim=(2, 3, 4)).sqrt().min(dim=1)  # (12,)
    assert nearest.values.max() < 1e-2, f"{sampler}-{steps} at T={timesteps} lands {nearest.values.max():.3f} off"
    assert len(set(nearest.indices.tolist())) >= 2  # it samples the data set, not one point


@pytest.mark.parametrize("prediction_type", ["v_prediction", "sample"])
@pytest.mark.parametrize("sampler,steps", [("ddpm", 25), ("ddim", 10), ("dpmsolver++", 10)])
def test_samplers_read_v_and_x0_predictions(prediction_type: str, sampler: str, steps: int) -> None:
    g = torch.Generator().manual_seed(0)
    points = torch.rand(4, 3 + 2, 8, 8, generator=g) * 1.8 - 0.9
    sched = NoiseSchedule(DiffusionConfig(timesteps=1000, prediction_type=prediction_type))
    img, code = sample_pairs(_OracleDenoiser(points, sched), torch.zeros(12, 1, 4), 8, 2, sched, sampler=sampler,
                             steps=steps, seed=3)
    nearest = ((torch.cat([img, code], 1)[:, None] - points[None]) ** 2).mean(dim=(2, 3, 4)).sqrt().min(dim=1)
    assert nearest.values.max() < 1e-2, f"{prediction_type} {sampler}-{steps} lands {nearest.values.max():.3f} off"


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction", "sample"])
def test_target_determines_x0_and_noise(prediction_type: str) -> None:
    """From x_t and the target, x0 and the noise are recoverable: the target carries exactly the missing part."""
    sched = NoiseSchedule(DiffusionConfig(prediction_type=prediction_type))
    g = torch.Generator().manual_seed(0)
    x0, e = torch.rand(5, 3, 4, 4, generator=g) * 2 - 1, torch.randn(5, 3, 4, 4, generator=g)
    t = torch.tensor([1, 100, 500, 900, 999])
    a = sched.alphas_cumprod[t].view(-1, 1, 1, 1)
    xt, target = sched.add_noise(x0, e, t), sched.target(x0, e, t)
    if prediction_type == "epsilon":
        x0_hat = (xt - (1 - a).sqrt() * target) / a.sqrt()
    elif prediction_type == "sample":
        x0_hat = target
    else:
        x0_hat = a.sqrt() * xt - (1 - a).sqrt() * target
    assert torch.allclose(x0_hat, x0, atol=1e-3)
    with pytest.raises(ValueError):
        DiffusionConfig(prediction_type="score")


class _MaskGivenImageOracle(nn.Module):
    """The exact mask-noise predictor of p(mask | image) for a few points: the clean image (timestep 0) picks its
    point, the noisy mask weighs the rest as in _OracleDenoiser. Re-sampling masks for the points' own images must
    return the points' own masks."""

    def __init__(self, points: torch.Tensor, schedule: NoiseSchedule) -> None:
        super().__init__()
        self.points, self.schedule = points, schedule  # points (P, 3 + K, S, S)

    def forward(self, x, y, t_img, t_mask, ctx):
        assert (t_img == 0).all() and (t_mask > 0).any()  # the image is clean, only the mask is denoised
        a = self.schedule.alphas_cumprod[t_mask].view(-1, 1)  # (B, 1)
        pts_x, pts_y = self.points[:, :3], self.points[:, 3:]
        d_x = ((x[:, None] - pts_x[None]) ** 2).sum(dim=(2, 3, 4))  # (B, P)
        d_y = ((y[:, None] - a.sqrt()[:, :, None, None, None] * pts_y[None]) ** 2).sum(dim=(2, 3, 4))
        w = torch.softmax(-d_y / (2 * (1 - a)) - 1e6 * d_x, dim=1)
        y0 = torch.einsum("bp,pchw->bchw", w, pts_y)
        eps_y = (y - a.sqrt()[:, :, None, None] * y0) / (1 - a).sqrt()[:, :, None, None]
        return torch.zeros_like(x), eps_y


@pytest.mark.parametrize("sampler,steps", [("ddpm", 50), ("ddim", 10), ("dpmsolver++", 10)])
def test_mask_given_image_sampler_recovers_each_images_own_mask(sampler: str, steps: int) -> None:
    g = torch.Generator().manual_seed(1)
    points = torch.rand(4, 3 + 2, 8, 8, generator=g) * 1.8 - 0.9
    sched = NoiseSchedule(DiffusionConfig(timesteps=1000))
    order = torch.tensor([2, 0, 3, 1, 2, 1])
    den = _MaskGivenImageOracle(points, sched)
    code = sample_masks_given_images(den, points[order, :3], torch.zeros(6, 1, 4), 2, sched, sampler=sampler,
                                     steps=steps, seed=4, chunk_size=4)
    assert code.shape == (6, 2, 8, 8)
    err = (code - points[order, 3:]).abs().max()
    assert err < 1e-2, f"{sampler}-{steps}: re-sampled masks land {err:.3f} off their images' masks"
    again = sample_masks_given_images(den, points[order, :3], torch.zeros(6, 1, 4), 2, sched, sampler=sampler,
                                      steps=steps, seed=4, chunk_size=3)
    assert torch.allclose(code, again, atol=1e-5)  # per-sample seeding: chunking does not matter
