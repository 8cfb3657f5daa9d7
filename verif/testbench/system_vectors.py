"""System-level cases for the cocotb runs of the generated ``hw.top.Top`` (``top_tb.py``) and for
``aras verify``.

A :class:`Case` is a trace, the program the scheduler emits for it in one mode, and the int8 inputs of
one or more runs (each run one batch, back to back on one design with a reset in between: cells and
tile metadata survive, so run k > 0 starts from the cells run k − 1 left — the steady state).
:func:`make_case` rebuilds a named case deterministically from ``(name, config, seed, runs)``;
:func:`trace_case` wraps any trace (``aras verify``). :func:`vectors` turns a case into the arrays
``top_tb.py`` drives and checks, with the golden outcome of every run: ``sim_models.timing.run`` (total
cycles, the status block — every counter, ``cells_changed``, the layer windows —, the execute-side
counters of every layer, the final crossbar levels) and ``sim_models.functional.run`` with the
program's encoding plan (every output byte and a checksum of every layer's output tensor).

Case names: ``spec`` (the §10.6 worked example), ``conv`` / ``fc`` (one random layer), ``mlp`` (three
random linear layers with ~7x the ``tiny`` chip's weights — rounds and rewrites — and a host softmax),
``lenet5`` (real trained weights, real test digits), ``mtcnn-pnet`` (real weights, both heads, host
softmax), ``rand`` (a random network over shapes, ``verif/golden/randnet.py``, drawn to fit the build of
:data:`TOP_PARAMS`), each optionally ``@MODE`` with MODE in ``sim_models.scheduler.MODES`` (default ``aras``).

The generated Verilog has fixed memory sizes, so every case of one config runs on one build:
:data:`TOP_PARAMS` are the ``Top`` parameters both sides use.
"""

from __future__ import annotations

import dataclasses
import json
import zlib

import numpy as np

from aras import isa
from aras.config import Config
from aras.errors import ArasError
from aras.program import Host
from aras.trace import Trace
from hw.top import status_names
from sim_models import functional, timing
from sim_models.functional import plan_from_program
from sim_models.scheduler import MODES, Options, schedule

__all__ = ["TOP_PARAMS", "MODES", "EXEC_COUNTERS", "Case", "make_case", "trace_case", "expected", "vectors",
           "checksum", "top_params", "case_cycles"]

# Room for every case below (LeNet-5 on tiny: 1,508 program rows, 44,190 DRAM bytes, 8 layers).
TOP_PARAMS = {"program_words": 2048, "dram_bytes": 1 << 16, "max_layers": 8}
ONES = (1 << 64) - 1  # a layer window register that was never set

# Counters of the execute stream: one execute instruction runs at a time and its events land in
# [E_start, E_fin), so their per-layer values are differences of the status block at layer boundaries.
EXEC_COUNTERS = ("adc_conversions", "xbar_reads", "dac_activations", "input_sum_ops", "post_ops", "vector_ops",
                 "gbuf_reads", "gbuf_writes", "psum_spill_words")


@dataclasses.dataclass
class Case:
    name: str
    trace: Trace
    prog: object  # aras.program.Program
    inputs: np.ndarray  # int8, (runs, batch) + input shape
    inputs_note: str  # where the inputs come from (real / synthetic)
    seed: int = 0
    first_sample: int | None = None  # index of the first trace sample used (None: random inputs)


def checksum(data: bytes | np.ndarray) -> int:
    """CRC-32 of the bytes (int8 tensors in their Gbuffer layout)."""
    return zlib.crc32(np.asarray(data).astype(np.int8).tobytes() if isinstance(data, np.ndarray) else data)


# ---------------------------------------------------------------- traces
# The named cases of make_case (the tests, scripts/regress.py) build their traces with verif/golden's
# generators, imported here only when such a case is made: aras verify (trace_case) never loads them.
def _spec(seed: int) -> Trace:
    from verif.golden.test_spec_example import example_trace

    return example_trace()


def _conv(seed: int) -> Trace:
    """A random 3x3 conv, 3 → 6 channels on 4x5 with padding, stride (1, 2), zero points and ReLU."""
    from verif.golden.tracegen import random_multipliers, weight_layer_trace

    rng = np.random.default_rng(seed)
    w = rng.integers(-127, 128, (6, 3, 3, 3))
    m, s = random_multipliers(rng, 6)
    return weight_layer_trace(w, in_shape=(3, 4, 5), zx=-3, zo=5, pads=(1, 1, 0, 1), stride=(1, 2), mult=m, shift=s,
                              bias=rng.integers(-3000, 3000, 6), act=("relu", 5, 127))


def _fc(seed: int) -> Trace:
    """A random linear layer 40 → 7 over 2 tokens (3 row chunks: cross-tile accumulation)."""
    from verif.golden.tracegen import random_multipliers, weight_layer_trace

    rng = np.random.default_rng(seed)
    w = rng.integers(-127, 128, (7, 40))
    m, s = random_multipliers(rng, 7)
    return weight_layer_trace(w, in_shape=(2, 40), mult=m, shift=s, zx=7, zo=-4, bias=rng.integers(-2000, 2000, 7))


def _mlp(seed: int) -> Trace:
    """Three random linear layers (3,520 weights, ~7x the 512 of ``tiny``'s 8 crossbars) and a softmax on
    the host; outputs: the logits and the probabilities."""
    from verif.golden.tracegen import mlp_trace

    return mlp_trace(seed, (48, 40, 32, 10), "mlp")


def _model(name):
    def load(seed: int) -> Trace:
        from aras.models import load_model
        return load_model(name)
    return load


def _rand(seed: int, cfg: Config) -> Trace:
    """A random network over shapes that fits the fixed build (program, DRAM image, layers)."""
    from verif.golden.randnet import random_trace

    def fits(tr: Trace) -> bool:
        prog = schedule(tr, cfg, "aras", Options.for_mode("aras"))
        need = _needs(Case(tr.name, tr, prog, np.zeros(0, np.int8), ""), cfg, isa.encode(prog, tr, cfg))
        return all(v <= TOP_PARAMS[k] for k, v in need.items())

    return random_trace(seed, cfg, max_layers=TOP_PARAMS["max_layers"], fits=fits)


TRACES = {"spec": _spec, "conv": _conv, "fc": _fc, "mlp": _mlp, "lenet5": _model("lenet5"),
          "mtcnn-pnet": _model("mtcnn-pnet")}


def _options(mode: str) -> tuple[str, Options]:
    if mode not in MODES:
        raise ArasError(f"unknown mode {mode!r}; modes: {', '.join(MODES)}")
    smode, kw = MODES[mode]
    return smode, Options.for_mode(smode, **kw)


def trace_case(trace: Trace, cfg: Config, mode: str = "aras", *, runs: int = 1, seed: int = 0,
               name: str | None = None, opts: Options | None = None) -> Case:
    """A case of any trace: its program in ``mode`` and ``runs`` batches of inputs — the trace's own
    samples (in order from ``seed·runs·batch``) when it has enough, random int8 otherwise."""
    smode, default_opts = _options(mode)
    prog = schedule(trace, cfg, smode, opts or default_opts)
    n = runs * cfg.batch
    shape = (runs, cfg.batch) + trace.input_q.shape
    if trace.samples is not None and len(trace.samples) >= n:
        first = (seed * n) % (len(trace.samples) - n + 1)
        x = trace.samples[first:first + n].reshape(shape)
        what = "real" if trace.weights == "real" and "synthetic" not in (trace.notes or "").lower() else "trace"
        note = f"{what} samples {first}..{first + n - 1} of the trace"
    else:
        first = None
        x = np.random.default_rng(seed + 1000).integers(-128, 128, shape).astype(np.int8)
        note = f"random int8 (seed {seed + 1000})"
    return Case(name or f"{trace.name}@{mode}", trace, prog, np.ascontiguousarray(x, np.int8), note, seed, first)


def make_case(name: str, cfg: Config, seed: int = 0, runs: int = 1) -> Case:
    """Case ``NAME[@MODE]`` (see the module docstring)."""
    base, _, mode = name.partition("@")
    if base not in TRACES and base != "rand":
        raise ArasError(f"unknown case {base!r}; cases: rand, {', '.join(TRACES)}")
    mode = mode or "aras"
    tr = _rand(seed, cfg) if base == "rand" else TRACES[base](seed)
    opts = Options(reencode=False, placement=False) if base == "spec" and mode == "aras" else None
    return trace_case(tr, cfg, mode, runs=runs, seed=seed, name=f"{base}@{mode}", opts=opts)


# ---------------------------------------------------------------- golden outcome
def case_cycles(case: Case, cfg: Config) -> int:
    """Golden cycles of the case's first run, cold."""
    return timing.run(case.prog, case.trace, cfg).cycles


def expected(case: Case, cfg: Config, run: int = 0, initial: np.ndarray | None = None) -> dict:
    """The golden outcome of run ``run`` starting from crossbar contents ``initial`` (None: all level 0).

    ``exp_cycles``, ``exp_status`` (uint64, by status address for the trace's layers; an unset layer
    window is all ones), ``exp_out`` (the output tensors' bytes, in ``trace.outputs`` order),
    ``exp_levels`` (n_xbars, rows, cols), ``exp_layer_crc`` (CRC-32 of every layer's output tensor, batch
    first, as the Gbuffer holds it) and ``exp_layer_counters`` (layers x :data:`EXEC_COUNTERS`).
    """
    tr, prog = case.trace, case.prog
    gold = timing.run(prog, tr, cfg, initial)
    allt = functional.run(tr, cfg, case.inputs[run], plan=plan_from_program(prog, tr, cfg), keep_all=True)
    names = status_names(cfg, len(tr.layers))
    L = cfg.levels
    val = {"cycles": gold.cycles, **gold.counters}
    val.update({f"cells_changed[{o}][{n}]": int(gold.cells_changed[o, n]) for o in range(L) for n in range(L)})
    lcnt = np.zeros((len(tr.layers), len(EXEC_COUNTERS)), np.uint64)
    for li in range(len(tr.layers)):
        lt = gold.layers.get(li)
        for k in ("start", "end", "wstart", "wend"):
            v = None if lt is None else getattr(lt, k)
            val[f"layer_{k}[{li}]"] = ONES if v is None else v
        if lt is not None:
            lcnt[li] = [lt.counters.get(k, 0) for k in EXEC_COUNTERS]
    out = b"".join(np.asarray(allt[o]).astype(np.int8).tobytes() for o in tr.outputs)
    return {"exp_cycles": np.array(gold.cycles), "exp_status": np.array([val[n] for n in names], np.uint64),
            "exp_out": np.frombuffer(out, np.int8).copy(), "exp_levels": np.asarray(gold.final_levels, np.int64),
            "exp_layer_crc": np.array([checksum(np.asarray(allt[ly.output])) for ly in tr.layers], np.int64),
            "exp_layer_counters": lcnt}


def _needs(case: Case, cfg: Config, im) -> dict[str, int]:
    return {"program_words": len(im.words), "dram_bytes": len(im.dram), "max_layers": len(case.trace.layers)}


def top_params(case: Case, cfg: Config) -> dict[str, int]:
    """:data:`TOP_PARAMS`, each raised to the next power of two the case needs (``aras verify``)."""
    need = _needs(case, cfg, isa.encode(case.prog, case.trace, cfg))
    return {k: max(v, 1 << (need[k] - 1).bit_length()) for k, v in TOP_PARAMS.items()}


def _fits(case: Case, cfg: Config, im, params: dict) -> None:
    for k, v in _needs(case, cfg, im).items():
        if v > params[k]:
            raise ArasError(f"case {case.name} on {cfg.name}: needs {k} = {v}, the build has {params[k]} "
                            "(verif/testbench/system_vectors.py TOP_PARAMS; aras verify sizes its own build)")


def vectors(case: Case, cfg: Config, *, reset_at: int = -1, idle: float = 0.3, backpressure: float = 0.3,
            stall: float = 0.0, host_delay: float = 0.0, params: dict | None = None,
            initial: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """All arrays ``top_tb.py`` needs for ``case`` (npz-ready): images, inputs, tensor places and the golden
    outcome of every run (``exp_*`` stacked over runs; run k starts from run k − 1's golden levels).

    ``idle`` / ``backpressure``: random gaps on the load/unload streams (untimed). ``stall``: probability
    that the DRAM side holds a beat in a cycle of the run; ``host_delay``: probability that the host waits
    one more cycle before acknowledging (both only lengthen the run; :func:`vectors` then still gives
    the undisturbed expectation: the testbench checks cycles only for growth). ``params``: the ``Top``
    parameters of the build (default :data:`TOP_PARAMS`). ``initial``: the crossbar levels run 0 starts
    from (None: cold; a case that follows another one in the same simulator process starts from the
    levels the previous one left).
    ``reset_at`` >= 0: reset the design in that cycle of a first run, then run again; the expectation
    then depends on what the interrupted run left in the cells, so the cocotb side computes it after
    the reset (:func:`expected` on the peeked levels) and ``exp_*`` here describe a cold run only.
    """
    tr, prog = case.trace, case.prog
    if reset_at >= 0 and (len(case.inputs) != 1 or initial is not None):
        raise ArasError(f"case {case.name}: a reset in the middle of a run needs exactly one cold run")
    params = dict(params or TOP_PARAMS)
    im = isa.encode(prog, tr, cfg)
    _fits(case, cfg, im, params)
    ta = prog.tensors[tr.input]
    outs = [prog.tensors[o] for o in tr.outputs]
    runs = len(case.inputs)
    v = {"case": np.array(case.name), "top_params": np.array(json.dumps(params)), "seed": np.array(case.seed),
         "reset_at": np.array(reset_at), "idle": np.array(idle),
         "backpressure": np.array(backpressure), "stall": np.array(stall), "host_delay": np.array(host_delay),
         "program": np.frombuffer(im.program, np.uint8).copy(), "dram": np.frombuffer(im.dram, np.uint8).copy(),
         "in_base": np.array(ta.base), "inputs": case.inputs.reshape(runs, -1).copy(),
         "n_layers": np.array(len(tr.layers)),
         "out_base": np.array([t.base for t in outs]), "out_len": np.array([prog.batch * t.item_bytes for t in outs]),
         "out_names": np.array(list(tr.outputs)),
         "layer_names": np.array([ly.name for ly in tr.layers]),
         "layer_out_base": np.array([prog.tensors[ly.output].base for ly in tr.layers]),
         "layer_out_len": np.array([prog.batch * prog.tensors[ly.output].item_bytes for ly in tr.layers]),
         "tensor_names": np.array(list(prog.tensors)),
         "tensor_base": np.array([t.base for t in prog.tensors.values()]),
         "tensor_item": np.array([t.item_bytes for t in prog.tensors.values()]),
         "host_layers": np.array(sorted({i.layer for i in prog.instrs if isinstance(i, Host)}), np.int64)}
    exps = []
    for r in range(runs):
        e = expected(case, cfg, r, initial)
        initial = e["exp_levels"].astype(np.uint8)
        exps.append(e)
    for k in exps[0]:
        v[k] = np.stack([e[k] for e in exps])
    return v

