"""Segmentor and joint denoiser on diffusers' UNet (``backbone: diffusers`` in a `UNetConfig`).

Denoiser: diffusers' ``UNet2DConditionModel``. 
Same interface and layouts as the native `JointDenoiser`: noisy image x (B, 3, H, W) and mask code
y (B, K_max, H, W) are concatenated to (B, 3 + K_max, H, W); the image timestep is diffusers' time embedding, the
mask timestep its second one (``class_embed_type="timestep"``: a sinusoidal + MLP embedding of ``class_labels``
added to the time embedding); the prompt tokens (B, L, D) enter by cross-attention
(``encoder_hidden_states``). Output (out_x (B, 3, H, W), out_y (B, K_max, H, W)).

Mapping of a `UNetConfig`: level i -> one down block and one up block of ``channels[i]`` channels; a level in
``attention_levels`` uses the cross-attention blocks (a transformer block: self-attention, cross-attention to the
prompt and a feed-forward, diffusers' design) and the others plain ResNet blocks; the middle block has attention
when the coarsest level has. ``heads`` and ``groups`` map to the heads and GroupNorm groups of every block.
The denoiser's output convolution is zero-initialised, as in the native one.

Segmentor: the same down, middle and up blocks (diffusers' ``get_down_block`` / ``get_mid_block`` /
``get_up_block``) built without a time embedding, images (B, 3, H, W) + context (B, L, D) -> logits
(B, K_max + 1, H, W), as the native `PromptedSegmentor`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from c2gr_fed.scenario.schema import UNetConfig

from .input_checks import check_joint_inputs, check_model_sizes


def unet2d_condition_kwargs(cfg: UNetConfig, channels_in: int, context_dim: int) -> dict:
    """Constructor arguments of a ``UNet2DConditionModel`` for `cfg` with ``channels_in`` input and output channels."""
    attn = set(cfg.attention_levels)
    n = len(cfg.channels)
    down = tuple("CrossAttnDownBlock2D" if i in attn else "DownBlock2D" for i in range(n))
    up = tuple("CrossAttnUpBlock2D" if i in attn else "UpBlock2D" for i in reversed(range(n)))
    return dict(
        in_channels=channels_in,
        out_channels=channels_in,
        down_block_types=down,
        up_block_types=up,
        mid_block_type="UNetMidBlock2DCrossAttn" if (n - 1) in attn else "UNetMidBlock2D",
        block_out_channels=tuple(cfg.channels),
        layers_per_block=cfg.layers_per_block,
        norm_num_groups=cfg.groups,
        cross_attention_dim=context_dim,
        attention_head_dim=cfg.heads,  # diffusers reads this argument as the number of heads
        class_embed_type="timestep",
    )


class DiffusersJointDenoiser(nn.Module):
    """x (B, 3, H, W), y (B, K_max, H, W), t_x (B,), t_y (B,) int, context (B, L, D) -> (B, 3, H, W), (B, K_max, H, W)."""

    def __init__(self, cfg: UNetConfig, max_classes: int, context_dim: int) -> None:
        super().__init__()
        check_model_sizes(max_classes, context_dim)
        from diffusers import UNet2DConditionModel

        self.cfg = cfg
        self.max_classes = max_classes
        self.context_dim = context_dim
        self.levels = len(cfg.channels)
        self.unet = UNet2DConditionModel(**unet2d_condition_kwargs(cfg, 3 + max_classes, context_dim))
        nn.init.zeros_(self.unet.conv_out.weight)
        nn.init.zeros_(self.unet.conv_out.bias)

    def forward(self, x: Tensor, y: Tensor, t_x: Tensor, t_y: Tensor, context: Tensor) -> tuple[Tensor, Tensor]:
        check_joint_inputs(x, y, self.max_classes)
        if context.dim() != 3 or context.shape[0] != x.shape[0]:
            raise ValueError(f"context must be (B={x.shape[0]}, L, D), got {tuple(context.shape)}")
        f = 2 ** (self.levels - 1)
        if x.shape[-2] % f or x.shape[-1] % f:
            raise ValueError(f"image size {x.shape[-2]}x{x.shape[-1]} is not divisible by 2**(levels-1) = {f}")
        xy = torch.cat([x, y.to(x.dtype)], dim=1)  # (B, 3 + K_max, H, W)
        ctx = context.to(xy.dtype)  # (B, L, D); a no-op unless the model runs in bf16 outside autocast
        out = self.unet(xy, t_x, encoder_hidden_states=ctx, class_labels=t_y, return_dict=False)[0]
        return out[:, :3], out[:, 3:]  # (B, 3, H, W), (B, K_max, H, W)


_EPS = 1e-5


class DiffusersPromptedSegmentor(nn.Module):
    """images (B, 3, H, W) in [-1, 1], context (B, L, D) -> logits (B, K_max + 1, H, W), from diffusers' blocks."""

    def __init__(self, cfg: UNetConfig, max_classes: int, context_dim: int) -> None:
        super().__init__()
        check_model_sizes(max_classes, context_dim)
        from diffusers.models.unets.unet_2d_blocks import get_down_block, get_mid_block, get_up_block

        self.cfg = cfg
        self.max_classes = max_classes
        self.context_dim = context_dim
        kw = unet2d_condition_kwargs(cfg, 3, context_dim)
        ch, n, heads = list(cfg.channels), len(cfg.channels), cfg.heads
        common = dict(temb_channels=None, resnet_eps=_EPS, resnet_act_fn="silu", resnet_groups=cfg.groups,
                      cross_attention_dim=context_dim, num_attention_heads=heads)
        self.levels = n
        self.conv_in = nn.Conv2d(3, ch[0], 3, padding=1)
        self.down_blocks = nn.ModuleList(
            get_down_block(kw["down_block_types"][i], num_layers=cfg.layers_per_block,
                           in_channels=ch[max(i - 1, 0)], out_channels=ch[i], add_downsample=i < n - 1,
                           downsample_padding=1, attention_head_dim=ch[i] // heads, **common)
            for i in range(n)
        )
        self.mid_block = get_mid_block(kw["mid_block_type"], in_channels=ch[-1], attention_head_dim=ch[-1] // heads,
                                       **common)
        rev = list(reversed(ch))
        self.up_blocks = nn.ModuleList(
            get_up_block(kw["up_block_types"][i], num_layers=cfg.layers_per_block + 1,
                         in_channels=rev[min(i + 1, n - 1)], out_channels=rev[i],
                         prev_output_channel=rev[max(i - 1, 0)], add_upsample=i < n - 1, resolution_idx=i,
                         attention_head_dim=rev[i] // heads, **common)
            for i in range(n)
        )
        self.norm_out = nn.GroupNorm(cfg.groups, ch[0], eps=_EPS)
        self.conv_out = nn.Conv2d(ch[0], max_classes + 1, 3, padding=1)

    def forward(self, images: Tensor, context: Tensor) -> Tensor:
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be (B, 3, H, W), got {tuple(images.shape)}")
        if context.dim() != 3 or context.shape[0] != images.shape[0]:
            raise ValueError(f"context must be (B={images.shape[0]}, L, D), got {tuple(context.shape)}")
        f = 2 ** (self.levels - 1)
        if images.shape[-2] % f or images.shape[-1] % f:
            raise ValueError(f"image size {images.shape[-2]}x{images.shape[-1]} is not divisible by "
                             f"2**(levels-1) = {f}")
        h = self.conv_in(images)  # (B, C0, H, W)
        skips: tuple[Tensor, ...] = (h,)
        for block in self.down_blocks:
            h, res = _call(block, h, context)
            skips += res
        h = _call(self.mid_block, h, context, mid=True)  # (B, C_last, H / 2**(n-1), W / 2**(n-1))
        for block in self.up_blocks:
            k = len(block.resnets)
            res, skips = skips[-k:], skips[:-k]
            h = _call(block, h, context, skips=res)
        return self.conv_out(torch.nn.functional.silu(self.norm_out(h)))  # (B, K_max + 1, H, W)


def _call(block: nn.Module, h: Tensor, context: Tensor, mid: bool = False, skips: tuple[Tensor, ...] | None = None):
    """One diffusers block without a time embedding; the context goes to blocks that cross-attend."""
    kw: dict = {"temb": None}
    if getattr(block, "has_cross_attention", False):
        kw["encoder_hidden_states"] = context
    if skips is not None:
        kw["res_hidden_states_tuple"] = skips
    if mid:
        return block(h, **kw)
    return block(hidden_states=h, **kw)
