# amaranth: UnusedElaboratable=no
"""hw.gbuffer: construction errors, known-answer reads/writes with byte enables, counters, bank-mask
counting, contents surviving reset, backdoor access, Verilog conversion."""

import random

import pytest
from amaranth import ClockDomain, Fragment, Module
from amaranth.back import verilog
from amaranth.sim import Simulator

from aras.config import preset
from hw.gbuffer import Gbuffer

CFG = preset("tiny")  # 8 banks × 1 KiB, 4-byte words


def test_bad_arguments():
    with pytest.raises(TypeError, match="cfg must be an aras.config.Config"):
        Gbuffer(cfg="tiny")
    with pytest.raises(ValueError, match="read_ports must be an integer >= 1"):
        Gbuffer(cfg=CFG, read_ports=0)
    with pytest.raises(ValueError, match="write_ports"):
        Gbuffer(cfg=CFG, write_ports=True)
    with pytest.raises(ValueError, match="init has 8193 bytes"):
        Gbuffer(cfg=CFG, init=bytes(8193))


def test_parameters_exposed():
    g = Gbuffer(cfg=CFG, read_ports=2, write_ports=3)
    assert (g.read_ports, g.write_ports, g.words, g.cfg) == (2, 3, 2048, CFG)
    assert len(g.rd) == 2 and len(g.wr) == 3 and len(g.bank_on) == 8
    Fragment.get(g, None)  # elaborated, so its memory is used


def simulate(dut, bench):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


async def read_word(ctx, port, addr, count=1):
    ctx.set(port.addr, addr)
    ctx.set(port.en, 1)
    ctx.set(port.count, count)
    await ctx.tick()
    ctx.set(port.en, 0)
    return ctx.get(port.data)


async def write_word(ctx, port, addr, data, be, count=1):
    ctx.set(port.addr, addr)
    ctx.set(port.data, data)
    ctx.set(port.be, be)
    ctx.set(port.en, 1)
    ctx.set(port.count, count)
    await ctx.tick()
    ctx.set(port.en, 0)


def test_init_read_write_byte_enables_and_counters():
    init = bytes(range(1, 13))  # words 0..2 = 04030201, 08070605, 0c0b0a09
    dut = Gbuffer(cfg=CFG, read_ports=2, write_ports=2, init=init)

    async def bench(ctx):
        assert await read_word(ctx, dut.rd[0], 0) == 0x04030201
        assert await read_word(ctx, dut.rd[1], 2) == 0x0C0B0A09
        # data holds while en is low
        await ctx.tick()
        assert ctx.get(dut.rd[1].data) == 0x0C0B0A09
        await write_word(ctx, dut.wr[0], 1, 0xAABBCCDD, 0b0101)  # bytes 0 and 2 only
        assert await read_word(ctx, dut.rd[0], 1) == 0x08BB06DD
        await write_word(ctx, dut.wr[1], 2047, 0x11223344, 0b1111)  # last word (bank 7)
        assert await read_word(ctx, dut.rd[0], 2047, count=0) == 0x11223344  # uncounted read
        await write_word(ctx, dut.wr[1], 3, 0x55, 0b0001, count=0)  # uncounted write
        assert dut.backdoor_read(ctx, 12, 4) == bytes([0x55, 0, 0, 0])
        # two reads and two writes in one cycle, same word read on both ports
        ctx.set(dut.rd[0].addr, 1)
        ctx.set(dut.rd[1].addr, 1)
        for p in dut.rd:
            ctx.set(p.en, 1)
            ctx.set(p.count, 1)
        for k, p in enumerate(dut.wr):
            ctx.set(p.addr, 10 + k)
            ctx.set(p.data, 0x01010101 * (k + 1))
            ctx.set(p.be, 0b1111)
            ctx.set(p.en, 1)
            ctx.set(p.count, 1)
        ctx.set(dut.extra_reads, 5)
        await ctx.tick()
        for p in (*dut.rd, *dut.wr):
            ctx.set(p.en, 0)
        ctx.set(dut.extra_reads, 0)
        assert ctx.get(dut.rd[0].data) == ctx.get(dut.rd[1].data) == 0x08BB06DD
        assert dut.backdoor_read(ctx, 40, 8) == bytes([1] * 4 + [2] * 4)
        assert ctx.get(dut.gbuf_reads) == 3 + 2 + 5
        assert ctx.get(dut.gbuf_writes) == 2 + 2

    simulate(dut, bench)


def test_read_is_not_transparent():
    dut = Gbuffer(cfg=CFG, init=bytes([9, 9, 9, 9]))

    async def bench(ctx):
        ctx.set(dut.rd[0].addr, 0)
        ctx.set(dut.rd[0].en, 1)
        ctx.set(dut.wr[0].addr, 0)
        ctx.set(dut.wr[0].data, 0x01020304)
        ctx.set(dut.wr[0].be, 0b1111)
        ctx.set(dut.wr[0].en, 1)
        await ctx.tick()
        ctx.set(dut.wr[0].en, 0)
        assert ctx.get(dut.rd[0].data) == 0x09090909  # old contents
        await ctx.tick()
        assert ctx.get(dut.rd[0].data) == 0x01020304

    simulate(dut, bench)


def test_active_bank_cycles_and_reset_keeps_contents():
    dut = Gbuffer(cfg=CFG)
    rng = random.Random(5)
    masks = [rng.randrange(256) for _ in range(40)] + [0xFF, 0, 0x01, 0x80]

    async def bench(ctx):
        dut.backdoor_write(ctx, 1021, b"\xde\xad\xbe\xef\x42")  # straddles banks 0 and 1
        for mk in masks:
            ctx.set(dut.bank_on, mk)
            await ctx.tick()
        ctx.set(dut.bank_on, 0)
        assert ctx.get(dut.gbuf_active_bank_cycles) == sum(bin(mk).count("1") for mk in masks)
        await ctx.tick().repeat(3)  # bank_on = 0 adds nothing
        assert ctx.get(dut.gbuf_active_bank_cycles) == sum(bin(mk).count("1") for mk in masks)
        ctx.set(cd.rst, 1)
        await ctx.tick()
        ctx.set(cd.rst, 0)
        assert ctx.get(dut.gbuf_active_bank_cycles) == 0
        assert ctx.get(dut.gbuf_reads) == ctx.get(dut.gbuf_writes) == 0
        assert await read_word(ctx, dut.rd[0], 255) == 0xBEADDE00
        assert dut.backdoor_read(ctx, 1021, 5) == b"\xde\xad\xbe\xef\x42"
        assert await read_word(ctx, dut.rd[0], 256) == 0x000042EF

    top = Module()
    top.domains.sync = cd = ClockDomain()
    top.submodules.dut = dut
    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def test_backdoor_bounds():
    dut = Gbuffer(cfg=CFG)

    async def bench(ctx):
        with pytest.raises(ValueError, match="outside the buffer"):
            dut.backdoor_write(ctx, 8190, b"abc")
        with pytest.raises(ValueError, match="outside the buffer"):
            dut.backdoor_read(ctx, -1, 2)

    simulate(dut, bench)


def test_converts_to_verilog():
    text = verilog.convert(Gbuffer(cfg=CFG, read_ports=2, write_ports=2), name="gbuffer", emit_src=False)
    assert "module gbuffer" in text and "gbuf_active_bank_cycles" in text
