# amaranth: UnusedElaboratable=no
"""hw.datapath (InputSum, Decode, Post) against the golden model: sim_models.crossbar (PLANE_WEIGHTS,
mvm with clipping ADCs), sim_models.encoding (encode, column_values, decode) and sim_models.quant
(quantize_multiplier, requantize), on ``tiny`` and ``tiny-adc``; known answers from §4's worked
example; random idle/back-pressure; reset in the middle of a position; Verilog conversion."""

import random

import numpy as np
import pytest
from amaranth import ClockDomain, Module
from amaranth.back import verilog
from amaranth.sim import Simulator

from aras import quant as aquant
from aras.config import preset
from aras.tiling import cols_per_weight
from hw.datapath import Decode, InputSum, Post, max_blocks
from sim_models import quant
from sim_models.crossbar import PLANE_WEIGHTS, mvm
from sim_models.encoding import column_values, decode, encode
from verif.hw.streams import stream_get, stream_put

CONFIGS = ["tiny", "tiny-adc"]


def run(dut, *benches, reset_domain=False):
    """Simulate ``dut`` with a sync clock; benches get (ctx) or (ctx, cd) when reset_domain."""
    top = Module()
    top.domains.sync = cd = ClockDomain()
    top.submodules.dut = dut
    sim = Simulator(top)
    sim.add_clock(1e-8)
    for b in benches:
        sim.add_testbench(_bind(b, cd) if reset_domain else b)
    sim.run()


def _bind(bench, cd):
    async def bound(ctx):
        await bench(ctx, cd)
    return bound


def planes_of(x, rows):
    """int8 vector (R_used,) -> 8 plane payloads (bit i of plane b = bit b of x_i)."""
    u = np.asarray(x, np.int64) & 0xFF
    out = []
    for b in range(8):
        bits = sum(int((u[i] >> b) & 1) << i for i in range(len(u)))
        out.append({"bits": bits, "plane": b, "first_plane": int(b == 0), "last_plane": int(b == 7)})
    return out


def golden_block_sums(x, pack_g, pack_k):
    """Σx per block via the golden rule: popcounts per plane weighted by PLANE_WEIGHTS."""
    u = np.asarray(x, np.int64) & 0xFF
    bits = (u[None, :] >> np.arange(8)[:, None]) & 1  # (8, R)
    sums = []
    for t in range(pack_g):
        pop = bits[:, t * pack_k:(t + 1) * pack_k].sum(axis=1)
        sums.append(int(PLANE_WEIGHTS @ pop))
    return sums


# ---------------------------------------------------------------- construction


def test_bad_arguments():
    with pytest.raises(TypeError, match="InputSum: cfg must be an aras.config.Config"):
        InputSum(cfg=None)
    with pytest.raises(TypeError, match="Decode: cfg"):
        Decode(cfg="tiny")
    with pytest.raises(ValueError, match="Post: lanes must be an integer >= 1"):
        Post(cfg=preset("tiny"), lanes=0)


# ---------------------------------------------------------------- InputSum


@pytest.mark.parametrize("name", CONFIGS)
def test_input_sum_random_packings(name):
    cfg = preset(name)
    rng = np.random.default_rng(10)
    dut = InputSum(cfg=cfg)
    cases = []
    for _ in range(24):
        pack_k = int(rng.integers(1, cfg.xbar_rows + 1))
        gmax = min(cfg.xbar_rows // pack_k, max_blocks(cfg))
        pack_g = int(rng.integers(1, gmax + 1))
        r_used = pack_g * pack_k
        x = rng.integers(-128, 128, r_used)
        x[: min(2, r_used)] = [-128, 127][: min(2, r_used)]  # extremes
        cases.append((r_used, pack_g, pack_k, x))
    got = []

    async def producer(ctx):
        prng = random.Random(3)
        for k, (r_used, pack_g, pack_k, x) in enumerate(cases):
            ctx.set(dut.r_used, r_used)
            ctx.set(dut.pack_g, pack_g)
            ctx.set(dut.pack_k, pack_k)
            for p in planes_of(x, cfg.xbar_rows):
                # rows >= r_used carry garbage: they must be ignored
                p = dict(p, bits=p["bits"] | (prng.getrandbits(cfg.xbar_rows) & ~((1 << r_used) - 1)))
                await stream_put(ctx, dut.plane, p, idle=0.3, rng=prng)
            # configuration must stay until the result is taken
            while len(got) <= k:
                await ctx.tick()

    async def consumer(ctx):
        crng = random.Random(4)
        for _ in cases:
            got.append(list((await stream_get(ctx, dut.sums, stall=0.5, rng=crng)).sx))

    run(dut, producer, consumer)
    for (_, pack_g, pack_k, x), g in zip(cases, got, strict=True):
        exp = golden_block_sums(x, pack_g, pack_k)
        assert g[:pack_g] == exp
        assert all(v == 0 for v in g[pack_g:])
        assert exp == [int(x[t * pack_k:(t + 1) * pack_k].sum()) for t in range(pack_g)]  # = exact Σx


def test_input_sum_counter_and_reset_mid_position():
    cfg = preset("tiny")
    dut = InputSum(cfg=cfg)
    x = np.array([3, -2, 0, 1] + [-128] * 12)  # §4 worked example rows, then extremes
    got = {}

    async def bench(ctx, cd):
        ctx.set(dut.r_used, 16)
        ctx.set(dut.pack_g, 1)
        ctx.set(dut.pack_k, 16)
        ctx.set(dut.sums.ready, 1)
        pl = planes_of([5] * 16, 16)
        for p in pl[:5]:  # interrupted position
            await stream_put(ctx, dut.plane, p)
        ctx.set(cd.rst, 1)
        await ctx.tick()
        ctx.set(cd.rst, 0)
        assert ctx.get(dut.input_sum_ops) == 0 and not ctx.get(dut.sums.valid)
        for p in planes_of(x, 16):
            await stream_put(ctx, dut.plane, p)
        got["sx"] = ctx.get(dut.sums.payload.sx[0])
        got["valid"] = ctx.get(dut.sums.valid)
        got["ops"] = ctx.get(dut.input_sum_ops)

    run(dut, bench, reset_domain=True)
    assert got == {"sx": 2 - 128 * 12, "valid": 1, "ops": 8}


# ---------------------------------------------------------------- Decode


def packed_tile(cfg, rng, family, pack_g, pack_k, pack_n, flags):
    """Block-diagonal tile: weights (G·K_g, G·N_g), off-block cells at level 0 (§5.1)."""
    cpw = cols_per_weight(family, cfg.slices)
    w = np.zeros((pack_g * pack_k, pack_g * pack_n), np.int64)
    levels = np.zeros((pack_g * pack_k, pack_g * pack_n * cpw), np.int64)
    for t in range(pack_g):
        wt = rng.integers(-127, 128, (pack_k, pack_n))
        w[t * pack_k:(t + 1) * pack_k, t * pack_n:(t + 1) * pack_n] = wt
        fl = flags[t * pack_n:(t + 1) * pack_n]
        levels[t * pack_k:(t + 1) * pack_k, t * pack_n * cpw:(t + 1) * pack_n * cpw] = encode(wt, family, fl,
                                                                                             cfg.cell_bits)
    return w, levels


def tile_cases(cfg, rng, count):
    cases = []
    for k in range(count):
        family = ("offset", "signmag")[k % 2]
        cw = cfg.xbar_cols // cols_per_weight(family, cfg.slices)
        if family == "offset" and k % 4 == 0:
            pack_k = int(rng.integers(1, 6))
            gmax = min(cfg.xbar_rows // pack_k, cw)
            pack_g = int(rng.integers(1, gmax + 1))
            pack_n = int(rng.integers(1, cw // pack_g + 1))
        else:
            pack_g, pack_k, pack_n = 1, int(rng.integers(1, cfg.xbar_rows + 1)), int(rng.integers(1, cw + 1))
        wcols = pack_g * pack_n
        flags = rng.random(wcols) < 0.5
        w, levels = packed_tile(cfg, rng, family, pack_g, pack_k, pack_n, flags)
        x = rng.integers(-128, 128, pack_g * pack_k)
        if k % 3 == 0:
            x[:] = rng.choice([-128, 127, -1], len(x))  # drive the analog sums hard (clips on tiny-adc)
        cases.append(dict(family=family, pack_g=pack_g, pack_k=pack_k, pack_n=pack_n, flags=flags, w=w,
                          levels=levels, x=x))
    return cases


def golden_decode(cfg, c):
    """Golden decode of one tile: T from the clipping bit-serial MVM, per-block Σx (offset)."""
    t = mvm(c["x"][None, :], c["levels"], cfg.adc_max, force_bit_serial=True)[0]
    vals = column_values(t[None, :], c["family"], cfg.cell_bits)
    if c["family"] == "signmag":
        return t, decode(vals, np.zeros(1), "signmag", c["flags"])[0]
    out = []
    for b in range(c["pack_g"]):
        cols = slice(b * c["pack_n"], (b + 1) * c["pack_n"])
        sx = np.array([c["x"][b * c["pack_k"]:(b + 1) * c["pack_k"]].sum()])
        out.append(decode(vals[:, cols], sx, "offset", c["flags"][cols])[0])
    return t, np.concatenate(out)


@pytest.mark.parametrize("name", CONFIGS)
def test_decode_random_tiles(name):
    cfg = preset(name)
    rng = np.random.default_rng(20 if name == "tiny" else 21)
    cases = tile_cases(cfg, rng, 24)
    dut = Decode(cfg=cfg)
    got = []
    clipped = 0

    async def producer(ctx):
        prng = random.Random(1)
        for k, c in enumerate(cases):
            t, _ = golden_decode(cfg, c)
            sx = golden_block_sums(c["x"], c["pack_g"], c["pack_k"])
            ctx.set(dut.family, int(c["family"] == "signmag"))
            ctx.set(dut.flags, sum(int(f) << j for j, f in enumerate(c["flags"])))
            ctx.set(dut.pack_n, c["pack_n"])
            tt = list(t) + [0] * (cfg.xbar_cols - len(t))
            sxx = sx + [0] * (max_blocks(cfg) - len(sx))
            await stream_put(ctx, dut.tile, {"t": tt, "sx": sxx}, idle=0.3, rng=prng)
            while len(got) <= k:
                await ctx.tick()

    async def consumer(ctx):
        crng = random.Random(2)
        for _ in cases:
            got.append(list((await stream_get(ctx, dut.psum, stall=0.4, rng=crng)).v))

    run(dut, producer, consumer)
    for c, g in zip(cases, got, strict=True):
        _, exp = golden_decode(cfg, c)
        n = len(exp)
        assert g[:n] == exp.tolist()
        assert all(v == 0 for v in g[n:]) or c["family"] == "offset"
        exact = c["x"] @ c["w"]
        clipped += int(not np.array_equal(exp, exact))
        if cfg.adc_exact:
            assert exp.tolist() == exact.tolist()
    if not cfg.adc_exact:
        assert clipped > 0  # the clipping path was exercised


def test_decode_worked_example():
    """§4: w = [5, −3, 100, −127], x = [3, −2, 0, 1] decodes to −106 under all four encodings."""
    cfg = preset("tiny")
    w = np.array([[5], [-3], [100], [-127]])
    x = np.array([3, -2, 0, 1])
    dut = Decode(cfg=cfg)
    got = []

    async def bench(ctx):
        ctx.set(dut.psum.ready, 1)
        ctx.set(dut.pack_n, 1)
        for family in ("offset", "signmag"):
            for flag in (0, 1):
                lv = encode(w, family, np.array([bool(flag)]), cfg.cell_bits)
                t = list(x @ lv) + [0] * (cfg.xbar_cols - lv.shape[1])
                ctx.set(dut.family, int(family == "signmag"))
                ctx.set(dut.flags, flag)
                await stream_put(ctx, dut.tile, {"t": t, "sx": [int(x.sum())] + [0] * (max_blocks(cfg) - 1)})
                got.append(ctx.get(dut.psum.payload.v[0]))

    run(dut, bench)
    assert got == [-106] * 4


# ---------------------------------------------------------------- Post


def random_qparams(rng, n, neg):
    recs = []
    for _ in range(n):
        real = float(10.0 ** rng.uniform(-4, 0.5))
        mm, sh = aquant.quantize_multiplier(real)
        alpha = float(rng.choice([0.1, -0.25, 0.01, 1.5]))
        mn, sn = aquant.quantize_multiplier(alpha * real) if neg else (0, 0)
        recs.append({"bias": int(rng.integers(-5000, 5000)), "m": mm, "shift": sh, "m_neg": mn, "shift_neg": sn})
    return recs


@pytest.mark.parametrize("neg", [False, True])
def test_post_random(neg):
    cfg = preset("tiny")
    lanes = 3
    rng = np.random.default_rng(30 + neg)
    dut = Post(cfg=cfg, lanes=lanes)
    zo = int(rng.integers(-20, 20))
    act_min, act_max = (-128, 127) if neg else (max(-128, zo), 100)
    groups = []
    for g in range(20):
        nparts = int(rng.integers(1, 4))
        parts = rng.integers(-40000, 40000, (nparts, lanes))
        if g == 0:
            parts[0] = [1 << 20, -(1 << 20), 0]  # saturating outputs
        spill = g % 5 == 4
        groups.append((parts, random_qparams(rng, lanes, neg), spill, int(rng.integers(1, lanes + 1))))
    got = []

    async def producer(ctx):
        prng = random.Random(7)
        ctx.set(dut.zo, zo)
        ctx.set(dut.act_min, act_min)
        ctx.set(dut.act_max, act_max)
        ctx.set(dut.neg_en, int(neg))
        for parts, qp, spill, n in groups:
            for k, row in enumerate(parts):
                last = k == len(parts) - 1
                await stream_put(ctx, dut.part, {"psum": [int(v) for v in row], "qp": qp, "first": int(k == 0),
                                                 "last": int(last), "spill": int(spill), "n": n},
                                 idle=0.3, rng=prng)

    async def consumer(ctx):
        crng = random.Random(8)
        for _ in groups:
            o = await stream_get(ctx, dut.out, stall=0.5, rng=crng)
            got.append((list(o.q), list(o.acc), o.spill, o.n))
        await ctx.tick()
        got.append(ctx.get(dut.post_ops))

    run(dut, producer, consumer)
    ops = got.pop()
    for (parts, qp, spill, n), (q, acc, sp, gn) in zip(groups, got, strict=True):
        total = parts.sum(axis=0)
        assert (sp, gn) == (int(spill), n)
        if spill:
            assert acc == total.tolist()
            continue
        bias = np.array([r["bias"] for r in qp])
        args = [np.array([r[k] for r in qp]) for k in ("m", "shift")]
        negs = [np.array([r[k] for r in qp]) for k in ("m_neg", "shift_neg")] if neg else [None, None]
        exp = quant.requantize(total + bias, *args, zo, act_min, act_max, *negs)
        assert q == exp.tolist()
        assert acc == (total + bias).tolist()
    assert ops == sum(n for _, _, spill, n in groups if not spill)


def test_post_worked_example():
    """§6.4: acc 1000, M = 1690499128, shift −6 -> 12 (+ zo)."""
    cfg = preset("tiny")
    dut = Post(cfg=cfg, lanes=1)
    got = []

    async def bench(ctx):
        ctx.set(dut.zo, -5)
        ctx.set(dut.act_min, -128)
        ctx.set(dut.act_max, 127)
        ctx.set(dut.out.ready, 1)
        qp = [{"bias": 100, "m": 1690499128, "shift": -6, "m_neg": 0, "shift_neg": 0}]
        await stream_put(ctx, dut.part, {"psum": [600], "qp": qp, "first": 1, "last": 0, "spill": 0, "n": 1})
        await stream_put(ctx, dut.part, {"psum": [300], "qp": qp, "first": 0, "last": 1, "spill": 0, "n": 1})
        got.append((ctx.get(dut.out.valid), ctx.get(dut.out.payload.q[0]), ctx.get(dut.out.payload.acc[0])))

    run(dut, bench)
    assert got == [(1, 12 - 5, 1000)]


def test_post_reset_mid_accumulation():
    cfg = preset("tiny")
    dut = Post(cfg=cfg, lanes=2)
    unit = [{"bias": 0, "m": 1 << 30, "shift": 1, "m_neg": 0, "shift_neg": 0}] * 2  # QM(1.0): identity
    got = {}

    async def bench(ctx, cd):
        ctx.set(dut.act_min, -128)
        ctx.set(dut.act_max, 127)
        await stream_put(ctx, dut.part, {"psum": [1000, 1000], "qp": unit, "first": 1, "last": 0, "spill": 0, "n": 2})
        ctx.set(cd.rst, 1)
        await ctx.tick()
        ctx.set(cd.rst, 0)
        got["after_reset"] = (ctx.get(dut.out.valid), ctx.get(dut.post_ops))
        ctx.set(dut.out.ready, 1)
        await stream_put(ctx, dut.part, {"psum": [5, -5], "qp": unit, "first": 1, "last": 1, "spill": 0, "n": 2})
        got["out"] = (ctx.get(dut.out.valid), list(ctx.get(dut.out.payload.q)), ctx.get(dut.post_ops))

    run(dut, bench, reset_domain=True)
    assert got == {"after_reset": (0, 0), "out": (1, [5, -5], 2)}


# ---------------------------------------------------------------- chain


@pytest.mark.parametrize("name", CONFIGS)
def test_chain_against_functional_rule(name):
    """x -> InputSum (RTL) + golden T -> Decode (RTL) -> Post (RTL) for two row chunks of one output
    block = requantize(Σ_chunks decode + bias_hw) of the golden model."""
    cfg = preset(name)
    rng = np.random.default_rng(40)
    cw = cfg.weight_cols
    k_total = cfg.xbar_rows + 5  # two row chunks
    w = rng.integers(-127, 128, (k_total, cw))
    flags = [rng.random(cw) < 0.5 for _ in range(2)]
    chunks = [slice(0, cfg.xbar_rows), slice(cfg.xbar_rows, k_total)]
    lv = [encode(w[c], "offset", f, cfg.cell_bits) for c, f in zip(chunks, flags, strict=True)]
    positions = [rng.integers(-128, 128, k_total) for _ in range(3)]
    positions.append(np.full(k_total, 127))
    qp = random_qparams(rng, cw, False)
    zo = 3
    isum, dec, post = InputSum(cfg=cfg), Decode(cfg=cfg), Post(cfg=cfg)
    top = Module()
    top.submodules += [isum, dec, post]
    got = []

    async def bench(ctx):
        for s in (dec.psum, post.out, isum.sums):
            ctx.set(s.ready, 1)
        ctx.set(dec.pack_n, cw)
        ctx.set(isum.pack_g, 1)
        ctx.set(post.zo, zo)
        ctx.set(post.act_min, -128)
        ctx.set(post.act_max, 127)
        for x in positions:
            for ci, (c, f, levels) in enumerate(zip(chunks, flags, lv, strict=True)):
                xs = x[c]
                ctx.set(isum.r_used, len(xs))
                ctx.set(isum.pack_k, len(xs))
                for p in planes_of(xs, cfg.xbar_rows):
                    await stream_put(ctx, isum.plane, p)
                sx = list(ctx.get(isum.sums.payload.sx))
                t = list(mvm(xs[None, :], levels, cfg.adc_max, force_bit_serial=True)[0])
                ctx.set(dec.flags, sum(int(v) << j for j, v in enumerate(f)))
                await stream_put(ctx, dec.tile, {"t": t + [0] * (cfg.xbar_cols - len(t)), "sx": sx})
                v = list(ctx.get(dec.psum.payload.v))
                await stream_put(ctx, post.part, {"psum": v, "qp": qp, "first": int(ci == 0), "last": int(ci == 1),
                                                  "spill": 0, "n": cw})
            got.append(list(ctx.get(post.out.payload.q)))

    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    bias = np.array([r["bias"] for r in qp])
    for x, g in zip(positions, got, strict=True):
        acc = bias.copy()
        for c, f, levels in zip(chunks, flags, lv, strict=True):
            t = mvm(x[c][None, :], levels, cfg.adc_max)
            acc = acc + decode(column_values(t, "offset", cfg.cell_bits), x[c].sum()[None], "offset", f)[0]
        exp = quant.requantize(acc, np.array([r["m"] for r in qp]), np.array([r["shift"] for r in qp]), zo,
                               -128, 127)
        assert g == exp.tolist()
        if cfg.adc_exact:
            exact = quant.requantize(x @ w + bias, np.array([r["m"] for r in qp]),
                                     np.array([r["shift"] for r in qp]), zo, -128, 127)
            assert g == exact.tolist()


# ---------------------------------------------------------------- Verilog


@pytest.mark.parametrize("cls", [InputSum, Decode, Post])
def test_converts_to_verilog(cls):
    text = verilog.convert(cls(cfg=preset("tiny-adc")), name=cls.__name__.lower(), emit_src=False)
    assert f"module {cls.__name__.lower()}" in text
