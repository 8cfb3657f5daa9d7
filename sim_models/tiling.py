"""Tile contents (docs/architecture.md §5.1): the DRAM image of a tile and its encoded cell levels.

The geometry (tiles, blocks, positions) is the contract's, ``aras/tiling.py``.
"""

from __future__ import annotations

import numpy as np

from aras.tiling import LayerTiling, Tile, cols_per_weight
from aras.trace import Layer

from .encoding import encode


def _group_matrices(ly: Layer, lt: LayerTiling) -> np.ndarray:
    return ly.arrays["weight"].reshape(lt.groups, lt.ng, lt.kg).transpose(0, 2, 1)  # (G, K_g, N_g)


def tile_weights(ly: Layer, lt: LayerTiling, t: Tile, R: int) -> np.ndarray:
    """The tile's DRAM image: (rows, wcols) int8; off-block entries of packed tiles are 0."""
    wg = _group_matrices(ly, lt)
    if lt.packed:
        out = np.zeros((t.rows, t.wcols), np.int8)
        for i in range(t.pack_g):
            out[i * lt.kg:(i + 1) * lt.kg, i * lt.ng:(i + 1) * lt.ng] = wg[t.g * lt.pack + i]
        return out
    return np.ascontiguousarray(wg[t.g, t.r * R:t.r * R + t.rows, t.c * lt.cw:t.c * lt.cw + t.wcols])


def block_mask(t: Tile, family: str, slices: int) -> np.ndarray | None:
    """(rows, C_phys) bool of cells inside the diagonal blocks of a packed tile (None: all cells)."""
    if t.pack_g == 1:
        return None
    cpw = cols_per_weight(family, slices)
    m = np.zeros((t.rows, t.wcols * cpw), bool)
    for i in range(t.pack_g):
        m[i * t.pack_k:(i + 1) * t.pack_k, i * t.pack_n * cpw:(i + 1) * t.pack_n * cpw] = True
    return m


def tile_levels(w: np.ndarray, t: Tile, family: str, flags: np.ndarray, cell_bits: int) -> np.ndarray:
    """Target cell levels (rows, C_phys) of a tile: encoded weights, off-block cells at level 0."""
    lv = encode(w, family, flags, cell_bits)
    m = block_mask(t, family, 8 // cell_bits)
    if m is not None:
        lv[~m] = 0
    return lv


def write_targets(w, cell_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Target levels of a WRITE's tile under its family's plain encoding and its alternative (cached)."""
    if w.levels0 is None:
        w.levels0 = tile_levels(w.weights, w.tile, w.family, np.zeros(w.tile.wcols, bool), cell_bits)
    if w.levels1 is None:
        w.levels1 = tile_levels(w.weights, w.tile, w.family, np.ones(w.tile.wcols, bool), cell_bits)
    return w.levels0, w.levels1


def write_levels(w, cell_bits: int, slices: int) -> np.ndarray:
    """Target cell levels of a WRITE with its flags."""
    l0, l1 = write_targets(w, cell_bits)
    cpw = cols_per_weight(w.family, slices)
    return np.where(np.repeat(w.flags, cpw)[None, :], l1, l0)
