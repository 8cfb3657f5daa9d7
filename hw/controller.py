"""``controller``: program memory, the write-stream and execute-stream sequencers, the scoreboard, the
Gbuffer bank mask, the host handshake, per-layer windows and the cycle counter (docs/architecture.md
§3.12, §7.3, §9, §10, §11.3). Golden model of its timing: ``sim_models/timing.py``.

Two components: :class:`Controller` (sequencing) and :class:`ComputeEngine` (the execute sequencer's
COMPUTE part: item generation with the im2col input fetch, cross-tile accumulation through
``datapath.Post`` and the output / partial-sum write-back, §5, §6.3, §7.4, §10.3).

Scale: the dense tile table (format v2) makes the decoders O(crossbars); the remaining O(crossbars²)
logic is the block accumulation (each crossbar's ``MemberSum`` units read every crossbar's partial
sums), emitted once as a shared unit. The engine has one combinational Gbuffer port per crossbar row
and per restored lane (§13.2's no-port-limit rule, literally; docs/architecture.md §3.14).

Run protocol (this defines §10.1's cycle 0 for the RTL)
--------------------------------------------------------
1. Reset. Everything sequential returns to idle; program memory, DRAM image, Gbuffer contents and
   crossbar cells survive (none of them is reset).
2. Load (any number of cycles, nothing is counted): the program image through ``prog_in`` (256-bit
   rows from row 0 upward; reset restarts at row 0) or by :meth:`Controller.backdoor_load`; the
   DRAM image and the network input through the top's streams or backdoors.
3. ``start`` high for one cycle (honoured once per reset). **Cycle 0 is the cycle after the start
   strobe**; every counter is 0 in cycle 0. ``done`` is high from cycle ``cycles`` (§10.1) until the
   next reset; ``cycle`` then holds ``cycles``.

Sequencing (§10.2, §10.4; every wait points to earlier program order, so no deadlock)
---------------------------------------------------------------------------------------
Program memory is one array of 256-bit rows read through combinational ports, so the next instruction
of each stream, its layer descriptor, tensor entries, tile/block entries and bank event are available
in the cycle they are needed (instruction fetch is free, §13.2).

- **DRAM stage**, write stream in order: the WRITE at ``wptr`` issues ``dram_req`` in cycle t when the
  channel is idle (``dram_req.ready``), its PE has a free write-buffer slot (reserved from ``A_start``
  to ``B_fin``, lowest index first) and, if ``barrier``, ``exec_retired ≥ wait_exec``. ``dram_done``
  (cycle ``A_fin − 1``) marks the slot's tile present.
- **Programming stage**, per PE in order: the PE's oldest not-yet-started WRITEs (a FIFO of slots in
  DRAM order) start on ``wr_tile`` in cycle t when their tile is present, a driver is free,
  ``exec_retired ≥ wait_exec`` (WAR) and no earlier WRITE to the crossbar is still programming (WAW,
  ``busy[x]``). ``start_lanes`` > 1 lets several WRITEs of one PE start in one cycle (§8.4: a second
  free driver), lane j going to the j-th lowest free driver (the write engine's issue-lane rule; the
  top uses ``write_drivers_per_pe`` lanes). ``wr_done[p][d]`` (cycle ``B_fin − 1``) frees the driver,
  the slot and ``busy[x]`` and increments ``done_gen[x]``.
- **Execute stream**, one instruction at a time: the instruction at ``eptr`` starts in cycle t when the
  previous one has finished and, for COMPUTE, ``done_gen[x] ≥ need_gen`` for every tile entry (RAW;
  ``need_gen`` 0 = resident tile, no wait). ``exec_start`` is high in ``E_start``; the unit reports its
  last busy cycle (``compute_done``, ``vector_done``; HOST: ``host_req`` from ``E_start`` until
  ``host_ack``, then ``host_handoff_cycles`` more), at whose edge ``exec_retired`` increments.
- The run ends in the first cycle in which both streams are exhausted and nothing is busy: ``done``.

Errors (§8.7). A given-up tile (``wr_done`` with ``fault``: its row failed verify), a HOST whose host has
not acknowledged for ``watchdog_cycles`` cycles, or ``dram_timeout`` (a beat held that long) raise the
error: detected in cycle F − 1, ``fault`` and the registers ``fault_code`` (1 verify, 2 host, 3 DRAM; the
lowest code, then the lowest crossbar, if several in one cycle), ``fault_xbar``, ``fault_row`` and
``fault_cycle`` = F hold from cycle F on; the first error wins. From F nothing starts (no DRAM
transfer, no programming, no execute instruction: no COMPUTE reads a crossbar whose tile failed); a
given-up tile frees its driver only, the unacknowledged HOST is abandoned (``host_req`` drops, it never
retires) and the held DRAM transfer is no longer waited for. The run ends (``done``) in the first cycle
≥ F in which nothing else is in progress.

Bank mask (§7.3): ``bank_on`` = ``active | on_mask`` of an instruction starting this cycle; at an
instruction's finish edge ``active &= ~off_mask``; all ones while running when the header's
``gbuf_adaptive`` flag is 0; 0 outside [cycle 0, ``cycles``) (the Gbuffer counts it every cycle).

Per-layer registers (§11.1): ``layer_start`` = first E_start, ``layer_end`` = last E_fin − 1,
``layer_wstart`` = first B_start, ``layer_wend`` = last B_fin − 1 of the layer's WRITEs; all ones when
absent. Read through ``layer_rd`` (``max_layers`` layers are kept).

Debug trace (``debug=True``, simulation): memories indexed by write-stream index (``A_start``,
``A_fin``, ``B_start``, ``B_fin``) and execute index (``E_start``, ``E_fin``), read with
:meth:`Controller.trace_times`.
"""

from __future__ import annotations

import math

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from aras import isa
from aras.config import Config

from .dram import done_layout as dram_done_layout
from .dram import req_layout as dram_req_layout
from .fetch import InputFetch
from .pe import tile_layout as pe_tile_layout
from .shared import place
from .strobe import delayed
from .tree import tree_reduce, tree_sum
from .unit import Unit
from .vector_unit import op_layout, qparam_port_signature
from .write_engine import done_layout as wr_done_layout

__all__ = ["Controller", "exec_info_layout", "qparam_read_signature", "section_rows"]

ROW_BITS = 8 * isa.WORD_BYTES
CYCLE_BITS = 64
DBG_BITS = 32
ALL_ONES = (1 << CYCLE_BITS) - 1


def qparam_read_signature() -> wiring.Signature:
    """Combinational qparam-record read, seen from the user: ``index`` out, ``data`` back."""
    return wiring.Signature({"index": Out(24), "data": In(isa.QPARAM)})


def exec_info_layout(cfg: Config) -> data.StructLayout:
    """What the execute units see of the instruction at ``eptr`` (combinational, stable while it runs);
    the per-crossbar part is on the ``tiles`` / ``psum_base`` port arrays (one wide signal would pass
    Amaranth's 65,536-bit limit at 256 crossbars)."""
    return data.StructLayout({
        "instr": isa.INSTR,
        "desc": isa.LAYER,
        "in0": isa.TENSOR,
        "in1": isa.TENSOR,
        "out": isa.TENSOR,
        "batch": unsigned(16),
    })


def _rows(n, size: int):
    """Rows of a section of ``n`` entries of ``size`` bytes."""
    return (n * size + (isa.WORD_BYTES - 1)) >> 5


def section_rows(hdr) -> dict:
    """Base rows of every section from a header view (Amaranth expressions; Python ints work too)."""
    out = {"header": 0, "banks_init": 2, "layers": 3}
    out["tensors"] = out["layers"] + _rows(hdr.n_layers, 128)
    out["qparams"] = out["tensors"] + _rows(hdr.n_tensors, 16)
    out["tiles"] = out["qparams"] + _rows(hdr.n_qparams, 16)
    out["blocks"] = out["tiles"] + _rows(hdr.n_tiles, isa.ENTRY_BYTES["tiles"])
    out["bank_events"] = out["blocks"] + _rows(hdr.n_blocks, isa.ENTRY_BYTES["blocks"])
    out["initial"] = out["bank_events"] + hdr.n_bank_events
    out["writes"] = out["initial"] + _rows(hdr.n_initial, 8)
    out["execs"] = out["writes"] + hdr.n_writes
    return out


def _lowest(bits, width: int):
    """(any, index) of the lowest set bit of ``bits``."""
    idx = Const(0, range(max(2, width)))
    for i in reversed(range(width)):
        idx = Mux(bits[i], i, idx)
    return bits.any(), idx


class Controller(Unit):
    """The controller (see the module docstring for the protocol, sequencing and registers).

    Parameters
    ----------
    cfg : aras.config.Config
        Hierarchy (``n_pe``, ``apus_per_pe``, ``xbars_per_apu``), ``write_drivers_per_pe``,
        ``write_buffer_slots``, ``gbuf_banks``, ``host_handoff_cycles``.
    program_words : int
        Program memory depth in 256-bit rows.
    max_layers : int
        Layers with window registers (layers beyond are not recorded).
    start_lanes : int
        WRITEs of one PE that may start programming in one cycle (1 … ``write_drivers_per_pe``).
    qparam_ports : int
        Combinational qparam-record read ports (``qp_rd``) for the compute engine.
    vqp_ports : int
        Synchronous qparam ports (``vqp``, the vector unit's ``qp`` protocol).
    debug : bool
        Keep per-instruction start/finish cycles (simulation).

    Attributes (ports)
    ------------------
    prog_in : In(stream of unsigned(256))
        Program image rows (ready while not running).
    start : In(1); running, done : Out(1); cycle : Out(64)
    dram_req : Out(stream of ``dram.req_layout``); dram_done : In(stream of ``dram.done_layout``)
    wr_tile : Out(stream of ``pe.tile_layout``) [n_pe][start_lanes]
    wr_done : In(stream of ``write_engine.done_layout``) [n_pe][write_drivers_per_pe]
    exec_start : Out(1)
        High in E_start of the instruction described by ``info``.
    info : Out(exec_info_layout(cfg))
    tiles : Out(isa.TILE) [n_xbars]
        The COMPUTE's dense tile table (format v2): entry x is crossbar x's.
    psum_base : Out(32) [n_xbars]
        Base of the psum tensor of crossbar x's block (its tile entry's ``psum_tensor``).
    compute_done : In(1)
    vec_op : Out(stream of ``vector_unit.op_layout``); vector_done : In(1)
    host_req : Out(1); host_layer : Out(12); host_ack : In(1)
    bank_on : Out(gbuf_banks)
    qp_rd : In(qparam_read_signature()) [qparam_ports]; vqp : In(qparam_port_signature()) [vqp_ports]
    layer_rd_addr : In(range(4·max_layers)); layer_rd_data : Out(64)
        Per-layer registers, layer-major (start, end, wstart, wend), as in the §11.3 status block.
    exec_retired : Out(24); error : Out(1) (illegal opcode at ``eptr``)
    dram_busy, dram_timeout : In(1)
        The DRAM channel's ``busy`` and watchdog ``timeout`` (§8.7).
    fault : Out(1); fault_code : Out(2); fault_xbar : Out(12); fault_row : Out(range(xbar_rows));
    fault_cycle : Out(64)
        The error of §8.7 (see "Errors" above); all 0 without one.
    """

    def __init__(self, *, cfg: Config, program_words: int = 2048, max_layers: int = 32, start_lanes: int = 1,
                 qparam_ports: int = 0, vqp_ports: int = 0, debug: bool = False):
        self._take_cfg(cfg)
        for name, v, lo in (("program_words", program_words, 4), ("max_layers", max_layers, 1),
                            ("start_lanes", start_lanes, 1), ("qparam_ports", qparam_ports, 0),
                            ("vqp_ports", vqp_ports, 0)):
            if not isinstance(v, int) or isinstance(v, bool) or v < lo:
                raise ValueError(f"Controller: {name} must be an integer >= {lo}, not {v!r}")
        if start_lanes > cfg.write_drivers_per_pe:
            raise ValueError(f"Controller: start_lanes ({start_lanes}) exceeds write_drivers_per_pe "
                             f"({cfg.write_drivers_per_pe}) of config {cfg.name!r}")
        self._words = program_words
        self._max_layers = max_layers
        self._lanes = start_lanes
        self._debug = bool(debug)
        self.mem = memory.Memory(shape=unsigned(ROW_BITS), depth=program_words, init=[])
        if self._debug:
            self.dbg = {k: memory.Memory(shape=unsigned(DBG_BITS), depth=program_words, init=[])
                        for k in ("a_start", "a_fin", "b_start", "b_fin", "e_start", "e_fin")}
        D = cfg.write_drivers_per_pe
        super().__init__({
            "prog_in": In(stream.Signature(unsigned(ROW_BITS))),
            "start": In(1),
            "running": Out(1),
            "done": Out(1),
            "cycle": Out(CYCLE_BITS),
            "dram_req": Out(stream.Signature(dram_req_layout(cfg))),
            "dram_done": In(stream.Signature(dram_done_layout(cfg))),
            "wr_tile": Out(stream.Signature(pe_tile_layout(cfg))).array(cfg.n_pe, start_lanes),
            "wr_done": In(stream.Signature(wr_done_layout(cfg))).array(cfg.n_pe, D),
            "exec_start": Out(1),
            "info": Out(exec_info_layout(cfg)),
            "tiles": Out(isa.TILE).array(cfg.n_xbars),
            "psum_base": Out(32).array(cfg.n_xbars),
            "compute_done": In(1),
            "vec_op": Out(stream.Signature(op_layout())),
            "vector_done": In(1),
            "host_req": Out(1),
            "host_layer": Out(12),
            "host_ack": In(1),
            "bank_on": Out(cfg.gbuf_banks),
            "qp_rd": In(qparam_read_signature()).array(qparam_ports),
            "vqp": In(qparam_port_signature()).array(vqp_ports),
            "layer_rd_addr": In(range(4 * max_layers)),
            "layer_rd_data": Out(CYCLE_BITS),
            "exec_retired": Out(24),
            "error": Out(1),
            "dram_busy": In(1),
            "dram_timeout": In(1),
            "fault": Out(1),
            "fault_code": Out(2),
            "fault_xbar": Out(12),
            "fault_row": Out(range(cfg.xbar_rows)),
            "fault_cycle": Out(CYCLE_BITS),
        })

    @property
    def program_words(self) -> int:
        return self._words

    @property
    def max_layers(self) -> int:
        return self._max_layers

    @property
    def start_lanes(self) -> int:
        return self._lanes

    # ------------------------------------------------------------------------------------------ helpers
    def backdoor_load(self, ctx, words) -> None:
        """Write program-image rows (``isa.Image.words``) from row 0 (testbench context)."""
        words = list(words)
        if len(words) > self._words:
            raise ValueError(f"Controller: program of {len(words)} rows exceeds program_words={self._words}")
        for i, w in enumerate(words):
            ctx.set(self.mem.data[i], w)

    def trace_times(self, ctx, n_writes: int, n_execs: int):
        """(write_times, exec_times) from the debug memories, as ``sim_models.timing.Run`` lists them."""
        if not self._debug:
            raise ValueError("Controller: trace_times needs debug=True")
        g = {k: m.data for k, m in self.dbg.items()}
        w = [(ctx.get(g["a_start"][i]), ctx.get(g["a_fin"][i]), ctx.get(g["b_start"][i]), ctx.get(g["b_fin"][i]))
             for i in range(n_writes)]
        e = [(ctx.get(g["e_start"][i]), ctx.get(g["e_fin"][i])) for i in range(n_execs)]
        return w, e

    # ------------------------------------------------------------------------------------------ elaborate
    def elaborate(self, platform):  # noqa: C901 (the sequencers share one state; kept in one place)
        m = Module()
        cfg = self._cfg
        m.submodules.mem = mem = self.mem
        P, D, S, X = cfg.n_pe, cfg.write_drivers_per_pe, cfg.write_buffer_slots, cfg.n_xbars
        XP = cfg.apus_per_pe * cfg.xbars_per_apu
        lanes = self._lanes
        abits = (self._words - 1).bit_length()

        # The simulator evaluates a fragment's combinational logic as a whole whenever one of its
        # inputs changes: decoding is split into sub-fragments by how often its inputs change.
        def sub(name):
            s_ = Module()
            m.submodules[name] = s_
            return s_

        def read(addr, name, mm):
            p = mem.read_port(domain="comb")
            s = Signal(ROW_BITS, name=name)
            mm.d.comb += [p.addr.eq(addr[:abits] if hasattr(addr, "shape") else addr), s.eq(p.data)]
            return s

        # ---------------------------------------------------------------- loading
        load_ptr = Signal(range(self._words + 1))
        run = Signal()  # cycle 0 … cycles − 1 … and the done cycle
        fin = Signal()  # the run has ended
        wp = mem.write_port()
        m.d.comb += [self.prog_in.ready.eq(~run & ~fin & (load_ptr < self._words)),
                     wp.addr.eq(load_ptr[:abits]), wp.data.eq(self.prog_in.payload),
                     wp.en.eq(self.prog_in.valid & self.prog_in.ready)]
        with m.If(wp.en):
            m.d.sync += load_ptr.eq(load_ptr + 1)

        # ---------------------------------------------------------------- header and sections
        hm = sub("header")
        hdr = isa.HEADER(Signal(isa.HEADER.size, name="hdr"))
        hm.d.comb += hdr.as_value().eq(Cat(read(0, "hdr0", hm), read(1, "hdr1", hm)))
        banks_init = read(2, "banks_init_row", hm)[:cfg.gbuf_banks]
        base = {}
        for k, v in section_rows(hdr).items():
            s = Signal(32, name=f"base_{k}")
            hm.d.comb += s.eq(v)
            base[k] = s
        adaptive = hdr.flags[0]

        def tensor(tid, name, mm):
            row = read(base["tensors"] + (tid >> 1), f"{name}_row", mm)
            t = isa.TENSOR(Signal(isa.TENSOR.size, name=name))
            mm.d.comb += t.as_value().eq(Mux(tid[0], row[128:], row[:128]))
            return t

        cycle = Signal(CYCLE_BITS)
        m.d.comb += [self.cycle.eq(cycle), self.running.eq(run)]
        done_now = Signal()
        with m.If(self.start & ~run & ~fin):
            m.d.sync += [run.eq(1), cycle.eq(0)]
        with m.If(run & ~done_now):
            m.d.sync += cycle.eq(cycle + 1)
        with m.If(run & done_now):
            m.d.sync += [run.eq(0), fin.eq(1)]
        m.d.comb += self.done.eq(fin | (run & done_now))
        act = run & ~done_now  # a cycle of the run
        flt = Signal()  # an error was raised (§8.7): from its cycle F nothing starts
        go_ok = act & ~flt  # things may start

        exec_retired = Signal(24)
        m.d.comb += self.exec_retired.eq(exec_retired)

        # ---------------------------------------------------------------- per-layer window registers
        NL = self._max_layers
        lreg = {k: Array(Signal(CYCLE_BITS, init=ALL_ONES, name=f"layer_{k}{i}") for i in range(NL))
                for k in ("start", "end", "wstart", "wend")}
        sel = self.layer_rd_addr
        flat = Array(lreg[k][i] for i in range(NL) for k in ("start", "end", "wstart", "wend"))
        sub("layer_rd").d.comb += self.layer_rd_data.eq(flat[sel])

        def set_first(kind, layer):
            with m.If(layer < NL):
                with m.If(lreg[kind][layer] == ALL_ONES):
                    m.d.sync += lreg[kind][layer].eq(cycle)

        def set_last(kind, layer):
            with m.If(layer < NL):
                m.d.sync += lreg[kind][layer].eq(cycle)

        if self._debug:
            for kind, dmem in self.dbg.items():
                m.submodules[f"dbg_{kind}"] = dmem

        dbgm = sub("debug")

        def dbg(kind, en, idx, value):
            if not self._debug:
                return
            p = self.dbg[kind].write_port()
            dbgm.d.comb += [p.en.eq(en), p.addr.eq(idx[:abits]), p.data.eq(value[:DBG_BITS])]

        # ---------------------------------------------------------------- crossbar scoreboard
        xbusy = Signal(X)
        done_gen = Array(Signal(20, name=f"done_gen{x}") for x in range(X))

        # ---------------------------------------------------------------- write stream: DRAM stage
        wptr = Signal(24)
        whm = sub("write_head")
        w_head = isa.INSTR(read(base["writes"] + wptr, "w_head_row", whm)).write
        head_pe = Signal(range(P))
        whm.d.comb += head_pe.eq(w_head.xbar // XP)

        slot_busy = [Signal(S, name=f"slot_busy{p}") for p in range(P)]
        slot_ready = [Signal(S, name=f"slot_ready{p}") for p in range(P)]
        slot_widx = [Array(Signal(24, name=f"slot_widx{p}_{s}") for s in range(S)) for p in range(P)]
        slot_layer = [Array(Signal(12, name=f"slot_layer{p}_{s}") for s in range(S)) for p in range(P)]
        q_slot = [Array(Signal(range(S), name=f"q_slot{p}_{k}") for k in range(S)) for p in range(P)]
        q_head = [Signal(range(S), name=f"q_head{p}") for p in range(P)]
        q_n = [Signal(range(S + 1), name=f"q_n{p}") for p in range(P)]

        free_slots = Array(~slot_busy[p] for p in range(P))[head_pe]
        has_slot, new_slot = Signal(), Signal(range(max(2, S)))
        hs, ns = _lowest(free_slots, S)
        whm.d.comb += [has_slot.eq(hs), new_slot.eq(ns)]
        barrier_ok = ~w_head.barrier | (exec_retired >= w_head.wait_exec)
        dram_go = Signal()
        m.d.comb += dram_go.eq(go_ok & (wptr < hdr.n_writes) & self.dram_req.ready & has_slot & barrier_ok)
        rq = self.dram_req.payload
        m.d.comb += self.dram_req.valid.eq(dram_go)
        whm.d.comb += [rq.addr.eq(w_head.dram_addr), rq.bytes.eq(w_head.rows * w_head.wcols), rq.pe.eq(head_pe),
                       rq.slot.eq(new_slot)]
        dram_widx = Signal(24)
        dram_xbar = Signal(12)  # crossbar of the transfer in flight (a DRAM error names it)
        with m.If(dram_go):
            m.d.sync += [wptr.eq(wptr + 1), dram_widx.eq(wptr), dram_xbar.eq(w_head.xbar)]
        dbg("a_start", dram_go, wptr, cycle)
        m.d.comb += self.dram_done.ready.eq(1)
        dd = self.dram_done
        dbg("a_fin", dd.valid, dram_widx, cycle + 1)

        # ---------------------------------------------------------------- write stream: programming stage
        write_idle = Signal(P)  # per PE: no WRITE between A_start and B_fin
        drivers_busy = []  # per PE: its drivers holding a tile
        given_up = []  # (valid, crossbar, row) of every driver's give-up report (§8.7)
        for p in range(P):
            # lanes: the j-th oldest pending WRITE of the PE, the j-th lowest free driver
            drv_busy = Signal(D, name=f"drv_busy{p}")
            drivers_busy.append(drv_busy)
            lm = sub(f"lanes{p}")
            free = ~drv_busy
            ok_prev = Const(1, 1)
            started_x = []
            lane_go, lane_drv, lane_slot = [], [], []
            for j in range(lanes):
                qi = q_head[p] + j
                qi = Mux(qi >= S, qi - S, qi)[:max(1, (S - 1).bit_length())] if S > 1 else Const(0, 1)
                s_j = Signal(range(S), name=f"cand_slot{p}_{j}")
                lm.d.comb += s_j.eq(q_slot[p][qi])
                wj = isa.INSTR(read(base["writes"] + slot_widx[p][s_j], f"cand_row{p}_{j}", lm)).write
                # named signals: each lane's free set feeds the next, and Amaranth walks expressions as
                # trees (nested without names, the lanes' expressions double in size per lane)
                anyfree, d_j = Signal(name=f"anyfree{p}_{j}"), Signal(range(max(2, D)), name=f"drv{p}_{j}")
                lm.d.comb += [v.eq(e) for v, e in zip((anyfree, d_j), _lowest(free, D), strict=True)]
                go = Signal(name=f"wr_go{p}_{j}")
                xj = wj.xbar
                distinct = tree_reduce(lambda a, b: a & b, [xj != xi for xi in started_x], empty=1)
                lane = self.wr_tile[p][j]
                lm.d.comb += go.eq(go_ok & ok_prev & (q_n[p] > j) & slot_ready[p].bit_select(s_j, 1) & anyfree &
                                   (exec_retired >= wj.wait_exec) & ~xbusy.bit_select(xj, 1) & distinct & lane.ready)
                tp = lane.payload
                lm.d.comb += [lane.valid.eq(go), tp.xbar.eq(xj - p * XP), tp.slot.eq(s_j), tp.rows.eq(wj.rows),
                             tp.wcols.eq(wj.wcols), tp.family.eq(wj.family), tp.mode.eq(wj.mode),
                             tp.pack_g.eq(wj.pack_g), tp.pack_k.eq(wj.pack_k), tp.pack_n.eq(wj.pack_n),
                             tp.flags.eq(wj.flags), tp.layer.eq(wj.layer), tp.t_group.eq(wj.t_group),
                             tp.t_row.eq(wj.t_row), tp.t_col.eq(wj.t_col)]
                with m.If(go):
                    m.d.sync += xbusy.bit_select(xj, 1).eq(1)
                    set_first("wstart", wj.layer)
                dbg("b_start", go, slot_widx[p][s_j], cycle)
                nfree = Signal(D, name=f"free{p}_{j + 1}")
                lm.d.comb += nfree.eq(free & ~Mux(go, (Const(1, D) << d_j)[:D], 0))
                free = nfree
                started_x.append(xj)
                ok_prev = go
                lane_go.append(go)
                lane_drv.append(d_j)
                lane_slot.append(s_j)
            n_started = tree_sum(lane_go)
            set_bits = tree_reduce(lambda a, b: a | b, [Mux(g, (Const(1, D) << d)[:D], 0)
                                                         for g, d in zip(lane_go, lane_drv, strict=True)])
            # finishes (per driver)
            clr_drv = []
            slot_free_bits = []
            for d in range(D):
                dn = self.wr_done[p][d]
                m.d.comb += dn.ready.eq(1)
                x = dn.payload.xbar + p * XP
                s = dn.payload.slot
                fin_ok = Signal(name=f"wr_fin{p}_{d}")  # a finish; a given-up tile (fault) frees its driver only
                m.d.comb += fin_ok.eq(dn.valid & ~dn.payload.fault)
                with m.If(fin_ok):
                    m.d.sync += [xbusy.bit_select(x, 1).eq(0), done_gen[x].eq(done_gen[x] + 1)]
                    set_last("wend", slot_layer[p][s])
                dbg("b_fin", fin_ok, slot_widx[p][s], cycle + 1)
                clr_drv.append(Mux(dn.valid, Const(1 << d, D), 0))
                slot_free_bits.append(Mux(fin_ok, (Const(1, S) << s)[:S], 0))
                given_up.append((dn.valid & dn.payload.fault, x, dn.payload.row))
            clr = tree_reduce(lambda a, b: a | b, clr_drv)
            freed = tree_reduce(lambda a, b: a | b, slot_free_bits)
            m.d.sync += drv_busy.eq((drv_busy | set_bits) & ~clr)

            # slots: reserve at the DRAM start, present at the DRAM finish, free at the programming finish
            take = dram_go & (head_pe == p)
            reserve = Mux(take, (Const(1, S) << new_slot)[:S], 0)
            present = Mux(dd.valid & (dd.payload.pe == p), (Const(1, S) << dd.payload.slot)[:S], 0)
            m.d.sync += [slot_busy[p].eq((slot_busy[p] | reserve) & ~freed),
                         slot_ready[p].eq((slot_ready[p] | present) & ~freed)]
            tail = q_head[p] + q_n[p]
            tail = Mux(tail >= S, tail - S, tail)
            with m.If(take):
                m.d.sync += [slot_widx[p][new_slot].eq(wptr), slot_layer[p][new_slot].eq(w_head.layer),
                             q_slot[p][tail[:max(1, (S - 1).bit_length())] if S > 1 else 0].eq(new_slot)]
            nh = q_head[p] + n_started
            m.d.sync += [q_head[p].eq(Mux(nh >= S, nh - S, nh)), q_n[p].eq(q_n[p] + take - n_started)]
            m.d.comb += write_idle[p].eq(slot_busy[p] == 0)

        # ---------------------------------------------------------------- execute stream
        eptr = Signal(24)
        e_run = Signal()
        info = self.info
        em = sub("exec_info")
        instr = isa.INSTR(read(base["execs"] + eptr, "e_row", em))
        op = instr.head.op
        layer = instr.head.layer
        desc_rows = [read(base["layers"] + (layer << 2) + k, f"desc_row{k}", em) for k in range(4)]
        em.d.comb += [info.instr.eq(instr), info.desc.as_value().eq(Cat(*desc_rows)), info.batch.eq(hdr.batch)]
        desc = info.desc
        for name in ("in0", "in1", "out"):
            tid = getattr(desc, name)
            em.d.comb += getattr(info, name).eq(tensor(tid, f"t_{name}", em))
        cmp = instr.compute

        def entries(sec, ptr, size, n, layout, name):
            off = Signal(40, name=f"{name}_off")
            em.d.comb += off.eq(ptr * size)
            nrows = -(-(n * size) // isa.WORD_BYTES) + 1
            rows = [read(base[sec] + (off >> 5) + k, f"{name}_row{k}", em) for k in range(nrows)]
            # entries start at multiples of gcd(size, row) bytes in a row: select among those static
            # slices (a variable shift of the whole table would cost Amaranth's comb-loop check
            # (table bits)² at 256 crossbars)
            raw = Cat(*rows)
            step = math.gcd(size, isa.WORD_BYTES)
            bits = n * layout.size
            cat = Signal(bits, name=f"{name}_cat")
            with em.Switch(off[:5]):
                for b in range(0, isa.WORD_BYTES, step):
                    with em.Case(b):
                        em.d.comb += cat.eq(raw[8 * b:8 * b + bits])
            return cat

        em.d.comb += Cat(self.tiles).eq(entries("tiles", cmp.tiles_ptr, isa.ENTRY_BYTES["tiles"], X, isa.TILE,
                                                "tiles"))
        for x in range(X):
            em.d.comb += self.psum_base[x].eq(tensor(self.tiles[x].psum_tensor, f"psum{x}", em).base)

        evt_idx = Mux(op == isa.Opcode.COMPUTE, cmp.bank_evt, instr.vector.bank_evt)
        evt = isa.BANK_EVENT(read(base["bank_events"] + evt_idx - 1, "evt_row", em))
        on_mask = Signal(cfg.gbuf_banks)
        off_mask = Signal(cfg.gbuf_banks)
        em.d.comb += [on_mask.eq(Mux(evt_idx != 0, evt.on_mask[:cfg.gbuf_banks], 0)),
                      off_mask.eq(Mux(evt_idx != 0, evt.off_mask[:cfg.gbuf_banks], 0))]

        raw_ok = Signal()
        sub("raw").d.comb += raw_ok.eq(tree_reduce(lambda a, b: a & b, [
            ~self.tiles[x].valid | (done_gen[x] >= self.tiles[x].need_gen) for x in range(X)]))
        valid_ptr = eptr < hdr.n_execs
        is_c, is_v, is_h = op == isa.Opcode.COMPUTE, op == isa.Opcode.VECTOR, op == isa.Opcode.HOST
        is_end = op == isa.Opcode.END
        m.d.comb += self.error.eq(run & valid_ptr & ~(is_c | is_v | is_h | is_end))
        e_go = Signal()
        m.d.comb += e_go.eq(go_ok & ~e_run & valid_ptr & ((is_c & raw_ok) | (is_v & self.vec_op.ready) | is_h))
        m.d.comb += self.exec_start.eq(e_go)

        # HOST: host_req from E_start until host_ack, then host_handoff_cycles more
        h = cfg.host_handoff_cycles
        acked = Signal()
        hcnt = Signal(range(h + 2))
        m.d.comb += [self.host_req.eq((e_go | e_run) & is_h & ~acked), self.host_layer.eq(layer)]
        ack_now = self.host_req & self.host_ack
        if h == 0:
            host_done = ack_now
        else:
            host_done = acked & (hcnt == 1)
            with m.If(ack_now):
                m.d.sync += [acked.eq(1), hcnt.eq(h)]
            with m.Elif(acked):
                m.d.sync += hcnt.eq(hcnt - 1)
        e_fin = Signal()
        m.d.comb += e_fin.eq((e_go | e_run) & ((is_c & self.compute_done) | (is_v & self.vector_done) |
                                               (is_h & host_done)))

        # VECTOR: the op handshake is the start
        vo = self.vec_op.payload
        m.d.comb += self.vec_op.valid.eq(go_ok & ~e_run & valid_ptr & is_v)
        sub("vec_op").d.comb += [
            vo.vop.as_value().eq(desc.vop), vo.in0.eq(info.in0.base), vo.in1.eq(info.in1.base),
            vo.out.eq(info.out.base),
            vo.batch.eq(hdr.batch), vo.chans.eq(desc.cin), vo.h.eq(desc.h), vo.w.eq(desc.w),
            vo.ho.eq(desc.ho), vo.wo.eq(desc.wo), vo.kh.eq(desc.kh), vo.kw.eq(desc.kw), vo.sh.eq(desc.sh),
            vo.sw.eq(desc.sw), vo.pt.eq(desc.pt), vo.pl.eq(desc.pl), vo.chan_last.eq(desc.chan_last),
            vo.count_include_pad.eq(desc.count_include_pad), vo.zx.eq(desc.zx), vo.zx2.eq(desc.zx2),
            vo.zo.eq(desc.zo), vo.act_min.eq(desc.act_min), vo.act_max.eq(desc.act_max),
            vo.m1.eq(desc.m1), vo.m2.eq(desc.m2), vo.mo.eq(desc.mo), vo.e1.eq(desc.e1), vo.e2.eq(desc.e2),
            vo.eo.eq(desc.eo), vo.mi.eq(desc.mi), vo.ma.eq(desc.ma), vo.ei.eq(desc.ei), vo.ea.eq(desc.ea),
            vo.qparam_ptr.eq(desc.qparam_ptr),
        ]

        with m.If(e_go):
            set_first("start", layer)
            with m.If(~e_fin):
                m.d.sync += e_run.eq(1)
        dbg("e_start", e_go, eptr, cycle)
        with m.If(e_fin):
            m.d.sync += [e_run.eq(0), eptr.eq(eptr + 1), exec_retired.eq(exec_retired + 1), acked.eq(0)]
            set_last("end", layer)
        dbg("e_fin", e_fin, eptr, cycle + 1)

        # ---------------------------------------------------------------- bank mask
        active = Signal(cfg.gbuf_banks)
        on_now = Mux(e_go, on_mask, 0)
        with m.If(self.start & ~run & ~fin):
            m.d.sync += active.eq(banks_init)
        with m.Elif(act):
            m.d.sync += active.eq((active | on_now) & ~Mux(e_fin, off_mask, 0))
        all_on = Const((1 << cfg.gbuf_banks) - 1, cfg.gbuf_banks)
        m.d.comb += self.bank_on.eq(Mux(act, Mux(adaptive, active | on_now, all_on), 0))

        # ---------------------------------------------------------------- errors (§8.7)
        W = cfg.watchdog_cycles
        h_wait = Signal()  # a HOST waits for its acknowledge
        h_waited = Signal(range(W + 1))
        h_timeout = Signal()
        m.d.comb += [h_wait.eq(self.host_req & ~self.host_ack), h_timeout.eq(h_wait & (h_waited == W - 1))]
        m.d.sync += h_waited.eq(Mux(h_wait, Mux(h_waited == W, W, h_waited + 1), 0))
        with m.If(h_timeout):  # abandoned: host_req drops, it never retires
            m.d.sync += [e_run.eq(0), acked.eq(0)]
        dram_dead = Signal()  # the transfer in flight is held for ever: not waited for
        with m.If(self.dram_timeout):
            m.d.sync += dram_dead.eq(1)

        def lower(a, b):  # the give-up report of the lower crossbar
            out = [Signal(), Signal(12), Signal(range(cfg.xbar_rows))]
            take_a = a[0] & (~b[0] | (a[1] <= b[1]))
            m.d.comb += [o.eq(Mux(take_a, u, v)) for o, u, v in zip(out, a, b, strict=True)]
            return tuple(out)

        level = list(given_up)
        while len(level) > 1:
            level = [lower(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)] + level[len(level) & ~1:]
        v_any, v_x, v_row = level[0]
        f_code, f_xbar = Signal(2), Signal(12)
        f_row, f_cycle = Signal(range(cfg.xbar_rows)), Signal(CYCLE_BITS)
        m.d.comb += [self.fault.eq(flt), self.fault_code.eq(f_code), self.fault_xbar.eq(f_xbar),
                     self.fault_row.eq(f_row), self.fault_cycle.eq(f_cycle)]
        with m.If(run & ~flt & (v_any | h_timeout | self.dram_timeout)):
            m.d.sync += [flt.eq(1), f_cycle.eq(cycle + 1)]
            with m.If(v_any):
                m.d.sync += [f_code.eq(1), f_xbar.eq(v_x), f_row.eq(v_row)]
            with m.Elif(h_timeout):
                m.d.sync += [f_code.eq(2), f_xbar.eq(0), f_row.eq(0)]
            with m.Else():
                m.d.sync += [f_code.eq(3), f_xbar.eq(dram_xbar), f_row.eq(0)]

        # ---------------------------------------------------------------- end of run
        # (after an error: once what had started has finished or been given up)
        quiet = Signal()
        m.d.comb += quiet.eq((Cat(*drivers_busy) == 0) & (~self.dram_busy | dram_dead) & ~e_run)
        m.d.comb += done_now.eq(run & (((wptr >= hdr.n_writes) & (write_idle == (1 << P) - 1) & ~e_run &
                                        (~valid_ptr | is_end)) | (flt & quiet)))

        # ---------------------------------------------------------------- qparam reads
        qm = sub("qparams")

        def qrec(idx, name):
            row = read(base["qparams"] + (idx >> 1), f"{name}_row", qm)
            return Mux(idx[0], row[128:], row[:128])

        for k, port in enumerate(self.qp_rd):
            qm.d.comb += port.data.as_value().eq(qrec(port.index, f"qp{k}"))
        for k, port in enumerate(self.vqp):
            rp = mem.read_port(domain="sync")
            half = Signal(name=f"vqp_half{k}")
            m.d.comb += [rp.addr.eq((base["qparams"] + (port.addr >> 1))[:abits]), rp.en.eq(port.en)]
            with m.If(port.en):
                m.d.sync += half.eq(port.addr[0])
            q = isa.QPARAM(Mux(half, rp.data[128:], rp.data[:128]))
            m.d.comb += [port.m.eq(q.m_neg), port.shift.eq(q.shift_neg)]
        return m


# ====================================================================================================
# COMPUTE execution (the execute sequencer's COMPUTE part, with the chip-level ``datapath.post``)
# ====================================================================================================
class ComputeEngine(Unit):
    """Runs one COMPUTE round (docs/architecture.md §5, §6.3, §7.4, §10.3) on the PEs' APUs.

    Started by ``start`` in ``E_start`` with the round described by ``info``, ``tiles`` and
    ``psum_base`` (the controller's ports of those names, stable until ``done``) and the PEs' tile
    metadata ``meta``. The crossbar of tile entry k runs copy ``replica`` of its tile:
    positions ``[q·⌈P/r⌉, min(P, (q+1)·⌈P/r⌉))``; all crossbars in lockstep over items (batch item,
    position, bit-plane 0 … 7).

    - **Items**: from ``E_start`` on, one item for every APU, back to back (the APUs accept every
      ``max(T_mvm, cols_per_adc)`` cycles). Item 0 is offered in ``E_start`` itself: the input vector
      of a position is read **combinationally** from the Gbuffer (``grd8``, one byte port per crossbar
      row: the §13.2 no-port-limit simplification; padding feeds ``zx``), so an input written by the
      previous instruction in its last cycle is used without a bubble.
    - **Accumulate + post** (one ``block_post.BlockPost`` per crossbar, used by the block's leader, the
      lowest crossbar of each (gchunk, cchunk, copy)): in the cycle the PEs' decoded partial sums
      arrive (1 cycle after ``tsum``), the leader adds its block's tiles (no NoC cost, §13.1 #9) and,
      for pmode middle/last, the restored int32 partial sums (combinational Gbuffer reads); ``Post``
      adds the bias and requantizes (or passes the raw sum for a spill). In the next cycle the int8
      outputs (CHW / sequence layout) or int32 spills are written (``gwr``, one port per lane).
      ``post_latency`` = 3 cycles from the last ``tsum`` to the end: tsum → decode → post → write;
      larger values delay ``done``.
    - ``done`` is high in ``E_fin − 1``.

    The round's structure comes from the dense tile table (format v2, §9.4): entry x names crossbar x's
    tile, copy, block leader (``lead``), pmode and psum tensor, so no logic searches across crossbars.
    A leader's block sum is a masked sum, lane by lane, over every crossbar's partial sums (member:
    in the round with ``lead`` = the leader).

    Gbuffer access counting (§7.4): input streams (one per ``sleader``) and restores add their word
    counts to ``extra_reads``; output and spill write ports carry ``count`` when their word differs
    from the stream's previous one: the previous lane, or for an output block's lane 0 the word of
    ``prev_ch`` (the previous output block's last channel; none for ``out_first``).
    Counters: ``post_ops`` (Post), ``psum_spill_words``. ``tag_error`` latches if a crossbar's
    metadata does not carry its tile entry's tag at ``E_start`` (§9.6: the tag is a check).
    """

    def __init__(self, *, cfg: Config):
        self._take_cfg(cfg)
        if cfg.post_latency < 3:
            raise ValueError(f"ComputeEngine: config {cfg.name!r}: post_latency ({cfg.post_latency}) must be >= 3 "
                             "(decode, post and write-back stages)")
        if cfg.gbuf_word_bytes % 4:
            raise ValueError(f"ComputeEngine: config {cfg.name!r}: gbuf_word_bytes ({cfg.gbuf_word_bytes}) must be a "
                             "multiple of 4 (int32 partial sums never straddle words)")
        from .apu import item_layout
        from .datapath import psum_layout
        from .gbuffer import WritePortSignature, comb_read_signature
        from .pe import meta_layout

        X, R, cw = cfg.n_xbars, cfg.xbar_rows, cfg.weight_cols
        A = cfg.n_pe * cfg.apus_per_pe
        super().__init__({
            "start": In(1),
            "info": In(exec_info_layout(cfg)),
            "tiles": In(isa.TILE).array(X),
            "psum_base": In(32).array(X),
            "meta": In(data.ArrayLayout(meta_layout(cfg), X)),
            "done": Out(1),
            "busy": Out(1),
            "item": Out(stream.Signature(item_layout(cfg))).array(A),
            "psum": In(stream.Signature(psum_layout(cfg))).array(X),
            "grd8": Out(comb_read_signature(cfg, 1)).array(X * R),
            "grd32": Out(comb_read_signature(cfg, 4)).array(X * cw),
            "gwr": Out(WritePortSignature(cfg)).array(X * cw),
            "qp": Out(qparam_read_signature()).array(X * cw),
            "extra_reads": Out(32),
            "post_ops": Out(64),
            "psum_spill_words": Out(64),
            "tag_error": Out(1),
        })

    def elaborate(self, platform):  # noqa: C901 (one pipeline, kept in one place)

        from .block_post import BlockPost, MemberSum, member_chunks

        m = Module()
        cfg = self._cfg
        X, R, cw, S = cfg.n_xbars, cfg.xbar_rows, cfg.weight_cols, cfg.slices
        XA = cfg.xbars_per_apu
        A = cfg.n_pe * cfg.apus_per_pe
        info, meta = self.info, self.meta
        is_lin = Signal()

        # The simulator evaluates a fragment's combinational logic as a whole whenever one of its
        # inputs changes, so the logic is split by how often its inputs change: per round (static),
        # per position (fetch, accumulate, write-back) and per item (bit-planes).
        def sub(name):
            s_ = Module()
            m.submodules[name] = s_
            return s_

        # ---------------------------------------------------------------- static round information
        st = sub("round")
        # Plain copies of what the rest reads: a module reading a field of the wide ``info`` port would
        # carry a named wire for every field of it (O(crossbars) per module, O(crossbars²) in all).
        desc = Signal(isa.LAYER, name="desc")
        tiles = [Signal(isa.TILE, name=f"tile{x}") for x in range(X)]
        pbase = [Signal(32, name=f"psum_base{x}") for x in range(X)]
        B, layer_id, replicas = Signal(16), Signal(12), Signal(8)
        in_base, in_item, out_base, out_item = (Signal(32, name=n) for n in ("in_base", "in_item", "out_base",
                                                                             "out_item"))
        st.d.comb += [desc.eq(info.desc), B.eq(info.batch), layer_id.eq(info.instr.head.layer),
                      replicas.eq(info.instr.compute.replicas), in_base.eq(info.in0.base),
                      in_item.eq(info.in0.item_bytes), out_base.eq(info.out.base), out_item.eq(info.out.item_bytes)]
        st.d.comb += [tiles[x].eq(self.tiles[x]) for x in range(X)]
        st.d.comb += [pbase[x].eq(self.psum_base[x]) for x in range(X)]
        P = desc.p
        per = Signal(32)
        st.d.comb += [per.eq((P + Mux(replicas == 0, 1, replicas) - 1) // Mux(replicas == 0, 1, replicas)),
                      is_lin.eq(desc.kind == isa.Kind.LINEAR)]
        # per crossbar: the dense tile table (format v2) says everything; no search across crossbars
        in_round = [tiles[x].valid for x in range(X)]
        xg = [tiles[x].t_group for x in range(X)]
        xr = [tiles[x].t_row for x in range(X)]
        xc = [tiles[x].t_col for x in range(X)]
        xq = [tiles[x].replica for x in range(X)]
        sleader = [Signal(name=f"sleader{x}") for x in range(X)]  # counts its (gchunk, rchunk, copy) stream
        for x in range(X):
            st.d.comb += sleader[x].eq(in_round[x] & tiles[x].sleader)
        # what every leader's MemberSum of chunk c reads (one signal each, shared by the copies; the
        # last chunk is padded with crossbars that are never in the round)
        n_chunks, chunk = member_chunks(cfg)
        lead_shape = isa.TILE["lead"].shape
        ch_in_round = [Signal(chunk, name=f"chunk_in_round{c}") for c in range(n_chunks)]
        ch_leads = [Signal(data.ArrayLayout(lead_shape, chunk), name=f"chunk_leads{c}") for c in range(n_chunks)]
        for c in range(n_chunks):
            xs = range(c * chunk, min(X, (c + 1) * chunk))
            st.d.comb += [ch_in_round[c].eq(Cat(in_round[x] for x in xs)),
                          ch_leads[c].eq(Cat(tiles[x].lead for x in xs))]
        rows = [Signal(range(R + 1), name=f"rows{x}") for x in range(X)]
        ncols = [Signal(range(cw + 1), name=f"ncols{x}") for x in range(X)]
        st.d.comb += [rows[x].eq(meta[x].rows) for x in range(X)]
        st.d.comb += [ncols[x].eq(meta[x].wcols) for x in range(X)]
        cphys = [Signal(range(cfg.xbar_cols + 1), name=f"cphys{x}") for x in range(X)]
        ch0 = [Signal(16, name=f"ch0_{x}") for x in range(X)]
        for x in range(X):
            st.d.comb += [
                ch0[x].eq(xg[x] * (desc.pack_g * desc.ng) + xc[x] * Mux(meta[x].family, cw // 2, cw)),
                cphys[x].eq(Mux(meta[x].family, meta[x].wcols * (2 * S), meta[x].wcols * S)),
            ]
        # tag check (§9.6)
        bad = []
        for x in range(X):
            te, mt = tiles[x], meta[x]
            bad.append(in_round[x] & ~(mt.valid & (mt.layer == layer_id) & (mt.t_group == te.t_group) &
                                       (mt.t_row == te.t_row) & (mt.t_col == te.t_col)))
        tag_bad = Signal()
        st.d.comb += tag_bad.eq(tree_reduce(lambda a, b: a | b, bad))
        with m.If(self.start & tag_bad):
            m.d.sync += self.tag_error.eq(1)

        # ---------------------------------------------------------------- item stage (sequencing)
        run_r = Signal()
        iss = Signal()
        plane = Signal(3)
        pidx = Signal(32)
        bb = Signal(16)
        active = Signal()
        issuing = Signal()
        accept = Signal()
        m.d.comb += [active.eq(self.start | run_r), issuing.eq(self.start | iss), self.busy.eq(active),
                     accept.eq(issuing & tree_reduce(lambda a, b: a & b, [it.ready for it in self.item]))]
        with m.If(self.start):
            m.d.sync += [run_r.eq(1), iss.eq(1)]
        with m.If(accept):
            m.d.sync += plane.eq(plane + 1)
            with m.If(plane == 7):
                with m.If(pidx + 1 >= per):
                    m.d.sync += pidx.eq(0)
                    with m.If(bb + 1 >= B):
                        m.d.sync += [bb.eq(0), iss.eq(0)]
                    with m.Else():
                        m.d.sync += bb.eq(bb + 1)
                with m.Else():
                    m.d.sync += pidx.eq(pidx + 1)

        # per crossbar, per position: running, input vector (combinational Gbuffer reads), read count
        ibase = Signal(32)
        m.d.comb += ibase.eq(in_base + bb * in_item)
        run_x, vals, reads = [], [], []
        for x in range(X):
            fetch = InputFetch(cfg=cfg)
            place(m, f"fetch{x}", fetch, "aras_input_fetch")
            f = sub(f"fetch_in{x}")
            f.d.comb += [fetch.desc.eq(desc), fetch.is_lin.eq(is_lin), fetch.ibase.eq(ibase),
                         fetch.pos.eq(xq[x] * per + pidx), fetch.in_round.eq(in_round[x]), fetch.g.eq(xg[x]),
                         fetch.r.eq(xr[x]), fetch.rows.eq(rows[x]), fetch.count.eq(sleader[x])]
            for k in range(R):
                wiring.connect(f, fetch.grd[k], wiring.flipped(self.grd8[x * R + k]))
            run_x.append(fetch.run)
            vals.append(fetch.x)
            reads.append(fetch.reads)
        # per item: the bit-plane of every crossbar's input vector
        for a in range(A):
            it = self.item[a]
            b_ = sub(f"item{a}")
            b_.d.comb += [it.valid.eq(issuing), it.payload.plane.eq(plane), it.payload.first_plane.eq(plane == 0),
                          it.payload.last_plane.eq(plane == 7)]
            for kx in range(XA):
                x = a * XA + kx
                b_.d.comb += [it.payload.bits[kx].eq(Cat(*[vals[x][k].bit_select(plane, 1) for k in range(R)])),
                              it.payload.r_used[kx].eq(rows[x]), it.payload.c_phys[kx].eq(cphys[x]),
                              it.payload.xmask[kx].eq(run_x[x])]
        input_reads = Signal(32)
        m.d.comb += input_reads.eq(Mux(accept & (plane == 0), tree_sum(reads), 0))

        # ---------------------------------------------------------------- post stage
        pv = Signal()
        m.d.comb += pv.eq(active & tree_reduce(lambda a, b: a | b, [p.valid for p in self.psum]))
        for p in self.psum:
            m.d.comb += p.ready.eq(1)
        pidx_p = Signal(32)
        bb_p = Signal(16)
        with m.If(pv):
            with m.If(pidx_p + 1 >= per):
                m.d.sync += pidx_p.eq(0)
                with m.If(bb_p + 1 >= B):
                    m.d.sync += bb_p.eq(0)
                with m.Else():
                    m.d.sync += bb_p.eq(bb_p + 1)
            with m.Else():
                m.d.sync += pidx_p.eq(pidx_p + 1)
        # out stage position (registered)
        pidx_o = Signal(32)
        bb_o = Signal(16)
        last_o = Signal()
        m.d.sync += last_o.eq(pv & (pidx_p + 1 >= per) & (bb_p + 1 >= B))
        with m.If(pv):
            m.d.sync += [pidx_o.eq(pidx_p), bb_o.eq(bb_p)]

        # per crossbar: block accumulation, restore, Post and write-back (used when it leads its block)
        obase = Signal(32)
        m.d.comb += obase.eq(out_base + bb_o * out_item)
        restore_reads, spill_words, post_ops = [], [], []
        for x in range(X):
            bp = BlockPost(cfg=cfg)
            place(m, f"block_post{x}", bp, "aras_block_post")
            pin = sub(f"postin{x}")
            for c in range(n_chunks):
                ms = MemberSum(cfg=cfg, n=chunk)
                zero = Const(0, len(ms.psum[0].as_value()))
                place(m, f"member_sum{x}_{c}", ms, "aras_member_sum",
                      drive={"in_round": ch_in_round[c], "leads": ch_leads[c], "index": Const(x, lead_shape),
                             **{f"psum__{i}": self.psum[c * chunk + i].payload if c * chunk + i < X else zero
                                for i in range(chunk)}})
                pin.d.comb += bp.parts[c].eq(ms.sum)
            pin.d.comb += [bp.pv.eq(pv), bp.tile.eq(tiles[x]), bp.desc.eq(desc),
                           bp.is_lin.eq(is_lin), bp.per.eq(per), bp.pidx_p.eq(pidx_p), bp.bb_p.eq(bb_p),
                           bp.pidx_o.eq(pidx_o), bp.bb_o.eq(bb_o), bp.pbase.eq(pbase[x]), bp.obase.eq(obase),
                           bp.ncols.eq(ncols[x]), bp.ch0.eq(ch0[x])]
            for j in range(cw):
                wiring.connect(pin, bp.grd[j], wiring.flipped(self.grd32[x * cw + j]))
                wiring.connect(pin, bp.qp[j], wiring.flipped(self.qp[x * cw + j]))
                wiring.connect(pin, bp.gwr[j], wiring.flipped(self.gwr[x * cw + j]))
            restore_reads.append(bp.restore_reads)
            spill_words.append(bp.spill_words)
            post_ops.append(bp.post_ops)

        m.d.comb += self.extra_reads.eq(input_reads + tree_sum(restore_reads))
        m.d.sync += self.psum_spill_words.eq(self.psum_spill_words + tree_sum(spill_words))
        m.d.comb += self.post_ops.eq(tree_sum(post_ops))

        # ---------------------------------------------------------------- done
        m.d.comb += self.done.eq(delayed(m, last_o, cfg.post_latency - 3))
        with m.If(self.done):
            m.d.sync += run_r.eq(0)
        return m
