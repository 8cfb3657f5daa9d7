"""The golden timing model against a second, independent timing reference (docs/verification.md,
"Independent timing reference").

``verif.oracle.timing_ref`` is a cycle-by-cycle simulation written from docs/architecture.md alone;
``sim_models.timing.run`` is the golden model. On random small traces (conv / depthwise / linear /
pools / residual add / standalone activations / host ops), every scheduling mode and ablation, the
``tiny`` and ``tiny-adc`` presets (and small variations of their timing and resource fields), batch 1
and 2, cold start, a second run of the same program from its end state and the steady-state program
with resident tiles, both must agree on the total cycles, every WRITE's (A_start, A_fin, B_start,
B_fin), every execute instruction's (E_start, E_fin), the per-layer windows and counters, every §11
counter, the crossbar contents and wear at the end. About half of the random examples bound the
COMPUTE bandwidth (§10.3 "Bandwidth-bounded positions": ``fetch_ports``, ``psum_lanes``, ``post_lanes``
drawn on ``tiny``). Also: the hand-worked examples of §10.6-§10.11 directly, the steady-state programs
of real networks on ``paper`` (whose bandwidth terms hold slots back), and mutations of the golden
model that the comparison must catch.

``ARAS_ORACLE_EXAMPLES`` (default 200) sets the number of random examples (scripts/regress.py: 10,000).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, reject, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

import sim_models.timing as gtiming
from aras.config import preset
from aras.errors import ArasError
from aras.graph import FloatGraph, FNode
from aras.models import ModelSource, load_model
from aras.program import BlockEntry, Compute, Program, TensorAlloc, TileEntry, Write, assemble, positions_of
from aras.quantize import quantize
from aras.tiling import block_channels, positions, tile_layer
from aras.trace import Trace
from sim_models.perf import simulate
from sim_models.scheduler import MODES, Options, schedule
from verif.golden import test_spec_example as spec
from verif.golden.test_spec_example import example_trace
from verif.oracle import COUNTERS
from verif.oracle import run as oracle_run

EXAMPLES = int(os.environ.get("ARAS_ORACLE_EXAMPLES", "200"))
ROOT = Path(__file__).resolve().parents[2]
TINY = preset("tiny")

# scheduling modes: every named mode (baseline, aras, each ablation) plus scheduler knobs
SCHED = {name: (smode, Options.for_mode(smode, **kw)) for name, (smode, kw) in MODES.items()}
SCHED.update({"lookahead-1": ("aras", Options(lookahead=1)), "no-replicate": ("aras", Options(replicate=False)),
              "double-buffer": ("aras", Options(double_buffer="on")), "no-resident": ("aras", Options(resident=False))})
# small variations of the presets' timing/resource fields (each exercises another rule of §10)
VARIANTS = [{}, {}, {"write_drivers_per_pe": 2}, {"write_buffer_bytes": 64}, {"write_buffer_bytes": 256},
            {"t_read_mvm_ns": 5.0}, {"cols_per_adc": 8}, {"dram_latency_cycles": 0, "dram_bytes_per_cycle": 3},
            {"host_handoff_cycles": 2, "post_latency": 4, "vector_latency": 3, "vector_lanes": 2},
            {"t_pulse_ns": 2.0, "t_reset_ns": 3.0, "t_write_setup_ns": 2.0, "t_read_ns": 2.0},
            {"gbuf_adaptive": False},  # the config field: programs carry their own flag (oracle reading R1)
            # for the bandwidth terms: every copy and block on one PE (the psum and post loads add up), and
            # m = 1 (8·m = 8 cycles per slot, so drawn bounds hold slots back, not only the fill and tail)
            {"n_pe": 1, "apus_per_pe": 4}, {"t_read_mvm_ns": 1.0, "cols_per_adc": 1}]
# §10.3 bandwidth fields on tiny (0 = unbounded): None keeps the preset's 0/0/0 (about half the examples)
LANES = st.tuples(st.sampled_from([0, 1, 2]), st.sampled_from([0, 1, 2, 4]), st.sampled_from([0, 1, 2]))
BANDWIDTH = st.tuples(st.booleans(), LANES).map(lambda t: t[1] if t[0] else None)
STALLS = ("stall_fill", "stall_fetch", "stall_drain", "stall_post")


def bounded(cfg, bw):
    """``cfg`` with the drawn (fetch_ports, psum_lanes, post_lanes), or as it is for None."""
    return cfg if bw is None else cfg.replace(fetch_ports=bw[0], psum_lanes=bw[1], post_lanes=bw[2])


# ---------------------------------------------------------------------------------------------------
# comparison

def differences(ref, gold) -> list[str]:
    """Every disagreement between the oracle's run and the golden model's, as readable lines."""
    out = []
    if ref.cycles != gold.cycles:
        out.append(f"cycles: oracle {ref.cycles}, golden {gold.cycles}")
    if gold.counters.get("cycles", ref.cycles) != ref.cycles:
        out.append(f"counter cycles: oracle {ref.cycles}, golden {gold.counters['cycles']}")
    for k in COUNTERS:
        if ref.counters[k] != gold.counters[k]:
            out.append(f"counter {k}: oracle {ref.counters[k]}, golden {gold.counters[k]}")
    if not np.array_equal(ref.cells_changed, gold.cells_changed):
        out.append(f"cells_changed: oracle {ref.cells_changed.tolist()}, golden {gold.cells_changed.tolist()}")
    if len(ref.write_times) != len(gold.write_times):
        out.append(f"WRITEs: oracle {len(ref.write_times)}, golden {len(gold.write_times)}")
    for n, (a, b) in enumerate(zip(ref.write_times, gold.write_times, strict=False)):
        if tuple(a) != tuple(b):
            out.append(f"WRITE #{n} (A_start, A_fin, B_start, B_fin): oracle {tuple(a)}, golden {tuple(b)}")
    if len(ref.exec_times) != len(gold.exec_times):
        out.append(f"execute instructions: oracle {len(ref.exec_times)}, golden {len(gold.exec_times)}")
    for n, (a, b) in enumerate(zip(ref.exec_times, gold.exec_times, strict=False)):
        if tuple(a) != tuple(b):
            out.append(f"execute #{n} (E_start, E_fin): oracle {tuple(a)}, golden {tuple(b)}")
    if set(ref.layers) != set(gold.layers):
        out.append(f"layers: oracle {sorted(ref.layers)}, golden {sorted(gold.layers)}")
    for li in sorted(set(ref.layers) & set(gold.layers)):
        a, b = ref.layers[li], gold.layers[li]
        for f in ("start", "end", "wstart", "wend", "compute_cycles", "write_cycles"):
            if getattr(a, f) != getattr(b, f):
                out.append(f"layer {li} {f}: oracle {getattr(a, f)}, golden {getattr(b, f)}")
        ca = {k: v for k, v in a.counters.items() if v}
        cb = {k: v for k, v in b.counters.items() if v}
        if ca != cb:
            keys = sorted(set(ca) | set(cb))
            out.append(f"layer {li} counters: " + ", ".join(
                f"{k} oracle {ca.get(k, 0)} golden {cb.get(k, 0)}" for k in keys if ca.get(k, 0) != cb.get(k, 0)))
        if not math.isclose(a.write_energy_pj, b.write_energy_pj, rel_tol=1e-9, abs_tol=1e-6):
            out.append(f"layer {li} write_energy_pj: oracle {a.write_energy_pj}, golden {b.write_energy_pj}")
    if not np.array_equal(ref.final_levels, gold.final_levels):
        n = int((ref.final_levels != gold.final_levels).sum())
        out.append(f"final crossbar levels: {n} cells differ")
    if not np.array_equal(ref.wear, gold.wear):
        out.append(f"wear: {int((ref.wear != gold.wear).sum())} cells differ")
    for f in ("write_energy_pj", "write_read_pj"):
        if not math.isclose(getattr(ref, f), getattr(gold, f), rel_tol=1e-9, abs_tol=1e-6):
            out.append(f"{f}: oracle {getattr(ref, f)}, golden {getattr(gold, f)}")
    return out


def compare(prog, tr, cfg, initial=None, cache=None):
    """Run both models; return (differences, golden run)."""
    gold = gtiming.run(prog, tr, cfg, initial, cache=cache)
    ref = oracle_run(prog, tr, cfg, initial)
    return differences(ref, gold), gold


def features(prog, tr, cfg) -> set[str]:
    """The program shapes the bandwidth terms treat specially (§7.5, §10.3), for coverage checks."""
    per_pe = cfg.apus_per_pe * cfg.xbars_per_apu
    out = set()
    if cfg.fetch_ports or cfg.psum_lanes or cfg.post_lanes:
        out.add("bounded")
    for ins in prog.instrs:
        if not isinstance(ins, Compute):
            continue
        ly = tr.layers[ins.layer]
        if ly.op == "conv2d":
            if any(ly.attrs.get("pads", [0] * 4)):
                out.add("conv padding")
            if max(ly.attrs.get("stride", [1, 1])) > 1:
                out.add("conv stride")
        if prog.tensors[ly.inputs[0]].alias_of is not None:
            out.add("flatten alias input")
        if ins.replicas > 1:
            out.add("replicated round")
            if len(positions_of(positions(tr, ins.layer), ins.replicas, ins.replicas - 1)) < \
                    -(-positions(tr, ins.layer) // ins.replicas):
                out.add("short last copy")
        pes = {}
        for te in ins.tiles:
            pes.setdefault((te.tag[1], te.tag[3], te.replica), set()).add(te.xbar // per_pe)
        if any(len(v) > 1 for v in pes.values()):
            out.add("block spanning PEs")
        if any(b.pmode != 0 for b in ins.blocks):
            out.add("partial block")
    return out


def check_all_runs(tr, cfg, mode):
    """Cold run, a second run of the same program from its end state, and the steady-state program
    (resident tiles, planned against the cold program's end state) from its own end state."""
    smode, opts = SCHED[mode]
    try:
        prog = schedule(tr, cfg, smode, opts)
    except ArasError as e:  # a valid refusal (the batch's psum buffers overflow the tiny Gbuffer)
        if "Gbuffer too small" not in str(e):
            raise
        reject()
    if currently_in_test_context():  # hypothesis statistics (pytest --hypothesis-show-statistics)
        for f in sorted(features(prog, tr, cfg)):
            event(f)
    d, gold = compare(prog, tr, cfg)
    assert not d, f"cold run ({mode}, {cfg.name}, batch {cfg.batch}):\n  " + "\n  ".join(d)
    d, _ = compare(prog, tr, cfg, gold.final_levels)
    assert not d, f"second run of the same program ({mode}):\n  " + "\n  ".join(d)
    steady = schedule(tr, cfg, smode, opts, initial=prog.notes["final_levels"],
                      initial_writes=prog.notes["final_writes"])
    d, _ = compare(steady, tr, cfg, steady.notes["final_levels"])
    assert not d, f"steady-state program ({mode}):\n  " + "\n  ".join(d)


# ---------------------------------------------------------------------------------------------------
# random small traces

def _conv_hw(h, w, k, s, pads, d):
    return ((h + pads[0] + pads[2] - d * (k - 1) - 1) // s + 1, (w + pads[1] + pads[3] - d * (k - 1) - 1) // s + 1)


@st.composite
def nets(draw):
    """A random small float graph, quantized (so every trace is valid); weights then optionally
    replaced by few distinct values (repeated codes: skipped rows, reencoding choices)."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    # "wide": a pointwise conv over many positions on few rows, which the scheduler replicates
    kind = draw(st.sampled_from(["image", "image", "wide", "seq", "flat"]))
    nodes: list[FNode] = []
    cnt = [0]

    def new():
        cnt[0] += 1
        return f"t{cnt[0]}"

    def w(*shape):
        return rng.normal(0, 0.5, shape)

    def linear(cur, k, n):
        o = new()
        nodes.append(FNode(f"fc{cnt[0]}", "linear", [cur], o, params={"weight": w(n, k), "bias": w(n) * 0.2}))
        return o

    if kind in ("image", "wide"):
        wide = kind == "wide"
        C = draw(st.integers(1, 2 if wide else 4))
        H, W = (draw(st.integers(7, 12)), draw(st.integers(7, 12))) if wide else \
            (draw(st.integers(2, 9)), draw(st.integers(2, 9)))
        in_shape = (C, H, W)
        cur = "x"
        for n_op in range(draw(st.integers(1, 2 if wide else 4))):
            op = "conv" if wide and n_op == 0 else \
                draw(st.sampled_from(["conv", "conv", "dwconv", "pool", "act", "residual"]))
            if op in ("conv", "dwconv"):
                k = 1 if wide and n_op == 0 else draw(st.integers(1, 3))
                s = draw(st.integers(1, 2))
                d = draw(st.integers(1, 2))
                pads = tuple(draw(st.integers(0, 1)) for _ in range(4))
                ho, wo = _conv_hw(H, W, k, s, pads, d)
                if ho < 1 or wo < 1:
                    k, s, d, pads = 1, 1, 1, (0, 0, 0, 0)
                    ho, wo = H, W
                if op == "dwconv":
                    mult = draw(st.integers(1, 2))
                    groups, cout = C, C * mult
                else:
                    groups = draw(st.sampled_from([g for g in (1, 2, 3) if C % g == 0]))
                    cout = groups * draw(st.integers(1, 4))
                o = new()
                nodes.append(FNode(f"conv{cnt[0]}", "conv2d", [cur], o,
                                   {"stride": (s, s), "pads": pads, "dilation": (d, d), "groups": groups},
                                   {"weight": w(cout, C // groups, k, k), "bias": w(cout) * 0.2}))
                cur, C, H, W = o, cout, ho, wo
                if draw(st.booleans()):  # fused activation
                    a = draw(st.sampled_from(["relu", "relu6", "leaky_relu", "prelu"]))
                    o = new()
                    params = {"slope": rng.uniform(0.05, 0.3, C)} if a == "prelu" else {}
                    attrs = {"alpha": 0.1} if a == "leaky_relu" else {}
                    nodes.append(FNode(f"act{cnt[0]}", a, [cur], o, attrs, params))
                    cur = o
            elif op == "pool":
                p = draw(st.sampled_from(["maxpool", "avgpool"]))
                k = draw(st.integers(1, min(3, H, W)))
                s = draw(st.integers(1, 2))
                pads = tuple(draw(st.integers(0, k - 1)) for _ in range(4))
                ho, wo = _conv_hw(H, W, k, s, pads, 1)
                o = new()
                attrs = {"kernel": (k, k), "stride": (s, s), "pads": pads}
                if p == "avgpool" and draw(st.booleans()):
                    attrs["count_include_pad"] = True
                nodes.append(FNode(f"pool{cnt[0]}", p, [cur], o, attrs))
                cur, H, W = o, ho, wo
            elif op == "act":  # standalone (after a pool or the input: not fused)
                o = new()
                nodes.append(FNode(f"mp{cnt[0]}", "maxpool", [cur], o, {"kernel": (1, 1), "stride": (1, 1)}))
                a = draw(st.sampled_from(["relu", "relu6", "leaky_relu", "prelu", "clamp"]))
                o2 = new()
                params = {"slope": rng.uniform(0.05, 0.3, C)} if a == "prelu" else {}
                attrs = {"alpha": 0.2} if a == "leaky_relu" else {"min": -1.0, "max": 2.0} if a == "clamp" else {}
                nodes.append(FNode(f"act{cnt[0]}", a, [o], o2, attrs, params))
                cur = o2
            else:  # residual: same-shape conv, add, optional activation after the add
                o = new()
                nodes.append(FNode(f"rconv{cnt[0]}", "conv2d", [cur], o, {"pads": (1, 1, 1, 1)},
                                   {"weight": w(C, C, 3, 3), "bias": w(C) * 0.2}))
                o2 = new()
                nodes.append(FNode(f"add{cnt[0]}", "add", [o, cur], o2))
                cur = o2
                if draw(st.booleans()):
                    o3 = new()
                    nodes.append(FNode(f"act{cnt[0]}", draw(st.sampled_from(["relu", "leaky_relu"])), [cur], o3,
                                       {"alpha": 0.1}))
                    cur = o3
        tail = draw(st.sampled_from(["none", "gap", "fc", "fc-softmax"]))
        if tail == "gap":
            o = new()
            nodes.append(FNode(f"gap{cnt[0]}", "gap", [cur], o))
            cur = o
        elif tail.startswith("fc"):
            o = new()
            nodes.append(FNode(f"flat{cnt[0]}", "flatten", [cur], o))
            cur = linear(o, C * H * W, draw(st.integers(1, 12)))
            if tail == "fc-softmax":
                o = new()
                nodes.append(FNode(f"sm{cnt[0]}", "softmax", [cur], o))
                cur = o
    else:
        big = draw(st.integers(0, 4)) == 0  # K > chip rows: a block split over rounds (psum spill/restore)
        K = draw(st.integers(129, 160)) if big else draw(st.integers(1, 40))
        T = draw(st.integers(1, 3)) if kind == "seq" else None
        in_shape = (T, K) if kind == "seq" else (K,)
        cur = "x"
        for i in range(draw(st.integers(1, 3))):
            n = draw(st.integers(1, 20))
            cur = linear(cur, K, n)
            K = n
            extra = draw(st.sampled_from(["none", "relu", "host"]))
            if extra == "relu" and i < 2:
                o = new()
                nodes.append(FNode(f"act{cnt[0]}", "relu", [cur], o))
                cur = o
            elif extra == "host":
                o = new()
                op = draw(st.sampled_from(["softmax", "gelu", "layernorm"]))
                params = {"gamma": np.ones(K), "beta": np.zeros(K)} if op == "layernorm" else {}
                nodes.append(FNode(f"h{cnt[0]}", op, [cur], o, {"eps": 1e-5} if op == "layernorm" else {}, params))
                cur = o
    g = FloatGraph("oracle-net", "x", in_shape, nodes, [cur], weights="synthetic")
    x = rng.normal(size=(4,) + tuple(in_shape))
    try:
        tr = quantize(ModelSource(g, x, x[:1]))
    except ArasError as e:  # a degenerate draw (e.g. an all-zero activation range: the bias overflows int32)
        if "cannot quantize" not in str(e):
            raise
        reject()
    style = draw(st.sampled_from(["as-is", "as-is", "few", "const"]))
    if style != "as-is":
        for ly in tr.layers:
            if ly.on_crossbars:
                wt = ly.arrays["weight"]
                vals = rng.choice([-127, -1, 0, 1, 127], 2) if style == "few" else [int(rng.integers(-127, 128))]
                ly.arrays["weight"] = rng.choice(vals, wt.shape).astype(np.int8)
        tr.validate("oracle test trace")
    return tr


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tr=nets(), mode=st.sampled_from(sorted(SCHED)), cfg_name=st.sampled_from(["tiny", "tiny-adc"]),
       variant=st.sampled_from(range(len(VARIANTS))), batch=st.sampled_from([1, 2]), bw=BANDWIDTH)
def test_random_programs_match_the_oracle(tr, mode, cfg_name, variant, batch, bw):
    cfg = bounded(preset(cfg_name).replace(batch=batch, **VARIANTS[variant]), bw)
    check_all_runs(tr, cfg, mode)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tr=nets(), mode=st.sampled_from(sorted(SCHED)), variant=st.sampled_from(range(len(VARIANTS))),
       batch=st.sampled_from([1, 2]), seed=st.integers(0, 2**32 - 1), bw=BANDWIDTH)
def test_perturbed_programs_match_the_oracle(tr, mode, variant, batch, seed, bw):
    """Programs the scheduler would not emit but §9 allows: random ``barrier`` bits, ``wait_exec``
    raised anywhere up to the number of preceding execute instructions, blind/differential mode and
    encoding flags per WRITE — interlock combinations (barrier with a small wait_exec, WAR far behind,
    mixed write modes) beyond the scheduler's patterns."""
    cfg = bounded(TINY.replace(batch=batch, **VARIANTS[variant]), bw)
    smode, opts = SCHED[mode]
    try:
        prog = schedule(tr, cfg, smode, opts)
    except ArasError as e:
        if "Gbuffer too small" not in str(e):
            raise
        reject()
    rng = np.random.default_rng(seed)
    e = 0
    for ins in prog.instrs:
        if isinstance(ins, Write):
            if rng.random() < 0.3:
                ins.barrier = not ins.barrier
            if rng.random() < 0.3:
                ins.wait_exec = int(rng.integers(ins.wait_exec, e + 1))  # never below the WAR minimum
            if rng.random() < 0.3:
                ins.mode = 1 - ins.mode
            if rng.random() < 0.3:
                ins.flags = rng.random(ins.flags.shape) < 0.5
        else:
            e += 1
    d, gold = compare(prog, tr, cfg, cache={})
    assert not d, f"perturbed program, cold ({mode}):\n  " + "\n  ".join(d)
    d, _ = compare(prog, tr, cfg, gold.final_levels, cache={})
    assert not d, f"perturbed program, second run ({mode}):\n  " + "\n  ".join(d)


# ---------------------------------------------------------------------------------------------------
# the hand-worked example of §9.7 / §10.6, built by hand from the program data structures

@st.composite
def replicated_rounds(draw):
    """A hand-built one-COMPUTE program (contract data only, no scheduler): a conv on ``tiny`` whose tiles
    (1-2 row chunks x 1-2 column chunks) are replicated r times on crossbars drawn at random — copies
    sharing a PE or not, blocks spanning PEs or not, a last copy shorter than the others or not — with
    drawn bandwidth bounds, m = 4 or 1 and batch 1 or 2. Returns (trace, program, config)."""
    C = draw(st.integers(1, 3))
    k = draw(st.integers(1, 3))
    s_, pad = draw(st.integers(1, 2)), draw(st.integers(0, 1))
    H, W = draw(st.integers(k, 6)), draw(st.integers(k, 9))
    cout = draw(st.integers(1, 6))
    Ho, Wo = _conv_hw(H, W, k, s_, (pad,) * 4, 1)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    w = rng.integers(-127, 128, (cout, C, k, k)).astype(np.int8)
    tensors = {"t0": spec.TensorQ((C, H, W), 0.1, 0), "t1": spec.TensorQ((cout, Ho, Wo), 0.1, 0)}
    conv = spec._qlayer("conv0", "conv2d", ["t0"], "t1", w, stride=[s_, s_], pads=[pad] * 4, dilation=[1, 1],
                        groups=1)
    tr = Trace("replicated", "synthetic", "t0", tensors, [conv], ["t1"])
    tr.validate()
    lt = tile_layer(0, conv, TINY)
    n_t = len(lt.tiles)
    r = draw(st.integers(1, max(1, TINY.n_xbars // n_t)))
    xbars = draw(st.permutations(range(TINY.n_xbars)))[: r * n_t]
    mat = w.reshape(cout, -1).T  # (K, N): row k = (c, i, j), weight column = output channel
    R = TINY.xbar_rows
    instrs, entries = [], []
    for q in range(r):
        for n, t in enumerate(lt.tiles):
            x = xbars[q * n_t + n]
            img = mat[t.r * R: t.r * R + t.rows, t.c * lt.cw: t.c * lt.cw + t.wcols]
            instrs.append(spec._write(t, x, img, 0x100 * n, mode=draw(st.integers(0, 1))))
            entries.append(spec._entry(x, t, 1, replica=q))
    blocks = [BlockEntry(g, c, len(block_channels(lt, g, c))) for g, c in lt.blocks()]
    instrs.append(Compute(0, 0, entries, blocks, bank_on=(1,), bank_off=(0,), replicas=r))
    batch = draw(st.sampled_from([1, 2]))
    prog = Program("aras", batch, instrs, {0: lt},
                   {"t0": spec._alloc("t0", C * H * W, 0), "t1": spec._alloc("t1", cout * Ho * Wo, 1)},
                   banks_init=(0,))
    fast = draw(st.booleans())
    cfg = TINY.replace(batch=batch, fetch_ports=draw(st.sampled_from([0, 1, 2])),
                       psum_lanes=draw(st.sampled_from([0, 1, 2, 4])), post_lanes=draw(st.sampled_from([0, 1, 2])),
                       **({"t_read_mvm_ns": 1.0, "cols_per_adc": 1} if fast else {}))
    return tr, assemble(prog), cfg


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=replicated_rounds())
def test_replicated_rounds_match_the_oracle(case):
    """The bandwidth terms per slot, copy, PE and block leader (§10.3) on hand-built replicated rounds."""
    tr, prog, cfg = case
    if currently_in_test_context():
        for f in sorted(features(prog, tr, cfg)):
            event(f)
    d, gold = compare(prog, tr, cfg)
    assert not d, f"replicated round ({cfg.fetch_ports}, {cfg.psum_lanes}, {cfg.post_lanes}):\n  " + "\n  ".join(d)


def spec_program(adaptive: bool = True) -> tuple[Program, Trace]:
    """The program of §9.7 exactly as printed: W0 W1 E0 W2 W3 E1 (END implicit), tensors of §9.7."""
    tr = example_trace()
    lt0, lt2 = tile_layer(0, tr.layers[0], TINY), tile_layer(2, tr.layers[2], TINY)
    t00, t01 = lt0.tiles  # (g0, r0, c0) 16 rows; (g0, r1, c0) 2 rows
    t20, t21 = lt2.tiles  # (g0, r0, c0) 4 wcols; (g0, r0, c1) 2 wcols

    def wr(tile, x, addr):
        return Write(tile, x, addr, "offset", 1, np.zeros(tile.wcols, bool),
                     np.full((tile.rows, tile.wcols), 127, np.int8))

    instrs = [
        wr(t00, 0, 0x000), wr(t01, 4, 0x040),
        Compute(0, 0, [TileEntry(0, t00.tag, 16, 16, "offset"), TileEntry(4, t01.tag, 2, 16, "offset")],
                [BlockEntry(0, 0, 4)], bank_on=(1,), bank_off=(0,)),
        wr(t20, 1, 0x048), wr(t21, 5, 0x088),
        Compute(2, 0, [TileEntry(1, t20.tag, 16, 16, "offset"), TileEntry(5, t21.tag, 16, 8, "offset")],
                [BlockEntry(0, 0, 4), BlockEntry(0, 1, 2)], bank_on=(2,), bank_off=(1,)),
    ]
    tensors = {"t0": TensorAlloc("t0", 32, (0,), 0), "t1": TensorAlloc("t1", 16, (1,), 1024),
               "t2": TensorAlloc("t2", 16, (1,), 1024, alias_of="t1"), "t3": TensorAlloc("t3", 6, (2,), 2048)}
    prog = Program("aras", 1, instrs, {0: lt0, 2: lt2}, tensors, banks_init=(0,), gbuf_adaptive=adaptive)
    return assemble(prog), tr


def test_oracle_reproduces_the_worked_example():
    prog, tr = spec_program()
    assert [te.need_gen for ins in prog.execs for te in ins.tiles] == [1, 1, 1, 1]
    assert all(w.wait_exec == 0 for w in prog.writes)
    r = oracle_run(prog, tr, TINY)
    assert r.write_times == [(0, 20, 20, 148), (20, 26, 26, 42), (26, 46, 148, 276), (46, 58, 58, 186)]
    assert r.exec_times == [(148, 281), (281, 318)]
    assert r.cycles == 318
    l0, l2 = r.layers[0], r.layers[2]
    assert (l0.start, l0.end, l0.wstart, l0.wend) == (148, 280, 20, 147)
    assert (l2.start, l2.end, l2.wstart, l2.wend) == (281, 317, 58, 275)
    c = r.counters
    assert c["dram_bytes"] == 168 and c["write_buffer_bytes"] == 336
    assert c["row_reads_before_write"] == 50 and c["cells_read_before_write"] == 16 * 16 + 2 * 16 + 16 * 16 + 16 * 8
    assert c["rows_written"] == 50 and c["rows_skipped"] == 0 and c["cells_written_blind"] == 0
    assert c["xbar_reads"] == 80 and c["adc_conversions"] == 1216 and c["dac_activations"] == 832
    assert c["input_sum_ops"] == 80 and c["post_ops"] == 22 and c["psum_spill_words"] == 0 and c["vector_ops"] == 0
    assert c["gbuf_reads"] == 32 and c["gbuf_writes"] == 18
    assert c["gbuf_active_bank_cycles"] == 281 + 170 + 37
    assert r.cells_changed[0][3] == 672 and r.cells_changed.sum() == 672  # every cell 0 -> 3 (level 3 = code 255)
    # baseline bank accounting: every bank in every cycle
    prog_b, _ = spec_program(adaptive=False)
    assert oracle_run(prog_b, tr, TINY).counters["gbuf_active_bank_cycles"] == 8 * 318
    # and the golden model on the same hand-built program
    d, _ = compare(prog, tr, TINY)
    assert not d, d


@pytest.mark.parametrize("cfg_name", ["tiny", "paper"])
@pytest.mark.parametrize("mode", ["aras", "baseline"])
def test_lenet5_matches_the_oracle(mode, cfg_name):
    """LeNet-5 with its real weights: ~79k cycles on ``tiny`` (rewrites in every round), ``paper``."""
    check_all_runs(Trace.load(ROOT / "aras" / "fixtures" / "lenet5"), preset(cfg_name), mode)


def test_add_of_a_tensor_with_itself():
    """READING R9 of the oracle: "one stream per input tensor" (§7.4) reads y twice for add(y, y)."""
    rng = np.random.default_rng(1)
    nodes = [FNode("c", "conv2d", ["x"], "y", {"pads": (1, 1, 1, 1)},
                   {"weight": rng.normal(0, .5, (2, 2, 3, 3)), "bias": np.zeros(2)}),
             FNode("a", "add", ["y", "x"], "z")]
    g = FloatGraph("self-add", "x", (2, 5, 5), nodes, ["z"], weights="synthetic")
    x = rng.normal(size=(4, 2, 5, 5))
    tr = quantize(ModelSource(g, x, x[:1]))
    tr.layers[1].inputs = ["y", "y"]  # built by hand: the quantizer's calibration does not take add(y, y)
    tr.validate("self-add trace")
    r = oracle_run(schedule(tr, TINY, "aras"), tr, TINY)
    assert r.layers[1].counters["gbuf_reads"] == 2 * -(-50 // TINY.gbuf_word_bytes)
    check_all_runs(tr, TINY, "aras")


# §10.7 - §10.10: the hand-built programs of test_spec_example (contract data only, no scheduler) and the
# numbers the document gives for them
SPEC_EXAMPLES = {
    "10.7 partial DRAM beat": dict(
        build=lambda: spec.partial_beat_example() + (TINY,), cycles=189,
        write_times=[(0, 8, 8, 38), (8, 24, 24, 152)], exec_times=[(152, 189)], windows={0: (152, 188, 8, 151)},
        counters={"dram_bytes": 63, "write_buffer_bytes": 126, "row_reads_before_write": 21,
                  "cells_read_before_write": 252, "rows_written": 21, "xbar_reads": 16, "adc_conversions": 192,
                  "dac_activations": 168, "input_sum_ops": 16, "post_ops": 3, "gbuf_reads": 6, "gbuf_writes": 1,
                  "gbuf_active_bank_cycles": 226},
        changed={(0, 3): 192, (0, 2): 15}),
    "10.8 VECTOR and HOST": dict(
        build=spec.vector_host_example, cycles=60, write_times=[],
        exec_times=[(0, 43), (43, 50), (50, 57), (57, 60)],
        windows={0: (0, 42, None, None), 1: (43, 49, None, None), 2: (50, 56, None, None), 4: (57, 59, None, None)},
        counters={"vector_ops": 198, "gbuf_reads": 40, "gbuf_writes": 15, "gbuf_active_bank_cycles": 127},
        changed={}),
    "10.9 psum spill and restore": dict(
        build=spec.psum_example, cycles=405,
        write_times=[(0, 16, 16, 144), (16, 32, 144, 240), (144, 160, 240, 336)],
        exec_times=[(144, 213), (240, 309), (336, 405)], windows={0: (144, 404, 16, 335)},
        counters={"dram_bytes": 144, "write_buffer_bytes": 288, "row_reads_before_write": 48,
                  "cells_read_before_write": 576, "rows_written": 48, "xbar_reads": 48, "adc_conversions": 576,
                  "dac_activations": 768, "input_sum_ops": 48, "post_ops": 6, "psum_spill_words": 24,
                  "gbuf_reads": 36, "gbuf_writes": 15, "gbuf_active_bank_cycles": 927},
        changed={(0, 3): 192, (0, 2): 48, (3, 1): 48, (3, 0): 144}),
    "10.10 replication": dict(
        build=lambda: spec.replication_example() + (TINY,), cycles=173,
        write_times=[(0, 9, 9, 63), (9, 18, 18, 72)], exec_times=[(72, 173)], windows={0: (72, 172, 9, 71)},
        counters={"dram_bytes": 36, "write_buffer_bytes": 72, "rows_written": 18, "cells_written_blind": 144,
                  "xbar_reads": 40, "adc_conversions": 320, "dac_activations": 360, "input_sum_ops": 40,
                  "post_ops": 10, "gbuf_reads": 23, "gbuf_writes": 10, "gbuf_active_bank_cycles": 274},
        changed={(0, 3): 48, (0, 2): 12, (0, 1): 12}),
}


@pytest.mark.parametrize("name", list(SPEC_EXAMPLES))
def test_oracle_reproduces_the_other_worked_examples(name):
    ex = SPEC_EXAMPLES[name]
    tr, prog, cfg = ex["build"]()
    r = oracle_run(prog, tr, cfg)
    assert r.cycles == ex["cycles"]
    assert r.write_times == ex["write_times"] and r.exec_times == ex["exec_times"]
    for li, win in ex["windows"].items():
        lt = r.layers[li]
        assert (lt.start, lt.end, lt.wstart, lt.wend) == win, li
    assert {k: v for k, v in r.counters.items() if v} == ex["counters"]
    L = r.cells_changed.shape[0]
    assert {(o, n): int(r.cells_changed[o, n]) for o in range(L) for n in range(L) if r.cells_changed[o, n]} \
        == ex["changed"]
    d, _ = compare(prog, tr, cfg)
    assert not d, d


BOUNDED = TINY.replace(fetch_ports=1, psum_lanes=2, post_lanes=1)  # the config of §10.11
BW = ("stall_fill", "stall_fetch", "stall_drain", "stall_post", "gbuf_fetch_words")


def test_oracle_reproduces_the_bandwidth_example():
    """§10.11: the §9.7 program and the replicated round of §10.10 with one fetch port, 2 psum lanes and one
    requantization lane per PE; the numbers are the document's, worked out by hand."""
    prog, tr = spec_program()
    r = oracle_run(prog, tr, BOUNDED)
    assert r.write_times == [(0, 20, 20, 148), (20, 26, 26, 42), (26, 46, 148, 276), (46, 58, 58, 186)]
    assert r.exec_times == [(148, 295), (295, 342)]  # conv0 133 + 6 + 4 + 4 = 147; fc2 37 + 4 + 2 + 4 = 47
    assert r.cycles == 342
    assert [r.counters[k] for k in BW] == [10, 0, 6, 8, 28]
    assert sum(r.counters[k] for k in STALLS) == 342 - 318
    assert [r.layers[li].counters.get(k, 0) for li in (0, 2) for k in BW] == [6, 0, 4, 4, 24, 4, 0, 2, 4, 4]
    l0, l2 = r.layers[0], r.layers[2]
    assert (l0.start, l0.end, l0.wstart, l0.wend) == (148, 294, 20, 147)
    assert (l2.start, l2.end, l2.wstart, l2.wend) == (295, 341, 58, 275)
    # "Every other counter is that of §10.6" (the bank-cycles follow the longer run)
    u = oracle_run(prog, tr, TINY)
    assert u.cycles == 318 and all(u.counters[k] == 0 for k in BW)
    assert {k: v for k, v in r.counters.items() if k not in BW + ("gbuf_active_bank_cycles",)} == \
        {k: v for k, v in u.counters.items() if k not in BW + ("gbuf_active_bank_cycles",)}
    assert r.counters["gbuf_active_bank_cycles"] == 295 + (342 - 148) + (342 - 295)
    assert np.array_equal(r.cells_changed, u.cells_changed)
    d, _ = compare(prog, tr, BOUNDED)
    assert not d, d
    # the replicated round: 101 + fill 10 + tail 2 + 2 = 115
    tr, prog = spec.replication_example()
    r = oracle_run(prog, tr, BOUNDED)
    assert r.exec_times == [(72, 187)] and r.cycles == 187
    assert [r.counters[k] for k in BW] == [10, 0, 0, 4, 23]
    d, _ = compare(prog, tr, BOUNDED)
    assert not d, d


def test_short_last_copy_sharing_a_pe():
    """§10.11's replicated round with copy 1 moved from x4 (PE1) to x1 (PE0), worked out by hand from §10.3:
    "in slot s every copy q with ℓ < |positions_of(P, r, q)| computes its position q·P' + ℓ", so copy 1
    (positions 3, 4) runs in slots 0 and 1 and its block, led by PE0 (its only PE), adds to PE0's post:
    post = ⌈(2 + 2)/1⌉ = 4 in slots 0, 1 and ⌈2/1⌉ = 2 in slot 2; drain = 1 + 1 = 2, 2, 1; every slot 32.
    Fill 10 (the fetch does not depend on placement); tail max(drain(2) = 1, post(1) = 4) = 4 (post) +
    post(2) = 2. Duration 101 + 10 + 6 = 117; W1 now follows W0 on PE0's one driver (63 -> 117)."""
    tr, prog = spec.replication_example()
    prog.instrs[1].xbar = 1
    prog.instrs[2].tiles[1].xbar = 1
    prog = assemble(prog)
    r = oracle_run(prog, tr, BOUNDED)
    assert r.write_times == [(0, 9, 9, 63), (9, 18, 63, 117)]
    assert r.exec_times == [(117, 234)] and r.cycles == 234
    assert [r.counters[k] for k in BW] == [10, 0, 0, 6, 23]
    d, _ = compare(prog, tr, BOUNDED)
    assert not d, d


def _bounded_cases():
    """Fixed programs for the bandwidth terms (scheduled, ``tiny``): the §9.7 network (flatten alias,
    a block over two PEs), a padded conv + flatten + fc (batch 2), a padded stride-2 conv, a psum-splitting
    linear layer, and a replicated pointwise conv whose last copy is short (81 positions, 2 copies)."""
    cases = [(tr, cfg) for tr, cfg, _ in _fixed_cases()]
    rng = np.random.default_rng(11)
    nodes = [FNode("c", "conv2d", ["x"], "y", {"pads": (1, 1, 1, 1), "stride": (2, 2)},
                   {"weight": rng.normal(0, .5, (3, 2, 3, 3)), "bias": np.zeros(3)}),
             FNode("f", "flatten", ["y"], "yf"),
             FNode("fc", "linear", ["yf"], "o", params={"weight": rng.normal(0, .5, (5, 48)), "bias": np.zeros(5)})]
    g = FloatGraph("stride-net", "x", (2, 7, 7), nodes, ["o"], weights="synthetic")
    x = rng.normal(size=(4, 2, 7, 7))
    cases.append((quantize(ModelSource(g, x, x[:1])), TINY))
    return cases


BOUNDS = [(1, 2, 1), (2, 1, 2), (1, 0, 0), (0, 1, 0), (0, 0, 1), (2, 4, 1)]


@pytest.mark.parametrize("bw", BOUNDS)
def test_bounded_fixed_cases(bw):
    """Every fixed case under each bound, cold and steady state; together they cover every shape the
    bandwidth terms treat specially (the random examples draw the same shapes, see ``features``)."""
    seen = set()
    for tr, cfg in _bounded_cases():
        c = bounded(cfg, bw)
        prog = schedule(tr, c, *SCHED["aras"])
        seen |= features(prog, tr, c)
        check_all_runs(tr, c, "aras")
    assert seen >= {"bounded", "conv padding", "conv stride", "flatten alias input", "replicated round",
                    "short last copy", "block spanning PEs", "partial block"}, seen


def _steady_program(name: str, cfg):
    """The steady-state program of registry model ``name`` as ``sim_models.perf.simulate`` runs it
    (headline numbers), with simulate's result."""
    try:
        tr = load_model(name)
    except ArasError as e:  # pragma: no cover - a model whose weights cannot be had offline
        pytest.skip(f"{name}: {e}")
    keep: dict = {}
    res = simulate(tr, cfg, keep=keep)
    return tr, keep["program"], res


@pytest.mark.parametrize("name", ["lenet5", "mtcnn-pnet", "mtcnn-rnet", "mtcnn-onet",
                                  pytest.param("minilm-l6", marks=pytest.mark.slow),
                                  pytest.param("mobilenetv2", marks=pytest.mark.slow)])
def test_real_networks_on_paper_match_the_oracle(name):
    """Steady-state programs of real networks on ``paper`` (fetch_ports 2, psum_lanes 16, post_lanes 4):
    the bandwidth terms hold COMPUTEs back there, so equal cycles, windows and counters are not vacuous.
    ``slow``: MiniLM-L6 (sequence layouts, 0.9 M cycles with rewrites) and MobileNetV2 (replicated rounds
    with short last copies, 1.6 M cycles) take 3-5 minutes each in the cycle-by-cycle oracle."""
    cfg = preset("paper")
    tr, prog, res = _steady_program(name, cfg)
    gold = gtiming.run(prog, tr, cfg, prog.notes["final_levels"])
    ref = oracle_run(prog, tr, cfg, prog.notes["final_levels"])
    d = differences(ref, gold)
    d = [x for x in d if not x.startswith("WRITE")][:60] + [x for x in d if x.startswith("WRITE")][:5]
    assert not d, f"{name} steady state on paper:\n  " + "\n  ".join(d)
    assert ref.exec_times == [tuple(t) for t in gold.exec_times]
    assert res["cycles"] == ref.cycles
    assert all(res["counters"][k] == ref.counters[k] for k in COUNTERS)
    assert sum(ref.counters[k] for k in STALLS) > 0 and ref.counters["gbuf_fetch_words"] > 0
    assert ref.counters["stall_fill"] > 0 and ref.counters["stall_post"] > 0


def test_worked_example_in_every_mode():
    tr = example_trace()
    for mode in sorted(SCHED):
        check_all_runs(tr, TINY, mode)


# ---------------------------------------------------------------------------------------------------
# mutations of the golden model (monkeypatched helpers of sim_models.timing) must be caught

def _fixed_cases():
    """A few fixed programs: the §10.6 example, a random conv net and a psum-splitting linear layer."""
    out = [(example_trace(), TINY, "aras")]
    rng = np.random.default_rng(7)
    nodes = [FNode("c", "conv2d", ["x"], "y", {"pads": (1, 1, 1, 1), "groups": 1},
                   {"weight": rng.normal(0, .5, (5, 3, 3, 3)), "bias": np.zeros(5)}),
             FNode("r", "relu", ["y"], "yr"),
             FNode("mp", "maxpool", ["yr"], "z", {"kernel": (2, 2), "stride": (2, 2)}),
             FNode("f", "flatten", ["z"], "zf"),
             FNode("fc", "linear", ["zf"], "o", params={"weight": rng.normal(0, .5, (3, 20)), "bias": np.zeros(3)})]
    g = FloatGraph("conv-net", "x", (3, 4, 4), nodes, ["o"], weights="synthetic")
    x = rng.normal(size=(4, 3, 4, 4))
    out.append((quantize(ModelSource(g, x, x[:1])), TINY.replace(batch=2), "aras"))
    nodes = [FNode("fc", "linear", ["x"], "o", params={"weight": rng.normal(0, .5, (6, 150)), "bias": np.zeros(6)})]
    g = FloatGraph("big-fc", "x", (2, 150), nodes, ["o"], weights="synthetic")
    x = rng.normal(size=(4, 2, 150))
    out.append((quantize(ModelSource(g, x, x[:1])), TINY, "aras"))
    # a pointwise conv over 9 x 9 positions: replicated twice, copy 1 computes 40 of 81 positions
    nodes = [FNode("c", "conv2d", ["x"], "y", {"pads": (1, 1, 1, 1)},
                   {"weight": rng.normal(0, .5, (4, 1, 1, 1)), "bias": np.zeros(4)})]
    g = FloatGraph("wide", "x", (1, 7, 7), nodes, ["y"], weights="synthetic")
    x = rng.normal(size=(4, 1, 7, 7))
    out.append((quantize(ModelSource(g, x, x[:1])), TINY.replace(batch=2), "aras"))
    return out


def _plus_one_compute(orig):
    return lambda *a, **k: orig(*a, **k) + 1


def _bank_off_by_one(orig):
    return lambda *a: orig(*a[:-1], a[-1] - 1)


def _traffic_plus_one(orig):
    def f(*a, **k):
        r = orig(*a, **k)
        return (r[0] + 1,) + tuple(r[1:])
    return f


def _unclipped_copies(orig):
    def f(P, replicas, q):
        per = -(-P // replicas)
        return range(q * per, (q + 1) * per)  # forgets that the last copy's range is shorter
    return f


# name -> (helper of sim_models.timing, its mutation, the fixed cases that must catch it)
MUTATIONS = {
    "COMPUTE one cycle too long (compute_cycles + 1)": ("compute_cycles", _plus_one_compute, (0, 1, 2, 3)),
    "active-bank cycles summed over cycles - 1": ("_active_bank_cycles", _bank_off_by_one, (0, 1, 2, 3)),
    "one Gbuffer read too many per COMPUTE": ("gbuffer.compute_traffic", _traffic_plus_one, (0, 1, 2, 3)),
    "a replicated round's short copy counted over a full range": ("positions_of", _unclipped_copies, (3,)),
}


def interlock_program(which: str) -> tuple[Program, Trace]:
    """Hand-built variants of the §9.7 program in which one interlock decides a start:
    ``waw`` — the same tile written twice to x0 with no COMPUTE between (2 drivers: only WAW holds the
    second back); ``pe_order`` — layer 2's first tile goes to x0, which E0 still reads (WAR), and its
    second to x1 of the same PE: in-order programming holds the ready second WRITE back."""
    tr = example_trace()
    lt0, lt2 = tile_layer(0, tr.layers[0], TINY), tile_layer(2, tr.layers[2], TINY)
    t00, t01 = lt0.tiles
    t20, t21 = lt2.tiles

    def wr(tile, x, addr):
        return Write(tile, x, addr, "offset", 1, np.zeros(tile.wcols, bool),
                     np.full((tile.rows, tile.wcols), 127, np.int8))

    def te(x, tile):
        return TileEntry(x, tile.tag, tile.rows, tile.wcols * 4, "offset")

    x20, x21 = (0, 1) if which == "pe_order" else (1, 5)
    head = [wr(t00, 0, 0x000), wr(t00, 0, 0x000)] if which == "waw" else [wr(t00, 0, 0x000)]
    instrs = head + [wr(t01, 4, 0x040), Compute(0, 0, [te(0, t00), te(4, t01)], [BlockEntry(0, 0, 4)],
                                                bank_on=(1,), bank_off=(0,)),
                     wr(t20, x20, 0x048), wr(t21, x21, 0x088),
                     Compute(2, 0, [te(x20, t20), te(x21, t21)], [BlockEntry(0, 0, 4), BlockEntry(0, 1, 2)],
                             bank_on=(2,), bank_off=(1,))]
    tensors = {"t0": TensorAlloc("t0", 32, (0,), 0), "t1": TensorAlloc("t1", 16, (1,), 1024),
               "t2": TensorAlloc("t2", 16, (1,), 1024, alias_of="t1"), "t3": TensorAlloc("t3", 6, (2,), 2048)}
    return assemble(Program("aras", 1, instrs, {0: lt0, 2: lt2}, tensors, banks_init=(0,))), tr


def _interlock_cases():
    """(trace, config, program): the fixed cases in aras and baseline, with 2 drivers, the hand-built
    worked examples and the two interlock programs."""
    out = []
    for tr, cfg, mode in _fixed_cases():
        for c, m in ((cfg, mode), (cfg, "baseline"), (cfg.replace(write_drivers_per_pe=2), mode)):
            out.append((tr, c, schedule(tr, c, *SCHED[m])))
    for ex in SPEC_EXAMPLES.values():
        tr, prog, cfg = ex["build"]()
        out.append((tr, cfg, prog))
    for which in ("waw", "pe_order"):
        prog, tr = interlock_program(which)
        out.append((tr, TINY.replace(write_drivers_per_pe=2), prog))
    return out


def test_the_unmutated_golden_model_agrees_on_the_mutation_cases():
    for tr, cfg, prog in _interlock_cases():
        d, _ = compare(prog, tr, cfg, cache={})
        assert not d, d


@pytest.mark.parametrize("rule", gtiming.RULES)
def test_a_golden_model_without_an_interlock_is_caught(rule):
    """The golden model's analysis switch ``drop`` removes one term of §10.2/§10.3's max() (a
    forgotten interlock: DRAM order, slot, barrier, fetch, per-PE order, driver, WAR, WAW, execute
    order, RAW, RAW on the last-written or the highest crossbar only); the oracle must see a
    difference on at least one case."""
    caught = []
    for tr, cfg, prog in _interlock_cases():
        gold = gtiming.run(prog, tr, cfg, cache={}, drop=frozenset({rule}))
        caught.append(bool(differences(oracle_run(prog, tr, cfg), gold)))
    assert any(caught), f"dropping {rule!r} went unseen"


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_a_mutated_golden_model_is_caught(name, monkeypatch):
    attr, mutate, must = MUTATIONS[name]
    cases = _fixed_cases()
    progs = [schedule(tr, cfg, *SCHED[mode]) for tr, cfg, mode in cases]  # scheduled before the mutation
    owner = gtiming
    if "." in attr:
        mod, attr = attr.split(".")
        owner = getattr(gtiming, mod)
    monkeypatch.setattr(owner, attr, mutate(getattr(owner, attr)))
    caught = [bool(compare(prog, tr, cfg, cache={})[0])  # no cached traffic
              for prog, (tr, cfg, _) in zip(progs, cases, strict=True)]
    assert all(caught[i] for i in must), f"mutation {name!r} not caught: {caught}"


def test_the_oracle_imports_only_the_contract():
    """Independence: verif/oracle uses the config, program, tiling and trace modules and nothing of
    sim_models or hw (docs/verification.md, "Independent timing reference")."""
    import ast

    allowed = {"aras.config", "aras.errors", "aras.program", "aras.tiling", "aras.trace", "__future__",
               "dataclasses", "numpy"}
    for f in (ROOT / "verif" / "oracle").glob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module] if node.level == 0 else []
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for n in names:
                assert n in allowed, f"{f.name} imports {n}"


def test_oracle_rejects_unknown_instructions():
    prog, tr = spec_program()
    prog.instrs.append(object())
    with pytest.raises(ArasError, match="unknown instruction"):
        oracle_run(prog, tr, TINY)
