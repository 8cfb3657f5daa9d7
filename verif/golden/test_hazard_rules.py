"""Which interlock rule decides each start (``sim_models.hazards``; docs/verification.md, "Hazard rules and
which decide"), over the programs of the CI system tests and over small ``tiny`` cases built so that
every rule decides starts (``hazard_cases.py``); and a mutation of the golden model — the COMPUTE start
ignores the last crossbar's write — that those cases must notice.

The tables go to the run's terminal summary (the ``emit`` fixture of verif/conftest.py)."""

from __future__ import annotations

import copy
import functools

import pytest

from aras.program import Compute
from sim_models import hazards, timing
from sim_models.hazards import KINDS, TERMS
from sim_models.scheduler import Options, schedule
from sim_models.timing import RULES
from verif.golden import hazard_cases as hc
from verif.golden.test_spec_example import example_trace

SEVERAL = 3


@pytest.fixture(scope="module")
def chains():
    return {"cocotb": hc.cocotb_chains(), "test_top": hc.top_chains(), "added": hc.rule_chains()}


@pytest.fixture(scope="module")
def starts(chains):
    """group -> [(chain, label, program, starts)]"""
    out = {}
    for group, cs in chains.items():
        out[group] = [(ch, lbl, prog, st) for ch in cs
                      for (lbl, st), (_, _, prog) in zip(hc.analyse(ch), ch.runs, strict=True)]
    return out


def _all(starts, *groups):
    return [s for g in groups for _, _, _, st in starts[g] for s in st]


def _top_xbar(prog, index):
    ins = prog.execs[index]
    return max(te.xbar for te in ins.tiles if te.need_gen)


# --------------------------------------------------------------------------------- the model option
def _programs():
    spec = example_trace()
    lin = hc.linear()
    two = schedule(lin, hc.TWO_DRIVERS, "aras")
    return [(spec, schedule(spec, hc.TINY, "aras", Options(reencode=False, placement=False)), hc.TINY),
            (lin, schedule(lin, hc.TINY, "baseline"), hc.TINY),
            (lin, hc.every_write_twice(two), hc.TWO_DRIVERS)]


def _same(a: timing.Run, b: timing.Run) -> bool:
    return (a.cycles == b.cycles and a.counters == b.counters and a.write_times == b.write_times
            and a.exec_times == b.exec_times and (a.final_levels == b.final_levels).all()
            and (a.wear == b.wear).all() and a.write_energy_pj == b.write_energy_pj
            and {k: vars(v) for k, v in a.layers.items()} == {k: vars(v) for k, v in b.layers.items()})


@pytest.mark.parametrize("k", range(3))
def test_default_run_unchanged_and_terms_recorded(k):
    """No rule dropped: the run is the default one, recording the terms or not; every recorded start is
    the max() of its terms, and is the start the run reports."""
    tr, prog, cfg = _programs()[k]
    ref = timing.run(prog, tr, cfg)
    bounds = []
    assert _same(ref, timing.run(prog, tr, cfg, drop=frozenset(), bounds=bounds))
    assert _same(ref, timing.run(prog, tr, cfg, drop=frozenset()))
    assert len(bounds) == 2 * len(ref.write_times) + len(ref.exec_times)
    for kind, i, start, terms in bounds:
        assert set(terms) == set(TERMS[kind])
        core = {r: t for r, t in terms.items() if r not in hazards.SUB_RULES}
        assert start == max([0, *core.values()])
        times = ref.write_times[i] if kind.startswith("write") else ref.exec_times[i]
        want = times[2] if kind == "write_prog" else times[0]
        assert start == want
    with pytest.raises(ValueError, match="unknown rules"):
        timing.run(prog, tr, cfg, drop=frozenset({"wart"}))


def test_spec_example_known_answers():
    """§10.6: who decides each start of the worked example (by hand from the table)."""
    spec = example_trace()
    prog = schedule(spec, hc.TINY, "aras", Options(reencode=False, placement=False))
    res = hazards.analyse(spec, prog, hc.TINY)
    got = {(s.kind, s.index): (s.cycle, set(s.direct)) for s in res.starts}
    assert got == {("write_dram", 0): (0, set()), ("write_prog", 0): (20, {"fetch"}),
                   ("write_dram", 1): (20, {"dram"}), ("write_prog", 1): (26, {"fetch"}),
                   ("compute", 0): (148, {"raw", "raw_last"}),  # W0 (x0, 148) is written last, x4 (42) is top
                   ("write_dram", 2): (26, {"dram"}), ("write_prog", 2): (148, {"driver"}),  # PE0 drv0 free at 148
                   ("write_dram", 3): (46, {"dram"}), ("write_prog", 3): (58, {"fetch"}),
                   ("compute", 1): (281, {"exec_order"})}  # max(281, 276, 186)
    e0 = next(s for s in res.starts if (s.kind, s.index) == ("compute", 0))
    # without the last crossbar's wait E0 would start when x4 is written (42); without W0's fetch 20 earlier
    assert e0.earlier == {"raw": 148, "raw_last": 148 - 42, "fetch": 20}
    d = hazards.decisive_rules(spec, prog, hc.TINY)
    assert d["per_rule"]["raw_last"] == 2 and d["per_kind"]["compute", "raw_last"] == 2  # E0 direct, E1 earlier
    assert d["measures"]["sole"]["per_rule"]["raw_last"] == 1 and d["per_kind"].get(("compute", "raw_top"), 0) == 0


# ------------------------------------------------------------------------------------ which decide
def test_every_rule_decides(starts, emit):
    """Counts per rule on the CI system tests' programs and on the added cases; every rule must decide
    starts, and the added cases make every rule decide several starts on its own (``sole``)."""
    c = {g: hazards.counts(_all(starts, g)) for g in starts}
    ci = hazards.counts(_all(starts, "cocotb", "test_top"))
    added = c["added"]
    both = hazards.counts(_all(starts, "cocotb", "test_top", "added"))
    n = {g: sum(len(x[3]) for x in starts[g]) for g in starts}
    runs = {g: len(starts[g]) for g in starts}

    def m(cnt, measure):
        return cnt["measures"][measure]["per_rule"]

    text = [f"hazard rules: starts decided (decides = earlier without it, or binding and not issue order);"
            f" cocotb {runs['cocotb']} runs / {n['cocotb']} starts, test_top {runs['test_top']} / "
            f"{n['test_top']}, added {runs['added']} / {n['added']}",
            hazards.table({"cocotb": m(c["cocotb"], "decides"), "test_top": m(c["test_top"], "decides"),
                           "CI": m(ci, "decides"), "CI direct": m(ci, "direct"), "CI sole": m(ci, "sole"),
                           "added": m(added, "decides"), "added direct": m(added, "direct"),
                           "added sole": m(added, "sole"), "CI+added": m(both, "decides")}),
            "direct decisions per kind of start, CI + added:",
            hazards.table({k: {r: both["measures"]["direct"]["per_kind"].get((k, r), 0) for r in RULES}
                           for k in KINDS})]
    emit("\n".join(text))

    assert not any(sum(m(x, "later").values()) for x in c.values())  # no scheduling anomaly in these programs
    assert {r for r in RULES if both["per_rule"][r] == 0} == set(), "rules that decide no start"
    for measure in ("decides", "direct", "sole"):
        few = {r: v for r, v in m(added, measure).items() if v < SEVERAL}
        assert not few, f"added cases: rules deciding fewer than {SEVERAL} starts ({measure}): {few}"
    # the round's last crossbar by number, in a whole-chip round: the chip's last crossbar (X - 1)
    top_chip = [1 for ch, _, prog, st in starts["added"] for s in st
                if "raw_top" in s.sole and _top_xbar(prog, s.index) == ch.cfg.n_xbars - 1]
    assert len(top_chip) >= SEVERAL


# ---------------------------------------------------------------------------------------- mutation
def _observe(r: timing.Run) -> dict:
    """What the system tests compare: cocotb the status block (cycles, active-bank cycles, layer
    windows; the other counters do not depend on time), test_top.py also every start."""
    layers = {k: (v.start, v.end, v.wstart, v.wend) for k, v in r.layers.items()}
    return {"cycles": r.cycles, "status": (r.cycles, r.counters["gbuf_active_bank_cycles"], layers),
            "starts": (r.write_times, r.exec_times)}


def _skip_raw(prog, which, chip_last=None):
    """The program mutation equivalent to a controller that skips the RAW check of one tile entry of every
    round (the entry waits for nothing: need_gen 0): ``raw_top`` the highest-numbered waiting crossbar,
    ``chip_last`` crossbar ``chip_last`` = X - 1 (say, an off-by-one over the dense tile table)."""
    p = copy.deepcopy(prog)
    p.notes = {}
    for ins in p.instrs:
        waiting = [te for te in ins.tiles if te.need_gen] if isinstance(ins, Compute) else []
        for te in waiting:
            if te.xbar == (max(w.xbar for w in waiting) if which == "raw_top" else chip_last):
                te.need_gen = 0
    return p


@pytest.mark.parametrize("rule", ["raw_last", "raw_top", "chip_last"])
def test_mutation_compute_ignores_last_crossbar(chains, rule, monkeypatch, emit):
    """The golden model mutated so that a COMPUTE does not wait for its last crossbar's write
    (``raw_last``: the one written last; ``raw_top``: the highest-numbered of the round; ``chip_last``:
    crossbar X - 1, made in the program): the added cases see it in ``cycles`` and in starts; the printed
    line shows which CI programs would."""
    real = timing.run
    if rule != "chip_last":
        monkeypatch.setattr(timing, "run", functools.partial(real, drop=frozenset({rule})))
    got = {}
    for group, cs in chains.items():
        diff = {k: 0 for k in ("cycles", "status", "starts")}
        runs = list(_runs(cs, real))
        for ch, tr, prog, init in runs:
            if rule == "chip_last":
                mut = real(_skip_raw(prog, rule, ch.cfg.n_xbars - 1), tr, ch.cfg, init)
            else:
                mut = timing.run(prog, tr, ch.cfg, init)
            a, b = _observe(real(prog, tr, ch.cfg, init)), _observe(mut)
            for k in diff:
                diff[k] += a[k] != b[k]
            if rule == "raw_top":  # the same mutation made in the program instead of the model
                assert _observe(real(_skip_raw(prog, rule), tr, ch.cfg, init)) == b
        got[group] = (len(runs), diff)
    emit(f"mutation: COMPUTE ignores the {rule} crossbar's write; runs that differ from the golden "
          "model (cycles / status block / any start): "
          + "; ".join(f"{g} {d['cycles']}/{d['status']}/{d['starts']} of {n}" for g, (n, d) in got.items()))
    n, diff = got["added"]
    assert diff["cycles"] >= SEVERAL and diff["starts"] >= SEVERAL


def _runs(cs, run):
    """(chain, trace, program, initial contents) of every run of the chains; the contents a run leaves do
    not depend on time, so the golden ones serve the mutated model too."""
    for ch in cs:
        initial = None
        for _, tr, prog in ch.runs:
            yield ch, tr, prog, initial
            initial = run(prog, tr, ch.cfg, initial).final_levels
