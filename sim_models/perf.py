"""Performance/energy simulation of a whole network in one mode (``aras simulate --mode``).

Modes: ``aras`` (all optimizations, each switchable), ``baseline`` (plain PUM on the same chip,
rewriting every tile on every inference), ``baseline-resident`` (the baseline PUM keeping its tiles
from the previous inference: for networks whose tiles all fit the crossbars, no writes in the steady
state), ``ideal`` (every layer resident on unlimited crossbars with the replication freedom of ARAS,
writes not counted: a lower bound of every mode of this hardware class), ``tpu`` (the TPU-like
systolic baseline, ``sim_models.tpu``). Results are steady state (the crossbars start with what the
previous inference of the same program left) with the cold start beside (docs/architecture.md §9.8).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from aras.config import Config
from aras.errors import ArasError
from aras.tiling import positions
from aras.trace import Trace, check_fits

from . import host
from .energy import area_mm2, energy_breakdown
from .scheduler import Options, compute_cycles, schedule
from .timing import Run, least_write_energy, run, vector_work
from .write_engine import WriteTables

MODES = ("aras", "baseline", "baseline-resident", "ideal", "tpu")
# Modes of this model that ``aras verify`` does not run on the RTL, and why (docs/architecture.md §9.8).
MODEL_ONLY = {
    "ideal": "the ideal PUM is a bound computed from the trace, not a program (every layer resident on "
             "unlimited crossbars)",
    "baseline-resident": "its cold (loading) program is exactly baseline's and aras verify runs a mode's cold "
                         "program back to back; use --mode baseline (resident tiles, the steady-state part, are "
                         "covered by verif/hw/test_top.py)",
    "tpu": "the TPU-like accelerator is a separate analytical model (docs/tpu-baseline.md), not this RTL",
}


def n_tiles(trace: Trace, cfg: Config) -> int:
    """Crossbar tiles of the network (offset family): the crossbars holding every weight at once."""
    from aras.tiling import tile_layer

    return sum(len(tile_layer(li, ly, cfg).tiles) for li, ly in enumerate(trace.layers) if ly.on_crossbars)


def fits(trace: Trace, cfg: Config) -> bool:
    """Every tile of the network has a crossbar of its own (the resident baseline is defined then)."""
    return n_tiles(trace, cfg) <= cfg.n_xbars


def _writes_summary(r: Run, cfg: Config) -> dict:
    L = cfg.levels
    cc = r.cells_changed
    return {
        "cells_changed": int(cc.sum() - np.trace(cc)),
        "cells_changed_by_transition": cc.tolist(),
        "cells_total": int(r.counters["cells_read_before_write"] + r.counters["cells_written_blind"]),
        "rows_written": r.counters["rows_written"],
        "rows_skipped": r.counters["rows_skipped"],
        "max_cell_writes": int(r.wear.max(initial=0)),
        "mean_cell_writes": float(r.wear.mean()),
        "levels": L,
    }


def _layers(trace: Trace, r: Run, cfg: Config) -> list[dict]:
    """Per layer: its execute window, write window, cycles and the energy of its own events (its
    tiles' writes and DRAM fetches, its computation and Gbuffer accesses). Gbuffer leakage is a
    property of the whole run and is reported there only."""
    out = []
    for li, lt in sorted(r.layers.items()):
        c = dict.fromkeys(r.counters, 0) | lt.counters
        c["gbuf_active_bank_cycles"] = 0
        e = energy_breakdown(c, lt.write_energy_pj, cfg)
        e.pop("gbuf_static")
        e["total"] = sum(v for k, v in e.items() if k != "total")
        out.append({"name": trace.layers[li].name, "op": trace.layers[li].op, "start": lt.start, "end": lt.end,
                    "write_start": lt.wstart, "write_end": lt.wend, "compute_cycles": lt.compute_cycles,
                    "write_cycles": lt.write_cycles, "write_energy_j": lt.write_energy_pj * 1e-12,
                    "energy_j": e, "counters": lt.counters})
    return out


def ideal_cycles(trace: Trace, cfg: Config, replicate: bool = True) -> tuple[int, dict]:
    """The all-weights-resident compute time: one round per crossbar layer, vector and host ops as
    in every mode, execute path serial; no writes. With ``replicate`` (the ``ideal`` mode), each layer
    that fits half the chip computes with as many copies as the scheduler could give it
    (``_replicas``' r_max), so it bounds every mode, replicating or not; without, the bound of modes
    that do not replicate. Every COMPUTE of any mode lasts at least ``compute_cycles`` of its position
    count (§10.3: the bandwidth terms only add), a layer has at least one round, and the execute path
    is serial, so no mode's program is faster."""
    B = cfg.batch
    total = 0
    cnt = dict.fromkeys(("adc_conversions", "xbar_reads", "dac_activations", "input_sum_ops", "post_ops",
                         "vector_ops"), 0)
    from aras.tiling import cols_per_weight, tile_layer

    for li, ly in enumerate(trace.layers):
        if ly.on_crossbars:
            P = positions(trace, li)
            lt = tile_layer(li, ly, cfg)
            reps = max(1, (cfg.n_xbars // 2) // len(lt.tiles)) if replicate else 1
            total += compute_cycles(cfg, -(-P // reps), B)
            n = 8 * P * B
            for t in lt.tiles:
                cnt["xbar_reads"] += n
                cnt["dac_activations"] += n * t.rows
                cnt["adc_conversions"] += n * t.wcols * cols_per_weight(lt.family, cfg.slices)
                cnt["input_sum_ops"] += n
            cnt["post_ops"] += B * P * ly.arrays["weight"].shape[0]
        elif ly.on_host:
            total += 1 + cfg.host_handoff_cycles
        elif ly.op not in ("reshape", "flatten"):
            work = vector_work(trace, li, B)
            total += -(-work // cfg.vector_lanes) + cfg.vector_latency
            cnt["vector_ops"] += work
    return total, cnt


def write_time_bound(trace: Trace, cfg: Config, diff_write: bool, resident: bool) -> int:
    """Least time any schedule of this mode needs for its writes. Every tile is used once per
    inference; without residency it is written every time, with residency at most ``n_xbars`` tiles
    can stay from the previous run, so at least the ``T - n_xbars`` smallest tiles are written. Their
    bytes cross the one DRAM channel and their rows go through the write drivers, each row costing at
    least a read (differential, unchanged) or set-up + reset (blind)."""
    from aras.tiling import tile_layer

    tb = WriteTables.of(cfg)
    row_min = tb.t_rd if diff_write else tb.t_set + tb.t_rst
    tiles = sorted((t.rows, t.rows * t.wcols) for li, ly in enumerate(trace.layers) if ly.on_crossbars
                   for t in tile_layer(li, ly, cfg).tiles)
    if resident:
        tiles = tiles[: max(0, len(tiles) - cfg.n_xbars)]
    if not tiles:
        return 0
    rows = sum(r for r, _ in tiles)
    nbytes = sum(b for _, b in tiles)
    drivers = cfg.n_pe * cfg.write_drivers_per_pe
    return max(cfg.dram_latency_cycles + -(-nbytes // cfg.dram_bytes_per_cycle), -(-rows * row_min // drivers))


def _steady(trace: Trace, cfg: Config, mode: str, opts: Options, cache: dict, p_cold=None):
    """Plan against the contents a previous inference leaves, then measure the steady state exactly.

    The scheduler tracks cell contents in program order, so a program's final contents are the end
    state of any run of it (for every cell a tile uses; others are never read or compared).
    ``p_cold``: the cold (loading) program whose end state is planned against (default: ``opts``')."""
    p_cold = p_cold or schedule(trace, cfg, mode, opts, cache=cache)
    prog = schedule(trace, cfg, mode, opts, initial=p_cold.notes["final_levels"], cache=cache,
                    initial_writes=p_cold.notes["final_writes"])
    prog.notes["cold_program"] = p_cold
    return prog, run(prog, trace, cfg, prog.notes["final_levels"], cache=cache)


def simulate(trace: Trace, cfg: Config, mode: str = "aras", opts: Options | None = None,
             keep: dict | None = None) -> dict:
    """Run ``trace`` in ``mode``; ``keep`` (a dict) receives the executed program as ``keep["program"]``."""
    if mode not in MODES:
        raise ArasError(f"unknown mode {mode!r}; modes: {', '.join(MODES)}")
    check_fits(trace, cfg)
    host_layers = [ly for ly in trace.layers if ly.on_host]
    common = {
        "mode": mode, "model": trace.name, "config": cfg.name, "weights": trace.weights, "notes": trace.notes,
        "batch": cfg.batch,
        "host_work": {"layers": len(host_layers), "ops": sorted({ly.op for ly in host_layers}),
                      "names": [ly.name for ly in host_layers],
                      "flops_per_sample": int(sum(host.flops(ly, [trace.tensors[t] for t in ly.inputs])
                                                  for ly in host_layers))},
    }
    if mode == "tpu":
        from .tpu import simulate_tpu

        res = simulate_tpu(trace, cfg)
        res.update({k: v for k, v in common.items() if k != "mode"})
        return res
    ideal, icnt = ideal_cycles(trace, cfg)
    if mode == "baseline-resident" and not fits(trace, cfg):
        raise ArasError(f"--mode baseline-resident: {trace.name} has {n_tiles(trace, cfg):,} tiles, more than the "
                        f"{cfg.n_xbars} crossbars of config {cfg.name!r}; the resident baseline is defined for "
                        "networks that fit (a network that does not fit is rewritten: --mode baseline)")
    if mode == "ideal":
        cnt = dict(icnt, gbuf_reads=0, gbuf_writes=0, gbuf_active_bank_cycles=0, dram_bytes=0,
                   write_buffer_bytes=0)
        e = energy_breakdown(cnt, 0.0, cfg)
        return dict(common, cycles=ideal, latency_s=ideal / (cfg.clock_ghz * 1e9), energy_j=e,
                    writes=None, layers=[], lower_bound={"cycles": ideal, "write_energy_j": 0.0},
                    area_mm2=area_mm2(cfg), options=None,
                    assumptions=["every layer resident on unlimited crossbars (one round per layer); writes "
                                 "not counted",
                                 "each layer whose tiles fit half the chip split over the most copies ARAS's "
                                 "scheduler could give it (the same replication freedom)",
                                 "COMPUTE at the unbounded rule of §10.3 (no fetch, drain or post stalls)",
                                 "Gbuffer traffic and static energy not counted (compute bound)"])
    if mode == "baseline-resident":  # the baseline's program, planned against the tiles the last run left
        mode, opts = "baseline", opts or Options.for_mode("baseline", resident=True)
    opts = opts or Options.for_mode(mode)
    cache: dict = {}
    placement_note = None
    if not opts.placement:
        prog, steady = _steady(trace, cfg, mode, opts, cache)
    else:
        # The scheduler is offline: it builds the first-free program (exactly what --no-placement runs)
        # and the similarity-placed one, both planned against the first-free cold plan's end state, and
        # keeps whichever writes with less energy in steady state: similarity never loses in total.
        ff_opts = replace(opts, placement=False)
        ff_prog, ff_steady = _steady(trace, cfg, mode, ff_opts, cache)
        prog, steady = _steady(trace, cfg, mode, opts, cache, ff_prog.notes["cold_program"])
        if ff_steady.write_energy_pj <= steady.write_energy_pj:
            prog, steady = ff_prog, ff_steady
            placement_note = "first-free kept: similarity placement did not lower the steady-state write energy"
        else:
            placement_note = "similarity placement kept: lower steady-state write energy than first-free"
    if keep is not None:
        keep["program"] = prog
    # The cold start is the first inference: the cold-planned program from empty crossbars.
    cold = run(prog.notes["cold_program"], trace, cfg, cache=cache)
    # ``steady`` is already the run of ``prog`` from these contents (``_steady``; same program, contents and
    # cache): only the write-energy lower bound is added, not the whole run again.
    steady = replace(steady, write_energy_lb_pj=least_write_energy(prog, cfg, prog.notes["final_levels"]))
    out = dict(common)
    for tag, r in (("steady", steady), ("cold", cold)):
        e = energy_breakdown(r.counters, r.write_energy_pj, cfg)
        res = {"cycles": r.cycles, "latency_s": r.cycles / (cfg.clock_ghz * 1e9), "energy_j": e,
               "write_energy_detail_j": {"program": (r.write_energy_pj - r.write_read_pj) * 1e-12,
                                         "read_before_write": r.write_read_pj * 1e-12},
               "writes": _writes_summary(r, cfg), "counters": dict(r.counters),
               "cells_changed": r.cells_changed.tolist()}
        if tag == "steady":
            out.update(res)
            out["layers"] = _layers(trace, r, cfg)
        else:
            out["cold_start"] = res
    wlb = write_time_bound(trace, cfg, opts.diff_write, opts.resident)
    clb = ideal_cycles(trace, cfg, replicate=opts.replicate and opts.overlap)[0]
    out["lower_bound"] = {
        "cycles": max(clb, wlb), "compute_cycles": clb, "write_cycles": wlb,
        "write_energy_j": steady.write_energy_lb_pj * 1e-12,
        "assumptions": [
            "cycles >= the all-weights-resident compute time (execute path serial, one round per layer; "
            "with replication, each layer that fits half the chip split over the most copies it could get)",
            "cycles >= the least write time: every tile written once per inference (with residency: all but "
            "as many as there are crossbars, the smallest ones) through one DRAM channel and the chip's write "
            "drivers, each row at least a read (differential) or set-up + reset (blind)",
            "write energy >= the least energy of the same writes over the per-column encodings of the family, "
            "given the placement and cell contents of this run",
        ],
    }
    out["options"] = {k: getattr(opts, k) for k in ("overlap", "reencode", "diff_write", "placement",
                                                   "bank_select", "lookahead", "family", "double_buffer",
                                                   "replicate", "resident")}
    out["area_mm2"] = area_mm2(cfg)
    out["placement"] = placement_note
    out["program"] = {"writes": len(prog.writes), "executes": len(prog.execs),
                      "rounds": prog.notes["placement"]["rounds"],
                      "similarity_placed_rounds": prog.notes["placement"]["similarity_better"],
                      "replicated_layers": prog.notes["placement"]["replicated_layers"],
                      "resident_tiles": prog.notes["placement"]["resident_tiles"]}
    return out
