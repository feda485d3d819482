"""Frozen text encoders: MiniLM (real weights, offline) and CLIP through the real loading code on a tiny model."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch

from c2gr_fed.errors import ScenarioError
from c2gr_fed.scenario.schema import TextEncoderConfig
from c2gr_fed.text import TextEncoder, build_text_encoder

FUNDUS = "A colour fundus photograph from Aravind Eye Hospital of optic nerve head for optic disc and cup segmentation"
FUNDUS_PARA = "A colour fundus photo of the optic nerve head, for segmenting the optic disc and optic cup"
HEART = "A cine MR image from Siemens scanner of heart for left ventricle and myocardium segmentation"


@pytest.fixture(scope="module")
def minilm() -> TextEncoder:
    return build_text_encoder(TextEncoderConfig(name="minilm"))


def test_minilm_shape_norm_dtype(minilm):
    assert isinstance(minilm, TextEncoder)
    assert minilm.name == "minilm" and minilm.dim == 384
    v = minilm.encode([FUNDUS, HEART, "chest x-ray"])
    assert v.shape == (3, 384) and v.dtype == torch.float32 and v.device.type == "cpu"
    assert not v.requires_grad
    torch.testing.assert_close(v.norm(dim=1), torch.ones(3), atol=1e-5, rtol=0)
    assert minilm.encode([]).shape == (0, 384)


def test_minilm_deterministic_and_batch_independent(minilm):
    a = minilm.encode([FUNDUS, HEART])
    b = minilm.encode([HEART, "something else entirely", FUNDUS])
    assert torch.equal(a[0], b[2]) and torch.equal(a[1], b[0])
    # bypass the memo: a fresh forward pass gives the same vector
    fresh = minilm._encode_one(FUNDUS)
    torch.testing.assert_close(torch.nn.functional.normalize(fresh.reshape(-1), dim=0), a[0], atol=1e-6, rtol=0)
    with pytest.raises(TypeError):
        minilm.encode(FUNDUS)  # a bare string is a mistake, not 100 one-letter texts


def test_minilm_similarity_is_sensible(minilm):
    v = minilm.encode([FUNDUS, FUNDUS_PARA, HEART])
    sim = v @ v.T
    assert sim[0, 1] > sim[0, 2] + 0.2
    assert sim[0, 1] > 0.7


def test_build_is_cached(minilm):
    assert build_text_encoder(TextEncoderConfig(name="minilm")) is minilm


# ------------------------------------------------------------------------------------------------------ CLIP

WORDS = (
    "a an image of for from and the colour fundus photograph optic nerve head disc cup segmentation cine mr "
    "heart left ventricle chest x-ray lungs ct liver aravind eye hospital siemens scanner"
).split()


def _save_tokenizer(path, words=WORDS):
    """A tiny CLIP-like word-level tokenizer: <bos> words <eos>, EOS has the highest id (as in real CLIP)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<unk>": 0}
    for w in sorted(set(words)):
        vocab[w] = len(vocab)
    bos, eos = len(vocab), len(vocab) + 1
    vocab["<|startoftext|>"] = bos
    vocab["<|endoftext|>"] = eos
    tk = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tk.normalizer = normalizers.Lowercase()
    tk.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tk.post_processor = processors.TemplateProcessing(
        single="<|startoftext|> $A <|endoftext|>",
        special_tokens=[("<|startoftext|>", bos), ("<|endoftext|>", eos)],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tk,
        unk_token="<unk>",
        bos_token="<|startoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        model_max_length=24,
    )
    fast.save_pretrained(path)
    return len(vocab), bos, eos


def _save_tiny_clip(path, projection=True, words=WORDS):
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    n_vocab, bos, eos = _save_tokenizer(path, words)
    cfg = CLIPTextConfig(
        vocab_size=n_vocab,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=24,
        projection_dim=24,
        bos_token_id=bos,
        eos_token_id=eos,
        pad_token_id=eos,
    )
    torch.manual_seed(0)
    model = (CLIPTextModelWithProjection if projection else CLIPTextModel)(cfg).eval()
    model.save_pretrained(path)
    return model


@pytest.mark.parametrize("projection", [True, False])
def test_clip_tiny_round_trip(tmp_path, projection):
    ref = _save_tiny_clip(tmp_path, projection=projection)
    enc = build_text_encoder(TextEncoderConfig(name="clip", path=str(tmp_path)))
    assert enc.name == "clip"
    assert enc.dim == (24 if projection else 32)
    texts = ["A cine MR image of heart for left ventricle segmentation", "chest x-ray of lungs"]
    v = enc.encode(texts)
    assert v.shape == (2, enc.dim) and v.dtype == torch.float32 and not v.requires_grad
    torch.testing.assert_close(v.norm(dim=1), torch.ones(2), atol=1e-5, rtol=0)
    assert not torch.allclose(v[0], v[1])
    # Reference: the saved model's own pooled (EOS) output, projected when there is a projection.
    tok = enc.tokenizer(texts[:1], return_tensors="pt")
    with torch.no_grad():
        out = ref(**tok)
    want = out.text_embeds if projection else out.pooler_output
    torch.testing.assert_close(v[:1], torch.nn.functional.normalize(want, dim=1), atol=1e-5, rtol=0)
    assert torch.equal(enc.encode(texts[1:]), v[1:])
    assert build_text_encoder(TextEncoderConfig(name="clip", path=str(tmp_path))) is enc


def test_clip_missing_path_errors(tmp_path):
    with pytest.raises(ScenarioError, match="(?s)no weights directory given.*save_pretrained"):
        build_text_encoder(TextEncoderConfig(name="clip"))
    missing = tmp_path / "nope"
    with pytest.raises(ScenarioError, match=r"(?s)does not exist.*config\.json"):
        build_text_encoder(TextEncoderConfig(name="clip", path=str(missing)))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ScenarioError, match="no config.json") as ei:
        build_text_encoder(TextEncoderConfig(name="clip", path=str(empty)))
    assert str(empty) in str(ei.value) and "minilm" in str(ei.value)
    f = tmp_path / "clip.pt"
    f.write_bytes(b"x")
    with pytest.raises(ScenarioError, match="is a file"):
        build_text_encoder(TextEncoderConfig(name="clip", path=str(f)))


def test_clip_without_weights_or_tokenizer_errors(tmp_path):
    only_tok = tmp_path / "only_tok"
    _save_tokenizer(only_tok)
    (only_tok / "config.json").write_text('{"model_type": "clip_text_model"}')
    with pytest.raises(ScenarioError, match="no weights file"):
        build_text_encoder(TextEncoderConfig(name="clip", path=str(only_tok)))
    only_model = tmp_path / "only_model"
    _save_tiny_clip(only_model)
    (only_model / "tokenizer.json").unlink()
    with pytest.raises(ScenarioError, match="no tokenizer files"):
        build_text_encoder(TextEncoderConfig(name="clip", path=str(only_model)))


def test_clip_degenerate_tokenizer_is_refused(tmp_path):
    # A vocabulary without any of the probe words: every word becomes <unk>, like the offline CLIPTokenizer trap.
    _save_tiny_clip(tmp_path, words=["zzz"])
    with pytest.raises(ScenarioError, match="degenerate"):
        build_text_encoder(TextEncoderConfig(name="clip", path=str(tmp_path)))


def test_clip_full_clipmodel_directory(tmp_path):
    """A whole CLIPModel.save_pretrained directory loads its text tower and top-level projection."""
    from transformers import CLIPConfig, CLIPModel

    n_vocab, bos, eos = _save_tokenizer(tmp_path)
    text = dict(
        vocab_size=n_vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
        max_position_embeddings=24, bos_token_id=bos, eos_token_id=eos, pad_token_id=eos,
    )
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4, image_size=32, patch_size=16)
    torch.manual_seed(1)
    full = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=20)).eval()
    full.save_pretrained(tmp_path)
    enc = build_text_encoder(TextEncoderConfig(name="clip", path=str(tmp_path)))
    assert enc.dim == 20
    tok = enc.tokenizer(["chest x-ray of lungs"], return_tensors="pt")
    with torch.no_grad():
        ref = full.get_text_features(**tok)
    ref = ref if torch.is_tensor(ref) else ref.pooler_output
    torch.testing.assert_close(
        enc.encode(["chest x-ray of lungs"]), torch.nn.functional.normalize(ref, dim=1), atol=1e-5, rtol=0
    )
