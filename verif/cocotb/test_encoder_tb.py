"""cocotb test of the generated Verilog of ``hw.encoder.Encoder`` (combinational) on ``tiny`` and on
``odd`` (slow, asymmetric write tables where some differential steps go via reset): random rows of
random packed and unpacked tiles of both families and both modes, mostly-unchanged rows (skips), the
§8.3 worked example and the one-weight corner codes, against the golden ``tile_levels`` and
``write_tile`` with ``WriteTables`` — the same cases as the Amaranth module test
``verif/hw/test_encoder.py``. The cocotb side (``encoder_tb.py``) reports the first mismatching row."""

from __future__ import annotations

import random

import numpy as np
import pytest

from aras.config import preset
from aras.tiling import Tile
from hw.encoder import Encoder
from sim_models.tiling import tile_levels
from sim_models.write_engine import WriteTables, write_tile
from verif.hw.test_encoder import CORNERS, odd_tables, random_tile
from verif.testbench.runner import build, write_inputs

CONFIGS = {"tiny": lambda: preset("tiny"), "odd": odd_tables}
TOP = "aras_encoder"


def _case_rows(cfg, tb, t: Tile, family: str, w, flags, new, old, mode: int, rows):
    """One vector row per tile row in ``rows``: the encoder's inputs and the golden outputs."""
    C, L, cw = cfg.xbar_cols, cfg.levels, cfg.weight_cols
    c = new.shape[1]
    for r in rows:
        ref = write_tile(old[r:r + 1, :c].astype(np.uint8), new[r:r + 1].astype(np.uint8), mode, tb)
        mask = np.zeros(C, bool)
        mask[:c] = ref.programmed[0]
        yield {
            "w": np.pad(np.asarray(w[r], np.int64), (0, cw - len(w[r]))),
            "family": int(family == "signmag"), "flags": int(sum(int(f) << j for j, f in enumerate(flags))),
            "wcols": t.wcols, "pack_g": t.pack_g, "pack_k": t.pack_k, "pack_n": t.pack_n, "row": r,
            "old": np.asarray(old[r], np.int64), "mode": mode,
            "exp_target": np.pad(new[r].astype(np.int64), (0, C - c)), "exp_used": (1 << c) - 1,
            "exp_mask": int(sum(1 << j for j in np.flatnonzero(mask))),
            "exp_changed": int(ref.rows_written == 1 if mode else mask.any()), "exp_cphys": c,
            "exp_row_cycles": int(ref.row_cycles[0]), "exp_hist": np.asarray(ref.cells_changed, np.int64),
        }
        assert len(ref.cells_changed) == L * L


def encoder_vectors(cfg, seed: int, n_tiles: int = 120, rows_per_tile: int = 5) -> dict[str, np.ndarray]:
    tb = WriteTables.of(cfg)
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    L, C = cfg.levels, cfg.xbar_cols
    out = []
    # §8.3 worked example (offset codes (0,2,2,0), (3,1,1,3)), differential and blind
    t = Tile(0, 0, 0, 0, 1, 2, 1, 1, 2)
    w = np.array([[-88, 87]])
    new = tile_levels(w, t, "offset", np.zeros(2, bool), cfg.cell_bits)
    old = np.array([[0, 1, 2, 3, 3, 0, 1, 2] + [3] * (C - 8)])
    for mode in (1, 0):
        out += _case_rows(cfg, tb, t, "offset", w, [0, 0], new, old, mode, [0])
    # one-weight corner codes, blind over zeros
    for wv, fam, flag, _levels in CORNERS:
        family = "signmag" if fam else "offset"
        t = Tile(0, 0, 0, 0, 1, 1, 1, 1, 1)
        new = tile_levels(np.array([[wv]]), t, family, np.array([flag], bool), cfg.cell_bits)
        out += _case_rows(cfg, tb, t, family, [[wv]], [flag], new, np.zeros((1, C), np.int64), 0, [0])
    # random tiles: both families, packed and unpacked, both modes, some mostly unchanged rows
    for i in range(n_tiles):
        family = ("offset", "signmag")[i % 2]
        t = random_tile(rng, cfg, family, packed=i % 3 != 0)
        w = nrng.integers(-128, 128, (t.rows, t.wcols))  # off-block values must be ignored
        flags = nrng.integers(0, 2, t.wcols).astype(bool)
        new = tile_levels(w, t, family, flags, cfg.cell_bits)
        c = new.shape[1]
        old = nrng.integers(0, L, (t.rows, C))
        if i % 4 == 1:
            old[:, :c] = np.where(nrng.random((t.rows, c)) < 0.9, new, old[:, :c])
        rows = rng.sample(range(t.rows), min(t.rows, rows_per_tile))
        out += _case_rows(cfg, tb, t, family, w, flags, new, old, int(i % 5 != 0), rows)
    return {k: np.array([row[k] for row in out]) for k in out[0]}


@pytest.fixture(scope="module", params=list(CONFIGS))
def encoder_design(request, cocotb_build_root, cocotb_sim):
    cfg = CONFIGS[request.param]()
    return cfg, build(Encoder(cfg=cfg), TOP, cocotb_build_root, sim=cocotb_sim)


def test_encoder_rows_vs_golden(encoder_design, tmp_path):
    cfg, design = encoder_design
    vec = encoder_vectors(cfg, seed=sum(map(ord, cfg.name)))
    # the vectors do reach what the test is about
    assert set(vec["mode"]) == {0, 1} and set(vec["family"]) == {0, 1} and (vec["pack_g"] > 1).any()
    assert ((vec["mode"] == 1) & (vec["exp_changed"] == 0)).any() and vec["exp_hist"].any()
    design.run("verif.testbench.encoder_tb", tmp_path, extra_env=write_inputs(tmp_path, cfg, vec))
