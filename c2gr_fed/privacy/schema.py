"""The declared wire schema: every record, array, config key and metric key a message may carry.

One place owns these names. The coordinator and every department check each message against it before
using it; the audit re-checks the transfer log against it afterwards.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from ..learning.round_metrics import PER_TASK_ROUND_METRICS, ROUND_METRIC_KEYS
from .metric_rules import rule_for
from .redact import as_logged, declared_or_redacted, redacted
from .wire import ArrayInfo, MessageInfo, RecordInfo

MAX_STRING = 160
"""Longest string allowed anywhere on the wire (task descriptors), except the scenario text."""
MAX_SCENARIO_CHARS = 1_000_000
"""Longest scenario text a request may carry (config key `scenario`: the resolved scenario's canonical JSON)."""
OPTIONAL_CONFIG_KEYS = {"discover": {"scenario"}, "train": {"scenario"}, "evaluate": {"scenario"},
                        "audit": {"scenario"}, "identity": {"data_ready"}}
"""Declared keys a record may leave out: without `scenario` a department reads the scenario file its settings name;
without `data_ready` the coordinator takes the department's data as readable."""

# the round metrics are named once, by what the round reports (c2gr_fed.learning.round_metrics.RoundMetrics)
MEMORISATION_METRIC_KEYS = (
    # generator memorisation (c2gr_fed.privacy.memorisation): pixel space = image, mask code and the pair
    "samples", "train_cases", "heldout_cases", "nn_ratio_fraction", "nn_ratio_threshold",
    "extraction_fraction", "extraction_threshold", "extraction_fraction_mask", "extraction_threshold_mask",
    "extraction_fraction_pair", "extraction_threshold_pair", "extraction_score_min",
    "pixel_d_train_median", "pixel_d_heldout_median", "feature_d_train_median", "feature_d_heldout_median",
    "feature_copy_fraction", "feature_copy_threshold", "flagged",
    # segmentor membership inference (c2gr_fed.privacy.membership): loss-threshold attack
    "mia_auc", "mia_tpr_at_1fpr", "mia_tpr_at_0.1fpr", "mia_loss_train_mean", "mia_loss_heldout_mean",
)
"""The only numbers a department returns for a memorisation audit: aggregates, never samples or distances."""
ARRAY_HEADER_BYTES = 256
"""Serialised arrays carry a small header (numpy .npy); more bytes than shape x itemsize + this is refused."""
MESSAGE_TYPES = ("query.discover", "train", "evaluate", "query.audit")
"""The only message types, in both directions; a reply's type must equal its request's, byte for byte."""
RECORD_NAMES = ("segmentor", "prompts", "denoiser", "extras", "bank", "pool", "train", "evaluate", "discover",
                "audit", "identity", "round_metrics", "dice", "memorisation")
"""Every record name the wire knows (what the log may name as it is)."""
POOL_COLUMNS: dict[str, type] = {
    "names": str, "modalities": str, "sites": str, "regions": str, "objectives": str, "num_classes": int,
}


@dataclass
class Violation:
    field: str
    problem: str

    def __str__(self) -> str:
        return f"{self.field}: {self.problem}"


@dataclass
class WireSchema:
    """Built from the scenario: array shapes of the method's state, task names, departments."""

    arrays: dict[str, dict[str, tuple[tuple[int, ...], str]]]
    task_names: list[str]
    department_tasks: dict[str, list[str]]
    max_classes: int
    optional_arrays: set[str] = field(default_factory=lambda: {"extras", "bank"})
    """Records a state message may carry or not, and carry in part: EWC's extras; the generator bank, which
    holds only the tasks learned so far (every array present is still checked against its declaration)."""
    pool_values: dict[str, set[str]] | None = None
    """Pool column -> the only strings it may hold (the scenario's task descriptors). None: alphabet + length only.
    With it, no free text crosses the wire: every string is one the scenario already declares."""
    scenario_sha: str | None = None
    """The run's scenario hash: with it, every scenario_sha config value must equal it."""
    scenario_text: str | None = None
    """The run's scenario as canonical JSON (with scenario_sha): every `scenario` config value must be exactly it."""
    pool_rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    """task -> its declared prompt-pool row (one value per pool column): what a train reply appends."""

    def pool_after(self, sent: dict[str, Any], task: str) -> dict[str, list[Any]] | None:
        """The pool a train reply must return: the request's pool, plus `task`'s declared row unless present."""
        row = self.pool_rows.get(task)
        if row is None:
            return None
        columns = {c: list(sent.get(c, [])) for c in POOL_COLUMNS}
        if task not in columns["names"]:
            for c in POOL_COLUMNS:
                columns[c].append(row[c])
        return columns

    # ------------------------------------------------------------------ expected record layouts

    def _state_records(self, with_denoiser: bool = True) -> dict[str, str]:
        recs = {name: "arrays" for name in self.arrays if name not in self.optional_arrays}
        if not with_denoiser:
            recs.pop("denoiser", None)
        return recs

    def expected(self, message_type: str, reply: bool, department: str | None) -> dict[str, str]:
        """record name -> kind, for a message type and direction."""
        if message_type not in MESSAGE_TYPES:
            raise KeyError(f"undeclared message type {redacted(message_type)}; declared: {list(MESSAGE_TYPES)}")
        base = message_type
        if message_type == "query.discover":
            return {"identity": "config"} if reply else {"discover": "config"}
        if base == "train":
            recs = self._state_records()
            recs["pool"] = "config"
            recs["round_metrics" if reply else "train"] = "metrics" if reply else "config"
            return recs
        if base == "evaluate":
            if reply:
                return {"dice": "metrics"}
            return {"segmentor": "arrays", "prompts": "arrays", "pool": "config", "evaluate": "config"}
        if message_type == "query.audit":
            if reply:
                return {"memorisation": "metrics"}
            recs = self._state_records()
            recs["pool"] = "config"
            recs["audit"] = "config"
            return recs
        raise KeyError(f"undeclared message type {redacted(message_type)}")  # pragma: no cover

    def metric_keys(self, record: str, department: str | None) -> set[str] | None:
        if record == "round_metrics":
            return set(ROUND_METRIC_KEYS) | {f"{m}/{t}" for m in PER_TASK_ROUND_METRICS for t in self.task_names}
        if record == "memorisation":
            return set(MEMORISATION_METRIC_KEYS)
        if record == "dice":
            tasks = self.department_tasks.get(department or "", self.task_names)
            keys = set()
            for t in tasks:
                keys.add(t)
                keys.update(f"{t}/class{k}" for k in range(1, self.max_classes + 1))
            return keys
        return None

    def config_keys(self, record: str) -> dict[str, Any] | None:
        if record == "pool":
            return {k: ("list", v) for k, v in POOL_COLUMNS.items()}
        # `scenario`: the resolved scenario's canonical JSON, configuration that departments need no file for
        scenario = {"scenario_sha": ("hex", str), "scenario": ("scenario", str)}
        if record == "train":
            return {"round": int, "task": ("task", str), "seed": int, **scenario}
        if record == "evaluate":
            return {"round": int, **scenario}
        if record == "discover":
            return {"protocol": int, **scenario}
        if record == "identity":  # data_ready: 1 when the department could open its data folders on its node
            return {"department": ("department", str), "scenario_sha": ("hex", str), "data_ready": ("flag", int)}
        if record == "audit":
            return {"round": int, "task": ("task", str), "samples": int, **scenario}
        return None

    # ------------------------------------------------------------------ the check

    def check(self, info: MessageInfo, reply: bool, department: str | None) -> list[Violation]:
        """Check one live message (names, shapes, dtypes, byte counts and the config and metric values)."""
        if info.error is not None:
            return []  # an error reply carries no content; the caller handles it

        def content(name: str, kind: str) -> list[Violation]:
            rec = info.records[name]
            if kind == "arrays":
                return self._check_arrays(name, rec.arrays)
            if kind == "metrics":
                return self._check_metrics(name, rec.items, department)
            return self._check_config(name, rec.items)

        kinds = {name: rec.kind for name, rec in info.records.items()}
        return self._check_records(info.message_type, reply, department, kinds, redacted_name=declared_or_redacted,
                                   content=content)

    def _check_records(self, message_type: str, reply: bool, department: str | None, kinds: dict[str, Any],
                       redacted_name: Callable[[str, Any], str], content: Callable[[str, str], list[Violation]]
                       ) -> list[Violation]:
        """The record-level rules shared by the live and the logged check: every record is declared for this message
        type and direction (optional arrays only beside the segmentor of a train or audit message), has its declared
        kind, and no declared record is missing. `kinds` maps each record name to its kind; `content` checks the
        content of a record that passed."""
        try:
            expected = self.expected(message_type, reply, department)
        except KeyError as exc:
            return [Violation("message_type", str(exc.args[0]))]
        allowed_optional = {n for n in self.optional_arrays if n in self.arrays}
        out: list[Violation] = []
        for name, kind in kinds.items():
            optional_here = name in allowed_optional and kind == "arrays" and "segmentor" in expected and (
                message_type in ("train", "query.audit"))
            if name not in expected and not optional_here:
                out.append(Violation(f"record {redacted_name(name, RECORD_NAMES)}", f"not declared for {message_type} "
                                     f"({'reply' if reply else 'request'}); declared: {sorted(expected)}"))
                continue
            want = expected.get(name, "arrays")
            if kind != want:
                out.append(Violation(f"record {name!r}", f"is a {kind} record, declared {want}"))
                continue
            out.extend(content(name, kind))
        for name in expected:
            if name not in kinds:
                out.append(Violation(f"record {name!r}", "declared but missing"))
        return out

    def _check_arrays(self, record: str, arrays: list, logged: bool = False) -> list[Violation]:
        declared = self.arrays.get(record, {})
        out: list[Violation] = []
        seen = set()
        order = {n: i for i, n in enumerate(declared)}
        last = -1
        for a in arrays:
            seen.add(a.name)
            if a.name not in declared:
                name = as_logged(a.name, ()) if logged else redacted(a.name)
                out.append(Violation(f"{record}.{name}", f"undeclared array ({a.nbytes} bytes)"))
                continue
            if order[a.name] < last:
                out.append(Violation(f"{record}.{a.name}", "out of the declared order (the order is fixed)"))
            last = max(last, order[a.name])
            shape, dtype = declared[a.name]
            if not isinstance(a.shape, (tuple, list)) or tuple(a.shape) != tuple(shape):
                out.append(Violation(f"{record}.{a.name}", f"shape {_shape_text(a.shape)} differs from the declared {list(shape)}"))
            if a.dtype != dtype:
                out.append(Violation(f"{record}.{a.name}", f"dtype {redacted(a.dtype)} differs from the declared {dtype}"))
            if not a.parsed:
                out.append(Violation(f"{record}.{a.name}", f"bytes are not the canonical .npy serialisation of "
                                     f"{dtype} x {list(shape)} with stype numpy.ndarray ({a.problem or 'logged as unparsed'})"))
            limit = _itemsize(dtype) * _prod(shape) + ARRAY_HEADER_BYTES
            if a.nbytes > limit:
                out.append(Violation(f"{record}.{a.name}", f"carries {a.nbytes} bytes, more than its declared shape "
                                     f"{list(shape)} x {dtype} allows ({limit} with header)"))
        if record not in self.optional_arrays:
            missing = sorted(set(declared) - seen)
            if missing:
                out.append(Violation(record, f"declared arrays missing: {missing[:5]}{'...' if len(missing) > 5 else ''}"))
        return out

    def _check_metrics(self, record: str, items: dict[str, Any], department: str | None) -> list[Violation]:
        allowed = self.metric_keys(record, department) or set()
        out = []
        for k, v in items.items():
            if k not in allowed:
                out.append(Violation(f"{record}.{redacted(k)}", "undeclared metric key"))
                continue
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                out.append(Violation(f"{record}.{k}", f"metric must be a number, got {type(v).__name__}"))
                continue
            rule = rule_for(record, k)
            problem = "no declared range" if rule is None else rule.problem(float(v))
            if problem:
                out.append(Violation(f"{record}.{k}", problem))
        return out

    def _check_config(self, record: str, items: dict[str, Any]) -> list[Violation]:
        declared = self.config_keys(record)
        if declared is None:
            return [Violation(record, "undeclared config record")]
        out = []
        for k, v in items.items():
            if k not in declared:
                out.append(Violation(f"{record}.{redacted(k)}", f"undeclared config key (value of type "
                                     f"{type(v).__name__}, {len(v) if hasattr(v, '__len__') else 1} long)"))
                continue
            rule = declared[k]
            out.extend(self._check_value(f"{record}.{k}", v, rule))
        for k in declared:
            if k not in items and k not in OPTIONAL_CONFIG_KEYS.get(record, set()):
                out.append(Violation(f"{record}.{k}", "declared config key missing"))
        text, sha = items.get("scenario"), items.get("scenario_sha")
        if isinstance(text, str) and isinstance(sha, str) and hashlib.sha256(text.encode()).hexdigest() != sha:
            out.append(Violation(f"{record}.scenario", "is not the scenario that scenario_sha names"))
        return out

    def _check_value(self, path: str, v: Any, rule: Any) -> list[Violation]:
        if rule == ("flag", int):
            if isinstance(v, bool) or v not in (0, 1):
                return [Violation(path, "expected 0 or 1")]
            return []
        if rule == ("scenario", str):
            if not isinstance(v, str):
                return [Violation(path, f"expected a string, got {type(v).__name__}")]
            if len(v) > MAX_SCENARIO_CHARS:
                return [Violation(path, f"scenario text of {len(v)} characters exceeds the limit of {MAX_SCENARIO_CHARS}")]
            if self.scenario_text is not None and v != self.scenario_text:
                return [Violation(path, "is not this run's scenario")]
            return []
        if rule is int:
            if isinstance(v, bool) or not isinstance(v, int):
                return [Violation(path, f"expected an integer, got {type(v).__name__}")]
            return []
        if isinstance(rule, tuple) and rule[0] == "list":
            if not isinstance(v, list):
                return [Violation(path, f"expected a list of {rule[1].__name__}, got {type(v).__name__}")]
            if len(v) > len(self.task_names) + 1:
                return [Violation(path, f"list of {len(v)} items is longer than the stream ({len(self.task_names)} tasks)")]
            out = []
            item_rule = int if rule[1] is int else (("task", str) if path.endswith(".names") else ("text", str))
            for i, item in enumerate(v):
                out.extend(self._check_value(f"{path}[{i}]", item, item_rule))
            return out
        kind = rule[0] if isinstance(rule, tuple) else "text"
        if not isinstance(v, str):
            return [Violation(path, f"expected a string, got {type(v).__name__}")]
        if len(v) > MAX_STRING:
            return [Violation(path, f"string of {len(v)} characters exceeds the limit of {MAX_STRING}")]
        if kind == "task" and v not in self.task_names:
            return [Violation(path, f"{redacted(v)} is not a task of this scenario")]
        if kind == "department" and v not in self.department_tasks:
            return [Violation(path, f"{redacted(v)} is not a department of this scenario")]
        if kind == "hex" and not re.fullmatch(r"[0-9a-f]{64}", v):
            return [Violation(path, "expected a 64-character hex digest")]
        if kind == "hex" and self.scenario_sha is not None and v != self.scenario_sha:
            return [Violation(path, "is not this run's scenario hash")]
        column = _pool_column(path)
        if column is not None and self.pool_values is not None and v not in self.pool_values.get(column, set()):
            return [Violation(path, f"string of {len(v)} characters is not one of the scenario's task descriptors")]
        if kind == "text" and not re.fullmatch(r"[\w .,&+()/'-]*", v):
            return [Violation(path, "contains characters outside the descriptor alphabet (letters, digits, spaces, .,&+()/'-)")]
        return []

    # ------------------------------------------------------------------ the same check on a logged summary

    def check_logged(self, entry: dict[str, Any], reply: bool, department: str | None) -> list[Violation]:
        """Re-check one transfer-log entry (names, shapes, dtypes, byte counts; config values only as
        type, length and short hash) against this schema. Used by `c2gr-fed audit`."""
        if entry.get("error"):
            return []
        recs = entry.get("records") or {}

        def content(name: str, kind: str) -> list[Violation]:
            rec = recs[name]
            if kind == "arrays":
                return self._check_logged_arrays(name, rec)
            if kind == "metrics":
                allowed = self.metric_keys(name, department)
                out = []
                for k, d in (rec.get("keys") or {}).items():
                    if allowed is not None and k not in allowed:
                        out.append(Violation(f"{name}.{as_logged(k, ())}", "undeclared metric key"))
                    if d.get("type") not in ("int", "float"):
                        out.append(Violation(f"{name}.{k}", f"metric must be a number, got {d.get('type')}"))
                return out
            return self._check_logged_config(name, rec.get("keys") or {})

        kinds = {name: rec.get("kind") for name, rec in recs.items()}
        return self._check_records(str(entry.get("message_type")), reply, department, kinds, redacted_name=as_logged,
                                   content=content)

    def _check_logged_arrays(self, name: str, rec: dict[str, Any]) -> list[Violation]:
        try:
            arrays = [ArrayInfo(str(a[0]), tuple(int(x) for x in a[1]) if isinstance(a[1], list) else
                                str(a[1]), str(a[2]), int(a[3]), str(a[4]),
                                len(a) > 5 and a[5] is True, None if len(a) > 5 else
                                "the log predates parsed arrays")
                      for a in rec.get("arrays", [])]
        except (TypeError, ValueError, IndexError):
            return [Violation(f"record {name!r}", "array list is malformed in the log")]
        out = self._check_arrays(name, arrays, logged=True)
        total = sum(a.nbytes for a in arrays)
        if rec.get("bytes") != total:
            out.append(Violation(f"record {name!r}", f"logged {rec.get('bytes')} bytes but its arrays add up to {total}"))
        return out

    def _check_logged_config(self, record: str, keys: dict[str, dict[str, Any]]) -> list[Violation]:
        declared = self.config_keys(record)
        if declared is None:
            return [Violation(record, "undeclared config record")]
        out: list[Violation] = []
        for k, d in keys.items():
            path = f"{record}.{k}"
            if k not in declared:
                out.append(Violation(f"{record}.{as_logged(k, ())}", f"undeclared config key (value of type "
                                     f"{as_logged(d.get('type'), ('int', 'float', 'str', 'bytes', 'bool'))})"))
                continue
            rule = declared[k]
            typ = str(d.get("type"))
            if rule == ("scenario", str):
                if typ != "str":
                    out.append(Violation(path, f"expected a string, got {typ}"))
                elif int(d.get("len", 0)) > MAX_SCENARIO_CHARS:
                    out.append(Violation(path, f"scenario text of {d.get('len')} characters exceeds the limit of "
                                         f"{MAX_SCENARIO_CHARS}"))
                elif self.scenario_text is not None and d.get("sha256") != value_hash(self.scenario_text):
                    out.append(Violation(path, f"value (hash {str(d.get('sha256'))[:8]}) is not this run's scenario"))
                continue
            if rule is int or rule == ("flag", int):
                if typ != "int":
                    out.append(Violation(path, f"expected an integer, got {typ}"))
                continue
            if isinstance(rule, tuple) and rule[0] == "list":
                item = rule[1].__name__
                if typ not in (f"list[{item}]", "list[empty]"):
                    out.append(Violation(path, f"expected a list of {item}, got {typ}"))
                    continue
                if int(d.get("len", 0)) > len(self.task_names) + 1:
                    out.append(Violation(path, f"list of {d.get('len')} items is longer than the stream ({len(self.task_names)} tasks)"))
                if item == "str":
                    if int(d.get("max_len", 0)) > MAX_STRING:
                        out.append(Violation(path, f"an item of {d.get('max_len')} characters exceeds the limit of {MAX_STRING}"))
                    col = "names" if k == "names" else k
                    allowed = self._allowed_hashes(("task", str) if k == "names" else ("pool", col))
                    items = d.get("items")
                    if allowed is not None and items is not None:
                        bad = [i for i, h in enumerate(items) if h not in allowed]
                        if bad:
                            out.append(Violation(f"{path}[{bad[0]}]", f"{len(bad)} item(s) are not among the scenario's "
                                                 "declared values (hash mismatch)"))
                continue
            if typ != "str":
                out.append(Violation(path, f"expected a string, got {typ}"))
                continue
            if int(d.get("len", 0)) > MAX_STRING:
                out.append(Violation(path, f"string of {d.get('len')} characters exceeds the limit of {MAX_STRING}"))
                continue
            allowed = self._allowed_hashes(rule)
            if allowed is not None and d.get("sha256") not in allowed:
                out.append(Violation(path, f"value (hash {str(d.get('sha256'))[:8]}) is not one this scenario declares"))
        for k in declared:
            if k not in keys and k not in OPTIONAL_CONFIG_KEYS.get(record, set()):
                out.append(Violation(f"{record}.{k}", "declared config key missing"))
        return out

    # ------------------------------------------------------------------ what the log may hold

    def log_form(self, info: MessageInfo, reply: bool, department: str | None) -> dict[str, Any]:
        """`info.summary()` with every name, label and text the schema does not declare replaced by its length
        and hash (redact): a refused message leaves nothing verbatim in the log. Values are hashed anyway."""
        message_type = declared_or_redacted(info.message_type, MESSAGE_TYPES)
        records: dict[str, RecordInfo] = {}
        for name, rec in info.records.items():
            safe = declared_or_redacted(name, RECORD_NAMES)
            if rec.kind == "arrays":
                declared = self.arrays.get(name, {})
                arrays = []
                for a in rec.arrays:
                    shape, dtype = declared.get(a.name, ((), ""))
                    ok = a.name in declared
                    arrays.append(ArrayInfo(a.name if ok else redacted(a.name),
                                            a.shape if ok and tuple(a.shape) == tuple(shape) else _shape_text(a.shape),
                                            a.dtype if ok and a.dtype == dtype else redacted(a.dtype),
                                            a.nbytes, a.sha256, a.parsed))
                records[safe] = RecordInfo("arrays", arrays=arrays)
            else:
                keys = (self.metric_keys(name, department) if rec.kind == "metrics" else
                        set(self.config_keys(name) or {})) or set()
                records[safe] = RecordInfo(rec.kind, items={declared_or_redacted(k, keys): v for k, v in rec.items.items()})
        return MessageInfo(message_type, records).summary()

    def _allowed_hashes(self, rule: Any) -> set[str] | None:
        kind = rule[0] if isinstance(rule, tuple) else None
        if kind == "task":
            return {value_hash(t) for t in self.task_names}
        if kind == "department":
            return {value_hash(d) for d in self.department_tasks}
        if kind == "hex":
            return {value_hash(self.scenario_sha)} if self.scenario_sha else None
        if kind == "pool" and self.pool_values is not None:
            return {value_hash(v) for v in self.pool_values.get(rule[1], set())}
        return None


# ---------------------------------------------------------------------------------------------- helpers


def _shape_text(shape: object) -> str:
    """A shape for an error text: its rank and a hash, never the numbers a sender chose."""
    if isinstance(shape, (tuple, list)):
        return f"of {len(shape)} dimension(s) {redacted(list(shape))}"
    return redacted(shape)


def _prod(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _itemsize(dtype: str) -> int:
    import numpy as np

    try:
        return int(np.dtype(dtype).itemsize)
    except TypeError:
        return 8


def _pool_column(path: str) -> str | None:
    """'pool.modalities[2]' -> 'modalities'; other paths -> None."""
    m = re.fullmatch(r"pool\.(\w+)\[\d+\]", path)
    return m.group(1) if m else None


def value_hash(v: Any) -> str:
    """The short hash the transfer log stores for a config value (see wire._describe)."""
    from .wire import _describe

    return _describe(v)["sha256"]


def schema_for_scenario(scenario: Any, pin_sha: bool = False) -> WireSchema:
    """The declared wire schema of a resolved scenario: used by the coordinator, the departments and the audit.

    pin_sha: also require every scenario_sha value to be this scenario's (the audit; live, a mismatch is
    reported by the federation layer with its own clearer message)."""
    import hashlib
    import json

    from ..learning import wire_schema
    from ..prompts import PromptPool, TaskDescriptor

    pool = PromptPool()
    for t in scenario.stream():
        pool.add(TaskDescriptor.from_task(t))
    columns = pool.to_wire()
    sha = hashlib.sha256(json.dumps(scenario.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()
    return WireSchema(
        arrays=wire_schema(scenario),
        task_names=[t.name for t in scenario.stream()],
        department_tasks={d.name: [t.name for t in d.tasks] for d in scenario.departments},
        max_classes=scenario.model.max_classes,
        pool_values={c: {str(x) for x in v} for c, v in columns.items() if c in POOL_COLUMNS and POOL_COLUMNS[c] is str},
        scenario_sha=sha if pin_sha else None,
        scenario_text=json.dumps(scenario.model_dump(mode="json"), sort_keys=True) if pin_sha else None,
        pool_rows={name: {c: columns[c][i] for c in POOL_COLUMNS} for i, name in enumerate(columns["names"])},
    )
