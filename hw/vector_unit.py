"""``vector_unit``: int8 vector operations on Gbuffer tensors (docs/architecture.md §3.9, §6.5–6.7, §7.4, §10.4).

Operations (``vop``, values of §9.3): maxpool, avgpool (TFLite rounding, optional
``count_include_pad``), gap, add (TFLite Add, ``left_shift`` 20), clamp (relu/relu6/clamp), leaky_relu,
prelu (per-channel alpha multipliers). Golden model: ``sim_models.vector_unit`` (bit exact).

Work model and timing
---------------------
Every op is one loop over *work items* (§10.4): the tap loop ``(b, c, oh, ow, i, j)`` with radices
``(batch, chans, ho, wo, kh, kw)``. gap is the avgpool whose window is the whole ``h × w`` plane
(ho = wo = 1); element-wise ops (add, clamp, leaky, prelu) are 1 × 1 windows with ho = h, wo = w;
the unit derives these from ``vop``, so ``work = batch·chans·ho·wo·kh·kw`` is §10.4's work for every
op. The unit processes exactly ``vector_lanes`` consecutive work items per cycle:

- **issue** (cycles s … s+n−1, n = ⌈work / vector_lanes⌉, s = the cycle of the ``op`` handshake,
  which issues from the payload directly): lane ℓ computes its item's tap address
  ``base + ((b·chans + c)·h + ih)·w + iw`` with ``ih = oh·sh − pt + i``, ``iw = ow·sw − pl + j`` and
  reads it (taps outside the image are not read);
- **reduce** (one cycle later): segmented max / sum / valid-count over the lanes, carried across
  cycles (the taps of one output are consecutive items);
- **finalize + write** (two cycles after issue): clamp, rounding division, requantization; completed
  outputs are packed into words (outputs are produced in address order) and each output word is
  written once — the last partial word with byte enables in the final cycle (hence two write ports).

``done`` is high for one cycle, in cycle ``s + ceil_div(work, vector_lanes) + vector_latency − 1``
(the last busy cycle); the duration from ``s`` to the end of that cycle is exactly §10.4's formula
(the pipeline above is 2 cycles deep; ``vector_latency`` > 2 adds idle cycles). ``op.ready`` is low
from ``s + 1`` up to and including the ``done`` cycle, so a next op may start in the cycle after
``done``. Counter ``vector_ops += work`` at the handshake.

Gbuffer access and counting
---------------------------
The lanes read their taps through ``rd0`` (and ``rd1``, the second input of add): one Gbuffer read
port per lane, synchronous (data in the next cycle), issued with ``count = 0``. They stand for the
unit's line buffer: §7.4 counts a VECTOR op as reading each input tensor once, sequentially
(``⌈B·item_bytes / gbuf_word_bytes⌉`` words per input), and the unit reports exactly that number on
``extra_reads`` for one cycle (the cycle after the handshake) — the Gbuffer adds it to
``gbuf_reads``. The spec treats vector ops as compute bound with no port or bandwidth limits
(§13.2), which is what the per-lane tap ports model. Output words are written with ``count = 1``
(each word once, so ``gbuf_writes`` grows by ``⌈B·out_item_bytes / gbuf_word_bytes⌉`` for a
word-aligned output base). prelu reads its per-channel ``(M_neg, shift_neg)`` records (§9.5) through
the ``qp`` ports, one per lane, synchronous like the Gbuffer ports.

Parameters of the layer come from the ``op`` payload (:func:`op_layout`); its field list follows
§9.5, with byte addresses for the tensors (the controller resolves tensor ids). Requirements
(validated): ``vector_lanes ≤ gbuf_word_bytes`` (a cycle's outputs then fill at most one word plus a
partial one) and ``vector_latency ≥ 2``. Reset stops an op at once (memories keep their contents).
"""

from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from aras.config import Config

from .fixedpoint import mbqm, trunc_div
from .gbuffer import ReadPortSignature, WritePortSignature
from .strobe import delayed
from .unit import Unit

__all__ = ["VOp", "VectorUnit", "op_layout", "qparam_port_signature"]

COUNTER_BITS = 64
ADD_LEFT_SHIFT = 20  # TFLite kernels/add.cc for int8
DIM = 16  # bits of every shape field (§9.5: u16; kh, kw widened to 16 because gap windows are whole planes)


class VOp(enum.Enum, shape=4):
    """Vector operation codes (§9.3 ``vop``)."""

    MAXPOOL = 0
    AVGPOOL = 1
    GAP = 2
    ADD = 3
    CLAMP = 4
    LEAKY_RELU = 5
    PRELU = 6


def op_layout() -> data.StructLayout:
    """Payload of the ``op`` stream.

    ``in0``/``in1``/``out`` byte addresses; input ``(batch, chans, h, w)`` (a sequence (T, D) is
    ``chans = 1, h = T, w = D`` with ``chan_last = 1``; a flat (K,) is ``1, 1, K``); ``ho, wo, kh, kw,
    sh, sw, pt, pl`` for maxpool/avgpool only (bottom/right padding only shows in ho/wo);
    ``zx`` input zero point (avgpool padding with ``count_include_pad``, leaky/prelu ``zi``, add ``z1``),
    ``zx2`` add ``z2``, ``zo``; ``act_min/act_max`` clamp range (pooling, add, clamp); add multipliers
    ``m1, e1, m2, e2, mo, eo`` (§6.6); leaky/prelu ``mi, ei`` (identity) and ``ma, ea`` (alpha; prelu
    reads per-channel values at ``qparam_ptr + channel`` instead), channel = ``c`` or, with
    ``chan_last``, the position ``ow`` in the row.
    """
    return data.StructLayout({
        "vop": VOp,
        "in0": unsigned(32), "in1": unsigned(32), "out": unsigned(32),
        "batch": unsigned(DIM), "chans": unsigned(DIM), "h": unsigned(DIM), "w": unsigned(DIM),
        "ho": unsigned(DIM), "wo": unsigned(DIM), "kh": unsigned(DIM), "kw": unsigned(DIM),
        "sh": unsigned(8), "sw": unsigned(8), "pt": unsigned(8), "pl": unsigned(8),
        "chan_last": unsigned(1), "count_include_pad": unsigned(1),
        "zx": signed(8), "zx2": signed(8), "zo": signed(8), "act_min": signed(8), "act_max": signed(8),
        "m1": signed(32), "m2": signed(32), "mo": signed(32), "e1": signed(8), "e2": signed(8), "eo": signed(8),
        "mi": signed(32), "ma": signed(32), "ei": signed(8), "ea": signed(8),
        "qparam_ptr": unsigned(24),
    })


def qparam_port_signature() -> wiring.Signature:
    """Initiator's view of a per-channel record read: ``m``/``shift`` are the record's
    ``M_neg``/``shift_neg`` of entry ``addr``, valid the cycle after ``en``."""
    return wiring.Signature({"addr": Out(24), "en": Out(1), "m": In(signed(32)), "shift": In(signed(8))})


def _clamp(v, lo, hi):
    return Mux(v < lo, lo, Mux(v > hi, hi, v))


class VectorUnit(Unit):
    """The vector unit (see the module docstring for the work model, timing and counting).

    Parameters
    ----------
    cfg : aras.config.Config
        ``vector_lanes``, ``vector_latency``, ``gbuf_word_bytes`` and the Gbuffer size.

    Attributes (ports)
    ------------------
    op : In(stream.Signature(op_layout()))
        One operation; accepted when idle.
    done : Out(1)
        High in the last busy cycle of an op.
    busy : Out(1)
    rd0, rd1 : Out(ReadPortSignature(cfg)) × vector_lanes
        Tap reads of the first / second input (rd1: add only).
    wr : Out(WritePortSignature(cfg)) × 2
        Output word writes (wr[1] only for the final partial word when wr[0] completes a word in
        the same cycle).
    qp : Out(qparam_port_signature()) × vector_lanes
        prelu per-channel multipliers.
    extra_reads : Out(32)
        Words to add to ``gbuf_reads`` (one cycle per op, §7.4).
    vector_ops : Out(64)
    """

    def __init__(self, *, cfg: Config):
        self._take_cfg(cfg)
        if cfg.vector_lanes > cfg.gbuf_word_bytes:
            raise ValueError(f"VectorUnit: config {cfg.name!r}: vector_lanes ({cfg.vector_lanes}) must be <= "
                             f"gbuf_word_bytes ({cfg.gbuf_word_bytes}) (one output word per cycle)")
        if cfg.vector_latency < 2:
            raise ValueError(f"VectorUnit: config {cfg.name!r}: vector_latency ({cfg.vector_latency}) must be >= 2 "
                             f"(read and finalize pipeline stages)")
        lanes = cfg.vector_lanes
        super().__init__({
            "op": In(stream.Signature(op_layout())),
            "done": Out(1),
            "busy": Out(1),
            "rd0": Out(ReadPortSignature(cfg)).array(lanes),
            "rd1": Out(ReadPortSignature(cfg)).array(lanes),
            "wr": Out(WritePortSignature(cfg)).array(2),
            "qp": Out(qparam_port_signature()).array(lanes),
            "extra_reads": Out(32),
            "vector_ops": Out(COUNTER_BITS),
        })

    @staticmethod
    def duration(cfg: Config, work: int) -> int:
        """§10.4: cycles of one op with ``work`` lane-ops."""
        return -(-work // cfg.vector_lanes) + cfg.vector_latency

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        lanes, wb = cfg.vector_lanes, cfg.gbuf_word_bytes
        abits = max(1, (cfg.gbuf_bytes - 1).bit_length())
        work_bits = 6 * DIM
        sum_bits = (128 * (1 << (2 * DIM))).bit_length() + 1  # |Σ window| ≤ 128·kh·kw
        cnt_bits = 2 * DIM + 1

        # ---------------------------------------------------------------- op acceptance, descriptor
        pay = self.op.payload
        start = Signal()
        m.d.comb += [self.op.ready.eq(~self.busy), start.eq(self.op.valid & self.op.ready)]

        norm = Signal(op_layout())  # payload with gap / element-wise geometry filled in
        is_pool_p = (pay.vop == VOp.MAXPOOL) | (pay.vop == VOp.AVGPOOL)
        is_gap_p = pay.vop == VOp.GAP
        m.d.comb += norm.eq(pay)
        with m.If(is_gap_p):
            m.d.comb += [norm.kh.eq(pay.h), norm.kw.eq(pay.w), norm.ho.eq(1), norm.wo.eq(1)]
        with m.Elif(~is_pool_p):
            m.d.comb += [norm.kh.eq(1), norm.kw.eq(1), norm.ho.eq(pay.h), norm.wo.eq(pay.w)]
        with m.If(~is_pool_p):
            m.d.comb += [norm.sh.eq(1), norm.sw.eq(1), norm.pt.eq(0), norm.pl.eq(0)]
        with m.If(pay.vop != VOp.AVGPOOL):
            m.d.comb += norm.count_include_pad.eq(0)

        dreg = Signal(op_layout())
        d = Signal(op_layout())  # the op's descriptor; in the start cycle straight from the payload
        m.d.comb += d.eq(Mux(start, norm, dreg))
        with m.If(start):
            m.d.sync += dreg.eq(norm)

        work_p = Signal(work_bits)
        m.d.comb += work_p.eq(norm.batch * norm.chans * norm.ho * norm.wo * norm.kh * norm.kw)
        in_words = Signal(32)
        m.d.comb += in_words.eq((pay.batch * pay.chans * pay.h * pay.w + (wb - 1)) // wb)
        m.d.sync += self.extra_reads.eq(0)
        with m.If(start):
            m.d.sync += [
                self.vector_ops.eq(self.vector_ops + work_p),
                self.extra_reads.eq(Mux(pay.vop == VOp.ADD, in_words << 1, in_words)),
                self.busy.eq(1),
            ]

        # ---------------------------------------------------------------- issue stage
        rem = Signal(work_bits)
        more = Signal()  # beats left after the current one (busy only)
        rem_cur = Mux(start, work_p, rem)
        issue = start | (self.busy & more)
        fin = rem_cur <= lanes

        digit_names = ["b", "c", "oh", "ow", "i", "j"]  # outermost first
        radix = [d.batch, d.chans, d.ho, d.wo, d.kh, d.kw]
        base = [Signal(DIM, name=f"base_{n}") for n in digit_names]

        def inc(dg, tag):
            # Named signals per digit: expression trees shared between lanes would otherwise be inlined
            # (and grow exponentially) in the simulator.
            out = [Signal(DIM, name=f"{tag}_{n}") for n in digit_names]
            carry = Const(1, 1)
            for k in reversed(range(len(dg))):
                nxt = dg[k] + 1
                wrap = Signal(name=f"{tag}_wrap_{digit_names[k]}")
                m.d.comb += [wrap.eq(carry & (nxt == radix[k])), out[k].eq(Mux(carry, Mux(wrap, 0, nxt), dg[k]))]
                carry = wrap
            return out

        lane_dg = [base]
        for ell in range(1, lanes):
            lane_dg.append(inc(lane_dg[-1], f"lane{ell}"))
        with m.If(issue):
            with m.If(fin):
                m.d.sync += [bs.eq(0) for bs in base]
            with m.Else():
                m.d.sync += [bs.eq(v) for bs, v in zip(base, inc(lane_dg[-1], "next"), strict=True)]
            m.d.sync += [rem.eq(rem_cur - lanes), more.eq(~fin)]

        is_add = d.vop == VOp.ADD
        is_prelu = d.vop == VOp.PRELU
        s1 = {"valid": Signal(), "fin": Signal()}
        m.d.sync += [s1["valid"].eq(issue), s1["fin"].eq(issue & fin)]
        lane1 = []
        for ell in range(lanes):
            b, c, oh, ow, i, j = lane_dg[ell]
            ih = Signal(signed(DIM + 10), name=f"ih{ell}")
            iw = Signal(signed(DIM + 10), name=f"iw{ell}")
            m.d.comb += [ih.eq(oh * d.sh + i - d.pt), iw.eq(ow * d.sw + j - d.pl)]
            inside = (ih >= 0) & (ih < d.h) & (iw >= 0) & (iw < d.w)
            active = rem_cur > ell
            offset = ((b * d.chans + c) * d.h + ih.as_unsigned()[:DIM]) * d.w + iw.as_unsigned()[:DIM]
            a0 = (d.in0 + offset)[:abits]
            a1 = (d.in1 + offset)[:abits]
            m.d.comb += [
                self.rd0[ell].addr.eq(a0 // wb), self.rd0[ell].en.eq(issue & active & inside),
                self.rd1[ell].addr.eq(a1 // wb), self.rd1[ell].en.eq(issue & active & inside & is_add),
                self.qp[ell].addr.eq(d.qparam_ptr + Mux(d.chan_last, ow, c)),
                self.qp[ell].en.eq(issue & active & is_prelu),
            ]
            regs = {
                "act": Signal(name=f"s1_act{ell}"), "inside": Signal(name=f"s1_in{ell}"),
                "first": Signal(name=f"s1_first{ell}"), "last": Signal(name=f"s1_last{ell}"),
                "byte0": Signal(range(wb), name=f"s1_b0_{ell}"), "byte1": Signal(range(wb), name=f"s1_b1_{ell}"),
            }
            m.d.sync += [
                regs["act"].eq(issue & active), regs["inside"].eq(inside),
                regs["first"].eq((i == 0) & (j == 0)), regs["last"].eq((i == d.kh - 1) & (j == d.kw - 1)),
                regs["byte0"].eq(a0 % wb), regs["byte1"].eq(a1 % wb),
            ]
            lane1.append(regs)

        # ---------------------------------------------------------------- reduce stage
        is_max = d.vop == VOp.MAXPOOL
        carry_acc = Signal(signed(sum_bits))
        carry_cnt = Signal(cnt_bits)
        s2 = {"valid": Signal(), "fin": Signal()}
        m.d.sync += [s2["valid"].eq(s1["valid"]), s2["fin"].eq(s1["fin"])]
        prev_acc, prev_cnt = carry_acc, carry_cnt
        lane2 = []
        for ell in range(lanes):
            r = lane1[ell]
            x0 = self.rd0[ell].data.word_select(r["byte0"], 8).as_signed()
            x1 = self.rd1[ell].data.word_select(r["byte1"], 8).as_signed()
            val = Mux(r["inside"], x0, Mux(is_max, -128, Mux(d.count_include_pad, d.zx, 0)))
            bit = r["inside"] | d.count_include_pad
            acc = Signal(signed(sum_bits), name=f"racc{ell}")
            cnt = Signal(cnt_bits, name=f"rcnt{ell}")
            merged = Mux(is_max, Mux(val > prev_acc, val, prev_acc), prev_acc + val)
            m.d.comb += [acc.eq(Mux(r["first"], val, merged)), cnt.eq(Mux(r["first"], bit, prev_cnt + bit))]
            prev_acc, prev_cnt = acc, cnt
            regs = {
                "out": Signal(name=f"s2_out{ell}"), "acc": Signal(signed(sum_bits), name=f"s2_acc{ell}"),
                "cnt": Signal(cnt_bits, name=f"s2_cnt{ell}"), "x0": Signal(signed(8), name=f"s2_x0_{ell}"),
                "x1": Signal(signed(8), name=f"s2_x1_{ell}"), "qm": Signal(signed(32), name=f"s2_qm{ell}"),
                "qs": Signal(signed(8), name=f"s2_qs{ell}"),
            }
            m.d.sync += [
                regs["out"].eq(r["act"] & r["last"]), regs["acc"].eq(acc), regs["cnt"].eq(cnt),
                regs["x0"].eq(x0), regs["x1"].eq(x1), regs["qm"].eq(self.qp[ell].m), regs["qs"].eq(self.qp[ell].shift),
            ]
            lane2.append(regs)
        with m.If(s1["valid"]):
            m.d.sync += [carry_acc.eq(prev_acc), carry_cnt.eq(prev_cnt)]

        # ---------------------------------------------------------------- finalize + write stage
        ys = []
        for ell in range(lanes):
            r = lane2[ell]
            y = Signal(signed(8), name=f"y{ell}")
            half = r["cnt"] >> 1
            rounded = trunc_div(m, Mux(r["acc"] > 0, r["acc"] + half, r["acc"] - half), r["cnt"], name=f"avg{ell}")
            dlt = r["x0"] - d.zx
            pos = dlt >= 0
            m_sel = Mux(pos, d.mi, Mux(is_prelu, r["qm"], d.ma))
            e_sel = Mux(pos, d.ei, Mux(is_prelu, r["qs"], d.ea))
            v1 = mbqm(m, Mux(is_add, dlt << ADD_LEFT_SHIFT, dlt), Mux(is_add, d.m1, m_sel), Mux(is_add, d.e1, e_sel),
                      name=f"v1_{ell}")
            v2 = mbqm(m, (r["x1"] - d.zx2) << ADD_LEFT_SHIFT, d.m2, d.e2, name=f"v2_{ell}")
            added = d.zo + mbqm(m, (v1 + v2)[:32].as_signed(), d.mo, d.eo, name=f"vo_{ell}")
            with m.Switch(d.vop):
                with m.Case(VOp.MAXPOOL):
                    m.d.comb += y.eq(_clamp(r["acc"], d.act_min, d.act_max))
                with m.Case(VOp.AVGPOOL, VOp.GAP):
                    m.d.comb += y.eq(_clamp(rounded, d.act_min, d.act_max))
                with m.Case(VOp.ADD):
                    m.d.comb += y.eq(_clamp(added, d.act_min, d.act_max))
                with m.Case(VOp.CLAMP):
                    m.d.comb += y.eq(_clamp(r["x0"], d.act_min, d.act_max))
                with m.Case(VOp.LEAKY_RELU, VOp.PRELU):
                    m.d.comb += y.eq(_clamp(d.zo + v1, -128, 127))
            ys.append(y)

        optr = Signal(abits + 1)  # byte address of the next output
        pw = Signal(data.ArrayLayout(8, wb))  # partial output word
        pw_be = Signal(wb)
        with m.If(start):
            m.d.sync += [optr.eq(pay.out[:abits]), pw_be.eq(0)]
        off = optr % wb
        ranks = []
        run = Const(0, 1)
        for ell in range(lanes):
            ranks.append(run)
            run = run + lane2[ell]["out"]
        nout = Signal(range(lanes + 1))
        m.d.comb += nout.eq(Mux(s2["valid"], run, 0))
        new = Signal(data.ArrayLayout(8, 2 * wb))
        hit = Signal(2 * wb)
        for p in range(2 * wb):
            sel, val = Const(0, 1), Const(0, 8)
            for ell in range(lanes):
                h = lane2[ell]["out"] & (off + ranks[ell] == p)
                sel = sel | h
                val = Mux(h, ys[ell].as_unsigned(), val)
            m.d.comb += [new[p].eq(val), hit[p].eq(sel & s2["valid"])]
        merged_a = Signal(data.ArrayLayout(8, wb))
        m.d.comb += [merged_a[p].eq(Mux(hit[p], new[p], pw[p])) for p in range(wb)]
        be_a = pw_be | hit[:wb]
        word_a = optr // wb
        full_a = (off + nout) >= wb
        fin2 = s2["valid"] & s2["fin"]
        for k in range(2):
            m.d.comb += self.wr[k].count.eq(1)
        m.d.comb += [self.wr[0].addr.eq(word_a), self.wr[0].data.eq(merged_a), self.wr[0].be.eq(be_a),
                     self.wr[1].addr.eq(word_a + 1), self.wr[1].data.eq(Cat(*[new[wb + p] for p in range(wb)])),
                     self.wr[1].be.eq(hit[wb:])]
        with m.If(s2["valid"]):
            m.d.sync += optr.eq(optr + nout)
            with m.If(full_a):
                m.d.comb += [self.wr[0].en.eq(1), self.wr[1].en.eq(fin2 & hit[wb:].any())]
                m.d.sync += [pw.eq(Cat(*[new[wb + p] for p in range(wb)])), pw_be.eq(hit[wb:])]
            with m.Else():
                m.d.comb += self.wr[0].en.eq(fin2 & be_a.any())
                m.d.sync += [pw.eq(merged_a), pw_be.eq(be_a)]

        # ---------------------------------------------------------------- done
        m.d.comb += self.done.eq(delayed(m, fin2, cfg.vector_latency - 2))
        with m.If(self.done):
            m.d.sync += self.busy.eq(0)
        return m
