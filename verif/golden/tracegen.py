"""Test-only builders of small int8 layer traces with chosen (corner or random) values."""

from __future__ import annotations

import numpy as np

from aras.ops_float import conv_out_hw
from aras.trace import Layer, TensorQ, Trace


def weight_layer_trace(weight, bias=None, in_shape=None, zx=0, zo=0, mult=None, shift=None, act=("none", -128, 127),
                       stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1), groups=1, neg=None) -> Trace:
    """One conv2d (4-D ``weight``) or linear (2-D) layer. ``neg`` = (mult_neg, shift_neg) for fused leaky."""
    weight = np.asarray(weight, np.int8)
    cout = weight.shape[0]
    bias = np.zeros(cout, np.int32) if bias is None else np.asarray(bias, np.int32)
    mult = np.full(cout, 1 << 30, np.int32) if mult is None else np.asarray(mult, np.int32)
    shift = np.full(cout, -8, np.int32) if shift is None else np.asarray(shift, np.int32)
    arrays = {"weight": weight, "bias": bias, "mult": mult, "shift": shift}
    attrs = {"act": act[0], "act_min": act[1], "act_max": act[2]}
    if weight.ndim == 4:
        op = "conv2d"
        oh, ow = conv_out_hw(in_shape[1], in_shape[2], weight.shape[2:], stride, pads, dilation)
        out_shape = (cout, oh, ow)
        attrs.update(stride=list(stride), pads=list(pads), dilation=list(dilation), groups=groups)
    else:
        op = "linear"
        in_shape = in_shape or (weight.shape[1],)
        out_shape = tuple(in_shape[:-1]) + (cout,)
    if neg is not None:
        arrays["mult_neg"], arrays["shift_neg"] = (np.asarray(v, np.int32) for v in neg)
    tensors = {"x": TensorQ(tuple(in_shape), 0.05, zx), "y": TensorQ(out_shape, 0.1, zo)}
    tr = Trace("layer", "synthetic", "x", tensors, [Layer("L", op, ["x"], "y", attrs, arrays)], ["y"])
    tr.validate("test trace")
    return tr


def random_multipliers(rng, n):
    return rng.integers(1 << 30, (1 << 31) - 1, n, dtype=np.int64).astype(np.int32), \
        rng.integers(-14, -4, n).astype(np.int32)


def mlp_trace(seed: int, dims, name: str, with_logits: bool = True) -> Trace:
    """Random linear layers (fused ReLU between) and a softmax on the host; outputs: the probabilities,
    after the logits when ``with_logits``."""
    rng = np.random.default_rng(seed)
    names = [f"t{i}" for i in range(len(dims))]
    tensors = {n: TensorQ((d,), 0.05, int(rng.integers(-20, 20))) for n, d in zip(names, dims, strict=True)}
    layers = []
    for i in range(len(dims) - 1):
        m, s = random_multipliers(rng, dims[i + 1])
        arrays = {"weight": rng.integers(-127, 128, (dims[i + 1], dims[i])).astype(np.int8),
                  "bias": rng.integers(-2000, 2000, dims[i + 1]).astype(np.int32), "mult": m, "shift": s}
        act = ("relu", tensors[names[i + 1]].zero_point, 127) if i < len(dims) - 2 else ("none", -128, 127)
        layers.append(Layer(f"fc{i + 1}", "linear", [names[i]], names[i + 1],
                            {"act": act[0], "act_min": act[1], "act_max": act[2]}, arrays))
    tensors["prob"] = TensorQ((dims[-1],), 1 / 256, -128)
    layers.append(Layer("softmax", "softmax", [names[-1]], "prob", {"axis": -1}))
    tr = Trace(name, "synthetic", names[0], tensors, layers, [names[-1], "prob"] if with_logits else ["prob"])
    tr.validate(f"{name} test trace")
    return tr
