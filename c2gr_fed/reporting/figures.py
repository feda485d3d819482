"""PNG figures of a run: the train-test matrix heatmap, Dice per task over rounds, replay grids."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ..metrics import TrainTestMatrix
from .preview import overlay


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def matrix_heatmap(matrix: TrainTestMatrix, out: Path, title: str) -> Path:
    """R[i][j] (rows: after training task i; columns: evaluated on task j) as a Dice heatmap; missing = grey."""
    plt = _plt()
    n = len(matrix.tasks)
    vals = np.array([[np.nan if math.isnan(v) else v for v in row] for row in matrix.values], dtype=float)
    size = max(4.0, 0.42 * n + 2.5)
    fig, ax = plt.subplots(figsize=(size + 1.0, size))
    cmap = plt.get_cmap("viridis").copy()
    cmap.set_bad("#bbbbbb")
    im = ax.imshow(np.ma.masked_invalid(vals), vmin=0, vmax=1, cmap=cmap)
    ax.set_xticks(range(n), matrix.tasks, rotation=70, ha="right", fontsize=7)
    ax.set_yticks(range(n), matrix.tasks, fontsize=7)
    ax.set_xlabel("evaluated on task j")
    ax.set_ylabel("after training task i")
    if n <= 24:
        for i in range(n):
            for j in range(n):
                if not np.isnan(vals[i, j]):
                    ax.text(j, i, f"{vals[i, j]:.2f}"[1:] if vals[i, j] < 1 else "1.0", ha="center", va="center",
                            fontsize=5.5, color="white" if vals[i, j] < 0.6 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, label="Dice")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def dice_over_rounds(matrix: TrainTestMatrix, out: Path, title: str) -> Path:
    """One line per task: its Dice after every round from the round it was learned (forgetting curves)."""
    plt = _plt()
    n = len(matrix.tasks)
    fig, ax = plt.subplots(figsize=(9, 4.8))
    cmap = plt.get_cmap("tab20")
    for j, name in enumerate(matrix.tasks):
        xs = list(range(j, n))
        ys = [matrix.get(i, j) for i in xs]
        if all(math.isnan(y) for y in ys):
            continue
        ax.plot([x + 1 for x in xs], ys, marker="o", ms=2.5, lw=1.2, color=cmap(j % 20), label=name)
    ax.set_xlabel("after training round (task index)")
    ax.set_ylabel("Dice")
    ax.set_ylim(0, 1)
    ax.set_xlim(0.5, n + 0.5)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2 if n > 10 else 1, loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def replay_grid(replay: Any, scenario: Any, out: Path, title: str, per_task: int = 4) -> Path:
    """Synthetic replay pairs: one row per earlier task, image | image with decoded mask overlay.

    When the replay carries per-pair agreement with the received segmentor (`replay.agreement`, (M,)), each
    overlay is titled with it.
    """
    plt = _plt()
    ids = replay.task_ids.numpy()
    agreement = getattr(replay, "agreement", None)
    tasks = sorted(set(int(t) for t in ids))
    fig, axes = plt.subplots(len(tasks), 2 * per_task, figsize=(1.3 * 2 * per_task, 1.45 * len(tasks) + 0.5),
                             squeeze=False)
    for r, t in enumerate(tasks):
        sel = np.nonzero(ids == t)[0][:per_task]
        for c in range(per_task):
            a_img, a_ov = axes[r, 2 * c], axes[r, 2 * c + 1]
            a_img.axis("off")
            a_ov.axis("off")
            if c < len(sel):
                img = replay.images[sel[c]].numpy()
                msk = replay.masks[sel[c]].numpy()
                a_img.imshow(np.clip((img.transpose(1, 2, 0) + 1) / 2, 0, 1), interpolation="nearest")
                a_ov.imshow(overlay(img, msk), interpolation="nearest")
                if agreement is not None:
                    a_ov.set_title(f"agree {float(agreement[sel[c]]):.2f}", fontsize=6, pad=2)
        axes[r, 0].text(-0.1, 0.5, replay.task_names[t], transform=axes[r, 0].transAxes, ha="right", va="center",
                        fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
