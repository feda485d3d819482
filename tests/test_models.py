"""Segmentor and denoiser: shapes, restricted logits, loss, prediction rule, gradients to the prompt context."""

from __future__ import annotations

import pytest
import torch

from c2gr_fed.models import (
    MASKED_LOGIT,
    PAPER_DENOISER,
    PAPER_SEGMENTOR,
    JointDenoiser,
    PromptedSegmentor,
    count_parameters,
    predict_masks,
    restrict_logits,
    segmentation_loss,
)
from c2gr_fed.scenario.schema import UNetConfig

torch.set_num_threads(2)

D = 8  # context dim
CONFIGS = [
    UNetConfig(channels=[8, 16], attention_levels=[1], heads=2, groups=4),
    UNetConfig(channels=[8, 16, 16], attention_levels=[0, 2], heads=2, groups=4),
    UNetConfig(channels=[8, 8, 16], attention_levels=[], layers_per_block=2, heads=2, groups=4),
]


@pytest.mark.parametrize("cfg", CONFIGS)
@pytest.mark.parametrize("k_max", [1, 2, 3, 5])
def test_shapes(cfg: UNetConfig, k_max: int) -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 16, 16)
    ctx = torch.randn(2, 3, D)
    seg = PromptedSegmentor(cfg, k_max, D)
    assert seg(x, ctx).shape == (2, k_max + 1, 16, 16)
    den = JointDenoiser(cfg, k_max, D)
    y = torch.randn(2, k_max, 16, 16)
    ex, ey = den(x, y, torch.tensor([0, 5]), torch.tensor([7, 0]), ctx)
    assert ex.shape == (2, 3, 16, 16) and ey.shape == (2, k_max, 16, 16)
    assert torch.all(ex == 0) and torch.all(ey == 0)  # zero-initialised output conv


def test_bad_sizes_raise() -> None:
    seg = PromptedSegmentor(UNetConfig(channels=[8, 8, 8, 8], groups=4), 2, D)
    with pytest.raises(ValueError, match="divisible"):
        seg(torch.randn(1, 3, 12, 12), torch.randn(1, 2, D))
    with pytest.raises(ValueError, match="context"):
        PromptedSegmentor(CONFIGS[0], 2, D)(torch.randn(2, 3, 16, 16), torch.randn(1, 2, D))
    with pytest.raises(ValueError, match="y must be"):
        JointDenoiser(CONFIGS[0], 2, D)(
            torch.randn(1, 3, 16, 16), torch.randn(1, 3, 16, 16), torch.zeros(1).long(), torch.zeros(1).long(),
            torch.randn(1, 2, D),
        )


def test_autocast_bf16_runs() -> None:
    seg = PromptedSegmentor(CONFIGS[1], 2, D)
    den = JointDenoiser(CONFIGS[1], 2, D)
    x, ctx = torch.randn(2, 3, 16, 16), torch.randn(2, 2, D)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = seg(x, ctx)
        ex, ey = den(x, torch.randn(2, 2, 16, 16), torch.tensor([1, 2]), torch.tensor([3, 4]), ctx)
        loss = segmentation_loss(logits, torch.zeros(2, 16, 16, dtype=torch.long), torch.tensor([1, 2]))["loss"]
    assert torch.isfinite(loss) and ex.shape == (2, 3, 16, 16)


def test_timesteps_matter_separately() -> None:
    torch.manual_seed(0)
    den = JointDenoiser(CONFIGS[0], 2, D)
    torch.nn.init.normal_(den.unet.out_conv.weight, std=0.1)
    x, y, ctx = torch.randn(1, 3, 16, 16), torch.randn(1, 2, 16, 16), torch.randn(1, 2, D)
    a = den(x, y, torch.tensor([10]), torch.tensor([0]), ctx)[0]
    b = den(x, y, torch.tensor([0]), torch.tensor([10]), ctx)[0]
    assert not torch.allclose(a, b)  # swapping which part is clean changes the prediction


def test_restrict_logits() -> None:
    logits = torch.zeros(2, 4, 2, 2)
    out = restrict_logits(logits, torch.tensor([1, 3]))
    assert torch.all(out[0, 2:] == MASKED_LOGIT) and torch.all(out[0, :2] == 0)
    assert torch.all(out[1] == 0)
    half = restrict_logits(logits.half(), torch.tensor([1, 3]))
    assert half.dtype == torch.float16 and torch.isfinite(half).all() and half[0, 3, 0, 0] == -1e4


def test_predict_masks_never_exceeds_task_classes() -> None:
    torch.manual_seed(0)
    logits = torch.randn(6, 6, 8, 8) * 10
    logits[:, 5] += 100  # the last channel would win everywhere without restriction
    k = torch.tensor([1, 2, 3, 4, 5, 1])
    pred = predict_masks(logits, k)
    assert pred.dtype == torch.int64 and pred.shape == (6, 8, 8)
    assert torch.all(pred <= k[:, None, None])
    assert torch.all(pred[4] == 5)


def test_segmentation_loss_values() -> None:
    masks = torch.zeros(2, 4, 4, dtype=torch.long)
    masks[0, :2] = 1
    masks[1, :, :2] = 2
    k = torch.tensor([1, 2])
    perfect = (torch.nn.functional.one_hot(masks, 4).permute(0, 3, 1, 2).float() * 40.0) - 20.0
    out = segmentation_loss(perfect, masks, k)
    assert out["dice"] < 1e-3 and out["ce"] < 1e-3
    # sample 1 has class 1 absent and not predicted: smooth term keeps its Dice at ~1 (no penalty)
    bad = perfect.clone()
    bad[0] = 0.0
    out_bad = segmentation_loss(bad, masks, k)
    assert out_bad["dice"] > 0.1 and torch.isfinite(out_bad["loss"])


def test_segmentor_loss_decreases() -> None:
    torch.manual_seed(0)
    seg = PromptedSegmentor(CONFIGS[0], 3, D)
    x = torch.randn(4, 3, 16, 16)
    masks = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()
    k = torch.tensor([2, 2, 3, 2])
    ctx = torch.randn(4, 2, D)
    opt = torch.optim.Adam(seg.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        out = segmentation_loss(seg(x, ctx), masks, k)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(out["loss"].item())
    assert all(map(lambda v: v == v, losses)) and losses[-1] < 0.8 * losses[0]


def test_context_gets_gradients_from_both_models() -> None:
    torch.manual_seed(0)
    seg = PromptedSegmentor(CONFIGS[1], 2, D)
    den = JointDenoiser(CONFIGS[1], 2, D)
    ctx = torch.randn(2, 2, D, requires_grad=True)
    x = torch.randn(2, 3, 16, 16)
    segmentation_loss(seg(x, ctx), torch.zeros(2, 16, 16, dtype=torch.long), torch.tensor([2, 1]))["loss"].backward()
    assert ctx.grad is not None and ctx.grad.abs().sum() > 0
    # the denoiser's output conv starts at zero: after one optimiser step gradients flow to the context
    opt = torch.optim.Adam(den.parameters(), lr=1e-3)
    y, t = torch.randn(2, 2, 16, 16), torch.tensor([3, 9])
    ex, ey = den(x, y, t, t, ctx.detach())
    ((ex - 1).square().mean() + (ey - 1).square().mean()).backward()
    opt.step()
    ctx.grad = None
    ex, ey = den(x, y, t, t, ctx)
    ((ex - 1).square().mean() + (ey - 1).square().mean()).backward()
    assert ctx.grad is not None and ctx.grad.abs().sum() > 0


def test_paper_profiles_and_counts() -> None:
    assert PAPER_SEGMENTOR.channels == [32, 64, 128, 256, 512, 512, 512]
    assert PAPER_SEGMENTOR.attention_levels == [3, 4, 5, 6]
    assert PAPER_DENOISER.channels == [128, 128, 256, 256, 512, 512]
    assert PAPER_DENOISER.attention_levels == [3, 4, 5]
    lin = torch.nn.Linear(3, 2)
    assert count_parameters(lin) == 8
