"""cocotb test of the generated Verilog of ``hw.crossbar.Crossbar`` on ``tiny`` (16×16 2-bit cells):
cold start (every cell 0), random masked row writes (all, none, one or random columns), row reads
(often of the row written in the same cycle: the old value, the write commits at the edge), MVM
column sums of random input bit-planes, a reset burst in the middle (the cells are kept), and the
corner of every cell at L−1 under an all-ones bit-plane (the widest sum, R·(L−1)). Expectations come
from a numpy model of the array; the cocotb side (``crossbar_tb.py``) reports the first mismatching
cycle and column."""

from __future__ import annotations

import numpy as np
import pytest

from aras.config import preset
from hw.crossbar import Crossbar
from verif.testbench.runner import build, write_inputs

TOP = "aras_xbar"


def crossbar_vectors(cfg, rng: np.random.Generator, n_random: int = 360) -> dict[str, np.ndarray]:
    """Per-cycle inputs and the expected combinational outputs of that cycle (before its edge)."""
    R, C, L = cfg.xbar_rows, cfg.xbar_cols, cfg.levels
    cells = np.zeros((R, C), np.int64)  # cold start
    rec = {k: [] for k in ("wr_en", "wr_row", "wr_levels", "wr_mask", "rd_row", "bits", "rst", "exp_rd", "exp_sum")}

    def cycle(wr=None, rd=0, bits=None, rst=0):
        bits = np.zeros(R, np.uint8) if bits is None else np.asarray(bits, np.uint8)
        row, lv, mask = wr if wr is not None else (0, np.zeros(C, np.int64), np.zeros(C, bool))
        for k, val in (("wr_en", int(wr is not None)), ("wr_row", row), ("wr_levels", lv), ("wr_mask", mask),
                       ("rd_row", rd), ("bits", bits), ("rst", rst), ("exp_rd", cells[rd].copy()),
                       ("exp_sum", bits.astype(np.int64) @ cells)):
            rec[k].append(val)
        if wr is not None:
            cells[row, mask] = lv[mask]

    ones = np.ones(R, np.uint8)
    for r in range(R):  # cold start
        cycle(rd=r, bits=ones)
    last = 0
    for t in range(n_random):
        rst = int(n_random // 2 <= t < n_random // 2 + 3)  # reset burst: the cells must survive it
        wr = None
        if not rst and rng.random() < 0.6:
            kind = rng.integers(4)
            mask = (np.ones(C, bool), np.zeros(C, bool), np.arange(C) == rng.integers(C),
                    rng.random(C) < 0.5)[kind]
            last = int(rng.integers(R))
            wr = (last, rng.integers(0, L, C), mask)
        rd = last if rng.random() < 0.5 else int(rng.integers(R))
        density = rng.choice([0.0, 0.1, 0.5, 0.9, 1.0])
        cycle(wr, rd, (rng.random(R) < density).astype(np.uint8), rst)
    for r in range(R):  # every cell at L-1: the widest column sums
        cycle((r, np.full(C, L - 1), np.ones(C, bool)), rd=r, bits=(np.arange(R) % 2).astype(np.uint8))
    cycle(rd=R - 1, bits=ones)
    cycle(rd=0, bits=np.zeros(R, np.uint8))
    out = {k: np.array(v) for k, v in rec.items()}
    assert out["exp_sum"].max() == R * (L - 1) < (1 << cfg.adc_exact_bits)
    return out


@pytest.fixture(scope="module")
def xbar_design(cocotb_build_root, cocotb_sim):
    return build(Crossbar(cfg=preset("tiny")), TOP, cocotb_build_root, sim=cocotb_sim)


def test_crossbar_vectors_vs_numpy(xbar_design, tmp_path):
    cfg = preset("tiny")
    vec = crossbar_vectors(cfg, np.random.default_rng(2026))
    assert vec["rst"].sum() == 3 and vec["wr_en"][vec["rst"] == 1].sum() == 0
    xbar_design.run("verif.testbench.crossbar_tb", tmp_path, extra_env=write_inputs(tmp_path, cfg, vec))
