"""Shared Amaranth-simulator helpers for module tests: valid/ready stream drivers and monitors with
optional random idle/backpressure, acting on handshakes (amaranth.lib.stream rules)."""

from __future__ import annotations

import random


async def stream_put(ctx, stream, payload, idle: float = 0.0, rng: random.Random | None = None):
    """Send one payload; valid may be withheld for random idle cycles first. Returns after the transfer."""
    rng = rng or random.Random(0)
    while idle and rng.random() < idle:
        await ctx.tick()
    ctx.set(stream.valid, 1)
    ctx.set(stream.payload, payload)
    await ctx.tick().until(stream.ready)
    ctx.set(stream.valid, 0)


async def stream_get(ctx, stream, stall: float = 0.0, rng: random.Random | None = None):
    """Receive one payload; ready may be withheld for random cycles (backpressure). Returns the payload."""
    rng = rng or random.Random(1)
    while stall and rng.random() < stall:
        await ctx.tick()
    ctx.set(stream.ready, 1)
    (payload,) = await ctx.tick().sample(stream.payload).until(stream.valid)
    ctx.set(stream.ready, 0)
    return payload


def run_with_reset(dut, bench) -> None:
    """Simulate ``dut`` under an explicit sync domain with a 10 ns clock; ``bench(ctx, rst)`` may pulse
    the domain's reset."""
    from amaranth.hdl import ClockDomain, Module
    from amaranth.sim import Simulator

    top = Module()
    top.domains.sync = cd = ClockDomain("sync")
    top.submodules.dut = dut
    sim = Simulator(top)
    sim.add_clock(1e-8)

    async def wrapped(ctx):
        await bench(ctx, cd.rst)

    sim.add_testbench(wrapped)
    sim.run()
