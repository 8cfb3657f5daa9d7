"""Host path: operators the accelerator has no unit for (softmax, attention, LayerNorm, GELU; sigmoid,
hard-sigmoid, hard-swish, SiLU until the vector unit has them; broadcasting products, products of two
activations, transposes, concatenation, slices, resize, the zero insertion of a lowered ConvTranspose).

Inputs are dequantized, the float64 reference op runs (aras.ops_float), the result is quantized
with round-half-away-from-zero and clamped to int8. Host work is reported, not timed.
"""

from __future__ import annotations

import numpy as np

from aras import ops_float as F
from aras.quant import dequantize, quantize


def run(layer, xs: list[np.ndarray], tin, tout) -> np.ndarray:
    f = [dequantize(x, t.scale, t.zero_point) for x, t in zip(xs, tin, strict=True)]
    a, p = layer.attrs, layer.arrays
    if layer.op == "softmax":
        ax = int(a.get("axis", -1))
        y = F.softmax(f[0], axis=ax if ax < 0 else ax + 1)
    elif layer.op == "layernorm":
        y = F.layernorm(f[0], p["gamma"].astype(np.float64), p["beta"].astype(np.float64), float(a.get("eps", 1e-12)))
    elif layer.op == "gelu":
        y = F.gelu_tanh(f[0]) if a.get("approximate", "none") == "tanh" else F.gelu(f[0])
    elif layer.op == "attention":
        y = F.attention(f[0], f[1], f[2], int(a["heads"]))
    elif layer.op in _GRAPH_RULE:
        y = _graph_op(layer, f)
    else:
        raise ValueError(f"not a host op: {layer.op}")
    return quantize(y, tout.scale, tout.zero_point)


# Host ops whose float rule is aras.graph.run_node's (one definition for the float graph and the host).
_GRAPH_RULE = ("sigmoid", "hardsigmoid", "hardswish", "silu", "mul", "matmul", "transpose", "concat", "resize",
               "upsample", "slice")


def _graph_op(layer, f: list[np.ndarray]) -> np.ndarray:
    from aras.graph import FNode, run_node

    return run_node(FNode(layer.name, layer.op, list(layer.inputs), layer.output, dict(layer.attrs), {}), f)


def flops(layer, tin) -> int:
    """Rough host work of one sample (reported beside accelerator results)."""
    n = int(np.prod(tin[0].shape))
    if layer.op == "attention":
        t, d = tin[0].shape
        return 4 * t * t * d + 5 * t * t * int(layer.attrs["heads"])
    if layer.op == "matmul":  # 2·M·K·N per broadcast leading index
        a, b = tin[0].shape, tin[1].shape
        lead = int(np.prod(np.broadcast_shapes(a[:-2], b[:-2]), dtype=np.int64))
        return 2 * lead * a[-2] * a[-1] * b[-1]
    if layer.op in ("transpose", "concat", "upsample", "slice"):  # data movement only
        return 0
    if layer.op == "mul":
        return int(np.prod(np.broadcast_shapes(tin[0].shape, tin[1].shape), dtype=np.int64))
    if layer.op == "resize":  # per output element: 1 gather (nearest) or 2 x 3 (bilinear)
        c = tin[0].shape[0]
        oh, ow = (int(v) for v in layer.attrs["size"])
        return c * oh * ow * (6 if layer.attrs.get("mode") == "linear" else 1)
    return {"softmax": 5, "layernorm": 8, "gelu": 10, "sigmoid": 4, "hardsigmoid": 2, "hardswish": 3,
            "silu": 5}[layer.op] * n
