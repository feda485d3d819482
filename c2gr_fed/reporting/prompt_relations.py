"""Prompt relations as in the paper's Fig. 7: cosine similarity of the task prompts with and without RUPS."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..prompts import embed_pool
from ..text import build_text_encoder


def _cos(x: torch.Tensor) -> np.ndarray:
    x = torch.nn.functional.normalize(x.float(), dim=-1)
    return (x @ x.T).numpy()


def prompt_similarity(run_root: Path) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    """(task names, cosine of plain text embeddings, cosine of RUPS relation prompts or None)."""
    from ..learning.final_state import load_final_state

    sc, state = load_final_state(Path(run_root))
    emb = embed_pool(state.pool, build_text_encoder(sc.text_encoder))
    text = _cos(emb.full)
    rups = None
    if hasattr(state.prompts, "relation_prompts") and state.method.prompt_kind == "rups":
        state.prompts.eval()
        with torch.no_grad():
            rups = _cos(state.prompts.relation_prompts(emb))
    return list(state.pool.names), text, rups


def prompt_similarity_figure(run_root: Path, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    names, text, rups = prompt_similarity(run_root)
    panels = [("text-encoder prompts (w/o RUPS)", text)] + ([("RUPS relation-aware prompts", rups)] if rups is not None else [])
    n = len(names)
    fig, axes = plt.subplots(1, len(panels), figsize=(0.38 * n * len(panels) + 3, 0.38 * n + 2), squeeze=False)
    for ax, (title, mat) in zip(axes[0], panels):
        im = ax.imshow(mat, vmin=-1 if mat.min() < 0 else 0, vmax=1, cmap="magma")
        ax.set_xticks(range(n), names, rotation=70, ha="right", fontsize=6)
        ax.set_yticks(range(n), names, fontsize=6)
        ax.set_title(title, fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
