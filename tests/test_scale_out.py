"""Scale-out without a shared filesystem, and the device policy: the scenario travels in the requests, departments
keep their outputs in their own folder on their node, a department that cannot read its data says so at discovery,
GPUs are counted from the hardware and `gpus_per_department: 0` means CPU everywhere."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import torch
from flwr.app import ConfigRecord, Context, Message, RecordDict

from c2gr_fed.errors import FederationError, ResourceError, ScenarioError
from c2gr_fed.federation.department import handle_discover, request_scenario
from c2gr_fed.federation.department_folder import DEPARTMENT_DIR_ENV, department_folder, department_root
from c2gr_fed.federation.resources import actor_environment, check_cluster, machine_gpus
from c2gr_fed.federation.scenario_wire import scenario_from_text, scenario_text
from c2gr_fed.federation.settings import AppSettings, scenario_sha
from c2gr_fed.learning.device import gpu_unseen, pick_device
from c2gr_fed.privacy.schema import schema_for_scenario
from c2gr_fed.privacy.wire import MessageInfo, RecordInfo
from c2gr_fed.scenario import load_scenario
from drive_like import drive_like_scenario, write_drive_like


def _smoke(root: Path, *sets: str):
    return load_scenario(root / "scenarios" / "smoke.yaml", list(sets))


# ---------------------------------------------------------------------------------------------- device policy


def test_zero_gpus_per_department_means_cpu_even_where_torch_sees_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device("auto", 0).type == "cpu"
    assert pick_device("cpu", 0).type == "cpu"
    assert pick_device("auto", None).type == "cuda"  # a round called outside the federation: training.device alone
    assert pick_device("auto", 1).type == "cuda"
    with pytest.raises(ScenarioError, match=r"training.device is 'cuda' but federation.gpus_per_department is 0"):
        pick_device("cuda", 0)


def test_a_granted_gpu_that_torch_cannot_see_runs_on_cpu_and_is_flagged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    device = pick_device("auto", 1)
    assert device.type == "cpu"
    assert gpu_unseen("auto", 1, device) and gpu_unseen("auto", 0.5, device)
    assert not gpu_unseen("auto", 0, device) and not gpu_unseen("auto", None, device)
    assert not gpu_unseen("cpu", 1, torch.device("cpu"))  # asked for the CPU: nothing to report
    assert not gpu_unseen("auto", 1, torch.device("cuda"))
    with pytest.raises(ScenarioError, match="sees no GPU"):
        pick_device("cuda", 1)


def test_gpus_are_counted_from_the_hardware_not_from_torch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 7)
    proc = tmp_path / "gpus"
    proc.mkdir()
    assert machine_gpus(proc, smi=None) == 0
    for bus in ("0000:3b:00.0", "0000:af:00.0"):
        (proc / bus).mkdir()
    assert machine_gpus(proc, smi=None) == 2
    assert machine_gpus(tmp_path / "absent", smi=None) == 0
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'GPU 0: NVIDIA H100 (UUID: GPU-a)'\necho 'GPU 1: NVIDIA H100 (UUID: GPU-b)'\n"
                   "echo 'GPU 2: NVIDIA H100 (UUID: GPU-c)'\n")
    smi.chmod(smi.stat().st_mode | stat.S_IEXEC)
    assert machine_gpus(proc, smi=str(smi)) == 3


def test_cpu_only_departments_get_no_visible_gpu(root: Path) -> None:
    assert actor_environment(_smoke(root)) == {"CUDA_VISIBLE_DEVICES": ""}
    assert actor_environment(_smoke(root, "federation.gpus_per_department=1")) == {}


def test_dead_ray_nodes_do_not_count_and_the_refusal_is_one_line(root: Path) -> None:
    nodes = [{"Alive": False, "Resources": {"CPU": 16.0}}, {"Alive": True, "Resources": {"CPU": 1.0}}]
    with pytest.raises(ResourceError) as err:
        check_cluster(_smoke(root, "federation.cpus_per_department=2"), nodes, "10.0.0.5:6379")
    assert "federation.cpus_per_department = 2" in str(err.value) and "(nodes: CPU 1, GPU 0)" in str(err.value)
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------------------------------------- the scenario on the wire


@pytest.fixture(autouse=True)
def _task_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """Messages built outside a Flower runtime need a task identity."""
    from flwr.supercore.task_identity import TaskIdentity

    monkeypatch.setattr(TaskIdentity, "_run_id", 1)
    monkeypatch.setattr(TaskIdentity, "_node_id", 0)
    monkeypatch.setattr(TaskIdentity, "_task_id", 0)


def _request(root: Path, scenario, record: str = "discover", text: str | None = None) -> Message:
    cfg = {"protocol": 1, "scenario_sha": scenario_sha(scenario), "scenario": text or scenario_text(scenario)}
    return Message(RecordDict({record: ConfigRecord(cfg)}), dst_node_id=1, message_type="query.discover")


def _context(partition: int, n: int) -> Context:
    return Context(run_id=1, node_id=1, node_config={"partition-id": partition, "num-partitions": n},
                   state=RecordDict(), run_config={})


def test_a_department_needs_no_scenario_file_and_refuses_an_altered_text(root: Path, tmp_path: Path) -> None:
    sc = _smoke(root, "training.epochs=1")
    nowhere = AppSettings(scenario_path=str(tmp_path / "absent" / "scenario.yaml"), run_dir=str(tmp_path / "absent"))
    got = request_scenario(nowhere, _request(root, sc))
    assert scenario_sha(got) == scenario_sha(sc) and got.training.epochs == 1
    altered = scenario_text(sc).replace('"epochs": 1', '"epochs": 9')
    with pytest.raises(FederationError, match="is not the scenario .* the request names"):
        scenario_from_text(altered, scenario_sha(sc))
    other = tmp_path / "other.yaml"  # a node given its own, different scenario file refuses to take part
    other.write_text((root / "scenarios" / "smoke.yaml").read_text().replace("seed: 0", "seed: 5"))
    with pytest.raises(FederationError, match="both must use the same resolved scenario"):
        request_scenario(AppSettings(scenario_path=str(other), run_dir=str(tmp_path)), _request(root, sc))


def test_the_scenario_text_is_declared_and_checked_on_the_wire(root: Path) -> None:
    sc, other = _smoke(root), _smoke(root, "seed=3")
    live, audit = schema_for_scenario(sc), schema_for_scenario(sc, pin_sha=True)

    def info(text: str, sha: str) -> MessageInfo:
        return MessageInfo("query.discover", {"discover": RecordInfo("config", items={
            "protocol": 1, "scenario_sha": sha, "scenario": text})})

    own = info(scenario_text(sc), scenario_sha(sc))
    assert live.check(own, reply=False, department=None) == []
    assert audit.check_logged(own.summary(), reply=False, department=None) == []
    swapped = info(scenario_text(other), scenario_sha(sc))
    assert [str(v) for v in live.check(swapped, reply=False, department=None)] == [
        "discover.scenario: is not the scenario that scenario_sha names"]
    foreign = info(scenario_text(other), scenario_sha(other))
    assert any("is not this run's scenario" in str(v)
               for v in audit.check_logged(foreign.summary(), reply=False, department=None))


# ---------------------------------------------------------------------------------------------- department folders


def test_department_outputs_go_to_the_run_dir_when_visible_else_a_node_local_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DEPARTMENT_DIR_ENV, raising=False)
    run = tmp_path / "runs" / "smoke-c2gr-1"
    run.mkdir(parents=True)
    assert department_folder(run, "cardiology") == run / "departments" / "cardiology"
    unseen = tmp_path / "elsewhere" / "smoke-c2gr-2"
    assert department_root(unseen).parts[-2:] == ("c2gr-fed", "smoke-c2gr-2") and not unseen.exists()
    monkeypatch.setenv(DEPARTMENT_DIR_ENV, str(tmp_path / "local"))
    assert department_folder(run, "cardiology") == tmp_path / "local" / "smoke-c2gr-1" / "departments" / "cardiology"


def test_a_department_whose_data_folder_is_missing_says_so_at_discovery(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DEPARTMENT_DIR_ENV, raising=False)
    monkeypatch.delenv("C2GR_DATA_ROOT", raising=False)
    sc = load_scenario(drive_like_scenario(tmp_path / "drive.yaml"))
    run = tmp_path / "run"
    run.mkdir()
    settings = AppSettings(scenario_path="", run_dir=str(run), data_root=str(tmp_path / "data"))
    reply = handle_discover(settings, _request(tmp_path, sc), _context(0, 2))
    ident = reply.content.config_records["identity"]
    assert ident["department"] == "ophthalmology-drive" and ident["data_ready"] == 0
    logged = json.loads((run / "departments" / "ophthalmology-drive" / "errors.jsonl").read_text().splitlines()[-1])
    assert logged["code"] == "data-unreadable" and "DRIVE-Vessels" in logged["error"]
    write_drive_like(tmp_path / "data")
    reply = handle_discover(settings, _request(tmp_path, sc), _context(0, 2))
    assert reply.content.config_records["identity"]["data_ready"] == 1


def test_replay_synthesis_autocasts_to_bf16_on_cuda_only() -> None:
    from c2gr_fed.learning.device import sampling_autocast, sampling_dtype

    assert sampling_dtype(torch.device("cuda"), "bf16") is torch.bfloat16
    assert sampling_dtype(torch.device("cuda"), "fp32") is None
    assert sampling_dtype(torch.device("cpu"), "bf16") is None  # CPU runs keep their fp32 results
    with sampling_autocast(torch.device("cpu"), "bf16"):
        assert not torch.is_autocast_enabled("cpu")
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype is torch.float32


def test_a_run_that_fails_before_its_first_round_gives_no_resume_hint(root: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Flower's own failure text ("An error was encountered", many lines) becomes one line without --resume."""
    import c2gr_fed.cli.run_cmd as run_cmd
    from c2gr_fed.cli.main import main

    def fails(*args: object, **kwargs: object) -> None:
        raise RuntimeError("An error was encountered.\n  Ray reported: the actor pool is empty")

    monkeypatch.setattr(run_cmd, "launch_simulation", fails)
    assert main(["run", str(root / "scenarios" / "smoke.yaml"), "--out", str(tmp_path / "run")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "the run failed before its first round was complete: An error was encountered. Ray reported" in err, err
    assert "--resume" not in err


def test_the_report_repeats_the_coordinators_warnings(tmp_path: Path) -> None:
    from c2gr_fed.reporting.report import write_report
    from test_report_format import _run_dir

    run = _run_dir(tmp_path)
    warning = ("department 'd' was granted 1 GPU(s) (federation.gpus_per_department) but torch on its node sees no "
               "GPU: it ran on CPU")
    run.summary.write_text(json.dumps({"warnings": [warning]}))
    assert f"> **Warning:** {warning}" in write_report(run.root).read_text()


@pytest.mark.slow
def test_a_project_started_ray_hides_gpus_from_cpu_only_departments(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With gpus_per_department 0 the actors see CUDA_VISIBLE_DEVICES="" (Ray itself leaves it unset for them)."""
    import os

    import ray

    from c2gr_fed.federation.simulation import start_ray

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    monkeypatch.setenv("PYTHONPATH", os.environ.get("PYTHONPATH", ""))  # start_ray extends it: restored after

    @ray.remote(num_cpus=1, num_gpus=0)
    class Probe:
        def visible(self) -> str | None:
            return os.environ.get("CUDA_VISIBLE_DEVICES")

    try:
        start_ray(_smoke(root), verbose=False)
        assert ray.get(Probe.remote().visible.remote(), timeout=120) == ""
    finally:
        ray.shutdown()


def test_discovery_waits_for_answers_as_long_as_a_round_and_names_the_silent_departments(root: Path,
                                                                                          tmp_path: Path) -> None:
    """On a loaded machine the first message starts each node's actor, and departments queue for few actors: the
    answers may take as long as a round (federation.round_timeout_s), not the 300 s allowed for nodes to connect."""
    from c2gr_fed.federation.coordinator import Coordinator
    from c2gr_fed.runs.layout import RunDir
    from c2gr_fed.scenario import dump_scenario

    sc = load_scenario(root / "scenarios" / "smoke.yaml", ["federation.round_timeout_s=1234"])
    run = RunDir(tmp_path / "run").ensure()
    run.scenario.write_text(dump_scenario(sc))
    asked: list[float] = []

    class Nodes:
        def get_node_ids(self) -> list[int]:
            return list(range(len(sc.departments)))

    class SilentGuard:
        def send_and_receive(self, msgs: list, round_index: int, timeout: float) -> tuple[list, list]:
            asked.append(timeout)
            return [], []

    coordinator = Coordinator(AppSettings(scenario_path=str(run.scenario), run_dir=str(run.root)), Nodes())
    with pytest.raises(FederationError, match=r"did not answer discovery within 1234 s \(federation.round_timeout_s\)"
                       ) as err:
        coordinator.discover(SilentGuard(), timeout=5)
    assert asked == [1234]
    assert all(d.name in str(err.value) for d in sc.departments)
