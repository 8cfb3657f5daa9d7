"""A strobe delayed by a fixed number of cycles (the pipeline tail of a unit's ``done``)."""

from __future__ import annotations

from amaranth.hdl import Module, Signal, Value


def delayed(m: Module, strobe: Value, cycles: int) -> Value:
    """``strobe`` (one cycle high) seen ``cycles`` cycles later; ``cycles = 0`` is the strobe itself."""
    if cycles == 0:
        return strobe
    tail = Signal(range(cycles + 1))
    with m.If(strobe):
        m.d.sync += tail.eq(cycles)
    with m.Elif(tail != 0):
        m.d.sync += tail.eq(tail - 1)
    return tail == 1
