"""``encoder``: one row of int8 weights → target cell levels, write mask, row time and statistics
(docs/architecture.md §3.4, §4, §5.1, §8.3; golden model ``sim_models/encoding.py`` ``encode``,
``sim_models/tiling.py`` ``tile_levels`` and ``sim_models/write_engine.py`` ``write_tile``).

Purely combinational; adds no cycles. Per physical column j (S = ``cfg.slices`` cells per code,
cb = ``cell_bits``; slice s of a code u is ``(u >> s·cb) & (L−1)``):

- offset family: weight column ``j // S``, slice ``j % S``; code ``w + 128`` (flag 0) or ``127 − w``
  (flag 1, the bitwise complement of ``w + 128``);
- signmag family: weight column ``j // 2S``, half ``(j // S) % 2``, slice ``j % S``; with
  p = max(w, 0), q = max(−w, 0) the halves hold (p, q) (flag 0) or (q, p) (flag 1);
- ``used[j]`` = j < C_phys (``wcols·S`` resp. ``2·wcols·S``); packed tiles (§5.1): the cell is inside
  the diagonal blocks iff some group t < ``pack_g`` has ``t·pack_k ≤ row < (t+1)·pack_k`` and
  ``t·pack_n ≤ weight column < (t+1)·pack_n``; used cells outside the blocks get level 0, unused
  columns get ``new = 0`` (never written: their mask bit is 0);
- ``mask[j]``: differential (``mode`` = 1) ``used ∧ new ≠ old``; blind (``mode`` = 0) ``used``.

Row time (§8.3), from the derived tables of :func:`write_costs` (constants at elaboration):
differential ``T_rd`` if no cell changes (row skipped), else ``T_rd + T_set + max Tdiff[old][new]``
over changed cells; blind ``T_set + T_rst + max pulses[0][new]·(T_pul + T_ver)`` over used cells.
``hist[o·L + n]`` counts the masked cells by (old, new) for ``cells_changed``; a blind row counts its
used cells with new ≠ 0 as (0, new). The diagonal of ``hist`` is always 0.

Ports (all In/Out of this component; ``Cw = cfg.weight_cols``, the offset family's weight columns):

=================  =====  =================================  =========================================
port               dir    shape                              meaning
=================  =====  =================================  =========================================
``w``              In     ``Cw`` × signed(8)                 the row's int8 weights (j ≥ ``wcols`` ignored)
``family``         In     1                                  0 offset, 1 signmag
``flags``          In     ``Cw``                             bit j: encoding alternative of weight col j
``wcols``          In     range(Cw + 1)                      weight columns of the tile
``pack_g``         In     range(min(Cw, xbar_rows) + 1)      groups packed in the tile (1 = unpacked)
``pack_k``         In     range(xbar_rows + 1)               rows per group (= rows if unpacked)
``pack_n``         In     range(Cw + 1)                      weight columns per group (= wcols if unpacked)
``row``            In     range(xbar_rows)                   row index r within the tile
``old``            In     ``xbar_cols`` × unsigned(cb)       current levels (``crossbar.rd``)
``mode``           In     1                                  0 blind, 1 differential
``target``         Out    ``xbar_cols`` × unsigned(cb)       target levels (``new`` below)
``used``           Out    ``xbar_cols``                      j < C_phys
``mask``           Out    ``xbar_cols``                      cells to program
``changed``        Out    1                                  mask ≠ 0
``cphys``          Out    range(xbar_cols + 1)               C_phys
``slowest``        Out    range(max_cell_cycles + 1)         max per-cell programming cycles (0 if none)
``row_cycles``     Out    range(max_row_cycles + 1)          the row's time in cycles (§8.3), ≥ 1
``hist``           Out    L² × unsigned(⌈log2(xbar_cols+1)⌉) masked cells per (old, new), old-major
=================  =====  =================================  =========================================
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data
from amaranth.lib.wiring import In, Out

from aras.config import Config

from .crossbar import levels_layout
from .tree import tree_reduce, tree_sum
from .unit import Unit

__all__ = ["Encoder", "RowCosts", "write_costs", "weights_layout", "max_groups"]


@dataclass(frozen=True)
class RowCosts:
    """Cycle constants of one row write (§8.3), derived from the config tables.

    ``tdiff[o][n]``: programming cycles of a changed cell of a differential write (the cheaper in
    energy of direct program-and-verify and via-reset; ties: direct; 0 on the diagonal);
    ``p0step[n]``: ``write_pulses[0][n]·(T_pul + T_ver)`` (blind programming from level 0).
    """

    L: int
    tdiff: tuple[tuple[int, ...], ...]
    via_reset: tuple[tuple[bool, ...], ...]
    p0step: tuple[int, ...]
    t_rd: int
    t_set: int
    t_rst: int
    step: int

    @property
    def max_cell_cycles(self) -> int:
        return max(max(max(r) for r in self.tdiff), max(self.p0step))

    @property
    def max_row_cycles(self) -> int:
        return max(self.t_rd + self.t_set + max(max(r) for r in self.tdiff),
                   self.t_set + self.t_rst + max(self.p0step))


def write_costs(cfg: Config) -> RowCosts:
    """Derived write tables of §8.3, computed from ``cfg`` independently of the golden model."""
    L = cfg.levels
    p, e = cfg.write_pulses, cfg.write_energy_pj
    step = cfg.cycles(cfg.t_pulse_ns) + cfg.cycles(cfg.t_verify_ns)
    t_rst = cfg.cycles(cfg.t_reset_ns)
    reset = tuple(tuple(o != n and cfg.e_reset_pj + e[0][n] < e[o][n] for n in range(L)) for o in range(L))
    tdiff = tuple(tuple(0 if o == n else (t_rst + p[0][n] * step if reset[o][n] else p[o][n] * step)
                        for n in range(L)) for o in range(L))
    return RowCosts(L, tdiff, reset, tuple(p[0][n] * step for n in range(L)), cfg.cycles(cfg.t_read_ns),
                    cfg.cycles(cfg.t_write_setup_ns), t_rst, step)


def weights_layout(cfg: Config) -> data.ArrayLayout:
    """One row of a tile's DRAM image: ``weight_cols`` int8 weights (the first ``wcols`` are used)."""
    return data.ArrayLayout(signed(8), cfg.weight_cols)


def max_groups(cfg: Config) -> int:
    """Upper bound of ``pack_g``: every group needs ≥ 1 row and ≥ 1 weight column."""
    return min(cfg.weight_cols, cfg.xbar_rows)


class Encoder(Unit):
    """Row encoder (see the module docstring for the port table and rules).

    Parameters
    ----------
    cfg : aras.config.Config
        ``xbar_rows``, ``xbar_cols``, ``cell_bits``, the write tables and the ``t_*_ns`` times.

    Notes
    -----
    The (old, new) cost lookup is a constant L²-entry table per column, so ``cell_bits`` = 8 (L = 256)
    elaborates a very large circuit; the presets use 2-bit cells.
    """

    def __init__(self, *, cfg: Config):
        self._take_cfg(cfg)
        self._costs = write_costs(cfg)
        L, cols, cw = cfg.levels, cfg.xbar_cols, cfg.weight_cols
        super().__init__({
            "w": In(weights_layout(cfg)),
            "family": In(1),
            "flags": In(cw),
            "wcols": In(range(cw + 1)),
            "pack_g": In(range(max_groups(cfg) + 1)),
            "pack_k": In(range(cfg.xbar_rows + 1)),
            "pack_n": In(range(cw + 1)),
            "row": In(range(cfg.xbar_rows)),
            "old": In(levels_layout(cfg)),
            "mode": In(1),
            "target": Out(levels_layout(cfg)),
            "used": Out(cols),
            "mask": Out(cols),
            "changed": Out(1),
            "cphys": Out(range(cols + 1)),
            "slowest": Out(range(self._costs.max_cell_cycles + 1)),
            "row_cycles": Out(range(self._costs.max_row_cycles + 1)),
            "hist": Out(data.ArrayLayout(unsigned(cols.bit_length()), L * L)),
        })

    @property
    def costs(self) -> RowCosts:
        """The constant cycle tables the circuit is built from."""
        return self._costs

    def elaborate(self, platform):
        m = Module()
        cfg, k = self._cfg, self._costs
        L, cb, S, cols, cw = cfg.levels, cfg.cell_bits, cfg.slices, cfg.xbar_cols, cfg.weight_cols

        # Diagonal-block membership per weight column (packing, §5.1); unpacked tiles have
        # pack_k = rows and pack_n = wcols, so group 0 covers every used cell.
        G = max_groups(cfg)
        k_at = [Signal(range(G * cfg.xbar_rows + 1), name=f"k_at{t}") for t in range(G + 1)]  # t·pack_k
        n_at = [Signal(range(G * cw + 1), name=f"n_at{t}") for t in range(G + 1)]  # t·pack_n
        m.d.comb += [k_at[t].eq(self.pack_k * t) for t in range(G + 1)]
        m.d.comb += [n_at[t].eq(self.pack_n * t) for t in range(G + 1)]
        row_in = [Signal(name=f"row_in{t}") for t in range(G)]
        for t, s in enumerate(row_in):
            m.d.comb += s.eq((t < self.pack_g) & (self.row >= k_at[t]) & (self.row < k_at[t + 1]))
        in_block = Signal(cw)
        for jw in range(cw):
            terms = [row_in[t] & (n_at[t] <= jw) & (n_at[t + 1] > jw) for t in range(G)]
            m.d.comb += in_block[jw].eq(tree_reduce(lambda a, b: a | b, terms, empty=0))

        # Codes per weight column: offset u = w + 128 (flip of the sign bit), its complement for flag 1;
        # signmag magnitudes p = max(w, 0), q = max(-w, 0) (8 bits: -(-128) = 128 fits).
        # (Intermediate values live in signals: Amaranth re-emits an expression at every use.)
        off_code = [Signal(8, name=f"code{jw}") for jw in range(cw)]
        pos = [Signal(8, name=f"pos{jw}") for jw in range(cw)]
        neg = [Signal(8, name=f"neg{jw}") for jw in range(cw)]
        for jw in range(cw):
            w = self.w[jw]
            u = w.as_unsigned() ^ 0x80
            m.d.comb += [
                off_code[jw].eq(Mux(self.flags[jw], ~u, u)),
                pos[jw].eq(Mux(w[7], 0, w.as_unsigned())),
                neg[jw].eq(Mux(w[7], -w, 0)),
            ]

        tdiff = Array(Const(k.tdiff[o][n], self.slowest.shape()) for o in range(L) for n in range(L))
        p0step = Array(Const(k.p0step[n], self.slowest.shape()) for n in range(L))
        cost = []
        hist_idx, hist_on = [], []
        for j in range(cols):
            s, jo, js, half = j % S, j // S, j // (2 * S), (j // S) % 2
            lv_off = off_code[jo][s * cb:(s + 1) * cb]
            sm_code = Mux(self.flags[js] ^ half, neg[js], pos[js])
            lv_sm = sm_code[s * cb:(s + 1) * cb]
            used, new, old, mask = self.used[j], self.target[j], self.old[j], self.mask[j]
            inb = Mux(self.family, in_block[js], in_block[jo])
            m.d.comb += [
                used.eq(Mux(self.family, self.wcols > js, self.wcols > jo)),
                new.eq(Mux(used & inb, Mux(self.family, lv_sm, lv_off), 0)),
                mask.eq(used & Mux(self.mode, new != old, 1)),
            ]
            c = Signal(self.slowest.shape(), name=f"cost{j}")
            m.d.comb += c.eq(Mux(mask, Mux(self.mode, tdiff[Cat(new, old)], p0step[new]), 0))
            cost.append(c)
            # A blind row reports the program-from-zero step: (0, new) for new != 0.
            hi, on = Signal(range(L * L), name=f"pair{j}"), Signal(name=f"pair_on{j}")
            m.d.comb += [hi.eq(Cat(new, Mux(self.mode, old, 0))), on.eq(mask & (self.mode | (new != 0)))]
            hist_idx.append(hi)
            hist_on.append(on)

        m.d.comb += [
            self.changed.eq(self.mask.any()),
            self.cphys.eq(Mux(self.family, self.wcols * (2 * S), self.wcols * S)),
            self.slowest.eq(tree_reduce(lambda a, b: Mux(a >= b, a, b), cost)),
        ]
        m.d.comb += self.row_cycles.eq(Mux(
            self.mode,
            k.t_rd + Mux(self.changed, k.t_set + self.slowest, 0),
            k.t_set + k.t_rst + self.slowest))
        for o in range(L):
            for n in range(L):
                if o != n:
                    terms = [hist_on[j] & (hist_idx[j] == o * L + n) for j in range(cols)]
                    m.d.comb += self.hist[o * L + n].eq(tree_sum(terms))
        return m
