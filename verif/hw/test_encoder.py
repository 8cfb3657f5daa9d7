# amaranth: UnusedElaboratable=no
"""Module tests of ``hw/encoder.py`` (docs/architecture.md §3.4, §4, §5.1, §8.3): derived cost tables
vs ``WriteTables``; the §8.3 worked example; random rows of random (packed and unpacked) tiles of
both families and modes against ``tile_levels`` and ``write_tile``; Verilog conversion."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.sim import Simulator

from aras.config import preset
from aras.tiling import Tile, cols_per_weight
from hw.encoder import Encoder, write_costs
from sim_models.tiling import tile_levels
from sim_models.write_engine import WriteTables, write_tile


def odd_tables():
    """tiny with slow, asymmetric timing and tables where some differential steps go via reset."""
    p = ((0, 1, 2, 3), (2, 0, 1, 2), (5, 4, 0, 1), (6, 5, 1, 0))
    e = ((0.0, 0.5, 1.0, 1.5), (3.0, 0.0, 0.5, 1.0), (9.0, 2.5, 0.0, 0.5), (9.0, 0.2, 0.7, 0.0))
    return dataclasses.replace(preset("tiny"), name="odd", write_pulses=p, write_energy_pj=e, t_read_ns=2.0,
                               t_write_setup_ns=3.0, t_pulse_ns=2.0, t_verify_ns=1.0, t_reset_ns=4.0)


CONFIGS = {"tiny": lambda: preset("tiny"), "tiny-adc": lambda: preset("tiny-adc"), "odd": odd_tables}


def test_bad_arguments():
    with pytest.raises(TypeError, match="cfg must be an aras.config.Config"):
        Encoder(cfg="tiny")


@pytest.mark.parametrize("name", CONFIGS)
def test_cost_tables_match_golden(name):
    cfg = CONFIGS[name]()
    k, tb = write_costs(cfg), WriteTables.of(cfg)
    L = cfg.levels
    assert np.array_equal(np.array(k.tdiff).ravel(), tb.diff_cycles)
    assert np.array_equal(np.array(k.via_reset).ravel(), tb.diff_reset)
    assert np.array_equal(np.array(k.p0step), tb.pulses[:L] * tb.t_step)
    assert (k.t_rd, k.t_set, k.t_rst, k.step) == (tb.t_rd, tb.t_set, tb.t_rst, tb.t_step)
    if name == "odd":
        assert k.via_reset[2][1] and not k.via_reset[3][1]  # the table does reach both paths


def _row_set(ctx, dut, w, family, flags, wcols, pack, row, old, mode):
    ctx.set(dut.w, [int(v) for v in w] + [0] * (len(dut.w) - len(w)))
    ctx.set(dut.family, family)
    ctx.set(dut.flags, int(sum(int(f) << j for j, f in enumerate(flags))))
    ctx.set(dut.wcols, wcols)
    ctx.set(dut.pack_g, pack[0])
    ctx.set(dut.pack_k, pack[1])
    ctx.set(dut.pack_n, pack[2])
    ctx.set(dut.row, row)
    ctx.set(dut.old, [int(v) for v in old])
    ctx.set(dut.mode, mode)


def _bits(v, n):
    return np.array([(int(v) >> j) & 1 for j in range(n)], bool)


def _simulate(dut, bench):
    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()


def test_worked_example_8_3():
    """§8.3: old = [0,1,2,3,3,0,1,2], new = [0,2,2,0,3,1,1,3] on tiny: differential 4 cycles, blind 8."""
    cfg = preset("tiny")
    dut = Encoder(cfg=cfg)
    # offset codes: (0,2,2,0) -> u = 40 -> w = -88; (3,1,1,3) -> u = 215 -> w = 87
    old = [0, 1, 2, 3, 3, 0, 1, 2] + [3] * 8

    async def bench(ctx):
        _row_set(ctx, dut, [-88, 87], 0, [0, 0], 2, (1, 1, 2), 0, old, 1)
        assert [int(v) for v in ctx.get(dut.target)] == [0, 2, 2, 0, 3, 1, 1, 3] + [0] * 8
        assert ctx.get(dut.mask) == 0b10101010 and ctx.get(dut.used) == 0xFF and ctx.get(dut.cphys) == 8
        assert ctx.get(dut.slowest) == 2 and ctx.get(dut.row_cycles) == 4  # 1 + 1 + 2
        hist = [int(v) for v in ctx.get(dut.hist)]
        assert {i: v for i, v in enumerate(hist) if v} == {1 * 4 + 2: 1, 3 * 4 + 0: 1, 0 * 4 + 1: 1, 2 * 4 + 3: 1}
        ctx.set(dut.mode, 0)
        assert ctx.get(dut.mask) == 0xFF and ctx.get(dut.row_cycles) == 8  # 1 + 1 + 3·2
        hist = [int(v) for v in ctx.get(dut.hist)]
        assert {i: v for i, v in enumerate(hist) if v} == {1: 2, 2: 2, 3: 2}
        # unchanged row: skipped, T_rd only
        ctx.set(dut.mode, 1)
        ctx.set(dut.old, [0, 2, 2, 0, 3, 1, 1, 3] + [1] * 8)
        assert ctx.get(dut.mask) == 0 and not ctx.get(dut.changed) and ctx.get(dut.row_cycles) == 1
        # blind all-zero targets: T_set + T_rst (signmag w = 0 -> all levels 0)
        _row_set(ctx, dut, [0, 0], 1, [0, 1], 2, (1, 1, 2), 0, [2] * 16, 0)
        assert ctx.get(dut.mask) == 0xFFFF and ctx.get(dut.row_cycles) == 2 and not any(ctx.get(dut.hist))

    _simulate(dut, bench)


CORNERS = [  # (w, family, flag, levels): one weight column; offset slices of u, signmag halves (first, second)
    (-128, 0, 0, [0, 0, 0, 0]), (-128, 0, 1, [3, 3, 3, 3]), (127, 0, 0, [3, 3, 3, 3]), (0, 0, 0, [0, 0, 0, 2]),
    (-1, 0, 1, [0, 0, 0, 2]), (1, 0, 0, [1, 0, 0, 2]),
    (-128, 1, 0, [0, 0, 0, 0, 0, 0, 0, 2]), (-128, 1, 1, [0, 0, 0, 2, 0, 0, 0, 0]),
    (127, 1, 0, [3, 3, 3, 1, 0, 0, 0, 0]), (-127, 1, 0, [0, 0, 0, 0, 3, 3, 3, 1]), (5, 1, 1, [0, 0, 0, 0, 1, 1, 0, 0]),
]


def test_corner_weights():
    cfg = preset("tiny")
    dut = Encoder(cfg=cfg)
    for w, family, flag, levels in CORNERS:
        ref = tile_levels(np.array([[w]]), Tile(0, 0, 0, 0, 1, 1, 1, 1, 1), "signmag" if family else "offset",
                          np.array([flag], bool), cfg.cell_bits)[0]
        assert list(ref) == levels, (w, family, flag)

    async def bench(ctx):
        for w, family, flag, levels in CORNERS:
            _row_set(ctx, dut, [w], family, [flag], 1, (1, 1, 1), 0, [0] * 16, 0)
            assert [int(v) for v in ctx.get(dut.target)] == levels + [0] * (16 - len(levels)), (w, family, flag)

    _simulate(dut, bench)


def random_tile(rng: random.Random, cfg, family: str, packed: bool):
    """A random tile geometry (rows, wcols, pack_g, pack_k, pack_n) of ``family`` on ``cfg``."""
    cw = cfg.xbar_cols // cols_per_weight(family, cfg.slices)
    R = cfg.xbar_rows
    if packed:
        n = rng.randint(1, cw)
        k = rng.randint(1, R)
        gmax = min(R // k, cw // n)
        g = rng.randint(1, gmax)
        return Tile(0, 0, 0, 0, g * k, g * n, g, k, n)
    rows, wc = rng.randint(1, R), rng.randint(1, cw)
    return Tile(0, 0, 0, 0, rows, wc, 1, rows, wc)


@pytest.mark.parametrize("name", CONFIGS)
def test_random_rows_vs_golden(name):
    cfg = CONFIGS[name]()
    dut = Encoder(cfg=cfg)
    tb = WriteTables.of(cfg)
    rng = random.Random(sum(map(ord, name)))
    nrng = np.random.default_rng(rng.randrange(1 << 30))
    L = cfg.levels
    cases = []
    for i in range(150):
        family = ("offset", "signmag")[i % 2]
        t = random_tile(rng, cfg, family, packed=i % 3 != 0)
        w = nrng.integers(-128, 128, (t.rows, t.wcols))  # off-block values are garbage: must be ignored
        flags = nrng.integers(0, 2, t.wcols).astype(bool)
        new = tile_levels(w, t, family, flags, cfg.cell_bits)
        c = new.shape[1]
        old = nrng.integers(0, L, (t.rows, cfg.xbar_cols))
        if i % 4 == 1:  # mostly unchanged rows: exercises skipped rows
            old[:, :c] = np.where(nrng.random((t.rows, c)) < 0.9, new, old[:, :c])
        cases.append((t, family, w, flags, new, old, i % 5 != 0))

    async def bench(ctx):
        for t, family, w, flags, new, old, mode in cases:
            c = new.shape[1]
            for r in rng.sample(range(t.rows), min(t.rows, 6)):
                _row_set(ctx, dut, w[r], int(family == "signmag"), flags, t.wcols, (t.pack_g, t.pack_k, t.pack_n),
                         r, old[r], int(mode))
                ref = write_tile(old[r:r + 1, :c].astype(np.uint8), new[r:r + 1].astype(np.uint8), int(mode), tb)
                got_new = np.array([int(v) for v in ctx.get(dut.target)])
                assert np.array_equal(got_new[:c], new[r]) and not got_new[c:].any(), (t, family, r)
                used = _bits(ctx.get(dut.used), cfg.xbar_cols)
                assert used[:c].all() and not used[c:].any() and ctx.get(dut.cphys) == c
                mask = _bits(ctx.get(dut.mask), cfg.xbar_cols)
                exp_mask = np.zeros(cfg.xbar_cols, bool)
                exp_mask[:c] = ref.programmed[0]
                assert np.array_equal(mask, exp_mask)
                assert ctx.get(dut.row_cycles) == ref.row_cycles[0], (t, family, r, mode)
                assert np.array_equal([int(v) for v in ctx.get(dut.hist)], ref.cells_changed)
                assert ctx.get(dut.changed) == (ref.rows_written == 1 if mode else bool(mask.any()))

    _simulate(dut, bench)


def test_verilog_conversion():
    text = verilog.convert(Encoder(cfg=preset("tiny")), name="encoder", emit_src=False)
    assert "module encoder" in text and "row_cycles" in text
