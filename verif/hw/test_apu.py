# amaranth: UnusedElaboratable=no
"""Module tests of ``hw/apu.py`` and ``hw/adc.py`` (docs/architecture.md §3.2, §3.3, §5.3, §10.3, §11)
in Amaranth's simulator.

Tiles are encoded with the golden encoder (``sim_models.encoding.encode``), int8 inputs are fed
bit-plane by bit-plane, and every T_j must equal ``sim_models.crossbar.mvm(..., force_bit_serial=True)``
(exact ADC on ``tiny``, clipping on ``tiny-adc``); on ``tiny`` the decoded values equal ``x @ w``.
Timing of back-to-back items is checked cycle by cycle against §10.3; random idle/back-pressure may
change timing only; a reset in the middle of an item sequence is followed by a correct run.
"""

from __future__ import annotations

import gc
import random
import sys

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import ClockDomain, Module, Signal
from amaranth.sim import Simulator

from aras.config import preset
from aras.tiling import cols_per_weight
from hw.adc import Adc
from hw.apu import Apu, item_layout, tsum_width
from sim_models.crossbar import PLANE_WEIGHTS, mvm
from sim_models.encoding import column_values, decode, encode
from verif.hw.streams import stream_get, stream_put

CONFIGS = ["tiny", "tiny-adc"]
WATCHDOG_CYCLES = 20_000
CLOCK_PERIOD = 1e-8


# ---------------------------------------------------------------- harness


class Tile:
    """One crossbar's tile: cell levels (R_used, C_phys) and, if encoded, its int8 weights and encoding."""

    def __init__(self, levels, w=None, family=None, flags=None):
        self.levels = np.asarray(levels, dtype=np.int64)
        self.w, self.family, self.flags = w, family, flags
        self.r_used, self.c_phys = self.levels.shape

    @classmethod
    def encoded(cls, w, family, flags, cell_bits):
        return cls(encode(w, family, flags, cell_bits), w, family, flags)


def random_tile(cfg, rng, family=None):
    family = family or ("offset", "signmag")[int(rng.integers(2))]
    cw = cfg.xbar_cols // cols_per_weight(family, cfg.slices)
    r_used = int(rng.integers(1, cfg.xbar_rows + 1))
    wcols = int(rng.integers(1, cw + 1))
    w = rng.integers(-127, 128, (r_used, wcols))
    return Tile.encoded(w, family, rng.random(wcols) < 0.5, cfg.cell_bits)


def plane_bits(x_row, b, rows, rng=None):
    """Bit b of every int8 of ``x_row`` packed as a row mask; rows past len(x_row) get garbage if rng."""
    v = 0
    for i, xv in enumerate(x_row):
        v |= ((int(xv) & 0xFF) >> b & 1) << i
    if rng is not None:  # unused rows must be ignored by the APU (DACs off)
        v |= int(rng.integers(0, 1 << rows)) & ~((1 << len(x_row)) - 1)
    return v


def position_items(cfg, tiles, xs, masks, rng=None):
    """Items for positions p (8 planes each, LSB first); xs[x] is (P, R_used of tile x)."""
    nx, rows = cfg.xbars_per_apu, cfg.xbar_rows
    items = []
    for p, xmask in enumerate(masks):
        for b in range(8):
            items.append({
                "xmask": xmask, "plane": b, "first_plane": int(b == 0), "last_plane": int(b == 7),
                "r_used": [tiles[x].r_used for x in range(nx)],
                "c_phys": [tiles[x].c_phys for x in range(nx)],
                "bits": [plane_bits(xs[x][p], b, rows, rng) for x in range(nx)],
            })
    return items


def expected_tsums(cfg, tiles, xs, masks):
    """Golden T per position: (P, nx, cols); columns >= C_phys and stopped crossbars read 0."""
    nx, cols = cfg.xbars_per_apu, cfg.xbar_cols
    gold = [mvm(xs[x], tiles[x].levels, cfg.adc_max, force_bit_serial=True) for x in range(nx)]
    out = np.zeros((len(masks), nx, cols), dtype=np.int64)
    for p, xmask in enumerate(masks):
        for x in range(nx):
            if xmask >> x & 1:
                out[p, x, :tiles[x].c_phys] = gold[x][p]
    return out


def expected_counters(tiles, masks):
    run = [[x for x in range(len(tiles)) if xm >> x & 1] for xm in masks]
    return {
        "xbar_reads": 8 * sum(len(r) for r in run),
        "dac_activations": 8 * sum(tiles[x].r_used for r in run for x in r),
        "adc_conversions": 8 * sum(tiles[x].c_phys for r in run for x in r),
    }


def counters(ctx, dut):
    return {k: ctx.get(getattr(dut, k)) for k in ("xbar_reads", "dac_activations", "adc_conversions")}


def tsum_array(cfg, payload):
    return np.array([[payload.t[x][j] for j in range(cfg.xbar_cols)] for x in range(cfg.xbars_per_apu)])


class Bench:
    """The APU under an explicit sync domain (so tests can pulse reset) plus a free-running cycle counter."""

    def __init__(self, cfg, **kw):
        self.cfg = cfg
        self.dut = Apu(cfg=cfg, **kw)
        top = Module()
        top.domains.sync = cd = ClockDomain("sync")
        self.rst = cd.rst
        self.cycle = Signal(32, reset_less=True)  # value in cycle k is k
        top.d.sync += self.cycle.eq(self.cycle + 1)
        top.submodules.dut = self.dut
        self.sim = Simulator(top)
        self.sim.add_clock(CLOCK_PERIOD)

        async def watchdog(ctx):  # a lost or duplicated result must fail, not hang
            await ctx.delay(WATCHDOG_CYCLES * CLOCK_PERIOD)
            raise AssertionError(f"simulation still running after {WATCHDOG_CYCLES} cycles")

        self.sim.add_testbench(watchdog, background=True)

    async def load(self, ctx, tiles, rng):
        """Fill every crossbar with random garbage, then write each tile (mask: its C_phys columns)."""
        cfg, dut = self.cfg, self.dut
        for x, tile in enumerate(tiles):
            wr = dut.wr[x]
            ctx.set(wr.en, 1)
            for r in range(cfg.xbar_rows):
                ctx.set(wr.row, r)
                ctx.set(wr.mask, (1 << cfg.xbar_cols) - 1)
                ctx.set(wr.levels, [int(v) for v in rng.integers(0, cfg.levels, cfg.xbar_cols)])
                await ctx.tick()
                if r < tile.r_used:
                    ctx.set(wr.mask, (1 << tile.c_phys) - 1)
                    ctx.set(wr.levels, [int(v) for v in tile.levels[r]] + [0] * (cfg.xbar_cols - tile.c_phys))
                    await ctx.tick()
            ctx.set(wr.en, 0)

    async def back_to_back(self, ctx, items, n_out, extra=3, stop_after=None):
        """Offer ``items`` back to back with tsum always ready. Returns (handshake cycles, [(cycle, T)])."""
        dut = self.dut
        acc, outs, i = [], [], 0
        ctx.set(dut.tsum.ready, 1)
        idle = 0
        while idle < extra:
            if i < len(items):
                ctx.set(dut.item.payload, items[i])
                ctx.set(dut.item.valid, 1)
            else:
                ctx.set(dut.item.valid, 0)
            _, _, ready, tv, tp, cyc = await ctx.tick().sample(dut.item.ready, dut.tsum.valid, dut.tsum.payload,
                                                               self.cycle)
            if i < len(items) and ready:
                acc.append(cyc)
                i += 1
            if tv:
                outs.append((cyc, tsum_array(self.cfg, tp)))
            if stop_after is not None and len(acc) == stop_after:
                ctx.set(dut.item.valid, 0)
                return acc, outs
            if i == len(items) and len(outs) >= n_out:
                idle += 1
        ctx.set(dut.item.valid, 0)
        return acc, outs

    def run(self, *benches):
        for bench in benches:
            self.sim.add_testbench(bench)
        try:
            self.sim.run()
        except BaseException:
            # Finalise the suspended testbench coroutines now: left to the garbage collector they
            # are closed while pytest renders the traceback and crash it (CPython 3.11).
            self.sim, hook = None, sys.unraisablehook
            sys.unraisablehook = lambda _: None  # their "aclose(): already running" noise
            try:
                gc.collect()
            finally:
                sys.unraisablehook = hook
            raise


# ---------------------------------------------------------------- ADC


@pytest.mark.parametrize("name, value, code", [
    ("tiny", 0, 0), ("tiny", 1, 1), ("tiny", 48, 48), ("tiny", 63, 63),  # exact: code = value
    ("tiny-adc", 0, 0), ("tiny-adc", 14, 14), ("tiny-adc", 15, 15),
    ("tiny-adc", 16, 15), ("tiny-adc", 48, 15), ("tiny-adc", 63, 15),  # clips at 2^4 - 1
])
def test_adc_known_answers(name, value, code):
    dut = Adc(cfg=preset(name))
    sim = Simulator(dut)

    async def bench(ctx):
        ctx.set(dut.value, value)
        assert ctx.get(dut.code) == code

    sim.add_testbench(bench)
    sim.run()


def test_adc_verilog_and_args():
    with pytest.raises(TypeError, match="cfg must be"):
        Adc(cfg=None)
    text = verilog.convert(Adc(cfg=preset("tiny-adc")), name="adc", emit_src=False)
    assert "output [3:0] code" in text and "input [5:0] value" in text


# ---------------------------------------------------------------- construction


def test_parameters_and_layouts():
    cfg = preset("tiny")
    dut = Apu(cfg=cfg)
    assert (dut.t_mvm, dut.period, dut.latency) == (2, 4, 6)  # §10.6: T_mvm = 2, c = 4, m = 4
    assert Apu(cfg=preset("paper")).period == 10
    assert tsum_width(cfg) == 15 and tsum_width(preset("tiny-adc")) == 13  # adc_bits + 9
    assert item_layout(cfg).size == 2 + 3 + 1 + 1 + 2 * 5 + 2 * 5 + 2 * 16
    with pytest.raises(TypeError, match="cfg must be"):
        Apu(cfg={"name": "tiny"})


# ---------------------------------------------------------------- simulation


# Every row at one level (column sum 16·level per set bit-plane), all 16 rows driven with the same x.
CORNERS = [
    # x,   level, T on tiny,  T on tiny-adc (each plane's sum clips at 15)
    (0,    3,     0,          0),
    (-1,   3,     -48,        15 * 127 - 128 * 15),
    (127,  3,     48 * 127,   15 * 127),
    (-128, 3,     -128 * 48,  -128 * 15),
    (1,    1,     16,         15),
    (-128, 0,     0,          0),
]


@pytest.mark.parametrize("name", CONFIGS)
def test_known_answers_corners(name):
    cfg = preset(name)
    tb = Bench(cfg)

    async def bench(ctx):
        for x, level, t_tiny, t_adc in CORNERS:
            tile = Tile(np.full((16, 16), level))
            xs = [np.full((1, 16), x)] * 2
            await tb.load(ctx, [tile, tile], np.random.default_rng(0))
            _, outs = await tb.back_to_back(ctx, position_items(cfg, [tile, tile], xs, [0b11]), 1)
            expect = t_tiny if name == "tiny" else t_adc
            assert (outs[0][1] == expect).all(), (x, level)
            assert (outs[0][1] == expected_tsums(cfg, [tile, tile], xs, [0b11])[0]).all()

    tb.run(bench)


@pytest.mark.parametrize("name", CONFIGS)
def test_worked_example(name):
    """§4 worked example: w = [5, -3, 100, -127], x = [3, -2, 0, 1] -> T = (2, -3, -6, 4), Σx·w = -106."""
    cfg = preset(name)
    w = np.array([[5], [-3], [100], [-127]])
    tiles = [Tile.encoded(w, "offset", np.array([False]), cfg.cell_bits),
             Tile.encoded(w, "signmag", np.array([True]), cfg.cell_bits)]
    xs = [np.array([[3, -2, 0, 1]])] * 2
    tb = Bench(cfg)

    async def bench(ctx):
        await tb.load(ctx, tiles, np.random.default_rng(1))
        _, outs = await tb.back_to_back(ctx, position_items(cfg, tiles, xs, [0b11]), 1)
        t = outs[0][1]
        assert list(t[0, :4]) == [2, -3, -6, 4] and (t[0, 4:] == 0).all()
        assert column_values(t[0, :4], "offset", cfg.cell_bits) == 150
        assert decode(column_values(t[None, 1, :8], "signmag", cfg.cell_bits), np.array([2]), "signmag",
                      np.array([True]))[0, 0] == -106

    tb.run(bench)


TIMING = [
    ("tiny", {}),                                      # T = 2 < c = 4: m = 4 (§10.6)
    ("tiny", {"t_read_mvm_ns": 1.0}),                  # T = 1: read in the handshake cycle only
    ("tiny", {"t_read_mvm_ns": 6.0}),                  # T = 6 > c: m = T
    ("tiny", {"t_read_mvm_ns": 1.0, "cols_per_adc": 1}),  # m = 1: one item per cycle
    ("tiny-adc", {"cols_per_adc": 16}),                # one ADC per crossbar: m = 16
]


@pytest.mark.parametrize("name, over", TIMING)
def test_back_to_back_timing_and_results(name, over):
    cfg = preset(name).replace(**over) if over else preset(name)
    rng = np.random.default_rng(11)
    nx = cfg.xbars_per_apu
    n_pos = 5
    tiles = [random_tile(cfg, rng) for _ in range(nx)]
    xs = [rng.integers(-128, 128, (n_pos, t.r_used)) for t in tiles]
    masks = [int(rng.integers(1, 1 << nx)) for _ in range(n_pos - 1)] + [0]  # last position: nothing runs
    items = position_items(cfg, tiles, xs, masks, rng)
    tb = Bench(cfg)
    t, c = tb.dut.t_mvm, cfg.cols_per_adc
    m = max(t, c)

    async def bench(ctx):
        await tb.load(ctx, tiles, rng)
        s = ctx.get(tb.cycle)
        assert counters(ctx, tb.dut) == dict.fromkeys(("xbar_reads", "dac_activations", "adc_conversions"), 0)
        acc, outs = await tb.back_to_back(ctx, items, n_pos)
        # §10.3: item i reads in [s + i·m, s + i·m + T); its window ends at s + i·m + T + c.
        assert acc == [s + i * m for i in range(len(items))]
        assert [cyc for cyc, _ in outs] == [s + (8 * p + 7) * m + t + c for p in range(n_pos)]
        expect = expected_tsums(cfg, tiles, xs, masks)
        for p, (_, got) in enumerate(outs):
            np.testing.assert_array_equal(got, expect[p], err_msg=f"position {p}")
        assert counters(ctx, tb.dut) == expected_counters(tiles, masks)
        assert not ctx.get(tb.dut.busy)

    tb.run(bench)


def _random_round(cfg, rng, rnd, n_pos=4):
    """One run: fresh random tiles (families alternate per crossbar and round), random masks,
    random idle on ``item`` and back-pressure on ``tsum``; checks T and counters."""
    nx = cfg.xbars_per_apu
    tiles = [random_tile(cfg, rng, family=("offset", "signmag")[(rnd + x) % 2]) for x in range(nx)]
    xs = [rng.integers(-128, 128, (n_pos, t.r_used)) for t in tiles]
    masks = [int(rng.integers(0, 1 << nx)) for _ in range(n_pos)]
    items = position_items(cfg, tiles, xs, masks, rng)
    expect = expected_tsums(cfg, tiles, xs, masks)
    if cfg.adc_bits >= cfg.adc_exact_bits:  # exact ADC: the decoded values are the exact products
        for x, tile in enumerate(tiles):
            run = np.array([xm >> x & 1 for xm in masks], bool)  # positions where crossbar x runs
            vals = column_values(expect[run, x, :tile.c_phys], tile.family, cfg.cell_bits)
            dec = decode(vals, xs[x][run].sum(axis=1), tile.family, tile.flags)
            np.testing.assert_array_equal(dec, xs[x][run] @ tile.w)
    tb = Bench(cfg)
    got, cnt = [], {}

    async def producer(ctx):
        await tb.load(ctx, tiles, rng)
        prng = random.Random(5 + rnd)
        for it in items:
            await stream_put(ctx, tb.dut.item, it, idle=0.3, rng=prng)
        while ctx.get(tb.dut.busy):
            await ctx.tick()
        cnt.update(counters(ctx, tb.dut))

    async def consumer(ctx):
        crng = random.Random(9 + rnd)
        for _ in range(n_pos):
            got.append(tsum_array(cfg, await stream_get(ctx, tb.dut.tsum, stall=0.6, rng=crng)))

    tb.run(producer, consumer)
    np.testing.assert_array_equal(np.array(got), expect)
    assert cnt == expected_counters(tiles, masks)


@pytest.mark.parametrize("name", CONFIGS)
def test_random_tiles_decode_and_backpressure(name):
    """Both families, random flags, random R_used / C_phys; random idle and back-pressure on the streams."""
    cfg = preset(name)
    rng = np.random.default_rng(21 if name == "tiny" else 22)
    for rnd in range(3):
        _random_round(cfg, rng, rnd)


@pytest.mark.parametrize("name", CONFIGS)
def test_random_flags_and_stalls(name):
    """Arbitrary plane/first/last sequences (a result on almost every item) with a slow consumer:
    the pipeline must freeze, never drop or duplicate a result; T follows the §3.3 recurrence."""
    cfg = preset(name)
    rng = np.random.default_rng(31)
    nx, rows, cols = cfg.xbars_per_apu, cfg.xbar_rows, cfg.xbar_cols
    tiles = [random_tile(cfg, rng) for _ in range(nx)]
    tw = tsum_width(cfg)
    items, expect = [], []
    acc = np.zeros((nx, cols), dtype=np.int64)
    for _ in range(40):
        xmask = int(rng.integers(0, 1 << nx))
        b = int(rng.integers(8))
        first, last = int(rng.random() < 0.3), int(rng.random() < 0.6)
        bits = [int(rng.integers(0, 1 << rows)) for _ in range(nx)]
        items.append({"xmask": xmask, "plane": b, "first_plane": first, "last_plane": last,
                      "r_used": [t.r_used for t in tiles], "c_phys": [t.c_phys for t in tiles], "bits": bits})
        for x, t in enumerate(tiles):
            d = np.zeros(cols, dtype=np.int64)
            if xmask >> x & 1:
                v = np.array([bits[x] >> i & 1 for i in range(t.r_used)])
                d[:t.c_phys] = np.minimum(v @ t.levels, cfg.adc_max)
            acc[x] = (0 if first else acc[x]) + int(PLANE_WEIGHTS[b]) * d
        acc = (acc + (1 << (tw - 1))) % (1 << tw) - (1 << (tw - 1))  # T_j wraps at adc_bits + 9 bits
        if last:
            expect.append(acc.copy())
    tb = Bench(cfg)
    got = []

    async def producer(ctx):
        await tb.load(ctx, tiles, rng)
        for it in items:
            await stream_put(ctx, tb.dut.item, it)  # no idle: stalls come from the consumer only

    async def consumer(ctx):
        crng = random.Random(3)
        for _ in expect:
            got.append(tsum_array(cfg, await stream_get(ctx, tb.dut.tsum, stall=0.85, rng=crng)))

    tb.run(producer, consumer)
    np.testing.assert_array_equal(np.array(got), np.array(expect))


@pytest.mark.parametrize("name", CONFIGS)
def test_reset_mid_sequence(name):
    cfg = preset(name)
    rng = np.random.default_rng(41)
    nx = cfg.xbars_per_apu
    tiles = [random_tile(cfg, rng) for _ in range(nx)]
    n_pos = 3
    xs = [rng.integers(-128, 128, (n_pos, t.r_used)) for t in tiles]
    masks = [(1 << nx) - 1] * n_pos
    items = position_items(cfg, tiles, xs, masks)
    junk = position_items(cfg, tiles, [rng.integers(-128, 128, (2, t.r_used)) for t in tiles], masks[:2])
    tb = Bench(cfg)
    m, lat = tb.dut.period, tb.dut.latency

    async def bench(ctx):
        await tb.load(ctx, tiles, rng)
        # 11 items: position 0 done, position 1 at plane 2; stop one cycle into the 11th item's read.
        acc, _ = await tb.back_to_back(ctx, junk, 0, stop_after=11)
        assert ctx.get(tb.dut.busy) and ctx.get(tb.dut.xbar_reads) == 11 * nx
        ctx.set(tb.rst, 1)
        for _ in range(2):
            await ctx.tick()
        ctx.set(tb.rst, 0)
        assert not ctx.get(tb.dut.busy) and not ctx.get(tb.dut.tsum.valid)
        assert counters(ctx, tb.dut) == dict.fromkeys(("xbar_reads", "dac_activations", "adc_conversions"), 0)
        s = ctx.get(tb.cycle)
        acc, outs = await tb.back_to_back(ctx, items, n_pos)
        assert acc == [s + i * m for i in range(len(items))]
        assert [cyc for cyc, _ in outs] == [s + (8 * p + 7) * m + lat for p in range(n_pos)]
        expect = expected_tsums(cfg, tiles, xs, masks)  # the crossbars kept their tiles across reset
        for p, (_, got) in enumerate(outs):
            np.testing.assert_array_equal(got, expect[p])
        assert counters(ctx, tb.dut) == expected_counters(tiles, masks)

    tb.run(bench)


def test_row_access_pass_through():
    """rd[x]/wr[x] reach crossbar x only; two crossbars of one APU are written in the same cycle
    (several write drivers per PE, §13.2), a masked write keeps the other cells."""
    cfg = preset("tiny")
    tb = Bench(cfg)
    dut = tb.dut

    async def bench(ctx):
        for x, val in ((0, 1), (1, 2)):  # both in one edge
            ctx.set(dut.wr[x].en, 1)
            ctx.set(dut.wr[x].row, 7)
            ctx.set(dut.wr[x].levels, [val] * 16)
            ctx.set(dut.wr[x].mask, 0xFFFF)
        await ctx.tick()
        ctx.set(dut.wr[1].en, 0)
        ctx.set(dut.wr[0].levels, [3] * 16)
        ctx.set(dut.wr[0].mask, 0x00F0)
        await ctx.tick()
        ctx.set(dut.wr[0].en, 0)
        ctx.set(dut.wr[0].mask, 0xFFFF)  # en low: no write
        await ctx.tick()
        for x in (0, 1):
            ctx.set(dut.rd[x].row, 7)
        assert [int(v) for v in ctx.get(dut.rd[0].levels)] == [1] * 4 + [3] * 4 + [1] * 8
        assert [int(v) for v in ctx.get(dut.rd[1].levels)] == [2] * 16
        ctx.set(dut.rd[1].row, 6)
        assert [int(v) for v in ctx.get(dut.rd[1].levels)] == [0] * 16  # cold start
        assert [int(v) for v in ctx.get(dut.rd[0].levels)] == [1] * 4 + [3] * 4 + [1] * 8  # own row port

    tb.run(bench)


@pytest.mark.parametrize("blackbox", [False, True])
def test_verilog(blackbox):
    text = verilog.convert(Apu(cfg=preset("tiny"), blackbox=blackbox), name="apu", emit_src=False)
    for port in ("item__valid", "item__ready", "item__payload", "tsum__valid", "tsum__ready", "tsum__payload",
                 "rd__0__row", "wr__1__en", "xbar_reads", "dac_activations", "adc_conversions"):
        assert port in text
    assert ("aras_xbar_macro" in text) == blackbox
