"""TFLite int8 run-time arithmetic of the golden model, vectorised over numpy int64 arrays.

Follows tensorflow/lite/kernels/internal/common.h and reference/integer_ops/*.h (see
docs/architecture.md, "Quantization arithmetic"): SaturatingRoundingDoublingHighMul (SRDHM),
RoundingDivideByPOT (RDBPOT), MultiplyByQuantizedMultiplier (MBQM), requantization. The offline
helpers (QuantizeMultiplier, Quantize, Dequantize) are the contract's, ``aras/quant.py``. Values are int64 arrays
holding int32 quantities; results are int64 arrays too.
"""

from __future__ import annotations

import numpy as np

from aras.quant import INT32_MAX, INT32_MIN


def srdhm(a, b) -> np.ndarray:
    """SaturatingRoundingDoublingHighMul: round(a * b / 2**31) with TFLite's nudge, saturating."""
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    ab = a * b
    nudged = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    res = np.sign(nudged) * (np.abs(nudged) >> 31)  # C++ division truncates toward zero
    return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, res)


def rdbpot(x, exponent) -> np.ndarray:
    """RoundingDivideByPOT: x / 2**exponent rounded half away from zero."""
    x = np.asarray(x, dtype=np.int64)
    e = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << e) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> e) + (remainder > threshold)


def mbqm(x, m, shift) -> np.ndarray:
    """MultiplyByQuantizedMultiplier(x, M, shift). ``x << left`` saturates to int32 (our rule: C++ would
    overflow; it never happens for multipliers < 1, i.e. shift <= 0)."""
    shift = np.asarray(shift, dtype=np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    xs = np.clip(np.asarray(x, dtype=np.int64) << left, INT32_MIN, INT32_MAX)
    return rdbpot(srdhm(xs, m), right)


def requantize(acc, m, shift, zo: int, act_min: int, act_max: int, m_neg=None, shift_neg=None) -> np.ndarray:
    """acc (int32) -> int8 output: MBQM + zero point, clamped. With ``m_neg`` (fused LeakyReLU/PReLU),
    negative accumulators use (m_neg, shift_neg)."""
    y = mbqm(acc, m, shift)
    if m_neg is not None:
        y = np.where(np.asarray(acc) < 0, mbqm(acc, m_neg, shift_neg), y)
    return np.clip(y + zo, act_min, act_max).astype(np.int8)
