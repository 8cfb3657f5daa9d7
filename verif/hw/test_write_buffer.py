# amaranth: UnusedElaboratable=no
"""Module tests of ``hw/write_buffer.py`` (docs/architecture.md §3.5): fill beats at any byte offset
and width, row reads of any ``wcols`` on every read port (combinational), the ``write_buffer_bytes``
counter, contents surviving reset, backdoor access, Verilog conversion."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Fragment

from aras.config import preset
from hw.write_buffer import WriteBuffer
from verif.hw.streams import run_with_reset

_run = run_with_reset  # shared helper (verif/hw/streams.py)


def test_bad_arguments():
    with pytest.raises(TypeError, match="cfg must be an aras.config.Config"):
        WriteBuffer(cfg="tiny")
    with pytest.raises(ValueError, match="read_ports must be an integer >= 1"):
        WriteBuffer(cfg=preset("tiny"), read_ports=0)


def test_parameters():
    wb = WriteBuffer(cfg=preset("tiny"), read_ports=3)
    assert (wb.slots, wb.read_ports, wb.lanes) == (2, 3, 4)
    Fragment.get(wb, None)  # elaborated, so its memories are used


def _image(rng, nbytes):
    return bytes(rng.randrange(256) for _ in range(nbytes))


async def _fill(ctx, dut, slot, image, bpc, offset0=0):
    """Send ``image`` as beats of ``bpc`` bytes (last one partial) from byte ``offset0``."""
    for o in range(0, len(image), bpc):
        chunk = image[o:o + bpc]
        ctx.set(dut.fill.payload, {"slot": slot, "offset": offset0 + o, "n": len(chunk),
                                   "data": list(chunk) + [0xEE] * (bpc - len(chunk))})
        ctx.set(dut.fill.valid, 1)
        assert ctx.get(dut.fill.ready)
        await ctx.tick()
    ctx.set(dut.fill.valid, 0)


def _row(ctx, port, slot, row, wcols, count=0):
    ctx.set(port.slot, slot)
    ctx.set(port.row, row)
    ctx.set(port.wcols, wcols)
    ctx.set(port.count, count)
    return [int(v) for v in ctx.get(port.w)][:wcols]


@pytest.mark.parametrize("variant", ["tiny", "bpc3", "bpc8"])
def test_fill_and_row_reads(variant):
    cfg = preset("tiny")
    if variant != "tiny":
        cfg = dataclasses.replace(cfg, name=variant, dram_bytes_per_cycle=int(variant[3:]), write_buffer_bytes=192)
    dut = WriteBuffer(cfg=cfg, read_ports=2)
    rng = random.Random(7)
    bpc, cw, R = cfg.dram_bytes_per_cycle, cfg.weight_cols, cfg.xbar_rows

    async def bench(ctx, rst):
        counted = 0
        for trial in range(12):
            slot = trial % dut.slots
            rows, wcols = rng.randint(1, R), rng.randint(1, cw)
            if trial == 0:
                rows, wcols = R, cw  # a full tile
            image = _image(rng, rows * wcols)
            await _fill(ctx, dut, slot, image, bpc)
            counted += len(image)
            w = np.frombuffer(image, np.int8).reshape(rows, wcols)
            for r in range(rows):
                for p in dut.rd:
                    assert _row(ctx, p, slot, r, wcols) == list(w[r]), (trial, r)
            # count one row on each port in the same cycle
            _row(ctx, dut.rd[0], slot, 0, wcols, count=1)
            _row(ctx, dut.rd[1], slot, rows - 1, wcols, count=1)
            await ctx.tick()
            _row(ctx, dut.rd[0], slot, 0, wcols, count=0)
            _row(ctx, dut.rd[1], slot, 0, wcols, count=0)
            counted += 2 * wcols
            assert ctx.get(dut.write_buffer_bytes) == counted
            assert dut.backdoor_read(ctx, slot, 0, len(image)) == image
        # reset clears the counter, not the contents
        ctx.set(rst, 1)
        await ctx.tick()
        ctx.set(rst, 0)
        assert ctx.get(dut.write_buffer_bytes) == 0
        assert dut.backdoor_read(ctx, slot, 0, len(image)) == image

    _run(dut, bench)


def test_unaligned_beats_and_slots_independent():
    """Beats at arbitrary offsets and widths (the image may arrive in any chunking); other slots untouched."""
    cfg = preset("tiny")
    dut = WriteBuffer(cfg=cfg, read_ports=1)
    rng = random.Random(3)

    async def bench(ctx, rst):
        other = _image(rng, 64)
        dut.backdoor_write(ctx, 1, 0, other)
        image = _image(rng, 64)
        o = 0
        while o < 64:
            n = min(rng.randint(1, 4), 64 - o)
            ctx.set(dut.fill.payload, {"slot": 0, "offset": o, "n": n, "data": list(image[o:o + n]) + [0] * (4 - n)})
            ctx.set(dut.fill.valid, 1)
            await ctx.tick()
            o += n
        ctx.set(dut.fill.valid, 0)
        assert dut.backdoor_read(ctx, 0, 0, 64) == image
        assert dut.backdoor_read(ctx, 1, 0, 64) == other
        w = np.frombuffer(image, np.int8)
        for wcols in (1, 2, 3, 4):
            for r in range(min(cfg.xbar_rows, 64 // wcols)):
                assert _row(ctx, dut.rd[0], 0, r, wcols) == list(w[r * wcols:(r + 1) * wcols])
        assert ctx.get(dut.write_buffer_bytes) == 64
        with pytest.raises(ValueError, match="outside a slot"):
            dut.backdoor_read(ctx, 0, 60, 5)
        with pytest.raises(ValueError, match="slot 2 outside"):
            dut.backdoor_write(ctx, 2, 0, b"x")

    _run(dut, bench)


def test_verilog_conversion():
    text = verilog.convert(WriteBuffer(cfg=preset("tiny")), name="write_buffer", emit_src=False)
    assert "module write_buffer" in text and "write_buffer_bytes" in text
