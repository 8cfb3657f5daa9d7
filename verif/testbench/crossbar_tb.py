# amaranth: UnusedElaboratable=no
"""cocotb module: the generated Verilog of ``hw.crossbar.Crossbar`` replays a cycle-level vector file
(``ARAS_VECTORS``, written by ``test_crossbar_tb.py``): per cycle the write, read and MVM port inputs
and ``rst``, and the expected ``rd.levels`` and ``mvm.col_sum`` sampled before the clock edge."""

from __future__ import annotations

import time

import cocotb
import numpy as np
from cocotb.triggers import ReadOnly, RisingEdge

from hw.crossbar import Crossbar
from verif.testbench.tb import TB, assert_equal, bits_int, load_config, load_vectors, seed_from_env


@cocotb.test()
async def replay(dut):
    cfg = load_config()
    v = load_vectors()
    tb = TB(dut, Crossbar(cfg=cfg), seed=seed_from_env())
    io = tb.io
    await tb.reset()
    n = len(v["wr_en"])
    got_rd = np.zeros_like(v["exp_rd"])
    got_sum = np.zeros_like(v["exp_sum"])
    t0 = time.perf_counter()
    for t in range(n):
        io.set("wr__en", v["wr_en"][t])
        io.set("wr__row", v["wr_row"][t])
        io.set("wr__levels", v["wr_levels"][t])
        io.set("wr__mask", bits_int(v["wr_mask"][t]))
        io.set("rd__row", v["rd_row"][t])
        io.set("mvm__bits", bits_int(v["bits"][t]))
        tb.rst.value = int(v["rst"][t])
        await ReadOnly()
        got_rd[t] = io.array("rd__levels")
        got_sum[t] = io.array("mvm__col_sum")
        await RisingEdge(tb.clk)
    tb.log_speed(n, time.perf_counter() - t0)

    def at(i):
        t = i[0]
        return (f"cycle {t}: rd.row={v['rd_row'][t]} rst={v['rst'][t]} wr.en={v['wr_en'][t]} "
                f"wr.row={v['wr_row'][t]} bits={''.join(map(str, v['bits'][t]))}")

    assert_equal("rd.levels", got_rd, v["exp_rd"], at)
    assert_equal("mvm.col_sum", got_sum, v["exp_sum"], at)
