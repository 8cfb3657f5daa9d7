"""Float reference implementations of every operator (NCHW, batch first).

Used by :class:`aras.graph.FloatGraph` (float inference, calibration) and by the golden model's
host path (operators the crossbars cannot run). Convolution is im2col + matmul.
"""

from __future__ import annotations

import math

import numpy as np


def im2col(x: np.ndarray, kh: int, kw: int, stride, pads, dilation, pad_value=0.0):
    """Patches of ``x`` (B, C, H, W) as (B, OH*OW, C*kh*kw), rows ordered (c, i, j) like OIHW weights."""
    b, c, h, w = x.shape
    sh, sw = stride
    pt, pl, pb, pr = pads
    dh, dw = dilation
    xp = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=pad_value)
    oh = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    ow = (w + pl + pr - dw * (kw - 1) - 1) // sw + 1
    cols = np.empty((b, c, kh, kw, oh, ow), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = xp[:, :, i * dh: i * dh + sh * (oh - 1) + 1: sh, j * dw: j * dw + sw * (ow - 1) + 1: sw]
    return cols.reshape(b, c * kh * kw, oh * ow).transpose(0, 2, 1), oh, ow


def conv_out_hw(h: int, w: int, kernel, stride, pads, dilation) -> tuple[int, int]:
    kh, kw = kernel
    oh = (h + pads[0] + pads[2] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (w + pads[1] + pads[3] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    return oh, ow


def conv2d(x, weight, bias, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1), groups=1):
    b, c, _, _ = x.shape
    cout, cin_g, kh, kw = weight.shape
    cols, oh, ow = im2col(x, kh, kw, stride, pads, dilation)
    out = np.empty((b, oh * ow, cout), dtype=np.float64)
    cout_g = cout // groups
    for g in range(groups):
        xs = cols[:, :, g * cin_g * kh * kw:(g + 1) * cin_g * kh * kw]
        ws = weight[g * cout_g:(g + 1) * cout_g].reshape(cout_g, -1)
        out[:, :, g * cout_g:(g + 1) * cout_g] = xs @ ws.T
    if bias is not None:
        out += bias
    return out.transpose(0, 2, 1).reshape(b, cout, oh, ow)


def linear(x, weight, bias):
    # One 2-D BLAS call in float64 (a stacked matmul with a float32 operand is several times slower).
    w = np.asarray(weight, dtype=np.float64)
    y = (x.reshape(-1, x.shape[-1]) @ w.T).reshape(x.shape[:-1] + (w.shape[0],))
    return y + bias if bias is not None else y


def pool(x, kind: str, kernel, stride, pads, count_include_pad: bool = False):
    b, c, h, w = x.shape
    kh, kw = kernel
    fill = -np.inf if kind == "max" else 0.0
    cols, oh, ow = im2col(x.reshape(b * c, 1, h, w), kh, kw, stride, pads, (1, 1), pad_value=fill)
    if kind == "max":
        y = cols.max(axis=2)
    else:
        if count_include_pad:
            y = cols.sum(axis=2) / (kh * kw)
        else:
            ones = np.ones((1, 1, h, w))
            cnt, _, _ = im2col(ones, kh, kw, stride, pads, (1, 1))
            y = cols.sum(axis=2) / cnt.sum(axis=2)
    return y.reshape(b, c, oh, ow)


def global_avg_pool(x):
    return x.mean(axis=(2, 3), keepdims=True)


def leaky_relu(x, slope):
    """``slope`` is a scalar (LeakyReLU) or per-channel vector on axis 1 (PReLU)."""
    s = np.asarray(slope, dtype=np.float64)
    if s.ndim == 1 and x.ndim >= 2:
        s = s.reshape((1, -1) + (1,) * (x.ndim - 2))
    return np.where(x >= 0, x, x * s)


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def layernorm(x, gamma, beta, eps):
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * gamma + beta


_ERF = np.frompyfunc(math.erf, 1, 1)
_ERFC = np.frompyfunc(math.erfc, 1, 1)


def erf(x):
    """Vectorised libm erf (~1 ulp; as fast as a polynomial approximation through numpy)."""
    return np.asarray(_ERF(np.asarray(x, dtype=np.float64)), dtype=np.float64)


def gelu(x):
    """erf GELU, as in BERT: x/2·(1 + erf(x/√2)), evaluated as x/2·erfc(−x/√2) (the same function; no
    cancellation in the negative tail). An earlier polynomial erf (Abramowitz & Stegun 7.1.26, |error|
    < 1.5e-7) was off by several int8 LSBs there when the output scale resolves the tail
    (verif/golden/test_host_oracle.py)."""
    x = np.asarray(x, dtype=np.float64)
    return 0.5 * x * np.asarray(_ERFC(-x / math.sqrt(2.0)), dtype=np.float64)


def attention(q, k, v, heads: int):
    """Multi-head scaled dot-product attention over (B, T, D) tensors, no mask."""
    b, t, d = q.shape
    hd = d // heads

    def split(a):  # contiguous, so the stacked matmuls below go through BLAS
        return np.ascontiguousarray(a.reshape(b, t, heads, hd).transpose(0, 2, 1, 3))

    s = split(q) @ np.ascontiguousarray(split(k).transpose(0, 1, 3, 2)) / math.sqrt(hd)
    ctx = softmax(s, axis=-1) @ split(v)
    return ctx.transpose(0, 2, 1, 3).reshape(b, t, d)


def gelu_tanh(x):
    """tanh-approximated GELU (ONNX ``Gelu(approximate="tanh")``, GPT-2/PyTorch ``approximate="tanh"``):
    x/2·(1 + tanh(√(2/π)·(x + 0.044715·x³)))."""
    x = np.asarray(x, dtype=np.float64)
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def sigmoid(x):
    """1 / (1 + e^−x), evaluated as (1 + tanh(x/2))/2 (no overflow for large |x|)."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=np.float64)))


def hardsigmoid(x, alpha: float, beta: float):
    """ONNX HardSigmoid: clip(alpha·x + beta, 0, 1)."""
    return np.clip(alpha * np.asarray(x, dtype=np.float64) + beta, 0.0, 1.0)


def _resize_coords(n_in: int, n_out: int, scale: float, coord: str) -> np.ndarray:
    """Input coordinate of every output index (ONNX Resize ``coordinate_transformation_mode``; like
    ONNX's reference, the output length in the formulas is the real ``scale · n_in``)."""
    o = np.arange(n_out, dtype=np.float64)
    w = scale * n_in
    if coord == "half_pixel":
        return (o + 0.5) / scale - 0.5
    if coord == "pytorch_half_pixel":
        return (o + 0.5) / scale - 0.5 if w != 1 else np.full(n_out, -0.5)
    if coord == "asymmetric":
        return o / scale
    if coord == "align_corners":
        return o * (n_in - 1) / (w - 1) if w != 1 else np.zeros(n_out)
    if coord == "tf_half_pixel_for_nearest":
        return (o + 0.5) / scale
    if coord == "half_pixel_symmetric":
        adj = n_out / w
        return n_in / 2 * (1 - adj) + (o + 0.5) / scale - 0.5
    raise ValueError(f"unknown coordinate transformation {coord!r}")


def resize(x, size, scales, mode: str = "nearest", coord: str = "half_pixel", nearest: str = "round_prefer_floor"):
    """ONNX Resize of a (B, C, H, W) batch over H and W: ``mode`` nearest (``nearest`` rounding mode)
    or linear (bilinear, neighbours clamped to the edge); ``scales`` are the ONNX scale factors (or
    out/in when the model gave sizes)."""
    y = np.asarray(x, dtype=np.float64)
    for ax, n_out, sc in ((2, int(size[0]), float(scales[0])), (3, int(size[1]), float(scales[1]))):
        n_in = y.shape[ax]
        c = _resize_coords(n_in, n_out, sc, coord)
        if mode == "nearest":
            if nearest == "round_prefer_floor":
                i = np.ceil(c - 0.5)
            elif nearest == "round_prefer_ceil":
                i = np.floor(c + 0.5)
            elif nearest == "floor":
                i = np.floor(c)
            elif nearest == "ceil":
                i = np.ceil(c)
            else:
                raise ValueError(f"unknown nearest mode {nearest!r}")
            y = np.take(y, np.clip(i, 0, n_in - 1).astype(np.int64), axis=ax)
        elif mode == "linear":
            f = np.floor(c)
            w = (c - f).reshape((-1,) + (1,) * (3 - ax))
            i0 = np.clip(f, 0, n_in - 1).astype(np.int64)
            i1 = np.clip(f + 1, 0, n_in - 1).astype(np.int64)
            y = np.take(y, i0, axis=ax) * (1 - w) + np.take(y, i1, axis=ax) * w
        else:
            raise ValueError(f"unknown resize mode {mode!r}")
    return y


def upsample_zeros(x, up, border):
    """(B, C, H, W) -> zeros inserted between pixels (``up`` − 1 per gap), then the border padded with
    zeros (t, l, b, r > 0) or cropped (< 0): the input of the stride-1 conv a ConvTranspose lowers to."""
    b, c, h, w = x.shape
    sh, sw = int(up[0]), int(up[1])
    t, le, bo, r = (int(v) for v in border)
    z = np.zeros((b, c, (h - 1) * sh + 1, (w - 1) * sw + 1), dtype=np.float64)
    z[:, :, ::sh, ::sw] = x
    z = np.pad(z, ((0, 0), (0, 0), (max(t, 0), max(bo, 0)), (max(le, 0), max(r, 0))))
    hh, ww = z.shape[2], z.shape[3]
    return z[:, :, max(-t, 0): hh - max(-bo, 0), max(-le, 0): ww - max(-r, 0)]
