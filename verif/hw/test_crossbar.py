# amaranth: UnusedElaboratable=no
"""Module tests of ``hw/crossbar.py`` (docs/architecture.md §3.1) in Amaranth's simulator: masked row
writes, row reads and combinational column sums against a numpy model of the cell array; cells
survive reset; power-up ``init``; Verilog conversion and the black-box macro's port list."""

from __future__ import annotations

import re

import numpy as np
import pytest
from amaranth.back import verilog

from aras.config import preset
from aras.errors import ArasError
from hw.crossbar import MACRO_NAME, Crossbar
from verif.hw.streams import run_with_reset

CONFIGS = ["tiny", "tiny-adc"]


_run = run_with_reset  # shared helper (verif/hw/streams.py)


async def _write(ctx, dut, row, levels, mask):
    ctx.set(dut.wr.en, 1)
    ctx.set(dut.wr.row, row)
    ctx.set(dut.wr.levels, [int(v) for v in levels])
    ctx.set(dut.wr.mask, int(sum(int(b) << j for j, b in enumerate(mask))))
    await ctx.tick()
    ctx.set(dut.wr.en, 0)


def _read(ctx, dut, row):
    ctx.set(dut.rd.row, row)
    return np.array([int(v) for v in ctx.get(dut.rd.levels)])


def _mvm(ctx, dut, bits):
    ctx.set(dut.mvm.bits, int(sum(int(b) << i for i, b in enumerate(bits))))
    return np.array([int(v) for v in ctx.get(dut.mvm.col_sum)])


# ---------------------------------------------------------------- construction


def test_parameters():
    cfg = preset("tiny")
    dut = Crossbar(cfg=cfg)
    assert dut.cfg is cfg and not dut.blackbox
    assert dut.sum_width == 6  # ⌈log2(16·3 + 1)⌉
    assert Crossbar(cfg=preset("paper")).sum_width == 9  # ⌈log2(128·3 + 1)⌉
    assert dut.mvm.col_sum.shape().size == 16 * 6


@pytest.mark.parametrize("kw, err, match", [
    (dict(cfg="tiny"), TypeError, "cfg must be an aras.config.Config"),
    (dict(init=np.zeros((16, 15), int)), ArasError, r"shape \(16, 16\)"),
    (dict(init=np.full((16, 16), 4)), ArasError, r"levels must be in \[0, 3\]"),
    (dict(init=np.full((16, 16), 0.5)), ArasError, "integer array"),
    (dict(init=np.zeros((16, 16), int), blackbox=True), ArasError, "only possible for the behavioral"),
])
def test_bad_arguments(kw, err, match):
    kw = {"cfg": preset("tiny"), **kw}
    with pytest.raises(err, match=match):
        Crossbar(**kw)


# ---------------------------------------------------------------- simulation


@pytest.mark.parametrize("name", CONFIGS)
def test_write_read_mvm_random(name):
    cfg = preset(name)
    rows, cols, lv = cfg.xbar_rows, cfg.xbar_cols, cfg.levels
    rng = np.random.default_rng(7)
    dut = Crossbar(cfg=cfg)
    model = np.zeros((rows, cols), dtype=np.int64)  # cold start

    async def bench(ctx, rst):
        assert (_read(ctx, dut, 3) == 0).all()
        for _ in range(60):
            r = int(rng.integers(rows))
            new = rng.integers(0, lv, cols)
            mask = rng.random(cols) < 0.6
            await _write(ctx, dut, r, new, mask)
            model[r, mask] = new[mask]
            if rng.random() < 0.3:
                # en low: nothing changes even with a full mask
                ctx.set(dut.wr.row, r)
                ctx.set(dut.wr.mask, (1 << cols) - 1)
                ctx.set(dut.wr.levels, [lv - 1 - int(v) for v in model[r]])
                await ctx.tick()
            for rr in range(rows):
                assert (_read(ctx, dut, rr) == model[rr]).all(), f"row {rr}"
            bits = rng.integers(0, 2, rows)
            assert (_mvm(ctx, dut, bits) == bits @ model).all()

    _run(dut, bench)


@pytest.mark.parametrize("bits, level, expect", [
    (0, 3, 0),            # no input: 0
    ((1 << 16) - 1, 3, 48),  # every row at L-1: rows·(L-1), the widest sum (exact width, no wrap)
    ((1 << 16) - 1, 1, 16),
    (1 << 15, 2, 2),      # one row (the last)
    (0b101, 3, 6),
])
def test_col_sum_corners(bits, level, expect):
    cfg = preset("tiny")
    dut = Crossbar(cfg=cfg, init=np.full((16, 16), level))

    async def bench(ctx, rst):
        ctx.set(dut.mvm.bits, bits)
        assert [int(v) for v in ctx.get(dut.mvm.col_sum)] == [expect] * 16

    _run(dut, bench)


def test_cells_survive_reset_and_init():
    cfg = preset("tiny")
    init = np.random.default_rng(3).integers(0, 4, (16, 16))
    dut = Crossbar(cfg=cfg, init=init)
    model = init.copy()

    async def bench(ctx, rst):
        for r in range(16):
            assert (_read(ctx, dut, r) == init[r]).all()  # power-up state
        await _write(ctx, dut, 5, [3] * 16, [1] * 8 + [0] * 8)
        model[5, :8] = 3
        # Reset in the middle of a write: the write still commits at its edge (no reset on cells).
        ctx.set(rst, 1)
        await _write(ctx, dut, 6, [0] * 16, [1] * 16)
        model[6] = 0
        for _ in range(3):  # (tick().repeat() raises DomainReset while reset is high)
            await ctx.tick()
        ctx.set(rst, 0)
        for r in range(16):
            assert (_read(ctx, dut, r) == model[r]).all()
        bits = [1] * 16
        assert (_mvm(ctx, dut, bits) == model.sum(axis=0)).all()

    _run(dut, bench)


# ---------------------------------------------------------------- Verilog


def _ports(text, module):
    body = re.search(rf"module {module}\((.*?)\);", text, re.S).group(1)
    return sorted(p.strip() for p in body.split(","))


def test_verilog_behavioral_and_blackbox():
    cfg = preset("tiny")
    behav = verilog.convert(Crossbar(cfg=cfg), name=MACRO_NAME, emit_src=False)
    assert "cells_r15" in behav
    box = verilog.convert(Crossbar(cfg=cfg, blackbox=True), name="xbar_wrap", emit_src=False)
    inst = re.search(rf"{MACRO_NAME} macro \((.*?)\);", box, re.S).group(1)
    inst_ports = sorted(re.findall(r"\.(\w+)\(", inst))
    # The behavioral module is a drop-in model of the macro: same port names.
    assert inst_ports == _ports(behav, MACRO_NAME) == sorted(
        ["clk", "rst", "mvm__bits", "mvm__col_sum", "rd__row", "rd__levels", "wr__en", "wr__row", "wr__levels",
         "wr__mask", "wr__fail"])
    assert "cells_r" not in box
