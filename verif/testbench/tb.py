"""Shared cocotb testbench pieces for the generated SystemVerilog of ``hw/`` units.

- :func:`pack` / :func:`unpack` / :class:`Io`: top-level ports written and read as Python values
  through the *same* Amaranth shapes and ``data`` layouts the RTL declares (the component's
  signature is rebuilt from the config in the simulator process), never through hand-written bit
  offsets. A port named ``a__b`` in Verilog is the signature member path ``("a", "b")``.
- :class:`TB`: owns the DUT, its clock and reset, a seeded RNG and the cycle count.
- :class:`StreamDriver` / :class:`StreamMonitor`: ``amaranth.lib.stream`` valid/ready ports
  (``<prefix>__valid``, ``__ready``, ``__payload``). Both act on handshakes sampled in the read-only
  phase before the clock edge; the driver may insert random idle cycles, the monitor random
  back-pressure, both from a seeded RNG. Transfers are recorded with their cycle.
- :func:`first_mismatch` / :func:`assert_equal`: compare arrays and report the first mismatching
  index and values; :func:`load_config`, :func:`load_vectors`, :func:`seed_from_env`: the files
  the pytest side names in the environment.

Cycle numbering: cycle 0 is the first cycle after :meth:`TB.reset` released the reset; cycle ``t``
ends at the ``t+1``-th rising edge after that. Values sampled in the read-only phase of cycle ``t``
are those the flip-flops capture at its closing edge.
"""

from __future__ import annotations

import json
import os
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cocotb
import numpy as np
from amaranth.hdl import Shape
from amaranth.lib import data
from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import ClockCycles, Event, ReadOnly, RisingEdge

from aras.config import Config, from_dict

__all__ = ["pack", "unpack", "bits_int", "port_shapes", "Io", "TB", "Beat", "StreamDriver", "StreamMonitor",
           "first_mismatch", "assert_equal", "load_config", "load_vectors", "load_vectors_file", "seed_from_env"]


# ---------------------------------------------------------------- values through the RTL's shapes


def _plain(value):
    """numpy scalars/arrays -> Python ints/lists (Amaranth constants accept only Python ints)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def pack(shape, value) -> int:
    """The raw bits (unsigned int) of ``value`` for a port of Amaranth ``shape``.

    ``shape`` is a ``data.Layout`` (``value``: a dict for a struct, a sequence for an array, a
    ``data.Const``, or raw bits as int) or anything ``Shape.cast`` accepts (``value``: an int in range).
    """
    if isinstance(value, data.Const):
        return value.as_value().value
    if isinstance(shape, data.Layout):
        if isinstance(value, (int, np.integer)):
            return int(value)
        return shape.const(_plain(value)).as_value().value
    s = Shape.cast(shape)
    v = int(value)
    lo, hi = (-(1 << (s.width - 1)), 1 << (s.width - 1)) if s.signed else (0, 1 << s.width)
    if not lo <= v < hi:
        raise ValueError(f"value {v} does not fit {s!r}")
    return v & ((1 << s.width) - 1)


def unpack(shape, raw: int):
    """Python value of the raw bits of a port: ``data.Const`` for layouts (fields by name, elements by
    index), a (signed) int otherwise."""
    if isinstance(shape, data.Layout):
        return shape.from_bits(raw)
    s = Shape.cast(shape)
    if s.signed and raw >> (s.width - 1):
        return raw - (1 << s.width)
    return raw


def bits_int(bits) -> int:
    """A sequence of bits (bit 0 first; bools or 0/1) as the int of a plain n-bit port."""
    return sum(1 << j for j, b in enumerate(np.asarray(bits).ravel()) if b)


def port_shapes(component) -> dict:
    """Verilog port name (``"__"``-joined member path, as ``hw.generate.ports``) -> Amaranth shape."""
    return {"__".join(str(p) for p in path): member.shape
            for path, member, _ in component.signature.flatten(component)}


class Io:
    """Ports of ``dut`` (the generated Verilog of ``component``), packed through the component's shapes.

    ``component`` is only used for its signature (construct it from the same config; mark the module
    ``# amaranth: UnusedElaboratable=no``).
    """

    def __init__(self, dut, component):
        self.dut = dut
        self.shapes = port_shapes(component)
        self._handles = {}

    def handle(self, name: str):
        h = self._handles.get(name)
        if h is None:
            if name not in self.shapes:
                raise KeyError(f"no port {name!r}; ports: {', '.join(self.shapes)}")
            h = self._handles[name] = self.dut[name]
        return h

    def set(self, name: str, value) -> None:
        self.handle(name).value = pack(self.shapes[name], value)

    def raw(self, name: str) -> int:
        return int(self.handle(name).value)

    def get(self, name: str):
        return unpack(self.shapes[name], self.raw(name))

    def array(self, name: str) -> np.ndarray:
        """An ``ArrayLayout`` port as a 1-D int64 array."""
        return np.array(list(self.get(name)), dtype=np.int64)

    def bits(self, name: str) -> np.ndarray:
        """A plain n-bit port as n bools, bit 0 first."""
        v, n = self.raw(name), Shape.cast(self.shapes[name]).width
        return np.array([(v >> j) & 1 for j in range(n)], dtype=bool)


# ---------------------------------------------------------------- testbench base


class TB:
    """Owns ``dut``: clock (``period_ns``, started here), reset, a seeded RNG, cycle count and (with
    ``component``) an :class:`Io` over its ports. ``clock=None``: a purely combinational DUT."""

    def __init__(self, dut, component=None, *, clock: str | None = "clk", reset: str | None = "rst",
                 period_ns: int = 10, seed: int = 0):
        self.dut = dut
        self.log = dut._log
        self.rng = random.Random(seed)
        self.io = Io(dut, component) if component is not None else None
        self.period_ns = period_ns
        self.clk = dut[clock] if clock else None
        self.rst = dut[reset] if reset else None
        self._origin = 0.0
        if self.rst is not None:
            self.rst.value = 0
        if self.clk is not None:
            Clock(self.clk, period_ns, unit="ns").start()

    def cycle(self) -> int:
        """The current cycle (see the module docstring); valid at a rising edge and in its read-only phase."""
        return int((get_sim_time("ns") - self._origin) / self.period_ns + 1e-6)

    async def reset(self, cycles: int = 2) -> None:
        """Hold reset for ``cycles`` clock edges; returns in cycle 0 (the first out of reset)."""
        self.rst.value = 1
        await ClockCycles(self.clk, cycles)
        self.rst.value = 0
        self._origin = get_sim_time("ns")

    async def cycles(self, n: int) -> None:
        await ClockCycles(self.clk, n)

    def log_speed(self, cycles: int, wall_s: float, cpu_s: float | None = None) -> None:
        """Log the simulation speed (the pytest log shows it; ``-rA`` or a failure prints it); ``cpu_s``:
        CPU seconds of the simulator process (``time.process_time``) over the same span."""
        cpu = "" if cpu_s is None else f", {cpu_s:.2f} CPU-s = {cycles / max(cpu_s, 1e-9):.0f} cycles per CPU-s"
        self.log.info("SPEED %d cycles in %.2f s wall = %.0f cycles/s%s", cycles, wall_s,
                      cycles / max(wall_s, 1e-9), cpu)

    def child_rng(self) -> random.Random:
        """An independent RNG drawn from this one (one per driver/monitor, so patterns do not interact)."""
        return random.Random(self.rng.randrange(1 << 32))


# ---------------------------------------------------------------- valid/ready streams


@dataclass
class Beat:
    """One stream transfer: ``payload`` (as sent / as unpacked), ``tag`` (the sender's), ``cycle`` of the
    transfer (None until it happened)."""

    payload: object
    tag: object = None
    cycle: int | None = None


class StreamDriver:
    """Source for the DUT's ``<prefix>`` stream input. Payloads are sent in order; ``valid`` never waits
    for ``ready`` and the payload stays stable until the transfer. Before each beat, ``valid`` stays low
    for a cycle with probability ``idle`` (repeatedly: geometric idle gaps).

    Call :meth:`send` from a writable phase (not after ``ReadOnly``)."""

    def __init__(self, tb: TB, prefix: str, *, idle: float = 0.0, rng: random.Random | None = None):
        self.tb, self.prefix, self.idle = tb, prefix, idle
        self.rng = rng or tb.child_rng()
        self.valid = tb.dut[f"{prefix}__valid"]
        self.ready = tb.dut[f"{prefix}__ready"]
        self._payload = f"{prefix}__payload"
        self._queue: deque[Beat] = deque()
        self._current: Beat | None = None
        self._wake = Event()
        self.sent: list[Beat] = []
        self.valid.value = 0
        self._task = cocotb.start_soon(self._run())

    def send(self, payload, tag=None) -> Beat:
        beat = Beat(payload, tag)
        self._queue.append(beat)
        self._wake.set()
        return beat

    @property
    def busy(self) -> bool:
        return bool(self._queue) or self._current is not None

    async def wait_idle(self) -> None:
        while self.busy:
            await RisingEdge(self.tb.clk)

    async def _run(self):
        clk = self.tb.clk
        while True:
            if self._current is None:
                if not self._queue:
                    self.valid.value = 0
                    self._wake.clear()
                    await self._wake.wait()  # resumes in the sender's (writable) phase
                    continue
                if self.idle and self.rng.random() < self.idle:
                    self.valid.value = 0
                    await RisingEdge(clk)
                    continue
                self._current = self._queue.popleft()
                self.tb.io.set(self._payload, self._current.payload)
                self.valid.value = 1
            await ReadOnly()
            if int(self.ready.value):
                self._current.cycle = self.tb.cycle()
                self.sent.append(self._current)
                self._current = None
            await RisingEdge(clk)


class StreamMonitor:
    """Sink for the DUT's ``<prefix>`` stream output: records every transfer as a :class:`Beat` (payload
    unpacked through the port's layout) in :attr:`queue`. ``ready`` is low in a cycle with probability
    ``backpressure``; :attr:`stalls` counts cycles with ``valid`` high and ``ready`` low."""

    def __init__(self, tb: TB, prefix: str, *, backpressure: float = 0.0, rng: random.Random | None = None):
        self.tb, self.prefix, self.backpressure = tb, prefix, backpressure
        self.rng = rng or tb.child_rng()
        self.valid = tb.dut[f"{prefix}__valid"]
        self.ready = tb.dut[f"{prefix}__ready"]
        self._payload = f"{prefix}__payload"
        self.queue: deque[Beat] = deque()
        self.stalls = 0
        self.count = 0
        self.ready.value = 0
        self._task = cocotb.start_soon(self._run())

    async def _run(self):
        clk, io = self.tb.clk, self.tb.io
        while True:
            take = not (self.backpressure and self.rng.random() < self.backpressure)
            self.ready.value = int(take)
            await ReadOnly()
            if int(self.valid.value):
                if take:
                    self.queue.append(Beat(io.get(self._payload), cycle=self.tb.cycle()))
                    self.count += 1
                else:
                    self.stalls += 1
            await RisingEdge(clk)


# ---------------------------------------------------------------- checks and vector files


def first_mismatch(what: str, got, exp, describe: Callable[[tuple], str] | None = None) -> str | None:
    """None if ``got`` equals ``exp`` (same shape, same values), else a message naming the first
    mismatching index (row-major), both values, the mismatch count and ``describe(index)``."""
    got, exp = np.asarray(got), np.asarray(exp)
    if got.shape != exp.shape:
        return f"{what}: shape {got.shape}, expected {exp.shape}"
    bad = np.argwhere(got != exp)
    if not len(bad):
        return None
    i = tuple(int(v) for v in bad[0])
    msg = (f"{what}: {len(bad)} of {got.size} differ; first at index {i}: "
           f"got {got[i].tolist()!r}, expected {exp[i].tolist()!r}")
    if describe is not None:
        msg += f" [{describe(i)}]"
    return msg


def assert_equal(what: str, got, exp, describe: Callable[[tuple], str] | None = None) -> None:
    msg = first_mismatch(what, got, exp, describe)
    if msg:
        raise AssertionError(msg)


def _env_path(var: str) -> Path:
    v = os.environ.get(var)
    if not v:
        raise RuntimeError(f"environment variable {var} (a file written by the pytest side) is not set")
    return Path(v)


def load_config(var: str = "ARAS_CFG") -> Config:
    """The :class:`~aras.config.Config` in the JSON file named by ``$var`` (``Config.to_dict`` form)."""
    p = _env_path(var)
    return from_dict(json.loads(p.read_text()), source=str(p))


def load_vectors_file(path) -> dict[str, np.ndarray]:
    """All arrays of the ``.npz`` file ``path``."""
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def load_vectors(var: str = "ARAS_VECTORS") -> dict[str, np.ndarray]:
    """All arrays of the ``.npz`` file named by ``$var``."""
    return load_vectors_file(_env_path(var))


def seed_from_env(var: str = "ARAS_TB_SEED", default: int = 0) -> int:
    return int(os.environ.get(var, default))
