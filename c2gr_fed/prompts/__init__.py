"""Task descriptors, the prompt pool, and the prompt modules (RUPS graph, or plain projections)."""

from __future__ import annotations

from typing import Literal

from torch import nn

from c2gr_fed.prompts.descriptors import ATTRIBUTES, TaskDescriptor
from c2gr_fed.prompts.graph import SUBGRAPHS, PromptTokens, RUPSPromptGraph, attribute_cosines
from c2gr_fed.prompts.plain import PlainPrompts
from c2gr_fed.prompts.pool import PoolEmbeddings, PromptPool, embed_pool


def build_prompt_module(kind: Literal["rups", "plain"], text_dim: int, cfg) -> nn.Module:
    """``rups``: the relation-aware graph with one unified prompt; ``plain``: the w/o-RUPS ablation."""
    if kind == "rups":
        return RUPSPromptGraph(text_dim, cfg)
    if kind == "plain":
        return PlainPrompts(text_dim, cfg)
    raise ValueError(f"unknown prompt module kind {kind!r}; kinds: 'rups', 'plain'")


__all__ = [
    "ATTRIBUTES",
    "SUBGRAPHS",
    "TaskDescriptor",
    "PromptPool",
    "PoolEmbeddings",
    "embed_pool",
    "PromptTokens",
    "RUPSPromptGraph",
    "PlainPrompts",
    "attribute_cosines",
    "build_prompt_module",
]
