"""Joint sampling of (image, mask code) pairs with diffusers schedulers (C2GR: s = u at every step).

Seeding is per sample, not per chunk: pair n of a call with `seed` draws its initial noise (and, for DDPM, its
per-step noise) from its own CPU torch.Generator seeded from (seed, n). The result of a pair therefore does not
depend on chunk_size or on how many pairs are requested (up to float round-off of batched convolutions), and
is the same on CPU and CUDA up to the network's arithmetic.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np
import torch
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler
from torch import Tensor, nn

from ..scenario.schema import SAMPLERS
from .schedule import NoiseSchedule

_SCHEDULERS: dict[str, Callable[[dict], object]] = {
    "ddpm": lambda base: DDPMScheduler(**base, clip_sample=True, clip_sample_range=1.0),
    "ddim": lambda base: DDIMScheduler(**base, clip_sample=True, clip_sample_range=1.0),
    "dpmsolver++": lambda base: DPMSolverMultistepScheduler(**base, algorithm_type="dpmsolver++", solver_order=2),
}
"""The diffusers scheduler of every sampler the scenario schema names (SAMPLERS): one per name, checked here."""
if tuple(_SCHEDULERS) != SAMPLERS:  # pragma: no cover - a sampler named without a scheduler, or the reverse
    raise ImportError(f"samplers implemented {tuple(_SCHEDULERS)} differ from the scenario schema's {SAMPLERS}")


def make_scheduler(schedule: NoiseSchedule, sampler: str, steps: int):
    """A fresh diffusers scheduler for `sampler` with `steps` reverse steps ('trailing' spacing: starts at T-1)."""
    base = dict(schedule.to_diffusers_config(), timestep_spacing="trailing")
    if sampler not in _SCHEDULERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    sched = _SCHEDULERS[sampler](base)
    if not 1 <= steps <= schedule.num_timesteps:
        raise ValueError(f"steps must lie in 1..{schedule.num_timesteps}, got {steps}")
    sched.set_timesteps(steps)
    return sched


def sample_generator(seed: int, index: int) -> torch.Generator:
    """The CPU generator of pair `index` for a call with `seed` (independent streams via numpy SeedSequence)."""
    state = int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1, dtype=np.uint64)[0])
    return torch.Generator(device="cpu").manual_seed(state)


def _check(sampler: str, chunk_size: int) -> None:
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")


@contextmanager
def _sampling_mode(denoiser: nn.Module) -> Iterator[None]:
    """eval mode and no_grad for the duration; the previous train/eval mode is restored afterwards."""
    was_training = denoiser.training
    denoiser.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        denoiser.train(was_training)


def _reverse(
    predict: Callable[[Tensor, Tensor], Tensor],
    z: Tensor,
    gens: list[torch.Generator],
    schedule: NoiseSchedule,
    sampler: str,
    steps: int,
) -> Tensor:
    """Run the reverse process from z (b, C, S, S): predict(z_t, t (b,) long) returns the denoiser's output for
    z_t (noise, v or x0 estimate: the scheduler interprets it per the schedule's prediction_type)."""
    sched = make_scheduler(schedule, sampler, steps)
    for t in sched.timesteps:
        tt = torch.full((z.shape[0],), int(t), dtype=torch.long, device=z.device)
        z = sched.step(predict(z, tt).to(z.dtype), t, z, generator=gens).prev_sample
    return z


def _initial_noise(gens: list[torch.Generator], channels: int, size: int, device: torch.device) -> Tensor:
    return torch.cat([torch.randn((1, channels, size, size), generator=g) for g in gens]).to(device)


def sample_pairs(
    denoiser: nn.Module,
    context: Tensor,
    image_size: int,
    max_classes: int,
    schedule: NoiseSchedule,
    sampler: str = "ddim",
    steps: int = 25,
    seed: int = 0,
    chunk_size: int = 64,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Tensor, Tensor]:
    """Synthesise N pairs, one per prompt in context (N, L, D).

    Returns images (N, 3, S, S) in [-1, 1] and the raw mask code (N, K_max, S, S) (decode with decode_masks),
    both float32 on context's device. Runs under no_grad in eval mode and restores the previous mode.
    """
    _check(sampler, chunk_size)
    n = context.shape[0]
    device = context.device
    images = torch.empty((n, 3, image_size, image_size), device=device)
    codes = torch.empty((n, max_classes, image_size, image_size), device=device)
    with _sampling_mode(denoiser):
        for start in range(0, n, chunk_size):
            stop = min(n, start + chunk_size)
            gens = [sample_generator(seed, i) for i in range(start, stop)]
            ctx = context[start:stop]

            def predict(z: Tensor, tt: Tensor) -> Tensor:  # image and mask on one timestep (s = u)
                out_x, out_y = denoiser(z[:, :3], z[:, 3:], tt, tt, ctx)
                return torch.cat([out_x, out_y], dim=1)  # (b, 3 + K_max, S, S)

            z = _reverse(predict, _initial_noise(gens, 3 + max_classes, image_size, device), gens, schedule,
                         sampler, steps)
            images[start:stop] = z[:, :3].clamp(-1.0, 1.0)
            codes[start:stop] = z[:, 3:]
            if progress is not None:
                progress(stop, n)
    return images, codes


def sample_masks_given_images(
    denoiser: nn.Module,
    images: Tensor,
    context: Tensor,
    max_classes: int,
    schedule: NoiseSchedule,
    sampler: str = "ddim",
    steps: int = 25,
    seed: int = 0,
    chunk_size: int = 64,
) -> Tensor:
    """Mask codes (N, K_max, S, S) for given clean images (N, 3, S, S) with BJD's mask-given-image branch (Eq. 3).

    The image is fed clean with timestep 0 at every step and only the mask part is denoised, from pure noise,
    with the mask timestep running down: the reverse process of p(mask | image) that BJD's third term trains.
    A generator trained with NJD never saw a clean image beside a noisy mask, so this is meaningful for BJD
    only. Same per-sample seeding as `sample_pairs` (pair n of `seed` has its own generator).
    """
    _check(sampler, chunk_size)
    n, _, s, _ = images.shape
    device = context.device
    codes = torch.empty((n, max_classes, s, s), device=device)
    with _sampling_mode(denoiser):
        for start in range(0, n, chunk_size):
            stop = min(n, start + chunk_size)
            gens = [sample_generator(seed, i) for i in range(start, stop)]
            x, ctx = images[start:stop].to(device), context[start:stop]
            clean = torch.zeros((stop - start,), dtype=torch.long, device=device)

            def predict(y: Tensor, tt: Tensor) -> Tensor:
                return denoiser(x, y, clean, tt, ctx)[1]

            codes[start:stop] = _reverse(predict, _initial_noise(gens, max_classes, s, device), gens, schedule,
                                         sampler, steps)
    return codes
