"""Task descriptors: the three prompt attributes of a task (plus its site) and the task's text prompt."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the scenario schema is only needed for from_task; keep prompts a leaf at import time
    from c2gr_fed.scenario.schema import TaskSpec

ATTRIBUTES = ("modality", "region", "objective")
"""The prompt attributes that span the RUPS subgraphs (paper: imaging modality, anatomical region, objective)."""

MAX_TEXT = 160
"""Longest descriptor string accepted (the schema allows at most 120; the wire refuses anything longer)."""


@dataclass(frozen=True)
class TaskDescriptor:
    """What a task is, as far as prompts are concerned. Equal descriptors give equal prompts."""

    name: str
    modality: str
    site: str | None
    region: str
    objective: str
    num_classes: int

    def __post_init__(self) -> None:
        for field in ("name", "modality", "region", "objective"):
            v = getattr(self, field)
            if not isinstance(v, str) or not v.strip():
                raise ValueError(f"task descriptor field {field!r} must be a non-empty string, got {v!r}")
            if len(v) > MAX_TEXT:
                raise ValueError(f"task descriptor field {field!r} is longer than {MAX_TEXT} characters: {v[:40]!r}...")
        if self.site is not None:
            if not isinstance(self.site, str):
                raise ValueError(f"task descriptor field 'site' must be a string or None, got {self.site!r}")
            if len(self.site) > MAX_TEXT:
                raise ValueError(f"task descriptor field 'site' is longer than {MAX_TEXT} characters")
            if not self.site.strip():  # "" and None mean the same thing (the wire carries None as "")
                object.__setattr__(self, "site", None)
        if isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int) or self.num_classes < 1:
            raise ValueError(f"task descriptor field 'num_classes' must be an int >= 1, got {self.num_classes!r}")

    @classmethod
    def from_task(cls, task: "TaskSpec") -> "TaskDescriptor":
        return cls(
            name=task.name,
            modality=task.modality,
            site=task.site,
            region=task.region,
            objective=task.objective,
            num_classes=len(task.classes),
        )

    def text(self) -> str:
        """The paper's template "A [modality] image of [region] for [objective]", with the site when set."""
        if self.site:
            return f"A {self.modality} image from {self.site} of {self.region} for {self.objective}"
        return f"A {self.modality} image of {self.region} for {self.objective}"

    def attribute_text(self, attribute: str) -> str:
        """The text encoded alone for one attribute. The site belongs to the modality attribute
        ("colour fundus photograph Aravind Eye Hospital"): it is an acquisition property (device, vendor,
        sequence), so same-modality tasks from different sites are close but not identical along modality."""
        if attribute == "modality":
            return f"{self.modality} {self.site}" if self.site else self.modality
        if attribute == "region":
            return self.region
        if attribute == "objective":
            return self.objective
        raise KeyError(f"unknown prompt attribute {attribute!r}; attributes are {ATTRIBUTES}")
