"""Fixed-point quantization helpers shared by the importer, the traces and the golden model.

The offline side of TFLite's int8 scheme (tensorflow/lite/kernels/internal/quantization_util.cc,
docs/architecture.md "Quantization arithmetic"): rounding, QuantizeMultiplier, Quantize/Dequantize.
The run-time arithmetic (SRDHM, RDBPOT, MBQM, requantization) is the golden model's,
``sim_models/quant.py``; the RTL has its own (``hw/fixedpoint.py``).
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


def quantize(v, scale: float, zero_point: int) -> np.ndarray:
    """Float -> int8: round half away from zero, + zero point, clamp (TFLite Quantize)."""
    # Saturate before the int64 cast (beyond 2**63 numpy's cast is undefined): 512 steps clamp anyway.
    r = np.clip(np.asarray(v, dtype=np.float64) / scale, -512.0, 512.0)
    return np.clip(round_half_away(r) + zero_point, -128, 127).astype(np.int8)


def dequantize(q, scale: float, zero_point: int) -> np.ndarray:
    return (np.asarray(q, dtype=np.float64) - zero_point) * scale
