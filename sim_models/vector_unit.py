"""Vector unit: pooling, residual add, standalone activations on int8 tensors (TFLite int8 rules).

All functions take and return batch-first int8 arrays; see docs/architecture.md, "Vector unit".
"""

from __future__ import annotations

import numpy as np

from aras.ops_float import im2col

from .quant import mbqm

_BELOW_INT8 = -1000  # padding for max pooling: never the maximum


def maxpool(x, kernel, stride, pads, act_min: int = -128, act_max: int = 127) -> np.ndarray:
    b, c, h, w = x.shape
    cols, oh, ow = im2col(x.reshape(b * c, 1, h, w).astype(np.int64), *kernel, stride, pads, (1, 1),
                          pad_value=_BELOW_INT8)
    return np.clip(cols.max(axis=2), act_min, act_max).reshape(b, c, oh, ow).astype(np.int8)


def _round_div(acc, count):
    """TFLite AveragePool: (acc ± count/2) / count with C truncating division."""
    acc = np.asarray(acc, np.int64)
    count = np.asarray(count, np.int64)
    num = np.where(acc > 0, acc + count // 2, acc - count // 2)
    return np.sign(num) * (np.abs(num) // count)


def avgpool(x, kernel, stride, pads, act_min, act_max, zero_point=0, count_include_pad=False) -> np.ndarray:
    b, c, h, w = x.shape
    xi = x.reshape(b * c, 1, h, w).astype(np.int64)
    if count_include_pad:
        # Padded cells hold the real value 0, i.e. the zero point, and count in the divisor.
        cols, oh, ow = im2col(xi, *kernel, stride, pads, (1, 1), pad_value=zero_point)
        s, cnt = cols.sum(axis=2), kernel[0] * kernel[1]
    else:
        cols, oh, ow = im2col(xi, *kernel, stride, pads, (1, 1), pad_value=0)
        ones, _, _ = im2col(np.ones((1, 1, h, w), np.int64), *kernel, stride, pads, (1, 1), pad_value=0)
        s, cnt = cols.sum(axis=2), ones.sum(axis=2)
    y = np.clip(_round_div(s, cnt), act_min, act_max)
    return y.reshape(b, c, oh, ow).astype(np.int8)


def gap(x, act_min, act_max) -> np.ndarray:
    b, c, h, w = x.shape
    s = x.reshape(b, c, h * w).astype(np.int64).sum(axis=2)
    return np.clip(_round_div(s, h * w), act_min, act_max).reshape(b, c, 1, 1).astype(np.int8)


def add(x1, x2, z1, z2, zo, a: dict) -> np.ndarray:
    """TFLite int8 Add: both inputs shifted left by ``left_shift``, rescaled, summed, rescaled."""
    ls = a["left_shift"]
    s1 = mbqm((x1.astype(np.int64) - z1) << ls, a["m1"], a["s1"])
    s2 = mbqm((x2.astype(np.int64) - z2) << ls, a["m2"], a["s2"])
    y = mbqm(s1 + s2, a["mo"], a["so"]) + zo
    return np.clip(y, a["act_min"], a["act_max"]).astype(np.int8)


def channel_view(v: np.ndarray, ndim: int) -> np.ndarray:
    """Per-channel vector -> broadcastable against a batch-first tensor of ``ndim`` dims.
    The channel axis is 1 for (B, C, H, W) and the last axis otherwise."""
    if ndim == 4:
        return v.reshape(1, -1, 1, 1)
    return v.reshape((1,) * (ndim - 1) + (-1,))


def leaky(x, zi, zo, arrays) -> np.ndarray:
    """TFLite LeakyRelu (per-channel multipliers give PReLU)."""
    xv = x.astype(np.int64) - zi
    cv = {k: channel_view(v.astype(np.int64), x.ndim) for k, v in arrays.items()}
    y = np.where(xv >= 0, mbqm(xv, cv["mult_id"], cv["shift_id"]), mbqm(xv, cv["mult_alpha"], cv["shift_alpha"]))
    return np.clip(y + zo, -128, 127).astype(np.int8)
