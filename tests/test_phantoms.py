"""Phantom departments: API, determinism, shapes, class presence, alignment, non-triviality, variants."""

from __future__ import annotations

import pytest
import torch

from c2gr_fed.data.phantoms import (
    SPECS,
    generate_phantom,
    phantom_class_names,
    phantom_num_classes,
    phantom_variants,
)
from c2gr_fed.scenario.schema import PHANTOM_GENERATORS

ALL = [(g, v) for g in SPECS for v in phantom_variants(g)]
EXPECTED_VARIANTS = {
    "fundus": {"aravind", "nidek", "canon", "zeiss"},
    "cardiac_mr": {"siemens", "philips", "ge", "canon"},
    "brain_mr": {"t1", "t1ce", "t2", "flair"},
    "abdominal_ct": {"pancreas", "kidney", "liver"},
}
EXPECTED_K = {
    "fundus": 2, "cardiac_mr": 3, "brain_mr": 3, "abdominal_ct": 2, "histology": 1, "breast_us": 1,
    "chest_xray": 1, "endoscopy": 1, "dermoscopy": 1, "retinal_vessels": 1, "oct_layers": 3, "cells": 2,
    "thyroid_us": 1, "prostate_mr": 1,
}


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Small batched ops: one intra-op thread is faster and immune to a busy machine; restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def batch64() -> dict[tuple[str, str], tuple[torch.Tensor, torch.Tensor]]:
    return {(g, v): generate_phantom(g, v, 32, 64, 3) for g, v in ALL}


def test_registry_matches_schema_and_brief() -> None:
    assert set(SPECS) == set(PHANTOM_GENERATORS)
    for g, k in EXPECTED_K.items():
        assert phantom_num_classes(g) == k
        assert len(phantom_class_names(g)) == k
        expected = EXPECTED_VARIANTS.get(g, {"default"})
        assert set(phantom_variants(g)) == expected


def test_unknown_names_are_explained() -> None:
    with pytest.raises(ValueError, match="nope.*allowed: fundus"):
        generate_phantom("nope", "default", 2, 32, 0)
    with pytest.raises(ValueError, match="'topcon'.*aravind, nidek, canon, zeiss"):
        generate_phantom("fundus", "topcon", 2, 32, 0)
    with pytest.raises(ValueError, match="allowed"):
        phantom_variants("nope")


@pytest.mark.parametrize("size", [16, 32, 64])
def test_shapes_dtypes_ranges(size: int) -> None:
    for g, v in ALL:
        im, m = generate_phantom(g, v, 3, size, 1)
        assert im.shape == (3, 3, size, size) and im.dtype == torch.float32, (g, v)
        assert m.shape == (3, size, size) and m.dtype == torch.int64, (g, v)
        assert im.min() >= -1 and im.max() <= 1 and torch.isfinite(im).all(), (g, v)
        assert m.min() >= 0 and m.max() <= phantom_num_classes(g), (g, v)


def test_determinism() -> None:
    for g, v in ALL:
        a = generate_phantom(g, v, 4, 32, 7)
        b = generate_phantom(g, v, 4, 32, 7)
        c = generate_phantom(g, v, 4, 32, 8)
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]), (g, v)
        assert not torch.equal(a[0], c[0]) and not torch.equal(a[1], c[1]), (g, v)


def test_every_class_present_in_most_samples(batch64) -> None:
    for (g, v), (_, m) in batch64.items():
        for k in range(1, phantom_num_classes(g) + 1):
            present = (m == k).flatten(1).any(1).float().mean().item()
            assert present >= 0.8, f"{g}/{v}: class {k} present in only {present:.0%} of samples"


def _edge_strength(im: torch.Tensor, fg: torch.Tensor) -> float:
    """Colour step across the boundary of fg: |mean RGB of the 2-pixel band just inside - mean RGB of the
    2-pixel band just outside|, averaged over the samples where fg is present."""
    f = fg.float()[:, None]
    grown = torch.nn.functional.max_pool2d(f, 5, 1, 2)
    shrunk = -torch.nn.functional.max_pool2d(-f, 5, 1, 2)
    band_in, band_out = f - shrunk, grown - f
    n_in, n_out = band_in.sum((2, 3)).clamp_min(1), band_out.sum((2, 3)).clamp_min(1)
    step = ((im * band_in).sum((2, 3)) / n_in - (im * band_out).sum((2, 3)) / n_out).norm(dim=1)
    ok = (band_in.sum((1, 2, 3)) > 0) & (band_out.sum((1, 2, 3)) > 0)
    return step[ok].mean().item() if ok.any() else 0.0


def test_masks_are_aligned_with_image_content(batch64) -> None:
    """Image edges sit on the mask boundaries: the colour step across the true class boundary is larger than
    across the same boundary shifted by 3 pixels (mean over the 4 directions; the mask labels what is drawn)."""
    for (g, v), (im, m) in batch64.items():
        for k in range(1, phantom_num_classes(g) + 1):
            fg = m == k
            true = _edge_strength(im, fg)
            shifts = [_edge_strength(im, torch.roll(fg, s, d)) for s in (3, -3) for d in (1, 2)]
            assert sum(shifts) / 4 < true, f"{g}/{v} class {k}: shifted boundaries {shifts} vs true {true:.3f}"


def test_expected_intensity_relations(batch64) -> None:
    """A few modality facts, on the grey level (mean of the 3 channels)."""

    def mean(g: str, v: str, k: int) -> float:
        im, m = batch64[(g, v)]
        return im.mean(1)[m == k].mean().item()

    for v in phantom_variants("fundus"):
        assert mean("fundus", v, 2) > mean("fundus", v, 1) > mean("fundus", v, 0)  # cup > rim > retina
    for v in phantom_variants("cardiac_mr"):
        assert mean("cardiac_mr", v, 1) > mean("cardiac_mr", v, 2) < mean("cardiac_mr", v, 3)  # blood > myocardium
    assert mean("brain_mr", "t1ce", 3) > mean("brain_mr", "t1ce", 1)  # enhancing ring bright on T1ce
    assert mean("brain_mr", "flair", 2) > mean("brain_mr", "t1", 2) - 0.0  # oedema brighter on FLAIR than T1
    assert mean("brain_mr", "t2", 2) > mean("brain_mr", "t1", 2)
    assert mean("breast_us", "default", 1) < mean("breast_us", "default", 0) + 0.3


def _best_threshold_dice(grey: torch.Tensor, target: torch.Tensor, steps: int = 64) -> float:
    """Best pooled Dice of `grey > t` or `grey < t` over `steps` quantile thresholds."""
    g = grey.flatten()
    y = target.flatten().float()
    t = torch.quantile(g[:: max(1, g.numel() // 200_000)], torch.linspace(0.0, 1.0, steps + 2)[1:-1])
    idx = torch.bucketize(g, t)  # bucket b: t[b-1] < g <= t[b]
    tot = torch.bincount(idx, minlength=steps + 1).float()
    pos = torch.bincount(idx, weights=y, minlength=steps + 1)
    # predicted "below or at t_b" = buckets 0..b
    p_below, tp_below = torch.cumsum(tot, 0)[:-1], torch.cumsum(pos, 0)[:-1]
    p_above, tp_above = tot.sum() - p_below, pos.sum() - tp_below
    n = y.sum()
    d1 = 2 * tp_below / (p_below + n).clamp_min(1)
    d2 = 2 * tp_above / (p_above + n).clamp_min(1)
    return max(d1.max().item(), d2.max().item())


def test_not_thresholdable(batch64) -> None:
    for (g, v), (im, m) in batch64.items():
        grey = im.mean(1)
        targets = {"union": m > 0}
        if phantom_num_classes(g) > 1:
            targets.update({f"class {k}": m == k for k in range(1, phantom_num_classes(g) + 1)})
        for name, t in targets.items():
            d = _best_threshold_dice(grey, t)
            assert d < 0.8, f"{g}/{v} {name}: a global threshold reaches Dice {d:.3f}"


def test_variants_share_anatomy_but_differ_in_appearance() -> None:
    for g in SPECS:
        vs = phantom_variants(g)
        if len(vs) < 2:
            continue
        out = [generate_phantom(g, v, 8, 32, 5) for v in vs]
        for (ia, ma), (ib, mb), vb in zip(out, out[1:], vs[1:]):
            diff = (ia - ib).abs().mean().item()
            if SPECS[g].objective_shift:
                assert not torch.equal(ma, mb), f"{g}/{vb}: the objective variant must change the masks"
                assert diff < 0.15, f"{g}/{vb}: objective variants should show similar images ({diff:.3f})"
            else:
                assert torch.equal(ma, mb), f"{g}/{vb}: appearance variant changed the anatomy"
                assert diff > 0.02, f"{g}/{vb}: appearance variant looks identical ({diff:.3f})"


def test_abdominal_ct_targets_different_organs() -> None:
    masks = {v: generate_phantom("abdominal_ct", v, 16, 64, 2)[1] for v in phantom_variants("abdominal_ct")}
    for a in masks:
        for b in masks:
            if a < b:
                inter = ((masks[a] > 0) & (masks[b] > 0)).sum().item()
                assert inter < 0.05 * min((masks[a] > 0).sum().item(), (masks[b] > 0).sum().item()), (a, b)


def test_fundus_cup_inside_disc() -> None:
    _, m = generate_phantom("fundus", "aravind", 16, 64, 4)
    # every cup pixel is labelled 2 and is surrounded by disc: dilating the cup by one pixel stays in the disc
    cup = (m == 2).float()[:, None]
    grown = torch.nn.functional.max_pool2d(cup, 3, 1, 1)[:, 0] > 0
    assert ((m[grown] == 1) | (m[grown] == 2)).float().mean() > 0.97
