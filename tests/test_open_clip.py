"""open_clip text encoder: configuration, error paths, the loading wiring (stub) and real loading when installed."""

from __future__ import annotations

import sys
import types

import pytest
import torch
from pydantic import ValidationError

from c2gr_fed.errors import ScenarioError
from c2gr_fed.scenario.schema import TextEncoderConfig
from c2gr_fed.text import build_text_encoder
from c2gr_fed.text.open_clip_encoder import OpenCLIPEncoder


def _has_open_clip() -> bool:
    try:
        import open_clip  # noqa: F401
    except Exception:  # noqa: BLE001 - missing, or broken by a mismatched torchvision
        return False
    return True


def test_config_accepts_a_local_file() -> None:
    cfg = TextEncoderConfig(name="open_clip", model="ViT-B-32", pretrained="/weights/open_clip_b32.pt")
    assert cfg.model == "ViT-B-32" and cfg.pretrained == "/weights/open_clip_b32.pt"
    assert TextEncoderConfig(name="open_clip", model="RN50", pretrained="rn50.safetensors").pretrained


@pytest.mark.parametrize("tag", ["laion2b_s34b_b79k", "openai", "hf-hub:laion/CLIP-ViT-B-32", "https://x/y.pt"])
def test_download_tag_is_refused_naming_the_field(tag: str) -> None:
    with pytest.raises(ValidationError, match=r"text_encoder\.pretrained.*never downloaded"):
        TextEncoderConfig(name="open_clip", model="ViT-B-32", pretrained=tag)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"name": "open_clip", "pretrained": "/w.pt"}, r"text_encoder\.model is required"),
        ({"name": "open_clip", "model": "ViT-B-32"}, r"text_encoder\.pretrained is required"),
        ({"name": "open_clip", "model": "ViT-B-32", "pretrained": "/w.pt", "path": "/d"}, r"text_encoder\.path"),
        ({"name": "open_clip", "model": "hf-hub:org/m", "pretrained": "/w.pt"}, r"text_encoder\.model"),
        ({"name": "minilm", "pretrained": "/w.pt"}, r"text_encoder\.pretrained is for name: open_clip"),
        ({"name": "clip", "path": "/d", "model": "ViT-B-32"}, r"text_encoder\.model is for name: open_clip"),
    ],
)
def test_bad_configurations_name_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        TextEncoderConfig(**kwargs)


def test_missing_weights_file(tmp_path) -> None:
    missing = tmp_path / "nope.pt"
    cfg = TextEncoderConfig(name="open_clip", model="ViT-B-32", pretrained=str(missing))
    with pytest.raises(ScenarioError, match=r"text_encoder\.pretrained.*does not exist"):
        build_text_encoder(cfg)
    with pytest.raises(ScenarioError, match="is a directory"):
        OpenCLIPEncoder("ViT-B-32", str(tmp_path) + "/")


def test_missing_package_names_the_extra(tmp_path, monkeypatch) -> None:
    ckpt = tmp_path / "w.pt"
    ckpt.write_bytes(b"x")
    monkeypatch.setitem(sys.modules, "open_clip", None)  # import open_clip -> ImportError
    with pytest.raises(ScenarioError, match=r"not installed.*pip install 'c2gr-fed\[clip\]'"):
        OpenCLIPEncoder("ViT-B-32", str(ckpt))


class _StubTower(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = torch.nn.Embedding(100, 6)

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.emb(tokens).mean(1)  # (1, 6)


def test_loading_wiring_with_a_stub_package(tmp_path, monkeypatch) -> None:
    ckpt = tmp_path / "w.pt"
    ckpt.write_bytes(b"x")
    calls: list[tuple] = []
    stub = types.ModuleType("open_clip")
    stub.list_models = lambda: ["ViT-B-32"]

    def create_model(name: str, pretrained: str, device: str) -> _StubTower:
        calls.append((name, pretrained, device))
        return _StubTower()

    stub.create_model = create_model
    stub.get_tokenizer = lambda name: (lambda texts: torch.tensor([[len(t) % 100, 1, 2] for t in texts]))
    monkeypatch.setitem(sys.modules, "open_clip", stub)
    enc = OpenCLIPEncoder("ViT-B-32", str(ckpt))
    assert calls == [("ViT-B-32", str(ckpt), "cpu")]  # the local file, nothing else
    v = enc.encode(["a b", "a bc"])
    assert v.shape == (2, 6) and enc.dim == 6
    assert torch.allclose(v.norm(dim=1), torch.ones(2))
    with pytest.raises(ScenarioError, match=r"text_encoder\.model = 'RN50' is not an architecture"):
        OpenCLIPEncoder("RN50", str(ckpt))


@pytest.mark.skipif(not _has_open_clip(), reason="open_clip is not importable (optional extra [clip])")
def test_real_open_clip_loads_a_local_checkpoint(tmp_path) -> None:
    import open_clip

    torch.manual_seed(0)
    net = open_clip.create_model("ViT-B-32", pretrained=None, device="cpu")
    ckpt = tmp_path / "vit_b32.pt"
    torch.save(net.state_dict(), ckpt)
    enc = OpenCLIPEncoder("ViT-B-32", str(ckpt))
    texts = ["A colour fundus photograph of optic nerve head", "A cine MR image of heart"]
    v = enc.encode(texts)
    assert v.shape == (2, enc.dim) and torch.allclose(v.norm(dim=1), torch.ones(2), atol=1e-5)
    with torch.no_grad():
        want = net.eval().encode_text(open_clip.get_tokenizer("ViT-B-32")(texts[:1]))[0]
    assert torch.allclose(v[0], torch.nn.functional.normalize(want, dim=0), atol=1e-5)
    assert not torch.allclose(v[0], v[1])
    bad = tmp_path / "bad.pt"
    torch.save({"nothing": torch.zeros(1)}, bad)
    with pytest.raises(ScenarioError, match="does not load"):
        OpenCLIPEncoder("ViT-B-32", str(bad))
