"""A NaN or infinite loss stops the round with an error that names the model and the step."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import c2gr_fed.learning.round as round_module
from c2gr_fed.data.loading import load_task
from c2gr_fed.errors import NumericalFault
from c2gr_fed.learning import build_state, run_round
from c2gr_fed.scenario import load_scenario


def test_nan_loss_names_model_and_step(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sc = load_scenario(root / "scenarios" / "smoke.yaml", ["training.epochs=1", "method=finetune"])
    task = sc.stream()[0]
    real = round_module.segmentation_loss
    calls = {"n": 0}

    def poisoned(logits, masks, k):
        out = real(logits, masks, k)
        calls["n"] += 1
        if calls["n"] == 1:
            out["loss"] = out["loss"] * torch.tensor(float("nan"))
        return out

    monkeypatch.setattr(round_module, "segmentation_loss", poisoned)
    state = build_state(sc)
    before = {k: v.clone() for k, v in state.segmentor.state_dict().items()}
    with pytest.raises(NumericalFault, match=r"Fundus-A: the segmentor loss became nan at optimiser step 0"):
        run_round(state, task, load_task(sc, task, "train"), sc, 0)
    # no optimiser step was taken with the bad loss
    after = state.segmentor.state_dict()
    assert all(torch.equal(before[k], after[k].cpu()) for k in before)
