"""The coordinator's round loop: discover departments, hand the learner to each task's department in arrival
order, have every department evaluate, fill the train-test matrix, checkpoint after every round.

No image, mask or synthetic sample is ever in a message: only model arrays, the prompt pool's task
descriptors, instructions and numbers, all checked against the declared schema and logged.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from flwr.app import ConfigRecord, Message, RecordDict
from flwr.serverapp import Grid

from ..errors import FederationError, PrivacyViolation, RunDirError, StopRequested
from ..learning import LearnerState, build_state
from ..metrics import TrainTestMatrix, stream_metrics
from ..privacy import TransferLog
from ..privacy.artefacts import artefact_hashes
from ..privacy.error_codes import describe_code
from ..privacy.transfer_log import run_key
from ..prompts import PromptPool
from ..runs.checkpoint import Checkpoint, atomic_write_text, load_checkpoint, save_checkpoint
from ..runs.layout import RunDir
from ..scenario import Scenario
from .department import PROTOCOL, schema_of
from .error_replies import error_text, errors_log_path
from .guarded_grid import GuardedGrid, reply_error
from .records import arrays_from_content, pool_record, state_records
from .scenario_wire import SCENARIO_KEY, scenario_text
from .settings import AppSettings, scenario_of, scenario_sha


class Coordinator:
    def __init__(self, settings: AppSettings, grid: Grid) -> None:
        self.settings = settings
        self.scenario: Scenario = scenario_of(settings)
        self.sha = scenario_sha(self.scenario)
        self.scenario_text = scenario_text(self.scenario)
        """sent with every request: departments need no copy of the scenario file (scenario_wire.py)"""
        self.warnings: list[str] = []
        """said once each, in summary.json and the report (e.g. a department granted a GPU that torch cannot see)"""
        self.run = RunDir(__import__("pathlib").Path(settings.run_dir)).ensure()
        self.grid = grid
        self.node_of: dict[str, int] = {}
        self.dept_of: dict[int, str] = {}
        self.excluded: set[str] = set()

    # ------------------------------------------------------------------ events for the CLI

    def emit(self, kind: str, **data: Any) -> None:
        if self.settings.events is not None:
            self.settings.events(kind, data)

    def stop_requested(self, urgent_only: bool = False) -> bool:
        return self.settings.should_stop is not None and self.settings.should_stop(urgent_only)

    def _sleep(self, seconds: float) -> None:
        """time.sleep that a stop request ends (StopRequested)."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if self.stop_requested():
                raise StopRequested("stop requested while waiting")
            time.sleep(min(left, 0.2))

    # ------------------------------------------------------------------ discovery

    def _department_of_node(self, node: int) -> str:
        return self.dept_of.get(node, f"node-{node}")

    def discover(self, guarded: GuardedGrid, timeout: float = 300.0) -> None:
        """Wait up to `timeout` s for every department node to connect, then ask each who it is. The answers may take
        as long as a round (federation.round_timeout_s): the first message starts each node's actor and its imports,
        and with more departments than actors they queue, which on a loaded machine takes minutes."""
        expected = len(self.scenario.departments)
        t0 = time.monotonic()
        nodes: list[int] = []
        while time.monotonic() - t0 < timeout:
            nodes = list(self.grid.get_node_ids())
            if len(nodes) >= expected:
                break
            self._sleep(0.5)
        if len(nodes) < expected:
            raise FederationError(f"only {len(nodes)} of {expected} department nodes connected within {timeout:.0f} s")
        msgs = [Message(RecordDict({"discover": ConfigRecord({"protocol": PROTOCOL, "scenario_sha": self.sha,
                                                                 SCENARIO_KEY: self.scenario_text})}),
                        dst_node_id=n, message_type="query.discover", group_id="discover") for n in nodes]
        answer_timeout = max(timeout, self.scenario.federation.round_timeout_s)
        replies, refused = guarded.send_and_receive(msgs, round_index=-1, timeout=answer_timeout)
        if refused:
            raise PrivacyViolation(str(refused[0]))
        for r in replies:
            if r.has_error():
                raise FederationError(f"node {r.metadata.src_node_id} failed discovery: {_failure(r)}")
            ident = r.content.config_records["identity"]
            dept = str(ident["department"])
            if str(ident["scenario_sha"]) != self.sha:
                raise FederationError(f"department {dept!r} runs a different scenario ({str(ident['scenario_sha'])[:12]} "
                                      f"vs the coordinator's {self.sha[:12]})")
            if dept in self.node_of:
                raise FederationError(f"two nodes claim department {dept!r}")
            if int(ident.get("data_ready", 1)) != 1:
                raise FederationError(
                    f"department {dept!r} cannot read its data on its node (node {r.metadata.src_node_id}): every "
                    "node must hold its departments' data folders under the data root the scenario names (--data-root "
                    "or C2GR_DATA_ROOT on that node); the department's own message is in "
                    f"{errors_log_path(self.run.root, dept)} on that node (under $C2GR_DEPARTMENT_DIR/"
                    f"{self.run.root.name} or TMP/c2gr-fed/{self.run.root.name} where the node does not see the run "
                    "directory)")
            self.node_of[dept] = r.metadata.src_node_id
            self.dept_of[r.metadata.src_node_id] = dept
        missing = [d.name for d in self.scenario.departments if d.name not in self.node_of]
        if missing:
            raise FederationError(f"departments did not answer discovery within {answer_timeout:.0f} s "
                                  f"(federation.round_timeout_s): {missing}")
        self.emit("discovered", departments=sorted(self.node_of))

    # ------------------------------------------------------------------ the loop

    def run_stream(self) -> dict[str, Any]:
        """The whole stream; the transfer log ends with the coordinator's "end" event whatever stops it."""
        log = TransferLog(self.run.transfers, key=run_key(self.run.root, create=True))
        self._completed = 0
        self._guarded: GuardedGrid | None = None
        status = "failed"
        t_session = time.time()
        try:
            summary = self._run_stream(log)
            status = "finished"
            return summary
        except PrivacyViolation:
            status = "refused"
            raise
        except StopRequested:
            status = "stopped"
            raise
        finally:
            log.append(direction="coordinator", event="end", status=status, completed_rounds=self._completed,
                       planned_rounds=len(self.scenario.stream()), refused_entry=self._guarded.last_refused_seq if self._guarded else None,
                       artefacts=artefact_hashes(self.run.root),
                       guard_s=round(self._guarded.guard_s, 3) if self._guarded else 0.0,
                       session_s=round(time.time() - t_session, 3))

    def _run_stream(self, log: TransferLog) -> dict[str, Any]:
        sc = self.scenario
        stream = sc.stream()
        names = [t.name for t in stream]
        schema = schema_of(sc)
        state = build_state(sc)
        matrix = TrainTestMatrix(names)
        start = 0
        ck = load_checkpoint(self.run.checkpoints, fallback=self.settings.resume)
        if ck is not None and ck.fell_back:
            self.emit("checkpoint_fallback", problem=ck.fell_back, completed_rounds=ck.completed_rounds)
        if ck is not None:
            if not self.settings.resume:
                raise RunDirError(f"{self.run.root} already holds a run (round {ck.completed_rounds} done): "
                                  "use --resume to continue it or choose a new --out")
            if ck.scenario_sha != self.sha:
                raise RunDirError(f"{self.run.root} was made by a different scenario ({ck.scenario_sha[:12]}, now "
                                  f"{self.sha[:12]}): resume with the scenario.yaml stored in that directory")
            state.load_arrays(ck.arrays)
            state.pool = PromptPool.from_wire(ck.pool)
            matrix = TrainTestMatrix.from_json(ck.matrix)
            start = ck.completed_rounds
            self._completed = start
            log.truncate_to(ck.log_position)
            self._truncate_rounds(start)
            for row in self.run.read_rounds():  # the warnings of the rounds kept
                self._note_device(str(row.get("department")), row)
            self.emit("resumed", completed_rounds=start)
        elif self.settings.resume and log.position:
            log.truncate_to(0)
        guarded = GuardedGrid(self.grid, schema, log, self._department_of_node, self.settings.should_stop)
        self._guarded = guarded
        self.discover(guarded)
        individual = state.method.model_per_task  # IndividualTrain
        bank = _bank_from_arrays(ck.arrays, ck.extra) if (individual and ck is not None) else {}

        for r in range(start, len(stream)):
            if self.stop_requested():  # between rounds: the last one is checkpointed
                raise StopRequested(f"stop requested after round {r}")
            task = stream[r]
            dept = sc.department_of(task.name)
            self.emit("round_start", round=r, task=task.name, department=dept, total=len(stream))
            t0 = time.perf_counter()
            if individual:  # IndividualTrain: every task gets a fresh model of its own
                state = build_state(sc)
            metrics = self._train(guarded, state, r, task.name, dept)
            if metrics is None:  # department excluded
                continue
            if individual:
                bank[task.name] = (state.arrays(), state.pool.to_wire())
            dice = self._evaluate(guarded, state, r, bank if individual else None)
            for on, v in dice.items():
                matrix.set(task.name, on, v)
            atomic_write_text(self.run.rounds, self._rounds_text(r, task.name, dept, metrics, time.perf_counter() - t0))
            self._write_matrix(matrix, upto=r)
            log.append(direction="coordinator", event="round-done", round=r, artefacts=artefact_hashes(self.run.root))
            arrays = state.arrays()
            extra: dict[str, Any] = {"excluded": sorted(self.excluded)}
            if individual:
                for name, (arrs, pool) in bank.items():
                    arrays.update({f"bank:{name}:{rec}": a for rec, a in arrs.items()})
                extra["bank_pools"] = {name: pool for name, (_, pool) in bank.items()}
            save_checkpoint(self.run.checkpoints, Checkpoint(r + 1, arrays, state.pool.to_wire(),
                                                             matrix.to_json(), log.position, self.sha, extra))
            self._completed = r + 1
            self.emit("round_end", round=r, task=task.name, department=dept, metrics=metrics,
                      row={k: matrix.get(r, j) for j, k in enumerate(names)}, seconds=time.perf_counter() - t0)
        summary = self._write_matrix(matrix, upto=len(stream) - 1)
        if sc.privacy.memorisation_audit:
            self._memorisation_audit(guarded, state, len(stream))
        self.emit("finished", summary=summary)
        return summary

    # ------------------------------------------------------------------ pieces

    def _train(self, guarded: GuardedGrid, state: LearnerState, r: int, task: str, dept: str) -> dict[str, float] | None:
        fed = self.scenario.federation
        content = RecordDict({**state_records(state), "pool": pool_record(state.pool),
                              "train": ConfigRecord({"round": r, "task": task, "scenario_sha": self.sha,
                                                     "seed": self.scenario.seed, SCENARIO_KEY: self.scenario_text})})
        last_error = ""
        for attempt in range(fed.retries + 1):
            if attempt:
                wait = fed.retry_backoff_s * (2 ** (attempt - 1))
                self.emit("retry", round=r, department=dept, attempt=attempt, wait=wait, error=last_error[-300:])
                self._sleep(wait)
            msg = Message(content, dst_node_id=self.node_of[dept], message_type="train", group_id=str(r))
            replies, refused = guarded.send_and_receive([msg], round_index=r, timeout=fed.round_timeout_s)
            if refused:
                if fed.on_bad_reply == "exclude":
                    self.excluded.add(dept)
                    self.emit("excluded", round=r, department=dept, reason=str(refused[0]))
                    return None
                raise PrivacyViolation(str(refused[0]))
            if not replies:
                last_error = f"no reply within {fed.round_timeout_s:.0f} s"
                continue
            reply = replies[0]
            if reply.has_error():
                if self.stop_requested():  # the department abandoned the round because of the stop request
                    raise StopRequested(f"stop requested during round {r + 1}: department {dept!r} abandoned it")
                last_error = _failure(reply, dept, self.run.root)
                continue
            state.load_arrays(arrays_from_content(reply.content))
            state.pool = PromptPool.from_wire(dict(reply.content.config_records["pool"]))
            if task not in state.pool.names:
                raise FederationError(f"department {dept!r}, round {r}: the returned pool does not contain {task!r}")
            metrics = {k: float(v) for k, v in reply.content.metric_records["round_metrics"].items()}
            self._note_device(dept, metrics)
            return metrics
        raise FederationError(f"department {dept!r} failed to train task {task!r} in round {r} after "
                              f"{fed.retries + 1} attempt(s): {department_error(last_error)}")

    def _note_device(self, dept: str, metrics: dict[str, float]) -> None:
        """A department granted a GPU that ran on CPU (torch there sees none) is said once, in the summary."""
        if metrics.get("gpu_unseen", 0.0) >= 1.0:
            text = (f"department {dept!r} was granted {self.scenario.federation.gpus_per_department:g} GPU(s) "
                    "(federation.gpus_per_department) but torch on its node sees no GPU: it ran on CPU")
            if text not in self.warnings:
                self.warnings.append(text)
                self.emit("warning", text=text)

    def _eval_message(self, state: LearnerState, dept: str, r: int, group: str) -> Message:
        records = state_records(state, include=("segmentor", "prompts"))
        return Message(RecordDict({**records, "pool": pool_record(state.pool),
                                   "evaluate": ConfigRecord({"round": r, "scenario_sha": self.sha,
                                                             SCENARIO_KEY: self.scenario_text})}),
                       dst_node_id=self.node_of[dept], message_type="evaluate", group_id=group)

    def _evaluate(self, guarded: GuardedGrid, state: LearnerState, r: int,
                  bank: dict[str, tuple[dict, dict]] | None = None) -> dict[str, float]:
        """Every department evaluates on its own test split. With a `bank` (IndividualTrain), each trained task
        is evaluated with its own model and the later tasks with the current one."""
        depts = [d.name for d in self.scenario.departments if d.name not in self.excluded]
        stream = self.scenario.stream()
        wanted: dict[str, set[str] | None] = {}
        msgs = []
        if bank is None:
            for d in depts:
                msgs.append(self._eval_message(state, d, r, f"{r}"))
                wanted[f"{r}"] = None
        else:
            for t in stream[: r + 1]:
                d = self.scenario.department_of(t.name)
                if d not in depts:
                    continue
                arrays, pool = bank[t.name]
                own = build_state(self.scenario)
                own.load_arrays(arrays)
                own.pool = PromptPool.from_wire(pool)
                msgs.append(self._eval_message(own, d, r, f"{r}:{t.name}"))
                wanted[f"{r}:{t.name}"] = {t.name}
            later = {t.name for t in stream[r + 1:]}
            for d in depts:
                if any(t.name in later for t in self.scenario.department(d).tasks):
                    msgs.append(self._eval_message(state, d, r, f"{r}:later"))
            wanted[f"{r}:later"] = later
        self.emit("evaluate_start", round=r, departments=len(msgs))
        # a trained round is finished (evaluated and checkpointed) even after a stop request; a second one ends it
        replies, refused = guarded.send_and_receive(msgs, round_index=r, stoppable=False,
                                                    timeout=self.scenario.federation.evaluate_timeout_s)
        for ref in refused:
            self.emit("evaluate_refused", round=r, department=ref.department, reason=str(ref))
        out: dict[str, float] = {}
        for rep in replies:
            if rep.has_error():
                self.emit("evaluate_failed", round=r, department=self.dept_of.get(rep.metadata.src_node_id),
                          error=_failure(rep, self.dept_of.get(rep.metadata.src_node_id), self.run.root))
                continue
            keep = wanted.get(rep.metadata.group_id)
            for k, v in rep.content.metric_records["dice"].items():
                if "/" not in k and (keep is None or k in keep):
                    out[k] = float(v)
        return out  # tasks absent here stay NaN (missing, never zero)

    def _memorisation_audit(self, guarded: GuardedGrid, state: LearnerState, r: int) -> None:
        """Ask each department to audit the final generator and segmentor on each of its tasks (on its own data);
        store only the returned aggregates in RUN_DIR/memorisation.json."""
        n = self.scenario.privacy.samples
        msgs = []
        for d in self.scenario.departments:
            if d.name in self.excluded:
                continue
            for t in d.tasks:
                content = RecordDict({**state_records(state), "pool": pool_record(state.pool),
                                      "audit": ConfigRecord({"round": r, "task": t.name, "scenario_sha": self.sha,
                                                             "samples": n, SCENARIO_KEY: self.scenario_text})})
                msgs.append((t.name, Message(content, dst_node_id=self.node_of[d.name], message_type="query.audit",
                                             group_id=f"audit-{t.name}")))
        self.emit("audit_start", round=r, tasks=len(msgs))
        results: dict[str, Any] = {}
        for task_name, msg in msgs:  # one at a time: each carries the whole state
            dept = self.scenario.department_of(task_name)
            replies, refused = guarded.send_and_receive([msg], round_index=r,
                                                        timeout=self.scenario.federation.evaluate_timeout_s)
            if refused:
                if self.scenario.federation.on_bad_reply == "exclude":
                    self.excluded.add(dept)
                    self.emit("excluded", round=r, department=dept, reason=str(refused[0]))
                    results[task_name] = {"department": dept, "error": str(refused[0])}
                    continue
                raise PrivacyViolation(str(refused[0]))
            if not replies or replies[0].has_error():
                err = _failure(replies[0], dept, self.run.root) if replies else "no reply"
                results[task_name] = {"department": dept, "error": err}
                continue
            results[task_name] = {"department": dept,
                                  **{k: float(v) for k, v in replies[0].content.metric_records["memorisation"].items()}}
        atomic_write_text(self.run.root / "memorisation.json",
                          json.dumps({"round": r, "samples_per_task": n, "tasks": results}, indent=1))

    def _truncate_rounds(self, completed: int) -> None:
        if not self.run.rounds.exists():
            return
        keep = [row for row in self.run.read_rounds() if row["round"] < completed]
        atomic_write_text(self.run.rounds, "".join(json.dumps(row) + "\n" for row in keep))

    def _rounds_text(self, r: int, task: str, dept: str, metrics: dict[str, float], seconds: float) -> str:
        old = self.run.rounds.read_text() if self.run.rounds.exists() else ""
        # the department's metrics repeat the round as a float: the coordinator's own integer stays
        row = {"round": r, "task": task, "department": dept, "wall_s": round(seconds, 3),
               **{k: v for k, v in metrics.items() if k not in ("round", "task", "department", "wall_s")}}
        return old + json.dumps(row) + "\n"

    def _write_matrix(self, matrix: TrainTestMatrix, upto: int) -> dict[str, Any]:
        atomic_write_text(self.run.matrix_csv, matrix.to_csv())
        atomic_write_text(self.run.matrix_json, json.dumps(matrix.to_json(), indent=1))
        summary = stream_metrics(matrix, upto=upto)
        summary.update({"scenario": self.scenario.name, "method": self.scenario.method,
                        "completed_rounds": upto + 1, "total_rounds": len(matrix.tasks),
                        "excluded_departments": sorted(self.excluded), "warnings": list(self.warnings),
                        "breaks_data_locality": state_breaks_locality(self.scenario)})
        atomic_write_text(self.run.summary, json.dumps(summary, indent=2, allow_nan=False))
        return summary


def _failure(reply: Message, department: str | None = None, run_root: Path | None = None) -> str:
    """An accepted error reply on one line: its declared code in words and, for a department's own failure, the
    file that holds the department's message (DEPT_ROOT/departments/NAME/errors.jsonl on that department's node;
    DEPT_ROOT is the run directory when that node sees it, see department_folder.py)."""
    code = reply_error(reply) or "failed"
    if code.startswith("flower:"):
        return error_text(code)
    where = errors_log_path(run_root if run_root is not None else "RUN_DIR", department or "NAME")
    return f"{describe_code(code)}; the department's own message is in {where} on its node"


def department_error(reason: str) -> str:
    """The department's own message out of Flower's error reason ("<class '...ClientAppException'>:<'Exception
    ClientAppException occurred. Message: MESSAGE'>"), on one line; the full reason is in the run's log."""
    text = reason.strip()
    marker = "occurred. Message:"
    if marker in text:
        text = text.split(marker, 1)[1].strip()
        if text.endswith("'>"):
            text = text[:-2]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " ".join(lines) if len(lines) <= 3 else lines[-1]


def _bank_from_arrays(arrays: dict[str, dict], extra: dict[str, Any]) -> dict[str, tuple[dict, dict]]:
    """IndividualTrain's per-task models from a checkpoint (records named bank:<task>:<record>)."""
    bank: dict[str, tuple[dict, dict]] = {}
    for key, arrs in arrays.items():
        if key.startswith("bank:"):
            _, name, rec = key.split(":", 2)
            bank.setdefault(name, ({}, extra.get("bank_pools", {}).get(name, {})))[0][rec] = arrs
    return bank


def state_breaks_locality(scenario: Scenario) -> bool:
    from ..learning import method_spec

    return method_spec(scenario.method).breaks_locality


def nan_to_none(x: float) -> float | None:
    return None if math.isnan(x) else x
