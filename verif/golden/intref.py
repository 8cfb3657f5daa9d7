"""Independent integer reference for the golden model's tests.

Plain int64 convolution / matmul over the int8 weights with the zero point subtracted from the inputs
(no crossbars, no encodings, no bit-serial inputs, no bias folding), and TFLite's requantization
written as scalar Python integer arithmetic straight from the reference kernels' definitions.
"""

from __future__ import annotations

import numpy as np


def srdhm(a: int, b: int) -> int:
    if a == b == -(1 << 31):
        return (1 << 31) - 1
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    q = ab + nudge
    return q // (1 << 31) if q >= 0 else -((-q) // (1 << 31))


def rdbpot(x: int, e: int) -> int:
    mask = (1 << e) - 1
    rem = x & mask
    thr = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> e) + (1 if rem > thr else 0)


def mbqm(x: int, m: int, shift: int) -> int:
    left, right = max(shift, 0), max(-shift, 0)
    return rdbpot(srdhm(x * (1 << left), m), right)


def requant(acc: np.ndarray, mult, shift, zo, lo, hi, mult_neg=None, shift_neg=None, axis=-1) -> np.ndarray:
    """Per-channel requantization along ``axis``; scalar Python arithmetic per element."""
    acc = np.moveaxis(np.asarray(acc, dtype=np.int64), axis, -1)
    out = np.empty(acc.shape, dtype=np.int64)
    for idx in np.ndindex(acc.shape):
        a, c = int(acc[idx]), idx[-1]
        if mult_neg is not None and a < 0:
            v = mbqm(a, int(mult_neg[c]), int(shift_neg[c]))
        else:
            v = mbqm(a, int(mult[c]), int(shift[c]))
        out[idx] = min(max(v + zo, lo), hi)
    return np.moveaxis(out, -1, axis).astype(np.int8)


def conv_acc(x: np.ndarray, zx: int, w: np.ndarray, bias: np.ndarray, stride, pads, dilation, groups) -> np.ndarray:
    """Σ (x - zx) * w + bias with explicit loops over the kernel (padding contributes 0)."""
    b, c, h, wd = x.shape
    cout, cin_g, kh, kw = w.shape
    xc = np.pad(x.astype(np.int64) - zx, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    oh = (h + pads[0] + pads[2] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (wd + pads[1] + pads[3] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((b, cout, oh, ow), np.int64)
    cout_g = cout // groups
    for o in range(cout):
        g = o // cout_g
        for ci in range(cin_g):
            for i in range(kh):
                for j in range(kw):
                    r0, c0 = i * dilation[0], j * dilation[1]
                    patch = xc[:, g * cin_g + ci, r0: r0 + stride[0] * (oh - 1) + 1: stride[0],
                               c0: c0 + stride[1] * (ow - 1) + 1: stride[1]]
                    out[:, o] += patch * int(w[o, ci, i, j])
        out[:, o] += int(bias[o])
    return out


def linear_acc(x: np.ndarray, zx: int, w: np.ndarray, bias: np.ndarray) -> np.ndarray:
    return (x.astype(np.int64) - zx) @ w.astype(np.int64).T + bias.astype(np.int64)
