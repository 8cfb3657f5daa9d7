"""``pe``: processing-element container (docs/architecture.md §3.7): ``apus_per_pe`` APUs, one
``write_buffer``, one ``write_engine`` (with its encoders), the datapath front end per crossbar
(``InputSum`` + ``Decode``) and the per-crossbar tile metadata.

Write path. A WRITE starts on an issue lane ``tile[k]`` (:func:`tile_layout`: the write engine's tile
fields plus the tile tag) in cycle ``B_start``; the engine's ``done[d]`` in ``B_fin − 1`` also updates the metadata of
the crossbar (tag, family, flags, R_used, wcols, packing): at the edge into ``B_fin``. The metadata
registers, like the cells, are not reset (§8.6: steady state keeps them). The engine's per-crossbar
row ports connect to the APUs' per-crossbar pass-throughs, so any number of drivers may write
crossbars of one APU at once (§13.2).

Compute path (per item, all APUs in lockstep, driven by the controller's compute engine). ``item[a]``
goes to APU a unchanged; in the cycle an item is accepted, each running offset-family crossbar's
``InputSum`` takes the same bit-plane (``input_sum_ops``), and its per-block Σx is held until the
APU's ``tsum`` of that position arrives (≥ ``T_mvm + cols_per_adc`` cycles later; the next Σx comes
8·m cycles later). ``tsum`` (always taken) goes through ``Decode`` with the crossbar's metadata:
``psum[x]`` is valid **one cycle after** ``tsum`` (every crossbar of the PE, running or not; the
consumer masks). Latency tsum → psum: 1 cycle.

``peek`` (testbench): combinational row read of any crossbar through its APU while the write engine
is idle (crossbar contents are compared with the model at the end of a run, §8.5).
"""

from __future__ import annotations

from amaranth.hdl import Array, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from aras.config import Config

from .apu import Apu, item_layout
from .crossbar import levels_layout
from .datapath import Decode, InputSum, psum_layout
from .encoder import max_groups
from .shared import place
from .tree import tree_sum
from .unit import Unit
from .write_buffer import WriteBuffer, fill_layout
from .write_engine import COUNTERS as WE_COUNTERS
from .write_engine import WriteEngine
from .write_engine import done_layout as wr_done_layout
from .write_engine import tile_layout as wr_tile_layout

__all__ = ["Pe", "meta_layout", "tile_layout", "PE_COUNTERS"]

COUNTER_BITS = 64
PE_COUNTERS = WE_COUNTERS + ("write_buffer_bytes", "xbar_reads", "dac_activations", "adc_conversions",
                             "input_sum_ops")


def tile_layout(cfg: Config) -> data.StructLayout:
    """A WRITE's programming start: the write engine's ``tile`` fields plus the tile tag (§9.3)."""
    fields = {name: f.shape for name, f in wr_tile_layout(cfg)}
    fields.update({"layer": unsigned(12), "t_group": unsigned(16), "t_row": unsigned(12), "t_col": unsigned(12)})
    return data.StructLayout(fields)


def meta_layout(cfg: Config) -> data.StructLayout:
    """Per-crossbar tile metadata (§3.7), written at each WRITE's finish."""
    cw, R = cfg.weight_cols, cfg.xbar_rows
    return data.StructLayout({
        "valid": unsigned(1),
        "layer": unsigned(12), "t_group": unsigned(16), "t_row": unsigned(12), "t_col": unsigned(12),
        "family": unsigned(1),
        "flags": unsigned(cw),
        "rows": range(R + 1),
        "wcols": range(cw + 1),
        "pack_g": range(max_groups(cfg) + 1),
        "pack_k": range(R + 1),
        "pack_n": range(cw + 1),
    })


class Pe(Unit):
    """One PE (see the module docstring).

    Parameters
    ----------
    cfg : aras.config.Config
    index : int
        PE index (only names the instance).

    Attributes (ports)
    ------------------
    tile : In(stream of :func:`tile_layout`) [write_drivers_per_pe]  — issue lanes from the controller
        (lane k goes to the (k+1)-th lowest idle driver); ``xbar`` local to the PE
    done : Out(stream of ``write_engine.done_layout``) [write_drivers_per_pe]
    fill : In(stream of ``write_buffer.fill_layout``)  — from the DRAM channel
    item : In(stream of ``apu.item_layout``) [apus_per_pe]
    psum : Out(stream of ``datapath.psum_layout``) [apus_per_pe·xbars_per_apu]  (ready ignored)
    meta : Out(ArrayLayout(meta_layout, apus_per_pe·xbars_per_apu))
    peek_en, peek_xbar, peek_row : In; peek_levels : Out
    counters : ``write_engine.COUNTERS``, ``cells_changed`` (L², old-major), ``write_buffer_bytes``,
        ``xbar_reads``, ``dac_activations``, ``adc_conversions``, ``input_sum_ops`` (64 bit)
    """

    def __init__(self, *, cfg: Config, index: int = 0, blackbox_macros: bool = False, stuck=None):
        self._take_cfg(cfg)
        self._stuck = stuck or {}  # crossbar of this PE -> {(row, column): level} (§8.7; simulation only)
        self._index = index
        self._blackbox = blackbox_macros
        XP = cfg.apus_per_pe * cfg.xbars_per_apu
        ports = {
            "tile": In(stream.Signature(tile_layout(cfg))).array(cfg.write_drivers_per_pe),
            "done": Out(stream.Signature(wr_done_layout(cfg))).array(cfg.write_drivers_per_pe),
            "fill": In(stream.Signature(fill_layout(cfg))),
            "item": In(stream.Signature(item_layout(cfg))).array(cfg.apus_per_pe),
            "psum": Out(stream.Signature(psum_layout(cfg))).array(XP),
            "meta": Out(data.ArrayLayout(meta_layout(cfg), XP)),
            "peek_en": In(1),
            "peek_xbar": In(range(XP)),
            "peek_row": In(range(cfg.xbar_rows)),
            "peek_levels": Out(levels_layout(cfg)),
        }
        ports.update({name: Out(COUNTER_BITS) for name in PE_COUNTERS})
        ports["cells_changed"] = Out(data.ArrayLayout(unsigned(COUNTER_BITS), cfg.levels ** 2))
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        A, XA, D = cfg.apus_per_pe, cfg.xbars_per_apu, cfg.write_drivers_per_pe
        XP = A * XA
        # (comb wiring is grouped into sub-fragments by how often it changes: the simulator evaluates
        # a fragment's combinational statements as a whole whenever one of its inputs changes)
        def sub(name):
            s_ = Module()
            m.submodules[name] = s_
            return s_

        m.submodules.wbuf = wbuf = WriteBuffer(cfg=cfg)
        m.submodules.weng = weng = WriteEngine(cfg=cfg)
        apus = []
        for a in range(A):
            xa = cfg.xbars_per_apu
            apu = Apu(cfg=cfg, blackbox=self._blackbox,
                      stuck={k: self._stuck[a * xa + k] for k in range(xa) if a * xa + k in self._stuck})
            place(m, f"apu{a}", apu, "aras_apu_bb" if self._blackbox else "aras_apu")
            apus.append(apu)

        # ---------------------------------------------------------------- write path
        wm = sub("w_write")
        wiring.connect(wm, wiring.flipped(self.fill), wbuf.fill)
        for d in range(D):
            wiring.connect(wm, weng.wb[d], wbuf.rd[d])
            wiring.connect(wm, weng.done[d], wiring.flipped(self.done[d]))
        for k in range(D):
            tp = weng.tile[k].payload
            wm.d.comb += [weng.tile[k].valid.eq(self.tile[k].valid), self.tile[k].ready.eq(weng.tile[k].ready)]
            for name, _ in wr_tile_layout(cfg):
                wm.d.comb += getattr(tp, name).eq(getattr(self.tile[k].payload, name))

        # per driver: which tile it holds (the engine's rule: lane k goes to the (k+1)-th lowest idle driver)
        held = [Signal(tile_layout(cfg), name=f"held{d}") for d in range(D)]
        lane_valid = Array(t.valid for t in self.tile)
        lane_payload = Array(t.payload.as_value() for t in self.tile)
        cur = []
        dm = sub("drivers")
        for d in range(D):
            rank = Signal(range(D), name=f"drv_rank{d}")
            dm.d.comb += rank.eq(tree_sum([~weng.busy[e] for e in range(d)]))
            st = Signal(name=f"drv_start{d}")
            dm.d.comb += st.eq(~weng.busy[d] & lane_valid[rank])
            with m.If(st):
                m.d.sync += held[d].eq(lane_payload[rank])
            c = Signal(tile_layout(cfg), name=f"drv_cur{d}")
            dm.d.comb += c.eq(Mux(st, lane_payload[rank], held[d]))
            cur.append(c)

        # tile metadata: not reset (survives like the cells)
        meta = [Signal(meta_layout(cfg), name=f"meta{x}", reset_less=True) for x in range(XP)]
        mm = sub("meta")
        for x in range(XP):
            mm.d.comb += self.meta[x].eq(meta[x])
        for d in range(D):
            dn = self.done[d]
            c = cur[d]
            with m.If(dn.valid & dn.ready):
                for x in range(XP):
                    with m.If(dn.payload.xbar == x):
                        mx = meta[x]
                        m.d.sync += [mx.valid.eq(1), mx.layer.eq(c.layer), mx.t_group.eq(c.t_group),
                                     mx.t_row.eq(c.t_row), mx.t_col.eq(c.t_col), mx.family.eq(c.family),
                                     mx.flags.eq(c.flags), mx.rows.eq(c.rows), mx.wcols.eq(c.wcols),
                                     mx.pack_g.eq(c.pack_g), mx.pack_k.eq(c.pack_k), mx.pack_n.eq(c.pack_n)]

        # crossbar access: the engine's per-crossbar ports go straight to the APUs' per-crossbar ports;
        # the testbench's peek borrows the read row of the crossbar it names
        am = sub("access")
        for a, apu in enumerate(apus):
            for k in range(XA):
                x = a * XA + k
                peek = self.peek_en & (self.peek_xbar == x)
                wiring.connect(am, weng.xwr[x], apu.wr[k])
                am.d.comb += [apu.rd[k].row.eq(Mux(peek, self.peek_row, weng.xrd[x].row)),
                              weng.xrd[x].levels.eq(apu.rd[k].levels)]
        pm = sub("peek")
        pm.d.comb += self.peek_levels.eq(Array(apu.rd[k].levels for apu in apus for k in range(XA))[self.peek_xbar])

        # ---------------------------------------------------------------- compute path
        isums = []
        for a, apu in enumerate(apus):
            im = sub(f"items{a}")
            wiring.connect(im, wiring.flipped(self.item[a]), apu.item)
            accept = apu.item.valid & apu.item.ready
            ipay = apu.item.payload
            im.d.comb += apu.tsum.ready.eq(1)
            for k in range(XA):
                x = a * XA + k
                mx = meta[x]
                isum = InputSum(cfg=cfg)
                dec = Decode(cfg=cfg)
                place(m, f"isum{x}", isum, "aras_input_sum")
                place(m, f"dec{x}", dec, "aras_decode")
                im.d.comb += [
                    isum.plane.valid.eq(accept & ipay.xmask[k] & ~mx.family),
                    isum.plane.payload.bits.eq(ipay.bits[k]),
                    isum.plane.payload.plane.eq(ipay.plane),
                    isum.plane.payload.first_plane.eq(ipay.first_plane),
                    isum.plane.payload.last_plane.eq(ipay.last_plane),
                    isum.r_used.eq(mx.rows),
                    isum.pack_g.eq(mx.pack_g),
                    isum.pack_k.eq(mx.pack_k),
                    isum.sums.ready.eq(1),
                ]
                hold = Signal(isum.sums.payload.shape(), name=f"sx_hold{x}")
                with m.If(isum.sums.valid):
                    m.d.sync += hold.eq(isum.sums.payload)
                dm = sub(f"decode{x}")
                dm.d.comb += [
                    dec.tile.valid.eq(apu.tsum.valid),
                    dec.tile.payload.t.eq(apu.tsum.payload.t[k]),
                    dec.tile.payload.sx.eq(hold.sx),
                    dec.family.eq(mx.family),
                    dec.flags.eq(mx.flags),
                    dec.pack_n.eq(mx.pack_n),
                ]
                wiring.connect(dm, dec.psum, wiring.flipped(self.psum[x]))
                isums.append(isum)

        # ---------------------------------------------------------------- counters
        for name in WE_COUNTERS:
            m.d.comb += getattr(self, name).eq(getattr(weng, name))
        m.d.comb += self.cells_changed.eq(weng.cells_changed)
        m.d.comb += self.write_buffer_bytes.eq(wbuf.write_buffer_bytes)
        for name in ("xbar_reads", "dac_activations", "adc_conversions"):
            m.d.comb += getattr(self, name).eq(tree_sum([getattr(apu, name) for apu in apus]))
        m.d.comb += self.input_sum_ops.eq(tree_sum([s.input_sum_ops for s in isums]))
        return m
