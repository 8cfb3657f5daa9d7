"""TFLite int8 reference arithmetic, vectorised over numpy int64 arrays.

Follows tensorflow/lite/kernels/internal/common.h and reference/integer_ops/*.h (see
docs/architecture.md, "Quantization arithmetic"): QuantizeMultiplier, SaturatingRoundingDoublingHighMul
(SRDHM), RoundingDivideByPOT (RDBPOT), MultiplyByQuantizedMultiplier (MBQM). Values are int64 arrays
holding int32 quantities; results are int64 arrays too.
"""

from __future__ import annotations

import math

import numpy as np

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


def round_half_away(v) -> np.ndarray:
    """std::round: halves away from zero (TFLite's rounding for quantize and multipliers)."""
    v = np.asarray(v, dtype=np.float64)
    return (np.sign(v) * np.floor(np.abs(v) + 0.5)).astype(np.int64)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """Real multiplier -> (M, shift) with real ~= M * 2**(shift - 31), M in [2**30, 2**31) or 0."""
    if real == 0.0 or not math.isfinite(real):
        if not math.isfinite(real):
            raise ValueError(f"multiplier {real} is not finite")
        return 0, 0
    q, e = math.frexp(real)
    m = int(round_half_away(q * (1 << 31)))
    if abs(m) == 1 << 31:
        m //= 2
        e += 1
    if e < -31:
        return 0, 0
    if e > 30:
        raise ValueError(f"multiplier {real} too large (shift {e} > 30)")
    return m, e


def quantize_multipliers(reals) -> tuple[np.ndarray, np.ndarray]:
    pairs = [quantize_multiplier(float(r)) for r in np.ravel(reals)]
    return (np.array([p[0] for p in pairs], dtype=np.int32), np.array([p[1] for p in pairs], dtype=np.int32))


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


def quantize(v, scale: float, zero_point: int) -> np.ndarray:
    """Float -> int8: round half away from zero, + zero point, clamp (TFLite Quantize)."""
    return np.clip(round_half_away(np.asarray(v, dtype=np.float64) / scale) + zero_point, -128, 127).astype(np.int8)


def dequantize(q, scale: float, zero_point: int) -> np.ndarray:
    return (np.asarray(q, dtype=np.float64) - zero_point) * scale
