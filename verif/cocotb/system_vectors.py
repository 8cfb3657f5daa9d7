"""System-level test vectors for the cocotb tests of the generated ``hw.top.Top`` (``top_tb.py``).

A case is a trace, its scheduled program and int8 inputs, rebuilt deterministically from
``(name, config, seed)`` by :func:`make_case` (so the cocotb side can rebuild it when it must compute an
expectation itself, e.g. after a reset in the middle of a run). :func:`vectors` turns a case into the
arrays ``top_tb.py`` drives and checks: the program image, the DRAM image, the input bytes, and the
golden outcome — ``sim_models.timing.run`` (total cycles, the status block: every counter,
``cells_changed``, the layer windows; the final crossbar levels) and ``sim_models.functional.run`` with
the program's encoding plan (every output byte).

The generated Verilog has fixed memory sizes, so every case of one config runs on one build:
:data:`TOP_PARAMS` are the ``Top`` parameters both sides use.
"""

from __future__ import annotations

import numpy as np

from aras import isa
from aras.config import Config
from aras.trace import Trace
from hw.top import status_names
from sim_models import functional, timing
from sim_models.functional import plan_from_program
from sim_models.scheduler import Options, schedule
from verif.golden.test_spec_example import example_trace
from verif.golden.tracegen import random_multipliers, weight_layer_trace

__all__ = ["TOP_PARAMS", "CASES", "make_case", "expected", "vectors"]

# Room for every case below (the §10.6 example: 34 program rows, 168 DRAM bytes, 3 layers).
TOP_PARAMS = {"program_words": 64, "dram_bytes": 1024, "max_layers": 4}
ONES = (1 << 64) - 1  # a layer window register that was never set


def _spec(cfg: Config, seed: int):
    tr = example_trace()
    return tr, schedule(tr, cfg, "aras", Options(reencode=False, placement=False))


def _conv(cfg: Config, seed: int):
    """A random 3x3 conv, 3 → 6 channels on 4x5 with padding, stride (1, 2), zero points and ReLU."""
    rng = np.random.default_rng(seed)
    w = rng.integers(-127, 128, (6, 3, 3, 3))
    m, s = random_multipliers(rng, 6)
    tr = weight_layer_trace(w, in_shape=(3, 4, 5), zx=-3, zo=5, pads=(1, 1, 0, 1), stride=(1, 2), mult=m, shift=s,
                            bias=rng.integers(-3000, 3000, 6), act=("relu", 5, 127))
    return tr, schedule(tr, cfg, "aras")


CASES = {"spec": _spec, "conv": _conv}


def make_case(name: str, cfg: Config, seed: int) -> tuple[Trace, object, np.ndarray]:
    """(trace, program, int8 inputs of shape (batch,) + input shape) of case ``name``."""
    tr, prog = CASES[name](cfg, seed)
    x = np.random.default_rng(seed + 1000).integers(-128, 128, (cfg.batch,) + tr.input_q.shape).astype(np.int8)
    return tr, prog, x


def expected(trace: Trace, prog, cfg: Config, inputs: np.ndarray, initial: np.ndarray | None = None) -> dict:
    """The golden outcome of one run starting from crossbar contents ``initial`` (None: all level 0).

    Returns ``exp_cycles``, ``exp_status`` (uint64, by status address for the trace's layers; an unset
    layer window is all ones), ``exp_out`` (the output tensors' bytes, in ``trace.outputs`` order) and
    ``exp_levels`` (n_xbars, rows, cols).
    """
    gold = timing.run(prog, trace, cfg, initial)
    want = functional.run(trace, cfg, inputs, plan=plan_from_program(prog, trace, cfg))
    names = status_names(cfg, len(trace.layers))
    L = cfg.levels
    val = {"cycles": gold.cycles, **gold.counters}
    val.update({f"cells_changed[{o}][{n}]": int(gold.cells_changed[o, n]) for o in range(L) for n in range(L)})
    for li in range(len(trace.layers)):
        lt = gold.layers.get(li)
        for k in ("start", "end", "wstart", "wend"):
            v = None if lt is None else getattr(lt, k)
            val[f"layer_{k}[{li}]"] = ONES if v is None else v
    out = b"".join(np.asarray(want[o]).astype(np.int8).tobytes() for o in trace.outputs)
    return {"exp_cycles": np.array(gold.cycles), "exp_status": np.array([val[n] for n in names], np.uint64),
            "exp_out": np.frombuffer(out, np.int8).copy(), "exp_levels": np.asarray(gold.final_levels, np.int64)}


def vectors(name: str, cfg: Config, seed: int = 0, *, reset_at: int = -1, idle: float = 0.3,
            backpressure: float = 0.3) -> dict[str, np.ndarray]:
    """All arrays ``top_tb.py`` needs for case ``name`` (npz-ready).

    ``reset_at`` >= 0: reset the design in that cycle of a first run, then run again; the expectation
    then depends on what the interrupted run left in the cells, so the cocotb side computes it after
    the reset (:func:`expected` on the peeked levels) and ``exp_*`` here describe a cold run only.
    """
    tr, prog, x = make_case(name, cfg, seed)
    im = isa.encode(prog, tr, cfg)
    ta = prog.tensors[tr.input]
    outs = [prog.tensors[o] for o in tr.outputs]
    v = {"case": np.array(name), "seed": np.array(seed), "reset_at": np.array(reset_at),
         "idle": np.array(idle), "backpressure": np.array(backpressure),
         "program": np.frombuffer(im.program, np.uint8).copy(), "dram": np.frombuffer(im.dram, np.uint8).copy(),
         "in_base": np.array(ta.base), "inputs": x.reshape(-1).copy(), "n_layers": np.array(len(tr.layers)),
         "out_base": np.array([t.base for t in outs]), "out_len": np.array([prog.batch * t.item_bytes for t in outs]),
         "out_names": np.array(list(tr.outputs))}
    v.update(expected(tr, prog, cfg, x))
    return v
