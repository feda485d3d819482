"""RUPS: the relation-aware prompt graph (paper Eq. 4-5) and the unified prompt tokens (Eq. 6).

For a pool of N tasks with frozen text embeddings e_i (full prompt) and attribute embeddings:

* node:       h_i = W e_i                                   (W shared by all subgraphs, no bias)
* subgraphs:  S in {m}, {r}, {o}, {m,r}, {m,o}, {r,o}        (attribute subsets of size 1 or 2)
* score:      s^S_ij = LeakyReLU(a_S . [h_i ; h_j]) + lambda_S * cos_S(i, j)
              cos_S = cosine similarity of the attribute embeddings in S (for two attributes, of the
              concatenation of the two unit-norm attribute embeddings, i.e. their mean cosine)
* attention:  alpha^S_ij = softmax_j(s^S_ij) over every task j in the pool, i itself included
* embedding:  z^S_i = LeakyReLU(sum_j alpha^S_ij h_j)
* semantic:   w^S_i = q . tanh(W_s z^S_i + b),  beta^S_i = softmax_S(w^S_i),  p_i = sum_S beta^S_i z^S_i
              (+ h_i with model.prompt.residual, beyond the paper)
* tokens:     LayerNorm_D(reshape(P p_i, (L, D)))           one set of tokens for BOTH models (unified prompt)

No parameter's shape depends on N, so the state_dict is identical as the pool grows; N = 1 works (each
subgraph then attends to the task itself only). The graph is permutation-equivariant in the pool order.
"""

from __future__ import annotations

from itertools import combinations
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from c2gr_fed.prompts.descriptors import ATTRIBUTES
from c2gr_fed.prompts.pool import PoolEmbeddings

SUBGRAPHS: tuple[tuple[str, ...], ...] = tuple(
    s for k in (1, 2) for s in combinations(ATTRIBUTES, k)
)
"""(modality,), (region,), (objective,), (modality, region), (modality, objective), (region, objective)."""


class PromptTokens(NamedTuple):
    """Cross-attention context per pool task: ``seg`` for the segmentor, ``gen`` for the denoiser; (N, L, D)."""

    seg: torch.Tensor
    gen: torch.Tensor


def attribute_cosines(emb: PoolEmbeddings, subgraphs=SUBGRAPHS) -> torch.Tensor:
    """cos_S(i, j) for every subgraph: (len(subgraphs), N, N), no gradient (the text encoder is frozen)."""
    mats = []
    for s in subgraphs:
        parts = [F.normalize(emb.attributes[a].detach().float(), dim=-1) for a in s]
        v = F.normalize(torch.cat(parts, dim=-1), dim=-1)
        mats.append(v @ v.T)
    return torch.stack(mats)


class RUPSPromptGraph(nn.Module):
    """Relation-aware prompt graph producing one unified set of prompt tokens per task."""

    def __init__(self, text_dim: int, cfg) -> None:
        super().__init__()
        self.text_dim = int(text_dim)
        self.node_dim = int(cfg.node_dim)
        self.q_dim = int(cfg.q_dim)
        self.tokens = int(cfg.tokens)
        self.token_dim = int(cfg.token_dim)
        self.slope = float(cfg.leaky_slope)
        self.residual = bool(getattr(cfg, "residual", False))
        n_sub = len(SUBGRAPHS)

        self.W = nn.Linear(self.text_dim, self.node_dim, bias=False)
        self.a_S = nn.Parameter(torch.empty(n_sub, 2 * self.node_dim))
        self.lambda_S = nn.Parameter(torch.ones(n_sub))
        self.W_s = nn.Linear(self.node_dim, self.q_dim)  # its bias is the paper's b
        self.q = nn.Parameter(torch.empty(self.q_dim))
        self.to_tokens = nn.Linear(self.node_dim, self.tokens * self.token_dim)
        self.norm = nn.LayerNorm(self.token_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.W.weight)
        bound = (6.0 / (1 + 2 * self.node_dim)) ** 0.5  # xavier for a (1, 2 * node_dim) attention vector
        nn.init.uniform_(self.a_S, -bound, bound)
        nn.init.ones_(self.lambda_S)
        nn.init.xavier_uniform_(self.W_s.weight)
        nn.init.zeros_(self.W_s.bias)
        nn.init.normal_(self.q, std=self.q_dim**-0.5)
        nn.init.xavier_uniform_(self.to_tokens.weight)
        nn.init.zeros_(self.to_tokens.bias)
        self.norm.reset_parameters()

    # ------------------------------------------------------------------------------------------------ graph

    def _graph(self, emb: PoolEmbeddings) -> dict[str, torch.Tensor]:
        ref = self.W.weight
        e = emb.full.to(device=ref.device, dtype=ref.dtype)
        if e.ndim != 2 or e.shape[1] != self.text_dim:
            raise ValueError(f"prompt graph expects embeddings (N, {self.text_dim}), got {tuple(e.shape)}")
        if e.shape[0] == 0:
            raise ValueError("prompt graph needs at least one task in the pool")
        cos = attribute_cosines(emb).to(device=ref.device, dtype=ref.dtype)  # (S, N, N)
        h = self.W(e)  # (N, node)
        a_src, a_dst = self.a_S[:, : self.node_dim], self.a_S[:, self.node_dim :]  # (S, node) each
        src = a_src @ h.T  # (S, N): a_S[:node] . h_i
        dst = a_dst @ h.T  # (S, N): a_S[node:] . h_j
        score = F.leaky_relu(src[:, :, None] + dst[:, None, :], self.slope) + self.lambda_S[:, None, None] * cos
        alpha = torch.softmax(score, dim=-1)  # (S, N, N), rows sum to 1 over j
        z = F.leaky_relu(alpha @ h, self.slope)  # (S, N, node)
        w = torch.tanh(self.W_s(z)) @ self.q  # (S, N)
        beta = torch.softmax(w, dim=0)  # over subgraphs, per node
        p = (beta[..., None] * z).sum(0)  # (N, node)
        if self.residual:  # model.prompt.residual (beyond the paper): each task keeps its own node in its prompt
            p = p + h
        return {"h": h, "alpha": alpha, "z": z, "beta": beta, "p": p}

    def relation_prompts(self, emb: PoolEmbeddings) -> torch.Tensor:
        """p_i before the token projection: (N, node_dim). For the prompt-similarity heatmaps (paper Fig. 7)."""
        return self._graph(emb)["p"]

    def attention(self, emb: PoolEmbeddings) -> dict[str, torch.Tensor]:
        """Detached internals for reports: alpha (S, N, N), beta (S, N), and the subgraph order."""
        with torch.no_grad():
            g = self._graph(emb)
        return {"alpha": g["alpha"].cpu(), "beta": g["beta"].cpu(), "subgraphs": SUBGRAPHS}

    def tokens_from(self, p: torch.Tensor) -> torch.Tensor:
        return self.norm(self.to_tokens(p).view(p.shape[0], self.tokens, self.token_dim))

    def forward(self, emb: PoolEmbeddings) -> PromptTokens:
        t = self.tokens_from(self._graph(emb)["p"])
        return PromptTokens(seg=t, gen=t)  # the same tensor: one unified prompt modulates both models

    def extra_repr(self) -> str:
        return (
            f"text_dim={self.text_dim}, node_dim={self.node_dim}, q_dim={self.q_dim}, "
            f"tokens={self.tokens}x{self.token_dim}, subgraphs={len(SUBGRAPHS)}"
        )
