"""Tiling geometry of crossbar layers (docs/architecture.md §5.1): part of the program contract.

A conv with g groups is g matrices of K_g rows x N_g columns (rows ordered (c, i, j) like OIHW);
a linear layer is one K x N matrix. When K_g <= rows and N_g <= Cw, G groups are packed
block-diagonally per tile (G = 1 for a small dense layer); otherwise each group matrix is cut into
row chunks of ``xbar_rows`` and column chunks of Cw weight columns. A tile is one crossbar's content,
top-left aligned; an output block (gchunk, cchunk) is the set of tiles (row chunks) of its channels.
The tiles' contents (weights, encoded levels) are the golden model's, ``sim_models/tiling.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .config import Config
from .trace import Layer


def cols_per_weight(family: str, slices: int) -> int:
    """Physical columns one weight column takes: S slices, twice for the paired sign-magnitude family."""
    return slices if family == "offset" else 2 * slices


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
