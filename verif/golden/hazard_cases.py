"""Programs for ``sim_models.hazards`` (``test_hazard_rules.py``): the programs the CI system tests run
(:func:`ci_chains`) and small ``tiny`` cases built to make every interlock rule decide starts
(:func:`rule_chains`).

A :class:`Chain` is what one testbench runs back to back on one design: each program's golden run
starts from the crossbar contents the previous one left (cold for the first), as in
``verif/testbench/system.py`` and ``verif/hw/system.py``. Two simplifications: a run reset in the middle
(``reset_at``) is taken as a full run from the previous contents (its real expectation starts from the
rows written before the reset), and the cocotb disturbed runs (stalls, a late host: cycles are checked
only for growth) are included as undisturbed.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field

import numpy as np

from aras.config import Config, preset
from aras.program import Program, Write, assemble
from aras.trace import Trace
from sim_models import hazards, timing
from sim_models.scheduler import MODES, Options, schedule
from verif.golden.tracegen import mlp_trace, random_multipliers, weight_layer_trace

TINY = preset("tiny")
TINY_ADC = preset("tiny-adc")
TWO_DRIVERS = dataclasses.replace(TINY, name="two-drivers", write_drivers_per_pe=2, write_buffer_bytes=256)


@dataclass
class Chain:
    name: str
    cfg: Config
    runs: list[tuple[str, Trace, Program]] = field(default_factory=list)  # (label, trace, program)


def analyse(chain: Chain) -> list[tuple[str, list[hazards.Start]]]:
    """The starts of every run of the chain (each from the contents the previous run left)."""
    out, initial = [], None
    for label, tr, prog in chain.runs:
        res = hazards.analyse(tr, prog, chain.cfg, initial)
        out.append((label, res.starts))
        initial = res.run.final_levels
    return out


# ------------------------------------------------------------------------------- the CI system tests
def ci_chains() -> list[Chain]:
    """Every program of the non-slow system tests: ``verif/cocotb/test_top_tb.py`` (cases of
    ``system_vectors.py``) and ``verif/hw/test_top.py``, in their testbenches' order."""
    return cocotb_chains() + top_chains()


def cocotb_chains() -> list[Chain]:
    from verif.testbench.system_vectors import make_case

    def chain(name, cfg, cases):
        c = Chain(f"cocotb {name}", cfg)
        for k in cases:
            # run k > 0 of a case: the steady state of the same program
            c.runs += [(f"{k.name} run {r}", k.trace, k.prog) for r in range(len(k.inputs))]
        return c

    every = [make_case("spec", TINY)] + [make_case(f"conv@{m}", TINY, seed=3) for m in MODES]
    every += [make_case(f"fc@{m}", TINY, seed=5) for m in ("aras", "baseline")]
    every += [make_case("mlp@aras", TINY, seed=4, runs=2), make_case("mlp@baseline", TINY, seed=4)]
    return [chain("every mode and rounds", TINY, every),
            chain("reset mid-run", TINY, [make_case("spec", TINY, seed=5)]),
            chain("mtcnn-pnet", TINY, [make_case("mtcnn-pnet", TINY)]),
            chain("disturbed (stalls)", TINY, [make_case("mlp@aras", TINY, seed=9)]),
            chain("disturbed (host)", TINY, [make_case("mlp@baseline", TINY, seed=9)]),
            chain("tiny-adc", TINY_ADC, [make_case(f"{k}@{m}", TINY_ADC, seed=7) for k in ("conv", "fc")
                                         for m in ("aras", "baseline", "no-diff-write")])]


def top_chains() -> list[Chain]:
    from verif.golden.test_spec_example import example_trace
    from verif.hw import test_top as t

    spec = example_trace()
    sprog = schedule(spec, TINY, "aras", Options(reencode=False, placement=False))
    after = timing.run(sprog, spec, TINY)
    resident = schedule(spec, TINY, "aras", Options(reencode=False, placement=False), initial=after.final_levels,
                        initial_writes={w.xbar: w for w in sprog.writes})
    conv, dw, rep, mixed = t._conv(3), t._depthwise(5), t._small_conv(6), t._mixed()
    shared = t._linear(9, k=20, t=3, n=6)
    tiny = Chain("test_top tiny programs", TINY, [
        ("spec cold", spec, sprog), ("spec steady", spec, sprog), ("spec resident tiles", spec, resident),
        ("conv offset", conv, schedule(conv, TINY, "aras")),
        ("conv signmag", conv, schedule(conv, TINY, "aras", Options(family="signmag"))),
        ("depthwise packed", dw, schedule(dw, TINY, "aras")), ("replicated conv", rep, schedule(rep, TINY, "aras")),
        ("mixed cnn", mixed, schedule(mixed, TINY, "aras")),
        ("linear, shared word", shared, schedule(shared, TINY, "aras"))])
    conv7, lin8 = t._conv(7), t._linear(8, k=40, t=3)
    adc = Chain("test_top tiny-adc", TINY_ADC, [
        ("conv offset", conv7, schedule(conv7, TINY_ADC, "aras")),
        ("conv signmag", conv7, schedule(conv7, TINY_ADC, "aras", Options(family="signmag"))),
        ("linear baseline", lin8, schedule(lin8, TINY_ADC, "baseline"))])
    b2 = TINY.replace(batch=2)
    lin4 = t._linear(4)
    sprog2 = schedule(spec, b2, "aras")
    batch = Chain("test_top batch 2", b2, [("linear spill/restore", lin4, schedule(lin4, b2, "aras"))] +
                  [(lbl, spec, sprog2) for lbl in ("spec via streams", "spec reset mid-run", "tag mismatch")])
    two = Chain("test_top two drivers", TWO_DRIVERS, [("linear", lin4, schedule(lin4, TWO_DRIVERS, "aras"))])
    chunks = Chain("test_top member chunks", TINY, [("linear", lin4, schedule(lin4, TINY, "aras"))])
    return [tiny, adc, batch, two, chunks]


# ------------------------------------------------------------------- cases that make every rule decide
def linear(seed: int = 4, k: int = 150, t: int = 2, n: int = 5) -> Trace:
    """A random linear layer; k = 150: 10 row chunks over ``tiny``'s 8 crossbars (partial-sum rounds,
    every crossbar rewritten)."""
    rng = np.random.default_rng(seed)
    m, s = random_multipliers(rng, n)
    return weight_layer_trace(rng.integers(-127, 128, (n, k)), in_shape=(t, k), mult=m, shift=s, zx=7, zo=-4)


def mlp(seed: int = 2, dims: tuple[int, ...] = (24, 20, 12, 6)) -> Trace:
    """Random linear layers (ReLU between) and a softmax on the host."""
    return mlp_trace(seed, dims, "hazard-mlp", with_logits=False)


def every_write_twice(prog: Program) -> Program:
    """A copy of ``prog`` in which every WRITE is followed by the same WRITE again (same tile, same
    crossbar): the COMPUTE waits for the second one, which may program only once the first has (WAW)."""
    p = copy.deepcopy(prog)
    p.notes = {}
    instrs = []
    for ins in p.instrs:
        instrs.append(ins)
        if isinstance(ins, Write):
            instrs.append(copy.copy(ins))
    p.instrs = instrs
    return assemble(p)


def mixed(seed: int = 1) -> Trace:
    """The mixed CNN of ``verif/golden/smallnets.py`` (conv, depthwise, add, pools, gap, linear, softmax),
    quantized on random data: VECTOR and HOST layers between rounds."""
    from aras.models import ModelSource
    from aras.quantize import quantize
    from verif.golden.smallnets import mixed_cnn

    g = mixed_cnn()
    x = np.random.default_rng(seed).normal(size=(32,) + g.input_shape)
    return quantize(ModelSource(g, x, x[:4]))


def rule_chains() -> list[Chain]:
    """Small programs on ``tiny`` in which every rule of ``sim_models.timing.RULES`` decides starts.

    On ``tiny`` (one write driver per PE) ``pe_order`` can never bind (the driver is busy for at least
    the previous WRITE's programming) and ``waw`` binds only tied with ``driver``; the same programs on
    ``tiny`` with two drivers per PE (:data:`TWO_DRIVERS`, as ``test_top.py`` uses) make both decide alone."""
    lin, net, cnn = linear(), mlp(), mixed()
    chip = linear(k=128)  # 8 row chunks: whole-chip rounds, crossbar X - 1 written last
    aras = schedule(lin, TINY, "aras")
    tiny = Chain("tiny: rounds and rewrites", TINY, [
        ("linear aras", lin, aras), ("linear baseline", lin, schedule(lin, TINY, "baseline")),
        ("linear whole-chip rounds aras", chip, schedule(chip, TINY, "aras")),
        ("linear whole-chip rounds baseline", chip, schedule(chip, TINY, "baseline")),
        ("linear lookahead 1", lin, schedule(lin, TINY, "aras", Options(lookahead=1))),
        ("mlp + softmax aras", net, schedule(net, TINY, "aras")),
        ("mlp + softmax baseline", net, schedule(net, TINY, "baseline")),
        ("mixed cnn aras", cnn, schedule(cnn, TINY, "aras")),
        ("linear aras, every WRITE twice", lin, every_write_twice(aras))])
    two = schedule(lin, TWO_DRIVERS, "aras")
    drivers = Chain("tiny, two drivers per PE", TWO_DRIVERS, [
        ("linear aras", lin, two), ("linear aras, every WRITE twice", lin, every_write_twice(two)),
        ("linear aras, WAR-bound WRITEs first", lin, war_first(two))])
    return [tiny, drivers]


def war_first(prog: Program) -> Program:
    """A copy of ``prog`` with every run of consecutive WRITEs reordered so that those that wait for more
    execution (``wait_exec``, WAR) come first (stable): a WRITE that waits for nothing then waits for the
    start of the one before it on its PE (in-order programming start) instead."""
    p = copy.deepcopy(prog)
    p.notes = {}
    instrs, run = [], []
    for ins in p.instrs + [None]:
        if isinstance(ins, Write):
            run.append(ins)
            continue
        instrs += sorted(run, key=lambda w: -w.wait_exec)
        run = []
        if ins is not None:
            instrs.append(ins)
    p.instrs = instrs
    return assemble(p)
