"""Task descriptors, prompt pool (+ wire form), pool embeddings, the RUPS graph and the plain ablation."""

from __future__ import annotations

import hashlib

import pytest
import torch
import torch.nn.functional as F

from c2gr_fed.prompts import (
    ATTRIBUTES,
    SUBGRAPHS,
    PlainPrompts,
    PoolEmbeddings,
    PromptPool,
    PromptTokens,
    RUPSPromptGraph,
    TaskDescriptor,
    build_prompt_module,
    embed_pool,
)
from c2gr_fed.scenario.schema import PhantomSource, PromptConfig, TaskSpec

CFG = PromptConfig(node_dim=16, q_dim=8, tokens=3, token_dim=12)
E = 24

DESCS = [
    TaskDescriptor("Fundus-A", "colour fundus photograph", "Aravind Eye Hospital", "optic nerve head", "optic disc and cup segmentation", 2),
    TaskDescriptor("Fundus-B", "colour fundus photograph", "Nidek AFC-210 camera", "optic nerve head", "optic disc and cup segmentation", 2),
    TaskDescriptor("MnMs", "cine MR", "Siemens scanner", "heart", "left ventricle, myocardium and right ventricle segmentation", 3),
    TaskDescriptor("QaTa", "chest X-ray", None, "chest", "COVID-19 infection segmentation", 1),
    TaskDescriptor("LiTS", "CT", None, "abdomen", "liver segmentation", 1),
]


class FakeEncoder:
    """Deterministic pseudo-random unit vectors per text (fast stand-in for a real encoder)."""

    name = "fake"
    dim = E

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def encode(self, texts: list[str]) -> torch.Tensor:
        self.calls.append(list(texts))
        rows = []
        for t in texts:
            seed = int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little")
            g = torch.Generator().manual_seed(seed)
            rows.append(torch.randn(self.dim, generator=g))
        return torch.nn.functional.normalize(torch.stack(rows), dim=1) if rows else torch.zeros(0, self.dim)


def _emb(n: int = 5, order=None) -> PoolEmbeddings:
    descs = DESCS[:n] if order is None else [DESCS[i] for i in order]
    return embed_pool(PromptPool(descs), FakeEncoder())


# ------------------------------------------------------------------------------------------- descriptors


def test_descriptor_text_template():
    d = DESCS[3]
    assert d.text() == "A chest X-ray image of chest for COVID-19 infection segmentation"
    assert DESCS[0].text() == (
        "A colour fundus photograph image from Aravind Eye Hospital of optic nerve head for optic disc and cup segmentation"
    )
    assert DESCS[0].attribute_text("modality") == "colour fundus photograph Aravind Eye Hospital"
    assert d.attribute_text("modality") == "chest X-ray"
    assert DESCS[2].attribute_text("region") == "heart"
    assert d.attribute_text("objective") == "COVID-19 infection segmentation"
    assert ATTRIBUTES == ("modality", "region", "objective")
    with pytest.raises(KeyError):
        d.attribute_text("site")
    assert TaskDescriptor("x", "CT", "", "abdomen", "liver", 1).site is None
    with pytest.raises(ValueError, match="num_classes"):
        TaskDescriptor("x", "CT", None, "abdomen", "liver", 0)
    with pytest.raises(ValueError, match="region"):
        TaskDescriptor("x", "CT", None, "", "liver", 1)


def test_descriptor_from_task():
    spec = TaskSpec(
        name="MnMs-Siemens",
        modality="cine MR",
        site="Siemens scanner",
        region="heart",
        objective="cardiac structure segmentation",
        classes=["LV", "MYO", "RV"],
        data=PhantomSource(generator="cardiac_mr"),
    )
    d = TaskDescriptor.from_task(spec)
    assert d == TaskDescriptor("MnMs-Siemens", "cine MR", "Siemens scanner", "heart", "cardiac structure segmentation", 3)


# -------------------------------------------------------------------------------------------------- pool


def test_pool_add_index_idempotent():
    pool = PromptPool()
    assert pool.add(DESCS[0]) == 0 and pool.add(DESCS[1]) == 1
    assert pool.add(DESCS[0]) == 0 and len(pool) == 2
    assert pool.names == ["Fundus-A", "Fundus-B"] and pool.index("Fundus-B") == 1
    assert list(pool) == DESCS[:2] and pool.descriptors == tuple(DESCS[:2])
    with pytest.raises(ValueError, match="different fields"):
        pool.add(TaskDescriptor("Fundus-A", "OCT", None, "retina", "layers", 2))
    with pytest.raises(KeyError, match="not in the prompt pool"):
        pool.index("nope")


def test_pool_wire_round_trip():
    pool = PromptPool(DESCS)
    wire = pool.to_wire()
    assert set(wire) == {"names", "modalities", "sites", "regions", "objectives", "num_classes"}
    for col, vals in wire.items():
        assert isinstance(vals, list) and len(vals) == len(DESCS)
        assert all(type(v) is (int if col == "num_classes" else str) for v in vals)
    assert wire["sites"][3] == ""
    back = PromptPool.from_wire(wire)
    assert back == pool and back.descriptors == pool.descriptors and back[3].site is None
    assert PromptPool.from_wire(PromptPool().to_wire()) == PromptPool()


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda w: w.pop("regions"), "regions"),
        (lambda w: w.update(extra=["x"] * 5), "extra"),
        (lambda w: w.update(names="Fundus-A"), "names"),
        (lambda w: w["modalities"].__setitem__(1, 7), r"modalities\[1\]"),
        (lambda w: w["num_classes"].__setitem__(2, "3"), r"num_classes\[2\]"),
        (lambda w: w["num_classes"].__setitem__(2, True), r"num_classes\[2\]"),
        (lambda w: w["num_classes"].__setitem__(2, 0), r"num_classes\[2\]"),
        (lambda w: w["objectives"].__setitem__(0, "x" * 161), r"objectives\[0\]"),
        (lambda w: w["regions"].__setitem__(0, ""), r"regions\[0\]"),
        (lambda w: w["sites"].pop(), "unequal lengths"),
        (lambda w: w["names"].__setitem__(1, "Fundus-A"), "repeats"),
    ],
)
def test_pool_wire_invalid(mutate, field):
    wire = PromptPool(DESCS).to_wire()
    mutate(wire)
    with pytest.raises(ValueError, match=field):
        PromptPool.from_wire(wire)


def test_pool_wire_not_a_mapping():
    with pytest.raises(ValueError, match="mapping"):
        PromptPool.from_wire([1, 2])


# -------------------------------------------------------------------------------------------- embeddings


def test_embed_pool_shapes_and_cache():
    enc = FakeEncoder()
    pool = PromptPool(DESCS[:3])
    emb = embed_pool(pool, enc)
    assert emb.full.shape == (3, E) and set(emb.attributes) == set(ATTRIBUTES)
    assert all(v.shape == (3, E) for v in emb.attributes.values())
    assert emb.names == tuple(pool.names) and len(emb) == 3
    # the two fundus tasks share region and objective text -> identical attribute rows, different modality rows
    assert torch.equal(emb.attributes["region"][0], emb.attributes["region"][1])
    assert not torch.equal(emb.attributes["modality"][0], emb.attributes["modality"][1])
    torch.testing.assert_close(emb.attributes["modality"][0], enc.encode([DESCS[0].attribute_text("modality")])[0])
    n_texts = sum(len(c) for c in enc.calls[:1])
    assert n_texts == len(set(enc.calls[0])) == 3 + 3 + 2 + 2  # unique texts only (full, modality, region, objective)
    pool.add(DESCS[3])
    enc.calls.clear()
    emb2 = embed_pool(pool, enc)
    assert len(enc.calls) == 1 and len(enc.calls[0]) == 4  # only the new task's texts are encoded
    assert torch.equal(emb2.full[:3], emb.full)
    assert emb2.subset(slice(0, 2)).full.shape == (2, E)
    # the learning round rebuilds it with only full/attributes
    assert PoolEmbeddings(full=emb.full, attributes=dict(emb.attributes)).names == ()


def test_embed_pool_with_minilm():
    from c2gr_fed.scenario.schema import TextEncoderConfig
    from c2gr_fed.text import build_text_encoder

    enc = build_text_encoder(TextEncoderConfig(name="minilm"))
    emb = embed_pool(PromptPool(DESCS), enc)
    assert emb.full.shape == (5, 384)
    sim = emb.full @ emb.full.T
    assert sim[0, 1] > sim[0, 2] and sim[0, 1] > sim[0, 4]  # the two fundus tasks are the closest pair
    g = RUPSPromptGraph(384, CFG)
    assert g(emb).seg.shape == (5, CFG.tokens, CFG.token_dim)


# ------------------------------------------------------------------------------------------------- graph


@pytest.mark.parametrize("n", [1, 2, 5])
@pytest.mark.parametrize("kind", ["rups", "plain"])
def test_output_shapes(n, kind):
    torch.manual_seed(0)
    m = build_prompt_module(kind, E, CFG)
    out = m(_emb(n))
    assert isinstance(out, PromptTokens)
    assert out.seg.shape == out.gen.shape == (n, CFG.tokens, CFG.token_dim)
    assert torch.isfinite(out.seg).all() and torch.isfinite(out.gen).all()
    if kind == "rups":
        assert m.relation_prompts(_emb(n)).shape == (n, CFG.node_dim)
        att = m.attention(_emb(n))
        assert att["alpha"].shape == (6, n, n) and att["beta"].shape == (6, n)
        torch.testing.assert_close(att["alpha"].sum(-1), torch.ones(6, n))
        torch.testing.assert_close(att["beta"].sum(0), torch.ones(n))


def test_subgraphs_are_the_six_subsets():
    assert len(SUBGRAPHS) == 6 and len(set(SUBGRAPHS)) == 6
    assert all(1 <= len(s) <= 2 and set(s) <= set(ATTRIBUTES) for s in SUBGRAPHS)


@pytest.mark.parametrize("kind", ["rups", "plain"])
def test_state_dict_independent_of_pool_size(kind):
    torch.manual_seed(0)
    a = build_prompt_module(kind, E, CFG)
    b = build_prompt_module(kind, E, CFG)
    a(_emb(1))
    b(_emb(5))
    sa, sb = a.state_dict(), b.state_dict()
    assert {k: v.shape for k, v in sa.items()} == {k: v.shape for k, v in sb.items()}
    b.load_state_dict(sa, strict=True)
    torch.testing.assert_close(a(_emb(5)).seg, b(_emb(5)).seg)


def test_seg_is_gen_for_rups_not_for_plain():
    torch.manual_seed(0)
    r = RUPSPromptGraph(E, CFG)(_emb(3))
    assert r.seg is r.gen
    p = PlainPrompts(E, CFG)(_emb(3))
    assert p.seg is not p.gen and not torch.allclose(p.seg, p.gen)


RUPS_PARAMS = ("W.weight", "a_S", "lambda_S", "q", "W_s.weight", "W_s.bias")


@pytest.mark.parametrize("which", ["seg", "gen"])
def test_gradients_reach_every_graph_parameter(which):
    torch.manual_seed(0)
    g = RUPSPromptGraph(E, CFG)
    out = getattr(g(_emb(5)), which)
    target = torch.randn_like(out)
    ((out - target) ** 2).mean().backward()
    params = dict(g.named_parameters())
    for name in RUPS_PARAMS + ("to_tokens.weight",):
        grad = params[name].grad
        assert grad is not None and grad.abs().sum() > 0, f"no gradient reaches {name} from {which} tokens"
    assert (params["lambda_S"].grad != 0).all() and (params["a_S"].grad.abs().sum(1) > 0).all()


def test_gradients_from_both_models_reach_plain_branches_separately():
    torch.manual_seed(0)
    m = PlainPrompts(E, CFG)
    out = m(_emb(3))
    (out.seg * torch.randn_like(out.seg)).sum().backward()
    assert m.seg.net[0].weight.grad.abs().sum() > 0
    assert m.gen.net[0].weight.grad is None  # not coupled: the denoiser's branch is untouched by L_seg


def test_lambda_changes_output():
    torch.manual_seed(0)
    g = RUPSPromptGraph(E, CFG)
    emb = _emb(5)
    before = g(emb).seg.detach().clone()
    with torch.no_grad():
        g.lambda_S.fill_(5.0)
    after = g(emb).seg.detach()
    assert not torch.allclose(before, after, atol=1e-4)
    # larger lambda -> attention follows attribute similarity more: the fundus pair share region/objective
    region = SUBGRAPHS.index(("region",))
    alpha = g.attention(emb)["alpha"][region]
    assert alpha[0, 1] > alpha[0, 2] and alpha[0, 1] > alpha[0, 4]


def test_single_task_pool_attends_to_itself():
    torch.manual_seed(0)
    g = RUPSPromptGraph(E, CFG)
    emb = _emb(1)
    att = g.attention(emb)
    torch.testing.assert_close(att["alpha"], torch.ones(6, 1, 1))
    h = g.W(emb.full)
    torch.testing.assert_close(g.relation_prompts(emb), torch.nn.functional.leaky_relu(h, CFG.leaky_slope))


@pytest.mark.parametrize("kind", ["rups", "plain"])
def test_permutation_equivariance(kind):
    torch.manual_seed(0)
    m = build_prompt_module(kind, E, CFG)
    perm = [3, 0, 4, 2, 1]
    base = m(_emb(5))
    permuted = m(_emb(5, order=perm))
    torch.testing.assert_close(permuted.seg, base.seg[perm], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(permuted.gen, base.gen[perm], atol=1e-5, rtol=1e-5)


def test_new_task_changes_old_prompts_only_through_relations():
    """Adding a task changes earlier tasks' prompts (they attend to it) but nothing else of theirs: their node
    embeddings stay, their attention among themselves keeps its proportions (one new column joins each softmax),
    and giving the new column no weight gives back the four-task prompts exactly."""
    torch.manual_seed(0)
    g = RUPSPromptGraph(E, CFG)
    with torch.no_grad():
        four, five = g._graph(_emb(4)), g._graph(_emb(5))
        assert five["p"].shape[0] == 5 and not torch.allclose(four["p"], five["p"][:4])
        torch.testing.assert_close(five["h"][:4], four["h"])  # the old nodes are the old nodes
        old = five["alpha"][:, :4, :4]
        assert bool((five["alpha"][:, :4, 4] > 0).all())  # every old task attends to the new one
        torch.testing.assert_close(old / old.sum(-1, keepdim=True), four["alpha"])
        # without the new task's column, the old tasks' relation embeddings and prompts are the four-task ones
        z = F.leaky_relu((old / old.sum(-1, keepdim=True)) @ five["h"][:4], CFG.leaky_slope)
        torch.testing.assert_close(z, four["z"])


def test_unknown_kind_and_bad_embeddings():
    with pytest.raises(ValueError, match="unknown prompt module kind"):
        build_prompt_module("graph", E, CFG)
    g = RUPSPromptGraph(E, CFG)
    with pytest.raises(ValueError, match="at least one task"):
        g(embed_pool(PromptPool(), FakeEncoder()))
    with pytest.raises(ValueError, match=r"\(N, 24\)"):
        g(PoolEmbeddings(torch.zeros(2, 7), {a: torch.zeros(2, 7) for a in ATTRIBUTES}))


def test_residual_keeps_tasks_that_share_modality_apart(root) -> None:
    """The three abdominal-CT tasks of 20tasks.yaml (one kind of image, three organs): the paper's graph gives them
    almost the same tokens on fresh weights; with model.prompt.residual each keeps its own node and they differ.
    No parameter is added, so what travels is unchanged."""
    from c2gr_fed.scenario import load_scenario
    from c2gr_fed.scenario.schema import TextEncoderConfig
    from c2gr_fed.text import build_text_encoder

    sc = load_scenario(root / "scenarios" / "20tasks.yaml")
    pool = PromptPool([TaskDescriptor.from_task(t) for t in sc.stream()])
    emb = embed_pool(pool, build_text_encoder(TextEncoderConfig(name="minilm")))
    ct = [pool.names.index(n) for n in ("Pancreas", "KiTS", "LiTS")]
    worst = {}
    for residual in (False, True):
        torch.manual_seed(0)
        g = RUPSPromptGraph(384, PromptConfig(residual=residual))
        with torch.no_grad():
            t = torch.nn.functional.normalize(g(emb).seg.flatten(1), dim=1)
        worst[residual] = max(float(t[i] @ t[j]) for i in ct for j in ct if i < j)
        if residual:
            assert set(g.state_dict()) == set(RUPSPromptGraph(384, PromptConfig()).state_dict())
    assert worst[False] > 0.99 and worst[True] < 0.9, worst
