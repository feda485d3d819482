"""Dice and the stream metrics on tiny hand-computed examples."""

from __future__ import annotations

import math

import torch

from c2gr_fed.metrics import DiceAccumulator, TrainTestMatrix, case_dice, dice_per_class, stream_metrics


def test_dice_hand_computed() -> None:
    pred = torch.tensor([[[1, 1, 0, 2]]])
    ref = torch.tensor([[[1, 0, 0, 2]]])
    d = dice_per_class(pred, ref, 2)
    assert math.isclose(d[0], 2 * 1 / (2 + 1))
    assert d[1] == 1.0


def test_absent_class_is_nan_and_skipped_in_mean() -> None:
    acc = DiceAccumulator(3)
    acc.update(torch.tensor([[[1, 1]]]), torch.tensor([[[1, 0]]]))
    pc = acc.per_class()
    assert math.isnan(pc[1]) and math.isnan(pc[2])
    assert math.isclose(acc.mean(), pc[0])


def test_stream_metrics_match_the_paper_formulas() -> None:
    m = TrainTestMatrix(["a", "b", "c"], [[0.8, 0.1, 0.2], [0.4, 0.9, 0.3], [0.6, 0.45, 0.7]])
    s = stream_metrics(m)
    assert math.isclose(s["overall"], 100 * (0.6 + 0.45 + 0.7) / 3, rel_tol=1e-6)
    assert math.isclose(s["bwt"], (0.6 / 0.8 + 0.45 / 0.9) / 2 * 100, rel_tol=1e-6)
    assert math.isclose(s["bwt_classic"], 100 * ((0.6 - 0.8) + (0.45 - 0.9)) / 2, rel_tol=1e-6)
    assert math.isclose(s["tl"], 100 * (0.8 + 0.9 + 0.7) / 3, rel_tol=1e-6)
    assert math.isclose(s["fwt"], 100 * (0.1 + 0.3) / 2, rel_tol=1e-6)


def test_missing_entries_are_not_zero() -> None:
    m = TrainTestMatrix(["a", "b"], [[0.8, math.nan], [math.nan, 0.6]])
    s = stream_metrics(m)
    assert s["overall"] == 60.0  # the missing entry is skipped, not averaged in as 0
    assert {"after": "b", "on": "a"} in s["missing"]
    assert s["bwt"] is None


def test_matrix_round_trips_and_csv_layout() -> None:
    m = TrainTestMatrix(["a", "b"])
    m.set("a", "a", 0.5)
    m2 = TrainTestMatrix.from_json(m.to_json())
    assert m2.get(0, 0) == 0.5 and math.isnan(m2.get(1, 1))
    lines = m.to_csv().splitlines()
    assert lines[0] == "after \\ on,a,b" and lines[1].startswith("a,0.500000,")


def test_case_dice_scores_each_case_on_its_own() -> None:
    pred = torch.zeros(3, 2, 2, dtype=torch.int64)
    target = torch.zeros(3, 2, 2, dtype=torch.int64)
    pred[0, 0, :] = 1  # case 0: class 1 pred 2 px, target 1 px overlapping -> 2/3; class 2 only in target -> 0
    target[0, 0, 0] = 1
    target[0, 1, 1] = 2
    pred[1] = 2  # case 1: class 2 everywhere in both -> 1
    target[1] = 2
    got = case_dice(pred, target, 2)  # case 2: empty in both -> full agreement
    assert torch.allclose(got, torch.tensor([(2 / 3 + 0.0) / 2, 1.0, 1.0]))
