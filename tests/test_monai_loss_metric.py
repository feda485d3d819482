"""The MONAI-based segmentation loss and Dice metric against hand-computed values on tiny tensors."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from c2gr_fed.metrics import DiceAccumulator, case_dice, dice_per_class, mean_dice
from c2gr_fed.models import restrict_logits, segmentation_loss


def _tiny_batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """logits (2, 3, 1, 2), masks (2, 1, 2), num_classes (2,): sample 0 has one class, sample 1 two."""
    logits = torch.zeros(2, 3, 1, 2)
    logits[0, 1, 0, 1] = math.log(3.0)  # sample 0, pixel 1: probabilities (1/4, 3/4, 0)
    logits[0, 2] = 5.0  # channel 2 does not exist for sample 0: masked whatever its value
    masks = torch.tensor([[[1, 0]], [[2, 2]]])
    return logits, masks, torch.tensor([1, 2])


def test_loss_equals_hand_computed_values() -> None:
    out = segmentation_loss(*_tiny_batch())
    # CE over the 4 pixels: -ln(1/2), -ln(1/4), -ln(1/3), -ln(1/3)
    ce = (3 * math.log(2.0) + 2 * math.log(3.0)) / 4
    # 1 - Dice per valid (sample, class), smooth 1: s0 k1 = 1 - 2/3.25; s1 k1 = 1 - 1/(5/3); s1 k2 = 1 - (7/3)/(11/3)
    dice = (5 / 13 + 2 / 5 + 4 / 11) / 3  # sample 0's class 2 is masked out (counting it would add a 0 term)
    assert abs(float(out["ce"]) - ce) < 1e-5
    assert abs(float(out["dice"]) - dice) < 1e-5
    assert abs(float(out["loss"]) - (ce + dice)) < 1e-5


def _reference_loss(logits: torch.Tensor, masks: torch.Tensor, kb: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """The soft Dice + CE formula written out: the values every committed result was trained with."""
    r = restrict_logits(logits, kb).float()
    p = r.softmax(1)[:, 1:]  # (B, K, H, W)
    g = F.one_hot(masks, logits.shape[1]).permute(0, 3, 1, 2)[:, 1:].float()
    dice = (2 * (p * g).sum((2, 3)) + smooth) / (p.sum((2, 3)) + g.sum((2, 3)) + smooth)  # (B, K)
    valid = (torch.arange(1, logits.shape[1])[None] <= kb[:, None]).float()
    return F.cross_entropy(r, masks) + 1 - (dice * valid).sum() / valid.sum()


def test_loss_equals_reference_formula_on_random_batches() -> None:
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        logits = 3 * torch.randn(3, 4, 8, 8, generator=g)
        kb = torch.randint(1, 4, (3,), generator=g)
        masks = torch.stack([torch.randint(0, int(k) + 1, (8, 8), generator=g) for k in kb])
        got = segmentation_loss(logits, masks, kb)["loss"]
        assert abs(float(got) - float(_reference_loss(logits, masks, kb))) < 1e-5


def test_loss_gradient_reaches_logits() -> None:
    logits, masks, kb = _tiny_batch()
    logits.requires_grad_(True)
    segmentation_loss(logits, masks, kb)["loss"].backward()
    assert logits.grad is not None and logits.grad[:, :2].abs().sum() > 0
    assert logits.grad[0, 2].abs().sum() == 0  # a masked channel learns nothing


def _split() -> tuple[torch.Tensor, torch.Tensor]:
    pred = torch.zeros(3, 2, 2, dtype=torch.long)
    target = torch.zeros(3, 2, 2, dtype=torch.long)
    pred[0, 0] = 1  # case 0: predicts 2 pixels of class 1, one of them right
    target[0, 0, 0] = 1
    target[1] = 1  # case 1: 4 pixels of class 1, none predicted; case 2: empty in both
    return pred, target


def test_split_level_dice_pools_the_cases() -> None:
    pred, target = _split()
    d = dice_per_class(pred, target, 2)
    assert abs(d[0] - 2 * 1 / (2 + 5)) < 1e-12  # pooled: not the mean of per-case Dice (2/3 + 0) / 2
    assert math.isnan(d[1])  # class 2 absent from reference and prediction of every case
    assert abs(mean_dice(pred, target, 2) - 2 / 7) < 1e-12


def test_accumulator_over_batches_equals_one_pass() -> None:
    pred, target = _split()
    acc = DiceAccumulator(2)
    for b in range(3):
        acc.update(pred[b : b + 1], target[b : b + 1])
    assert acc.per_class()[0] == dice_per_class(pred, target, 2)[0]
    acc.reset()
    assert all(math.isnan(v) for v in acc.per_class()) and math.isnan(acc.mean())


def test_case_dice_hand_computed() -> None:
    pred, target = _split()
    got = case_dice(pred, target, 2)
    assert torch.allclose(got, torch.tensor([2 / 3, 0.0, 1.0]), atol=1e-6)


def test_labels_above_k_count_as_background() -> None:
    pred = torch.tensor([[[1, 5]]])
    target = torch.tensor([[[1, 1]]])
    assert abs(dice_per_class(pred, target, 1)[0] - 2 / 3) < 1e-12
