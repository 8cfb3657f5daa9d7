"""Weight encodings: int8 weights -> 8-bit codes -> cell levels (the ``encoder``), and the
digital decode of column sums (the ``datapath``). See docs/architecture.md, "Encodings".

Physical layout of a tile: weight column j of an offset-family tile uses physical columns
[j*S, (j+1)*S), slice s (bits [s*cb, (s+1)*cb) of the code, s = 0 least significant) at j*S + s.
A signmag-family weight column j uses 2*S columns starting at 2*j*S: first the S slices of the
"first" magnitude column, then the S slices of the second; ``signmag`` stores (p, n), ``signmag_swap``
stores (n, p), with p = max(w, 0), n = max(-w, 0).
"""

from __future__ import annotations

import enum
import functools

import numpy as np


class Encoding(enum.IntEnum):
    OFFSET = 0  # u = w + 128 (plain)
    OFFSET_INV = 1  # u = 127 - w (per-column complement of OFFSET, same footprint)
    SIGNMAG = 2  # paired columns (p, n)
    SIGNMAG_SWAP = 3  # paired columns (n, p), per-column alternative of SIGNMAG


FAMILIES = {"offset": (Encoding.OFFSET, Encoding.OFFSET_INV), "signmag": (Encoding.SIGNMAG, Encoding.SIGNMAG_SWAP)}


def family_of(enc: Encoding) -> str:
    return "offset" if enc in FAMILIES["offset"] else "signmag"


def _slices(codes: np.ndarray, cell_bits: int, slices: int) -> np.ndarray:
    """(K, N) codes -> (K, N, S) levels, slice 0 least significant."""
    shifts = np.arange(slices, dtype=np.int64) * cell_bits
    return ((codes[..., None] >> shifts) & ((1 << cell_bits) - 1)).astype(np.uint8)


@functools.cache
def _slice_table(cell_bits: int) -> np.ndarray:
    """(256, S) levels of every 8-bit code: row u is ``_slices(u)``."""
    t = _slices(np.arange(256, dtype=np.int64), cell_bits, 8 // cell_bits)
    t.flags.writeable = False
    return t


def encode(w: np.ndarray, family: str, flags: np.ndarray, cell_bits: int) -> np.ndarray:
    """int8 weights (K, N) and per-column flags (N,) -> cell levels (K, N * cols_per_weight).

    ``flags[j]`` selects the alternative encoding of the family for weight column j
    (OFFSET_INV, resp. SIGNMAG_SWAP).
    """
    w = np.asarray(w)
    flags = np.asarray(flags, dtype=bool)
    if w.dtype == np.int8 and w.ndim == 2 and cell_bits in (1, 2, 4, 8):
        # Table lookup of the same codes: u = w + 128 = w ^ 0x80 as uint8, 127 - w = 255 - u = ~u.
        table = _slice_table(cell_bits)
        k, n = w.shape
        if family == "offset":
            codes = w.view(np.uint8) ^ np.where(flags, np.uint8(0x7F), np.uint8(0x80))[None, :]
            return np.take(table, codes, axis=0).reshape(k, n * table.shape[1])  # = table[codes], faster
        w16 = w.astype(np.int16)
        p, q = np.maximum(w16, 0), np.maximum(-w16, 0)
        first = np.where(flags[None, :], q, p)
        second = np.where(flags[None, :], p, q)
        lv = np.concatenate([np.take(table, first, axis=0), np.take(table, second, axis=0)], axis=2)
        return lv.reshape(k, n * 2 * table.shape[1])
    w = np.asarray(w, dtype=np.int64)
    slices = 8 // cell_bits
    k, n = w.shape
    if family == "offset":
        codes = np.where(flags[None, :], 127 - w, w + 128)
        return _slices(codes, cell_bits, slices).reshape(k, n * slices)
    p, q = np.maximum(w, 0), np.maximum(-w, 0)
    first = np.where(flags[None, :], q, p)
    second = np.where(flags[None, :], p, q)
    lv = np.concatenate([_slices(first, cell_bits, slices), _slices(second, cell_bits, slices)], axis=2)
    return lv.reshape(k, n * 2 * slices)


def column_values(t: np.ndarray, family: str, cell_bits: int) -> np.ndarray:
    """Shift-and-add over slices: per-physical-column sums (..., C) -> per-code-column values.

    Offset family: (..., N). Signmag family: (..., N, 2) (first, second magnitude column).
    """
    slices = 8 // cell_bits
    weights = np.int64(1) << (np.arange(slices, dtype=np.int64) * cell_bits)
    if family == "offset":
        return (t.reshape(t.shape[:-1] + (-1, slices)) * weights).sum(axis=-1)
    return (t.reshape(t.shape[:-1] + (-1, 2, slices)) * weights).sum(axis=-1)


def decode(values: np.ndarray, sum_x: np.ndarray, family: str, flags: np.ndarray) -> np.ndarray:
    """Column values (from :func:`column_values`) + the tile's input sums (P,) -> Σ x·w (P, N)."""
    flags = np.asarray(flags, dtype=bool)
    if family == "offset":
        sx = np.asarray(sum_x, dtype=np.int64)[:, None]
        return np.where(flags[None, :], 127 * sx - values, values - 128 * sx)
    diff = values[..., 0] - values[..., 1]
    return np.where(flags[None, :], -diff, diff)
