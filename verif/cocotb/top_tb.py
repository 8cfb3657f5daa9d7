# amaranth: UnusedElaboratable=no
"""cocotb module: whole programs on the generated Verilog of ``hw.top.Top``, checked against the golden
models (vectors from ``system_vectors.py``, written by ``test_top_tb.py``).

Run protocol of ``hw/top.py``: reset; the program rows through ``prog_in``, the DRAM image through
``dram_in`` and the input activations through ``act_in`` (three :class:`StreamDriver` at once, random
idle); a one-cycle ``start`` strobe (cycle 0 is the cycle after it); the design then runs without the
testbench waking per cycle — one timer races ``done``'s rising edge, and value-change watchers on
``error`` and ``host_req`` record those events (Icarus needs every bit of speed on the top level).
Then the outputs come back through ``act_rd``/``act_data`` (random idle and back-pressure), the status
block and the crossbar levels (``peek``) are read combinationally, one address per nanosecond.

Checked exactly: the cycle in which ``done`` rises, ``cycles`` and every other status register (every
§11 counter, ``cells_changed``, the layer windows), every output byte, every cell level; a mismatch
names the first differing register / index and both values. With ``reset_at`` >= 0 the first run is
reset in that cycle, the inputs are loaded again and the program runs once more; its expectation is
computed here from the levels the interrupted run left (cells survive reset).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import cocotb
import numpy as np
from cocotb.simtime import get_sim_time
from cocotb.triggers import First, ReadOnly, RisingEdge, Timer

from aras import isa
from hw.top import Top, status_names
from verif.cocotb.system_vectors import TOP_PARAMS, expected, make_case
from verif.cocotb.tb import TB, StreamDriver, StreamMonitor, first_mismatch, load_config, load_vectors, seed_from_env

PERIOD = 10  # ns


class Watch:
    """Records the cycles (relative to ``origin``, set per run) in which ``sig`` rose; no per-cycle wake-up."""

    def __init__(self, sig):
        self.sig, self.origin, self.rises = sig, 0.0, []
        cocotb.start_soon(self._run())

    async def _run(self):
        while True:
            await RisingEdge(self.sig)
            self.rises.append(int((get_sim_time("ns") - self.origin) // PERIOD))


async def settle_read(handle) -> int:
    """The value of a combinational output after the inputs just written; returns in a writable phase."""
    await ReadOnly()
    v = int(handle.value)
    await Timer(1, "ns")
    return v


async def load(tb: TB, cfg, v, nl: int, *, program: bool) -> None:
    """Program rows, DRAM image (only if ``program``; ``nl`` bytes per beat) and input activations through
    the streams."""
    idle = float(v["idle"])
    drivers = []
    if program:
        prog = StreamDriver(tb, "prog_in", idle=idle)
        raw = v["program"].tobytes()
        for k in range(0, len(raw), isa.WORD_BYTES):
            prog.send(int.from_bytes(raw[k:k + isa.WORD_BYTES], "little"))
        dram = StreamDriver(tb, "dram_in", idle=idle)
        img = v["dram"].tobytes()
        img += bytes(-len(img) % nl)
        for a in range(0, len(img), nl):
            dram.send({"addr": a, "data": list(img[a:a + nl])})
        drivers += [prog, dram]
    act = StreamDriver(tb, "act_in", idle=idle)
    wb = cfg.gbuf_word_bytes
    base, data = int(v["in_base"]), v["inputs"].astype(np.int8).tobytes()
    for w in range(base // wb, -(-(base + len(data)) // wb)):  # byte enables cover an unaligned head/tail
        word, be = 0, 0
        for j in range(wb):
            a = w * wb + j - base
            if 0 <= a < len(data):
                word |= data[a] << (8 * j)
                be |= 1 << j
        act.send({"addr": w, "data": word, "be": be})
    drivers.append(act)
    for d in drivers:
        await d.wait_idle()
    await RisingEdge(tb.clk)  # the last transfer writes at the edge closing its cycle


async def run(tb: TB, limit: int, watches: list[Watch]) -> tuple[int | None, float]:
    """Strobe ``start`` and wait for ``done`` (at most ``limit`` cycles). Returns (the cycle in which
    ``done`` rose or None, wall seconds)."""
    dut = tb.dut
    dut.start.value = 1
    await RisingEdge(tb.clk)
    dut.start.value = 0
    origin = get_sim_time("ns")  # the edge that began cycle 0
    for w in watches:
        w.origin, w.rises = origin, []
    t0 = time.perf_counter()
    fired = await First(RisingEdge(dut.done), Timer(limit * PERIOD, "ns"))
    wall = time.perf_counter() - t0
    if isinstance(fired, Timer):
        return None, wall
    return int(round((get_sim_time("ns") - origin) / PERIOD)), wall


async def read_outputs(tb: TB, cfg, v) -> np.ndarray:
    wb = cfg.gbuf_word_bytes
    rd = StreamDriver(tb, "act_rd", idle=float(v["idle"]))
    mon = StreamMonitor(tb, "act_data", backpressure=float(v["backpressure"]))
    spans = []
    for base, n in zip(v["out_base"].tolist(), v["out_len"].tolist(), strict=True):
        words = range(base // wb, -(-(base + n) // wb))
        spans.append((base % wb, n, len(words)))
        for w in words:
            rd.send({"addr": w})
    total = sum(s[2] for s in spans)
    while len(mon.queue) < total:
        await RisingEdge(tb.clk)
    words = [int(b.payload.data).to_bytes(wb, "little") for b in mon.queue]
    out, k = b"", 0
    for off, n, nw in spans:
        out += b"".join(words[k:k + nw])[off:off + n]
        k += nw
    return np.frombuffer(out, np.int8)


async def read_status(tb: TB, n: int) -> np.ndarray:
    dut = tb.dut
    dut.status_en.value = 1
    vals = []
    for a in range(n):
        dut.status_addr.value = a
        vals.append(await settle_read(dut.status_data))
    dut.status_en.value = 0
    return np.array(vals, np.uint64)


async def peek_levels(tb: TB, cfg) -> np.ndarray:
    io = tb.io
    out = np.zeros((cfg.n_xbars, cfg.xbar_rows, cfg.xbar_cols), np.int64)
    io.set("peek_en", 1)
    for x in range(cfg.n_xbars):
        io.set("peek_xbar", x)
        for r in range(cfg.xbar_rows):
            io.set("peek_row", r)
            await ReadOnly()
            out[x, r] = list(io.get("peek_levels"))
            await Timer(1, "ns")
    io.set("peek_en", 0)
    return out


def compare(cfg, v, exp: dict, got_done: int | None, status: np.ndarray, outs: np.ndarray, levels: np.ndarray,
            errors: list[int], hosts: list[int], label: str) -> list[str]:
    """Every mismatch between the run and ``exp`` (first differing element of each kind)."""
    msgs = []
    cyc = int(exp["exp_cycles"])
    if got_done != cyc:
        msgs.append(f"done rose in cycle {got_done}, expected {cyc}")
    if errors:
        msgs.append(f"error rose in cycles {errors}")
    if hosts:
        msgs.append(f"host_req rose in cycles {hosts} (no HOST layer in this case)")
    names = status_names(cfg, int(v["n_layers"]))
    # by kind, so that a timing difference does not hide a counter difference
    kinds = [("cycles / layer windows", [i for i, n in enumerate(names) if n == "cycles" or n.startswith("layer_")]),
             ("cells_changed", [i for i, n in enumerate(names) if n.startswith("cells_changed")]),
             ("counters", [i for i, n in enumerate(names) if not n.startswith(("cycles", "layer_", "cells_changed"))])]
    ones = (1 << 64) - 1
    for what, idx in kinds:
        m = first_mismatch(f"status {what}", status[idx], exp["exp_status"][idx],
                           lambda i, idx=idx: names[idx[i[0]]] + (" (all ones: never set)" if int(
                               exp["exp_status"][idx[i[0]]]) == ones else ""))
        if m:
            msgs.append(m)
    bounds = np.cumsum(v["out_len"])

    def where(i):
        t = int(np.searchsorted(bounds, i[0], side="right"))
        return f"output {v['out_names'][t]} byte {i[0] - (bounds[t - 1] if t else 0)}"

    m = first_mismatch("outputs (int8)", outs, exp["exp_out"], where)
    if m:
        msgs.append(m)
    m = first_mismatch("crossbar levels (xbar, row, col)", levels, exp["exp_levels"])
    if m:
        msgs.append(m)
    return [f"{label}: {s}" for s in msgs]


@cocotb.test()
async def program_run(dut):
    cfg = load_config()
    v = load_vectors()
    top = Top(cfg=cfg, **TOP_PARAMS)
    tb = TB(dut, top, period_ns=PERIOD, seed=seed_from_env())
    for name in ("prog_in__valid", "dram_in__valid", "act_in__valid", "act_rd__valid", "act_data__ready", "start",
                 "host_ack", "status_en", "peek_en"):
        dut[name].value = 0
    errors, hosts = Watch(dut.error), Watch(dut.host_req)
    await tb.reset(4)
    assert int(dut.done.value) == 0 and int(dut.running.value) == 0, "done/running high after reset"

    t_load = time.perf_counter()
    await load(tb, cfg, v, top.dram._nl, program=True)
    t_load = time.perf_counter() - t_load
    cyc = int(v["exp_cycles"])
    reset_at = int(v["reset_at"])
    label = f"{v['case']} on {cfg.name}"
    exp = {k: v[k] for k in ("exp_cycles", "exp_status", "exp_out", "exp_levels")}
    speed = {"load_s": t_load}
    if reset_at >= 0:
        assert reset_at < cyc, f"reset_at {reset_at} is not inside the run ({cyc} cycles)"
        got, wall = await run(tb, reset_at, [errors, hosts])
        assert got is None, f"{label}: done rose in cycle {got}, before the reset in cycle {reset_at}"
        assert not errors.rises and not hosts.rises, f"{label}: error / host_req rose before the reset: " \
            f"{errors.rises} / {hosts.rises}"
        await Timer(1, "ns")  # in cycle reset_at
        await tb.reset(4)
        initial = await peek_levels(tb, cfg)
        changed = int((initial != 0).any(axis=2).sum())
        cold = v["exp_levels"].any(axis=2).sum()
        tb.log.info("reset in cycle %d: %d of %d rows written by the interrupted run", reset_at, changed, cold)
        assert 0 < changed, f"{label}: the interrupted run wrote no rows before cycle {reset_at}"
        tr, prog, x = make_case(str(v["case"]), cfg, int(v["seed"]))
        exp = expected(tr, prog, cfg, x, initial)
        speed["steady_cycles"] = int(exp["exp_cycles"])
        cyc = int(exp["exp_cycles"])
        label += f" (run after a reset in cycle {reset_at})"
        await load(tb, cfg, v, top.dram._nl, program=False)  # the first run may have reused the input's Gbuffer space
    got, wall = await run(tb, 4 * cyc + 1000, [errors, hosts])
    if got is None:
        raise AssertionError(f"{label}: done did not rise within {4 * cyc + 1000} cycles (expected in cycle {cyc}); "
                             f"error rose in cycles {errors.rises}, host_req in {hosts.rises}")
    speed.update(cycles=got, run_s=wall, cycles_per_s=got / max(wall, 1e-9))
    tb.log_speed(got, wall)
    await RisingEdge(tb.clk)
    await Timer(1, "ns")
    status = await read_status(tb, len(exp["exp_status"]))
    outs = await read_outputs(tb, cfg, v)
    levels = await peek_levels(tb, cfg)
    out_file = os.environ.get("ARAS_SPEED")
    if out_file:
        Path(out_file).write_text(json.dumps(speed))
    msgs = compare(cfg, v, exp, got, status, outs, levels, errors.rises, hosts.rises, label)
    if msgs:
        raise AssertionError("; ".join(msgs))
