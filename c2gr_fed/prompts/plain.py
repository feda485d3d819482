"""The "w/o RUPS" ablation: no graph, no sharing. Each task's text embedding goes through two separate
learned projections, one giving the segmentor's prompt tokens and one the denoiser's, so the two models
are not coupled through a shared prompt."""

from __future__ import annotations

import torch
from torch import nn

from c2gr_fed.prompts.graph import PromptTokens
from c2gr_fed.prompts.pool import PoolEmbeddings


class _Branch(nn.Module):
    def __init__(self, text_dim: int, hidden: int, tokens: int, token_dim: int, slope: float) -> None:
        super().__init__()
        self.tokens, self.token_dim = tokens, token_dim
        self.net = nn.Sequential(
            nn.Linear(text_dim, hidden), nn.LeakyReLU(slope), nn.Linear(hidden, tokens * token_dim)
        )
        self.norm = nn.LayerNorm(token_dim)

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        return self.norm(self.net(e).view(e.shape[0], self.tokens, self.token_dim))


class PlainPrompts(nn.Module):
    """Text embedding -> (segmentor tokens, denoiser tokens) through two independent MLPs (N, L, D)."""

    def __init__(self, text_dim: int, cfg) -> None:
        super().__init__()
        self.text_dim = int(text_dim)
        args = (self.text_dim, int(cfg.node_dim), int(cfg.tokens), int(cfg.token_dim), float(cfg.leaky_slope))
        self.seg = _Branch(*args)
        self.gen = _Branch(*args)

    def _full(self, emb: PoolEmbeddings) -> torch.Tensor:
        ref = self.seg.net[0].weight
        e = emb.full.to(device=ref.device, dtype=ref.dtype)
        if e.ndim != 2 or e.shape[1] != self.text_dim or e.shape[0] == 0:
            raise ValueError(f"prompt module expects embeddings (N >= 1, {self.text_dim}), got {tuple(e.shape)}")
        return e

    def relation_prompts(self, emb: PoolEmbeddings) -> torch.Tensor:
        """There is no relation prompt without RUPS: the frozen text embedding itself (N, text_dim), which is
        what the paper's Fig. 7 shows for "w/o RUPS"."""
        return self._full(emb)

    def forward(self, emb: PoolEmbeddings) -> PromptTokens:
        e = self._full(emb)
        return PromptTokens(seg=self.seg(e), gen=self.gen(e))
