"""``top``: the ARAS accelerator (docs/architecture.md §1, §3.13, §11.3).

Units: ``controller`` (program memory, sequencers, scoreboard, bank mask, layer windows) with its
COMPUTE engine, ``dram`` (one channel), ``n_pe`` × ``pe`` (APUs, write buffer, write engine,
datapath front end, tile metadata), ``vector_unit``, ``gbuffer``.

Run protocol (see ``hw/controller.py``): reset; load the program (``prog_in`` or
``Top.controller.backdoor_load``), the DRAM image (``dram_in`` or ``init``/backdoor) and the network
input (``act_in`` or the Gbuffer backdoor); pulse ``start``. **Cycle 0 is the cycle after the start
strobe** (the spec's "first cycle after reset is released" with loading moved before it); ``done`` is
high from cycle ``cycles`` on. Read results through ``act_rd``/``act_data`` (or the backdoor) and the
status block. Crossbar cells, the PE tile metadata, program memory, DRAM image and Gbuffer contents
survive reset (run again after a reset → steady state, §8.6); everything else returns to idle.

Ports
-----
``prog_in``  In  stream of 256-bit program rows (row 0 upward; ready before ``start``)
``dram_in``  In  stream ``{addr, data[NL]}``: NL bytes of the DRAM image at byte ``addr`` (NL-aligned,
             NL = ``dram.lanes``)
``act_in``   In  stream ``{addr, data, be}``: one Gbuffer word (word address, byte enables); not counted
``act_rd``   In  stream ``{addr}`` (word address) → ``act_data`` Out stream ``{data}`` one cycle later;
             not counted
``dram_stall`` In: the DRAM side holds this cycle's beat (``dram.stall``; 0 for §10.2 timing)
``start`` In, ``running``/``done`` Out, ``error`` Out: illegal opcode, a tile-tag mismatch at a COMPUTE
             start (§9.6), or the error of §8.7 (verify failure, host or DRAM watchdog: from its cycle on;
             ``fault_*`` in the status block)
``host_req``/``host_layer`` Out, ``host_ack`` In: a HOST instruction raises ``host_req`` in its
             ``E_start``; §10.4's duration holds when the host acknowledges in that same cycle (the host
             op itself is untimed: a testbench does it between two edges); a later ack stretches it
``status_en``/``status_addr`` In, ``status_data`` Out(64): the §11.3 status block (:func:`status_names`),
             combinational while ``status_en`` is high (0 otherwise; the enable keeps simulation fast)
``peek_*``: combinational crossbar row read while the write engines are idle (testbench)

Stuck cells (§8.7): ``Top(faults={(crossbar, row, column): level})`` builds the chip with those cells
stuck (each PE gets its crossbars' cells, ``Pe(stuck=...)``, down to the crossbar macros); simulation only
(generation rejects a fault map). Without faults the design is the fault-free one.

Structural notes (all inside the spec's §13.2 simplifications): the compute engine reads the input
vectors and restored partial sums through combinational Gbuffer byte / int32 ports and writes outputs through
one Gbuffer write port per output lane (disjoint byte enables may hit one word in one cycle): the
Gbuffer's ``crd8``, ``crd32`` and ``wr`` ports. ``dram_in`` writes the DRAM unit's byte-lane memories.
"""

from __future__ import annotations

from amaranth.hdl import Module, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from aras import isa
from aras.config import Config
from aras.errors import ArasError

from . import shared
from .controller import ComputeEngine, Controller
from .dram import Dram
from .gbuffer import Gbuffer
from .pe import PE_COUNTERS, Pe
from .shared import place
from .tree import tree_sum
from .unit import Unit
from .vector_unit import VectorUnit

__all__ = ["Top", "status_names", "COUNTERS", "FAULTS"]

# §11.1 order (cells_changed, flattened old-major, follows cycles)
COUNTERS = ("rows_written", "rows_skipped", "cells_written_blind", "row_reads_before_write",
            "cells_read_before_write", "adc_conversions", "xbar_reads", "dac_activations", "input_sum_ops",
            "post_ops", "vector_ops", "gbuf_reads", "gbuf_writes", "gbuf_active_bank_cycles", "dram_bytes",
            "write_buffer_bytes", "psum_spill_words")
# §11.3: the error of §8.7 (all 0 without one), after the counters
FAULTS = ("fault_code", "fault_xbar", "fault_row", "fault_cycle")


def status_names(cfg: Config, max_layers: int) -> list[str]:
    """Names of the status-block registers by address (§11.3)."""
    L = cfg.levels
    names = ["cycles"] + [f"cells_changed[{o}][{n}]" for o in range(L) for n in range(L)] + list(COUNTERS)
    names += list(FAULTS)
    for li in range(max_layers):
        names += [f"layer_start[{li}]", f"layer_end[{li}]", f"layer_wstart[{li}]", f"layer_wend[{li}]"]
    return names


# Config fields of rules the RTL does not implement yet: the bandwidth terms of §10.3 (uarch-v3.md §4,
# stages 3 and 4). A config with any of them > 0 would give a design the golden model does not describe.
UNBUILT = ("fetch_ports", "psum_lanes", "post_lanes")


def check_buildable(cfg: Config) -> None:
    """Raise ``ArasError`` (one line) if ``cfg`` asks for rules the RTL does not implement."""
    bad = [f"{f} = {getattr(cfg, f)}" for f in UNBUILT if getattr(cfg, f)]
    if bad:
        raise ArasError(f"config {cfg.name!r}: the RTL implements the unbounded COMPUTE rule only "
                        f"(docs/architecture.md §10.3), but {', '.join(bad)}; set them to 0 "
                        f"(preset 'paper-unbounded' is 'paper' so)")
    if cfg.broadcast_writes:
        raise ArasError(f"config {cfg.name!r}: the RTL fetches every WRITE's tile from DRAM (program format v1), but "
                        "broadcast_writes = true asks for broadcast WRITEs, a golden-model-only rule "
                        "(docs/architecture.md §9.8); set it to false")


class Top(Unit):
    """The accelerator (see the module docstring).

    Parameters
    ----------
    cfg : aras.config.Config
    program_words : int
        Program memory rows (256 bit).
    dram_bytes : int
        DRAM image capacity.
    dram_init, gbuf_init : bytes
        Power-up contents (tests); not re-applied by reset.
    max_layers : int
        Layers with window registers in the status block.
    debug : bool
        Keep per-instruction start/finish cycles in the controller (``controller.trace_times``).
    blackbox_macros : bool
        Crossbars as instances of the external ``aras_xbar_macro`` (synthesis flows with a real macro;
        ``hw.generate.macro_stub`` declares its ports) instead of the behavioural cell arrays.
    faults : mapping (crossbar, row, column) -> level, optional
        Stuck cells of the simulated chip (§8.7; behavioural crossbars, simulation only).
    """

    def __init__(self, *, cfg: Config, program_words: int = 2048, dram_bytes: int = 1 << 16,
                 dram_init: bytes = b"", gbuf_init: bytes = b"", max_layers: int = 32, debug: bool = False,
                 blackbox_macros: bool = False, faults=None):
        check_buildable(cfg)
        self._take_cfg(cfg)
        self._blackbox = blackbox_macros
        self._faults = dict(faults or {})
        if self._faults and blackbox_macros:
            raise ArasError("Top: stuck cells (faults) need the behavioural crossbars, not blackbox_macros")
        for key in self._faults:
            if not (isinstance(key, tuple) and len(key) == 3 and 0 <= int(key[0]) < cfg.n_xbars):
                raise ArasError(f"Top: stuck cell {key!r} is not a (crossbar < {cfg.n_xbars}, row, column)")
        X, cw, lanes = cfg.n_xbars, cfg.weight_cols, cfg.vector_lanes
        self.controller = Controller(cfg=cfg, program_words=program_words, max_layers=max_layers,
                                     start_lanes=cfg.write_drivers_per_pe, qparam_ports=X * cw, vqp_ports=lanes,
                                     debug=debug)
        self.dram = Dram(cfg=cfg, size=dram_bytes, init=dram_init)
        XP = cfg.apus_per_pe * cfg.xbars_per_apu
        by_pe: list[dict] = [{} for _ in range(cfg.n_pe)]  # PE -> its crossbar -> {(row, column): level}
        for (x, r, j), lv in self._faults.items():
            by_pe[int(x) // XP].setdefault(int(x) % XP, {})[(int(r), int(j))] = int(lv)
        self.pes = [Pe(cfg=cfg, index=p, blackbox_macros=blackbox_macros, stuck=by_pe[p])
                    for p in range(cfg.n_pe)]
        self.engine = ComputeEngine(cfg=cfg)
        self.vector = VectorUnit(cfg=cfg)
        self._wr_out = X * cw  # Gbuffer write ports: engine lanes, vector unit (2), act_in
        self.gbuffer = Gbuffer(cfg=cfg, read_ports=2 * lanes + 1, write_ports=X * cw + 3,
                               comb8_ports=len(self.engine.grd8), comb32_ports=len(self.engine.grd32), init=gbuf_init)
        self._max_layers = max_layers
        nl = self.dram._nl
        words = cfg.gbuf_bytes // cfg.gbuf_word_bytes
        wbits = max(1, (words - 1).bit_length())
        XP = cfg.apus_per_pe * cfg.xbars_per_apu
        names = status_names(cfg, max_layers)
        super().__init__({
            "prog_in": In(stream.Signature(unsigned(8 * isa.WORD_BYTES))),
            "dram_in": In(stream.Signature(data.StructLayout({"addr": unsigned(32),
                                                              "data": data.ArrayLayout(unsigned(8), nl)}))),
            "act_in": In(stream.Signature(data.StructLayout({"addr": unsigned(wbits),
                                                             "data": unsigned(8 * cfg.gbuf_word_bytes),
                                                             "be": unsigned(cfg.gbuf_word_bytes)}))),
            "act_rd": In(stream.Signature(data.StructLayout({"addr": unsigned(wbits)}))),
            "act_data": Out(stream.Signature(data.StructLayout({"data": unsigned(8 * cfg.gbuf_word_bytes)}))),
            "dram_stall": In(1),
            "start": In(1),
            "running": Out(1),
            "done": Out(1),
            "error": Out(1),
            "host_req": Out(1),
            "host_layer": Out(12),
            "host_ack": In(1),
            "status_en": In(1),
            "status_addr": In(range(len(names))),
            "status_data": Out(64),
            "peek_en": In(1),
            "peek_xbar": In(range(X)),
            "peek_row": In(range(cfg.xbar_rows)),
            "peek_levels": Out(data.ArrayLayout(unsigned(cfg.cell_bits), cfg.xbar_cols)),
        })
        self._xp = XP

    @property
    def max_layers(self) -> int:
        return self._max_layers

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        c, d, e, v, g = self.controller, self.dram, self.engine, self.vector, self.gbuffer
        X, cw, lanes, XP = cfg.n_xbars, cfg.weight_cols, cfg.vector_lanes, self._xp
        AP = cfg.apus_per_pe
        m.submodules.controller, m.submodules.dram = c, d
        m.submodules.engine, m.submodules.vector, m.submodules.gbuffer = e, v, g
        for p, pe in enumerate(self.pes):
            if not self._faults:
                place(m, f"pe{p}", pe, "aras_pe_bb" if self._blackbox else "aras_pe")
                continue
            if shared.library() is not None:
                raise ArasError("Top: a design with stuck cells (faults) is for simulation, it cannot be generated")
            m.submodules[f"pe{p}"] = pe

        # Wiring is grouped into sub-fragments by how often the signals change: the simulator
        # re-evaluates a fragment's combinational statements as a whole when any input changes.
        def sub(name):
            s_ = Module()
            m.submodules[name] = s_
            return s_

        # ---------------------------------------------------------------- control, write path
        w = sub("w_control")
        wiring.connect(w, wiring.flipped(self.prog_in), c.prog_in)
        w.d.comb += [c.start.eq(self.start), self.running.eq(c.running), self.done.eq(c.done),
                     self.error.eq(c.error | e.tag_error | c.fault),
                     self.host_req.eq(c.host_req),
                     self.host_layer.eq(c.host_layer), c.host_ack.eq(self.host_ack)]
        w = sub("w_dram")
        wiring.connect(w, c.dram_req, d.req)
        wiring.connect(w, d.done, c.dram_done)
        w.d.comb += [d.stall.eq(self.dram_stall), c.dram_busy.eq(d.busy), c.dram_timeout.eq(d.timeout)]
        for p, pe in enumerate(self.pes):
            w = sub(f"w_pe{p}")
            wiring.connect(w, d.fill[p], pe.fill)
            for k in range(cfg.write_drivers_per_pe):
                wiring.connect(w, c.wr_tile[p][k], pe.tile[k])
                wiring.connect(w, pe.done[k], c.wr_done[p][k])

        # ---------------------------------------------------------------- execute path
        w = sub("w_info")
        w.d.comb += [e.start.eq(c.exec_start & (c.info.instr.head.op == isa.Opcode.COMPUTE)),
                     e.info.eq(c.info), c.compute_done.eq(e.done)]
        w.d.comb += [e.tiles[x].eq(c.tiles[x]) for x in range(cfg.n_xbars)]
        w.d.comb += [e.psum_base[x].eq(c.psum_base[x]) for x in range(cfg.n_xbars)]
        w = sub("w_meta")
        for x in range(X):
            w.d.comb += e.meta[x].eq(self.pes[x // XP].meta[x % XP])
        w = sub("w_psum")
        for x in range(X):
            wiring.connect(w, self.pes[x // XP].psum[x % XP], e.psum[x])
        for a in range(cfg.n_pe * AP):
            wiring.connect(sub(f"w_item{a}"), e.item[a], self.pes[a // AP].item[a % AP])
        w = sub("w_qp")
        for k in range(X * cw):
            wiring.connect(w, e.qp[k], c.qp_rd[k])
        w = sub("w_gwr")
        for k in range(X * cw):
            wiring.connect(w, e.gwr[k], g.wr[k])
        w = sub("w_grd")  # combinational byte / int32 reads of the compute engine (§13.2: no port limits)
        for k in range(len(e.grd8)):
            wiring.connect(w, e.grd8[k], g.crd8[k])
        for k in range(len(e.grd32)):
            wiring.connect(w, e.grd32[k], g.crd32[k])
        w = sub("w_vector")
        wiring.connect(w, c.vec_op, v.op)
        w.d.comb += c.vector_done.eq(v.done)
        for k in range(lanes):
            wiring.connect(w, v.rd0[k], g.rd[k])
            wiring.connect(w, v.rd1[k], g.rd[lanes + k])
            wiring.connect(w, v.qp[k], c.vqp[k])
        for k in range(2):
            wiring.connect(w, v.wr[k], g.wr[self._wr_out + k])
        w = sub("w_gbuf")
        w.d.comb += [g.extra_reads.eq(v.extra_reads + e.extra_reads), g.bank_on.eq(c.bank_on)]

        # ---------------------------------------------------------------- load / unload streams
        w = sub("w_load")
        ai = g.wr[self._wr_out + 2]
        w.d.comb += [self.act_in.ready.eq(~c.running), ai.en.eq(self.act_in.valid & ~c.running),
                     ai.addr.eq(self.act_in.payload.addr), ai.data.eq(self.act_in.payload.data),
                     ai.be.eq(self.act_in.payload.be), ai.count.eq(0)]
        ar = g.rd[2 * lanes]
        w.d.comb += [self.act_rd.ready.eq(~self.act_data.valid | self.act_data.ready),
                     ar.addr.eq(self.act_rd.payload.addr), ar.en.eq(self.act_rd.valid & self.act_rd.ready),
                     ar.count.eq(0), self.act_data.payload.data.eq(ar.data)]
        with m.If(self.act_data.ready):
            m.d.sync += self.act_data.valid.eq(0)
        with m.If(ar.en):
            m.d.sync += self.act_data.valid.eq(1)
        nl = d._nl
        w.d.comb += self.dram_in.ready.eq(~c.running)
        for lane, lm in enumerate(d._mems):
            wp = lm.write_port()
            w.d.comb += [wp.en.eq(self.dram_in.valid & ~c.running), wp.addr.eq(self.dram_in.payload.addr // nl),
                         wp.data.eq(self.dram_in.payload.data[lane])]

        # ---------------------------------------------------------------- peek
        w = sub("peek")
        with w.If(self.peek_en):
            for p, pe in enumerate(self.pes):
                w.d.comb += [pe.peek_en.eq(self.peek_xbar // XP == p), pe.peek_xbar.eq(self.peek_xbar % XP),
                             pe.peek_row.eq(self.peek_row)]
                with w.If(self.peek_xbar // XP == p):
                    w.d.comb += self.peek_levels.eq(pe.peek_levels)

        # ---------------------------------------------------------------- status block (§11.3)
        # Evaluated only while ``status_en`` is high (the counters change every cycle).
        w = sub("status")

        def pes_sum(name):
            return tree_sum([getattr(pe, name) for pe in self.pes])

        with w.If(self.status_en):
            src = {name: pes_sum(name) for name in PE_COUNTERS}
            src.update(post_ops=e.post_ops, psum_spill_words=e.psum_spill_words, vector_ops=v.vector_ops,
                       gbuf_reads=g.gbuf_reads, gbuf_writes=g.gbuf_writes,
                       gbuf_active_bank_cycles=g.gbuf_active_bank_cycles, dram_bytes=d.dram_bytes)
            L2 = cfg.levels ** 2
            regs = [c.cycle] + [tree_sum([pe.cells_changed[i] for pe in self.pes]) for i in range(L2)]
            regs += [src[name] for name in COUNTERS]
            regs += [c.fault_code, c.fault_xbar, c.fault_row, c.fault_cycle]  # FAULTS
            n_fixed = len(regs)
            sel = self.status_addr
            with w.Switch(sel):
                for i, r in enumerate(regs):
                    with w.Case(i):
                        w.d.comb += self.status_data.eq(r)
                with w.Default():
                    w.d.comb += [c.layer_rd_addr.eq(sel - n_fixed), self.status_data.eq(c.layer_rd_data)]
        return m

    # ---------------------------------------------------------------- testbench helpers
    def read_status(self, ctx, n_layers: int | None = None) -> dict[str, int]:
        """The status block as a name → value dict (``n_layers`` layers; default all kept)."""
        names = status_names(self._cfg, self._max_layers if n_layers is None else n_layers)
        out = {}
        ctx.set(self.status_en, 1)
        for i, name in enumerate(names):
            ctx.set(self.status_addr, i)
            out[name] = ctx.get(self.status_data)
        ctx.set(self.status_en, 0)
        return out

    def peek_levels_of(self, ctx, xbar: int):
        """All rows of crossbar ``xbar`` (levels), read through ``peek`` while idle."""
        rows = []
        ctx.set(self.peek_en, 1)
        ctx.set(self.peek_xbar, xbar)
        for r in range(self._cfg.xbar_rows):
            ctx.set(self.peek_row, r)
            rows.append([int(v) for v in ctx.get(self.peek_levels)])
        ctx.set(self.peek_en, 0)
        return rows
