"""The TPU-like baseline's SCALE-Sim calibration (docs/tpu.md): ``scalesim_compute_cycles`` by hand, the
``ws-scalesim`` timing against it, ``--tpu-array`` sizing and ``lower_bound``, and the closed form against
SCALE-Sim 3.0 itself on 21 layer shapes x 3 arrays (optional extra ``pip install -e '.[scalesim]'``; skipped
without it)."""

from __future__ import annotations

import builtins
import csv
import subprocess
import sys

import numpy as np
import pytest

from aras.config import preset, with_tpu
from aras.errors import ArasError
from sim_models.tpu import TpuConfig, scalesim_compute_cycles, simulate_tpu, tpu_for
from verif.golden.tracegen import weight_layer_trace

TINY = preset("tiny")  # post_latency 3
PAPER = preset("paper")


def _lin(k, n, positions=None):
    w = (np.arange(n * k).reshape(n, k) % 5 - 2).astype(np.int8)
    return weight_layer_trace(w, in_shape=None if positions is None else (positions, k))


def _conv(cout, cin, h, w, kh=3, kw=3, stride=1, groups=1):
    wt = np.ones((cout, cin // groups, kh, kw), np.int8)
    return weight_layer_trace(wt, in_shape=(cin, h, w), groups=groups, stride=(stride, stride))


# ---------------------------------------------------------------------------------------------- by hand
def test_closed_form_by_hand():
    # R x C array, T rows streamed, folds = ceil(K/R) ceil(N/C); SCALE-Sim's stall-free WS compute cycles are the
    # 0-based cycle of the last output row: folds (2R + C + T - 2) - 1.
    # linear K=5, N=3, T=1 on 4x4: 2 row folds x 1 column fold; a fold is 4 (load) + 4 - 1 + 1 (skewed input rows)
    # + 4 - 1 (drain) + 4 - 1 (skew of the outputs) = 2*4 + 4 + 1 - 2 = 11 cycles -> 22 - 1 = 21.
    assert scalesim_compute_cycles(1, 5, 3, 1, 4, 4) == 21
    # conv 3 -> 5, 3x3 over 6x6 (4x4 outputs), batch 2: K = 27, N = 5, T = 32 on 4x4: 7 x 2 = 14 folds of 42.
    assert scalesim_compute_cycles(1, 27, 5, 32, 4, 4) == 14 * 42 - 1 == 587
    # depthwise 8 channels 3x3 over 6x6 on 32x32: 8 SCALE-Sim layers of one fold, 2*32 + 32 + 16 - 2 = 110 each.
    assert scalesim_compute_cycles(8, 9, 1, 16, 32, 32) == 8 * 109 == 872
    # non-square 8x6, K = 30, N = 13, T = 12: 4 x 3 folds of 16 + 6 + 12 - 2 = 32.
    assert scalesim_compute_cycles(1, 30, 13, 12, 8, 6) == 12 * 32 - 1 == 383


def test_layers_carry_scalesim_cycles_and_ws_scalesim_times_them():
    cfg = with_tpu(TINY.replace(batch=2), "4x4", "ws-scalesim")
    r = simulate_tpu(_conv(5, 3, 6, 6), cfg)
    (ly,) = r["layers"]
    assert ly["scalesim_compute_cycles"] == 587 and ly["folds"] == 14
    # ws-scalesim: load then stream, fold after fold, nothing overlapped: the layer span is SCALE-Sim's count + 1
    # (its cycles are 0-based) + post_latency.
    assert r["cycles"] == 587 + 1 + 3 and ly["compute_cycles"] + ly["write_cycles"] == 588
    assert r["tpu"]["dataflow"] == "ws-scalesim" and not r["tpu"]["area_matched"]
    ws = simulate_tpu(_conv(5, 3, 6, 6), with_tpu(TINY.replace(batch=2), "4x4"))
    assert ws["layers"][0]["scalesim_compute_cycles"] == 587  # reported in either dataflow
    assert ws["cycles"] == 4 + 14 * (32 + 4 + 4 - 2) + 3 < r["cycles"]  # ws overlaps the loads


def test_ws_scalesim_depthwise_is_one_group_per_fold():
    cfg = with_tpu(TINY, "32x32", "ws-scalesim")
    r = simulate_tpu(_conv(8, 8, 6, 6, groups=8), cfg)
    (ly,) = r["layers"]
    assert ly["scalesim_compute_cycles"] == 872 and ly["folds"] == 8
    assert r["cycles"] == 872 + 8 + 3


def test_ws_scalesim_is_stall_free_and_does_not_overlap_layers():
    # Two linear layers with a HOST op (softmax) between them; DRAM-fed or resident, the timing is the same (stall-free
    # interface) while the DRAM bytes are counted.
    from aras.trace import Layer, TensorQ, Trace

    w1 = (np.arange(6 * 7).reshape(6, 7) % 3 - 1).astype(np.int8)
    w2 = (np.arange(5 * 6).reshape(5, 6) % 3 - 1).astype(np.int8)
    a1 = {"weight": w1, "bias": np.zeros(6, np.int32), "mult": np.full(6, 1 << 30, np.int32),
          "shift": np.full(6, -8, np.int32)}
    a2 = {"weight": w2, "bias": np.zeros(5, np.int32), "mult": np.full(5, 1 << 30, np.int32),
          "shift": np.full(5, -8, np.int32)}
    act = {"act": "none", "act_min": -128, "act_max": 127}
    tensors = {"x": TensorQ((3, 7), 0.05, 0), "h": TensorQ((3, 6), 0.1, 0), "r": TensorQ((3, 6), 1 / 256, -128),
               "y": TensorQ((3, 5), 0.1, 0)}
    layers = [Layer("A", "linear", ["x"], "h", dict(act), a1),
              Layer("P", "softmax", ["h"], "r", {"axis": -1}),
              Layer("B", "linear", ["r"], "y", dict(act), a2)]
    tr = Trace("two", "synthetic", "x", tensors, layers, ["y"])
    tr.validate("test trace")
    cfg = with_tpu(TINY, "4x4", "ws-scalesim")
    res = simulate_tpu(tr, cfg)
    cold = simulate_tpu(tr, cfg, tpu_for(cfg, allow_resident=False))
    assert cold["cycles"] == res["cycles"] and cold["events"]["dram_bytes"] == 42 + 30 > res["events"]["dram_bytes"]
    a, p, b = res["layers"]
    # A: K = 7 -> 2 row folds, N = 6 -> 2 column folds, T = 3: 4 folds of 2*4 + 4 + 3 - 2 = 13 -> SCALE-Sim 51.
    assert a["scalesim_compute_cycles"] == 51 and b["scalesim_compute_cycles"] == 51
    assert p["scalesim_compute_cycles"] is None
    vec = 1 + TINY.host_handoff_cycles  # the HOST handshake
    assert res["cycles"] == (51 + 1 + 3) + vec + (51 + 1 + 3)
    assert b["start"] == a["end"] + 1 + vec + 4  # B's first weight load waits for the HOST op (no overlap)


# ---------------------------------------------------------------------------------------------- sizing, bound
def test_tpu_array_overrides_area_matching_and_flags_it():
    r = simulate_tpu(_lin(40, 30, positions=9), with_tpu(PAPER, "16x24"))
    t = r["tpu"]
    assert (t["rows"], t["cols"]) == (16, 24) and not t["area_matched"] and t["area_matched_array"] == (79, 79)
    assert any("AREA MISMATCH" in a and "79x79" in a for a in r["assumptions"])
    m = simulate_tpu(_lin(40, 30, positions=9), PAPER)["tpu"]
    assert m["area_matched"] and (m["rows"], m["cols"]) == (79, 79)
    assert t["aras_compute_area_mm2"]["total"] == m["aras_compute_area_mm2"]["total"]
    assert t["array_area_mm2"]["total"] < m["array_area_mm2"]["total"]


def test_lower_bound_is_the_compute_bound_and_holds():
    tr = _conv(10, 6, 9, 9)  # K = 54, N = 10, 49 positions: 26,460 MACs
    for array, df in (("8x8", "ws"), ("8x8", "ws-scalesim"), ("3x5", "ws"), ("64x64", "ws-scalesim")):
        r, c = (int(x) for x in array.split("x"))
        res = simulate_tpu(tr, with_tpu(PAPER, array, df))
        assert res["lower_bound"]["cycles"] == -(-26460 // (r * c))
        assert res["lower_bound"]["cycles"] <= res["cycles"]
        assert "ceil(useful MACs / (rows x cols))" in res["lower_bound"]["rule"]


def test_bad_tpu_fields_are_one_line_errors():
    with pytest.raises(ArasError, match="'tpu_cols' must be set with tpu_rows"):
        PAPER.replace(tpu_rows=4)
    with pytest.raises(ArasError, match="'tpu_dataflow' must be one of ws, ws-scalesim"):
        PAPER.replace(tpu_dataflow="os")
    with pytest.raises(ArasError, match="--tpu-array 'x4'"):
        with_tpu(PAPER, "x4")
    assert tpu_for(PAPER.replace(tpu_rows=3, tpu_cols=7)) == TpuConfig(rows=3, cols=7)


@pytest.mark.parametrize("argv,msg", [
    (["simulate", "aras/fixtures/lenet5", "--mode", "tpu", "--tpu-array", "0x8"], "aras: --tpu-array '0x8': rows"),
    (["simulate", "aras/fixtures/lenet5", "--mode", "tpu", "--tpu-array", "8by8"], "aras: --tpu-array '8by8': must"),
    (["simulate", "aras/fixtures/lenet5", "--mode", "tpu", "--tpu-dataflow", "os"], "aras: --tpu-dataflow 'os'"),
    (["simulate", "aras/fixtures/lenet5", "--tpu-array", "8x8"], "aras: --tpu-array: only for the TPU-like"),
    (["compare", "aras/fixtures/lenet5", "--tpu-array=3x0", "-o", "OUT"], "aras: --tpu-array '3x0'"),
])
def test_cli_rejects_bad_tpu_flags_in_one_line(tmp_path, argv, msg):
    argv = [str(tmp_path / "o") if a == "OUT" else a for a in argv]
    r = subprocess.run([sys.executable, "-m", "aras.cli", *argv], capture_output=True, text=True, timeout=300)
    err = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(err) == 1 and err[0].startswith(msg), r.stderr


def test_cli_simulate_tpu_prints_both_areas_and_the_bound(tmp_path):
    out = tmp_path / "t.json"
    r = subprocess.run([sys.executable, "-m", "aras.cli", "simulate", "aras/fixtures/lenet5", "--config", "paper",
                        "--mode", "tpu", "--perf-only", "--tpu-array", "32x16", "--tpu-dataflow", "ws-scalesim",
                        "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "32x16" in r.stdout and "AREA MISMATCH" in r.stdout and "10.089 mm2" in r.stdout
    assert "lower bound:" in r.stdout
    import json

    res = json.loads(out.read_text())
    assert res["tpu"]["dataflow"] == "ws-scalesim" and (res["tpu"]["rows"], res["tpu"]["cols"]) == (32, 16)
    for ly in res["layers"]:
        assert (ly["scalesim_compute_cycles"] is None) == (ly["op"] not in ("conv2d", "linear"))
    assert sum(ly["scalesim_compute_cycles"] or 0 for ly in res["layers"]) > 0


# ---------------------------------------------------------------------------------------------- SCALE-Sim 3.0
# Conv shapes (name, H, W, kh, kw, C, N, stride) with (H - kh) and (W - kw) divisible by the stride, so SCALE-Sim's
# ceil((H - kh + s) / s) output size equals the trace's floor rule; "DP" = depthwise (SCALE-Sim: one layer per channel).
CONVS = [("c1", 10, 10, 3, 3, 3, 10, 1), ("c2", 9, 7, 3, 1, 5, 13, 2), ("c3", 8, 8, 1, 1, 16, 24, 1),
         ("c4", 11, 11, 5, 5, 2, 7, 2), ("c5", 6, 12, 3, 3, 8, 8, 3), ("c6", 7, 7, 7, 7, 1, 3, 1),
         ("c7", 12, 6, 2, 2, 4, 17, 2), ("c8", 5, 9, 3, 5, 6, 5, 1), ("DPd1", 8, 8, 3, 3, 6, 1, 1),
         ("c9", 14, 14, 3, 3, 12, 20, 1), ("DPd2", 9, 9, 3, 3, 4, 1, 2)]
GEMMS = [("g1", 1, 10, 20), ("g2", 7, 33, 70), ("g3", 16, 5, 3), ("g4", 50, 9, 17), ("g5", 3, 64, 64),
         ("g6", 24, 1, 40), ("g7", 2, 19, 130), ("g8", 128, 12, 12), ("g9", 9, 100, 1), ("g10", 31, 17, 29)]
ARRAYS = [(4, 4), (8, 6), (5, 16)]  # 11 conv + 10 GEMM = 21 layer shapes on each array: 63 layer-array pairs


def _ours_conv(sh, rows, cols):
    name, h, w, kh, kw, c, n, s = sh
    g = c if name.startswith("DP") else 1
    tr = _conv(n * g, c, h, w, kh, kw, s, groups=g)
    return simulate_tpu(tr, with_tpu(PAPER, f"{rows}x{cols}", "ws-scalesim"))["layers"][0]["scalesim_compute_cycles"]


def _ours_gemm(sh, rows, cols):
    _, m, n, k = sh
    res = simulate_tpu(_lin(k, n, positions=m), with_tpu(PAPER, f"{rows}x{cols}", "ws-scalesim"))
    return res["layers"][0]["scalesim_compute_cycles"]


SCALESIM_CFG = """[general]
run_name = aras

[architecture_presets]
ArrayHeight: {rows}
ArrayWidth: {cols}
IfmapSramSzkB: 4096
FilterSramSzkB: 4096
OfmapSramSzkB: 4096
IfmapOffset: 0
FilterOffset: 10000000
OfmapOffset: 20000000
Bandwidth: 10
Dataflow: ws
MemoryBanks: 1
ReadRequestBuffer: 32
WriteRequestBuffer: 32

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: 10
IfmapSRAMBankNum: 10
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: 10
FilterSRAMBankNum: 10
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport: false
SparseRep: ellpack_block
OptimizedMapping: false
BlockSize: 8
RandomNumberGeneratorSeed: 40

[run_presets]
InterfaceBandwidth: CALC
UseRamulatorTrace: False
"""


def _run_scalesim(tmp, rows, cols, rows_csv, gemm):
    """SCALE-Sim 3.0 in calculated-bandwidth mode (its stall-free interface): per layer its 'Total Cycles'
    (compute cycles, without the prefetch) and 'Stall Cycles'."""
    import scalesim.memory.double_buffered_scratchpad_mem as dbsm
    from scalesim.scale_sim import scalesim

    # numpy >= 2 compatibility of SCALE-Sim 3.0.0: it takes int() of max() over 1-element arrays, which numpy 2
    # refuses; the same maximum as a Python scalar (values unchanged; checked against numpy 1.26, docs/tpu.md).
    def _max(*a):
        m = builtins.max(*a)
        return m.item() if isinstance(m, np.ndarray) and m.size == 1 else m

    dbsm.max = _max
    tmp.mkdir()
    (tmp / "c.cfg").write_text(SCALESIM_CFG.format(rows=rows, cols=cols))
    head = "Layer, M, N, K,\n" if gemm else "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, " \
                                          "Channels, Num Filter, Strides,\n"
    (tmp / "topo.csv").write_text(head + "".join(", ".join(map(str, r)) + ",\n" for r in rows_csv))
    lay = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
    conv_rows = [(r[0], r[1], r[3], 1, r[3], 1, r[2], 1) for r in rows_csv] if gemm else rows_csv
    (tmp / "layout.csv").write_text(lay + "".join(", ".join(map(str, r)) + ",\n" for r in conv_rows))
    s = scalesim(save_disk_space=True, verbose=False, config=str(tmp / "c.cfg"), topology=str(tmp / "topo.csv"),
                 layout=str(tmp / "layout.csv"), input_type_gemm=gemm)
    s.run_scale(top_path=str(tmp / "out"))
    with open(tmp / "out" / "aras" / "COMPUTE_REPORT.csv") as f:
        rep = [[c.strip() for c in row] for row in csv.reader(f)]
    hdr = rep[0]
    return [(int(r[hdr.index("Total Cycles")]), int(r[hdr.index("Stall Cycles")])) for r in rep[1:] if r and r[0]]


@pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("rows,cols", ARRAYS)  # SCALE-Sim leaves its input files open (third-party noise)
def test_closed_form_equals_scalesim_3(tmp_path, rows, cols):
    pytest.importorskip("scalesim", reason="SCALE-Sim 3.0 is an optional extra: pip install -e '.[scalesim]'")
    conv = _run_scalesim(tmp_path / "conv", rows, cols, CONVS, gemm=False)
    gemm = _run_scalesim(tmp_path / "gemm", rows, cols, GEMMS, gemm=True)
    assert all(stall == 0 for _, stall in conv + gemm)  # the stall-free interface
    # SCALE-Sim reports a depthwise layer as one layer per channel, in order
    per_shape, i = [], 0
    for sh in CONVS:
        k = sh[5] if sh[0].startswith("DP") else 1
        per_shape.append(sum(c for c, _ in conv[i:i + k]))
        i += k
    assert i == len(conv)
    ours = [_ours_conv(sh, rows, cols) for sh in CONVS]
    assert ours == per_shape
    assert [_ours_gemm(sh, rows, cols) for sh in GEMMS] == [c for c, _ in gemm]
