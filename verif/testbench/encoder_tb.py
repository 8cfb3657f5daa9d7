# amaranth: UnusedElaboratable=no
"""cocotb module: the generated Verilog of ``hw.encoder.Encoder`` (purely combinational, no clock)
against a row vector file (``ARAS_VECTORS``, written by ``test_encoder_tb.py``): per row the inputs
(weights, family, flags, tile geometry, row, old levels, mode) and the expected ``target``, ``used``,
``mask``, ``changed``, ``cphys``, ``row_cycles`` and ``hist`` from the golden model."""

from __future__ import annotations

import time

import cocotb
import numpy as np
from cocotb.triggers import Timer

from hw.encoder import Encoder
from verif.testbench.tb import TB, assert_equal, load_config, load_vectors

INPUTS = ("w", "family", "flags", "wcols", "pack_g", "pack_k", "pack_n", "row", "old", "mode")
ARRAY_OUTS = ("target", "hist")
INT_OUTS = ("used", "mask", "changed", "cphys", "row_cycles")


@cocotb.test()
async def rows(dut):
    cfg = load_config()
    v = load_vectors()
    tb = TB(dut, Encoder(cfg=cfg), clock=None, reset=None)
    io = tb.io
    n = len(v["row"])
    got = {k: np.zeros_like(v[f"exp_{k}"]) for k in ARRAY_OUTS + INT_OUTS}
    t0 = time.perf_counter()
    for i in range(n):
        for name in INPUTS:
            io.set(name, v[name][i])
        await Timer(1, unit="ns")  # combinational: settled one time step later
        for name in ARRAY_OUTS:
            got[name][i] = io.array(name)
        for name in INT_OUTS:
            got[name][i] = io.raw(name)
    tb.log_speed(n, time.perf_counter() - t0)

    def inputs(idx):
        i = idx[0]
        return f"row {i}: " + ", ".join(f"{k}={v[k][i].tolist()}" for k in INPUTS)

    for name in ARRAY_OUTS + INT_OUTS:
        assert_equal(name, got[name], v[f"exp_{name}"], inputs)
