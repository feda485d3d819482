"""Department side of the wire: unpack a message, call c2gr_fed, pack the reply.

Only this department's data is ever loaded here. Incoming messages are checked against the declared
schema before use (the department guards itself too). The scenario comes with every request (scenario_wire.py),
so a node needs no copy of the coordinator's files; replay previews, memorisation plots, progress and the errors log
stay in the department's own folder on its node (department_folder.py).
"""

from __future__ import annotations

import json
import math
import time
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from flwr.app import ConfigRecord, Context, Message, MetricRecord

from ..data.loading import load_task
from ..data.types import TaskData
from ..errors import DataError, FederationError, PrivacyViolation, StopRequested
from ..learning import build_state, evaluate_task, run_round
from ..learning.methods import round_data
from ..privacy import WireSchema
from ..runs.stop import stop_file
from ..scenario import Scenario
from ..privacy.metric_rules import quantise_metrics
from .department_folder import department_folder, department_root, visible_folder
from .records import describe, load_state_from_content, pool_record, reply_content, state_records
from .scenario_wire import SCENARIO_KEY, scenario_from_text
from .settings import AppSettings, scenario_of, scenario_sha

if TYPE_CHECKING:
    import torch

PROTOCOL = 1


@lru_cache(maxsize=4)
def _schema_for(sha: str, scenario_json: str) -> WireSchema:
    from ..scenario import validate_scenario

    sc = validate_scenario(json.loads(scenario_json))
    return build_wire_schema(sc)


def build_wire_schema(scenario: Scenario) -> WireSchema:
    from ..privacy.schema import schema_for_scenario

    return schema_for_scenario(scenario)  # the pool may only hold the scenario's own descriptor strings


def schema_of(scenario: Scenario) -> WireSchema:
    return _schema_for(scenario_sha(scenario), json.dumps(scenario.model_dump(mode="json")))


def department_name(settings: AppSettings, scenario: Scenario, context: Context) -> str:
    if settings.department:
        scenario.department(settings.department)  # raises with the list of departments
        return settings.department
    if "department" in context.node_config:
        return str(context.node_config["department"])
    pid = int(context.node_config.get("partition-id", -1))
    if not 0 <= pid < len(scenario.departments):
        raise FederationError(f"node has partition-id {pid} but the scenario has {len(scenario.departments)} departments")
    return scenario.departments[pid].name


REQUEST_RECORDS = {"query.discover": "discover", "train": "train", "evaluate": "evaluate", "query.audit": "audit"}
"""Message type -> the config record of the request that carries the scenario and its hash."""


def local_scenario(settings: AppSettings) -> Scenario | None:
    """The scenario file the settings name, when this node has it (one machine, a shared filesystem, or a
    deployment node given its own copy); None otherwise."""
    if settings.scenario_path and Path(settings.scenario_path).is_file():
        return scenario_of(settings)
    return None


def request_scenario(settings: AppSettings, msg: Message) -> Scenario:
    """The scenario of a request: the text it carries (checked against its hash); a request without one falls
    back to the scenario file the settings name. When this node also has that file, both must be the same
    scenario (a node that was given another scenario refuses to take part)."""
    cfg = msg.content.config_records.get(REQUEST_RECORDS.get(msg.metadata.message_type, ""))
    if cfg is None or SCENARIO_KEY not in cfg:
        if not settings.scenario_path or not Path(settings.scenario_path).is_file():
            raise FederationError(f"the {msg.metadata.message_type} request carries no scenario and this node has no "
                                  f"scenario file at {settings.scenario_path or '(none given)'}")
        return scenario_of(settings)
    scenario = scenario_from_text(str(cfg[SCENARIO_KEY]), str(cfg.get("scenario_sha", "")))
    own = local_scenario(settings)
    if own is not None and scenario_sha(own) != scenario_sha(scenario):
        raise FederationError(f"the coordinator runs scenario {scenario_sha(scenario)[:12]} but this node's "
                              f"{settings.scenario_path} is {scenario_sha(own)[:12]}: both must use the same resolved "
                              "scenario")
    return scenario


def where_errors_go(settings: AppSettings, context: Context, msg: Message | None = None) -> tuple[str | None, str]:
    """(DEPT_ROOT, department name): the department's own errors log is DEPT_ROOT/departments/NAME/errors.jsonl
    on its node (department_folder.py)."""
    scenario = request_scenario(settings, msg) if msg is not None else scenario_of(settings)
    return str(department_root(settings.run_dir)), department_name(settings, scenario, context)


def _check_incoming(msg: Message, scenario: Scenario, dept: str) -> None:
    problems = schema_of(scenario).check(describe(msg), reply=False, department=dept)
    if problems:
        raise PrivacyViolation(f"department {dept!r} refused an incoming {msg.metadata.message_type}: "
                               + "; ".join(map(str, problems[:3])))


def _check_sha(scenario: Scenario, cfg: ConfigRecord, dept: str) -> None:
    theirs = str(cfg.get("scenario_sha", ""))
    ours = scenario_sha(scenario)
    if theirs != ours:
        raise FederationError(f"department {dept!r}: the coordinator runs scenario {theirs[:12]} but this node has "
                              f"{ours[:12]}: both must use the same resolved scenario")


def _data_root(settings: AppSettings) -> Path | None:
    """The data root the coordinator named when this node has that folder, else this node's own $C2GR_DATA_ROOT
    (data folders are per node), else the named one (so that a missing folder is reported by its name)."""
    from ..data.loading import default_data_root

    if settings.data_root and Path(settings.data_root).is_dir():
        return Path(settings.data_root)
    return default_data_root() or (Path(settings.data_root) if settings.data_root else None)


def check_own_data(settings: AppSettings, scenario: Scenario, dept: str) -> None:
    """Open a sample of every task's files of `dept` on this node; DataError naming the department, the task and
    the folder when one cannot be read."""
    from ..data.file_check import open_task_files

    for task in scenario.department(dept).tasks:
        try:
            open_task_files(scenario, task, _data_root(settings), quick=True)
        except DataError as exc:
            raise DataError(f"department {dept!r}: {exc}") from None  # the error names the task and folder


def _progress_writer(settings: AppSettings, dept: str, round_index: int, task: str):
    """Progress for the CLI's bars: in the coordinator's progress folder when this node sees it (one machine),
    else in the department's own folder. A stop request reaches the round only through the visible folder."""
    shared = visible_folder(settings.progress_dir)
    if shared is not None:
        path = shared / f"{dept}.json"
    else:
        path = department_folder(settings.run_dir, dept) / "progress.json"
        path.parent.mkdir(parents=True, exist_ok=True)
    last = [0.0]

    def write(stage: str, done: int, total: int) -> None:
        if shared is not None and stop_file(shared).exists():  # the run was asked to stop: abandon this round
            raise StopRequested(f"department {dept!r}: round {round_index + 1} ({task}) abandoned: the run was asked "
                                "to stop")
        now = time.monotonic()
        if now - last[0] < 0.25 and done < total:
            return
        last[0] = now
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"round": round_index, "task": task, "stage": stage, "done": done, "total": total}))
        tmp.replace(path)

    return write


def department_device(scenario: Scenario) -> "torch.device":
    """The device policy (learning/device.py) with the GPUs the federation granted this department."""
    from ..learning.device import pick_device

    return pick_device(scenario.training.device, scenario.federation.gpus_per_department)


def _set_threads(scenario: Scenario) -> None:
    """Torch CPU threads for this node: training.threads, else the CPUs Ray gave the department."""
    import torch

    n = scenario.training.threads or max(1, int(scenario.federation.cpus_per_department))
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


def handle_discover(settings: AppSettings, msg: Message, context: Context) -> Message:
    """Who this node is, for which scenario, and whether its data can be read here (data_ready 1/0; the reason
    stays in the department's own errors log)."""
    from .error_replies import report_locally

    scenario = request_scenario(settings, msg)
    dept = department_name(settings, scenario, context)
    ready = 1
    try:
        check_own_data(settings, scenario, dept)
    except DataError as exc:
        ready = 0
        report_locally(str(department_root(settings.run_dir)), dept, msg, exc, "data-unreadable")
    return Message(reply_content({"identity": ConfigRecord({"department": dept, "scenario_sha": scenario_sha(scenario),
                                                             "data_ready": ready})}), reply_to=msg)


def handle_train(settings: AppSettings, msg: Message, context: Context) -> Message:
    scenario = request_scenario(settings, msg)
    dept = department_name(settings, scenario, context)
    _check_incoming(msg, scenario, dept)
    _set_threads(scenario)
    cfg = msg.content.config_records["train"]
    _check_sha(scenario, cfg, dept)
    task_name, round_index = str(cfg["task"]), int(cfg["round"])
    own = {t.name: t for t in scenario.department(dept).tasks}
    if task_name not in own:
        raise FederationError(f"department {dept!r} was asked to train task {task_name!r}, which it does not hold "
                              f"(its tasks: {sorted(own)})")
    task = own[task_name]
    state = build_state(scenario)
    load_state_from_content(state, msg.content)
    train = load_task(scenario, task, "train", _data_root(settings))
    stream = scenario.stream()  # `joint` sees the real data of the tasks up to this one, never future tasks
    past = round_data(state.method, stream, [t.name for t in stream].index(task_name),
                      lambda t: load_task(scenario, t, "train", _data_root(settings)))
    from ..learning.device import gpu_unseen, reset_peak_memory

    device = department_device(scenario)
    reset_peak_memory(device)  # this round's peak, not the actor's
    result = run_round(state, task, train, scenario, round_index, device=device,
                       progress=_progress_writer(settings, dept, round_index, task_name), past_data=past)
    if gpu_unseen(scenario.training.device, scenario.federation.gpus_per_department, device):
        result.metrics["gpu_unseen"] = 1.0
    if result.replay_preview is not None:
        _save_replay_preview(settings, dept, round_index, result.replay_preview, scenario)
    content = reply_content({**state_records(state), "pool": pool_record(state.pool),
                             "round_metrics": MetricRecord(quantise_metrics("round_metrics", result.metrics))})
    return Message(content, reply_to=msg)


def handle_evaluate(settings: AppSettings, msg: Message, context: Context) -> Message:
    scenario = request_scenario(settings, msg)
    dept = department_name(settings, scenario, context)
    _check_incoming(msg, scenario, dept)
    _check_sha(scenario, msg.content.config_records["evaluate"], dept)
    _set_threads(scenario)
    state = build_state(scenario)
    load_state_from_content(state, msg.content, partial=True)
    metrics: dict[str, float] = {}
    device = department_device(scenario)
    for task in scenario.department(dept).tasks:
        test: TaskData = load_task(scenario, task, "test", _data_root(settings))
        res = evaluate_task(state, task, test, scenario, device=device)
        if not math.isnan(res["dice"]):
            metrics[task.name] = float(res["dice"])
        for k, v in enumerate(res["dice_per_class"], 1):
            if not math.isnan(v):
                metrics[f"{task.name}/class{k}"] = float(v)
    return Message(reply_content({"dice": MetricRecord(quantise_metrics("dice", metrics))}), reply_to=msg)


def handle_audit(settings: AppSettings, msg: Message, context: Context) -> Message:
    """Memorisation audit of the received generator + membership inference on the segmentor, for one of this
    department's tasks, on its own data. Only aggregates (MEMORISATION_METRIC_KEYS) are returned; the distance
    histogram stays in the department's own folder (department_folder.py)."""
    import torch

    from ..data.types import TaskData as _TD
    from ..privacy.membership import membership_inference
    from ..privacy.memorisation import audit_generator

    scenario = request_scenario(settings, msg)
    dept = department_name(settings, scenario, context)
    _check_incoming(msg, scenario, dept)
    cfg = msg.content.config_records["audit"]
    _check_sha(scenario, cfg, dept)
    _set_threads(scenario)
    task_name, round_index, samples = str(cfg["task"]), int(cfg["round"]), int(cfg["samples"])
    own = {t.name: t for t in scenario.department(dept).tasks}
    if task_name not in own:
        raise FederationError(f"department {dept!r} was asked to audit task {task_name!r}, which it does not hold")
    task = own[task_name]
    state = build_state(scenario)
    load_state_from_content(state, msg.content)
    train = load_task(scenario, task, "train", _data_root(settings))
    parts = [load_task(scenario, task, s, _data_root(settings)) for s in ("val", "test")]
    parts = [p for p in parts if len(p)]
    heldout = _TD(task.name, "test", torch.cat([p.images for p in parts]), torch.cat([p.masks for p in parts]),
                  train.num_classes)
    figure = department_folder(settings.run_dir, dept) / f"memorisation_{task_name}.png"
    metrics = audit_generator(state, scenario, task, train, heldout, samples, seed=scenario.seed * 7 + round_index,
                              figure=figure)
    metrics.update(membership_inference(state, scenario, task, train, heldout))
    clean = quantise_metrics("memorisation", {k: float(v) for k, v in metrics.items()})
    return Message(reply_content({"memorisation": MetricRecord(clean)}), reply_to=msg)


def _save_replay_preview(settings: AppSettings, dept: str, round_index: int, preview, scenario: Scenario) -> None:
    """The replay grid stays in the department's own folder; only its existence is known outside."""
    try:
        from ..reporting.figures import replay_grid

        out = department_folder(settings.run_dir, dept) / f"replay_round_{round_index:03d}.png"
        replay_grid(preview, scenario, out, title=f"{dept}: replay synthesised in round {round_index}")
    except Exception as exc:  # a figure must never fail a round
        print(f"[{dept}] replay preview not written: {exc}")
