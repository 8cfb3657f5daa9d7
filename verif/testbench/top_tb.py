# amaranth: UnusedElaboratable=no
"""cocotb module: whole programs on the generated Verilog of ``hw.top.Top``, checked against the golden
models (vectors from ``system_vectors.py``, written by the pytest side or ``aras verify``).

Run protocol of ``hw/top.py``: reset; the program rows through ``prog_in``, the DRAM image through
``dram_in`` and the input activations through ``act_in`` (three :class:`StreamDriver` at once, random
idle); a one-cycle ``start`` strobe (cycle 0 is the cycle after it); then one timer races ``done``'s
rising edge, a value-change watcher on ``error`` records that event, the :class:`Host` model answers
``host_req``, the :class:`LayerProbe` wakes only at the golden layer boundaries and the hazard monitor
(below) is the one part that samples every cycle (a few one-bit signals; the payloads only on a
handshake). Then the outputs
come back through ``act_rd``/``act_data`` (random idle and back-pressure), the status block and the
crossbar levels (``peek``) are read combinationally. Several runs (one input batch each) follow each
other with a reset in between; cells survive it, so run k > 0 is the steady state of run k − 1.

Checked exactly: the cycle in which ``done`` rises, ``cycles`` and every other status register (every
§11 counter, ``cells_changed``, the layer windows), every output byte, every cell level, and per layer
the execute-side counters over its execute window and the CRC-32 of its output tensor at its end; a
mismatch names the first differing register / layer / index and both values.

Disturbed runs (``stall`` > 0: the DRAM side holds random beats; ``host_delay`` > 0: the host answers
late) check everything that does not count time exactly and the cycle count only for growth.
With ``reset_at`` >= 0 the first run is reset in that cycle, the inputs are loaded again and the program
runs once more; its expectation is computed here from the levels the interrupted run left.

A hazard monitor (``monitor.py``) samples every cycle of every run: at each COMPUTE start every crossbar
the round reads must hold all rows of the WRITE it waits for, with the tile entry's tag; at each WRITE
programming start no running COMPUTE may read the crossbar. In undisturbed runs its recorded starts
(every WRITE's A_start, B_start, B_fin, every E_start) must equal the golden run's, and
``sim_models.hazards`` replays the golden model on the case's program (``$ARAS_PROGRAM``, pickled by
``system.py``) to say which interlock rule decided each start; the counts go into the run record.

``$ARAS_REPORT`` names a JSON file that receives every golden/RTL figure of every run (``aras verify``).
"""

from __future__ import annotations

import json
import os
import pickle
import time
from pathlib import Path

import cocotb
import numpy as np
from cocotb.simtime import get_sim_time
from cocotb.triggers import ClockCycles, First, ReadOnly, RisingEdge, Timer

from aras import isa
from aras.trace import Trace
from hw.top import Top, status_names
from sim_models import hazards, host
from verif.testbench.monitor import Monitor, ProgramView, compare_starts
from verif.testbench.system_vectors import EXEC_COUNTERS, checksum, expected, make_case
from verif.testbench.tb import (
    TB,
    StreamDriver,
    StreamMonitor,
    first_mismatch,
    load_config,
    load_vectors_file,
    seed_from_env,
)

PERIOD = 10  # ns
TIME_COUNTERS = ("cycles", "gbuf_active_bank_cycles")  # count time: only grow in a disturbed run


class Watch:
    """Records the cycles (relative to ``origin``, set per run) in which ``sig`` rose and was still high once
    the time step settled (a combinational output may glitch while its inputs update); no per-cycle
    wake-up."""

    def __init__(self, sig):
        self.sig, self.origin, self.rises = sig, 0.0, []
        cocotb.start_soon(self._run())

    async def _run(self):
        while True:
            await RisingEdge(self.sig)
            await ReadOnly()
            if int(self.sig.value):
                self.rises.append(int((get_sim_time("ns") - self.origin) // PERIOD))


class Gbuf:
    """Zero-time access to the Gbuffer's memory array through the simulator (the host's DMA model and the
    layer probe: the memory is only written at clock edges, so reads between edges are stable). The
    array is hw/sram.py's, in one or more replicas of equal contents: reads use the first, writes go
    to all."""

    def __init__(self, dut, cfg):
        self.reps = []
        while hasattr(dut.gbuffer, f"storage{len(self.reps)}"):
            self.reps.append(getattr(dut.gbuffer, f"storage{len(self.reps)}").mem)
        assert self.reps, "no Gbuffer storage instance (hw/sram.py) in the design"
        self.mem, self.wb = self.reps[0], cfg.gbuf_word_bytes

    def read(self, addr: int, n: int) -> bytes:
        wb = self.wb
        first, last = addr // wb, (addr + n - 1) // wb
        raw = b"".join(int(self.mem[w].value).to_bytes(wb, "little") for w in range(first, last + 1))
        return raw[addr - first * wb:addr - first * wb + n]

    def write(self, addr: int, data: bytes) -> None:
        wb, pos = self.wb, 0
        while pos < len(data):
            w, lane = divmod(addr + pos, wb)
            k = min(wb - lane, len(data) - pos)
            old = int(self.mem[w].value).to_bytes(wb, "little")
            for mem in self.reps:
                mem[w].value = int.from_bytes(old[:lane] + data[pos:pos + k] + old[lane + k:], "little")
            pos += k


class Host:
    """The host of HOST layers (§10.4): when ``host_req`` rises it reads the layer's inputs from the
    Gbuffer, runs ``sim_models.host`` and writes the output back — in zero time, between two edges —
    then acknowledges in the same cycle (the spec's untimed host), or with the case's ``host_delay`` > 0
    after a random geometric number of cycles. :meth:`bind` gives it each case's trace and tensors."""

    def __init__(self, tb: TB, gbuf: Gbuf, batch: int):
        self.tb, self.gbuf, self.batch = tb, gbuf, batch
        self.trace, self.tensors, self.delay = None, {}, 0.0
        self.rng = tb.child_rng()
        self.served: list[int] = []
        tb.dut.host_ack.value = 0
        cocotb.start_soon(self._run())

    def bind(self, trace: Trace, v: dict) -> None:
        self.trace, self.delay = trace, float(v["host_delay"])
        self.tensors = dict(zip(v["tensor_names"].tolist(), zip(v["tensor_base"].tolist(), v["tensor_item"].tolist(),
                                                                strict=True), strict=True))

    async def _run(self):
        dut, clk = self.tb.dut, self.tb.clk
        while True:
            await ReadOnly()
            if not int(dut.host_req.value):
                await RisingEdge(dut.host_req)
            else:
                await Timer(1, "ps")  # writable again, same cycle
            li = int(dut.host_layer.value)
            self.served.append(li)
            self._op(li)
            while self.delay and self.rng.random() < self.delay:
                await RisingEdge(clk)
            dut.host_ack.value = 1
            await RisingEdge(clk)
            dut.host_ack.value = 0

    def _op(self, li: int) -> None:
        tr = self.trace
        ly = tr.layers[li]
        xs = []
        for t in ly.inputs:
            base, item = self.tensors[t]
            raw = self.gbuf.read(base, self.batch * item)
            xs.append(np.frombuffer(raw, np.int8).reshape((self.batch,) + tr.tensors[t].shape))
        y = host.run(ly, xs, [tr.tensors[t] for t in ly.inputs], tr.tensors[ly.output])
        self.gbuf.write(self.tensors[ly.output][0], y.astype(np.int8).tobytes())


async def read_status_at(tb: TB, addrs: list[int]) -> list[int]:
    """Status registers by address in the current cycle (1 ps per address; the clock is untouched)."""
    dut = tb.dut
    dut.status_en.value = 1
    vals = []
    for a in addrs:
        dut.status_addr.value = a
        await ReadOnly()
        vals.append(int(dut.status_data.value))
        await Timer(1, "ps")
    dut.status_en.value = 0
    return vals


class LayerProbe:
    """Wakes in the golden cycles ``start`` and ``end + 1`` of every layer's execute window: the execute-side
    counters (their difference is the layer's share) and, at the end, the CRC-32 of the layer's output
    tensor (later layers may reuse its Gbuffer space)."""

    def __init__(self, tb: TB, gbuf: Gbuf, names: list[str], v: dict, run: int):
        self.tb, self.gbuf = tb, gbuf
        self.addrs = [names.index(k) for k in EXEC_COUNTERS]
        n = int(v["n_layers"])
        st = v["exp_status"][run]
        self.windows = {}
        for li in range(n):
            s, e = int(st[names.index(f"layer_start[{li}]")]), int(st[names.index(f"layer_end[{li}]")])
            if s != (1 << 64) - 1:
                self.windows[li] = (s, e + 1)
        self.places = list(zip(v["layer_out_base"].tolist(), v["layer_out_len"].tolist(), strict=True))
        self.at: dict[tuple[int, str], list[int]] = {}
        self.crc: dict[int, int] = {}

    def start(self) -> None:
        cocotb.start_soon(self._run())

    async def _run(self):
        events = sorted({(c, k, li) for li, (s, e) in self.windows.items() for c, k in ((s, "s"), (e, "e"))})
        now, done = 0, 0
        for c, k, li in events:
            if c > now:
                await ClockCycles(self.tb.clk, c - now)
                now = c
            self.at[(li, k)] = await read_status_at(self.tb, self.addrs)
            if k == "e":
                base, n = self.places[li]
                self.crc[li] = checksum(self.gbuf.read(base, n))
                done += 1  # aras verify's progress bar follows these lines in the log
                self.tb.log.info("LAYER %d/%d done (layer %d, cycle %d)", done, len(self.windows), li, c)

    def layer_counters(self, li: int) -> list[int] | None:
        if (li, "s") not in self.at or (li, "e") not in self.at:
            return None
        return [b - a for a, b in zip(self.at[(li, "s")], self.at[(li, "e")], strict=True)]


async def load(tb: TB, cfg, v, run: int, nl: int, *, program: bool) -> None:
    """Program rows, DRAM image (only if ``program``; ``nl`` bytes per beat) and the input activations of
    run ``run`` through the streams."""
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
    base, data = int(v["in_base"]), v["inputs"][run].astype(np.int8).tobytes()
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


async def dram_stalls(tb: TB, p: float, stop: list[bool]) -> int:
    """Random DRAM-side idle: ``dram_stall`` high in a cycle with probability ``p``. Returns the count."""
    rng, n = tb.child_rng(), 0
    while not stop[0]:
        s = int(rng.random() < p)
        n += s
        tb.dut.dram_stall.value = s
        await RisingEdge(tb.clk)
    tb.dut.dram_stall.value = 0
    return n


async def run(tb: TB, limit: int, watches: list[Watch], monitor: Monitor, view: ProgramView,
              probe: LayerProbe | None = None, stall: float = 0.0) -> tuple[int | None, float, float]:
    """Strobe ``start`` and wait for ``done`` (at most ``limit`` cycles), ``monitor`` checking ``view``'s
    hazards from cycle 0 on. Returns (the cycle in which ``done`` rose or None, wall seconds, CPU seconds
    of this process: the simulator with cocotb in it)."""
    dut = tb.dut
    dut.start.value = 1
    await RisingEdge(tb.clk)
    dut.start.value = 0
    origin = get_sim_time("ns")  # the edge that began cycle 0
    for w in watches:
        w.origin, w.rises = origin, []
    monitor.start(view)
    if probe is not None:
        probe.start()
    stop = [False]
    stalls = cocotb.start_soon(dram_stalls(tb, stall, stop)) if stall else None
    t0, c0 = time.perf_counter(), time.process_time()
    fired = await First(RisingEdge(dut.done), Timer(limit * PERIOD, "ns"))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    monitor.stop()
    if stalls is not None:
        stop[0] = True
        await stalls
    if isinstance(fired, Timer):
        return None, wall, cpu
    return int(round((get_sim_time("ns") - origin) / PERIOD)), wall, cpu


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
    mon.ready.value = 0
    return np.frombuffer(out, np.int8)


async def read_status(tb: TB, n: int) -> np.ndarray:
    return np.array(await read_status_at(tb, list(range(n))), np.uint64)


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
            errors: list[int], label: str, disturbed: bool) -> list[str]:
    """Every mismatch between the run and ``exp`` (first differing element of each kind)."""
    msgs = []
    cyc = int(exp["exp_cycles"])
    names = status_names(cfg, int(v["n_layers"]))
    if disturbed:
        if got_done is None or got_done < cyc:
            msgs.append(f"done rose in cycle {got_done}, the undisturbed run takes {cyc}: cycles may only grow")
    elif got_done != cyc:
        msgs.append(f"done rose in cycle {got_done}, expected {cyc}")
    if errors:
        msgs.append(f"error rose in cycles {errors}")
    # by kind, so that a timing difference does not hide a counter difference
    timed = [i for i, n in enumerate(names) if n in TIME_COUNTERS or n.startswith("layer_")]
    kinds = [("cells_changed", [i for i, n in enumerate(names) if n.startswith("cells_changed")]),
             ("counters", [i for i, n in enumerate(names) if not n.startswith(("layer_", "cells_changed"))
                           and n not in TIME_COUNTERS])]
    if not disturbed:
        kinds.insert(0, ("cycles / layer windows", timed))
    else:
        for i in timed:
            if names[i] in TIME_COUNTERS and int(status[i]) < int(exp["exp_status"][i]):
                msgs.append(f"status {names[i]}: {int(status[i])} < undisturbed {int(exp['exp_status'][i])}")
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


def compare_layers(v, exp: dict, probe: LayerProbe, label: str) -> list[str]:
    """The first layer whose execute-side counters or output CRC differ."""
    msgs = []
    for li in range(int(v["n_layers"])):
        name = v["layer_names"][li]
        got = probe.layer_counters(li)
        if got is not None:
            m = first_mismatch(f"layer {li} ({name}) execute counters", np.array(got, np.uint64),
                               exp["exp_layer_counters"][li], lambda i: EXEC_COUNTERS[i[0]])
            if m:
                msgs.append(m)
        if li in probe.crc and probe.crc[li] != int(exp["exp_layer_crc"][li]):
            msgs.append(f"layer {li} ({name}) output CRC-32 {probe.crc[li]:08x} at its end, expected "
                        f"{int(exp['exp_layer_crc'][li]):08x}")
        if msgs:
            break
    return [f"{label}: {s}" for s in msgs]


def run_record(v, names, exp, got, status, probe, wall, cpu, outs) -> dict:
    """Golden and RTL figures of one run (the ``aras verify`` report)."""
    layers = []
    for li in range(int(v["n_layers"])):
        row = {"name": str(v["layer_names"][li])}
        for k in ("start", "end", "wstart", "wend"):
            i = names.index(f"layer_{k}[{li}]")
            row[k] = [int(exp["exp_status"][i]), int(status[i])]
        got_c = probe.layer_counters(li) if probe else None
        row["counters"] = {k: [int(exp["exp_layer_counters"][li][j]), None if got_c is None else int(got_c[j])]
                           for j, k in enumerate(EXEC_COUNTERS)}
        row["crc"] = [int(exp["exp_layer_crc"][li]), probe.crc.get(li) if probe else None]
        layers.append(row)
    totals = {n: [int(exp["exp_status"][i]), int(status[i])] for i, n in enumerate(names)
              if not n.startswith("layer_")}
    out_crc = [checksum(exp["exp_out"]), checksum(outs)]
    small = len(outs) <= 4096  # small outputs (logits) go into the report as values
    return {"cycles": [int(exp["exp_cycles"]), got], "wall_s": wall, "cpu_s": cpu, "layers": layers, "totals": totals,
            "outputs_crc": out_crc, "outputs": [exp["exp_out"].tolist(), outs.tolist()] if small else None}


def _env_list(var: str) -> list[str]:
    return [p for p in os.environ.get(var, "").split(os.pathsep) if p]


@cocotb.test()
async def program_run(dut):
    """Every case named in ``$ARAS_VECTORS`` (``os.pathsep``-separated; case k with its trace in
    ``$ARAS_TRACE``'s and its pickled program in ``$ARAS_PROGRAM``'s k-th entry), one after the other on
    this design, each preceded by a reset."""
    cfg = load_config()
    files, traces, progs = _env_list("ARAS_VECTORS"), _env_list("ARAS_TRACE"), _env_list("ARAS_PROGRAM")
    assert files and len(traces) == len(files) == len(progs), \
        "ARAS_VECTORS / ARAS_TRACE / ARAS_PROGRAM must name one file per case"
    vs = [load_vectors_file(f) for f in files]
    top = Top(cfg=cfg, **json.loads(str(vs[0]["top_params"])))
    tb = TB(dut, top, period_ns=PERIOD, seed=seed_from_env())
    for name in ("prog_in__valid", "dram_in__valid", "act_in__valid", "act_rd__valid", "act_data__ready", "start",
                 "host_ack", "status_en", "peek_en", "dram_stall"):
        dut[name].value = 0
    gbuf = Gbuf(dut, cfg)
    hostm = Host(tb, gbuf, cfg.batch)
    errors = Watch(dut.error)
    monitor = Monitor(tb, cfg)
    records, failures, initial = [], [], None
    for v, trace_dir, prog_file in zip(vs, traces, progs, strict=True):
        trace = Trace.load(trace_dir)
        hostm.bind(trace, v)
        prog = pickle.loads(Path(prog_file).read_bytes())
        runs, msgs = await run_case(tb, top, cfg, v, gbuf, hostm, errors, monitor, (trace, prog, initial))
        initial = v["exp_levels"][-1].astype(np.uint8)  # where the next case starts (checked equal to the cells)
        records.append({"case": str(v["case"]), "runs": runs})
        failures += msgs
        if msgs:
            break
    out_file = os.environ.get("ARAS_REPORT")
    if out_file:
        Path(out_file).write_text(json.dumps({"config": cfg.name, "cases": records}))
    if failures:
        raise AssertionError("; ".join(failures))


def hazard_check(cfg, mon: Monitor, golden: tuple, label: str, disturbed: bool,
                 cycles: int | None = None) -> tuple[dict, list[str]]:
    """The monitor's verdict on the run that just ended and, undisturbed, its starts against the golden
    run of ``golden`` = (trace, program, initial levels) and which rule decided each start (the golden
    replay of ``sim_models.hazards``: the RTL starts are those starts once they are checked equal).
    ``cycles``: the expectation's cycle count, which the replay must reproduce (same program, same cells)."""
    chk = mon.checker
    msgs = [f"hazard monitor: {m}" for m in chk.violations[:10]]
    if len(chk.violations) > 10:
        msgs.append(f"hazard monitor: {len(chk.violations) - 10} more violations")
    rec = {"checked": dict(chk.checked), "violations": len(chk.violations)}
    if not disturbed:
        trace, prog, initial = golden
        res = hazards.analyse(trace, prog, cfg, initial)
        if res.run.cycles != cycles:
            msgs.append(f"golden replay takes {res.run.cycles} cycles, the expectation {cycles} (wrong program "
                        "or initial cells handed to the monitor)")
        msgs += [f"monitored starts: {m}" for m in compare_starts(chk.starts, res.run.write_times, res.run.exec_times)]
        c = res.counts()
        rec.update(starts=c["starts"], **{m: c["measures"][m]["per_rule"] for m in ("decides", "direct", "sole")})
    return rec, [f"{label}: {m}" for m in msgs]


async def run_case(tb: TB, top: Top, cfg, v: dict, gbuf: Gbuf, hostm: Host, errors: Watch, mon: Monitor,
                   golden: tuple) -> tuple[list, list]:
    """All runs of one case (reset before each); ``golden`` = (trace, program, the levels run 0 starts from)
    for the hazard monitor's golden replay. Returns (run records, mismatch messages)."""
    dut = tb.dut
    trace, prog, initial = golden
    view = ProgramView.from_image(v["program"].tobytes(), mon.per_pe)
    names = status_names(cfg, int(v["n_layers"]))
    stall = float(v["stall"])
    disturbed = stall > 0 or hostm.delay > 0
    reset_at = int(v["reset_at"])
    records, failures = [], []
    for r in range(len(v["inputs"])):
        label = f"{v['case']} on {cfg.name}, run {r}"
        await tb.reset(4)
        assert int(dut.done.value) == 0 and int(dut.running.value) == 0, "done/running high after reset"
        t_load = time.perf_counter()
        await load(tb, cfg, v, r, top.dram._nl, program=(r == 0))
        t_load = time.perf_counter() - t_load
        exp = {k: v[k][r] for k in v if k.startswith("exp_")}
        cyc = int(exp["exp_cycles"])
        if r:
            initial = v["exp_levels"][r - 1].astype(np.uint8)
        hazard_msgs = []
        if reset_at >= 0:
            assert reset_at < cyc, f"reset_at {reset_at} is not inside the run ({cyc} cycles)"
            got, _, _ = await run(tb, reset_at, [errors], mon, view)
            assert got is None, f"{label}: done rose in cycle {got}, before the reset in cycle {reset_at}"
            assert not errors.rises, f"{label}: error rose before the reset: {errors.rises}"
            hazard_msgs = hazard_check(cfg, mon, golden, f"{label} (until the reset)", True)[1]
            await Timer(1, "ns")  # in cycle reset_at
            await tb.reset(4)
            initial = await peek_levels(tb, cfg)
            changed = int((initial != 0).any(axis=2).sum())
            tb.log.info("reset in cycle %d: %d rows written by the interrupted run", reset_at, changed)
            assert 0 < changed, f"{label}: the interrupted run wrote no rows before cycle {reset_at}"
            case = make_case(str(v["case"]), cfg, int(v["seed"]), 1)
            initial = initial.astype(np.uint8)
            exp = expected(case, cfg, r, initial)
            cyc = int(exp["exp_cycles"])
            label += f" (after a reset in cycle {reset_at})"
            await load(tb, cfg, v, r, top.dram._nl, program=False)  # the first run may have reused the input's space
        probe = None if disturbed else LayerProbe(tb, gbuf, names, {**v, "exp_status": [exp["exp_status"]]}, 0)
        got, wall, cpu = await run(tb, 4 * cyc + 1000, [errors], mon, view, probe, stall)
        if got is None:
            raise AssertionError(f"{label}: done did not rise within {4 * cyc + 1000} cycles (expected in cycle "
                                 f"{cyc}); error rose in cycles {errors.rises}, host served layers {hostm.served}")
        tb.log_speed(got, wall, cpu)
        await RisingEdge(tb.clk)
        await Timer(1, "ns")
        status = await read_status(tb, len(names))
        outs = await read_outputs(tb, cfg, v)
        levels = await peek_levels(tb, cfg)
        msgs = compare(cfg, v, exp, got, status, outs, levels, errors.rises, label, disturbed)
        if probe is not None:
            msgs += compare_layers(v, exp, probe, label)
        hazard_rec, more = hazard_check(cfg, mon, (trace, prog, initial), label, disturbed, cyc)
        msgs += hazard_msgs + more
        rec = run_record(v, names, exp, got, status, probe, wall, cpu, outs)
        rec.update(load_s=t_load, mismatches=msgs, host_layers=list(hostm.served), hazards=hazard_rec)
        records.append(rec)
        failures += msgs
        hostm.served.clear()
        if msgs:
            break
    return records, failures
