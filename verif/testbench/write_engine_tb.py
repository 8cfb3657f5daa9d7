# amaranth: UnusedElaboratable=no
"""cocotb module: the generated Verilog of :class:`verif.testbench.wrappers.WriteHarness` (write engine +
write buffer + the PE's crossbars) runs a list of WRITE tiles from ``ARAS_VECTORS`` (written by
``test_write_engine_tb.py``) and is checked against the golden outcome stored with them.

The testbench: loads the crossbars' old contents through ``load``; a controller stand-in that keeps
the §10.2 rules the engine relies on (tiles offered in program order on lanes 0…, a tile only once its
image is in a write-buffer slot and no earlier tile on its crossbar is unfinished, a slot reused only
after its tile's ``done``) with random idle gaps after each issue; the images go in through the
``fill`` stream (:class:`StreamDriver`, random idle); one :class:`StreamMonitor` per ``done`` stream,
with random back-pressure (``done_stall``). Checked: every tile's ``done`` payload (crossbar, slot) on
the driver the lane rule gave it, its cycles from start to done (= the golden ``Σ row_cycles``, or
≥ that under back-pressure), every counter, ``write_buffer_bytes``, and the final cell levels.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import cocotb
import numpy as np
from cocotb.triggers import ReadOnly, RisingEdge

from hw.write_engine import COUNTERS
from verif.testbench.tb import (
    TB,
    Beat,
    StreamDriver,
    StreamMonitor,
    assert_equal,
    load_config,
    load_vectors,
    seed_from_env,
)
from verif.testbench.wrappers import WriteHarness


@dataclass
class Job:
    i: int
    x: int
    payload: dict  # the tile stream payload without the slot
    image: bytes
    slot: int | None = None
    beats: list[Beat] = field(default_factory=list)
    start: int | None = None
    driver: int | None = None
    done: int | None = None
    done_payload: tuple | None = None

    def loaded_before(self, cycle: int) -> bool:
        """The image is in the buffer in ``cycle`` (a fill beat writes at the edge closing its cycle)."""
        return bool(self.beats) and all(b.cycle is not None and b.cycle < cycle for b in self.beats)


def jobs_from(v) -> list[Job]:
    jobs = []
    for i in range(len(v["x"])):
        rows, wcols = int(v["rows"][i]), int(v["wcols"][i])
        pay = {k: int(v[k][i]) for k in ("rows", "wcols", "family", "mode", "pack_g", "pack_k", "pack_n", "flags")}
        pay["xbar"] = int(v["x"][i])
        image = v["w"][i, :rows, :wcols].astype(np.int8).tobytes()  # DRAM image: row-major, stride wcols
        jobs.append(Job(i, int(v["x"][i]), pay, image))
    return jobs


def fill_beats(job: Job, bpc: int):
    for off in range(0, len(job.image), bpc):
        chunk = job.image[off:off + bpc]
        yield {"slot": job.slot, "offset": off, "n": len(chunk), "data": list(chunk) + [0] * (bpc - len(chunk))}


async def peek_all(tb: TB, xbars: int, rows: int, cols: int) -> np.ndarray:
    io = tb.io
    out = np.zeros((xbars, rows, cols), np.int64)
    io.set("peek__en", 1)
    for r in range(rows):
        io.set("peek__row", r)
        await ReadOnly()
        lv = io.get("peek__levels")
        for x in range(xbars):
            out[x, r] = list(lv[x])
        await RisingEdge(tb.clk)
    io.set("peek__en", 0)
    return out


async def control(tb: TB, jobs: list[Job], fill: StreamDriver, dones: list[StreamMonitor], *, slots: int,
                  drivers: int, bpc: int, issue_idle: float, limits: list[int], max_cycles: int) -> None:
    """Run ``jobs`` to completion; a tile still running ``limits[i]`` cycles after its start, or the run
    past ``max_cycles``, fails the test (a hung driver)."""
    io, rng = tb.io, tb.child_rng()
    free_slots = list(range(slots))
    x_busy: set[int] = set()
    running: list[Job | None] = [None] * drivers
    nxt = pre = finished = gap = 0
    while finished < len(jobs):
        now = tb.cycle()
        if now > max_cycles:
            raise AssertionError(f"tiles did not finish by cycle {now}: {finished}/{len(jobs)} done, "
                                 f"running {[j.i if j else None for j in running]}")
        for j in running:
            if j is not None and now - j.start > limits[j.i]:
                raise AssertionError(f"tile {j.i} ({j.payload}, slot {j.slot}) started in cycle {j.start} on driver "
                                     f"{j.driver} is still running in cycle {now}")
        # dones recorded at earlier edges free their driver, slot and crossbar
        for d, mon in enumerate(dones):
            while mon.queue:
                b = mon.queue.popleft()
                j = running[d]
                if j is None:
                    raise AssertionError(f"done[{d}] transferred in cycle {b.cycle} with no tile on driver {d}")
                j.done, j.done_payload = b.cycle, (b.payload.xbar, b.payload.slot)
                running[d] = None
                free_slots.append(j.slot)
                x_busy.discard(j.x)
                finished += 1
        # images into free slots, in program order
        while pre < len(jobs) and free_slots:
            j = jobs[pre]
            j.slot = free_slots.pop(0)
            j.beats = [fill.send(p, tag=j.i) for p in fill_beats(j, bpc)]
            pre += 1
        # lanes 0… get the next tiles in program order while they are eligible
        lanes: list[Job] = []
        if gap:
            gap -= 1
        else:
            for j in jobs[nxt:nxt + drivers]:
                if not j.loaded_before(now) or j.x in x_busy or j.x in {o.x for o in lanes}:
                    break
                lanes.append(j)
        for k in range(drivers):
            if k < len(lanes):
                io.set(f"tile__{k}__payload", {**lanes[k].payload, "slot": lanes[k].slot})
            io.set(f"tile__{k}__valid", int(k < len(lanes)))
        await ReadOnly()
        if lanes:
            busy = io.raw("busy")
            idle = [d for d in range(drivers) if not (busy >> d) & 1]
            for k, j in enumerate(lanes):
                if not io.raw(f"tile__{k}__ready"):
                    break
                if k >= len(idle):
                    raise AssertionError(f"tile[{k}] ready in cycle {now} with only {len(idle)} idle drivers")
                j.start, j.driver = now, idle[k]
                running[j.driver] = j
                x_busy.add(j.x)
                nxt += 1
                while rng.random() < issue_idle:
                    gap += 1
        await RisingEdge(tb.clk)


@cocotb.test()
async def tiles(dut):
    cfg = load_config()
    v = load_vectors()
    h = WriteHarness(cfg=cfg)
    D, X, R, C = cfg.write_drivers_per_pe, h.xbars, cfg.xbar_rows, cfg.xbar_cols
    tb = TB(dut, h, seed=seed_from_env())
    io = tb.io
    for k in range(D):
        io.set(f"tile__{k}__valid", 0)
    for name in ("load__en", "peek__en", "fill__valid"):
        io.set(name, 0)
    await tb.reset()
    t0 = time.perf_counter()

    # old contents
    io.set("load__en", 1)
    for x in range(X):
        for r in range(R):
            io.set("load__xbar", x)
            io.set("load__row", r)
            io.set("load__levels", v["init"][x, r])
            await RisingEdge(tb.clk)
    io.set("load__en", 0)
    assert_equal("crossbar levels after load (x, row, col)", await peek_all(tb, X, R, C), v["init"])
    assert_equal("counters after reset", [io.raw(n) for n in COUNTERS], [0] * len(COUNTERS))

    jobs = jobs_from(v)
    fill = StreamDriver(tb, "fill", idle=float(v["fill_idle"]))
    dones = [StreamMonitor(tb, f"done__{d}", backpressure=float(v["done_stall"])) for d in range(D)]
    await control(tb, jobs, fill, dones, slots=cfg.write_buffer_slots, drivers=D, bpc=cfg.dram_bytes_per_cycle,
                  issue_idle=float(v["issue_idle"]), limits=[4 * int(c) + 100 for c in v["exp_cycles"]],
                  max_cycles=4 * int(v["exp_cycles"].sum()) + 100 * len(jobs) + 1000)
    await RisingEdge(tb.clk)  # the last done's counters are added at its edge
    tb.log_speed(tb.cycle() + 2 + X * R, time.perf_counter() - t0)

    # nothing left over
    assert not fill.busy and all(not m.queue for m in dones) and not int(io.raw("busy"))
    assert len(fill.sent) == sum(len(j.beats) for j in jobs)

    # per tile: done payload and cycles from start to done (inclusive)
    assert_equal("done payload (xbar, slot) per tile", [j.done_payload for j in jobs], [(j.x, j.slot) for j in jobs])
    got = np.array([j.done - j.start + 1 for j in jobs])
    exp = v["exp_cycles"]
    where = lambda i: f"tile {i[0]}: {jobs[i[0]].payload}, start {jobs[i[0]].start}, driver {jobs[i[0]].driver}"  # noqa: E731
    if float(v["done_stall"]) == 0:
        assert_equal("cycles start..done per tile", got, exp, where)
    else:
        assert_equal("cycles start..done >= golden per tile", got >= exp, np.ones(len(jobs), bool), where)
        assert sum(m.stalls for m in dones) and (got > exp).any(), "back-pressure never delayed a tile"
    if D > 1:  # the drivers did work concurrently
        assert {j.driver for j in jobs} == set(range(D)), "not every driver got a tile"
        assert any(a.start < b.start <= a.done for a in jobs for b in jobs), "no two tiles in flight at once"

    assert_equal(f"counters {COUNTERS}", [io.raw(n) for n in COUNTERS], v["exp_counters"])
    assert_equal("cells_changed (old*L + new)", io.array("cells_changed"), v["exp_cells_changed"])
    assert_equal("write_buffer_bytes", io.raw("write_buffer_bytes"), v["exp_write_buffer_bytes"])
    assert_equal("final crossbar levels (x, row, col)", await peek_all(tb, X, R, C), v["exp_final"])
