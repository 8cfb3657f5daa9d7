"""TPU-like baseline: an analytical model of a weight-stationary int8 systolic array running a layer trace.

The baseline has a ``rows`` x ``cols`` array of int8 MACs with int32 partial sums (TPU v1 style: weights
shifted in from the top and held in a shadow register so the next tile loads while the current one
computes), a weight buffer of ``wbuf_tiles`` tiles fed from the same DRAM channel as ARAS, the same
Gbuffer (unified activation/partial-sum SRAM, every bank always powered) and the same vector unit.
Only the matrix engine differs from ARAS. Cycle rules follow SCALE-Sim's weight-stationary model
(Samajdar et al., ISPASS 2020): per fold ``rows`` cycles of weight load and ``T + rows + cols - 2``
cycles of streaming with fill and drain, ``T`` = positions x batch. ``docs/tpu-baseline.md`` has the
formulas, the energy table with sources and the cost-matched sizing (:func:`tpu_config`).

Run ``python -m sim_models.tpu MODEL`` for the sizing and a summary of one network.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from dataclasses import dataclass, field

import numpy as np

from aras.config import TPU_DATAFLOWS, Config
from aras.errors import ArasError
from aras.trace import CROSSBAR_OPS, HOST_OPS, SHAPE_OPS, VECTOR_OPS, Layer, Trace, check_fits, live_bytes

from . import host
from .energy import area_mm2

PSUM_BITS = 32  # int32 accumulators
ACT_BITS = 8


def _f(default, source: str):
    return field(default=default, metadata={"source": source})


# TPU v1 (Jouppi et al., ISCA 2017): 65,536 int8 MACs; the matrix unit is 24 % of a <= 331 mm2 die in 28 nm.
# Scaled to 32 nm, the node of the ISAAC/PUMA figures that ARAS's areas use, by (32/28)^2.
AREA_MAC_TPU_V1_MM2 = 0.24 * 331.0 / 65536 * (32 / 28) ** 2


@dataclass(frozen=True)
class TpuConfig:
    """The systolic array and its per-event energies; everything else comes from the ARAS :class:`Config`."""

    rows: int = _f(64, "array rows (reduction dimension K); tpu_config() derives it from the ARAS area")
    cols: int = _f(64, "array columns (output channels N)")
    wbuf_tiles: int = _f(2, "weight buffer of 2 rows x cols tiles: double buffering, one arrives while one loads")
    double_buffer_weights: bool = _f(True, "TPU v1 MXU holds a second weight tile: the next fold's load "
                                           "overlaps the current fold's streaming")
    pack_groups: bool = _f(True, "grouped convs packed block-diagonally into one fold (ARAS's own tiling "
                                 "rule): the stronger competitor; false = SCALE-Sim's one group per fold")
    allow_resident: bool = _f(True, "steady state: weights stay in the Gbuffer when they fit beside the "
                                    "activations (no DRAM traffic)")
    stall_free: bool = _f(False, "SCALE-Sim's stall-free interface (tpu_dataflow ws-scalesim): a tile's weights are "
                                 "there when its load starts; DRAM bytes and energy are counted, DRAM time never "
                                 "stalls, partial sums never split the positions, layers never overlap")
    e_mac_pj: float = _f(0.3, "Horowitz ISSCC 2014, 45 nm: 8-bit multiply 0.2 pJ + 32-bit add 0.1 pJ")
    e_add32_pj: float = _f(0.1, "Horowitz ISSCC 2014, 45 nm: 32-bit add (partial-sum accumulation across folds)")
    e_reg_bit_pj: float = _f(0.009, "Aladdin (Shao et al., ISCA 2014) 40 nm register: 0.009 pJ per bit per "
                                    "access (Accelergy aladdin table)")
    area_mac_mm2: float = _f(AREA_MAC_TPU_V1_MM2, "TPU v1: 24 % of 331 mm2 / 65,536 MACs at 28 nm, "
                                                  "x (32/28)^2 to 32 nm = 1.58e-3 mm2 per MAC incl. registers")

    def __post_init__(self):
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.type == "bool":
                if not isinstance(v, bool):
                    raise ArasError(f"TPU config: field {f.name!r} must be bool, got {v!r}")
            elif f.type == "int":
                if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                    raise ArasError(f"TPU config: field {f.name!r} must be an integer >= 1, got {v!r}")
            elif isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ArasError(f"TPU config: field {f.name!r} must be a number >= 0, got {v!r}")

    @property
    def macs(self) -> int:
        return self.rows * self.cols

    @property
    def wbuf_bytes(self) -> int:
        return self.wbuf_tiles * self.rows * self.cols

    def replace(self, **kw) -> TpuConfig:
        return dataclasses.replace(self, **kw)

    @staticmethod
    def sources() -> dict[str, str]:
        return {f.name: f.metadata.get("source", "") for f in dataclasses.fields(TpuConfig)}


# ---------------------------------------------------------------------------------------------- sizing
def aras_compute_area(cfg: Config) -> dict[str, float]:
    """mm2 of ARAS's analog compute: crossbars, ADCs, DACs, sample-and-holds, shift-and-adds (the
    matching entries of :func:`sim_models.energy.area_mm2`)."""
    full = area_mm2(cfg)
    a = {"xbar": full["crossbars"], "adc": full["adc"], "dac": full["dac"], "sh": full["sample_hold"],
         "sna": full["shift_add"]}
    a["total"] = sum(a.values())
    return a


def _sram_mm2_per_byte(cfg: Config) -> float:
    return cfg.area_gbuf_64k_mm2 / 65536


def array_area(cfg: Config, tcfg: TpuConfig) -> dict[str, float]:
    """mm2 of the matrix engine that is matched against ARAS's analog compute: MACs + weight buffer."""
    a = {"macs": tcfg.macs * tcfg.area_mac_mm2, "weight_buffer": tcfg.wbuf_bytes * _sram_mm2_per_byte(cfg)}
    a["total"] = a["macs"] + a["weight_buffer"]
    return a


def tpu_config(cfg: Config, pow2: bool = False, **fields) -> TpuConfig:
    """The square array whose MACs + weight buffer take at most the area of ``cfg``'s analog compute.

    n = the largest integer with n^2 (area_mac + wbuf_tiles x SRAM area per byte) <= budget; with
    ``pow2`` the largest power of two not above it. ``fields`` override other :class:`TpuConfig` fields.
    """
    for k in ("rows", "cols"):
        if k in fields:
            raise ArasError(f"tpu_config: field {k!r} is derived from the ARAS area; build TpuConfig directly")
    proto = TpuConfig(rows=1, cols=1, **fields)
    budget = aras_compute_area(cfg)["total"]
    per_mac = proto.area_mac_mm2 + proto.wbuf_tiles * _sram_mm2_per_byte(cfg)
    if per_mac <= 0 or budget < per_mac:
        raise ArasError(f"config {cfg.name!r}: ARAS compute area {budget:.3g} mm2 is below one MAC "
                        f"({per_mac:.3g} mm2, TPU field 'area_mac_mm2')")
    n = math.isqrt(int(budget / per_mac))
    while (n + 1) ** 2 * per_mac <= budget:  # guard the float division at the edges
        n += 1
    while n > 1 and n * n * per_mac > budget:
        n -= 1
    if pow2:
        n = 1 << (n.bit_length() - 1)
    return proto.replace(rows=n, cols=n)


SCALESIM = {"double_buffer_weights": False, "pack_groups": False, "stall_free": True}  # tpu_dataflow ws-scalesim


def tpu_for(cfg: Config, **fields) -> TpuConfig:
    """The TPU-like baseline that ``cfg`` asks for: the array of ``tpu_rows`` x ``tpu_cols`` (``--tpu-array``),
    else the area-matched one (:func:`tpu_config`); ``tpu_dataflow`` ws-scalesim sets :data:`SCALESIM`.
    ``fields`` override other :class:`TpuConfig` fields."""
    kw = {**(SCALESIM if cfg.tpu_dataflow == "ws-scalesim" else {}), **fields}
    if cfg.tpu_rows:
        return TpuConfig(rows=cfg.tpu_rows, cols=cfg.tpu_cols, **kw)
    return tpu_config(cfg, **kw)


def sizing(cfg: Config, tcfg: TpuConfig) -> dict:
    """The cost comparison behind ``tcfg`` (reported under ``tpu`` by :func:`simulate_tpu`). ``area_matched``:
    ``tcfg``'s array is the one :func:`tpu_config` sizes to ARAS's analog-compute area (false when
    ``--tpu-array`` chose another)."""
    ar, aa = array_area(cfg, tcfg), aras_compute_area(cfg)
    try:
        m = tpu_config(cfg, wbuf_tiles=tcfg.wbuf_tiles, area_mac_mm2=tcfg.area_mac_mm2)
        matched = (m.rows, m.cols)
    except ArasError:  # the ARAS area is below one MAC
        matched = None
    return {
        "rows": tcfg.rows, "cols": tcfg.cols, "macs": tcfg.macs, "wbuf_bytes": tcfg.wbuf_bytes,
        "area_mac_mm2": tcfg.area_mac_mm2, "array_area_mm2": ar,
        "aras_compute_area_mm2": aa, "area_ratio": ar["total"] / aa["total"],
        "area_matched": matched == (tcfg.rows, tcfg.cols), "area_matched_array": matched,
        "dataflow": dataflow(tcfg),
        "peak_macs_per_cycle": tcfg.macs, "config": dataclasses.asdict(tcfg),
    }


def dataflow(tcfg: TpuConfig) -> str:
    """``ws-scalesim`` (:data:`SCALESIM`), ``ws`` (TPU v1 default timing) or ``custom`` (another mix)."""
    if all(getattr(tcfg, k) == v for k, v in SCALESIM.items()):
        return "ws-scalesim"
    if all(getattr(tcfg, k) == getattr(TpuConfig, k) for k in SCALESIM):
        return "ws"
    return "custom"


def area_line(t: dict) -> str:
    """One line with both areas of a :func:`sizing` and, when the array is not the area-matched one, the flag."""
    line = (f"TPU-like array {t['rows']}x{t['cols']} = {t['macs']:,} MACs: MACs + weight buffer "
            f"{t['array_area_mm2']['total']:.3f} mm2 vs ARAS analog compute {t['aras_compute_area_mm2']['total']:.3f} "
            f"mm2 (ratio {t['area_ratio']:.3f})")
    if t["area_matched"]:
        return line + ", area-matched"
    m = t["area_matched_array"]
    return line + (" - AREA MISMATCH: --tpu-array overrides the area matching"
                   + (f" (the area-matched array is {m[0]}x{m[1]})" if m else ""))


def scalesim_compute_cycles(g: int, kg: int, ng: int, t: int, rows: int, cols: int) -> int:
    """SCALE-Sim 3.0's weight-stationary compute cycles (stall-free) of ``g`` GEMMs (T x K_g) . (K_g x N_g) on a
    ``rows`` x ``cols`` array, each run as one SCALE-Sim layer (its depthwise convention: one layer per group):
    per layer folds x (2R + C + T - 2) - 1, folds = ceil(K_g / R) x ceil(N_g / C). Derivation: docs/tpu.md."""
    folds = -(-kg // rows) * -(-ng // cols)
    return g * (folds * (2 * rows + cols + t - 2) - 1)


# ---------------------------------------------------------------------------------------------- mapping
@dataclass
class Fold:
    """One weight tile on the array: ``k`` x ``n`` used PEs, ``macs`` useful MACs per input row."""

    k: int
    n: int
    macs: int
    nbytes: int  # weight bytes fetched (zeros of block-diagonal packing are made on chip)
    first: bool  # first row fold of its output block (psum written, not read)
    last: bool  # last row fold (output requantized and written as int8)


def gemm_shape(ly: Layer, trace: Trace) -> tuple[int, int, int, int]:
    """(groups, K_g, N_g, P): a crossbar layer as ``groups`` GEMMs of (P x K_g) . (K_g x N_g), one sample."""
    w = ly.arrays["weight"]
    out = trace.tensors[ly.output].shape
    if ly.op == "conv2d":
        g = int(ly.attrs.get("groups", 1))
        return g, int(np.prod(w.shape[1:])), w.shape[0] // g, int(out[1] * out[2])
    return 1, int(w.shape[1]), int(w.shape[0]), int(np.prod(out[:-1], dtype=np.int64))


def folds(ly: Layer, trace: Trace, tcfg: TpuConfig) -> list[Fold]:
    """The layer's weight tiles in execution order: group, column fold, row fold (row folds innermost so
    partial sums accumulate). Grouped convs take one group per fold unless ``pack_groups``."""
    g, kg, ng, _ = gemm_shape(ly, trace)
    r, c = tcfg.rows, tcfg.cols
    out = []
    if tcfg.pack_groups and g > 1 and kg <= r and ng <= c:
        per = min(r // kg, c // ng, g)
        for g0 in range(0, g, per):
            m = min(per, g - g0)
            out.append(Fold(m * kg, m * ng, m * kg * ng, m * kg * ng, True, True))
        return out
    nk = -(-kg // r)
    for _ in range(g):
        for n0 in range(0, ng, c):
            n = min(c, ng - n0)
            for i in range(nk):
                k = min(r, kg - i * r)
                out.append(Fold(k, n, k * n, k * n, i == 0, i == nk - 1))
    return out


def vector_work(ly: Layer, trace: Trace) -> int:
    """Lane-ops of one sample, ARAS's rule (docs/architecture.md section 10.4)."""
    out = trace.tensors[ly.output].shape
    if ly.op in ("maxpool", "avgpool"):
        kh, kw = ly.attrs["kernel"]
        return int(np.prod(out)) * kh * kw
    return int(np.prod(trace.tensors[ly.inputs[0]].shape))


# ---------------------------------------------------------------------------------------------- simulation
EVENTS = ("macs", "acc_adds", "reg_bits", "gbuf_bytes", "wbuf_bytes", "dram_bytes", "post_ops", "vector_ops")


def per_event_pj(cfg: Config, tcfg: TpuConfig) -> dict[str, float]:
    """pJ per counted event; ``leak_mw`` is the always-on SRAM leakage (Gbuffer + weight buffer)."""
    byte = cfg.e_gbuf_256b_pj / 32
    return {
        "macs": tcfg.e_mac_pj, "acc_adds": tcfg.e_add32_pj, "reg_bits": tcfg.e_reg_bit_pj,
        "gbuf_bytes": byte, "wbuf_bytes": byte, "dram_bytes": 8 * cfg.dram_pj_per_bit,
        "post_ops": cfg.e_post_op_pj, "vector_ops": cfg.e_vector_op_pj,
        "leak_mw": cfg.gbuf_banks * cfg.p_gbuf_bank_leak_mw + tcfg.wbuf_bytes / 65536 * cfg.p_gbuf_leak_64k_mw,
    }


def energy_pj(ev: dict[str, int], cycles: int, cfg: Config, tcfg: TpuConfig) -> dict[str, float]:
    """Energy components (pJ) of event counts ``ev`` over ``cycles`` of leakage."""
    e = per_event_pj(cfg, tcfg)
    comp = {
        "mac": ev["macs"] * e["macs"] + ev["acc_adds"] * e["acc_adds"],
        "array": ev["reg_bits"] * e["reg_bits"],
        "sram_dynamic": ev["gbuf_bytes"] * e["gbuf_bytes"] + ev["wbuf_bytes"] * e["wbuf_bytes"],
        "sram_static": cycles * e["leak_mw"] / cfg.clock_ghz,  # mW x ns = pJ
        "dram": ev["dram_bytes"] * e["dram_bytes"],
        "vector": ev["vector_ops"] * e["vector_ops"],
        "post": ev["post_ops"] * e["post_ops"],
    }
    comp["total"] = sum(comp.values())
    return comp


def _joules(pj: dict[str, float]) -> dict[str, float]:
    return {k: v * 1e-12 for k, v in pj.items()}


def simulate_tpu(trace: Trace, cfg: Config, tcfg: TpuConfig | None = None) -> dict:
    """Cycles, energy and area of ``trace`` (batch ``cfg.batch``) on the TPU-like baseline.

    Returns a JSON-ready dict: ``mode`` = "tpu", ``cycles``, ``latency_s``, ``energy_j`` (``total`` and
    components), ``layers`` (per timed layer: start, end, compute/write/DRAM/stall cycles, events,
    energy), ``events``, ``area_mm2``, ``tpu`` (the sizing), ``host_work``, ``assumptions``.
    """
    tcfg = tcfg or tpu_for(cfg)
    check_fits(trace, cfg)
    B, R, C = cfg.batch, tcfg.rows, tcfg.cols
    wl = trace.weight_layers()
    weight_bytes = int(sum(ly.arrays["weight"].size for ly in wl))
    live = dict(live_bytes(trace))
    peak_live = max(live.values(), default=0) * B
    resident = tcfg.allow_resident and weight_bytes + peak_live <= cfg.gbuf_bytes
    lat, bw = cfg.dram_latency_cycles, cfg.dram_bytes_per_cycle

    tot = dict.fromkeys(EVENTS, 0)
    layers = []
    e_fin = 0  # finish of the previous execute step (layer)
    dram_free = 0  # the DRAM channel moves one tile at a time
    load_fin: list[int] = []  # per tile, the cycle its weights left the weight buffer (frees the slot)
    prev_l_fin = prev_c_start = prev_c_fin = 0
    lb_cycles = 0  # lower bound: every crossbar layer at R x C useful MACs per cycle, the rest as timed
    for ly in trace.layers:
        if ly.op in SHAPE_OPS:
            continue  # aliases: no instruction, no cycles (as ARAS)
        ev = dict.fromkeys(EVENTS, 0)
        rec = {"name": ly.name, "op": ly.op}
        prev_e_fin = e_fin
        if ly.op in VECTOR_OPS:
            work = B * vector_work(ly, trace)
            dur = -(-work // cfg.vector_lanes) + cfg.vector_latency
            ev["vector_ops"] = work
            ev["gbuf_bytes"] = B * (sum(int(np.prod(trace.tensors[t].shape)) for t in ly.inputs)
                                    + int(np.prod(trace.tensors[ly.output].shape)))
            start, e_fin = e_fin, e_fin + dur
            lb_cycles += dur
            rec.update(compute_cycles=dur, write_cycles=0, dram_cycles=0, scalesim_compute_cycles=None)
        elif ly.op in HOST_OPS:
            start, e_fin = e_fin, e_fin + 1 + cfg.host_handoff_cycles  # ARAS's HOST handshake; host work untimed
            lb_cycles += e_fin - start
            rec.update(compute_cycles=e_fin - start, write_cycles=0, dram_cycles=0, scalesim_compute_cycles=None)
        elif ly.op in CROSSBAR_OPS:
            fl = folds(ly, trace, tcfg)
            g, kg, ng, p = gemm_shape(ly, trace)
            t_rows = p * B
            # Partial sums (int32, one column fold at a time) live in the Gbuffer beside the activations;
            # when they do not fit, the positions are split into passes that each re-run every fold.
            need = 4 * t_rows * max((f.n for f in fl if not (f.first and f.last)), default=0)
            free = cfg.gbuf_bytes - live[ly.name] * B - (weight_bytes if resident else 0)
            passes = 1
            if need > free and not tcfg.stall_free:
                per_row = need // t_rows
                if free < per_row:
                    raise ArasError(f"layer {ly.name!r}: no Gbuffer room for one row of int32 partial sums "
                                    f"({per_row} B); fields 'gbuf_banks' x 'gbuf_bank_bytes'")
                passes = -(-t_rows // (free // per_row))
            chunks = [t_rows // passes + (i < t_rows % passes) for i in range(passes)]
            start = None
            comp = wr = dr = 0
            for t in chunks:
                for f in fl:
                    if resident:
                        a_fin = 0
                    elif tcfg.stall_free:  # SCALE-Sim: the interface never stalls; the transfer is counted
                        a_fin = 0
                        dr += lat + -(-f.nbytes // bw)
                        ev["dram_bytes"] += f.nbytes
                    else:
                        i = len(load_fin)
                        slot = load_fin[i - tcfg.wbuf_tiles] if i >= tcfg.wbuf_tiles else 0
                        a_start = max(dram_free, slot)
                        dram_free = a_fin = a_start + lat + -(-f.nbytes // bw)
                        dr += a_fin - a_start
                        ev["dram_bytes"] += f.nbytes
                    # The shadow weight registers are free once the previous tile went live (double
                    # buffered), else once the previous fold finished streaming.
                    l_start = max(a_fin, prev_l_fin, prev_c_start if tcfg.double_buffer_weights else prev_c_fin,
                                  e_fin if tcfg.stall_free else 0)  # SCALE-Sim: layers do not overlap
                    prev_l_fin = l_start + R
                    load_fin.append(prev_l_fin)
                    c_start = max(prev_l_fin, prev_c_fin, e_fin)
                    stream = t + R + C - 2  # SCALE-Sim: fill R + C - 2, one input row per cycle
                    prev_c_start, prev_c_fin = c_start, c_start + stream
                    start = c_start if start is None else start
                    comp += stream
                    wr += R
                    ev["macs"] += f.macs * t
                    ev["acc_adds"] += 0 if f.first else t * f.n
                    # Registers: input (8 b) per used PE, partial sum (32 b) through all R rows of a used
                    # column, weight bytes shifted down through the rows above their own.
                    ev["reg_bits"] += t * (ACT_BITS * f.k * f.n + PSUM_BITS * R * f.n) \
                        + ACT_BITS * f.n * f.k * (f.k + 1) // 2
                    ev["gbuf_bytes"] += t * f.k + (0 if f.last else 4 * t * f.n) + (0 if f.first else 4 * t * f.n) \
                        + (t * f.n if f.last else 0) + (f.nbytes if resident else 0)
                    ev["wbuf_bytes"] += 2 * f.nbytes  # filled, then read into the array
                    ev["post_ops"] += t * f.n if f.last else 0
            e_fin = prev_c_fin + cfg.post_latency
            lb_cycles += -(-ev["macs"] // tcfg.macs)
            rec.update(compute_cycles=comp, write_cycles=wr, dram_cycles=dr, folds=len(fl) * passes, passes=passes,
                       scalesim_compute_cycles=scalesim_compute_cycles(g, kg, ng, t_rows, R, C),
                       gemm={"groups": g, "K_g": kg, "N_g": ng, "P": p},
                       utilization=ev["macs"] / (tcfg.macs * comp))
        else:
            raise ArasError(f"layer {ly.name!r}: unsupported op {ly.op!r}")
        span = e_fin - prev_e_fin
        rec.update(start=start, end=e_fin - 1, stall_cycles=span - rec["compute_cycles"]
                   - (cfg.post_latency if ly.op in CROSSBAR_OPS else 0), events=ev,
                   energy_j=_joules(energy_pj(ev, span, cfg, tcfg)))
        for k in EVENTS:
            tot[k] += ev[k]
        layers.append(rec)

    cycles = e_fin
    host_layers = [ly for ly in trace.layers if ly.on_host]
    total_area = {
        "array": array_area(cfg, tcfg)["total"],
        "gbuf": cfg.gbuf_banks * cfg.area_gbuf_bank_mm2,
        "vector": cfg.vector_lanes * cfg.area_vector_lane_mm2,
    }
    total_area["total"] = sum(total_area.values())
    return {
        "mode": "tpu", "model": trace.name, "config": cfg.name, "weights": trace.weights, "batch": B,
        "cycles": cycles, "latency_s": cycles / (cfg.clock_ghz * 1e9),
        "energy_j": _joules(energy_pj(tot, cycles, cfg, tcfg)),
        "events": tot, "per_event_pj": per_event_pj(cfg, tcfg),
        "weights_resident": resident, "weight_bytes": weight_bytes,
        "macs": tot["macs"], "utilization": tot["macs"] / (tcfg.macs * cycles) if cycles else 0.0,
        "layers": layers, "area_mm2": total_area, "tpu": sizing(cfg, tcfg),
        "lower_bound": {"cycles": lb_cycles, "rule": LOWER_BOUND_RULE},
        "host_work": {
            "layers": [f"{ly.name} ({ly.op})" for ly in host_layers],
            "flops_per_sample": int(sum(host.flops(ly, [trace.tensors[t] for t in ly.inputs]) for ly in host_layers)),
        },
        "assumptions": assumptions(tcfg, resident) + [area_line(sizing(cfg, tcfg))],
    }


LOWER_BOUND_RULE = ("compute bound: the layers run one at a time; a crossbar layer takes at least ceil(useful MACs "
                    "/ (rows x cols)) cycles (every PE busy every cycle: no weight load, fill, drain, DRAM wait or "
                    "requantization), a vector or HOST layer its timed duration")


def assumptions(tcfg: TpuConfig, resident: bool) -> list[str]:
    return [
        f"weight-stationary {tcfg.rows}x{tcfg.cols} int8 systolic array, int32 partial sums; conv = im2col GEMM",
        "per fold: weight load = rows cycles; streaming = T + rows + cols - 2 cycles, T = positions x batch "
        "(SCALE-Sim, Samajdar et al. ISPASS 2020); full-array fill/drain even for partial folds",
        "weight load overlapped with the previous fold's streaming (TPU v1 double-buffered weights)"
        if tcfg.double_buffer_weights else "weight load serialized with streaming: 2R + C + T - 2 per fold",
        "SCALE-Sim weight-stationary timing (tpu_dataflow ws-scalesim): stall-free interface (DRAM time never "
        "stalls), layers do not overlap, positions never split for partial sums"
        if tcfg.stall_free else "DRAM transfers and the weight buffer stall the array (not stall-free)",
        "folds ordered group, column fold, row fold; int32 partial sums between row folds in the Gbuffer",
        "grouped convs: groups packed block-diagonally into one fold" if tcfg.pack_groups
        else "grouped/depthwise convs: one group per fold",
        "weights resident in the Gbuffer (steady state, they fit beside the activations): no DRAM traffic"
        if resident else
        f"every weight byte fetched once per batch: one DRAM transfer per tile (latency + bytes / bandwidth), "
        f"in order, into a {tcfg.wbuf_tiles}-tile weight buffer; a layer waits for its tiles (no whole-layer prefetch)",
        "layers run one at a time; a layer's last fold adds post_latency (requantize, write-back)",
        "vector ops and HOST handshakes as ARAS; host work untimed (reported as FLOPs)",
        "MAC energy only for useful MACs (idle PEs and zero-weight PEs gated); SRAM energy per byte = "
        "e_gbuf_256b_pj / 32 for Gbuffer and weight buffer; all Gbuffer banks always on (no adaptive bank selection)",
        "no NoC, bank-conflict or SRAM-bandwidth stalls (as ARAS)",
    ]


# ---------------------------------------------------------------------------------------------- command line
def summary(res: dict) -> str:
    t = res["tpu"]
    e = res["energy_j"]
    lines = [
        f"{res['model']} on the TPU-like baseline for config {res['config']} (batch {res['batch']}, "
        f"weights {res['weights']})",
        f"array {t['rows']}x{t['cols']} = {t['macs']} MACs; MACs + weight buffer "
        f"{t['array_area_mm2']['total']:.3f} mm2 "
        f"vs ARAS analog compute {t['aras_compute_area_mm2']['total']:.3f} mm2 (ratio {t['area_ratio']:.3f})"
        + ("" if t["area_matched"] else " - AREA MISMATCH (not the area-matched array)")
        + f"; dataflow {t['dataflow']}",
        f"cycles {res['cycles']:,} ({res['latency_s'] * 1e3:.4f} ms), MACs {res['macs']:,}, "
        f"utilization {100 * res['utilization']:.1f} %, "
        f"weights {'resident' if res['weights_resident'] else 'from DRAM'} ({res['weight_bytes']:,} B); "
        f"lower bound {res['lower_bound']['cycles']:,} cycles",
        "energy " + f"{e['total'] * 1e6:.3f} uJ: " + ", ".join(
            f"{k} {v * 1e6:.3f}" for k, v in e.items() if k != "total"),
        f"area {res['area_mm2']['total']:.3f} mm2 (array {res['area_mm2']['array']:.3f}, Gbuffer "
        f"{res['area_mm2']['gbuf']:.3f}, vector {res['area_mm2']['vector']:.3f})",
    ]
    if res["host_work"]["layers"]:
        lines.append(f"host work: {len(res['host_work']['layers'])} layers, "
                     f"{res['host_work']['flops_per_sample']:,} FLOPs per sample (untimed)")
    return "\n".join(lines)


def main(argv=None) -> int:
    from aras import config as config_mod
    from aras.models import load_trace_or_model

    ap = argparse.ArgumentParser(prog="python -m sim_models.tpu", description=__doc__.splitlines()[0])
    ap.add_argument("model", help="trace directory or registry model name")
    ap.add_argument("--config", default="paper", help="ARAS config (preset or file) the baseline is sized against")
    ap.add_argument("--batch", type=int, help="override the config's batch")
    ap.add_argument("--pow2", action="store_true", help="round the array down to a power of two")
    ap.add_argument("--no-pack-groups", action="store_true", help="one grouped-conv group per fold (SCALE-Sim)")
    ap.add_argument("--cold", action="store_true", help="never keep weights resident (fetch from DRAM)")
    ap.add_argument("--tpu-array", metavar="RxC", help="array rows x columns (default: area-matched)")
    ap.add_argument("--tpu-dataflow", choices=TPU_DATAFLOWS, help="ws (default) or ws-scalesim (docs/tpu.md)")
    ap.add_argument("--json", help="write the full result here")
    args = ap.parse_args(argv)
    try:
        cfg = config_mod.load(args.config)
        if args.batch:
            cfg = cfg.replace(batch=args.batch)
        cfg = config_mod.with_tpu(cfg, args.tpu_array, args.tpu_dataflow)
        kw = {"allow_resident": not args.cold}
        if args.no_pack_groups:
            kw["pack_groups"] = False
        if args.pow2:
            if cfg.tpu_rows:
                raise ArasError("--pow2: not with --tpu-array, which sets the array")
            tcfg = tpu_config(cfg, pow2=True, **{**(SCALESIM if cfg.tpu_dataflow == "ws-scalesim" else {}), **kw})
        else:
            tcfg = tpu_for(cfg, **kw)
        res = simulate_tpu(load_trace_or_model(args.model), cfg, tcfg)
    except ArasError as e:
        print(f"sim_models.tpu: {e}", file=sys.stderr)
        return 2
    print(summary(res))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
