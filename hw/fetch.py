"""``fetch``: one crossbar's input vector of one position (docs/architecture.md §5.2, §7.4), part of the
compute engine (``hw/controller.py``).

Row k of tile (gchunk ``g``, rchunk ``r``) holds unrolled-kernel row ``kk = r·R + k`` of packed group
``t = k // kg`` (``kg`` = rows per group; one group unless packed). A conv row is (cin, i, j) in
(c, kh, kw) order and reads input byte ``(cin, oh·sh − pt + i·dh, ow·sw − pl + j·dw)`` of the position
(``oh``, ``ow``); padding (outside the input) and rows ≥ ``rows`` feed ``zx`` and touch no word. A linear
row reads byte ``pos·K + kk``. Every row has its own combinational Gbuffer byte port (§13.2: no port
limit), so the vector is there in the cycle the position starts.

``reads`` is the §7.4 input stream's word count for this position: a word access whenever a valid row's
word differs from the last valid row's; only the stream's leader (``count``) reports it.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data
from amaranth.lib.wiring import In, Out

from aras import isa
from aras.config import Config

from .gbuffer import comb_read_signature
from .tree import tree_sum
from .unit import Unit

__all__ = ["InputFetch"]


class InputFetch(Unit):
    """Input vector of one crossbar for one position (see the module docstring).

    Attributes (ports)
    ------------------
    desc : In(isa.LAYER); is_lin : In(1)
        The layer and whether it is a linear (sequence) layer.
    ibase : In(32)
        Byte address of the batch item's input tensor.
    pos : In(32); in_round : In(1)
        Position of this crossbar's copy and whether the crossbar runs in the round.
    g, r : In; rows : In(range(R + 1))
        Tile gchunk, rchunk and rows used.
    count : In(1)
        This crossbar leads its (gchunk, rchunk, copy) input stream (counts its reads).
    run : Out(1)
        In the round and ``pos < P``.
    x : Out(ArrayLayout(unsigned(8), R))
        The input vector (``zx`` where padded or unused).
    reads : Out(range(R + 1))
        Word accesses of this position's stream (0 unless ``count`` and ``run``).
    grd : Out(gbuffer.comb_read_signature(cfg, 1)) [R]
        Byte reads, one per row.
    """

    def __init__(self, *, cfg: Config):
        self._take_cfg(cfg)
        R = cfg.xbar_rows
        super().__init__({
            "desc": In(isa.LAYER),
            "is_lin": In(1),
            "ibase": In(32),
            "pos": In(32),
            "in_round": In(1),
            "g": In(16),
            "r": In(12),
            "rows": In(range(R + 1)),
            "count": In(1),
            "run": Out(1),
            "x": Out(data.ArrayLayout(unsigned(8), R)),
            "reads": Out(range(R + 1)),
            "grd": Out(comb_read_signature(cfg, 1)).array(R),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        R, WB = cfg.xbar_rows, cfg.gbuf_word_bytes
        desc, px = self.desc, self.pos
        cig, khw, hw_ = Signal(16), Signal(16), Signal(32)
        m.d.comb += [cig.eq(desc.cin // Mux(desc.groups == 0, 1, desc.groups)), khw.eq(desc.kh * desc.kw),
                     hw_.eq(desc.h * desc.w), self.run.eq(self.in_round & (px < desc.p))]
        oh, ow = Signal(16), Signal(16)
        m.d.comb += [oh.eq(px // Mux(desc.wo == 0, 1, desc.wo)), ow.eq(px - oh * desc.wo)]
        words, valids = [], []
        for k in range(R):
            t = Signal(8, name=f"blk{k}")
            kk = Signal(16, name=f"kk{k}")
            m.d.comb += [t.eq(k // Mux(desc.kg == 0, 1, desc.kg)), kk.eq(self.r * R + k - t * desc.kg)]
            cin = Signal(16, name=f"cin{k}")
            q1 = Signal(16, name=f"kq{k}")
            m.d.comb += [q1.eq(kk // Mux(khw == 0, 1, khw)), cin.eq((self.g * desc.pack_g + t) * cig + q1)]
            rem = kk - q1 * khw
            ii = Signal(8, name=f"ki{k}")
            jj = Signal(8, name=f"kj{k}")
            m.d.comb += [ii.eq(rem // Mux(desc.kw == 0, 1, desc.kw)), jj.eq(rem - ii * desc.kw)]
            ih = Signal(signed(20), name=f"ih{k}")
            iw = Signal(signed(20), name=f"iw{k}")
            m.d.comb += [ih.eq(oh * desc.sh - desc.pt + ii * desc.dh), iw.eq(ow * desc.sw - desc.pl + jj * desc.dw)]
            inside = (ih >= 0) & (ih < desc.h) & (iw >= 0) & (iw < desc.w)
            a_conv = self.ibase + cin * hw_ + ih.as_unsigned()[:16] * desc.w + iw.as_unsigned()[:16]
            a_lin = self.ibase + px * desc.w + self.r * R + k
            addr = Signal(32, name=f"addr{k}")
            valid = Signal(name=f"valid{k}")
            m.d.comb += [addr.eq(Mux(self.is_lin, a_lin, a_conv)),
                         valid.eq((k < self.rows) & (self.is_lin | inside))]
            m.d.comb += [self.grd[k].addr.eq(addr), self.x[k].eq(Mux(valid, self.grd[k].data, desc.zx.as_unsigned()))]
            words.append(addr // WB)
            valids.append(valid)
        # §7.4 input stream: a word access whenever a valid row's word differs from the last one
        seen, lastw, cnt = Const(0, 1), Const(0, 32), []
        for k in range(R):
            cnt.append(valids[k] & (~seen | (words[k] != lastw)))
            lastw = Mux(valids[k], words[k], lastw)
            seen = seen | valids[k]
        m.d.comb += self.reads.eq(Mux(self.count & self.run, tree_sum(cnt), 0))
        return m
