"""One shared suite every learning method passes, run in process on the smoke stream."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from c2gr_fed.errors import ScenarioError
from c2gr_fed.learning import METHOD_SPECS, wire_schema
from c2gr_fed.learning.local_stream import run_stream_local
from c2gr_fed.scenario import load_scenario

FAST = ["training.epochs=1", "diffusion.replay_per_task=4", "diffusion.sampling_steps=2"]
V = "diffusion.prediction_type=v_prediction"


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


def test_resampled_replay_masks_need_a_bjd_method_with_pair_replay(root: Path) -> None:
    """Only BJD trains p(mask | image): replay_masks: resampled is refused for NJD and for image-only replay."""
    smoke = root / "scenarios" / "smoke.yaml"
    assert load_scenario(smoke, ["diffusion.replay_masks=resampled"]).diffusion.replay_masks == "resampled"
    for method, why in (("c2gr-njd", "trains the NJD"), ("gr", "has no pair replay"), ("finetune", "has no pair replay")):
        with pytest.raises(ScenarioError, match=f"replay_masks is 'resampled' but method '{method}' {why}"):
            load_scenario(smoke, ["diffusion.replay_masks=resampled", f"method={method}"])


def test_former_variants_are_methods_with_settings_the_schema_knows(root: Path) -> None:
    """Every former variant maps to one of the nine methods and to settings that exist; its own name is refused as a
    method with the exact replacement, and that replacement loads to the scenario its stored runs read as."""
    from c2gr_fed.learning.former_variants import FORMER_VARIANTS, upgrade_former_variant, variant_overrides
    from c2gr_fed.scenario import Scenario, scenario_differences, validate_scenario
    from c2gr_fed.scenario.departures import departures_line
    from c2gr_fed.scenario.loading import read_yaml

    smoke = root / "scenarios" / "smoke.yaml"
    assert len(METHOD_SPECS) == 9 and set(FORMER_VARIANTS).isdisjoint(METHOD_SPECS)
    for name, (method, settings) in FORMER_VARIANTS.items():
        assert method in METHOD_SPECS, name
        for key in settings:
            section, field = key.split(".")
            assert field in Scenario.model_fields[section].annotation.model_fields, key
        with pytest.raises(ScenarioError) as err:
            load_scenario(smoke, [f"method={name}"])
        text = str(err.value)
        assert f"method: {method} with" in text and all(f"--set {o}" in text for o in variant_overrides(name))
        replaced = load_scenario(smoke, [*variant_overrides(name), f"method={method}"])
        stored = validate_scenario(upgrade_former_variant({**read_yaml(smoke), "method": name}))
        assert validate_scenario({**read_yaml(smoke), "method": name}, stored=True) == stored
        assert scenario_differences(stored, replaced) == [] and replaced.method == method
        assert all(key in departures_line(replaced) for key in settings), departures_line(replaced)
        assert any(getattr(getattr(replaced, k.split(".")[0]), k.split(".")[1]) != getattr(
            getattr(load_scenario(smoke), k.split(".")[0]), k.split(".")[1]) for k in settings), name


def test_unknown_method_names_the_methods_and_a_close_match(root: Path) -> None:
    from c2gr_fed.learning.methods import method_spec

    with pytest.raises(ScenarioError, match="did you mean 'c2gr-njd'"):
        method_spec("c2gr-nj")
    with pytest.raises(ScenarioError, match="method: c2gr with --set diffusion.prediction_type=v_prediction"):
        method_spec("c2gr-v")
    with pytest.raises(ScenarioError, match="did you mean 'lwf'"):
        load_scenario(root / "scenarios" / "smoke.yaml", ["method=lfw"])


def test_settings_nothing_reads_are_retired_with_a_warning(root: Path) -> None:
    """Nothing reads diffusion.objective (the method decides) or federation.evaluate_every_department: an old
    scenario still loads, warned, and the key is gone from the resolved scenario; a stored run's scenario loads
    without a warning."""
    import warnings

    from c2gr_fed.scenario import validate_scenario
    from c2gr_fed.scenario.loading import RetiredSettingWarning, read_yaml

    smoke = root / "scenarios" / "smoke.yaml"
    with pytest.warns(RetiredSettingWarning, match="diffusion.objective is ignored"):
        sc = load_scenario(smoke, ["diffusion.objective=njd", "method=c2gr"])
    assert sc == load_scenario(smoke) and "objective" not in sc.diffusion.model_dump()
    with pytest.warns(RetiredSettingWarning, match="federation.evaluate_every_department is ignored"):
        assert load_scenario(smoke, ["federation.evaluate_every_department=false"]) == sc
    raw = read_yaml(smoke)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RetiredSettingWarning)
        assert validate_scenario({**raw, "diffusion": {**raw["diffusion"], "objective": "bjd"}}, stored=True) == sc


def test_bench_arms_name_a_method_a_former_variant_or_a_label_with_settings() -> None:
    from c2gr_fed.cli.bench_cmd import Arm, parse_arms
    from c2gr_fed.errors import C2GRError

    arms = parse_arms([("--methods", "c2gr,c2gr-vs"), ("--arm", "v-gr=gr diffusion.prediction_type=v_prediction"),
                       ("--methods", "finetune")])
    assert arms == [Arm("c2gr", "c2gr"),
                    Arm("c2gr-vs", "c2gr", ("diffusion.prediction_type=v_prediction", "diffusion.replay_masks=segmentor")),
                    Arm("v-gr", "gr", ("diffusion.prediction_type=v_prediction",)), Arm("finetune", "finetune")]
    assert parse_arms([("--arm", "c2gr-vs=c2gr diffusion.prediction_type=v_prediction diffusion.replay_masks=segmentor")]) \
        == [arms[1]]
    with pytest.raises(C2GRError, match="did you mean 'ewc'"):
        parse_arms([("--methods", "c2gr,ewk")])
    with pytest.raises(C2GRError, match="repeat"):
        parse_arms([("--methods", "c2gr"), ("--arm", "c2gr=c2gr diffusion.ema=0.99")])
    with pytest.raises(C2GRError, match="LABEL=METHOD"):
        parse_arms([("--arm", "c2gr diffusion.ema=0.99")])
    with pytest.raises(C2GRError, match="KEY=VALUE"):
        parse_arms([("--arm", "x=c2gr ema")])


def test_prediction_type_setting_trains_and_samples_with_it(root: Path) -> None:
    from c2gr_fed.learning.state import build_state

    smoke = root / "scenarios" / "smoke.yaml"
    assert build_state(load_scenario(smoke, FAST)).schedule.prediction_type == "epsilon"  # the paper's, by default
    for pt in ("v_prediction", "sample"):
        for m in ("c2gr", "gr", "c2gr-norups"):
            sc = load_scenario(smoke, FAST + [f"diffusion.prediction_type={pt}", f"method={m}"])
            assert build_state(sc).schedule.prediction_type == pt


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
    from c2gr_fed.cli.bench_cmd import Arm, learnable_params

    smoke = root / "scenarios" / "smoke.yaml"
    n_tasks = len(load_scenario(smoke).stream())
    assert learnable_params(smoke, [], Arm("i", "individual")) == n_tasks * learnable_params(smoke, [], Arm("f", "finetune"))


def test_most_agreeing_keeps_the_top_scores_in_order() -> None:
    import torch

    from c2gr_fed.learning.replay import most_agreeing

    agree = torch.tensor([0.2, 0.9, 0.5, 0.9, 0.1])
    assert most_agreeing(agree, 3).tolist() == [1, 2, 3]
    assert most_agreeing(agree, 1).tolist() == [1]  # a tie keeps the earlier candidate
    with pytest.raises(ValueError, match="6 replay pairs out of 5"):
        most_agreeing(agree, 6)


def _filtered_and_every_replay(root: Path, extra: list[str]):
    """One smoke state with two tasks in its pool, replayed twice with the same seed: filtered (2 kept of 3x
    candidates per task) and unfiltered (all 6 candidates). Returns (state, encoder, kept, every)."""
    import torch

    from c2gr_fed.learning.replay import synthesise_replay
    from c2gr_fed.learning.state import build_state
    from c2gr_fed.prompts import TaskDescriptor
    from c2gr_fed.text import build_text_encoder

    base = ["diffusion.sampling_steps=2", "diffusion.chunk_size=64", V, *extra]
    smoke = root / "scenarios" / "smoke.yaml"
    sc_f = load_scenario(smoke, base + ["diffusion.replay_per_task=2", "diffusion.replay_oversample=3",
                                        "diffusion.replay_filter=true"])
    sc_all = load_scenario(smoke, base + ["diffusion.replay_per_task=6"])
    enc = build_text_encoder(sc_f.text_encoder)
    state = build_state(sc_f)
    for task in sc_f.stream()[:2]:
        state.pool.add(TaskDescriptor.from_task(task))
    cpu = torch.device("cpu")
    kept = synthesise_replay(state, sc_f, enc, seed=3, device=cpu)
    every = synthesise_replay(state, sc_all, enc, seed=3, device=cpu)
    return state, enc, kept, every


def test_replay_filter_keeps_the_candidates_that_agree_with_the_segmentor(root: Path) -> None:
    """diffusion.replay_filter samples replay_oversample x the pairs and keeps, per task, exactly those that the
    unfiltered replay would have drawn with the same seed and generator and that agree best with the segmentor."""
    import torch

    from c2gr_fed.learning.replay import most_agreeing

    _, _, kept, every = _filtered_and_every_replay(root, [])
    assert kept.task_ids.tolist() == [0, 0, 1, 1] and every.task_ids.tolist() == [0] * 6 + [1] * 6
    assert kept.candidate_agreement == pytest.approx(float(every.agreement.mean()))
    for t in (0, 1):
        cand = every.agreement[every.task_ids == t]
        idx = most_agreeing(cand, 2)
        assert torch.equal(kept.images[kept.task_ids == t], every.images[every.task_ids == t][idx])
        assert torch.equal(kept.masks[kept.task_ids == t], every.masks[every.task_ids == t][idx])
        assert torch.equal(kept.agreement[kept.task_ids == t], cand[idx])
    assert float(kept.agreement.mean()) >= kept.candidate_agreement


def test_replay_filter_needs_pair_replay_without_gated_masks(root: Path) -> None:
    smoke = root / "scenarios" / "smoke.yaml"
    for masks in ("generated", "resampled", "segmentor"):
        sc = load_scenario(smoke, ["diffusion.replay_filter=true", f"diffusion.replay_masks={masks}"])
        assert sc.diffusion.replay_filter
    with pytest.raises(ScenarioError, match="replay_filter is true but method 'gr' has no pair replay"):
        load_scenario(smoke, ["diffusion.replay_filter=true", "method=gr"])
    with pytest.raises(ScenarioError, match="replay_filter is true but diffusion.replay_masks is 'gated'"):
        load_scenario(smoke, ["diffusion.replay_filter=true", "diffusion.replay_masks=gated"])


def test_replay_filter_with_segmentor_masks_keeps_the_images_the_segmentor_recognises(root: Path) -> None:
    """With replay_masks: segmentor the filter keeps, per task, the generated images whose segmentor label agrees
    best with the generator's own mask; the kept masks are the segmentor's labels of the kept images."""
    import torch

    from c2gr_fed.learning.replay import _label_with_segmentor, most_agreeing
    from c2gr_fed.prompts import embed_pool

    state, enc, kept, every = _filtered_and_every_replay(root, ["diffusion.replay_masks=segmentor"])
    with torch.no_grad():
        seg_tokens = state.prompts(embed_pool(state.pool, enc)).seg
    for t, desc in enumerate(state.pool):
        idx = most_agreeing(every.agreement[every.task_ids == t], 2)
        images = kept.images[kept.task_ids == t]
        assert torch.equal(images, every.images[every.task_ids == t][idx])
        labels = _label_with_segmentor(state, images, seg_tokens[t], desc.num_classes)
        assert torch.equal(kept.masks[kept.task_ids == t], labels.cpu())
    assert float(kept.agreement.mean()) >= kept.candidate_agreement


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


def _replay_beside_v(root: Path, setting: str) -> tuple:
    """Replay for one pooled smoke task (3 pairs, 3 sampling steps, seed 5) of a v-prediction c2gr with `setting`,
    then the plain v-prediction c2gr replay from the same state and seed: (scenario, encoder, state, task
    descriptor, replay with the setting, replay without)."""
    import torch

    from c2gr_fed.learning.replay import synthesise_replay
    from c2gr_fed.learning.state import build_state
    from c2gr_fed.prompts import TaskDescriptor
    from c2gr_fed.text import build_text_encoder

    base = ["diffusion.sampling_steps=3", "diffusion.replay_per_task=3", V]
    sc = load_scenario(root / "scenarios" / "smoke.yaml", [*base, setting])
    plain = load_scenario(root / "scenarios" / "smoke.yaml", base)
    enc = build_text_encoder(sc.text_encoder)
    state = build_state(sc)
    desc = TaskDescriptor.from_task(sc.stream()[0])
    state.pool.add(desc)
    cpu = torch.device("cpu")
    own = synthesise_replay(state, sc, enc, seed=5, device=cpu)
    return sc, enc, state, desc, own, synthesise_replay(state, plain, enc, seed=5, device=cpu)


def test_resampled_masks_keep_the_images_and_resample_the_masks_given_them(root: Path) -> None:
    """replay_masks: resampled draws the same images as generated masks do (same seed, same generator); its masks
    are the mask-given-image branch's samples on those images (seed + 7919), decoded, not the jointly sampled ones."""
    import torch

    from c2gr_fed.diffusion import decode_masks, sample_masks_given_images
    from c2gr_fed.prompts import embed_pool

    sc, enc, state, desc, remasked, joint = _replay_beside_v(root, "diffusion.replay_masks=resampled")
    assert torch.equal(remasked.images, joint.images)
    with torch.no_grad():
        ctx = state.prompts(embed_pool(state.pool, enc)).gen[0].expand(3, -1, -1).contiguous()
    seed = 5 + 104_729  # the replay seed of pool task 0, as synthesise_replay derives it
    code = sample_masks_given_images(state.denoiser, remasked.images, ctx, sc.model.max_classes, state.schedule,
                                     sampler=sc.diffusion.sampler, steps=3, seed=seed + 7_919)
    k = torch.full((3,), desc.num_classes, dtype=torch.int64)
    assert torch.equal(remasked.masks, decode_masks(code, k))
    assert not torch.equal(remasked.masks, joint.masks)


def test_segmentor_masks_keep_the_images_and_take_the_segmentors_masks(root: Path) -> None:
    """replay_masks: segmentor draws the same images as generated masks do (same seed, same BJD generator); its
    masks are the received segmentor's predictions on those images, as GR's are; its agreement scores the generated
    masks against those predictions."""
    import torch

    from c2gr_fed.learning.replay import _label_with_segmentor
    from c2gr_fed.metrics import case_dice
    from c2gr_fed.prompts import embed_pool

    sc, enc, state, desc, labelled, joint = _replay_beside_v(root, "diffusion.replay_masks=segmentor")
    assert torch.equal(labelled.images, joint.images)
    torch.testing.assert_close(labelled.agreement, case_dice(labelled.masks, joint.masks, desc.num_classes))
    state.prompts.eval()
    with torch.no_grad():
        seg_tokens = state.prompts(embed_pool(state.pool, enc)).seg[0]
    assert torch.equal(labelled.masks, _label_with_segmentor(state, labelled.images, seg_tokens, desc.num_classes))


def test_replay_masks_hook_follows_the_setting_for_pair_replay_only(root: Path) -> None:
    from c2gr_fed.learning.methods import replay_masks

    smoke = root / "scenarios" / "smoke.yaml"
    for setting in ("generated", "segmentor", "gated", "resampled"):
        dc = load_scenario(smoke, [f"diffusion.replay_masks={setting}"]).diffusion
        assert replay_masks(METHOD_SPECS["c2gr"], dc) == setting
        assert replay_masks(METHOD_SPECS["finetune"], dc) == "none"
        if setting != "resampled":
            assert replay_masks(METHOD_SPECS["gr"], dc) == ("gated" if setting == "gated" else "segmentor")


def test_c2gr_norups_differs_from_c2gr_in_the_prompts_only(root: Path) -> None:
    """c2gr-norups is c2gr with plain per-task prompts: the generator gets its own projection of each task's text
    embedding instead of RUPS's shared tokens."""
    import dataclasses

    from c2gr_fed.learning.state import build_state
    from c2gr_fed.prompts.plain import PlainPrompts

    c2gr, norups = METHOD_SPECS["c2gr"], METHOD_SPECS["c2gr-norups"]
    differing = {f.name for f in dataclasses.fields(c2gr) if getattr(c2gr, f.name) != getattr(norups, f.name)}
    assert differing == {"name", "prompt_kind", "summary"} and norups.prompt_kind == "plain"
    sc = load_scenario(root / "scenarios" / "smoke.yaml", FAST)
    assert isinstance(build_state(sc, "c2gr-norups").prompts, PlainPrompts)
    assert not isinstance(build_state(sc, "c2gr").prompts, PlainPrompts)


def test_generator_distillation_trains_the_denoiser_towards_the_received_one(root: Path) -> None:
    """training.generator_distill: round 0 has no replay and so nothing to distil; in round 1 the distillation loss
    is reported (a declared metric), and its weight changes the trained denoiser (same seed, weight 0 vs 1)."""
    import numpy as np

    from c2gr_fed.data.loading import load_task
    from c2gr_fed.learning.round import run_round
    from c2gr_fed.learning.state import build_state
    from c2gr_fed.privacy.schema import schema_for_scenario

    out = {}
    for w in (0.0, 1.0):
        sc = load_scenario(root / "scenarios" / "smoke.yaml", [
            "training.max_steps=2", "training.generator_extra_steps=2", "diffusion.replay_per_task=4",
            "diffusion.sampling_steps=2", f"training.generator_distill_weight={w}", "training.generator_distill=true", V])
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
    with pytest.raises(ScenarioError, match="generator_distill is true but method 'ewc' trains no generator"):
        load_scenario(root / "scenarios" / "smoke.yaml", ["training.generator_distill=true", "method=ewc"])
