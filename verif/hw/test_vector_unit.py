# amaranth: UnusedElaboratable=no
"""hw.vector_unit with hw.gbuffer: every op on random small tensors against sim_models.vector_unit
(bit exact), the §10.4 duration of every op counted cycle by cycle, vector_ops, the §7.4 Gbuffer
counts, back-to-back ops, a reset in the middle of an op, bad configurations, Verilog conversion."""

import dataclasses
import random

import numpy as np
import pytest
from amaranth import ClockDomain, Module
from amaranth.back import verilog
from amaranth.lib import data, memory, wiring
from amaranth.sim import Simulator

from aras import quant as aquant
from aras.config import preset
from aras.errors import ArasError
from aras.ops_float import conv_out_hw
from hw.gbuffer import Gbuffer
from hw.vector_unit import VectorUnit, VOp
from sim_models import vector_unit as gold

QP_DEPTH = 64
BANK = 1024  # tiny: tensors start at bank boundaries


class Bench(wiring.Component):
    """Vector unit + Gbuffer (2·lanes read ports, 2 write ports) + a qparam table memory."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.vu = VectorUnit(cfg=cfg)
        self.gb = Gbuffer(cfg=cfg, read_ports=2 * cfg.vector_lanes, write_ports=2)
        self.qmem = memory.Memory(shape=data.StructLayout({"m": 32, "shift": 8}), depth=QP_DEPTH, init=[])
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = self.cd = ClockDomain()
        m.submodules.vu, m.submodules.gb, m.submodules.qmem = self.vu, self.gb, self.qmem
        lanes = self.cfg.vector_lanes
        for k in range(lanes):
            wiring.connect(m, self.vu.rd0[k], self.gb.rd[k])
            wiring.connect(m, self.vu.rd1[k], self.gb.rd[lanes + k])
            p = self.qmem.read_port()
            m.d.comb += [p.addr.eq(self.vu.qp[k].addr), p.en.eq(self.vu.qp[k].en),
                         self.vu.qp[k].m.eq(p.data.m), self.vu.qp[k].shift.eq(p.data.shift)]
        for k in range(2):
            wiring.connect(m, self.vu.wr[k], self.gb.wr[k])
        m.d.comb += self.gb.extra_reads.eq(self.vu.extra_reads)
        return m


def desc(**kw):
    base = dict(vop=VOp.CLAMP, in0=0, in1=0, out=0, batch=1, chans=1, h=1, w=1, ho=1, wo=1, kh=1, kw=1, sh=1, sw=1,
                pt=0, pl=0, chan_last=0, count_include_pad=0, zx=0, zx2=0, zo=0, act_min=-128, act_max=127,
                m1=0, m2=0, mo=0, e1=0, e2=0, eo=0, mi=0, ma=0, ei=0, ea=0, qparam_ptr=0)
    base.update(kw)
    return base


class Op:
    """One op: descriptor, inputs to load, expected output, §10.4 work."""

    def __init__(self, d, inputs, expected, work, qp=None):
        self.d, self.inputs, self.expected, self.work, self.qp = d, inputs, expected, work, qp or []


def b8(a):
    return np.asarray(a, np.int8).tobytes()


# ---------------------------------------------------------------- op builders (golden side)


def pool_op(rng, kind, shape, kernel, stride, pads, cip=False, act=(-128, 127), zx=0):
    b, c, h, w = shape
    x = rng.integers(-128, 128, shape).astype(np.int8)
    ho, wo = conv_out_hw(h, w, kernel, stride, pads, (1, 1))
    if kind == "max":
        y = np.clip(gold.maxpool(x, kernel, stride, pads), *act)  # §6.5: maxpool output is clamped too
        vop = VOp.MAXPOOL
    else:
        y = gold.avgpool(x, kernel, stride, pads, act[0], act[1], zx, cip)
        vop = VOp.AVGPOOL
    d = desc(vop=vop, in0=0, out=2 * BANK, batch=b, chans=c, h=h, w=w, ho=ho, wo=wo, kh=kernel[0], kw=kernel[1],
             sh=stride[0], sw=stride[1], pt=pads[0], pl=pads[1], count_include_pad=int(cip), zx=zx,
             act_min=act[0], act_max=act[1])
    return Op(d, [(0, b8(x))], b8(y), b * c * ho * wo * kernel[0] * kernel[1])


def gap_op(rng, shape, act=(-128, 127)):
    b, c, h, w = shape
    x = rng.integers(-128, 128, shape).astype(np.int8)
    y = gold.gap(x, *act)
    d = desc(vop=VOp.GAP, in0=BANK, out=3 * BANK, batch=b, chans=c, h=h, w=w, act_min=act[0], act_max=act[1])
    return Op(d, [(BANK, b8(x))], b8(y), b * c * h * w)


def add_multipliers(s1, s2, so):
    twice = 2 * max(s1, s2)
    m1, e1 = aquant.quantize_multiplier(s1 / twice)
    m2, e2 = aquant.quantize_multiplier(s2 / twice)
    mo, eo = aquant.quantize_multiplier(twice / ((1 << 20) * so))
    return dict(m1=m1, s1=e1, m2=m2, s2=e2, mo=mo, so=eo)


def add_op(rng, shape, act=(-128, 127), scales=(0.05, 0.03, 0.07), zps=(3, -7, 10)):
    x1 = rng.integers(-128, 128, shape).astype(np.int8)
    x2 = rng.integers(-128, 128, shape).astype(np.int8)
    a = add_multipliers(*scales)
    a.update(left_shift=20, act_min=act[0], act_max=act[1])
    y = gold.add(x1, x2, zps[0], zps[1], zps[2], a)
    b, c, h, w = shape
    d = desc(vop=VOp.ADD, in0=BANK, in1=4 * BANK, out=6 * BANK, batch=b, chans=c, h=h, w=w, zx=zps[0], zx2=zps[1],
             zo=zps[2], act_min=act[0], act_max=act[1], m1=a["m1"], e1=a["s1"], m2=a["m2"], e2=a["s2"], mo=a["mo"],
             eo=a["so"])
    return Op(d, [(BANK, b8(x1)), (4 * BANK, b8(x2))], b8(y), x1.size)


def clamp_op(rng, shape, act):
    x = rng.integers(-128, 128, shape).astype(np.int8)
    b, c, h, w = shape
    d = desc(vop=VOp.CLAMP, in0=5 * BANK, out=7 * BANK, batch=b, chans=c, h=h, w=w, act_min=act[0], act_max=act[1])
    return Op(d, [(5 * BANK, b8(x))], b8(np.clip(x, *act)), x.size)


def leaky_op(rng, shape, alphas, si=0.05, so=0.04, zi=-5, zo=7, chan_last=False):
    """leaky_relu (one alpha) or prelu (per-channel alphas) on (B, C, H, W) or, chan_last, (B, T, D)."""
    x = rng.integers(-128, 128, shape).astype(np.int8)
    mi, ei = aquant.quantize_multiplier(si / so)
    ma, ea = zip(*[aquant.quantize_multiplier(float(al) * si / so) for al in alphas], strict=True)
    arrays = {"mult_id": np.array([mi]), "shift_id": np.array([ei]), "mult_alpha": np.array(ma),
              "shift_alpha": np.array(ea)}
    y = gold.leaky(x, zi, zo, arrays)
    prelu = len(alphas) > 1
    if chan_last:
        b, t, dd = shape
        geo = dict(batch=b, chans=1, h=t, w=dd, chan_last=1)
    else:
        b, c, h, w = shape
        geo = dict(batch=b, chans=c, h=h, w=w)
    d = desc(vop=VOp.PRELU if prelu else VOp.LEAKY_RELU, in0=2 * BANK, out=BANK, zx=zi, zo=zo, mi=mi, ei=ei,
             ma=ma[0], ea=ea[0], qparam_ptr=5 if prelu else 0, **geo)
    qp = [(5 + k, ma[k], ea[k]) for k in range(len(alphas))] if prelu else []
    return Op(d, [(2 * BANK, b8(x))], b8(y), x.size, qp)


# ---------------------------------------------------------------- simulation driver


def run_ops(cfg, ops, reset_after=None, idle=0.0, seed=0):
    """Run ``ops`` one after another (loading inputs before each); returns per op
    (output bytes, duration, start cycle, done cycle, counters after the op)."""
    dut = Bench(cfg)
    results = []
    rng = random.Random(seed)

    async def bench(ctx):
        vu, gb = dut.vu, dut.gb
        cycle = 0
        for k, op in enumerate(ops):
            for addr, blob in op.inputs:
                gb.backdoor_write(ctx, addr, blob)
            for row, mm, sh in op.qp:
                ctx.set(dut.qmem.data[row], {"m": mm, "shift": sh})
            # poison the output region: every byte must be written
            gb.backdoor_write(ctx, op.d["out"], bytes([0x5A]) * len(op.expected))
            while idle and rng.random() < idle:
                await ctx.tick()
                cycle += 1
            ctx.set(vu.op.payload, op.d)
            ctx.set(vu.op.valid, 1)
            while True:  # wait for the handshake
                _, _, ready, done = await ctx.tick().sample(vu.op.ready, vu.done)
                cycle += 1
                if ready:
                    break
            start = cycle - 1
            ctx.set(vu.op.valid, 0)
            if reset_after is not None and k == 0:
                await ctx.tick().repeat(reset_after)
                ctx.set(dut.cd.rst, 1)
                await ctx.tick()
                ctx.set(dut.cd.rst, 0)
                cycle += reset_after + 1
                results.append(None)
                continue
            done = 0
            while not done:
                _, _, done, ready = await ctx.tick().sample(vu.done, vu.op.ready)
                cycle += 1
                assert not ready  # busy until the end of the done cycle
            done_cycle = cycle - 1
            out = gb.backdoor_read(ctx, op.d["out"], len(op.expected))
            results.append(dict(out=out, duration=done_cycle - start + 1, start=start, done=done_cycle,
                                vector_ops=ctx.get(vu.vector_ops), reads=ctx.get(gb.gbuf_reads),
                                writes=ctx.get(gb.gbuf_writes), ready_after=ctx.get(vu.op.ready)))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return results


def check(cfg, ops, results):
    wb = cfg.gbuf_word_bytes
    total_ops = total_rd = total_wr = 0
    for op, r in zip(ops, results, strict=True):
        if r is None:
            continue
        exp = np.frombuffer(op.expected, np.int8)
        got = np.frombuffer(r["out"], np.int8)
        bad = np.flatnonzero(exp != got)
        assert bad.size == 0, f"{op.d['vop']}: first mismatch at {bad[0]}: {got[bad[0]]} != {exp[bad[0]]}"
        assert r["duration"] == -(-op.work // cfg.vector_lanes) + cfg.vector_latency  # §10.4
        total_ops += op.work
        total_rd += sum(-(-len(blob) // wb) for _, blob in op.inputs)
        total_wr += -(-len(op.expected) // wb)
        assert (r["vector_ops"], r["reads"], r["writes"]) == (total_ops, total_rd, total_wr)
        assert r["ready_after"] == 1


# ---------------------------------------------------------------- tests


def test_bad_configurations():
    cfg = preset("tiny")
    with pytest.raises(TypeError, match="VectorUnit: cfg must be an aras.config.Config"):
        VectorUnit(cfg=None)
    # The configuration itself rejects what the unit cannot build (docs/architecture.md §3.14).
    with pytest.raises(ArasError, match="field 'vector_lanes' must be <= gbuf_word_bytes=4, got 8"):
        cfg.replace(vector_lanes=8)
    with pytest.raises(ArasError, match="field 'vector_latency' must be >= 2"):
        cfg.replace(vector_latency=1)


def test_duration_formula():
    cfg = preset("tiny")
    assert [VectorUnit.duration(cfg, w) for w in (1, 4, 5, 108)] == [3, 3, 4, 29]


def test_maxpool():
    cfg = preset("tiny")
    rng = np.random.default_rng(1)
    ops = [
        pool_op(rng, "max", (1, 3, 6, 6), (2, 2), (2, 2), (0, 0, 0, 0)),
        pool_op(rng, "max", (2, 2, 5, 7), (3, 3), (2, 2), (1, 1, 1, 1)),  # ResNet-style, odd sizes
        pool_op(rng, "max", (1, 2, 5, 5), (2, 2), (2, 2), (0, 0, 1, 1)),  # ceil mode as extra padding
        pool_op(rng, "max", (1, 1, 4, 6), (1, 3), (1, 1), (0, 1, 0, 1), act=(-20, 90)),  # clamped
    ]
    check(cfg, ops, run_ops(cfg, ops, idle=0.5))


def test_avgpool():
    cfg = preset("tiny")
    rng = np.random.default_rng(2)
    ops = [
        pool_op(rng, "avg", (1, 2, 6, 6), (2, 2), (2, 2), (0, 0, 0, 0)),
        pool_op(rng, "avg", (1, 2, 5, 6), (3, 3), (1, 2), (1, 1, 1, 1), act=(-100, 100)),
        pool_op(rng, "avg", (2, 1, 5, 5), (3, 3), (2, 2), (1, 1, 1, 1), cip=True, zx=-3),
        pool_op(rng, "avg", (1, 1, 3, 7), (3, 2), (1, 3), (0, 1, 2, 0)),
    ]
    check(cfg, ops, run_ops(cfg, ops))


def test_gap_and_rounding():
    cfg = preset("tiny")
    rng = np.random.default_rng(3)
    ops = [gap_op(rng, (2, 3, 3, 3)), gap_op(rng, (1, 5, 1, 2), act=(-30, 30)), gap_op(rng, (1, 2, 4, 5))]
    # half-way cases round away from zero: (−3 −2)/2 = −2.5 -> −3, (3 + 2)/2 -> 3
    x = np.array([[[[-3, -2]], [[3, 2]], [[-1, 0]], [[1, 0]]]], np.int8)
    ops.append(Op(desc(vop=VOp.GAP, in0=0, out=BANK, batch=1, chans=4, h=1, w=2), [(0, b8(x))],
                  b8([-3, 3, -1, 1]), 8))
    check(cfg, ops, run_ops(cfg, ops))


def test_add():
    cfg = preset("tiny")
    rng = np.random.default_rng(4)
    ops = [add_op(rng, (1, 2, 3, 5)), add_op(rng, (2, 1, 3, 3), act=(0, 127), scales=(0.1, 0.1, 0.05), zps=(0, 0, -20)),
           add_op(rng, (1, 1, 1, 7), scales=(0.02, 0.5, 0.3))]
    check(cfg, ops, run_ops(cfg, ops))


def test_clamp_leaky_prelu():
    cfg = preset("tiny")
    rng = np.random.default_rng(5)
    ops = [
        clamp_op(rng, (1, 2, 3, 3), (0, 127)),
        clamp_op(rng, (1, 1, 2, 5), (-10, 60)),
        leaky_op(rng, (1, 2, 3, 3), [0.1]),
        leaky_op(rng, (1, 3, 2, 3), [0.25, -0.5, 1.5]),  # prelu, CHW: channel = c
        leaky_op(rng, (2, 3, 5), [0.1, 0.2, -0.3, 0.01, 2.0], chan_last=True),  # prelu on (T, D): channel = d
    ]
    check(cfg, ops, run_ops(cfg, ops))


def test_tiny_adc_and_longer_latency():
    """Other configs: tiny-adc (same digital widths) and vector_latency 4 (idle tail cycles)."""
    rng = np.random.default_rng(6)
    for cfg in (preset("tiny-adc"), dataclasses.replace(preset("tiny"), vector_latency=4, vector_lanes=2)):
        ops = [pool_op(rng, "max", (1, 2, 4, 4), (2, 2), (2, 2), (0, 0, 0, 0)), add_op(rng, (1, 1, 2, 3))]
        check(cfg, ops, run_ops(cfg, ops))


def random_op(rng):
    kind = rng.choice(["max", "avg", "gap", "add", "clamp", "leaky", "prelu"])
    b, c = int(rng.integers(1, 3)), int(rng.integers(1, 4))
    h, w = int(rng.integers(1, 7)), int(rng.integers(1, 7))
    lo = int(rng.integers(-128, 0))
    act = (lo, int(rng.integers(lo, 128)))
    if kind in ("max", "avg"):
        kh, kw = int(rng.integers(1, min(h, 3) + 1)), int(rng.integers(1, min(w, 3) + 1))
        pads = (int(rng.integers(0, kh // 2 + 1)), int(rng.integers(0, kw // 2 + 1)), int(rng.integers(0, kh)),
                int(rng.integers(0, kw)))
        stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        return pool_op(rng, kind, (b, c, h, w), (kh, kw), stride, pads, cip=bool(rng.integers(2)), act=act,
                       zx=int(rng.integers(-128, 128)))
    if kind == "gap":
        return gap_op(rng, (b, c, h, w), act)
    if kind == "add":
        return add_op(rng, (b, c, h, w), act, scales=tuple(rng.uniform(0.01, 0.2, 3)),
                      zps=tuple(int(z) for z in rng.integers(-128, 128, 3)))
    if kind == "clamp":
        return clamp_op(rng, (b, c, h, w), act)
    alphas = rng.uniform(-1, 2, c if kind == "prelu" else 1)
    if kind == "prelu" and c == 1:
        alphas = np.append(alphas, 0.5)[:2]
        return leaky_op(rng, (b, h, 2), alphas, chan_last=True)
    return leaky_op(rng, (b, c, h, w), alphas, zi=int(rng.integers(-128, 128)), zo=int(rng.integers(-128, 128)))


@pytest.mark.parametrize(("lanes", "word"), [(4, 4), (3, 4), (8, 8), (1, 4)])
def test_random_stress(lanes, word):
    """Random ops of every kind, shapes, kernels, strides, paddings, ranges; lanes ≤ word bytes."""
    cfg = dataclasses.replace(preset("tiny"), vector_lanes=lanes, gbuf_word_bytes=word)
    rng = np.random.default_rng(100 + lanes + word)
    ops = [random_op(rng) for _ in range(24)]
    check(cfg, ops, run_ops(cfg, ops, idle=0.3, seed=lanes))


def test_back_to_back_and_reset_mid_op():
    cfg = preset("tiny")
    rng = np.random.default_rng(7)
    ops = [pool_op(rng, "avg", (1, 2, 6, 6), (3, 3), (1, 1), (1, 1, 1, 1)),  # interrupted by reset
           add_op(rng, (1, 2, 2, 3)), pool_op(rng, "max", (1, 1, 4, 4), (2, 2), (2, 2), (0, 0, 0, 0))]
    res = run_ops(cfg, ops, reset_after=7)
    assert res[0] is None
    check(cfg, ops, res)
    assert res[2]["start"] == res[1]["done"] + 1  # the next op starts in the cycle after done


def test_converts_to_verilog():
    text = verilog.convert(VectorUnit(cfg=preset("tiny")), name="vector_unit", emit_src=False)
    assert "module vector_unit" in text
