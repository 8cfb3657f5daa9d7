"""``write_engine``: the per-PE ReRAM row writers (docs/architecture.md §3.6, §8.3, §8.4, §10.2, §11;
golden model ``sim_models/write_engine.py`` ``write_tile``, stage B of ``sim_models/timing.py``).

``write_drivers_per_pe`` (D) drivers, each with its own :class:`~hw.encoder.Encoder`. A driver programs
one tile at a time, rows 0 … R_used−1 in order, all used cells of a row in parallel. Tiles arrive on D
issue lanes ``tile[0 … D−1]`` so that up to D tiles of the PE may start in the same cycle (§8.4, §10.2:
B_start(w) may equal B_start of the previous WRITE to the PE); the controller fills the lanes in
program order from lane 0, and lane k goes to the (k+1)-th lowest-index idle driver, which is the
golden model's "lowest free driver" applied in program order. The controller owns every other rule
of §10.2 (DRAM stage finished, per-PE in-order start, WAR/WAW, slot bookkeeping) by when it raises
``tile[k].valid``; it must never give two drivers the same crossbar at once (WAW interlock, §9.6).

Timing (cycle-exact to §8.3/§10.2). The ``tile`` transfer cycle is ``B_start`` and is the first cycle
of row 0 (the driver reads the payload combinationally in that cycle). Row r occupies
``row_cycles(r)`` cycles (the encoder's value: differential ``T_rd`` if no cell changes, else
``T_rd + T_set + max Tdiff``; blind ``T_set + T_rst + max pulses[0][new]·(T_pul + T_ver)``), rows
back to back. In a row's last cycle the crossbar row write is enabled (the cells hold their new
values from the next cycle on), the row's counters are added, and the next row starts in the next
cycle. In the last cycle of the last row, ``B_fin − 1``, ``done[d].valid`` is high; the write and the
tile's finish happen at the edge where ``done[d]`` transfers, so with ``done[d].ready`` high the driver
is idle again in cycle ``B_fin = B_start + Σ_r row_cycles(r)``. A low ``done.ready`` holds the driver
in that last cycle (no write, no counting) until it is taken — timing is then longer than §10.2 but
contents and counters stay exact.

Interfaces (``sync`` domain; X = ``apus_per_pe · xbars_per_apu`` crossbars of the PE, local index
``x % X`` of the flat id; Cw = ``cfg.weight_cols``)
--------------------------------------------------------------------------------------------------
``tile[k]`` (In, D streams of :func:`tile_layout`): the WRITE fields the engine needs plus the slot.
    ``tile[k].ready`` = more than k drivers idle (registered state only, never combinational from inputs).
``done[d]`` (Out, stream of :func:`done_layout`, one per driver, since several drivers may finish in
    one cycle): ``{xbar, slot}`` of the tile finishing; ``valid`` may depend combinationally on
    ``tile[k].valid`` (a one-row, one-cycle tile finishes in its start cycle).
``wb[d]`` (Out, ``write_buffer.row_read_signature``): driver d's row read; connect to
    ``write_buffer.rd[d]``. ``count`` is high in each row's write cycle.
``xrd[x]`` / ``xwr[x]`` (Out, ``crossbar.read_signature`` / ``write_signature``): one pair per crossbar
    of the PE, connect to ``crossbar.rd`` / ``crossbar.wr`` (the engine muxes drivers onto them;
    reads are combinational, a write commits at the edge with ``en``).
``busy`` (Out, D bits): driver d holds a tile (its start cycle excluded).
``xact`` (Out, X bits): crossbar x is held by a driver in this cycle (start cycle included), i.e. its
    ``xrd``/``xwr`` pair carries a row (observability: which crossbars are being programmed).
Counters (Out, 64 bit, cleared by reset; §11): ``rows_written``, ``rows_skipped``,
    ``cells_written_blind``, ``row_reads_before_write``, ``cells_read_before_write`` and
    ``cells_changed`` (L² counters, old-major), each added in the row's write cycle.

Program-and-verify (§8.7). In a row's write cycle the crossbar's verify read-back ``fail`` flags the
masked cells that will not hold their targets once the write commits (stuck cells); any flag is a
verify failure. The row is still written and counted, then the driver stays on it for the extra
cycles of its failing cells' pulses, ``E = max(0, M·(T_pul + T_ver) + [a failing differential cell goes
via reset]·T_rst − slowest)`` (M = ``max_verify_pulses``), and gives the tile up: ``done[d]`` carries
``fault`` = 1 and the failing ``row`` in the last of those cycles (the commit cycle itself if E = 0).
The controller takes a given-up tile as no finish (no ``done_gen``, the slot stays reserved); the PE
still updates the crossbar's tile metadata on that transfer (a run that ends with an error leaves
the crossbar's contents undefined for a later run).

Reset stops every driver: a row in progress is not written, even if the reset cycle is its write
cycle (the crossbar write enable is gated with the domain reset); rows written before keep their new
levels (cells are non-volatile). The controller re-issues the tile.
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, ResetSignal, Signal, unsigned
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from aras.config import Config

from .crossbar import read_signature, write_signature
from .encoder import Encoder, RowCosts, max_groups, write_costs
from .shared import place
from .tree import tree_reduce, tree_sum
from .unit import Unit
from .write_buffer import COUNTER_BITS, row_read_signature

__all__ = ["WriteEngine", "tile_layout", "done_layout", "COUNTERS"]

COUNTERS = ("rows_written", "rows_skipped", "cells_written_blind", "row_reads_before_write",
            "cells_read_before_write")


def _xbars(cfg: Config) -> int:
    return cfg.apus_per_pe * cfg.xbars_per_apu


def tile_layout(cfg: Config) -> data.StructLayout:
    """Payload of ``tile``: WRITE fields (§9.3; ``xbar`` local to the PE) and the write-buffer slot."""
    cw, R = cfg.weight_cols, cfg.xbar_rows
    return data.StructLayout({
        "xbar": range(_xbars(cfg)),
        "slot": range(cfg.write_buffer_slots),
        "rows": range(R + 1),
        "wcols": range(cw + 1),
        "family": unsigned(1),
        "mode": unsigned(1),
        "pack_g": range(max_groups(cfg) + 1),
        "pack_k": range(R + 1),
        "pack_n": range(cw + 1),
        "flags": unsigned(cw),
    })


def done_layout(cfg: Config) -> data.StructLayout:
    """Payload of ``done``: the finished tile's crossbar (local to the PE) and its slot (now free); or,
    with ``fault`` = 1, the tile given up after the verify failure of its row ``row`` (§8.7)."""
    return data.StructLayout({"xbar": range(_xbars(cfg)), "slot": range(cfg.write_buffer_slots),
                              "fault": unsigned(1), "row": range(cfg.xbar_rows)})


class WriteEngine(Unit):
    """Per-PE write engine (see the module docstring for ports and timing).

    Parameters
    ----------
    cfg : aras.config.Config
        ``write_drivers_per_pe``, ``apus_per_pe``, ``xbars_per_apu``, crossbar geometry, write tables
        and ``t_*_ns`` times.
    """

    def __init__(self, *, cfg: Config):
        self._take_cfg(cfg)
        self._costs = write_costs(cfg)
        D, X, L = cfg.write_drivers_per_pe, _xbars(cfg), cfg.levels
        ports = {
            "tile": In(stream.Signature(tile_layout(cfg))).array(D),
            "done": Out(stream.Signature(done_layout(cfg))).array(D),
            "wb": Out(row_read_signature(cfg)).array(D),
            "xrd": Out(read_signature(cfg)).array(X),
            "xwr": Out(write_signature(cfg)).array(X),
            "busy": Out(D),
            "xact": Out(X),
        }
        ports.update({name: Out(COUNTER_BITS) for name in COUNTERS})
        ports["cells_changed"] = Out(data.ArrayLayout(unsigned(COUNTER_BITS), L * L))
        super().__init__(ports)

    @property
    def drivers(self) -> int:
        return self._cfg.write_drivers_per_pe

    @property
    def xbars(self) -> int:
        """Crossbars of the PE (length of ``xrd``/``xwr``)."""
        return _xbars(self._cfg)

    @property
    def costs(self) -> RowCosts:
        return self._costs

    def elaborate(self, platform):
        m = Module()
        cfg, k = self._cfg, self._costs
        D, X, L = self.drivers, self.xbars, cfg.levels
        busy = [Signal(name=f"busy{d}") for d in range(D)]
        m.d.comb += [self.busy[d].eq(busy[d]) for d in range(D)]
        # Lane k goes to the (k+1)-th lowest idle driver: rank_d = idle drivers below d.
        idle_count = Signal(range(D + 1))
        m.d.comb += idle_count.eq(tree_sum([~b for b in busy]))
        m.d.comb += [self.tile[n].ready.eq(idle_count > n) for n in range(D)]
        lane_valid = Array(t.valid for t in self.tile)
        lane_payload = Array(t.payload.as_value() for t in self.tile)
        # verify failure (§8.7): the failing cells' pulses, M·(T_pul + T_ver), after a RESET if their path has one
        give_up = cfg.max_verify_pulses * k.step
        max_extra = give_up + k.t_rst
        via_reset = Array(Const(int(k.via_reset[o][n]), 1) for o in range(L) for n in range(L))  # [Cat(new, old)]

        drv = []  # per driver: (active, current tile, row, commit, encoder)
        for d in range(D):
            saved = Signal(tile_layout(cfg), name=f"tile{d}")
            row = Signal(range(cfg.xbar_rows), name=f"row{d}")
            elapsed = Signal(range(k.max_row_cycles), name=f"elapsed{d}")
            enc = Encoder(cfg=cfg)
            place(m, f"encoder{d}", enc, "aras_encoder")

            # In its start cycle a driver runs row 0 from the lane's payload itself.
            rank = Signal(range(D), name=f"rank{d}")
            m.d.comb += rank.eq(tree_sum([~busy[e] for e in range(d)]))
            start = Signal(name=f"start{d}")
            m.d.comb += start.eq(~busy[d] & lane_valid[rank])
            pay = Signal(tile_layout(cfg), name=f"lane_payload{d}")
            m.d.comb += pay.eq(lane_payload[rank])
            cur = Signal(tile_layout(cfg), name=f"cur{d}")
            with m.If(start):
                m.d.comb += cur.eq(pay)
            with m.Else():
                m.d.comb += cur.eq(saved)
            active = Signal(name=f"active{d}")
            row_e = Signal.like(row, name=f"row_e{d}")  # effective row / elapsed cycles in this cycle
            el_e = Signal.like(elapsed, name=f"elapsed_e{d}")
            m.d.comb += [active.eq(start | busy[d]), row_e.eq(Mux(start, 0, row)), el_e.eq(Mux(start, 0, elapsed))]

            wb = self.wb[d]
            m.d.comb += [
                wb.slot.eq(cur.slot), wb.row.eq(row_e), wb.wcols.eq(cur.wcols),
                enc.w.eq(wb.w), enc.family.eq(cur.family), enc.flags.eq(cur.flags), enc.wcols.eq(cur.wcols),
                enc.pack_g.eq(cur.pack_g), enc.pack_k.eq(cur.pack_k), enc.pack_n.eq(cur.pack_n),
                enc.row.eq(row_e), enc.mode.eq(cur.mode),
                enc.old.eq(Array(p.levels.as_value() for p in self.xrd)[cur.xbar]),
            ]
            last = Signal(name=f"last{d}")  # the row's last cycle
            last_row = Signal(name=f"last_row{d}")
            commit = Signal(name=f"commit{d}")
            done = self.done[d]
            # verify read-back (§8.7): the cells this write programs that will not hold their targets
            bad = Signal(cfg.xbar_cols, name=f"verify_bad{d}")
            m.d.comb += bad.eq(Array(p.fail for p in self.xwr)[cur.xbar] & enc.mask)
            mismatch, fail, on_reset = (Signal(name=f"{n}{d}") for n in ("mismatch", "verify_fail", "fail_on_reset"))
            extra = Signal(range(max_extra + 1), name=f"verify_extra{d}")  # cycles of the failing cells' pulses
            retry = Signal(name=f"retry{d}")  # pulsing a failing row's cells (after its write cycle)
            rleft = Signal(range(max_extra + 1), name=f"retry_left{d}")
            report = Signal(name=f"give_up{d}")
            fcost = give_up + Mux(cur.mode & on_reset, k.t_rst, 0)
            m.d.comb += [
                mismatch.eq(bad.any()),
                on_reset.eq(tree_reduce(lambda a, b: a | b, [
                    bad[j] & via_reset[Cat(enc.target[j], enc.old[j])] for j in range(cfg.xbar_cols)])),
                extra.eq(Mux(fcost > enc.slowest, fcost - enc.slowest, 0)),
                last.eq(~retry & (el_e + 1 >= enc.row_cycles)),
                last_row.eq(row_e + 1 >= cur.rows),
                fail.eq(active & last & mismatch),
                report.eq((fail & (extra == 0)) | (retry & (rleft == 0))),
                done.valid.eq((active & last & last_row & ~mismatch) | report),
                done.payload.xbar.eq(cur.xbar),
                done.payload.slot.eq(cur.slot),
                done.payload.fault.eq(report),
                done.payload.row.eq(row_e),
                commit.eq(active & last & (~last_row | done.ready | mismatch)),
                wb.count.eq(commit),
            ]

            with m.If(start):
                m.d.sync += [saved.eq(pay), busy[d].eq(1)]
            with m.If(active):
                with m.If(retry):  # the row stays; give up once the pulses are done and the report is taken
                    with m.If(rleft != 0):
                        m.d.sync += rleft.eq(rleft - 1)
                    with m.Elif(done.ready):
                        m.d.sync += [retry.eq(0), row.eq(0), busy[d].eq(0)]
                with m.Elif(commit):
                    m.d.sync += elapsed.eq(0)
                    with m.If(mismatch):
                        m.d.sync += row.eq(row_e)
                        with m.If((extra == 0) & done.ready):
                            m.d.sync += [row.eq(0), busy[d].eq(0)]
                        with m.Else():
                            m.d.sync += [retry.eq(1), rleft.eq(Mux(extra == 0, 0, extra - 1))]
                    with m.Elif(last_row):
                        m.d.sync += [row.eq(0), busy[d].eq(0)]
                    with m.Else():
                        m.d.sync += row.eq(row_e + 1)
                with m.Elif(last):  # done held by back-pressure
                    m.d.sync += [row.eq(row_e), elapsed.eq(el_e)]
                with m.Else():
                    m.d.sync += [row.eq(row_e), elapsed.eq(el_e + 1)]
            drv.append((active, cur, row_e, commit, enc))

        # Crossbar ports: the driver on crossbar x (at most one, WAW) drives them; lowest index wins otherwise.
        # The cells have no reset, so a write cycle that is also a reset cycle must not write.
        in_reset = ResetSignal()
        for x in range(X):
            rd, wr = self.xrd[x], self.xwr[x]
            for active, cur, row_e, commit, enc in reversed(drv):
                with m.If(active & (cur.xbar == x)):
                    m.d.comb += [self.xact[x].eq(1), rd.row.eq(row_e), wr.row.eq(row_e), wr.levels.eq(enc.target),
                                 wr.mask.eq(enc.mask), wr.en.eq(commit & ~in_reset)]

        # Counters, added in each row's write cycle (§8.3, §11).
        incs = {name: [] for name in COUNTERS}
        hist = [[] for _ in range(L * L)]
        for _active, cur, _row_e, commit, enc in drv:
            diff, blind = commit & cur.mode, commit & ~cur.mode
            incs["rows_written"].append(blind | (diff & enc.changed))
            incs["rows_skipped"].append(diff & ~enc.changed)
            incs["cells_written_blind"].append(Mux(blind, enc.cphys, 0))
            incs["row_reads_before_write"].append(diff)
            incs["cells_read_before_write"].append(Mux(diff, enc.cphys, 0))
            for i in range(L * L):
                if i % (L + 1):  # the diagonal never counts
                    hist[i].append(Mux(commit, enc.hist[i], 0))
        for name in COUNTERS:
            ctr = getattr(self, name)
            m.d.sync += ctr.eq(ctr + tree_sum(incs[name]))
        for i in range(L * L):
            if hist[i]:
                m.d.sync += self.cells_changed[i].eq(self.cells_changed[i] + tree_sum(hist[i]))
        return m
