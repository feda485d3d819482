"""The mechanisms that keep old knowledge: EWC's penalty and Fisher, LwF's distillation, the denoiser's EMA.

Each test fails when its mechanism is removed or made a no-op, not only when it crashes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from c2gr_fed.learning.regularisers import ewc_penalty, lwf_loss
from c2gr_fed.learning.ema import Ema
from c2gr_fed.learning.round import _frozen_copy
from c2gr_fed.scenario import load_scenario


def _ewc_extras(module: torch.nn.Module, fisher: float) -> dict[str, torch.Tensor]:
    return {**{f"fisher.{n}": torch.full_like(p, fisher) for n, p in module.named_parameters()},
            **{f"anchor.{n}": p.detach().clone() for n, p in module.named_parameters()}}


def test_ewc_penalty_is_zero_at_the_anchor_grows_away_from_it_and_pulls_back() -> None:
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 2)
    extras = _ewc_extras(net, fisher=2.0)
    assert float(ewc_penalty(net, extras).detach()) == 0.0
    n_params = sum(p.numel() for p in net.parameters())
    penalties = []
    for shift in (0.1, 0.2):
        with torch.no_grad():
            for n, p in net.named_parameters():
                p.copy_(extras[f"anchor.{n}"] + shift)
        penalties.append(float(ewc_penalty(net, extras).detach()))
        assert penalties[-1] == pytest.approx(2.0 * shift**2 * n_params / 2)  # sum F (theta - theta*)^2 / 2
    assert penalties[1] > penalties[0] > 0
    net.zero_grad()
    ewc_penalty(net, extras).backward()
    for n, p in net.named_parameters():  # the gradient F (theta - theta*) points away from the anchor
        torch.testing.assert_close(p.grad, 2.0 * (p.detach() - extras[f"anchor.{n}"]))
    with torch.no_grad():  # so a gradient step moves every parameter back towards it
        before = float(ewc_penalty(net, extras).detach())
        for p in net.parameters():
            p -= 0.1 * p.grad
    assert float(ewc_penalty(net, extras).detach()) < before
    # a parameter without Fisher information (none recorded) is free
    assert float(ewc_penalty(net, {k: v for k, v in extras.items() if "weight" not in k}).detach()) < penalties[1]


def test_lwf_loss_is_zero_for_the_teacher_itself_and_positive_for_another_student(root: Path) -> None:
    """Plain per-task prompts, so that the teacher's prompt of the earlier task (computed on the earlier pool) is
    the student's too: then the loss is 0 exactly when the segmentors agree."""
    from c2gr_fed.learning.state import build_state
    from c2gr_fed.prompts import TaskDescriptor, embed_pool
    from c2gr_fed.text import build_text_encoder

    sc = load_scenario(root / "scenarios" / "smoke.yaml", ["method=lwf"])
    state = build_state(sc, "c2gr-norups")
    for task in sc.stream()[:2]:
        state.pool.add(TaskDescriptor.from_task(task))
    emb = embed_pool(state.pool, build_text_encoder(sc.text_encoder))
    n_classes = torch.tensor([d.num_classes for d in state.pool])
    x = torch.randn(4, 3, sc.image_size, sc.image_size)
    teacher = _frozen_copy(state)
    torch.manual_seed(1)
    assert abs(float(lwf_loss(teacher, state, emb, x, n_classes).detach())) < 1e-6
    with torch.no_grad():
        for p in state.segmentor.parameters():
            p.add_(0.3 * torch.randn_like(p))
    torch.manual_seed(1)
    loss = lwf_loss(teacher, state, emb, x, n_classes)
    assert float(loss.detach()) > 1e-4
    loss.backward()  # the student learns from it; the teacher is frozen
    assert any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in state.segmentor.parameters())
    assert all(p.grad is None for p in teacher.segmentor.parameters())


@pytest.mark.parametrize("method", ["ewc", "lwf"])
def test_regularised_round_reports_its_loss_once_there_is_something_to_keep(root: Path, method: str) -> None:
    """The round adds the method's regulariser through its hook: nothing on the first task, a positive term on the
    second; EWC leaves its Fisher and anchors (the trained weights) in the travelling extras."""
    from c2gr_fed.data.loading import load_task
    from c2gr_fed.learning.round import run_round
    from c2gr_fed.learning.state import build_state

    sc = load_scenario(root / "scenarios" / "smoke.yaml", ["training.max_steps=3", f"method={method}"])
    state = build_state(sc)
    losses = []
    for r, task in enumerate(sc.stream()[:2]):
        losses.append(run_round(state, task, load_task(sc, task, "train"), sc, r).metrics["loss_reg"])
        if method == "ewc":
            seg = dict(state.segmentor.named_parameters())
            assert set(state.extras) == {f"{k}.{n}" for n in seg for k in ("fisher", "anchor")}
            assert all(torch.equal(state.extras[f"anchor.{n}"], p.detach()) for n, p in seg.items())
            assert any(bool(state.extras[f"fisher.{n}"].abs().sum() > 0) for n in seg)
    assert losses[0] == 0.0 and losses[1] > 0.0


def test_ema_with_warmup_matches_a_hand_computation() -> None:
    """shadow <- shadow + (1 - d_n) (w - shadow), d_n = min(decay, (1 + n) / (10 + n)) with warm-up, else decay."""
    net = torch.nn.Linear(1, 1, bias=False)
    for warmup, expected in ((True, [0.9, 1.8, 2.7]), (False, [0.1, 0.29, 0.561])):
        with torch.no_grad():
            net.weight.fill_(0.0)
        ema = Ema(net, 0.9, warmup=warmup)
        got = []
        for w in (1.0, 2.0, 3.0):
            with torch.no_grad():
                net.weight.fill_(w)
            ema.update(net)
            got.append(float(ema.averaged.module.weight.detach()))
        assert got == pytest.approx(expected)
        ema.copy_to(net)
        assert float(net.weight.detach()) == pytest.approx(expected[-1])


def test_round_hands_on_the_ema_denoiser(root: Path) -> None:
    """With diffusion.ema the denoiser that leaves the round is the average, so it differs from the last trained
    weights; the segmentor, which the EMA does not touch, is the same either way."""
    import numpy as np

    from c2gr_fed.data.loading import load_task
    from c2gr_fed.learning.round import run_round
    from c2gr_fed.learning.state import build_state

    out = []
    for extra in ([], ["diffusion.ema=0.5"]):
        sc = load_scenario(root / "scenarios" / "smoke.yaml", ["training.max_steps=3", *extra])
        state, task = build_state(sc), sc.stream()[0]
        run_round(state, task, load_task(sc, task, "train"), sc, 0)
        out.append(state.arrays())
    assert all(np.array_equal(v, out[1]["segmentor"][k]) for k, v in out[0]["segmentor"].items())
    assert any(not np.array_equal(v, out[1]["denoiser"][k]) for k, v in out[0]["denoiser"].items())
