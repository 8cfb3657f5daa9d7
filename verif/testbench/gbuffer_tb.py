# amaranth: UnusedElaboratable=no
"""cocotb module: the generated Verilog of ``hw.gbuffer.Gbuffer`` (storage: ``hw/sram.py``) replays a
cycle-level vector file (``ARAS_VECTORS``, written by ``test_gbuffer_tb.py``): per cycle the inputs of
every read, combinational-read and write port, and the outputs expected before the clock edge."""

from __future__ import annotations

import time

import cocotb
import numpy as np
from cocotb.triggers import ReadOnly, RisingEdge

from hw.gbuffer import Gbuffer
from verif.testbench.tb import TB, assert_equal, load_config, load_vectors, seed_from_env


@cocotb.test()
async def replay(dut):
    cfg = load_config()
    v = load_vectors()
    n, n_rd = v["rd_en"].shape
    n_wr, n_c8, n_c32 = v["wr_en"].shape[1], v["c8_addr"].shape[1], v["c32_addr"].shape[1]
    tb = TB(dut, Gbuffer(cfg=cfg, read_ports=n_rd, write_ports=n_wr, comb8_ports=n_c8, comb32_ports=n_c32),
            seed=seed_from_env())
    io = tb.io
    io.set("bank_on", 0)
    io.set("extra_reads", 0)
    await tb.reset()
    got_rd = np.zeros_like(v["exp_rd"])
    got_c8 = np.zeros_like(v["exp_c8"])
    got_c32 = np.zeros_like(v["exp_c32"])
    t0 = time.perf_counter()
    for t in range(n):
        for k in range(n_rd):
            io.set(f"rd__{k}__en", int(v["rd_en"][t, k]))
            io.set(f"rd__{k}__addr", int(v["rd_addr"][t, k]))
        for k in range(n_c8):
            io.set(f"crd8__{k}__addr", int(v["c8_addr"][t, k]))
        for k in range(n_c32):
            io.set(f"crd32__{k}__addr", int(v["c32_addr"][t, k]))
        for k in range(n_wr):
            io.set(f"wr__{k}__en", int(v["wr_en"][t, k]))
            io.set(f"wr__{k}__addr", int(v["wr_addr"][t, k]))
            io.set(f"wr__{k}__data", int.from_bytes(v["wr_data"][t, k].tobytes(), "little"))
            io.set(f"wr__{k}__be", int(v["wr_be"][t, k]))
        await ReadOnly()
        for k in range(n_rd):
            if v["exp_rd_ok"][t, k]:  # the register is undefined before the port's first read
                got_rd[t, k] = np.frombuffer(io.raw(f"rd__{k}__data").to_bytes(cfg.gbuf_word_bytes, "little"), np.uint8)
        got_c8[t] = [io.raw(f"crd8__{k}__data") for k in range(n_c8)]
        got_c32[t] = [io.raw(f"crd32__{k}__data") for k in range(n_c32)]
        await RisingEdge(tb.clk)
    tb.log_speed(n, time.perf_counter() - t0)

    def at(i):
        return f"cycle {i[0]}, port {i[1]}"

    assert_equal("rd.data", np.where(v["exp_rd_ok"][..., None], got_rd, 0),
                 np.where(v["exp_rd_ok"][..., None], v["exp_rd"], 0), at)
    assert_equal("crd8.data", got_c8, v["exp_c8"], at)
    assert_equal("crd32.data", got_c32, v["exp_c32"], at)
