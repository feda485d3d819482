"""The EMA of the denoiser (torch's AveragedModel) against the average written out by hand on a toy model."""

from __future__ import annotations

import pytest
import torch

from c2gr_fed.learning.ema import Ema


class _Toy(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(3, 2)
        self.register_buffer("scale", torch.ones(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x) * self.scale


def _train(warmup: bool, steps: int = 30, decay: float = 0.9) -> tuple[dict, dict]:
    """(averaged weights from Ema, from the formula by hand) after `steps` SGD steps of a toy model."""
    torch.manual_seed(0)
    model = _Toy()
    opt = torch.optim.SGD(model.parameters(), lr=0.3)
    ema = Ema(model, decay, warmup)
    ref = {k: v.detach().clone().double() for k, v in model.state_dict().items()}
    for n in range(steps):
        loss = (model(torch.randn(8, 3)) - 1.0).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        model.scale.mul_(1.01)  # a buffer that changes, averaged too
        d = min(decay, (1 + n) / (10 + n)) if warmup else decay
        for k, v in model.state_dict().items():
            ref[k] = d * ref[k] + (1 - d) * v.detach().double()
        ema.update(model)
    out = _Toy()
    ema.copy_to(out)
    return {k: v.double() for k, v in out.state_dict().items()}, ref


@pytest.mark.parametrize("warmup", [False, True])
def test_average_equals_hand_formula(warmup: bool) -> None:
    got, ref = _train(warmup)
    for k in ref:
        assert torch.allclose(got[k], ref[k], atol=1e-6, rtol=0), k


def test_warmup_changes_the_average() -> None:
    with_warmup, _ = _train(True, steps=5)
    without, _ = _train(False, steps=5)
    assert not torch.allclose(with_warmup["lin.weight"], without["lin.weight"], atol=1e-3)


def test_warmup_decay_schedule() -> None:
    ema = Ema(torch.nn.Linear(2, 2), 0.995, warmup=True)
    seen = []
    for _ in range(3):
        seen.append(ema.current_decay())
        ema.update(torch.nn.Linear(2, 2))
    assert seen == [1 / 10, 2 / 11, 3 / 12]
    assert Ema(torch.nn.Linear(2, 2), 0.5, warmup=True).current_decay() == 0.1
    assert Ema(torch.nn.Linear(2, 2), 0.995).current_decay() == 0.995


def test_bad_inputs_refused() -> None:
    with pytest.raises(ValueError, match="decay"):
        Ema(torch.nn.Linear(2, 2), 1.0)
    with pytest.raises(ValueError, match="not floating point"):
        Ema(torch.nn.BatchNorm1d(2), 0.9)
