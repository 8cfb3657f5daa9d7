"""Host path: operators the crossbars cannot run (softmax, attention, LayerNorm, GELU).

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
        y = F.gelu(f[0])
    elif layer.op == "attention":
        y = F.attention(f[0], f[1], f[2], int(a["heads"]))
    else:
        raise ValueError(f"not a host op: {layer.op}")
    return quantize(y, tout.scale, tout.zero_point)


def flops(layer, tin) -> int:
    """Rough host work of one sample (reported beside accelerator results)."""
    n = int(np.prod(tin[0].shape))
    if layer.op == "attention":
        t, d = tin[0].shape
        return 4 * t * t * d + 5 * t * t * int(layer.attrs["heads"])
    return {"softmax": 5, "layernorm": 8, "gelu": 10}[layer.op] * n
