"""cocotb test of the generated Verilog of ``hw.write_engine.WriteEngine`` in the
:class:`~verif.testbench.wrappers.WriteHarness` (with its write buffer and the PE's crossbars) on
``tiny`` with one driver and with two: random tiles (both families, both modes, packed and unpacked,
rewrites of the same weights whose rows are all skipped) written over random old contents. Golden:
``sim_models.write_engine.write_tile`` applied in program order per crossbar (the engine's WAW rule
makes that order the hardware's): each tile's cycles from start to ``done``, the final levels, every
counter. With random ``done`` back-pressure the contents and counters stay exact and the cycles only
grow. The cocotb side is ``write_engine_tb.py``."""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest

from aras.config import preset
from hw.write_engine import COUNTERS
from sim_models.tiling import tile_levels
from sim_models.write_engine import WriteTables, write_tile
from verif.hw.test_encoder import random_tile
from verif.testbench.runner import build, write_inputs
from verif.testbench.wrappers import WriteHarness

TOP = "aras_write_harness"


def two_drivers():
    return dataclasses.replace(preset("tiny"), name="two-drivers", write_drivers_per_pe=2, write_buffer_bytes=256)


CONFIGS = {"tiny": lambda: preset("tiny"), "two-drivers": two_drivers}


def engine_vectors(cfg, seed: int, n_jobs: int = 60) -> dict[str, np.ndarray]:
    """Random WRITE tiles over random old contents, with the golden outcome of each and of the run."""
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    tb = WriteTables.of(cfg)
    X, R, C, L, cw = cfg.apus_per_pe * cfg.xbars_per_apu, cfg.xbar_rows, cfg.xbar_cols, cfg.levels, cfg.weight_cols
    init = nrng.integers(0, L, (X, R, C))
    model = init.copy()
    jobs = []
    for i in range(n_jobs):
        if i % 5 == 4:  # the previous tile again, differential: every row is skipped
            jobs.append({**jobs[-1], "mode": 1})
            continue
        family = rng.choice(["offset", "signmag"])
        t = random_tile(rng, cfg, family, packed=i % 7 == 1 or rng.random() < 0.4)
        jobs.append({"x": rng.randrange(X), "tile": t, "family": family, "mode": int(rng.random() < 0.7),
                     "flags": nrng.integers(0, 2, t.wcols).astype(bool),
                     "w": nrng.integers(-128, 128, (t.rows, t.wcols))})
    gold = []
    for j in jobs:
        t = j["tile"]
        new = tile_levels(j["w"], t, j["family"], j["flags"], cfg.cell_bits).astype(np.uint8)
        c = new.shape[1]
        gold.append(write_tile(model[j["x"], :t.rows, :c].astype(np.uint8), new, j["mode"], tb))
        model[j["x"], :t.rows, :c] = new
    w = np.zeros((n_jobs, R, cw), np.int64)
    for i, j in enumerate(jobs):
        w[i, :j["tile"].rows, :j["tile"].wcols] = j["w"]
    counters = {"rows_written": sum(g.rows_written for g in gold), "rows_skipped": sum(g.rows_skipped for g in gold),
                "cells_written_blind": sum(g.cells_written_blind for g in gold),
                "row_reads_before_write": sum(g.row_reads for g in gold),
                "cells_read_before_write": sum(g.cells_read for g in gold)}
    return {
        "x": np.array([j["x"] for j in jobs]),
        "rows": np.array([j["tile"].rows for j in jobs]), "wcols": np.array([j["tile"].wcols for j in jobs]),
        "family": np.array([int(j["family"] == "signmag") for j in jobs]), "mode": np.array([j["mode"] for j in jobs]),
        "pack_g": np.array([j["tile"].pack_g for j in jobs]), "pack_k": np.array([j["tile"].pack_k for j in jobs]),
        "pack_n": np.array([j["tile"].pack_n for j in jobs]),
        "flags": np.array([sum(int(f) << k for k, f in enumerate(j["flags"])) for j in jobs]), "w": w,
        "init": init, "exp_final": model, "exp_cycles": np.array([g.cycles for g in gold]),
        "exp_counters": np.array([counters[n] for n in COUNTERS]),
        "exp_cells_changed": sum((g.cells_changed for g in gold), np.zeros(L * L, np.int64)),
        "exp_write_buffer_bytes": np.array(2 * sum(j["tile"].rows * j["tile"].wcols for j in jobs)),  # fill + rows
    }


@pytest.fixture(scope="module", params=list(CONFIGS))
def harness_design(request, cocotb_build_root, cocotb_sim):
    cfg = CONFIGS[request.param]()
    return cfg, build(WriteHarness(cfg=cfg), TOP, cocotb_build_root, sim=cocotb_sim)


@pytest.mark.parametrize("done_stall", [0.0, 0.5], ids=["no-backpressure", "done-backpressure"])
def test_write_engine_tiles_vs_golden(harness_design, done_stall, tmp_path):
    cfg, design = harness_design
    seed = sum(map(ord, cfg.name))
    vec = engine_vectors(cfg, seed)
    vec.update(done_stall=np.array(done_stall), issue_idle=np.array(0.3), fill_idle=np.array(0.2))
    # the vectors reach what the test is about
    assert set(vec["mode"]) == {0, 1} and set(vec["family"]) == {0, 1} and (vec["pack_g"] > 1).any()
    assert vec["exp_counters"][COUNTERS.index("rows_skipped")] and vec["exp_counters"][0]
    design.run("verif.testbench.write_engine_tb", tmp_path, extra_env=write_inputs(tmp_path, cfg, vec, seed=seed))
