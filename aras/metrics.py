"""Efficiency figures of one simulated run (docs/results.md §9): work in int8 operations, TOPS/W, TOPS/mm², EDP.

Work is counted the usual way for DNN accelerators: 2 operations (multiply, add) per MAC of the crossbar
layers (conv / linear, every weight including zeros: the hardware does them), times the batch; vector-unit and
host work is not counted as operations (it is timed and charged energy like everything else).
"""

from __future__ import annotations

from sim_models.tpu import gemm_shape

from .trace import Trace


def macs_per_sample(trace: Trace) -> int:
    """MACs of the crossbar layers for one input: Σ groups · K_g · N_g · positions."""
    total = 0
    for ly in trace.weight_layers():
        g, kg, ng, p = gemm_shape(ly, trace)
        total += g * kg * ng * p
    return total


def efficiency(run: dict, ops: int, area_mm2: float) -> dict:
    """``run``: a ``sim_models.perf.simulate`` result (``latency_s``, ``energy_j["total"]``) doing ``ops``
    operations on a design of ``area_mm2``. TOPS/W = ops / J / 1e12; TOPS/mm² = ops / s / 1e12 / mm²;
    EDP = J · s."""
    e, t = run["energy_j"]["total"], run["latency_s"]
    return {"ops": ops, "tops_per_w": ops / e / 1e12, "tops_per_mm2": ops / t / 1e12 / area_mm2,
            "edp_js": e * t}
