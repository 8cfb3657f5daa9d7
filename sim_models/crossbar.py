"""Behavioral ReRAM crossbar + ADC: the bit-serial MVM of one tile (docs/architecture.md, "Bit-serial MVM").

Inputs are raw two's-complement int8 activations, one bit-plane per step (LSB first); each physical
column's analog sum of (input bit x cell level) is digitised by its ADC, which clips at
2**adc_bits - 1; shift-and-add over the bit-planes gives the MSB plane weight -128.
"""

from __future__ import annotations

import numpy as np

ACT_BITS = 8
# Two's complement: plane b has weight +2**b, except the MSB plane (-2**7).
PLANE_WEIGHTS = np.array([1 << b for b in range(ACT_BITS - 1)] + [-(1 << (ACT_BITS - 1))], dtype=np.int64)


def _matmul_exact(a: np.ndarray, b: np.ndarray, bound: int) -> np.ndarray:
    """Integer matmul through BLAS, exact: float32 while every partial sum stays below 2**24."""
    dt = np.float32 if bound < (1 << 24) else np.float64
    return np.rint(a.astype(dt) @ b.astype(dt)).astype(np.int64)


def bit_planes(x: np.ndarray) -> np.ndarray:
    """int8 activations (P, R) -> (8, P, R) bits of their two's-complement code, LSB plane first."""
    u = np.asarray(x, dtype=np.int64) & 0xFF
    return ((u[None] >> np.arange(ACT_BITS, dtype=np.int64)[:, None, None]) & 1).astype(np.uint8)


def adc_sums(x: np.ndarray, levels: np.ndarray, adc_max: int) -> np.ndarray:
    """Per-plane ADC outputs D[b, p, j] = min(Σ_i bit_b(x[p, i]) * levels[i, j], adc_max)."""
    planes = bit_planes(x)
    s = _matmul_exact(planes.reshape(-1, planes.shape[2]), levels, int(levels.sum(axis=0).max(initial=0)) + 1)
    return np.minimum(s.reshape(ACT_BITS, x.shape[0], levels.shape[1]), adc_max)


def mvm(x: np.ndarray, levels: np.ndarray, adc_max: int, force_bit_serial: bool = False) -> np.ndarray:
    """Shift-and-added ADC results T[p, j] = Σ_b c_b 2^b D[b, p, j] for a tile's cell ``levels`` (R, C).

    Columns whose total level Σ_i levels[i, j] cannot exceed ``adc_max`` never clip, so for them
    T = x @ levels exactly; the bit-serial path runs only where clipping is possible (or when forced).
    Both paths are the same function of the inputs (tests check it).
    """
    x = np.asarray(x, dtype=np.int64)
    levels = np.asarray(levels, dtype=np.int64)
    colmax = levels.sum(axis=0)
    clip_cols = np.ones(levels.shape[1], bool) if force_bit_serial else colmax > adc_max
    out = np.empty((x.shape[0], levels.shape[1]), dtype=np.int64)
    if (~clip_cols).any():
        lv = levels[:, ~clip_cols]
        out[:, ~clip_cols] = _matmul_exact(x, lv, 128 * int(lv.sum(axis=0).max()) + 1)
    if clip_cols.any():
        d = adc_sums(x, levels[:, clip_cols], adc_max)
        out[:, clip_cols] = np.tensordot(PLANE_WEIGHTS, d, axes=(0, 0))
    return out
