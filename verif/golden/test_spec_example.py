"""The worked example of docs/architecture.md §9.7 / §10.6, reproduced by the scheduler and the timing
model: every start/finish, the total of 318 cycles, the layer windows and the event counters."""

from __future__ import annotations

import numpy as np

from aras.config import preset
from aras.program import Compute, Write
from aras.trace import Layer, TensorQ, Trace
from sim_models.scheduler import Options, schedule
from sim_models.timing import run

TINY = preset("tiny")


def example_trace() -> Trace:
    """input (2, 4, 4) -> conv0 3x3, Cin 2, Cout 4, ReLU -> (4, 2, 2) -> flatten (16) -> fc2 16 -> 6.
    Every weight is 127 (offset code 255: all slices at level 3), so with the plain encoding every row
    has cells going 0 -> 3 from a cold start."""
    def wl(shape):
        n = shape[0]
        return {"weight": np.full(shape, 127, np.int8), "bias": np.zeros(n, np.int32),
                "mult": np.full(n, 1 << 30, np.int32), "shift": np.full(n, -8, np.int32)}

    tensors = {"t0": TensorQ((2, 4, 4), 0.1, 0), "t1": TensorQ((4, 2, 2), 0.1, -128),
               "t2": TensorQ((16,), 0.1, -128), "t3": TensorQ((6,), 0.1, 0)}
    layers = [
        Layer("conv0", "conv2d", ["t0"], "t1", {"act": "relu", "act_min": -128, "act_max": 127, "stride": [1, 1],
                                                "pads": [0, 0, 0, 0], "dilation": [1, 1], "groups": 1},
              wl((4, 2, 3, 3))),
        Layer("flat", "reshape", ["t1"], "t2", {"shape": [16]}),
        Layer("fc2", "linear", ["t2"], "t3", {"act": "none", "act_min": -128, "act_max": 127}, wl((6, 16))),
    ]
    tr = Trace("spec-example", "synthetic", "t0", tensors, layers, ["t3"])
    tr.validate()
    return tr


def test_worked_example_timing_and_counters():
    tr = example_trace()
    prog = schedule(tr, TINY, "aras", Options(reencode=False, placement=False))
    kinds = ["W" if isinstance(i, Write) else "E" for i in prog.instrs]
    assert kinds == ["W", "W", "E", "W", "W", "E"]
    w = prog.writes
    pe = [x.xbar // 4 for x in w]
    assert pe == [0, 1, 0, 1]
    assert [x.tile.rows for x in w] == [16, 2, 16, 16] and [x.tile.wcols for x in w] == [4, 4, 4, 2]
    assert all(x.wait_exec == 0 for x in w)  # no WAR: W2/W3 overlap the computation of layer 0
    r = run(prog, tr, TINY)
    assert r.write_times == [(0, 20, 20, 148), (20, 26, 26, 42), (26, 46, 148, 276), (46, 58, 58, 186)]
    assert r.exec_times == [(148, 281), (281, 318)]
    assert r.cycles == 318
    l0, l2 = r.layers[0], r.layers[2]
    assert (l0.start, l0.end, l0.wstart, l0.wend) == (148, 280, 20, 147)
    assert (l2.start, l2.end, l2.wstart, l2.wend) == (281, 317, 58, 275)
    c = r.counters
    assert c["dram_bytes"] == 168 and c["write_buffer_bytes"] == 336
    assert c["row_reads_before_write"] == 50 and c["cells_read_before_write"] == 672 and c["rows_written"] == 50
    assert c["xbar_reads"] == 80 and c["adc_conversions"] == 1216 and c["dac_activations"] == 832
    assert c["input_sum_ops"] == 80 and c["post_ops"] == 22
    assert c["gbuf_reads"] == 32 and c["gbuf_writes"] == 18
    assert c["gbuf_active_bank_cycles"] == 488


def test_worked_example_baseline_banks_all_on_and_no_overlap():
    tr = example_trace()
    prog = schedule(tr, TINY, "baseline")
    assert all(w.barrier and w.mode == 0 for w in prog.writes)
    r = run(prog, tr, TINY)
    assert r.counters["gbuf_active_bank_cycles"] == TINY.gbuf_banks * r.cycles
    e0 = [i for i, ins in enumerate(prog.instrs) if isinstance(ins, Compute)][0]
    later = [ins for ins in prog.instrs[e0 + 1:] if isinstance(ins, Write)]
    # every write of layer 2 waits for layer 0's computation to finish (barrier + wait_exec = 1)
    assert all(w.wait_exec == 1 for w in later)
    fin0 = r.exec_times[0][1]
    assert all(a >= fin0 for a, _, _, _ in r.write_times[2:])
