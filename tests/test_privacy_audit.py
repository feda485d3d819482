"""`c2gr-fed audit` on a normal run, a tampered log, and the memorisation / membership statistics."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from c2gr_fed.cli.main import main as cli_main
from c2gr_fed.data.loading import load_task
from c2gr_fed.diffusion import encode_masks
from c2gr_fed.federation.settings import AppSettings
from c2gr_fed.privacy.membership import attack_metrics, roc_auc, tpr_at_fpr
from c2gr_fed.privacy.memorisation import distance_histogram, memorisation_metrics
from c2gr_fed.privacy.schema import MEMORISATION_METRIC_KEYS
from c2gr_fed.runs.layout import RunDir
from c2gr_fed.scenario import dump_scenario, load_scenario

ROOT = Path(__file__).resolve().parents[1]
FAST = ["training.epochs=1", "diffusion.replay_per_task=4", "diffusion.sampling_steps=2"]
K = 3


def _audit(run_dir: Path, capsys) -> tuple[int, str]:
    capsys.readouterr()
    rc = cli_main(["audit", str(run_dir), "--show", "50"])
    return rc, " ".join(capsys.readouterr().out.split())


# ----------------------------------------------------------------------------------- one normal run


@pytest.fixture(scope="module")
def normal_run(tmp_path_factory) -> Path:
    """The smoke stream through Flower + Ray with the memorisation audit on (the one simulation of this file)."""
    from departments.client_app import make_client_app
    from server.server_app import make_server_app

    from c2gr_fed.federation.simulation import launch

    sc = load_scenario(ROOT / "scenarios" / "smoke.yaml",
                       FAST + ["privacy.memorisation_audit=true", "privacy.samples=12"])
    run = RunDir(tmp_path_factory.mktemp("normal") / "run").ensure()
    run.scenario.write_text(dump_scenario(sc))
    settings = AppSettings(scenario_path=str(run.scenario), run_dir=str(run.root))
    launch(make_server_app(settings), make_client_app(replace(settings, events=None)), sc)
    return run.root


@pytest.mark.slow
def test_audit_passes_on_a_normal_run(normal_run: Path, capsys) -> None:
    rc, out = _audit(normal_run, capsys)
    assert rc == 0, out
    assert "audit passed" in out and "chain intact" in out
    rep = json.loads((normal_run / "audit.json").read_text())
    assert rep["ok"] and rep["chain"]["intact"] and rep["schema"]["refused_during_run"] == 0
    tot = rep["totals"]
    assert set(tot["by_direction"]) == {"coordinator->department", "department->coordinator"}
    assert {"ophthalmology-aravind", "ophthalmology-nidek", "cardiology-siemens"} <= set(tot["by_department"])
    assert {"0", "1", "2", "3"} <= set(tot["by_round"])  # round 3: the audit after the last round
    assert tot["by_message_type"]["query.audit"]["messages"] == 6
    # memorisation + membership inference: aggregates only, one entry per task, none flagged
    mem = json.loads((normal_run / "memorisation.json").read_text())
    assert set(mem["tasks"]) == {"Fundus-A", "Fundus-B", "MnMs-Siemens"}
    for task, m in mem["tasks"].items():
        assert set(m) - {"department"} <= set(MEMORISATION_METRIC_KEYS), m
        assert m["flagged"] == 0.0 and m["samples"] == 12.0
        assert 0.0 <= m["mia_auc"] <= 1.0 and 0.0 <= m["mia_tpr_at_1fpr"] <= 1.0
        assert (normal_run / "departments" / m["department"] / f"memorisation_{task}.png").exists()
    md = (normal_run / "audit.md").read_text()
    assert "PASS" in md and "MIA AUC" in md and "Fundus-A" in md
    # the guard's own cost is measured and reported (its size is a benchmark figure, not a test)
    g = rep["guard_time"]
    assert g is not None and 0.0 < g["guard_s"] < g["session_s"], g
    assert "time spent by the guard" in md
    # the run report carries the same aggregates
    from c2gr_fed.reporting.report import write_report

    report = write_report(normal_run).read_text()
    assert "## Memorisation audit of the final generator" in report and "Flagged tasks: **none**" in report
    section = report.split("## Memorisation audit of the final generator")[1].split("\n## ")[0]
    assert all(f"| {t} | 0.00 | 0.00 | 0.00 |" in section for t in ("Fundus-A", "Fundus-B", "MnMs-Siemens")), section
    # the histograms never travelled: no logged message carries anything but declared aggregates
    for line in (normal_run / "transfers.jsonl").read_text().splitlines():
        e = json.loads(line)
        if e.get("message_type") == "query.audit" and e["direction"] == "department->coordinator":
            assert set(e["records"]) == {"memorisation"} and e["bytes"] < 4096


@pytest.mark.slow
def test_a_tampered_log_fails_the_audit(normal_run: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "tampered"
    shutil.copytree(normal_run, run)
    lines = (run / "transfers.jsonl").read_text().splitlines()
    e = json.loads(lines[10])
    e["bytes"] = 1  # hide how much was sent
    lines[10] = json.dumps(e, sort_keys=True)
    (run / "transfers.jsonl").write_text("\n".join(lines) + "\n")
    rc, out = _audit(run, capsys)
    assert rc == 1 and "chain BROKEN" in out and "entry 10" in out and "edited" in out
    # a deleted line too
    shutil.copy(normal_run / "transfers.jsonl", run / "transfers.jsonl")
    lines = (run / "transfers.jsonl").read_text().splitlines()
    (run / "transfers.jsonl").write_text("\n".join(lines[:5] + lines[6:]) + "\n")
    rc, out = _audit(run, capsys)
    assert rc == 1 and "removed or inserted" in out


@pytest.mark.slow
def test_a_flagged_generator_fails_the_audit(normal_run: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "flagged"
    shutil.copytree(normal_run, run)
    mem = json.loads((run / "memorisation.json").read_text())
    mem["tasks"]["Fundus-B"].update(flagged=1.0, extraction_fraction=0.75)
    (run / "memorisation.json").write_text(json.dumps(mem))
    rc, out = _audit(run, capsys)
    assert rc == 1 and "Fundus-B" in out and "reproduces training cases" in out


def test_audit_of_a_directory_that_is_not_a_run(tmp_path: Path, capsys) -> None:
    assert cli_main(["audit", str(tmp_path)]) == 2
    assert "scenario.yaml" in capsys.readouterr().err


# --------------------------------------------------------------------------- memorisation statistics


@pytest.fixture(scope="module")
def fundus():
    sc = load_scenario(ROOT / "scenarios" / "smoke.yaml", ["departments.ophthalmology-aravind.tasks.Fundus-A.data.n_test=24"])
    t = sc.stream()[0]
    return {s: load_task(sc, t, s) for s in ("train", "val", "test")}


def _metrics(synth_x, synth_y, d, features=None):
    tr, va = d["train"], d["val"]
    return memorisation_metrics(synth_x, encode_masks(synth_y, K), tr.images, encode_masks(tr.masks, K),
                                va.images, encode_masks(va.masks, K), features=features)


def _pool_features(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.avg_pool2d(x, 4).flatten(1)


def test_exact_copies_of_training_images_are_flagged(fundus) -> None:
    tr = fundus["train"]
    res = _metrics(tr.images[:8], tr.masks[:8], fundus, features=_pool_features)
    m = res.metrics
    assert m["flagged"] == 1.0
    assert m["extraction_fraction"] == 1.0 and m["nn_ratio_fraction"] == 1.0 and m["feature_copy_fraction"] == 1.0
    assert m["extraction_fraction_pair"] == 1.0 and m["pixel_d_train_median"] == 0.0 < m["pixel_d_heldout_median"]
    # near-copies (a little noise) are flagged too
    noisy = (tr.images[:8] + 0.02 * torch.randn_like(tr.images[:8])).clamp(-1, 1)
    assert _metrics(noisy, tr.masks[:8], fundus).metrics["flagged"] == 1.0


def test_fresh_samples_are_not_flagged(fundus, tmp_path: Path) -> None:
    te = fundus["test"]  # unseen cases from the same department: what a good generator would produce
    res = _metrics(te.images, te.masks, fundus, features=_pool_features)
    m = res.metrics
    assert m["flagged"] == 0.0, m
    assert m["extraction_fraction"] <= 0.1 and m["nn_ratio_fraction"] == 0.0
    assert set(m) <= set(MEMORISATION_METRIC_KEYS)
    out = distance_histogram(res, tmp_path / "hist.png", "fresh")
    assert out is not None and out.stat().st_size > 1000


def test_membership_inference_statistics() -> None:
    assert roc_auc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0
    assert roc_auc(np.array([1.0, 2.0]), np.array([3.0, 4.0])) == 0.0
    assert roc_auc(np.array([1.0, 1.0]), np.array([1.0, 1.0])) == 0.5
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=2000), rng.normal(size=2000)
    assert abs(roc_auc(a, b) - 0.5) < 0.03 and tpr_at_fpr(a, b, 0.01) < 0.05
    # members with lower loss: the attack (score = -loss) finds them
    m = attack_metrics(loss_train=rng.normal(0.0, 0.1, 200), loss_heldout=rng.normal(1.0, 0.1, 200))
    assert m["mia_auc"] > 0.99 and m["mia_tpr_at_1fpr"] > 0.9
