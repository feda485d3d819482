"""Scenario schema: the shipped scenarios validate, and bad input is refused with a message that says where."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from c2gr_fed.errors import ScenarioError
from c2gr_fed.scenario import apply_overrides, load_scenario, validate_scenario

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "scenarios" / "smoke.yaml"


def raw_smoke() -> dict:
    return yaml.safe_load(SMOKE.read_text())


@pytest.mark.parametrize("name", ["smoke.yaml", "20tasks.yaml", "real-7tasks.yaml", "20tasks-paper.yaml",
                                  "bench-5tasks.yaml", "downstream-5tasks.yaml", "demo-4depts.yaml"])
def test_shipped_scenarios_validate(name: str) -> None:
    sc = load_scenario(ROOT / "scenarios" / name)
    assert len(sc.stream()) >= 3
    assert sc.name == name.removesuffix(".yaml")  # a scenario's name is its file's name


def test_paper_scenario_has_the_papers_hyper_parameters() -> None:
    sc = load_scenario(ROOT / "scenarios" / "20tasks-paper.yaml")
    assert len(sc.stream()) == 20
    assert sc.image_size == 256
    assert sc.model.segmentor.channels == [32, 64, 128, 256, 512, 512, 512]
    assert sc.model.denoiser.channels == [128, 128, 256, 256, 512, 512]
    assert (sc.diffusion.sampler, sc.diffusion.sampling_steps, sc.diffusion.timesteps) == ("ddpm", 200, 1000)
    assert (sc.training.batch_size, sc.training.epochs) == (48, 300)


def test_repeated_key_is_refused_with_both_lines(tmp_path: Path) -> None:
    text = SMOKE.read_text() + "\nseed: 7\n"
    bad = tmp_path / "dup.yaml"
    bad.write_text(text)
    with pytest.raises(ScenarioError) as e:
        load_scenario(bad)
    msg = str(e.value)
    assert "dup.yaml" in msg and "'seed' appears twice" in msg and "line" in msg


def test_20tasks_is_the_papers_order() -> None:
    sc = load_scenario(ROOT / "scenarios" / "20tasks.yaml")
    names = [t.name for t in sc.stream()]
    assert len(names) == 20
    assert names[:4] == ["Fundus-A", "Fundus-B", "Fundus-C", "Fundus-D"]
    assert [n.split("-")[0] for n in names[4:8]] == ["MnMs"] * 4
    assert names[8:12] == ["BraTS-T1", "BraTS-T1ce", "BraTS-T2", "BraTS-FLAIR"]
    assert names[12:] == ["Pancreas", "KiTS", "LiTS", "GlaS", "BUSI", "QaTa-COV19", "Polyp", "ISIC18"]


def test_unknown_key_is_refused_with_hint(tmp_path: Path) -> None:
    raw = raw_smoke()
    raw["training"]["epoch"] = 3
    with pytest.raises(ScenarioError) as e:
        validate_scenario(raw, "x.yaml")
    msg = str(e.value)
    assert "x.yaml" in msg and "training.epoch" in msg and "did you mean 'epochs'" in msg


def test_closed_set_lists_allowed_values() -> None:
    raw = raw_smoke()
    raw["diffusion"]["sampler"] = "ddimm"
    with pytest.raises(ScenarioError) as e:
        validate_scenario(raw, "x.yaml")
    assert "diffusion.sampler" in str(e.value) and "dpmsolver++" in str(e.value) and "'ddim'" in str(e.value)


def test_error_names_department_and_task() -> None:
    raw = raw_smoke()
    raw["departments"][2]["tasks"][0]["data"]["generator"] = "cardiac"
    with pytest.raises(ScenarioError) as e:
        validate_scenario(raw, "x.yaml")
    assert "departments[2:cardiology-siemens].tasks[0:MnMs-Siemens].data.generator" in str(e.value)


def test_repeated_task_names_refused() -> None:
    raw = raw_smoke()
    raw["departments"][1]["tasks"][0]["name"] = "Fundus-A"
    with pytest.raises(ScenarioError, match="task name 'Fundus-A' repeats"):
        validate_scenario(raw)


def test_order_with_unknown_task_refused() -> None:
    raw = raw_smoke()
    raw["order"] = ["Fundus-A", "Fundus-B", "Nope"]
    with pytest.raises(ScenarioError, match="unknown tasks \\['Nope'\\]"):
        validate_scenario(raw)


def test_order_must_list_every_task_once() -> None:
    raw = raw_smoke()
    raw["order"] = ["Fundus-A", "Fundus-A", "MnMs-Siemens"]
    with pytest.raises(ScenarioError, match="more than once"):
        validate_scenario(raw)


def test_class_list_longer_than_head_refused() -> None:
    raw = raw_smoke()
    raw["model"]["max_classes"] = 2
    with pytest.raises(ScenarioError, match="MnMs-Siemens.*3 classes.*max_classes is 2"):
        validate_scenario(raw)


def test_overrides_go_through_validation() -> None:
    sc = load_scenario(SMOKE, ["training.epochs=3", "diffusion.sampler=dpmsolver++"])
    assert sc.training.epochs == 3 and sc.diffusion.sampler == "dpmsolver++"
    with pytest.raises(ScenarioError, match="training.epochs"):
        load_scenario(SMOKE, ["training.epochs=-1"])
    with pytest.raises(ScenarioError, match="expected KEY=VALUE"):
        load_scenario(SMOKE, ["training.epochs"])


def test_overrides_address_list_items_by_name() -> None:
    raw = apply_overrides(raw_smoke(), ["departments.cardiology-siemens.tasks.MnMs-Siemens.data.n_train=5"])
    assert raw["departments"][2]["tasks"][0]["data"]["n_train"] == 5
    with pytest.raises(ScenarioError, match="no item named 'nope'"):
        apply_overrides(raw_smoke(), ["departments.nope.name=x"])


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="not found"):
        load_scenario(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ScenarioError, match="not valid YAML"):
        load_scenario(bad)


def test_scenario_differences_names_settings_in_set_spelling(root: Path) -> None:
    from c2gr_fed.scenario import scenario_differences

    path = root / "scenarios" / "bench-5tasks.yaml"
    base = load_scenario(path)
    assert scenario_differences(base, load_scenario(path)) == []
    other = load_scenario(path, ["diffusion.ema=0.99", "departments.dermatology.tasks.ISIC18.data.n_train=5"])
    assert scenario_differences(base, other) == ["departments.dermatology.tasks.ISIC18.data.n_train", "diffusion.ema"]
