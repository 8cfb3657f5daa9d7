"""Tiling of crossbar layers onto crossbars (docs/architecture.md §5.1).

A conv with g groups is g matrices of K_g rows x N_g columns (rows ordered (c, i, j) like OIHW);
a linear layer is one K x N matrix. When K_g <= rows and N_g <= Cw, G groups are packed
block-diagonally per tile (G = 1 for a small dense layer); otherwise each group matrix is cut into
row chunks of ``xbar_rows`` and column chunks of Cw weight columns. A tile is one crossbar's content,
top-left aligned; an output block (gchunk, cchunk) is the set of tiles (row chunks) of its channels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from aras.config import Config
from aras.trace import Layer

from .encoding import cols_per_weight, encode


@dataclass(frozen=True)
class Tile:
    layer: int  # index of the layer in the trace
    g: int  # group chunk
    r: int  # row chunk
    c: int  # column chunk
    rows: int  # R_used
    wcols: int  # weight columns used
    pack_g: int  # groups packed in this tile (1 = unpacked)
    pack_k: int  # rows per packed group (= rows if unpacked)
    pack_n: int  # weight columns per packed group (= wcols if unpacked)

    @property
    def tag(self) -> tuple[int, int, int, int]:
        return (self.layer, self.g, self.r, self.c)


@dataclass
class LayerTiling:
    layer: int
    family: str
    groups: int
    kg: int
    ng: int
    packed: bool  # block-diagonal layout (K_g <= rows and N_g <= Cw)
    pack: int  # G: groups per tile when packed, else 1
    n_gchunks: int
    n_rchunks: int
    n_cchunks: int
    cw: int  # weight columns per crossbar for this family
    tiles: list[Tile] = field(default_factory=list)

    def blocks(self) -> list[tuple[int, int]]:
        """Output blocks (gchunk, cchunk) in ascending order."""
        return [(g, c) for g in range(self.n_gchunks) for c in range(self.n_cchunks)]


def positions(trace, li: int) -> int:
    """Output positions P of crossbar layer ``li`` (conv: Ho*Wo; linear: the leading dims)."""
    ly = trace.layers[li]
    out = trace.tensors[ly.output].shape
    return out[1] * out[2] if ly.op == "conv2d" else int(np.prod(out[:-1]))


def block_channels(lt: LayerTiling, g: int, c: int) -> list[int]:
    """Output channels of output block (gchunk g, cchunk c), ascending."""
    if lt.packed:
        g0 = g * lt.pack
        return list(range(g0 * lt.ng, min(lt.groups, g0 + lt.pack) * lt.ng))
    return [g * lt.ng + j for j in range(c * lt.cw, min(lt.ng, (c + 1) * lt.cw))]


def layer_geometry(ly: Layer) -> tuple[int, int, int]:
    """(groups, K_g, N_g) of a crossbar layer."""
    w = ly.arrays["weight"]
    g = int(ly.attrs.get("groups", 1)) if ly.op == "conv2d" else 1
    return g, int(np.prod(w.shape[1:])), w.shape[0] // g


def tile_layer(index: int, ly: Layer, cfg: Config, family: str = "offset") -> LayerTiling:
    g, kg, ng = layer_geometry(ly)
    cw = cfg.xbar_cols // cols_per_weight(family, cfg.slices)
    R = cfg.xbar_rows
    if kg <= R and ng <= cw:
        pack = min(R // kg, cw // ng, g)
        n_g = -(-g // pack)
        lt = LayerTiling(index, family, g, kg, ng, True, pack, n_g, 1, 1, cw)
        for gc in range(n_g):
            gp = min(pack, g - gc * pack)
            lt.tiles.append(Tile(index, gc, 0, 0, gp * kg, gp * ng, gp, kg, ng))
        return lt
    n_r, n_c = -(-kg // R), -(-ng // cw)
    lt = LayerTiling(index, family, g, kg, ng, False, 1, g, n_r, n_c, cw)
    for gr in range(g):
        for c in range(n_c):
            for r in range(n_r):
                rows, wc = min(R, kg - r * R), min(cw, ng - c * cw)
                lt.tiles.append(Tile(index, gr, r, c, rows, wc, 1, rows, wc))
    return lt


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
