# amaranth: UnusedElaboratable=no
"""Module tests of ``hw/dram.py`` (docs/architecture.md §3.11, §10.2) driving real write buffers: the
exact cycle of every beat and of ``done`` (A_fin = A_start + dram_latency_cycles + ⌈bytes/bpc⌉),
back-to-back and gapped requests, the tile readable in the write buffer from A_fin on, ``done``
back-pressure, reset in the middle of a transfer, counters, Verilog conversion."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import ClockDomain, Fragment, Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from aras.config import preset
from hw.dram import Dram
from hw.write_buffer import WriteBuffer

VARIANTS = {
    "tiny": {},  # latency 4, 4 B/cycle
    "lat0-bpc3": dict(dram_latency_cycles=0, dram_bytes_per_cycle=3),
    "lat1-bpc8": dict(dram_latency_cycles=1, dram_bytes_per_cycle=8),
    "tiny-adc": None,
}


def config(name):
    if name == "tiny-adc":
        return preset("tiny-adc")
    return dataclasses.replace(preset("tiny"), name=name, **VARIANTS[name])


class Harness:
    """Dram + one write buffer per PE, under an explicit sync domain (for reset)."""

    def __init__(self, cfg, image: bytes):
        self.cfg = cfg
        self.dram = Dram(cfg=cfg, size=len(image) + 5, init=image)
        self.wbs = [WriteBuffer(cfg=cfg, read_ports=1) for _ in range(cfg.n_pe)]
        self.top = Module()
        self.top.domains.sync = self.cd = ClockDomain("sync")
        self.top.submodules.dram = self.dram
        for p, wb in enumerate(self.wbs):
            self.top.submodules[f"wb{p}"] = wb
            wiring.connect(self.top, self.dram.fill[p], wb.fill)

    def run(self, bench):
        sim = Simulator(self.top)
        sim.add_clock(1e-8)
        sim.add_testbench(bench)
        sim.run()


def test_bad_arguments():
    cfg = preset("tiny")
    with pytest.raises(TypeError, match="cfg must be an aras.config.Config"):
        Dram(cfg=None, size=4)
    with pytest.raises(ValueError, match="size must be an integer >= 1"):
        Dram(cfg=cfg, size=0)
    with pytest.raises(ValueError, match="init has 5 bytes, the image only 4"):
        Dram(cfg=cfg, size=4, init=bytes(5))


def test_transfer_cycles():
    cfg = preset("tiny")
    d = Dram(cfg=cfg, size=4)
    assert [d.transfer_cycles(n) for n in (1, 4, 5, 64)] == [5, 5, 6, 20]
    assert (d.size, d.cfg) == (4, cfg)
    Fragment.get(d, None)  # elaborated, so its memories are used


def _requests(rng, cfg, image_len, n):
    reqs = []
    for _ in range(n):
        rows = rng.randint(1, cfg.xbar_rows)
        wcols = rng.randint(1, cfg.weight_cols)
        nbytes = rows * wcols
        reqs.append(dict(addr=rng.randrange(image_len - nbytes + 1), bytes=nbytes, pe=rng.randrange(cfg.n_pe),
                         slot=rng.randrange(cfg.write_buffer_slots), rows=rows, wcols=wcols,
                         gap=rng.choice([0, 0, 0, 1, 3, 9])))
    return reqs


async def drive(ctx, h, reqs, done_stall=0.0, rng=None, max_cycles=20000, stall=0.0):
    """Cycle-accurate driver/monitor: offers each request ``gap`` cycles after the previous acceptance;
    returns per transfer (A_start, beat cycles, done cycle) and checks the buffer from the next cycle.
    ``stall``: probability of ``dram.stall`` in a cycle (DRAM-side idle)."""
    dram, rng = h.dram, rng or random.Random(0)
    log, i, offer_at, cur = [], 0, reqs[0]["gap"] if reqs else 0, None
    pending_check = None
    for t in range(max_cycles):
        if pending_check is not None:  # the cycle after done: A_fin; the tile must be readable now
            r, = pending_check
            wb = h.wbs[r["pe"]]
            img = dram.backdoor_read(ctx, r["addr"], r["bytes"])
            assert wb.backdoor_read(ctx, r["slot"], 0, r["bytes"]) == img
            port = wb.rd[0]
            ctx.set(port.slot, r["slot"])
            ctx.set(port.row, r["rows"] - 1)
            ctx.set(port.wcols, r["wcols"])
            last_row = np.frombuffer(img, np.int8)[-r["wcols"]:]
            assert [int(v) for v in ctx.get(port.w)][:r["wcols"]] == list(last_row)
            pending_check = None
        if i < len(reqs) and t >= offer_at:
            r = reqs[i]
            ctx.set(dram.req.payload, {k: r[k] for k in ("addr", "bytes", "pe", "slot")})
            ctx.set(dram.req.valid, 1)
        else:
            ctx.set(dram.req.valid, 0)
        ready_done = int(not (done_stall and rng.random() < done_stall))
        ctx.set(dram.done.ready, ready_done)
        ctx.set(dram.stall, int(bool(stall) and rng.random() < stall))
        if ctx.get(dram.req.valid) and ctx.get(dram.req.ready):
            cur = {"req": reqs[i], "start": t, "beats": []}
            log.append(cur)
            i += 1
            if i < len(reqs):
                offer_at = t + 1 + reqs[i]["gap"]
        for p, f in enumerate(dram.fill):
            if ctx.get(f.valid):
                assert p == cur["req"]["pe"] and ctx.get(f.ready)
                pay = ctx.get(f.payload)
                assert pay.slot == cur["req"]["slot"]
                cur["beats"].append((t, int(pay.offset), int(pay.n)))
        if ctx.get(dram.done.valid) and ready_done:
            pay = ctx.get(dram.done.payload)
            assert (pay.pe, pay.slot) == (cur["req"]["pe"], cur["req"]["slot"])
            cur["done"] = t
            pending_check = (cur["req"],)
        await ctx.tick()
        if i == len(reqs) and "done" in (log[-1] if log else {"done": 0}) and pending_check is None:
            break
    return log


@pytest.mark.parametrize("name", VARIANTS)
def test_random_transfers_exact_timing(name):
    cfg = config(name)
    rng = random.Random(11)
    image = bytes(rng.randrange(256) for _ in range(700))
    h = Harness(cfg, image)
    reqs = _requests(rng, cfg, len(image), 40)
    reqs[0]["bytes"], reqs[0]["rows"], reqs[0]["wcols"] = 1, 1, 1  # a single-byte transfer
    lat, bpc = cfg.dram_latency_cycles, cfg.dram_bytes_per_cycle

    async def bench(ctx):
        log = await drive(ctx, h, reqs)
        assert len(log) == len(reqs)
        a_fin_prev, offer = 0, reqs[0]["gap"]
        for k, e in enumerate(log):
            r = e["req"]
            nb = -(-r["bytes"] // bpc)
            assert e["start"] == max(offer, a_fin_prev), k  # accepted as soon as offered and the channel is free
            assert e["beats"] == [(e["start"] + lat + b, b * bpc, min(bpc, r["bytes"] - b * bpc)) for b in range(nb)]
            assert e["done"] + 1 == e["start"] + lat + nb  # A_fin
            a_fin_prev = e["done"] + 1
            if k + 1 < len(reqs):
                offer = e["start"] + 1 + reqs[k + 1]["gap"]
        total = sum(r["bytes"] for r in reqs)
        assert ctx.get(h.dram.dram_bytes) == total
        for p, wb in enumerate(h.wbs):
            assert ctx.get(wb.write_buffer_bytes) == sum(r["bytes"] for r in reqs if r["pe"] == p)

    h.run(bench)


def test_done_backpressure_holds_channel():
    cfg = config("lat0-bpc3")
    rng = random.Random(4)
    image = bytes(rng.randrange(256) for _ in range(300))
    h = Harness(cfg, image)
    reqs = _requests(rng, cfg, len(image), 25)
    for r in reqs:
        r["gap"] = 0

    async def bench(ctx):
        log = await drive(ctx, h, reqs, done_stall=0.6, rng=random.Random(9))
        bpc = cfg.dram_bytes_per_cycle
        for k, e in enumerate(log):
            nb = -(-e["req"]["bytes"] // bpc)
            assert [b[0] for b in e["beats"]] == list(range(e["start"], e["start"] + nb))
            assert e["done"] >= e["start"] + nb - 1
            if k:
                assert e["start"] == log[k - 1]["done"] + 1  # next transfer only after done was taken
        assert any(e["done"] > e["start"] + -(-e["req"]["bytes"] // bpc) - 1 for e in log)  # stalls happened
        assert ctx.get(h.dram.dram_bytes) == sum(r["bytes"] for r in reqs)

    h.run(bench)


@pytest.mark.parametrize("name", ["tiny", "lat0-bpc3"])
def test_stall_only_delays(name):
    """DRAM-side stalls: every tile still arrives whole (checked in the buffer), beats in order, the
    counter exact; transfers end no earlier than §10.2 and some end later."""
    cfg = config(name)
    rng = random.Random(5)
    image = bytes(rng.randrange(256) for _ in range(700))
    h = Harness(cfg, image)
    reqs = _requests(rng, cfg, len(image), 25)
    lat, bpc = cfg.dram_latency_cycles, cfg.dram_bytes_per_cycle

    async def bench(ctx):
        log = await drive(ctx, h, reqs, rng=random.Random(8), stall=0.4)
        assert len(log) == len(reqs) and all("done" in e for e in log)
        late = 0
        for e in log:
            n = e["req"]["bytes"]
            assert [o for _, o, _ in e["beats"]] == list(range(0, n, bpc))
            assert sum(k for _, _, k in e["beats"]) == n
            fastest = e["start"] + lat + -(-n // bpc) - 1
            assert e["done"] >= fastest
            late += e["done"] > fastest
        assert late > 0
        assert ctx.get(h.dram.dram_bytes) == sum(r["bytes"] for r in reqs)

    h.run(bench)


def test_reset_mid_transfer():
    cfg = preset("tiny")
    image = bytes(range(200))
    h = Harness(cfg, image)
    first = dict(addr=3, bytes=64, pe=1, slot=0, rows=16, wcols=4, gap=0)
    second = dict(addr=101, bytes=36, pe=1, slot=0, rows=9, wcols=4, gap=0)

    async def bench(ctx):
        ctx.set(h.dram.done.ready, 1)
        ctx.set(h.dram.req.payload, {k: first[k] for k in ("addr", "bytes", "pe", "slot")})
        ctx.set(h.dram.req.valid, 1)
        await ctx.tick()
        ctx.set(h.dram.req.valid, 0)
        await ctx.tick().repeat(6)  # cycles 1 … 6: latency until 3, beats in 4, 5, 6
        assert ctx.get(h.dram.busy) and ctx.get(h.dram.dram_bytes) == 12
        ctx.set(h.cd.rst, 1)
        await ctx.tick()
        ctx.set(h.cd.rst, 0)
        assert not ctx.get(h.dram.busy) and ctx.get(h.dram.dram_bytes) == 0 and ctx.get(h.dram.req.ready)
        assert h.wbs[1].backdoor_read(ctx, 0, 0, 12) == image[3:15]  # what arrived stays
        log = await drive(ctx, h, [second])
        assert log[0]["start"] == 0 and log[0]["done"] + 1 == 4 + 9
        assert h.wbs[1].backdoor_read(ctx, 0, 0, 36) == image[101:137]
        assert ctx.get(h.dram.dram_bytes) == 36

    h.run(bench)


def test_verilog_conversion():
    text = verilog.convert(Dram(cfg=preset("tiny"), size=256), name="dram", emit_src=False)
    assert "module dram" in text and "dram_bytes" in text
