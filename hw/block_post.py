"""``block_post``: the post path of one crossbar of the compute engine (docs/architecture.md §6.3, §7.4,
§10.3), one per crossbar, active when the crossbar leads its block in the round.

In the cycle the PEs' decoded partial sums arrive (``pv``), the leader adds the partial sums of its
block's members (crossbar y is one when it runs in the round and its ``lead`` is this crossbar;
cross-PE reduction is free, §13.2), which its :class:`MemberSum` units deliver per chunk of crossbars
(``parts``), and,
for pmode middle/last, the restored int32 partial sums (one combinational Gbuffer int32 port per lane,
``grd``), all modulo 2^32; a ``datapath.Post`` adds the bias and requantizes, or passes the raw sum for
a spill (pmode first/middle). In the next cycle (Post's output) lane j writes its int8 output (CHW /
sequence layout) or its int32 spill through write port ``gwr[j]``.

§7.4 counting: the restore stream counts a word whenever a used lane's word differs from the previous
lane's (``restore_reads``, the cycle of the beat); the spill stream likewise (``count`` of ``gwr``);
the output stream's lane 0 compares with the word of ``prev_ch``, the previous output block's last
channel (none for ``out_first``). ``spill_words`` = int32 words spilled plus restored (§11).

Units of their own so that generation emits each once (``hw.shared``), every ``MemberSum`` copy
wired to the same ``psum``, ``in_round`` and ``leads`` signals: a block sum reads every crossbar's
partial sums, O(crossbars) per crossbar — O(crossbars²) in all, the price of an arbitrary tile
placement with a free single-cycle reduction.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data
from amaranth.lib.wiring import In, Out

from aras import isa
from aras.config import Config

from . import shared
from .controller import qparam_read_signature
from .datapath import Post, psum_layout
from .gbuffer import WritePortSignature, comb_read_signature
from .shared import place
from .tree import tree_sum
from .unit import Unit

__all__ = ["BlockPost", "MemberSum", "member_chunks"]


def member_chunks(cfg: Config) -> tuple[int, int]:
    """(k, n): the crossbars split into k chunks of n (the last padded) so that one :class:`MemberSum`
    has at most ``hw.shared.MAX_PORT_BITS`` input bits (per crossbar: partial sums, ``valid``,
    ``lead``; plus ``index``), so that generation emits it as a shared module."""
    lead = isa.TILE["lead"].shape.width
    X, per_x = cfg.n_xbars, psum_layout(cfg).size + 1 + lead
    n_max = max(1, (shared.MAX_PORT_BITS - lead) // per_x)
    k = -(-X // n_max)
    return k, -(-X // k)


class MemberSum(Unit):
    """Lane-wise sum of the partial sums of the members, among ``n`` crossbars, of the block led by
    crossbar ``index`` (a member runs in the round and its ``lead`` is ``index``), modulo 2^32.

    Attributes (ports)
    ------------------
    psum : In(datapath.psum_layout) [n]; in_round : In(n); leads : In(ArrayLayout(unsigned(12), n))
    index : In(12)
    sum : Out(ArrayLayout(unsigned(32), weight_cols))
    """

    def __init__(self, *, cfg: Config, n: int):
        self._take_cfg(cfg)
        self._n = n
        lead = isa.TILE["lead"].shape
        super().__init__({
            "psum": In(psum_layout(cfg)).array(n),
            "in_round": In(n),
            "leads": In(data.ArrayLayout(lead, n)),
            "index": In(lead),
            "sum": Out(data.ArrayLayout(unsigned(32), cfg.weight_cols)),
        })

    def elaborate(self, platform):
        m = Module()
        n = self._n
        member = Signal(n)
        m.d.comb += member.eq(Cat(self.in_round[y] & (self.leads[y] == self.index) for y in range(n)))
        for j in range(self._cfg.weight_cols):
            m.d.comb += self.sum[j].eq(tree_sum([Mux(member[y], self.psum[y].v[j], 0) for y in range(n)]))
        return m


class BlockPost(Unit):
    """Post path of one crossbar (see the module docstring).

    Attributes (ports)
    ------------------
    parts : In(ArrayLayout(unsigned(32), weight_cols)) [k of :func:`member_chunks`]
        The block's partial sums from each chunk of crossbars (valid with ``pv``).
    pv : In(1)
        The partial sums of a position arrive this cycle.
    tile : In(isa.TILE)
        This crossbar's dense tile-table entry (``valid``, ``leader``, ``pmode``, ``replica``,
        ``out_first``, ``prev_ch``).
    desc : In(isa.LAYER); is_lin : In(1)
    per : In(32)
        Positions per copy.
    pidx_p, bb_p : In
        Position index (within the copy) and batch item of the arriving partial sums.
    pidx_o, bb_o : In
        The same, registered: the beat being written back.
    pbase : In(32)
        Byte base of the block's psum tensor.
    obase : In(32)
        Byte base of the output tensor's batch item ``bb_o``.
    ncols, ch0 : In
        Weight columns used and first output channel of this crossbar's tile.
    grd : Out(gbuffer.comb_read_signature(cfg, 4)) [weight_cols]; qp : Out(qparam_read_signature) [weight_cols];
    gwr : Out(gbuffer.WritePortSignature) [weight_cols]
    restore_reads : Out(range(cw + 1)); spill_words : Out(range(2·cw + 1)); post_ops : Out(64)
    """

    def __init__(self, *, cfg: Config):
        self._take_cfg(cfg)
        cw = cfg.weight_cols
        super().__init__({
            "parts": In(data.ArrayLayout(unsigned(32), cw)).array(member_chunks(cfg)[0]),
            "pv": In(1),
            "tile": In(isa.TILE),
            "desc": In(isa.LAYER),
            "is_lin": In(1),
            "per": In(32),
            "pidx_p": In(32),
            "bb_p": In(16),
            "pidx_o": In(32),
            "bb_o": In(16),
            "pbase": In(32),
            "obase": In(32),
            "ncols": In(range(cw + 1)),
            "ch0": In(16),
            "grd": Out(comb_read_signature(cfg, 4)).array(cw),
            "qp": Out(qparam_read_signature()).array(cw),
            "gwr": Out(WritePortSignature(cfg)).array(cw),
            "restore_reads": Out(range(cw + 1)),
            "spill_words": Out(range(2 * cw + 1)),
            "post_ops": Out(64),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        cw, WB = cfg.weight_cols, cfg.gbuf_word_bytes
        desc, tile, ncols = self.desc, self.tile, self.ncols
        P = desc.p
        post = Post(cfg=cfg)
        place(m, "post", post, "aras_post")
        m.d.comb += self.post_ops.eq(post.post_ops)

        # ---- the beat: block sum, restore, qparams
        pp = Signal(32)
        go = Signal()
        restore = Signal()
        spill = Signal()
        prow = Signal(32)

        def psum_addr(bb, pos):  # byte address of the int32 psum row of (batch item, position)
            return self.pbase + (bb * P + pos) * ncols * 4

        m.d.comb += [pp.eq(tile.replica * self.per + self.pidx_p),
                     go.eq(self.pv & tile.valid & tile.leader & (pp < P)),
                     restore.eq((tile.pmode == 2) | (tile.pmode == 3)), spill.eq((tile.pmode == 1) | (tile.pmode == 2)),
                     prow.eq(psum_addr(self.bb_p, pp))]
        part = post.part.payload
        rcnt = []
        prev_w = None
        for j in range(cw):
            tot = Signal(32, name=f"block_sum{j}")
            m.d.comb += tot.eq(tree_sum([p[j] for p in self.parts]))
            ra = prow + 4 * j
            m.d.comb += [self.grd[j].addr.eq(ra),
                         part.psum[j].eq((tot + Mux(restore, self.grd[j].data, 0))[:32].as_signed())]
            qp = self.qp[j]
            m.d.comb += qp.index.eq(desc.qparam_ptr + self.ch0 + j)
            q = part.qp[j]
            m.d.comb += [q.bias.eq(qp.data.bias_hw), q.m.eq(qp.data.m), q.shift.eq(qp.data.shift),
                         q.m_neg.eq(qp.data.m_neg), q.shift_neg.eq(qp.data.shift_neg)]
            w = ra // WB
            rcnt.append((j < ncols) & (Const(1, 1) if prev_w is None else (w != prev_w)))
            prev_w = w
        m.d.comb += [post.part.valid.eq(go), part.first.eq(1), part.last.eq(1), part.spill.eq(spill),
                     part.n.eq(ncols), post.zo.eq(desc.zo), post.act_min.eq(desc.act_min),
                     post.act_max.eq(desc.act_max), post.neg_en.eq(desc.act_kind == isa.ActKind.LEAKY),
                     post.out.ready.eq(1),
                     self.restore_reads.eq(Mux(go & restore, tree_sum(rcnt), 0)),
                     self.spill_words.eq(Mux(go, Mux(spill, ncols, 0) + Mux(restore, ncols, 0), 0))]

        # ---- write-back (Post's output is valid the cycle after the beat)
        op_ = post.out.payload
        po = Signal(32)
        srow = Signal(32)
        m.d.comb += [po.eq(tile.replica * self.per + self.pidx_o),
                     srow.eq(psum_addr(self.bb_o, po))]

        def out_addr(ch):  # output byte of channel ch (sequence / CHW layout)
            return self.obase + Mux(self.is_lin, po * desc.wo + ch, ch * P + po)

        # §7.4 output stream: its last word is the previous lane's, or for lane 0 the word of the last
        # channel of the previous output block in the round (``prev_ch``; none for ``out_first``)
        prev_sw = None
        prev_ow = Signal(32)
        m.d.comb += prev_ow.eq(out_addr(tile.prev_ch) // WB)
        for j in range(cw):
            wp = self.gwr[j]
            oa = Signal(32, name=f"oaddr{j}")
            sa = Signal(32, name=f"saddr{j}")
            m.d.comb += [oa.eq(out_addr(self.ch0 + j)), sa.eq(srow + 4 * j)]
            is_sp = op_.spill
            lane = (oa % WB)[:max(1, (WB - 1).bit_length())]
            slane = ((sa % WB) // 4)[:max(1, (WB // 4 - 1).bit_length())] if WB > 4 else Const(0, 1)
            m.d.comb += [
                wp.en.eq(post.out.valid & (j < ncols)),
                wp.addr.eq(Mux(is_sp, sa // WB, oa // WB)),
                wp.data.eq(Mux(is_sp, op_.acc[j].as_unsigned() << (slane * 32), op_.q[j].as_unsigned() << (lane * 8))),
                wp.be.eq(Mux(is_sp, Const(0xF, WB) << (slane * 4), Const(1, WB) << lane)),
            ]
            sw, ow = sa // WB, oa // WB
            s_first = Const(1, 1) if prev_sw is None else (sw != prev_sw)
            o_first = (tile.out_first | (ow != prev_ow)) if j == 0 else (ow != prev_ow)
            m.d.comb += wp.count.eq(Mux(is_sp, s_first, o_first))
            prev_sw, prev_ow = sw, ow
        return m
