"""The diffusers backbone of the denoiser and the segmentor: shapes, two timesteps, gradients, selection."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from c2gr_fed.diffusion import NoiseSchedule, encode_masks, joint_diffusion_loss
from c2gr_fed.models import JointDenoiser, PromptedSegmentor, build_denoiser, build_segmentor, segmentation_loss
from c2gr_fed.models.diffusers_unet import DiffusersJointDenoiser, DiffusersPromptedSegmentor
from c2gr_fed.scenario.schema import UNetConfig

torch.set_num_threads(2)
D = 8
CFGS = [
    UNetConfig(channels=[8, 16], attention_levels=[1], heads=2, groups=4, backbone="diffusers"),
    UNetConfig(channels=[8, 16, 16], attention_levels=[0], layers_per_block=2, heads=2, groups=4, backbone="diffusers"),
]


@pytest.mark.parametrize("cfg", CFGS)
def test_shapes_and_zero_initial_prediction(cfg: UNetConfig) -> None:
    torch.manual_seed(0)
    x, y, ctx = torch.randn(2, 3, 16, 16), torch.randn(2, 2, 16, 16), torch.randn(2, 3, D)
    ex, ey = DiffusersJointDenoiser(cfg, 2, D)(x, y, torch.tensor([0, 5]), torch.tensor([7, 0]), ctx)
    assert ex.shape == (2, 3, 16, 16) and ey.shape == (2, 2, 16, 16)
    assert torch.all(ex == 0) and torch.all(ey == 0)
    assert DiffusersPromptedSegmentor(cfg, 2, D)(x, ctx).shape == (2, 3, 16, 16)


def test_mask_timestep_has_its_own_embedding_and_gets_gradients() -> None:
    torch.manual_seed(0)
    den = DiffusersJointDenoiser(CFGS[0], 2, D)
    torch.nn.init.normal_(den.unet.conv_out.weight, std=0.1)
    x, y = torch.randn(1, 3, 16, 16), torch.randn(1, 2, 16, 16)
    ctx = torch.randn(1, 2, D, requires_grad=True)
    a = den(x, y, torch.tensor([10]), torch.tensor([0]), ctx)[0]
    b = den(x, y, torch.tensor([0]), torch.tensor([10]), ctx)[0]
    assert not torch.allclose(a, b)  # swapping which part is clean changes the prediction
    (a.square().mean() + b.square().mean()).backward()
    assert den.unet.class_embedding.linear_1.weight.grad.abs().sum() > 0
    assert ctx.grad is not None and ctx.grad.abs().sum() > 0


def test_segmentor_uses_the_prompt_and_learns() -> None:
    torch.manual_seed(0)
    seg = DiffusersPromptedSegmentor(CFGS[0], 2, D)
    x = torch.randn(2, 3, 8, 8)
    masks = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()
    ctx = torch.randn(2, 2, D)
    assert not torch.allclose(seg(x, ctx), seg(x, torch.randn(2, 2, D)))
    opt = torch.optim.Adam(seg.parameters(), lr=1e-2)
    losses = []
    for _ in range(4):
        loss = segmentation_loss(seg(x, ctx), masks, torch.tensor([2, 2]))["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]


def test_bjd_loss_is_finite_and_matches_native_at_init() -> None:
    x, y = torch.rand(2, 3, 16, 16) * 2 - 1, torch.randint(0, 3, (2, 16, 16))
    ctx, sched = torch.randn(2, 2, D), NoiseSchedule(timesteps=100)
    losses = []
    for backbone in ("native", "diffusers"):
        den = build_denoiser(CFGS[0].model_copy(update={"backbone": backbone}), 2, D)
        g = torch.Generator().manual_seed(3)
        losses.append(joint_diffusion_loss(den, x, encode_masks(y, 2), ctx, sched, generator=g)["loss"])
    assert all(torch.isfinite(v) for v in losses)
    assert torch.allclose(losses[0], losses[1])  # both predict 0 at init: the same draws give the same loss


def test_backbone_selects_the_classes_and_defaults_to_native() -> None:
    native = UNetConfig(channels=[8, 16], groups=4, heads=2)
    assert native.backbone == "native"
    assert isinstance(build_denoiser(native, 2, D), JointDenoiser)
    assert isinstance(build_segmentor(native, 2, D), PromptedSegmentor)
    assert isinstance(build_denoiser(CFGS[0], 2, D), DiffusersJointDenoiser)
    assert isinstance(build_segmentor(CFGS[0], 2, D), DiffusersPromptedSegmentor)
    with pytest.raises(ValidationError, match="backbone"):
        UNetConfig(channels=[8, 16], groups=4, backbone="monai")


def test_bad_inputs_raise() -> None:
    den = DiffusersJointDenoiser(CFGS[1], 2, D)
    with pytest.raises(ValueError, match="y must be"):
        den(torch.randn(1, 3, 16, 16), torch.randn(1, 3, 16, 16), torch.zeros(1).long(), torch.zeros(1).long(),
            torch.randn(1, 2, D))
    with pytest.raises(ValueError, match="divisible"):
        den(torch.randn(1, 3, 10, 10), torch.randn(1, 2, 10, 10), torch.zeros(1).long(), torch.zeros(1).long(),
            torch.randn(1, 2, D))
    with pytest.raises(ValueError, match="context"):
        DiffusersPromptedSegmentor(CFGS[0], 2, D)(torch.randn(2, 3, 16, 16), torch.randn(1, 2, D))
