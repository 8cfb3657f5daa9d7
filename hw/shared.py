"""Shared units: a replicated unit is emitted once as a Verilog module and instantiated N times.

Amaranth elaborates every instance of a unit on its own, so a top level with 256 crossbars would carry
256 copies of each per-crossbar unit's logic through elaboration, RTLIL and yosys. :func:`place` adds
a unit to a parent module: outside generation (Amaranth's simulator, module tests) it is an ordinary
submodule; while :func:`emitting` is active (``hw.generate``), the first unit of a module name is
converted on its own and every unit of that name becomes an ``Instance`` of it, its ports wired to the
unit's own port signals. The caller names the module so that equal names mean equal hardware (same
class, same configuration, same parameters). A unit with more than :data:`MAX_PORT_BITS` (65,535)
output or input bits stays an ordinary submodule: Amaranth 0.5 numbers a cell's output bits in 16 bits,
which limits an instance's outputs and, converting the unit on its own, its top-level inputs (the
outputs of the netlist's top cell). The ``paper`` PE (64 crossbars of 32 int32 partial sums) is one.
"""

from __future__ import annotations

import contextlib
import contextvars
import re

from amaranth.hdl import ClockSignal, Instance, ResetSignal, Value
from amaranth.lib import wiring

__all__ = ["MAX_PORT_BITS", "emitting", "library", "place"]

MAX_PORT_BITS = (1 << 16) - 1  # per direction; Amaranth 0.5 numbers a cell's output bits in 16 bits (and asks
# for bit + 1)

_LIBRARY: contextvars.ContextVar[dict | None] = contextvars.ContextVar("aras_shared_modules", default=None)


@contextlib.contextmanager
def emitting():
    """Collect shared modules while converting; yields the module name → SystemVerilog text dict."""
    lib: dict[str, str] = {}
    token = _LIBRARY.set(lib)
    try:
        yield lib
    finally:
        _LIBRARY.reset(token)


def library() -> dict[str, str] | None:
    """The module library of the active :func:`emitting` (name → SystemVerilog), else None: units
    that emit a module of their own text (``hw.sram``) add it here."""
    return _LIBRARY.get()


def _port_name(path) -> str:
    return "__".join(str(p) for p in path)


def place(m, name: str, unit: wiring.Component, module: str, drive: dict | None = None) -> None:
    """Add ``unit`` to ``m`` as submodule ``name``; during :func:`emitting`, as an instance of ``module``.

    ``drive`` maps input ports (Verilog names, ``a__0__b``) to the values that drive them: assigned in
    ``m`` outside generation, wired straight to the instance port during it (no copy of the value per
    instance, for inputs that every copy reads, such as the partial sums of all crossbars).
    """
    lib = _LIBRARY.get()
    drive = drive or {}
    ports = {_port_name(path): (member, value) for path, member, value in unit.signature.flatten(unit)}
    unknown = [k for k in drive if k not in ports or ports[k][0].flow != wiring.In]
    if unknown:
        raise ValueError(f"place: {module} has no input port {unknown[0]!r}")
    widths = {flow: sum(len(Value.cast(v)) for mb, v in ports.values() if mb.flow == flow)
              for flow in (wiring.In, wiring.Out)}
    if lib is None or max(widths.values()) > MAX_PORT_BITS:
        m.submodules[name] = unit
        m.d.comb += [ports[k][1].eq(v) for k, v in drive.items()]
        return
    if module not in lib:
        from .generate import to_sv_flat

        lib[module] = to_sv_flat(unit, module)
    else:
        unit._MustUse__silence = True  # represented by the module converted from the first unit
    kw = {}
    for port in ("clk", "rst"):  # present when the unit (or a part of it) is clocked
        if re.search(rf"^\s*input\s+(wire\s+)?{port}\s*;", lib[module], re.M):
            kw[f"i_{port}"] = ClockSignal() if port == "clk" else ResetSignal()
    for pname, (member, value) in ports.items():
        kw[("i_" if member.flow == wiring.In else "o_") + pname] = Value.cast(drive.get(pname, value))
    m.submodules[name] = Instance(module, **kw)
