"""A one-page picture of a scenario's data: one row per task (arrival order), masks overlaid in fixed colours."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..scenario.schema import Scenario

# fixed colour per class index (1..); background is not drawn
CLASS_COLOURS: tuple[tuple[float, float, float], ...] = (
    (0.90, 0.10, 0.10),  # 1 red
    (0.10, 0.80, 0.20),  # 2 green
    (0.15, 0.45, 1.00),  # 3 blue
    (1.00, 0.85, 0.00),  # 4 yellow
    (0.85, 0.20, 0.90),  # 5 magenta
    (0.00, 0.85, 0.85),  # 6 cyan
    (1.00, 0.50, 0.00),  # 7 orange
    (0.55, 0.35, 0.15),  # 8 brown
)
OVERLAY_ALPHA = 0.45


def class_colour(k: int) -> tuple[float, float, float]:
    """Colour of class index k >= 1 (cycles past the table)."""
    return CLASS_COLOURS[(k - 1) % len(CLASS_COLOURS)]


def overlay(image: np.ndarray, mask: np.ndarray, alpha: float = OVERLAY_ALPHA) -> np.ndarray:
    """image (3, H, W) in [-1, 1], mask (H, W) -> RGB (H, W, 3) in [0, 1] with classes blended in."""
    rgb = np.clip((np.asarray(image, dtype=np.float32).transpose(1, 2, 0) + 1.0) / 2.0, 0.0, 1.0)
    out = rgb.copy()
    for k in np.unique(mask):
        if k == 0:
            continue
        sel = mask == k
        out[sel] = (1 - alpha) * rgb[sel] + alpha * np.array(class_colour(int(k)), dtype=np.float32)
    return out


def _pick(n: int, per_task: int, masks: np.ndarray) -> list[int]:
    """Evenly spread cases, preferring ones that show some foreground."""
    if n == 0:
        return []
    with_fg = [i for i in range(n) if masks[i].any()]
    pool = with_fg if len(with_fg) >= per_task else list(range(n))
    if len(pool) <= per_task:
        return pool
    return [pool[int(round(j))] for j in np.linspace(0, len(pool) - 1, per_task)]


def write_preview(
    scenario: Scenario, out: Path, data_root: Path | None = None, per_task: int = 6, split: str = "train"
) -> Path:
    """Write a PNG grid: per task (arrival order) its name, department, class legend and `per_task` cases."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from ..data.loading import load_task

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tasks = scenario.stream()
    cols = per_task + 1
    fig, axes = plt.subplots(
        len(tasks), cols, figsize=(1.6 * per_task + 3.2, 1.7 * len(tasks) + 0.6), squeeze=False,
        gridspec_kw={"width_ratios": [2.0] + [1.0] * per_task},
    )
    fig.suptitle(f"{scenario.name}: {split} split, {scenario.image_size}x{scenario.image_size}", fontsize=11)
    for row, task in enumerate(tasks):
        data = load_task(scenario, task, split, data_root)  # type: ignore[arg-type]
        images, masks = data.images.numpy(), data.masks.numpy()
        label_ax = axes[row, 0]
        label_ax.axis("off")
        label_ax.text(0.0, 0.95, f"{row + 1}. {task.name}", fontsize=9, fontweight="bold", va="top",
                      transform=label_ax.transAxes)
        label_ax.text(0.0, 0.74, f"dept: {scenario.department_of(task.name)}\n{task.modality}\nn={len(data)}",
                      fontsize=7, va="top", transform=label_ax.transAxes)
        handles = [Patch(color=class_colour(k + 1), label=f"{k + 1} {name}") for k, name in enumerate(task.classes)]
        label_ax.legend(handles=handles, loc="lower left", fontsize=6.5, frameon=False, borderaxespad=0.0,
                        handlelength=1.0, bbox_to_anchor=(0.0, 0.0))
        picks = _pick(len(data), per_task, masks)
        for col in range(per_task):
            ax = axes[row, col + 1]
            ax.set_xticks([])
            ax.set_yticks([])
            if col >= len(picks):
                ax.axis("off")
                continue
            i = picks[col]
            ax.imshow(overlay(images[i], masks[i]), interpolation="nearest")
            for k in np.unique(masks[i]):  # crisp outline so a class stays visible on any background
                if k > 0:
                    ax.contour((masks[i] == k).astype(float), levels=[0.5], colors=[class_colour(int(k))],
                               linewidths=0.9)
            ident = data.ids[i] if data.ids else str(i)
            ax.set_title(ident if len(ident) <= 22 else "..." + ident[-20:], fontsize=5.5)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
