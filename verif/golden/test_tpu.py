"""TPU-like baseline (sim_models/tpu.py): hand-computed cycles and events, folding, grouped convs, energy
bookkeeping, cost-matched sizing."""

import math

import numpy as np
import pytest

from aras.config import preset
from aras.errors import ArasError
from aras.trace import Layer, TensorQ, Trace
from sim_models.tpu import TpuConfig, aras_compute_area, folds, simulate_tpu, tpu_config
from verif.golden.tracegen import weight_layer_trace

TINY = preset("tiny")  # post_latency 3, DRAM 4 cycles + 4 B/cycle, 8 x 1 KiB Gbuffer, 4 vector lanes
BYTE_PJ = 17.2 / 32  # PUMA 64 KB eDRAM, 17.2 pJ per 256-bit access


def _lin(k, n, positions=None):
    w = (np.arange(n * k).reshape(n, k) % 7 - 3).astype(np.int8)
    return weight_layer_trace(w, in_shape=None if positions is None else (positions, k))


def _conv(cout, cin, hw, groups=1):
    w = np.ones((cout, cin // groups, 3, 3), np.int8)
    return weight_layer_trace(w, in_shape=(cin, hw, hw), groups=groups)


# ---------------------------------------------------------------------------------------------- cycles
def test_linear_5x3_on_4x4_resident():
    # K=5, N=3, P=1 on 4x4: row folds of 4 and 1 rows. Fold 0 loads in [0, 4) and streams 1 + 4 + 4 - 2 = 7
    # cycles in [4, 11); fold 1 loads in [4, 8) (shadow registers) and streams in [11, 18); requant +3.
    r = simulate_tpu(_lin(5, 3), TINY, TpuConfig(rows=4, cols=4))
    assert r["weights_resident"]
    (ly,) = r["layers"]
    assert r["cycles"] == 21 and (ly["start"], ly["end"]) == (4, 20)
    assert (ly["compute_cycles"], ly["write_cycles"], ly["dram_cycles"], ly["stall_cycles"]) == (14, 8, 0, 4)
    assert r["macs"] == 15 and ly["folds"] == 2


def test_linear_5x3_on_4x4_from_dram():
    # Tile 0 (12 B): DRAM [0, 4 + 3 = 7), load [7, 11), stream [11, 18). Tile 1 (3 B): DRAM [7, 7 + 4 + 1 = 12),
    # load [12, 16), stream [18, 25); + 3 -> 28.
    r = simulate_tpu(_lin(5, 3), TINY, TpuConfig(rows=4, cols=4, allow_resident=False))
    (ly,) = r["layers"]
    assert r["cycles"] == 28 and (ly["start"], ly["end"]) == (11, 27)
    assert ly["dram_cycles"] == 12 and r["events"]["dram_bytes"] == 15


def test_scale_sim_formula_without_weight_double_buffering():
    # Serialized loads give SCALE-Sim's (2R + C + T - 2) per fold exactly.
    r = simulate_tpu(_lin(5, 3), TINY, TpuConfig(rows=4, cols=4, double_buffer_weights=False))
    assert r["cycles"] == 2 * (2 * 4 + 4 + 1 - 2) + 3
    cfg = TINY.replace(batch=2)
    tr = _conv(5, 3, 6)  # K = 27, N = 5, P = 16, T = 32: 7 x 2 = 14 folds on 4x4
    r = simulate_tpu(tr, cfg, TpuConfig(rows=4, cols=4, double_buffer_weights=False))
    assert r["layers"][0]["folds"] == 14
    assert r["cycles"] == 14 * (2 * 4 + 4 + 32 - 2) + 3
    r = simulate_tpu(tr, cfg, TpuConfig(rows=4, cols=4))  # double-buffered: only the first load shows
    assert r["cycles"] == 4 + 14 * (32 + 4 + 4 - 2) + 3
    assert r["macs"] == 27 * 5 * 16 * 2


def test_folding_when_k_and_n_are_not_multiples():
    tr = _lin(70, 33)
    t = TpuConfig(rows=32, cols=32)
    fl = folds(tr.layers[0], tr, t)
    # column fold outer, row fold inner: (32, 32, 6) rows x (32, 1) columns
    assert [(f.k, f.n, f.first, f.last) for f in fl] == [
        (32, 32, True, False), (32, 32, False, False), (6, 32, False, True),
        (32, 1, True, False), (32, 1, False, False), (6, 1, False, True)]
    assert sum(f.nbytes for f in fl) == 70 * 33 and sum(f.macs for f in fl) == 70 * 33
    r = simulate_tpu(tr, TINY.replace(gbuf_banks=8), t)
    assert r["cycles"] == 32 + 6 * (1 + 32 + 32 - 2) + 3


def test_grouped_conv_costs_more_than_dense_with_same_macs():
    cfg, t = TINY, TpuConfig(rows=32, cols=32, pack_groups=False)  # SCALE-Sim's one group per fold
    dw = simulate_tpu(_conv(8, 8, 6, groups=8), cfg, t)  # depthwise: K_g = 9, N_g = 1, 8 groups
    dense = simulate_tpu(_conv(1, 8, 6), cfg, t)  # K = 72, N = 1: same 72 MACs per position
    assert dw["macs"] == dense["macs"] == 72 * 16
    assert dw["layers"][0]["folds"] == 8 and dense["layers"][0]["folds"] == 3
    assert dw["cycles"] > dense["cycles"] and dw["energy_j"]["total"] > dense["energy_j"]["total"]
    cold = t.replace(allow_resident=False)
    dw_cold, dense_cold = simulate_tpu(_conv(8, 8, 6, groups=8), cfg, cold), simulate_tpu(_conv(1, 8, 6), cfg, cold)
    assert dw_cold["cycles"] > dense_cold["cycles"] and dw_cold["layers"][0]["dram_cycles"] == 8 * (4 + 3)
    # Block-diagonal packing (ARAS's tiling): min(32 // 9, 32 // 1, 8) = 3 groups per fold -> 3 folds.
    packed = simulate_tpu(_conv(8, 8, 6, groups=8), cfg, t.replace(pack_groups=True))
    assert packed["layers"][0]["folds"] == 3 and packed["macs"] == dw["macs"]
    assert packed["cycles"] == dense["cycles"]


def test_partial_sums_that_do_not_fit_split_the_positions():
    # 600 positions x K=20 -> 5 row folds; live 600 x (20 + 4) = 14,400 B of a 16 KiB Gbuffer leaves
    # 16384 - 14400 - 80 (resident weights) = 1,904 B = 119 rows of 4 int32 partial sums -> ceil(600 / 119) = 6.
    cfg = TINY.replace(gbuf_banks=16)
    tr = _lin(20, 4, positions=600)
    r = simulate_tpu(tr, cfg, TpuConfig(rows=4, cols=4))
    assert r["weights_resident"] and r["layers"][0]["passes"] == 6 and r["layers"][0]["folds"] == 6 * 5
    assert r["macs"] == 600 * 20 * 4
    cold = simulate_tpu(tr, cfg, TpuConfig(rows=4, cols=4, allow_resident=False))
    assert cold["layers"][0]["passes"] == 5  # 1,984 B free without resident weights: 124 rows per pass
    assert cold["events"]["dram_bytes"] == 5 * 80  # weights re-fetched per pass


def test_vector_host_and_alias_layers():
    # maxpool 2x2/2 on (4, 6, 6): work 4*3*3*4 = 144 -> 144 / 4 lanes + 2 = 38 cycles; reshape: no step;
    # softmax: 1-cycle HOST handshake, 5 FLOPs per element reported.
    q = TensorQ
    tensors = {"x": q((4, 6, 6), 0.1, 0), "y": q((4, 3, 3), 0.1, 0), "z": q((36,), 0.1, 0),
               "s": q((36,), 1 / 256, -128)}
    layers = [Layer("pool", "maxpool", ["x"], "y", {"kernel": [2, 2], "stride": [2, 2], "pads": [0, 0, 0, 0],
                                                     "act_min": -128, "act_max": 127}),
              Layer("flat", "reshape", ["y"], "z", {"shape": [36]}),
              Layer("sm", "softmax", ["z"], "s", {"axis": -1})]
    tr = Trace("v", "synthetic", "x", tensors, layers, ["s"])
    tr.validate()
    r = simulate_tpu(tr, TINY, TpuConfig(rows=4, cols=4))
    assert [ly["name"] for ly in r["layers"]] == ["pool", "sm"]
    assert (r["layers"][0]["start"], r["layers"][0]["end"]) == (0, 37) and r["cycles"] == 39
    assert r["events"]["vector_ops"] == 144 and r["events"]["gbuf_bytes"] == 144 + 36
    assert r["host_work"]["flops_per_sample"] == 5 * 36


# ---------------------------------------------------------------------------------------------- energy
def test_events_of_the_5x3_layer_by_hand():
    r = simulate_tpu(_lin(5, 3), TINY, TpuConfig(rows=4, cols=4))
    ev = r["events"]
    # registers: fold 0 = 8*4*3 + 32*4*3 + 8*3*(4*5/2) = 720, fold 1 = 8*1*3 + 32*4*3 + 8*3*1 = 432
    # Gbuffer: inputs 4 + 1, psums 12 written + 12 read, outputs 3, resident weights 15; weight buffer 2 x 15
    assert ev == {"macs": 15, "acc_adds": 3, "reg_bits": 1152, "gbuf_bytes": 47, "wbuf_bytes": 30, "dram_bytes": 0,
                  "post_ops": 3, "vector_ops": 0}
    leak_mw = 8 * 0.46 * 1024 / 65536 + 32 * 0.46 / 65536  # Gbuffer banks + 2 x 16 B weight buffer
    want = 15 * 0.3 + 3 * 0.1 + 1152 * 0.009 + 77 * BYTE_PJ + 3 * 1.36 + 21 * leak_mw
    assert math.isclose(r["energy_j"]["total"], want * 1e-12, rel_tol=1e-12)


@pytest.mark.parametrize("resident", [True, False])
def test_energy_is_events_times_per_event_energies(resident):
    cfg = TINY.replace(batch=2)
    tr = _conv(6, 4, 6, groups=2)
    r = simulate_tpu(tr, cfg, TpuConfig(rows=8, cols=4, allow_resident=resident))
    ev, e = r["events"], r["per_event_pj"]
    comp = {
        "mac": ev["macs"] * 0.3 + ev["acc_adds"] * 0.1,
        "array": ev["reg_bits"] * 0.009,
        "sram_dynamic": (ev["gbuf_bytes"] + ev["wbuf_bytes"]) * BYTE_PJ,
        "sram_static": r["cycles"] * e["leak_mw"],
        "dram": ev["dram_bytes"] * 8 * 20.0,
        "vector": 0.0,
        "post": ev["post_ops"] * 1.36,
    }
    for k, v in comp.items():
        assert math.isclose(r["energy_j"][k], v * 1e-12, rel_tol=1e-12, abs_tol=1e-30), k
    assert math.isclose(r["energy_j"]["total"], sum(comp.values()) * 1e-12, rel_tol=1e-12)
    assert ev["dram_bytes"] == (0 if resident else 6 * 2 * 9)
    assert ev["post_ops"] == 2 * 6 * 16 and ev["macs"] == 2 * 16 * 6 * 2 * 9
    # layers partition the run: energies and events add up
    assert math.isclose(sum(ly["energy_j"]["total"] for ly in r["layers"]), r["energy_j"]["total"], rel_tol=1e-12)


def test_lenet5_fixture_bookkeeping():
    tr = Trace.load("aras/fixtures/lenet5")
    cfg = preset("paper")
    r = simulate_tpu(tr, cfg)
    macs = 0
    for ly in tr.weight_layers():
        w, out = ly.arrays["weight"], tr.tensors[ly.output].shape
        macs += w.size * (out[1] * out[2] if ly.op == "conv2d" else 1)
    assert r["macs"] == macs
    assert r["weights_resident"] and r["events"]["dram_bytes"] == 0
    ends = [ly["end"] for ly in r["layers"]]
    assert ends == sorted(ends) and r["cycles"] == ends[-1] + 1
    assert math.isclose(sum(ly["energy_j"]["total"] for ly in r["layers"]), r["energy_j"]["total"], rel_tol=1e-9)
    cold = simulate_tpu(tr, cfg, tpu_config(cfg, allow_resident=False))
    assert cold["events"]["dram_bytes"] == r["weight_bytes"] and cold["cycles"] > r["cycles"]


# ---------------------------------------------------------------------------------------------- sizing
def test_paper_sizing():
    cfg = preset("paper")
    a = aras_compute_area(cfg)
    # 256 crossbars, 4096 9-bit ADCs (2 x 0.0012 mm2), 32768 DACs and S&Hs, 4096 shift-and-adds
    assert math.isclose(a["total"], 256 * 2.5e-5 + 4096 * 0.0024 + 32768 * (1.67e-7 + 3.9e-8) + 4096 * 6e-5)
    t = tpu_config(cfg)
    per_mac = t.area_mac_mm2 + 2 * 0.086 / 65536
    assert t.rows == t.cols == 79
    assert 79 ** 2 * per_mac <= a["total"] < 80 ** 2 * per_mac
    assert tpu_config(cfg, pow2=True).rows == 64


def test_sizing_is_monotone_in_crossbar_count():
    sizes = [tpu_config(preset("paper").replace(n_pe=n)).rows for n in (1, 2, 4, 8, 16)]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]
    assert sizes[2] == 79


def test_bad_tpu_config_is_an_aras_error():
    with pytest.raises(ArasError, match="rows"):
        TpuConfig(rows=0)
    with pytest.raises(ArasError, match="e_mac_pj"):
        TpuConfig(e_mac_pj=-1.0)
    with pytest.raises(ArasError, match="derived"):
        tpu_config(TINY, rows=4)
