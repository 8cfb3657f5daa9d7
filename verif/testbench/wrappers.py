"""Test-only top levels for cocotb: units that need neighbours to run, wired as in a PE.

:class:`WriteHarness` — ``hw.write_engine.WriteEngine`` + ``hw.write_buffer.WriteBuffer`` + the PE's
``X = apus_per_pe · xbars_per_apu`` behavioral ``hw.crossbar.Crossbar`` s, as in ``hw/pe.py``'s weight
path but without DRAM: the testbench fills the write buffer through its ``fill`` stream, issues tiles on
the engine's lanes, takes ``done`` and reads the counters. Two testbench-only ports reach the crossbars
directly, for use while the engine is idle:

- ``load`` (In): with ``en`` high, crossbar ``xbar`` row ``row`` := ``levels`` (all columns) at the
  clock edge; the engine's write port of every crossbar is ignored in that cycle.
- ``peek`` (In): with ``en`` high, every crossbar's read port reads row ``row``; ``levels[x]`` is
  crossbar x's row (combinational; without ``en`` it shows the engine's reads).

Ports (``sync`` domain; D = ``write_drivers_per_pe``; the shapes are those of the units):
``tile[0…D−1]``, ``done[0…D−1]`` (the engine's), ``fill`` (the buffer's), ``load``, ``peek``,
``busy`` (D), the engine's counters (``rows_written`` … ``cells_changed``) and the buffer's
``write_buffer_bytes``.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from aras.config import Config
from hw.crossbar import Crossbar, levels_layout
from hw.unit import Unit
from hw.write_buffer import COUNTER_BITS, WriteBuffer, fill_layout
from hw.write_engine import COUNTERS, WriteEngine, done_layout, tile_layout

__all__ = ["WriteHarness"]


class WriteHarness(Unit):
    """Write engine + write buffer + the PE's crossbars (see the module docstring).

    Parameters
    ----------
    cfg : aras.config.Config
        The PE's geometry, write tables and write-buffer size.
    """

    def __init__(self, *, cfg: Config):
        self._take_cfg(cfg)
        D, X, R = cfg.write_drivers_per_pe, cfg.apus_per_pe * cfg.xbars_per_apu, cfg.xbar_rows
        ports = {
            "tile": In(stream.Signature(tile_layout(cfg))).array(D),
            "done": Out(stream.Signature(done_layout(cfg))).array(D),
            "fill": In(stream.Signature(fill_layout(cfg))),
            "load": In(wiring.Signature({"en": Out(1), "xbar": Out(range(X)), "row": Out(range(R)),
                                         "levels": Out(levels_layout(cfg))})),
            "peek": In(wiring.Signature({"en": Out(1), "row": Out(range(R)),
                                         "levels": In(data.ArrayLayout(levels_layout(cfg), X))})),
            "busy": Out(D),
        }
        ports.update({name: Out(COUNTER_BITS) for name in COUNTERS})
        ports["cells_changed"] = Out(data.ArrayLayout(COUNTER_BITS, cfg.levels ** 2))
        ports["write_buffer_bytes"] = Out(COUNTER_BITS)
        super().__init__(ports)

    @property
    def xbars(self) -> int:
        return self._cfg.apus_per_pe * self._cfg.xbars_per_apu

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        m.submodules.engine = eng = WriteEngine(cfg=cfg)
        m.submodules.wbuf = wb = WriteBuffer(cfg=cfg)
        for d in range(eng.drivers):
            wiring.connect(m, wiring.flipped(self.tile[d]), eng.tile[d])
            wiring.connect(m, eng.done[d], wiring.flipped(self.done[d]))
            wiring.connect(m, eng.wb[d], wb.rd[d])
        wiring.connect(m, wiring.flipped(self.fill), wb.fill)
        m.d.comb += self.busy.eq(eng.busy)
        for name in COUNTERS + ("cells_changed",):
            m.d.comb += getattr(self, name).eq(getattr(eng, name))
        m.d.comb += self.write_buffer_bytes.eq(wb.write_buffer_bytes)

        ld, pk = self.load, self.peek
        for x in range(self.xbars):
            xb = m.submodules[f"xbar{x}"] = Crossbar(cfg=cfg)
            ew = eng.xwr[x]
            with m.If(ld.en):
                m.d.comb += [xb.wr.en.eq(ld.xbar == x), xb.wr.row.eq(ld.row), xb.wr.levels.eq(ld.levels),
                             xb.wr.mask.eq(-1)]
            with m.Else():
                m.d.comb += [xb.wr.en.eq(ew.en), xb.wr.row.eq(ew.row), xb.wr.levels.eq(ew.levels),
                             xb.wr.mask.eq(ew.mask)]
            m.d.comb += [xb.rd.row.eq(Mux(pk.en, pk.row, eng.xrd[x].row)), eng.xrd[x].levels.eq(xb.rd.levels),
                         pk.levels[x].eq(xb.rd.levels)]
        return m
