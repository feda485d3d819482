"""An open_clip text tower from a local checkpoint file (``text_encoder.name: open_clip``; optional extra).

open_clip_torch is not a default dependency (it pulls torchvision): ``pip install 'c2gr-fed[clip]'``. Weights are
read from ``text_encoder.pretrained``, a local file, and never downloaded; the architecture ``text_encoder.model``
must be one open_clip ships a config for (e.g. ``ViT-B-32``). The text embedding is ``encode_text`` of the
tokenised prompt (1, 77) -> (1, dim), L2-normalised by the shared encoder machinery.
"""

from __future__ import annotations

from pathlib import Path

import torch

from c2gr_fed.errors import ScenarioError
from c2gr_fed.scenario.schema import looks_like_local_path

from .encoders import _MemoEncoder

EXTRA_HELP = "install the optional extra: pip install 'c2gr-fed[clip]' (open_clip_torch, which needs torchvision)"


def _import_open_clip():
    try:
        import open_clip
    except ImportError as exc:
        raise ScenarioError(f"text_encoder open_clip: the package open_clip is not installed; {EXTRA_HELP}") from exc
    except Exception as exc:  # noqa: BLE001 - e.g. a torchvision built for another torch fails at import
        raise ScenarioError(
            f"text_encoder open_clip: open_clip fails to import ({type(exc).__name__}: {exc}); it needs a "
            f"torchvision built for the installed torch. {EXTRA_HELP}"
        ) from exc
    return open_clip


def checkpoint_file(pretrained: str | None) -> Path:
    """The local checkpoint file `pretrained` names, or a ScenarioError naming text_encoder.pretrained."""
    if not pretrained or not looks_like_local_path(pretrained):
        raise ScenarioError(
            f"text_encoder.pretrained = {pretrained!r} is not a local checkpoint path (download tags are refused: "
            "weights are never downloaded)"
        )
    p = Path(pretrained).expanduser()
    if not p.is_file():
        what = "is a directory, not a checkpoint file" if p.is_dir() else "does not exist"
        raise ScenarioError(f"text_encoder.pretrained = {pretrained!r}: {p} {what}")
    return p


class OpenCLIPEncoder(_MemoEncoder):
    """open_clip ``create_model(model, pretrained=<local file>)``: ``encode_text`` of one prompt, L2 normalised."""

    name = "open_clip"

    def __init__(self, model: str | None, pretrained: str | None) -> None:
        super().__init__()
        if not model:
            raise ScenarioError("text_encoder.model is required with name: open_clip (e.g. ViT-B-32)")
        ckpt = checkpoint_file(pretrained)
        open_clip = _import_open_clip()
        known = set(open_clip.list_models())
        if model not in known:
            raise ScenarioError(f"text_encoder.model = {model!r} is not an architecture open_clip ships; "
                                f"known: {', '.join(sorted(known)[:12])}, ...")
        try:
            net = open_clip.create_model(model, pretrained=str(ckpt), device="cpu")
        except Exception as exc:  # noqa: BLE001 - any loader failure is the user's checkpoint
            raise ScenarioError(
                f"text_encoder.pretrained = {pretrained!r}: the checkpoint does not load into {model}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        self.model = net.eval()
        for prm in self.model.parameters():
            prm.requires_grad_(False)
        self.tokenizer = open_clip.get_tokenizer(model)
        self.path = str(ckpt)
        with torch.no_grad():
            self.dim = int(self._encode_one("probe").shape[-1])

    def _encode_one(self, text: str) -> torch.Tensor:
        tokens = self.tokenizer([text])  # (1, context_length) int64
        return self.model.encode_text(tokens)  # (1, dim)
