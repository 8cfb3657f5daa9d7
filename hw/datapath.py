"""``datapath``: digital post-processing of crossbar results (docs/architecture.md §3.8, §4, §5.4, §6.3).

Three components, one per piece of the reference decomposition of §3.8:

:class:`InputSum` (PE front end, one per offset-family tile)
    Exact Σx per packed group block from the input bit-planes: per plane b, popcount of the block's
    bits, ``Σx_t = Σ_b c_b·2^b·popcount_b`` with ``c_7 = −1`` (§5.4). Block t holds rows
    ``[t·pack_k, (t+1)·pack_k)`` for t < ``pack_g`` (unpacked tile: ``pack_g`` = 1, ``pack_k`` = R_used);
    rows ≥ ``r_used`` are ignored. Counter ``input_sum_ops`` (+1 per accepted plane).
:class:`Decode` (PE front end)
    Weight-column values from the slice sums, ``V = Σ_s 2^(s·cell_bits)·T_s``, then per column
    ``V − 128·Σx`` (``offset``) or ``127·Σx − V`` (``offset_inv``); signmag ``V_A − V_B`` or
    ``V_B − V_A`` (§4). Offset weight column j decodes with the Σx of its block ``j // pack_n``.
:class:`Post` (chip-level ``datapath.post``)
    Per output channel lane: accumulate partial sums (int32, wrapping), then either emit the raw
    int32 accumulator (psum spill) or add ``bias_hw``, requantize with (M, shift) — or (M_neg,
    shift_neg) where the biased accumulator is negative and ``neg_en`` is set (fused leaky/prelu) —
    add ``zo`` and clamp to [``act_min``, ``act_max``] (§6.3; ``sim_models.quant.requantize``).
    Counter ``post_ops`` (+``n`` per requantized beat).

Streams follow amaranth.lib.stream rules. Each component has one output register: **latency 1**
(the output is valid in the cycle after the input beat that completes it) and full throughput
(``ready`` of the input = output register empty or being taken). ``post_latency`` of §10.3 is a
budget for the whole post path (accumulate, requantize, write-back); the integrating unit pads to it.
Configuration inputs (``r_used``, ``pack_*``, ``family``, ``flags``, ``zo``, ``act_*``, ``neg_en``)
must be stable while beats of one tile / layer flow. Counters are 64 bit and cleared by reset.
"""

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from aras.config import Config

from .fixedpoint import mbqm
from .tree import tree_sum
from .unit import Unit

__all__ = [
    "Decode", "InputSum", "Post",
    "input_sum_width", "max_blocks", "plane_layout", "post_in_layout", "post_out_layout", "qparam_layout",
    "sums_layout", "tile_layout", "tsum_width",
]

COUNTER_BITS = 64
ACT_BITS = 8


def tsum_width(cfg: Config) -> int:
    """Signed width of one shift-and-added column value T_j (§3.3: ``adc_bits + 9``)."""
    return cfg.adc_bits + 9


def input_sum_width(cfg: Config) -> int:
    """Signed width of Σx over at most ``xbar_rows`` int8 inputs (|Σx| ≤ 128·rows)."""
    return (128 * cfg.xbar_rows).bit_length() + 1


def max_blocks(cfg: Config) -> int:
    """Most packed group blocks in one tile: G ≤ ⌊rows/K_g⌋ ≤ rows and G ≤ Cw (§5.1)."""
    return min(cfg.xbar_rows, cfg.weight_cols)


def plane_layout(cfg: Config) -> data.StructLayout:
    """One input bit-plane of one tile (bit i drives row i), as in the APU ``item`` stream."""
    return data.StructLayout({
        "bits": unsigned(cfg.xbar_rows),
        "plane": unsigned(3),
        "first_plane": unsigned(1),
        "last_plane": unsigned(1),
    })


def sums_layout(cfg: Config) -> data.StructLayout:
    return data.StructLayout({"sx": data.ArrayLayout(signed(input_sum_width(cfg)), max_blocks(cfg))})


def tile_layout(cfg: Config) -> data.StructLayout:
    """Decode input: one tile's T_j per physical column and its block input sums."""
    return data.StructLayout({
        "t": data.ArrayLayout(signed(tsum_width(cfg)), cfg.xbar_cols),
        "sx": data.ArrayLayout(signed(input_sum_width(cfg)), max_blocks(cfg)),
    })


def psum_layout(cfg: Config) -> data.StructLayout:
    """Decode output: int32 partial sum per weight column (offset: Cw columns; signmag: the first Cw/2)."""
    return data.StructLayout({"v": data.ArrayLayout(signed(32), cfg.weight_cols)})


def qparam_layout() -> data.StructLayout:
    """Per-output-channel record (§9.5)."""
    return data.StructLayout({
        "bias": signed(32), "m": signed(32), "shift": signed(8), "m_neg": signed(32), "shift_neg": signed(8),
    })


def post_in_layout(lanes: int) -> data.StructLayout:
    """``Post`` input beat: ``lanes`` partial sums; ``qp`` and ``spill`` are used on the ``last`` beat."""
    return data.StructLayout({
        "psum": data.ArrayLayout(signed(32), lanes),
        "qp": data.ArrayLayout(qparam_layout(), lanes),
        "first": unsigned(1),
        "last": unsigned(1),
        "spill": unsigned(1),
        "n": range(lanes + 1),
    })


def post_out_layout(lanes: int) -> data.StructLayout:
    """``Post`` output: int8 results (``spill`` = 0) or raw int32 accumulators (``spill`` = 1; ``acc``
    holds the biased accumulator otherwise, for debugging)."""
    return data.StructLayout({
        "q": data.ArrayLayout(signed(ACT_BITS), lanes),
        "acc": data.ArrayLayout(signed(32), lanes),
        "spill": unsigned(1),
        "n": range(lanes + 1),
    })


class InputSum(Unit):
    """Exact per-block input sums of one offset-family tile (§5.4).

    Parameters
    ----------
    cfg : aras.config.Config
        ``xbar_rows`` (plane width), ``weight_cols`` (bounds the number of blocks).

    Attributes (ports)
    ------------------
    plane : In(stream.Signature(plane_layout(cfg)))
        Bit-planes of one position, LSB plane first; ``first_plane`` restarts the sums,
        ``last_plane`` emits them.
    sums : Out(stream.Signature(sums_layout(cfg)))
        ``sx[t]`` = Σx of block t (0 for t ≥ ``pack_g``), valid the cycle after the last plane.
    r_used, pack_g, pack_k : In
        Tile rows used, groups packed (1 = unpacked), rows per group.
    input_sum_ops : Out(64)
    """

    def __init__(self, *, cfg: Config):
        self._take_cfg(cfg)
        super().__init__({
            "plane": In(stream.Signature(plane_layout(cfg))),
            "sums": Out(stream.Signature(sums_layout(cfg))),
            "r_used": In(range(cfg.xbar_rows + 1)),
            "pack_g": In(range(max_blocks(cfg) + 1)),
            "pack_k": In(range(cfg.xbar_rows + 1)),
            "input_sum_ops": Out(COUNTER_BITS),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        rows, nb, w = cfg.xbar_rows, max_blocks(cfg), input_sum_width(cfg)
        pay = self.plane.payload
        acc = [Signal(signed(w), name=f"acc{t}") for t in range(nb)]
        take = self.plane.valid & self.plane.ready
        m.d.comb += self.plane.ready.eq(~self.sums.valid | self.sums.ready)
        with m.If(self.sums.ready):
            m.d.sync += self.sums.valid.eq(0)
        for t in range(nb):
            lo = self.pack_k * t
            hi = self.pack_k * (t + 1)
            member = [pay.bits[i] & (t < self.pack_g) & (i < self.r_used) & (i >= lo) & (i < hi)
                      for i in range(rows)]
            pop = tree_sum(member)
            term = Mux(pay.plane == 7, -(pop << 7), pop << pay.plane)  # c_7 = −1 (two's complement MSB)
            nxt = Signal(signed(w), name=f"next{t}")
            m.d.comb += nxt.eq(Mux(pay.first_plane, 0, acc[t]) + term)
            with m.If(take):
                m.d.sync += acc[t].eq(nxt)
                with m.If(pay.last_plane):
                    m.d.sync += self.sums.payload.sx[t].eq(nxt)
        with m.If(take):
            m.d.sync += self.input_sum_ops.eq(self.input_sum_ops + 1)
            with m.If(pay.last_plane):
                m.d.sync += self.sums.valid.eq(1)
        return m


class Decode(Unit):
    """Weight-column decode of one tile (§4, §5.3, §5.4).

    Parameters
    ----------
    cfg : aras.config.Config
        ``xbar_cols``, ``cell_bits`` (slices S), ``adc_bits`` (T width), ``weight_cols`` (Cw).

    Attributes (ports)
    ------------------
    tile : In(stream.Signature(tile_layout(cfg)))
        T_j of every physical column and the tile's block sums (ignored for signmag).
    psum : Out(stream.Signature(psum_layout(cfg)))
        ``v[j]`` = Σx·w of weight column j over the tile's rows (exact unless the ADC clipped),
        int32; signmag lanes j ≥ Cw/2 are 0, columns j ≥ wcols are don't-care. Valid the cycle
        after the ``tile`` beat.
    family : In(1)
        0 offset, 1 signmag.
    flags : In(weight_cols)
        Bit j selects ``offset_inv`` / ``signmag_swap`` for weight column j.
    pack_n : In
        Weight columns per packed group (= wcols when unpacked).
    """

    def __init__(self, *, cfg: Config):
        self._take_cfg(cfg)
        super().__init__({
            "tile": In(stream.Signature(tile_layout(cfg))),
            "psum": Out(stream.Signature(psum_layout(cfg))),
            "family": In(1),
            "flags": In(cfg.weight_cols),
            "pack_n": In(range(cfg.weight_cols + 1)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        s, cb, cw, nb = cfg.slices, cfg.cell_bits, cfg.weight_cols, max_blocks(cfg)
        t = self.tile.payload.t
        sx = self.tile.payload.sx
        m.d.comb += self.tile.ready.eq(~self.psum.valid | self.psum.ready)
        with m.If(self.psum.ready):
            m.d.sync += self.psum.valid.eq(0)
        with m.If(self.tile.valid & self.tile.ready):
            m.d.sync += self.psum.valid.eq(1)

        def value(first_col):
            return tree_sum([t[first_col + k] << (k * cb) for k in range(s)])

        for j in range(cw):
            # offset family: slices at j·S + s; Σx of block j // pack_n (comparisons, no divider)
            v_off = value(j * s)
            blk_sx = sx[0]
            for b in range(1, nb):
                blk_sx = Mux(j >= self.pack_n * b, sx[b], blk_sx)
            off = Mux(self.flags[j], 127 * blk_sx - v_off, v_off - 128 * blk_sx)
            if j < cw // 2:
                # signmag family: A half at 2jS + s, B half at 2jS + S + s
                diff = value(2 * j * s) - value(2 * j * s + s)
                sgm = Mux(self.flags[j], -diff, diff)
            else:
                sgm = 0
            with m.If(self.tile.valid & self.tile.ready):
                m.d.sync += self.psum.payload.v[j].eq(Mux(self.family, sgm, off))
        return m


class Post(Unit):
    """Partial-sum accumulation, bias, requantization and activation clamp (§6.3).

    Parameters
    ----------
    cfg : aras.config.Config
        Only validated (all widths are fixed by the int8/int32 arithmetic).
    lanes : int, optional
        Output channels per beat (default ``cfg.weight_cols``, one tile's weight columns).

    Attributes (ports)
    ------------------
    part : In(stream.Signature(post_in_layout(lanes)))
        Partial sums; ``first`` restarts the accumulators, ``last`` completes them and carries the
        per-lane ``qp`` records and ``spill``; ``n`` = lanes in use (counted on a requantized beat).
    out : Out(stream.Signature(post_out_layout(lanes)))
        One beat per ``last`` input beat, valid in the next cycle.
    zo, act_min, act_max : In(signed(8))
        Output zero point and clamp range (fused relu/relu6/clamp, §6.3).
    neg_en : In(1)
        Fused leaky/prelu: negative biased accumulators use (``m_neg``, ``shift_neg``).
    post_ops : Out(64)
    """

    def __init__(self, *, cfg: Config, lanes: int | None = None):
        self._take_cfg(cfg)
        lanes = cfg.weight_cols if lanes is None else lanes
        if not isinstance(lanes, int) or isinstance(lanes, bool) or lanes < 1:
            raise ValueError(f"Post: lanes must be an integer >= 1, not {lanes!r}")
        self._lanes = lanes
        super().__init__({
            "part": In(stream.Signature(post_in_layout(lanes))),
            "out": Out(stream.Signature(post_out_layout(lanes))),
            "zo": In(signed(ACT_BITS)),
            "act_min": In(signed(ACT_BITS)),
            "act_max": In(signed(ACT_BITS)),
            "neg_en": In(1),
            "post_ops": Out(COUNTER_BITS),
        })

    @property
    def lanes(self) -> int:
        return self._lanes

    def elaborate(self, platform):
        m = Module()
        pay = self.part.payload
        take = self.part.valid & self.part.ready
        m.d.comb += self.part.ready.eq(~self.out.valid | self.out.ready)
        with m.If(self.out.ready):
            m.d.sync += self.out.valid.eq(0)
        with m.If(take & pay.last):
            m.d.sync += [self.out.valid.eq(1), self.out.payload.spill.eq(pay.spill),
                         self.out.payload.n.eq(pay.n)]
            with m.If(~pay.spill):
                m.d.sync += self.post_ops.eq(self.post_ops + pay.n)
        for k in range(self._lanes):
            acc = Signal(signed(32), name=f"acc{k}")
            total = Signal(signed(32), name=f"total{k}")
            biased = Signal(signed(32), name=f"biased{k}")
            qp = pay.qp[k]
            m.d.comb += [
                total.eq(Mux(pay.first, 0, acc) + pay.psum[k]),  # int32 wraps (§2)
                biased.eq(total + qp.bias),
            ]
            neg = self.neg_en & (biased < 0)
            y = mbqm(m, biased, Mux(neg, qp.m_neg, qp.m), Mux(neg, qp.shift_neg, qp.shift), name=f"rq{k}") + self.zo
            q = Mux(y < self.act_min, self.act_min, Mux(y > self.act_max, self.act_max, y))
            with m.If(take):
                m.d.sync += acc.eq(total)
                with m.If(pay.last):
                    m.d.sync += [self.out.payload.q[k].eq(q),
                                 self.out.payload.acc[k].eq(Mux(pay.spill, total, biased))]
        return m
