"""diffusion.generators: bank: per-task generators are trained on their own task, frozen, travel, replay and are
audited; settings that cannot work together are refused when the scenario is validated."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from c2gr_fed.data.loading import load_task
from c2gr_fed.diffusion import sample_pairs
from c2gr_fed.errors import ScenarioError
from c2gr_fed.learning import build_state, run_round, wire_schema
from c2gr_fed.learning.replay import synthesise_replay
from c2gr_fed.privacy.schema import schema_for_scenario
from c2gr_fed.privacy.wire import ArrayInfo, MessageInfo, RecordInfo
from c2gr_fed.scenario import load_scenario
from c2gr_fed.text import build_text_encoder

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "scenarios" / "smoke.yaml"
BANK = ["diffusion.generators=bank", "diffusion.prediction_type=v_prediction", "diffusion.ema=0.9",
        "diffusion.ema_warmup=true", "training.epochs=1", "training.generator_extra_steps=2",
        "diffusion.replay_per_task=4", "diffusion.sampling_steps=2"]


@pytest.fixture(scope="module")
def two_rounds():
    """smoke.yaml with a bank after rounds 0 and 1: (scenario, state, bank arrays after round 0)."""
    torch.set_num_threads(1)
    sc = load_scenario(SMOKE, BANK)
    state = build_state(sc)
    stream = sc.stream()
    run_round(state, stream[0], load_task(sc, stream[0], "train"), sc, 0)
    after_first = {k: v.copy() for k, v in state.arrays()["bank"].items()}
    result = run_round(state, stream[1], load_task(sc, stream[1], "train"), sc, 1)
    return sc, state, after_first, result


def test_each_round_banks_its_own_generator_and_leaves_the_earlier_ones_untouched(two_rounds) -> None:
    sc, state, after_first, result = two_rounds
    stream = sc.stream()
    assert state.denoiser is None  # between rounds, a bank state carries no working generator
    assert state.bank.names == [stream[0].name, stream[1].name]
    now = state.arrays()["bank"]
    first = {k: v for k, v in now.items() if k.startswith(f"{stream[0].name}/")}
    assert set(first) == set(after_first)
    for k, v in after_first.items():  # frozen: bit-identical after a later round
        np.testing.assert_array_equal(first[k], v, err_msg=k)
    second = [k for k in now if k.startswith(f"{stream[1].name}/") and not k.endswith("/tokens")]
    assert any(not np.array_equal(now[k], after_first[k.replace(stream[1].name, stream[0].name, 1)])
               for k in second)  # the new generator was trained (it started as a copy of the first)
    assert all(not p.requires_grad for e in state.bank.entries.values() for p in e.denoiser.parameters())
    m = result.metrics
    assert m["generator_bank_size"] == 2.0 and m["generator_warm_started"] == 1.0
    assert f"replay_agreement/{stream[0].name}" in m and 0.0 <= m[f"replay_agreement/{stream[0].name}"] <= 1.0


def test_the_bank_travels_as_declared_and_round_trips(two_rounds) -> None:
    sc, state, _, _ = two_rounds
    declared = wire_schema(sc)
    assert "denoiser" not in declared  # with a bank no single generator travels
    arrays = state.arrays()
    for name, a in arrays["bank"].items():
        shape, dtype = declared["bank"][name]
        assert tuple(a.shape) == shape and str(a.dtype) == dtype, name
    fresh = build_state(sc)
    fresh.load_arrays(arrays)
    assert fresh.bank.names == state.bank.names
    for name, a in fresh.arrays()["bank"].items():
        np.testing.assert_array_equal(a, arrays["bank"][name])
    single = build_state(load_scenario(SMOKE))
    with pytest.raises(KeyError, match="denoiser"):  # a single-generator state cannot take a bank's arrays
        single.load_arrays(arrays)
    with pytest.raises(KeyError, match="generator bank"):
        single.load_arrays({**arrays, "denoiser": single.arrays()["denoiser"]})


def test_the_guard_checks_every_bank_array(two_rounds) -> None:
    sc, state, _, _ = two_rounds
    schema = schema_for_scenario(sc)

    def message(bank: dict[str, np.ndarray]) -> MessageInfo:
        recs = {name: RecordInfo("arrays", [ArrayInfo(k, tuple(v.shape), str(v.dtype), v.nbytes, "x")
                                            for k, v in arrs.items()])
                for name, arrs in {**state.arrays(), "bank": bank}.items()}
        recs["pool"] = RecordInfo("config", items=state.pool.to_wire())
        recs["train"] = RecordInfo("config", items={"round": 1, "task": sc.stream()[1].name,
                                                       "scenario_sha": "ab" * 32, "seed": 0})
        return MessageInfo("train", recs)

    bank = state.arrays()["bank"]
    assert [str(v) for v in schema.check(message(bank), reply=False, department=None)] == []
    assert [str(v) for v in schema.check(message({}), reply=False, department=None)] == []  # round 0: an empty bank is absent
    task0 = sc.stream()[0].name
    bad = dict(bank)
    bad[f"{task0}/tokens"] = np.zeros((99, 99), np.float32)  # wrong shape
    bad["NotATask/tokens"] = np.zeros((4, 128), np.float32)  # a task the stream does not have
    found = " ".join(str(v) for v in schema.check(message(bad), reply=False, department=None))
    assert f"bank.{task0}/tokens" in found and "differs from the declared" in found
    # an undeclared name is refused and named only by its length and hash (it could be anything)
    assert "bank.<undeclared: 15 chars, sha256" in found and "undeclared array" in found and "NotATask" not in found
    # arrays travel in their declared order: a bank holding a prefix of the declared tasks passes, one whose
    # arrays are reordered does not
    first = {k: v for k, v in bank.items() if k.startswith(f"{task0}/")}
    assert first and [str(v) for v in schema.check(message(first), reply=False, department=None)] == []
    reordered = dict(reversed(list(bank.items())))
    found = " ".join(str(v) for v in schema.check(message(reordered), reply=False, department=None))
    assert "out of the declared order" in found


def test_replay_of_each_task_comes_from_its_own_generator_and_frozen_tokens(two_rounds) -> None:
    sc, state, _, _ = two_rounds
    enc = build_text_encoder(sc.text_encoder)
    rep = synthesise_replay(state, sc, enc, seed=11, device=torch.device("cpu"))
    for t_idx, name in enumerate(state.pool.names):
        entry = state.bank[name]
        n = int((rep.task_ids == t_idx).sum())
        x, _ = sample_pairs(entry.denoiser, entry.tokens.expand(n, -1, -1).contiguous(), sc.image_size,
                            sc.model.max_classes, state.schedule, sampler=sc.diffusion.sampler,
                            steps=sc.diffusion.sampling_steps, seed=11 + 104_729 * (t_idx + 1),
                            chunk_size=sc.diffusion.chunk_size)
        torch.testing.assert_close(rep.images[rep.task_ids == t_idx], x.float())


def test_each_generator_is_audited_on_its_own_task(two_rounds) -> None:
    from c2gr_fed.privacy.memorisation import audit_generator

    sc, state, _, _ = two_rounds
    task = sc.stream()[0]
    train, test = load_task(sc, task, "train"), load_task(sc, task, "test")
    metrics = audit_generator(state, sc, task, train, test, samples=6, seed=1)
    assert metrics["samples"] == 6.0 and "extraction_fraction" in metrics
    unseen = sc.stream()[2]  # not learned yet: no generator of its own, nothing to audit
    assert audit_generator(state, sc, unseen, load_task(sc, unseen, "train"), load_task(sc, unseen, "test"),
                           samples=6, seed=1) == {}


def test_nearest_warm_start_follows_the_prompt_text() -> None:
    sc = load_scenario(ROOT / "scenarios" / "20tasks.yaml", ["diffusion.generators=bank"])
    from c2gr_fed.prompts import PromptPool, TaskDescriptor, embed_pool

    state = build_state(sc)
    pool = PromptPool()
    tasks = {t.name: t for t in sc.stream()}
    for name in ("Fundus-A", "MnMs-Siemens", "Pancreas", "KiTS"):
        pool.add(TaskDescriptor.from_task(tasks[name]))
    emb = embed_pool(pool, build_text_encoder(sc.text_encoder))
    for name in ("Fundus-A", "MnMs-Siemens", "Pancreas"):
        state.bank.add(name, state.bank.start_generator(None, 0), torch.zeros(4, 128))
    assert state.bank.warm_start_source("nearest", emb.full, emb.names, "KiTS") == "Pancreas"
    assert state.bank.warm_start_source("previous", emb.full, emb.names, "KiTS") == "Pancreas"
    assert state.bank.warm_start_source("none", emb.full, emb.names, "KiTS") is None


@pytest.mark.parametrize("overrides, fields", [
    (["method=finetune", "diffusion.generators=bank"], ["diffusion.generators", "finetune"]),
    (["training.generator_distill=true", "diffusion.generators=bank"], ["training.generator_distill", "'bank'"]),
    (["diffusion.ema_warmup=true"], ["diffusion.ema_warmup", "diffusion.ema"]),
    (["training.epochs=0"], ["training.epochs", "training.generator_extra_steps"]),
    (["diffusion.replay_filter=true", "diffusion.replay_masks=gated"], ["diffusion.replay_filter", "'gated'"]),
    (["diffusion.replay_masks=resampled", "method=c2gr-njd"], ["diffusion.replay_masks", "c2gr-njd", "NJD"]),
    (["method=c2gr-vs"], ["method: c2gr with --set diffusion.prediction_type=v_prediction --set "
                          "diffusion.replay_masks=segmentor"]),
])
def test_settings_that_cannot_work_together_are_refused(tmp_path: Path, overrides: list[str],
                                                        fields: list[str]) -> None:
    import yaml

    from c2gr_fed.scenario.loading import apply_overrides, read_yaml

    path = tmp_path / "bad.yaml"  # the combination written in the file itself
    path.write_text(yaml.safe_dump(apply_overrides(read_yaml(SMOKE), overrides)))
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    for f in fields:
        assert f in str(err.value), str(err.value)


def test_a_baseline_chosen_on_the_command_line_runs_without_the_bank() -> None:
    sc = load_scenario(SMOKE, ["diffusion.generators=bank", "method=finetune"])
    assert sc.method == "finetune" and sc.diffusion.generators == "single"
    assert load_scenario(SMOKE, ["diffusion.generators=bank", "method=gr"]).diffusion.generators == "bank"
    sc = load_scenario(SMOKE, ["diffusion.replay_current_images=same_modality", "method=joint"])
    assert sc.diffusion.replay_current_images == "none"
    assert load_scenario(SMOKE, ["diffusion.replay_current_images=same_modality", "method=gr"]
                         ).diffusion.replay_current_images == "same_modality"


@pytest.mark.slow
def test_a_bank_run_through_flower_travels_declared_and_passes_the_audit(tmp_path: Path, capsys) -> None:
    """smoke.yaml with a bank through Flower + Ray: the train replies carry one more banked generator per round,
    every message passes the guard, and each banked generator is audited by the department that holds its task."""
    import json
    from dataclasses import replace

    from departments.client_app import make_client_app
    from server.server_app import make_server_app

    from c2gr_fed.cli.main import main as cli_main
    from c2gr_fed.federation.settings import AppSettings
    from c2gr_fed.federation.simulation import launch
    from c2gr_fed.runs.layout import RunDir
    from c2gr_fed.scenario import dump_scenario

    sc = load_scenario(SMOKE, BANK + ["privacy.memorisation_audit=true", "privacy.samples=8"])
    run = RunDir(tmp_path / "run").ensure()
    run.scenario.write_text(dump_scenario(sc))
    settings = AppSettings(scenario_path=str(run.scenario), run_dir=str(run.root))
    launch(make_server_app(settings), make_client_app(replace(settings, events=None)), sc)
    tasks = [t.name for t in sc.stream()]
    banked = []
    for line in (run.root / "transfers.jsonl").read_text().splitlines():
        e = json.loads(line)
        assert not e.get("violations"), e
        if e.get("message_type") == "train" and e["direction"] == "department->coordinator":
            assert "denoiser" not in e["records"]
            names = sorted({a[0].split("/")[0] for a in e["records"]["bank"]["arrays"]})
            banked.append(names)
    assert banked == [sorted(tasks[: i + 1]) for i in range(len(tasks))]
    mem = json.loads((run.root / "memorisation.json").read_text())
    assert set(mem["tasks"]) == set(tasks)
    for task, m in mem["tasks"].items():
        assert m["department"] == sc.department_of(task) and m["samples"] == 8.0
    capsys.readouterr()
    assert cli_main(["audit", str(run.root)]) == 0, capsys.readouterr().out


def test_gated_masks_take_the_prediction_only_where_it_agrees() -> None:
    from c2gr_fed.learning.replay import gated_masks

    predicted = torch.tensor([[[1, 1], [0, 0]], [[0, 0], [0, 0]], [[2, 2], [2, 2]]])
    generated = torch.tensor([[[1, 0], [0, 0]], [[1, 1], [1, 1]], [[0, 0], [0, 1]]])
    agreement = torch.tensor([0.6, 0.0, 0.5])
    out = gated_masks(predicted, generated, agreement, 0.5)
    assert torch.equal(out[0], predicted[0]) and torch.equal(out[2], predicted[2])  # at or above the gate
    assert torch.equal(out[1], generated[1])  # below it: the generator's mask
    assert torch.equal(gated_masks(predicted, generated, agreement, 1.0), generated)
    assert torch.equal(gated_masks(predicted, generated, agreement, 0.0), predicted)


def test_gated_replay_masks_are_the_segmentors_or_the_generators_pair_by_pair(two_rounds) -> None:
    """replay_masks: gated draws the same images as segmentor masks; each pair's mask is the segmentor's label
    where its agreement reaches the gate and the generated mask elsewhere; the share is reported."""
    from dataclasses import replace

    sc, state, _, _ = two_rounds
    enc = build_text_encoder(sc.text_encoder)
    seg_sc = load_scenario(SMOKE, BANK + ["diffusion.replay_masks=segmentor"])
    gen_sc = load_scenario(SMOKE, BANK)
    cpu = torch.device("cpu")
    spec = state.method
    try:
        state.method = replace(spec, replay="images")
        labelled = synthesise_replay(state, seg_sc, enc, seed=5, device=cpu)
        gate = float(labelled.agreement.median())
        gated_sc = load_scenario(SMOKE, BANK + ["diffusion.replay_masks=gated", f"diffusion.replay_mask_gate={gate}"])
        gated = synthesise_replay(state, gated_sc, enc, seed=5, device=cpu)
        state.method = replace(spec, replay="pairs")
        joint = synthesise_replay(state, gen_sc, enc, seed=5, device=cpu)
    finally:
        state.method = spec
    assert torch.equal(gated.images, labelled.images) and torch.equal(gated.images, joint.images)
    keep = labelled.agreement >= gate
    assert bool(keep.any()) and bool((~keep).any()), "the gate should split this replay"
    assert torch.equal(gated.masks[keep], labelled.masks[keep])
    assert torch.equal(gated.masks[~keep], joint.masks[~keep])
    assert gated.generated_mask_share == pytest.approx(float((~keep).float().mean()))
    assert labelled.generated_mask_share == 0.0


def test_own_images_are_relabelled_under_every_earlier_prompt_of_the_same_modality(two_rounds) -> None:
    from c2gr_fed.learning.replay import _label_with_segmentor, relabel_current_images
    from c2gr_fed.prompts import embed_pool

    sc, state, _, _ = two_rounds
    sc = load_scenario(SMOKE, BANK + ["diffusion.replay_current_images=same_modality",
                                      "diffusion.replay_current_per_task=5"])
    enc = build_text_encoder(sc.text_encoder)
    fundus = [t for t in sc.stream() if t.modality == "colour fundus photograph"]
    images = load_task(sc, fundus[0], "train").images
    x, y, ids = relabel_current_images(state, sc, enc, images, "Colour Fundus Photograph ", seed=3,
                                       device=torch.device("cpu"))
    same = [i for i, d in enumerate(state.pool) if d.modality == "colour fundus photograph"]
    assert len(same) == 2 and x.shape == (10, *images.shape[1:]) and y.shape == (10, *images.shape[2:])
    assert ids.tolist() == [same[0]] * 5 + [same[1]] * 5
    assert all(any(torch.equal(row, img) for img in images) for row in x)  # the department's own images
    with torch.no_grad():
        tokens = state.prompts(embed_pool(state.pool, enc))
    for t_idx in same:
        rows = ids == t_idx
        assert torch.equal(y[rows], _label_with_segmentor(state, x[rows], tokens.seg[t_idx],
                                                          state.pool[t_idx].num_classes))
    x, y, ids = relabel_current_images(state, sc, enc, images, "cine MR", seed=3, device=torch.device("cpu"))
    assert x.shape[0] == y.shape[0] == ids.shape[0] == 0


def test_a_round_trains_on_its_relabelled_own_images() -> None:
    torch.set_num_threads(1)
    sc = load_scenario(SMOKE, BANK + ["diffusion.replay_current_images=same_modality",
                                      "diffusion.replay_current_per_task=5"])
    state = build_state(sc)
    stream = sc.stream()
    first = run_round(state, stream[0], load_task(sc, stream[0], "train"), sc, 0)
    assert first.metrics["relabelled_samples"] == 0.0  # nothing earlier to relabel for
    second = run_round(state, stream[1], load_task(sc, stream[1], "train"), sc, 1)
    assert stream[0].modality == stream[1].modality
    assert second.metrics["relabelled_samples"] == 5.0 and second.metrics["replay_samples"] == 4.0
    from c2gr_fed.scenario.loading import apply_overrides, read_yaml, validate_scenario

    raw = apply_overrides(read_yaml(SMOKE), ["method=finetune", "diffusion.replay_current_images=same_modality"])
    with pytest.raises(ScenarioError, match="replay_current_images"):  # a file that pairs them is refused
        validate_scenario(raw, "bad.yaml")
