"""cocotb test of the Gbuffer's generated Verilog, where its storage is ``hw/sram.py``'s behavioural
module: power-up contents, random byte-enable writes on three ports (two of them sharing a word with
disjoint enables), two synchronous read ports (the word before a same-edge write; the register holds
while ``en`` is low) and combinational byte (``crd8``) and int32 (``crd32``) ports reading the same
cycle's contents. The output limit per replica is lowered so that the ports spread over three
replicas: every replica must see every write. Expectations come from a numpy model of the array."""

from __future__ import annotations

import re

import numpy as np
import pytest

from aras.config import preset
from hw import sram
from hw.gbuffer import Gbuffer
from hw.generate import to_sv
from verif.testbench.runner import build, write_inputs

TOP = "aras_gbuffer"
N_RD, N_WR, N_C8, N_C32 = 2, 3, 6, 4
REPLICA_BITS = 144  # replica 0: 2 × 64-bit reads + 2 bytes; replica 1: 4 bytes + 3 int32; replica 2: 1 int32


def config():
    return preset("tiny").replace(name="gbuf-sram", gbuf_banks=2, gbuf_bank_bytes=64, gbuf_word_bytes=8)


def unit(cfg, init=b""):
    return Gbuffer(cfg=cfg, read_ports=N_RD, write_ports=N_WR, comb8_ports=N_C8, comb32_ports=N_C32, init=init)


def gbuffer_vectors(cfg, init: bytes, rng: np.random.Generator, n: int = 400) -> dict[str, np.ndarray]:
    """Per-cycle port inputs and the outputs expected in that cycle (sampled before its edge)."""
    wb, nbytes = cfg.gbuf_word_bytes, cfg.gbuf_bytes
    words = nbytes // wb
    mem = np.zeros(nbytes, np.uint8)
    mem[:len(init)] = np.frombuffer(init, np.uint8)
    rd_reg = np.zeros((N_RD, wb), np.uint8)
    rec = {k: [] for k in ("rd_en", "rd_addr", "c8_addr", "c32_addr", "wr_en", "wr_addr", "wr_data", "wr_be",
                           "exp_rd", "exp_rd_ok", "exp_c8", "exp_c32")}
    rd_ok = np.zeros(N_RD, bool)  # a port's register is defined after its first enabled read
    for _ in range(n):
        rd_en = rng.random(N_RD) < 0.5
        rd_addr = rng.integers(0, words, N_RD)
        c8 = rng.integers(0, nbytes, N_C8)
        c32 = rng.integers(0, nbytes // 4, N_C32) * 4
        wr_en = rng.random(N_WR) < 0.6
        wr_addr = rng.integers(0, words, N_WR)
        if rng.random() < 0.4:
            wr_addr[1] = wr_addr[0]  # one word, disjoint byte enables
            lanes = rng.permutation(wb)
            be = [lanes[:wb // 2], lanes[wb // 2:], rng.choice(wb, rng.integers(0, wb + 1), replace=False)]
        else:
            be = [rng.choice(wb, rng.integers(0, wb + 1), replace=False) for _ in range(N_WR)]
        be_bits = np.array([sum(1 << int(b) for b in lanes) for lanes in be])
        data = rng.integers(0, 256, (N_WR, wb)).astype(np.uint8)
        for k, v in (("rd_en", rd_en), ("rd_addr", rd_addr), ("c8_addr", c8), ("c32_addr", c32), ("wr_en", wr_en),
                     ("wr_addr", wr_addr), ("wr_data", data), ("wr_be", be_bits), ("exp_rd", rd_reg.copy()),
                     ("exp_rd_ok", rd_ok.copy()), ("exp_c8", mem[c8].astype(np.int64)),
                     ("exp_c32", np.array([int.from_bytes(mem[a:a + 4].tobytes(), "little") for a in c32]))):
            rec[k].append(v)
        for k in range(N_RD):  # the edge: reads see the old contents
            if rd_en[k]:
                rd_reg[k] = mem[rd_addr[k] * wb:(rd_addr[k] + 1) * wb]
                rd_ok[k] = True
        for k in range(N_WR):
            if wr_en[k]:
                for b in be[k]:
                    mem[wr_addr[k] * wb + b] = data[k, b]
    return {k: np.array(v) for k, v in rec.items()}


def test_split_spreads_ports_over_replicas():
    reps = sram.split(N_RD, N_C8, N_C32, 64)
    assert len(reps) == 1 and list(reps[0][0]) == [0, 1]
    paper = sram.split(17, 256 * 128, 256 * 32, 256)  # the paper top: 9 replicas
    assert len(paper) == 9 and sum(len(c8) for _, c8, _ in paper) == 256 * 128
    assert all(len(rd) * 256 + len(c8) * 8 + len(c32) * 32 <= sram.MAX_PORT_BITS for rd, c8, c32 in paper)
    assert [len(rd) for rd, _, _ in paper] == [17] + [0] * 8
    with pytest.raises(ValueError, match="synchronous read ports"):
        sram.split(300, 0, 0, 256)


@pytest.mark.parametrize("loop_max", [None, 2], ids=["flat", "nested"])
def test_gbuffer_storage_replicas_vs_numpy(cocotb_build_root, cocotb_sim, tmp_path, monkeypatch, loop_max):
    """``nested``: port loops longer than 2 are nested generate loops (as paper's 8,195 write ports are)."""
    cfg = config()
    rng = np.random.default_rng(2026)
    init = rng.integers(0, 256, 40).astype(np.uint8).tobytes()
    monkeypatch.setattr(sram, "MAX_PORT_BITS", REPLICA_BITS)
    if loop_max:
        monkeypatch.setattr(sram, "GEN_LOOP_MAX", loop_max)
    sv = to_sv(unit(cfg, init), TOP)
    assert len(re.findall(r"^\s*aras_gbuf_storage_\S+ storage\d+ \(", sv, re.M)) == 3
    assert ("localparam int k = kh * 2 + kl;" in sv) is bool(loop_max)
    design = build(unit(cfg, init), TOP, cocotb_build_root, sim=cocotb_sim)
    vec = gbuffer_vectors(cfg, init, rng)
    design.run("verif.testbench.gbuffer_tb", tmp_path, extra_env=write_inputs(tmp_path, cfg, vec))
