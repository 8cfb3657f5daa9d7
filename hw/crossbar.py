"""``crossbar``: behavioral ReRAM macro, ``xbar_rows`` × ``xbar_cols`` cells of ``cell_bits`` bits
(docs/architecture.md §3.1; golden model ``sim_models/crossbar.py``).

Ideal analog model: a column sum is an exact integer. The cells are non-volatile: they are
registers **without reset** (``reset_less``), holding their power-up value (``init``, default all 0 =
cold start) until written, across any number of resets. A :class:`~amaranth.lib.memory.Memory`
cannot be used because an MVM reads every cell in the same cycle. Per-cell wear is model-only.

Stuck cells (docs/architecture.md §8.7, a property of the simulated chip): ``stuck`` maps (row, column)
to a level; such a cell is a constant (that level from power-up; a write leaves it unchanged), seen
by row reads and MVMs, and flagged by the write port's verify output ``fail``. With no stuck cells
the macro is the fault-free one (``fail`` is constant 0). In a whole design the map travels
``Top(faults=...)`` → ``Pe(stuck=...)`` → ``Apu(stuck=...)`` → here (simulation only: a design with stuck
cells is not generated as Verilog).

With ``blackbox=True`` the component elaborates to an ``Instance`` of the external module
``aras_xbar_macro`` (for synthesis flows that supply a macro); its ports are exactly those of
``verilog.convert(Crossbar(cfg=cfg), name="aras_xbar_macro")``, so the behavioral Verilog is a
drop-in model of the macro:

=================  ====  ===========================  ==========================================
port               dir   width                        meaning
=================  ====  ===========================  ==========================================
``clk``            in    1                            write clock
``rst``            in    1                            unused: cells persist across resets (present so
                                                      the behavioral module matches the macro's ports)
``mvm__bits``      in    xbar_rows                    input bit-plane, bit i drives row i
``mvm__col_sum``   out   xbar_cols · sum_width        column j at bits [j·w, (j+1)·w)
``rd__row``        in    ⌈log2 xbar_rows⌉             row to read
``rd__levels``     out   xbar_cols · cell_bits        level of column j at [j·cb, (j+1)·cb)
``wr__en``         in    1                            commit the write at this clock edge
``wr__row``        in    ⌈log2 xbar_rows⌉             row to write
``wr__levels``     in    xbar_cols · cell_bits        new levels (same packing as ``rd__levels``)
``wr__mask``       in    xbar_cols                    bit j: write column j
``wr__fail``       out   xbar_cols                    bit j: cell (``wr__row``, j) will not hold
                                                      ``wr__levels[j]`` once this write commits
                                                      although ``wr__mask[j]`` is set (stuck at
                                                      another level); ``wr__en`` not looked at: the
                                                      program-and-verify read-back, compared with
                                                      the written levels (§8.7)
=================  ====  ===========================  ==========================================

``sum_width`` = ⌈log2(xbar_rows·(L−1) + 1)⌉ (``cfg.adc_exact_bits``).
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Cat, ClockSignal, Const, Instance, Module, Mux, ResetSignal, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from aras.config import Config
from aras.errors import ArasError

from .tree import tree_sum
from .unit import Unit

__all__ = ["Crossbar", "levels_layout", "mvm_signature", "read_signature", "write_signature", "MACRO_NAME"]

MACRO_NAME = "aras_xbar_macro"


def levels_layout(cfg: Config) -> data.ArrayLayout:
    """One row of cell levels: ``xbar_cols`` × unsigned(``cell_bits``)."""
    return data.ArrayLayout(unsigned(cfg.cell_bits), cfg.xbar_cols)


def mvm_signature(cfg: Config) -> wiring.Signature:
    """MVM port, seen from the user (the APU): ``bits`` out, ``col_sum`` back (combinational)."""
    return wiring.Signature({
        "bits": Out(unsigned(cfg.xbar_rows)),
        "col_sum": In(data.ArrayLayout(unsigned(cfg.adc_exact_bits), cfg.xbar_cols)),
    })


def read_signature(cfg: Config) -> wiring.Signature:
    """Row read port, seen from the user: ``row`` out, ``levels`` back (combinational)."""
    return wiring.Signature({"row": Out(range(cfg.xbar_rows)), "levels": In(levels_layout(cfg))})


def write_signature(cfg: Config) -> wiring.Signature:
    """Row write port, seen from the user: at a clock edge with ``en`` high,
    ``level[row][j] := levels[j]`` for every j with ``mask[j]`` (stuck cells excepted). ``fail``
    (combinational, whether or not ``en`` is high): bit j set if cell (row, j) will not hold
    ``levels[j]`` once the write commits although ``mask[j]`` is set — the program-and-verify
    read-back of the write's last cycle, compared with the written levels (§8.7); 0 = verified, so a
    user that leaves it unconnected sees no failure."""
    return wiring.Signature({
        "en": Out(1),
        "row": Out(range(cfg.xbar_rows)),
        "levels": Out(levels_layout(cfg)),
        "mask": Out(unsigned(cfg.xbar_cols)),
        "fail": In(unsigned(cfg.xbar_cols)),
    })


class Crossbar(Unit):
    """ReRAM crossbar macro (behavioral or black box).

    Parameters
    ----------
    cfg : aras.config.Config
        Array size (``xbar_rows``, ``xbar_cols``) and ``cell_bits``.
    blackbox : bool
        Elaborate to an ``Instance`` of ``aras_xbar_macro`` instead of the behavioral array.
    init : array-like of int, shape (xbar_rows, xbar_cols), optional
        Power-up levels (default all 0: cold start). Only for the behavioral model.
    stuck : mapping (row, column) -> level, optional
        Stuck cells (§8.7; behavioral model only); default none.

    Attributes (ports)
    ------------------
    mvm : In(mvm_signature(cfg))
        ``col_sum[j] = Σ_i bits[i]·level[i][j]``, combinational, exact (balanced adder tree per column).
    rd : In(read_signature(cfg))
        ``levels = level[row]``, combinational.
    wr : In(write_signature(cfg))
        Masked row write committed at the clock edge where ``en`` is high; no reset.

    Timing is imposed by the users (APU: ``T_mvm`` read cycles; write engine: §8).
    """

    def __init__(self, *, cfg: Config, blackbox: bool = False, init=None, stuck=None):
        self._take_cfg(cfg)
        self._blackbox = bool(blackbox)
        if stuck and self._blackbox:
            raise ArasError("Crossbar: stuck cells are only possible for the behavioral model")
        self._stuck = self._check_stuck(cfg, stuck)
        shape = (cfg.xbar_rows, cfg.xbar_cols)
        if init is None:
            self._init = np.zeros(shape, dtype=np.int64)
        else:
            if self._blackbox:
                raise ArasError("Crossbar: 'init' (power-up levels) is only possible for the behavioral model, "
                                "not with blackbox=True")
            arr = np.asarray(init)
            if arr.shape != shape or not np.issubdtype(arr.dtype, np.integer):
                raise ArasError(f"Crossbar: 'init' must be an integer array of shape {shape}, "
                                f"got {arr.dtype} {arr.shape}")
            if arr.size and (arr.min() < 0 or arr.max() >= cfg.levels):
                raise ArasError(f"Crossbar: 'init' levels must be in [0, {cfg.levels - 1}] "
                                f"(cell_bits={cfg.cell_bits}), got [{arr.min()}, {arr.max()}]")
            self._init = arr.astype(np.int64)
        if self._stuck:
            self._init = self._init.copy()
            for (r, j), lv in self._stuck.items():
                self._init[r, j] = lv
        super().__init__({
            "mvm": In(mvm_signature(cfg)),
            "rd": In(read_signature(cfg)),
            "wr": In(write_signature(cfg)),
        })

    def _check_stuck(self, cfg: Config, stuck) -> dict:
        if not stuck:
            return {}
        if self._blackbox:
            raise ArasError("Crossbar: stuck cells are only possible for the behavioral model, not with blackbox=True")
        out = {}
        for key, lv in dict(stuck).items():
            ok = isinstance(key, tuple) and len(key) == 2 and all(isinstance(v, (int, np.integer)) for v in key)
            if not ok or not (0 <= key[0] < cfg.xbar_rows and 0 <= key[1] < cfg.xbar_cols):
                raise ArasError(f"Crossbar: stuck cell {key!r} is not a (row, column) of a "
                                f"{cfg.xbar_rows}x{cfg.xbar_cols} crossbar")
            if not isinstance(lv, (int, np.integer)) or not 0 <= lv < cfg.levels:
                raise ArasError(f"Crossbar: stuck cell {key!r}: level {lv!r} is not in [0, {cfg.levels - 1}]")
            out[(int(key[0]), int(key[1]))] = int(lv)
        return out

    @property
    def blackbox(self) -> bool:
        return self._blackbox

    @property
    def stuck(self) -> dict[tuple[int, int], int]:
        """Stuck cells: (row, column) -> level."""
        return dict(self._stuck)

    @property
    def sum_width(self) -> int:
        """Width of one column sum: ⌈log2(xbar_rows·(L−1) + 1)⌉."""
        return self._cfg.adc_exact_bits

    def elaborate(self, platform):
        m = Module()
        if self._blackbox:
            m.submodules.macro = Instance(
                MACRO_NAME,
                i_clk=ClockSignal(), i_rst=ResetSignal(),
                i_mvm__bits=self.mvm.bits, o_mvm__col_sum=self.mvm.col_sum,
                i_rd__row=self.rd.row, o_rd__levels=self.rd.levels,
                i_wr__en=self.wr.en, i_wr__row=self.wr.row, i_wr__levels=self.wr.levels, i_wr__mask=self.wr.mask,
                o_wr__fail=self.wr.fail,
            )
            return m

        cfg = self._cfg
        rows, cols = cfg.xbar_rows, cfg.xbar_cols
        # Non-volatile cells: no reset; the init value is the power-up state.
        cells = [Signal(levels_layout(cfg), name=f"cells_r{r}", reset_less=True,
                        init=[int(v) for v in self._init[r]]) for r in range(rows)]

        for r in range(rows):
            with m.If(self.wr.en & (self.wr.row == r)):
                for j in range(cols):
                    if (r, j) in self._stuck:
                        continue  # a stuck cell keeps its level
                    with m.If(self.wr.mask[j]):
                        m.d.sync += cells[r][j].eq(self.wr.levels[j])

        with m.Switch(self.rd.row):
            for r in range(rows):
                with m.Case(r):
                    m.d.comb += self.rd.levels.eq(cells[r])

        # verify read-back (§8.7): masked cells of wr.row that will not hold their new level (stuck at another)
        if self._stuck:
            fails = []
            for j in range(cols):
                rows_j = [(r, lv) for (r, jj), lv in sorted(self._stuck.items()) if jj == j]
                hit = 0
                for r, lv in rows_j:
                    hit = hit | ((self.wr.row == r) & (self.wr.levels[j] != lv))
                fails.append(self.wr.mask[j] & hit if rows_j else Const(0, 1))
            m.d.comb += self.wr.fail.eq(Cat(*fails))
        else:
            m.d.comb += self.wr.fail.eq(0)

        for j in range(cols):
            terms = [Mux(self.mvm.bits[i], cells[i][j], 0) for i in range(rows)]
            m.d.comb += self.mvm.col_sum[j].eq(tree_sum(terms, width=self.sum_width))
        return m
