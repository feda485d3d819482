"""One shared suite every learning method passes, run in process on the smoke stream."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from c2gr_fed.learning import METHOD_SPECS, wire_schema
from c2gr_fed.learning.local_stream import run_stream_local
from c2gr_fed.scenario import load_scenario

FAST = ["training.epochs=1", "diffusion.replay_per_task=4", "diffusion.sampling_steps=2"]


@pytest.mark.parametrize("method", sorted(METHOD_SPECS))
def test_every_method_runs_the_stream_within_the_wire_schema(root: Path, method: str) -> None:
    sc = load_scenario(root / "scenarios" / "smoke.yaml", FAST + [f"method={method}"])
    matrix, rounds, state = run_stream_local(sc, threads=1)
    n = len(sc.stream())
    assert len(rounds) == n
    for row in matrix.values:
        assert all(0.0 <= v <= 1.0 for v in row), row
    # what would travel matches the declared schema exactly (names, shapes, dtypes)
    declared = wire_schema(sc)
    for rec, arrays in state.arrays().items():
        assert rec in declared, rec
        for k, a in arrays.items():
            assert declared[rec][k] == (tuple(a.shape), str(a.dtype)), f"{rec}.{k}"
    assert [d.name for d in state.pool][-1] == sc.stream()[-1].name
    spec = METHOD_SPECS[method]
    replay = [r["replay_samples"] for r in rounds]
    if spec.replay == "none":
        assert replay == [0.0] * n
    else:
        assert replay[0] == 0.0 and all(x > 0 for x in replay[1:])
    assert all(not math.isnan(r["loss_seg"]) for r in rounds)


def test_individual_keeps_each_tasks_own_model(root: Path) -> None:
    sc = load_scenario(root / "scenarios" / "smoke.yaml", FAST + ["method=individual"])
    matrix, _, _ = run_stream_local(sc, threads=1)
    # a task's Dice never changes after it is trained: later rounds evaluate it with its own model
    for j in range(3):
        col = [matrix.get(i, j) for i in range(j, 3)]
        assert all(c == col[0] for c in col)


def test_replay_train_size_uses_each_earlier_tasks_declared_size(root: Path) -> None:
    """replay_per_task: train_size (the paper's choice) gives each earlier phantom task its own n_train pairs."""
    import torch

    from c2gr_fed.learning.replay import replay_count, synthesise_replay
    from c2gr_fed.learning.state import build_state
    from c2gr_fed.prompts import TaskDescriptor
    from c2gr_fed.text import build_text_encoder

    sc = load_scenario(root / "scenarios" / "smoke.yaml", [
        "diffusion.replay_per_task=train_size", "diffusion.sampling_steps=2",
        "departments.ophthalmology-aravind.tasks.Fundus-A.data.n_train=5",
        "departments.ophthalmology-nidek.tasks.Fundus-B.data.n_train=3",
    ])
    assert replay_count(sc, "Fundus-A") == 5 and replay_count(sc, "Fundus-B") == 3
    assert replay_count(sc, "not-a-task", current_train_size=11) == 11  # size unknown here: the current task's
    assert replay_count(load_scenario(root / "scenarios" / "smoke.yaml"), "Fundus-A") == 8  # a number stays a number
    state = build_state(sc)
    for task in sc.stream()[:2]:
        state.pool.add(TaskDescriptor.from_task(task))
    rep = synthesise_replay(state, sc, build_text_encoder(sc.text_encoder), seed=0, device=torch.device("cpu"))
    assert rep.task_ids.tolist() == [0] * 5 + [1] * 3
    assert rep.images.shape == (8, 3, 16, 16) and rep.masks.shape == (8, 16, 16)


def test_channels_last_round_matches_the_default_layout(root: Path) -> None:
    """training.channels_last changes the memory layout only: same losses, and contiguous arrays on the wire."""
    import torch

    from c2gr_fed.data.loading import load_task
    from c2gr_fed.learning.round import run_round
    from c2gr_fed.learning.state import build_state

    out = []
    for flags in ([], ["training.channels_last=true"]):
        sc = load_scenario(root / "scenarios" / "smoke.yaml", ["training.epochs=1", *flags])
        state, task = build_state(sc), sc.stream()[0]
        res = run_round(state, task, load_task(sc, task, "train"), sc, 0)
        arrays = state.arrays()
        assert all(a.flags["C_CONTIGUOUS"] for rec in arrays.values() for a in rec.values())
        out.append((res.metrics["loss_seg"], res.metrics["loss_diffusion"], arrays["segmentor"]))
    assert abs(out[0][0] - out[1][0]) < 1e-4 and abs(out[0][1] - out[1][1]) < 1e-4
    for k, v in out[0][2].items():
        assert torch.allclose(torch.from_numpy(v), torch.from_numpy(out[1][2][k]), atol=1e-4), k


def test_remask_replay_needs_bjd() -> None:
    """Only BJD trains p(mask | image); a remask method on NJD is refused when it is declared."""
    from c2gr_fed.learning.methods import MethodSpec

    with pytest.raises(ValueError, match="BJD"):
        MethodSpec("bad", "rups", "remask", "njd")
    assert METHOD_SPECS["c2gr-remask"].objective == "bjd" and METHOD_SPECS["c2gr"].replay == "pairs"


def test_schema_and_round_know_the_same_methods() -> None:
    from c2gr_fed.scenario import METHODS

    assert set(METHODS) == set(METHOD_SPECS)


def test_c2gr_v_trains_and_samples_with_v_prediction(root: Path) -> None:
    from c2gr_fed.learning.state import build_state

    sc = load_scenario(root / "scenarios" / "smoke.yaml", FAST)
    assert build_state(sc, "c2gr").schedule.prediction_type == "epsilon"  # the paper's, by default
    assert build_state(sc, "c2gr-v").schedule.prediction_type == "v_prediction"
    sc_x0 = load_scenario(root / "scenarios" / "smoke.yaml", FAST + ["diffusion.prediction_type=sample"])
    assert build_state(sc_x0, "c2gr").schedule.prediction_type == "sample"
    assert build_state(sc_x0, "c2gr-v").schedule.prediction_type == "v_prediction"  # the method overrides
    for m in ("c2gr-vf", "c2gr-vr", "c2gr-vs", "c2gr-vsp", "gr-v"):
        assert build_state(sc, m).schedule.prediction_type == "v_prediction"
    assert build_state(sc, "gr").schedule.prediction_type == "epsilon"


def test_generator_extra_steps_train_the_denoiser_alone(root: Path) -> None:
    """training.generator_extra_steps adds denoiser-only steps after the joint ones: the segmentor and the prompt
    graph end exactly as without them, the denoiser does not, and the metrics count the extra steps."""
    import numpy as np

    from c2gr_fed.data.loading import load_task
    from c2gr_fed.learning.round import run_round
    from c2gr_fed.learning.state import build_state
    from c2gr_fed.privacy.schema import ROUND_METRIC_KEYS

    out = []
    for extra in (0, 3):
        sc = load_scenario(root / "scenarios" / "smoke.yaml", ["training.max_steps=2", f"training.generator_extra_steps={extra}"])
        state, task = build_state(sc), sc.stream()[0]
        res = run_round(state, task, load_task(sc, task, "train"), sc, 0)
        assert res.metrics["steps"] == 2 + extra and res.metrics["generator_extra_steps"] == extra
        assert set(res.metrics) <= set(ROUND_METRIC_KEYS)  # declared: the round's metrics may travel
        out.append(state.arrays())
    for rec in ("segmentor", "prompts"):
        for k, v in out[0][rec].items():
            assert np.array_equal(v, out[1][rec][k]), f"{rec}.{k} changed"
    assert any(not np.array_equal(v, out[1]["denoiser"][k]) for k, v in out[0]["denoiser"].items())
    # methods without a generator ignore the setting
    sc = load_scenario(root / "scenarios" / "smoke.yaml", ["training.max_steps=2", "training.generator_extra_steps=3",
                                                            "method=finetune"])
    state, task = build_state(sc), sc.stream()[0]
    assert run_round(state, task, load_task(sc, task, "train"), sc, 0).metrics["steps"] == 2


def test_individual_counts_one_model_per_task(root: Path) -> None:
    """The bench's cost column: IndividualTrain keeps a model per task, so it learns n_tasks x the parameters."""
    from c2gr_fed.cli.bench_cmd import learnable_params

    smoke = root / "scenarios" / "smoke.yaml"
    n_tasks = len(load_scenario(smoke).stream())
    assert learnable_params(smoke, [], "individual") == n_tasks * learnable_params(smoke, [], "finetune")


def test_most_agreeing_keeps_the_top_scores_in_order() -> None:
    import torch

    from c2gr_fed.learning.replay import most_agreeing

    agree = torch.tensor([0.2, 0.9, 0.5, 0.9, 0.1])
    assert most_agreeing(agree, 3).tolist() == [1, 2, 3]
    assert most_agreeing(agree, 1).tolist() == [1]  # a tie keeps the earlier candidate
    with pytest.raises(ValueError, match="6 replay pairs out of 5"):
        most_agreeing(agree, 6)


def test_filtering_method_keeps_the_candidates_that_agree_with_the_segmentor(root: Path) -> None:
    """c2gr-vf samples replay_oversample x the pairs and keeps, per task, exactly those that c2gr-v would have
    drawn with the same seed and generator and that agree best with the received segmentor."""
    import torch

    from c2gr_fed.learning.replay import most_agreeing, synthesise_replay
    from c2gr_fed.learning.state import build_state
    from c2gr_fed.prompts import TaskDescriptor
    from c2gr_fed.text import build_text_encoder

    base = ["diffusion.sampling_steps=2", "diffusion.chunk_size=64"]
    sc_f = load_scenario(root / "scenarios" / "smoke.yaml", base + ["diffusion.replay_per_task=2",
                                                                     "diffusion.replay_oversample=3"])
    sc_all = load_scenario(root / "scenarios" / "smoke.yaml", base + ["diffusion.replay_per_task=6"])
    enc = build_text_encoder(sc_f.text_encoder)
    state = build_state(sc_f, "c2gr-vf")
    for task in sc_f.stream()[:2]:
        state.pool.add(TaskDescriptor.from_task(task))
    cpu = torch.device("cpu")
    kept = synthesise_replay(state, sc_f, enc, seed=3, device=cpu)
    state.method = METHOD_SPECS["c2gr-v"]
    every = synthesise_replay(state, sc_all, enc, seed=3, device=cpu)
    assert kept.task_ids.tolist() == [0, 0, 1, 1] and every.task_ids.tolist() == [0] * 6 + [1] * 6
    assert kept.candidate_agreement == pytest.approx(float(every.agreement.mean()))
    for t in (0, 1):
        cand = every.agreement[every.task_ids == t]
        idx = most_agreeing(cand, 2)
        assert torch.equal(kept.images[kept.task_ids == t], every.images[every.task_ids == t][idx])
        assert torch.equal(kept.masks[kept.task_ids == t], every.masks[every.task_ids == t][idx])
        assert torch.equal(kept.agreement[kept.task_ids == t], cand[idx])
    assert float(kept.agreement.mean()) >= kept.candidate_agreement


def test_replay_filtering_needs_pair_replay() -> None:
    from c2gr_fed.learning.methods import MethodSpec

    with pytest.raises(ValueError, match="pair replay"):
        MethodSpec("bad", "rups", "images", "njd", filter_replay=True)
    assert METHOD_SPECS["c2gr-vf"].filter_replay and not METHOD_SPECS["c2gr-v"].filter_replay


def test_replay_grid_titles_each_pair_with_its_agreement(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import torch
    from matplotlib.figure import Figure

    from c2gr_fed.learning.replay import ReplaySet
    from c2gr_fed.reporting.figures import replay_grid

    titles: list[str] = []
    save = Figure.savefig

    def capture(fig: Figure, *args, **kwargs):
        titles.extend(ax.get_title() for ax in fig.axes if ax.get_title())
        return save(fig, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", capture)
    rep = ReplaySet(torch.zeros(6, 3, 8, 8), torch.zeros(6, 8, 8, dtype=torch.int64), torch.tensor([0, 0, 0, 1, 1, 1]),
                    ("A", "B"), agreement=torch.tensor([0.1, 0.25, 0.3, 0.5, 0.75, 0.9]), candidate_agreement=0.4)
    out = replay_grid(rep.preview(2), None, tmp_path / "grid.png", title="t", per_task=2)
    assert out.stat().st_size > 0
    assert titles == ["agree 0.10", "agree 0.25", "agree 0.50", "agree 0.75"]


def _replay_beside_c2gr_v(root: Path, method: str) -> tuple:
    """Replay of `method` for one pooled smoke task (3 pairs, 3 sampling steps, seed 5), then c2gr-v's replay from
    the same state and seed: (scenario, encoder, state (now c2gr-v), task descriptor, method's replay, c2gr-v's)."""
    import torch

    from c2gr_fed.learning.replay import synthesise_replay
    from c2gr_fed.learning.state import build_state
    from c2gr_fed.prompts import TaskDescriptor
    from c2gr_fed.text import build_text_encoder

    sc = load_scenario(root / "scenarios" / "smoke.yaml", ["diffusion.sampling_steps=3", "diffusion.replay_per_task=3"])
    enc = build_text_encoder(sc.text_encoder)
    state = build_state(sc, method)
    desc = TaskDescriptor.from_task(sc.stream()[0])
    state.pool.add(desc)
    cpu = torch.device("cpu")
    own = synthesise_replay(state, sc, enc, seed=5, device=cpu)
    state.method = METHOD_SPECS["c2gr-v"]
    return sc, enc, state, desc, own, synthesise_replay(state, sc, enc, seed=5, device=cpu)


def test_remask_method_keeps_the_images_and_resamples_the_masks_given_them(root: Path) -> None:
    """c2gr-vr draws the same images as c2gr-v (same seed, same generator); its masks are the mask-given-image
    branch's samples on those images (seed + 7919), decoded, not the jointly sampled ones."""
    import torch

    from c2gr_fed.diffusion import decode_masks, sample_masks_given_images
    from c2gr_fed.prompts import embed_pool

    sc, enc, state, desc, remasked, joint = _replay_beside_c2gr_v(root, "c2gr-vr")
    assert torch.equal(remasked.images, joint.images)
    with torch.no_grad():
        ctx = state.prompts(embed_pool(state.pool, enc)).gen[0].expand(3, -1, -1).contiguous()
    seed = 5 + 104_729  # the replay seed of pool task 0, as synthesise_replay derives it
    code = sample_masks_given_images(state.denoiser, remasked.images, ctx, sc.model.max_classes, state.schedule,
                                     sampler=sc.diffusion.sampler, steps=3, seed=seed + 7_919)
    k = torch.full((3,), desc.num_classes, dtype=torch.int64)
    assert torch.equal(remasked.masks, decode_masks(code, k))
    assert not torch.equal(remasked.masks, joint.masks)


def test_segmentor_labelled_method_keeps_the_images_and_takes_the_segmentors_masks(root: Path) -> None:
    """c2gr-vs draws the same images as c2gr-v (same seed, same BJD generator); its masks are the received
    segmentor's predictions on those images, as GR's are; its agreement scores the generated masks (c2gr-v's
    replay masks) against those predictions."""
    import torch

    from c2gr_fed.learning.replay import _label_with_segmentor
    from c2gr_fed.prompts import embed_pool

    assert METHOD_SPECS["c2gr-vs"].objective == "bjd" and METHOD_SPECS["gr-v"].objective == "njd"
    sc, enc, state, desc, labelled, joint = _replay_beside_c2gr_v(root, "c2gr-vs")
    assert torch.equal(labelled.images, joint.images)
    from c2gr_fed.metrics import case_dice

    torch.testing.assert_close(labelled.agreement, case_dice(labelled.masks, joint.masks, desc.num_classes))
    state.prompts.eval()
    with torch.no_grad():
        seg_tokens = state.prompts(embed_pool(state.pool, enc)).seg[0]
    assert torch.equal(labelled.masks, _label_with_segmentor(state, labelled.images, seg_tokens, desc.num_classes))


def test_replay_masks_setting_turns_c2gr_pair_replay_into_segmentor_labels(root: Path) -> None:
    from c2gr_fed.learning.state import build_state

    sc = load_scenario(root / "scenarios" / "smoke.yaml", ["diffusion.replay_masks=segmentor"])
    assert build_state(sc).method.replay == "images" and build_state(sc).method.name == "c2gr"
    assert build_state(load_scenario(root / "scenarios" / "smoke.yaml")).method.replay == "pairs"
    with pytest.raises(Exception, match="replay_masks"):
        load_scenario(root / "scenarios" / "smoke.yaml", ["diffusion.replay_masks=segmentor", "method=c2gr-vf"])


def test_plain_prompt_variant_differs_from_c2gr_vs_in_the_prompts_only(root: Path) -> None:
    """c2gr-vsp is c2gr-vs (BJD v generator, segmentor-labelled images) with plain per-task prompts: the generator
    gets its own projection of each task's text embedding instead of RUPS's shared tokens."""
    import dataclasses

    from c2gr_fed.learning.state import build_state
    from c2gr_fed.prompts.plain import PlainPrompts

    vs, vsp = METHOD_SPECS["c2gr-vs"], METHOD_SPECS["c2gr-vsp"]
    differing = {f.name for f in dataclasses.fields(vs) if getattr(vs, f.name) != getattr(vsp, f.name)}
    assert differing == {"name", "prompt_kind", "summary"} and vsp.prompt_kind == "plain"
    sc = load_scenario(root / "scenarios" / "smoke.yaml", FAST)
    assert isinstance(build_state(sc, "c2gr-vsp").prompts, PlainPrompts)
    assert not isinstance(build_state(sc, "c2gr-vs").prompts, PlainPrompts)


def test_generator_distillation_trains_the_denoiser_towards_the_received_one(root: Path) -> None:
    """c2gr-vd: round 0 has no replay and so nothing to distil; in round 1 the distillation loss is reported
    (a declared metric), and its weight changes the trained denoiser (same seed, weight 0 vs 1)."""
    import numpy as np

    from c2gr_fed.data.loading import load_task
    from c2gr_fed.learning.methods import MethodSpec
    from c2gr_fed.learning.round import run_round
    from c2gr_fed.learning.state import build_state
    from c2gr_fed.privacy.schema import schema_for_scenario

    out = {}
    for w in (0.0, 1.0):
        sc = load_scenario(root / "scenarios" / "smoke.yaml", [
            "training.max_steps=2", "training.generator_extra_steps=2", "diffusion.replay_per_task=4",
            "diffusion.sampling_steps=2", f"training.generator_distill_weight={w}", "method=c2gr-vd"])
        state = build_state(sc)
        metrics = []
        for r, task in enumerate(sc.stream()[:2]):
            metrics.append(run_round(state, task, load_task(sc, task, "train"), sc, r).metrics)
        assert metrics[0]["loss_generator_distill"] == 0.0
        # declared for the wire: the round metrics and the per-task ones (replay_agreement/TASK) of this scenario
        assert set(metrics[1]) <= schema_for_scenario(sc).metric_keys("round_metrics", None)
        assert (metrics[1]["loss_generator_distill"] > 0) == (w > 0)
        out[w] = state.arrays()["denoiser"]
    assert any(not np.array_equal(v, out[1.0][k]) for k, v in out[0.0].items())
    with pytest.raises(ValueError, match="distillation"):
        MethodSpec("bad", "rups", "none", None, distil_generator=True)
