"""The hazard monitor's checking core (``monitor.HazardChecker``) fed event sequences without a simulator:
the golden model's own schedule passes and gives back the golden starts; a COMPUTE that starts before
the last row of one of its crossbars is written, a WRITE that starts programming a crossbar a running
COMPUTE reads, and a tile entry whose tag no WRITE carries are reported, naming cycle, crossbar and
instruction index."""

from __future__ import annotations

import dataclasses

import pytest

from aras import isa
from aras.config import preset
from sim_models import timing
from verif.testbench.monitor import Cycle, HazardChecker, ProgramView, compare_starts
from verif.testbench.system_vectors import make_case

TINY = preset("tiny")
PER_PE = TINY.apus_per_pe * TINY.xbars_per_apu


@pytest.fixture(scope="module")
def mlp():
    """Three linear layers with ~7x the chip's weights (rounds and rewrites): its view and golden run."""
    case = make_case("mlp@aras", TINY, seed=4)
    view = ProgramView.from_image(isa.encode(case.prog, case.trace, TINY).program, PER_PE)
    return view, timing.run(case.prog, case.trace, TINY)


def schedule(view: ProgramView, run: timing.Run, move: dict | None = None) -> dict[int, Cycle]:
    """The events a correct design shows for the golden run (rows 0 … R − 2 committed in the first
    cycles of the programming, the last row in B_fin − 1); ``move`` overrides single events:
    ``("prog", w)`` / ``("exec", e)`` -> start cycle, ``("last_row", w)`` -> commit cycle."""
    move = move or {}
    ev: dict[int, Cycle] = {}

    def at(t):
        return ev.setdefault(t, Cycle())

    for w, (a0, _, b0, b1) in enumerate(run.write_times):
        op = view.writes[w]
        at(a0).dram_start = True
        b0 = move.get(("prog", w), b0)
        at(b0).prog_starts.append((op.xbar // PER_PE, op.xbar % PER_PE, op.tag))
        for r in range(op.rows):
            t = move.get(("last_row", w), b1 - 1) if r == op.rows - 1 else min(b0 + r, b1 - 1)
            at(t).commits.append((op.xbar, r))
    for e, (e0, e1) in enumerate(run.exec_times):
        at(move.get(("exec", e), e0)).exec_start = True
        if view.execs[e].kind == "compute":
            at(e1 - 1).compute_done = True
    return ev


def feed(view: ProgramView, ev: dict[int, Cycle]) -> HazardChecker:
    chk = HazardChecker()
    chk.begin(view)
    for t in range(max(ev) + 1):
        chk.step(t, ev.get(t, Cycle()))
    return chk


def test_golden_schedule_passes(mlp):
    view, run = mlp
    chk = feed(view, schedule(view, run))
    assert chk.violations == []
    assert compare_starts(chk.starts, run.write_times, run.exec_times) == []
    assert chk.checked == {"compute": sum(e.kind == "compute" for e in view.execs), "write_prog": len(view.writes)}


def _raw_bound(view, run):
    """A COMPUTE whose start is its last-written crossbar's B_fin (RAW decides it) and that WRITE."""
    nth = view.nth_write()
    for e, (e0, _) in enumerate(run.exec_times):
        for x, n, _ in view.execs[e].reads:
            w = nth.get((x, n))
            if w is not None and run.write_times[w][3] == e0:
                return e, x, w
    raise AssertionError("no RAW-bound COMPUTE in the program")


def test_compute_before_last_row(mlp):
    """The last row of a crossbar the COMPUTE reads committed in the COMPUTE's start cycle (one cycle late)."""
    view, run = mlp
    e, x, w = _raw_bound(view, run)
    e0 = run.exec_times[e][0]
    chk = feed(view, schedule(view, run, {("last_row", w): e0}))
    rows = view.writes[w].rows
    assert chk.violations == [f"cycle {e0}: COMPUTE {e} reads crossbar {x}: {rows - 1} of the {rows} rows of "
                              f"WRITE {w} written"]
    assert any(m.startswith(f"WRITE {w} B_fin") for m in compare_starts(chk.starts, run.write_times, run.exec_times))


def test_write_on_crossbar_a_running_compute_reads(mlp):
    """The next WRITE to a crossbar starts programming while the COMPUTE that reads its old tile runs."""
    view, run = mlp
    nth = view.nth_write()
    e, x, w = next((e, x, nth[x, n + 1]) for e, op in enumerate(view.execs) for x, n, _ in op.reads
                   if (x, n + 1) in nth)
    e0, e1 = run.exec_times[e]
    t = e1 - 1  # the COMPUTE's last cycle: it still reads
    chk = feed(view, schedule(view, run, {("prog", w): t}))
    assert (f"cycle {t}: WRITE {w} starts programming crossbar {x} while COMPUTE {e} (started in cycle {e0}) "
            "reads it") in chk.violations


def test_wrong_tag(mlp):
    """A tile entry expecting another tag than its WRITE carries (a scheduler or tile-table bug)."""
    view, run = mlp
    e = next(i for i, op in enumerate(view.execs) if op.kind == "compute")
    x, n, (layer, g, r, c) = view.execs[e].reads[0]
    bad = list(view.execs)
    bad[e] = dataclasses.replace(bad[e], reads=((x, n, (layer, g, r + 1, c)),) + bad[e].reads[1:])
    chk = feed(dataclasses.replace(view, execs=bad), schedule(view, run))
    assert len(chk.violations) == 1 and chk.violations[0].startswith(
        f"cycle {run.exec_times[e][0]}: COMPUTE {e} reads crossbar {x}: WRITE ")
    assert "carries tag" in chk.violations[0]
