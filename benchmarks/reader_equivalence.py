"""Do the readers of this tree give the same tensors as the readers of an earlier revision?

Every task of scenarios/real-7tasks.yaml is loaded (all three splits) from DATA_ROOT, once with the c2gr_fed
package of `--old-rev` (extracted with `git archive` into a temporary folder, never kept) and once with this tree's,
both in subprocesses at the same image size. Reports per dataset: cases, max and mean absolute difference of the
images (values in [-1, 1]) and the share of mask pixels whose class differs.

    python benchmarks/reader_equivalence.py /path/to/shared/data/real --old-rev main --image-size 256 \
        --out benchmarks/results/reader_equivalence.md
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SCENARIO = REPO / "scenarios" / "real-7tasks.yaml"
SPLITS = ("train", "val", "test")


def dump(data_root: Path, image_size: int, out: Path) -> None:
    """Load every task and split with whichever c2gr_fed is importable; write one .npz."""
    from c2gr_fed.data.loading import load_task
    from c2gr_fed.scenario import load_scenario

    scenario = load_scenario(SCENARIO, [f"image_size={image_size}"])
    arrays: dict[str, np.ndarray] = {}
    for task in scenario.stream():
        for split in SPLITS:
            d = load_task(scenario, task, split, data_root)
            arrays[f"{task.name}|{task.data.root}|{split}|images"] = d.images.numpy()  # (N, 3, S, S)
            arrays[f"{task.name}|{task.data.root}|{split}|masks"] = d.masks.numpy()  # (N, S, S)
            arrays[f"{task.name}|{task.data.root}|{split}|ids"] = np.array(d.ids)
    np.savez(out, **arrays)


def _extract(rev: str, into: Path) -> None:
    blob = subprocess.run(["git", "-C", str(REPO), "archive", rev, "c2gr_fed"], check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(blob)) as tar:
        tar.extractall(into, filter="data")


def _run_dump(package_parent: Path, data_root: Path, image_size: int, out: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(package_parent))
    subprocess.run([sys.executable, __file__, str(data_root), "--dump", str(out), "--image-size", str(image_size)],
                   check=True, env=env, cwd=str(package_parent))


def compare(old: dict[str, np.ndarray], new: dict[str, np.ndarray]) -> list[dict[str, object]]:
    rows = []
    tasks = sorted({k.split("|")[0] + "|" + k.split("|")[1] for k in old})
    for tr in tasks:
        imgs_o = [old[f"{tr}|{s}|images"] for s in SPLITS]
        imgs_n = [new[f"{tr}|{s}|images"] for s in SPLITS]
        ids_same = all((old[f"{tr}|{s}|ids"] == new[f"{tr}|{s}|ids"]).all() for s in SPLITS)
        io, inew = np.concatenate(imgs_o), np.concatenate(imgs_n)
        mo = np.concatenate([old[f"{tr}|{s}|masks"] for s in SPLITS])
        mn = np.concatenate([new[f"{tr}|{s}|masks"] for s in SPLITS])
        if io.shape != inew.shape or not ids_same:
            rows.append({"task": tr, "cases": f"{len(io)} vs {len(inew)}", "max": float("nan"), "mean": float("nan"),
                         "mask": float("nan"), "same_ids": ids_same})
            continue
        diff = np.abs(io.astype(np.float64) - inew)
        rows.append({"task": tr, "cases": str(len(io)), "max": float(diff.max()), "mean": float(diff.mean()),
                     "mask": float((mo != mn).mean()), "same_ids": ids_same})
    return rows


def table(rows: list[dict[str, object]], old_rev: str, image_size: int, data_root: Path) -> str:
    lines = [
        "# Reader equivalence: this tree against " + f"`{old_rev}`",
        "",
        f"Every task of `scenarios/real-7tasks.yaml` at image_size {image_size}, all splits, from the shared real "
        f"samples (`{data_root.name}/`). Images are in [-1, 1]; mask column: share of pixels whose class differs.",
        "",
        "Reproduce: `python benchmarks/reader_equivalence.py DATA_ROOT --old-rev REV --image-size "
        f"{image_size} --out benchmarks/results/reader_equivalence.md`",
        "",
        "| task / folder | slices or images | same case ids | image max abs diff | image mean abs diff | mask pixels differing |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['task'].replace('|', ' / ')} | {r['cases']} | {'yes' if r['same_ids'] else 'no'} | "
                     f"{r['max']:.4f} | {r['mean']:.5f} | {r['mask']:.5f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data_root", type=Path, help="folder holding the real samples (fundus-odoc/, acdc-cardiac-mr/, ...)")
    ap.add_argument("--old-rev", default="main", help="git revision whose readers are the reference")
    ap.add_argument("--image-size", type=int, default=256)
    ap.add_argument("--out", type=Path, default=None, help="write the markdown table here (else print it)")
    ap.add_argument("--dump", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.dump is not None:
        dump(args.data_root, args.image_size, args.dump)
        return
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        _extract(args.old_rev, tmp_path / "old")
        _run_dump(tmp_path / "old", args.data_root.resolve(), args.image_size, tmp_path / "old.npz")
        _run_dump(REPO, args.data_root.resolve(), args.image_size, tmp_path / "new.npz")
        with np.load(tmp_path / "old.npz") as o, np.load(tmp_path / "new.npz") as n:
            rows = compare(dict(o), dict(n))
    text = table(rows, args.old_rev, args.image_size, args.data_root)
    if args.out:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
