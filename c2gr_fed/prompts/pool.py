"""The prompt pool (learned tasks in arrival order), its wire form, and its frozen text embeddings."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from c2gr_fed.prompts.descriptors import ATTRIBUTES, MAX_TEXT, TaskDescriptor

if TYPE_CHECKING:
    from c2gr_fed.text.encoders import TextEncoder

WIRE_STR_COLUMNS = ("names", "modalities", "sites", "regions", "objectives")
WIRE_INT_COLUMNS = ("num_classes",)
WIRE_COLUMNS = WIRE_STR_COLUMNS + WIRE_INT_COLUMNS
MAX_POOL = 4096


class PromptPool:
    """Ordered, append-only list of task descriptors: the tasks learned so far, in arrival order.

    A task's index in the pool is its row in every prompt tensor, and never changes once assigned.
    """

    def __init__(self, descriptors: list[TaskDescriptor] | tuple[TaskDescriptor, ...] = ()) -> None:
        self._items: list[TaskDescriptor] = []
        self._index: dict[str, int] = {}
        for d in descriptors:
            self.add(d)

    def add(self, desc: TaskDescriptor) -> int:
        """Append a task and return its index. Re-adding an identical descriptor returns the existing index;
        the same name with different fields is a ValueError (a task's prompt must not change under it)."""
        if not isinstance(desc, TaskDescriptor):
            raise TypeError(f"PromptPool.add takes a TaskDescriptor, got {type(desc).__name__}")
        i = self._index.get(desc.name)
        if i is not None:
            if self._items[i] != desc:
                raise ValueError(
                    f"task {desc.name!r} is already in the prompt pool with different fields: "
                    f"{self._items[i]} vs {desc}"
                )
            return i
        if len(self._items) >= MAX_POOL:
            raise ValueError(f"prompt pool is full ({MAX_POOL} tasks)")
        self._items.append(desc)
        self._index[desc.name] = len(self._items) - 1
        return len(self._items) - 1

    def index(self, name: str) -> int:
        try:
            return self._index[name]
        except KeyError:
            raise KeyError(f"task {name!r} is not in the prompt pool; pool: {self.names}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._index

    @property
    def names(self) -> list[str]:
        return [d.name for d in self._items]

    @property
    def descriptors(self) -> tuple[TaskDescriptor, ...]:
        return tuple(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[TaskDescriptor]:
        return iter(tuple(self._items))

    def __getitem__(self, i: int) -> TaskDescriptor:
        return self._items[i]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PromptPool) and self._items == other._items

    def __repr__(self) -> str:
        return f"PromptPool({self.names})"

    def copy(self) -> "PromptPool":
        return PromptPool(self._items)

    # ---- wire form: flat columns of str / int only (a Flower ConfigRecord holds nothing else) ----

    def to_wire(self) -> dict[str, list[str] | list[int]]:
        return {
            "names": [d.name for d in self._items],
            "modalities": [d.modality for d in self._items],
            "sites": [d.site or "" for d in self._items],
            "regions": [d.region for d in self._items],
            "objectives": [d.objective for d in self._items],
            "num_classes": [int(d.num_classes) for d in self._items],
        }

    @classmethod
    def from_wire(cls, d: Mapping) -> "PromptPool":
        """Rebuild a pool from its wire columns, refusing anything that is not exactly the declared form."""
        if not isinstance(d, Mapping):
            raise ValueError(f"prompt pool wire data must be a mapping of columns, got {type(d).__name__}")
        missing = [c for c in WIRE_COLUMNS if c not in d]
        if missing:
            raise ValueError(f"prompt pool wire data lacks column(s) {missing}")
        extra = sorted(str(k) for k in d if k not in WIRE_COLUMNS)
        if extra:
            raise ValueError(f"prompt pool wire data has unknown column(s) {extra}; columns are {list(WIRE_COLUMNS)}")
        cols: dict[str, list] = {}
        for c in WIRE_COLUMNS:
            v = d[c]
            if not isinstance(v, (list, tuple)):
                raise ValueError(f"prompt pool wire column {c!r} must be a list, got {type(v).__name__}")
            v = list(v)
            if len(v) > MAX_POOL:
                raise ValueError(f"prompt pool wire column {c!r} has {len(v)} entries (at most {MAX_POOL})")
            for i, x in enumerate(v):
                if c in WIRE_STR_COLUMNS:
                    if not isinstance(x, str):
                        raise ValueError(f"prompt pool wire {c}[{i}] must be a str, got {type(x).__name__}: {x!r}")
                    if len(x) > MAX_TEXT:
                        raise ValueError(f"prompt pool wire {c}[{i}] is longer than {MAX_TEXT} characters")
                    if c != "sites" and not x.strip():
                        raise ValueError(f"prompt pool wire {c}[{i}] is empty")
                else:
                    if isinstance(x, bool) or not isinstance(x, int):
                        raise ValueError(f"prompt pool wire {c}[{i}] must be an int, got {type(x).__name__}: {x!r}")
                    if not 1 <= x <= 1024:
                        raise ValueError(f"prompt pool wire {c}[{i}] must be in 1..1024, got {x}")
            cols[c] = v
        lengths = {c: len(v) for c, v in cols.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"prompt pool wire columns have unequal lengths {lengths}")
        names = cols["names"]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"prompt pool wire column 'names' repeats {dup}")
        pool = cls()
        for i in range(len(names)):
            pool.add(
                TaskDescriptor(
                    name=names[i],
                    modality=cols["modalities"][i],
                    site=cols["sites"][i] or None,
                    region=cols["regions"][i],
                    objective=cols["objectives"][i],
                    num_classes=cols["num_classes"][i],
                )
            )
        return pool


# ---------------------------------------------------------------------------------------------- embeddings


@dataclass
class PoolEmbeddings:
    """Frozen text embeddings of a pool: the full prompt of each task and each attribute encoded alone.

    ``full``: (N, E); ``attributes[a]``: (N, E) for a in ATTRIBUTES. Rows follow the pool order.
    """

    full: torch.Tensor
    attributes: dict[str, torch.Tensor]
    names: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        missing = [a for a in ATTRIBUTES if a not in self.attributes]
        if missing:
            raise ValueError(f"PoolEmbeddings lacks attribute embeddings {missing}")
        for a in ATTRIBUTES:
            if self.attributes[a].shape != self.full.shape:
                raise ValueError(
                    f"attribute {a!r} embeddings have shape {tuple(self.attributes[a].shape)}, "
                    f"full embeddings {tuple(self.full.shape)}"
                )

    def __len__(self) -> int:
        return int(self.full.shape[0])

    def to(self, *args, **kwargs) -> "PoolEmbeddings":
        return PoolEmbeddings(
            self.full.to(*args, **kwargs), {k: v.to(*args, **kwargs) for k, v in self.attributes.items()}, self.names
        )

    def subset(self, rows) -> "PoolEmbeddings":
        """Rows of the pool (a slice, index list or tensor), e.g. the first n tasks."""
        names = self.names
        if names and isinstance(rows, slice):
            names = names[rows]
        elif names:
            names = tuple(names[int(i)] for i in rows)
        return PoolEmbeddings(self.full[rows], {k: v[rows] for k, v in self.attributes.items()}, names)


_EMB_CACHE: "weakref.WeakKeyDictionary[object, dict[str, torch.Tensor]]" = weakref.WeakKeyDictionary()
_EMB_FALLBACK: dict[int, dict[str, torch.Tensor]] = {}
_EMB_LOCK = threading.Lock()


def _memo_for(encoder) -> dict[str, torch.Tensor]:
    try:
        memo = _EMB_CACHE.get(encoder)
        if memo is None:
            memo = _EMB_CACHE[encoder] = {}
    except TypeError:  # not weak-referenceable
        memo = _EMB_FALLBACK.setdefault(id(encoder), {})
    return memo


def embed_pool(pool: PromptPool, encoder: "TextEncoder") -> PoolEmbeddings:
    """Encode every task's full prompt and its attributes; texts are memoised per encoder in this process."""
    texts = {"full": [d.text() for d in pool]}
    for a in ATTRIBUTES:
        texts[a] = [d.attribute_text(a) for d in pool]
    with _EMB_LOCK:
        memo = _memo_for(encoder)
        todo = list(dict.fromkeys(t for col in texts.values() for t in col if t not in memo))
        if todo:
            vecs = encoder.encode(todo)
            if vecs.shape != (len(todo), encoder.dim):
                raise RuntimeError(
                    f"text encoder {encoder.name!r} returned shape {tuple(vecs.shape)} for {len(todo)} texts "
                    f"(expected ({len(todo)}, {encoder.dim}))"
                )
            vecs = vecs.detach().to("cpu", torch.float32)
            for t, v in zip(todo, vecs):
                memo[t] = v.clone()

        def stack(col: list[str]) -> torch.Tensor:
            if not col:
                return torch.zeros(0, encoder.dim, dtype=torch.float32)
            return torch.stack([memo[t] for t in col])

        return PoolEmbeddings(
            full=stack(texts["full"]),
            attributes={a: stack(texts[a]) for a in ATTRIBUTES},
            names=tuple(pool.names),
        )
