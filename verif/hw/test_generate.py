# amaranth: UnusedElaboratable=no
"""SystemVerilog generation: always_comb (no X at t=0 under Icarus), no machine paths, lint-clean
under `verilator --lint-only -Wall` with the waivers of hw/lint.vlt (skipped without Verilator)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from aras.config import preset
from hw.apu import Apu
from hw.generate import write
from hw.lint import WAIVERS, lint


@pytest.mark.parametrize("blackbox", [False, True])
def test_apu_generates_lint_clean_sv(tmp_path, blackbox):
    cfg = preset("tiny")
    m = write(Apu(cfg=cfg, blackbox=blackbox), "aras_apu", cfg, tmp_path)
    sv = (tmp_path / "aras_apu.sv").read_text()
    assert "always_comb" in sv and "always @*" not in sv
    assert str(Path.home()) not in sv and str(WAIVERS.parents[1]) not in sv  # no machine paths
    man = json.loads((tmp_path / "manifest.json").read_text())
    assert man["config"]["name"] == "tiny" and {"item__valid", "tsum__ready"} <= {p["name"] for p in m["ports"]}
    if blackbox:
        assert "aras_xbar_macro" in sv
        return
    assert lint(tmp_path, "aras_apu", "whole").startswith("clean")  # raises with Verilator's message


@pytest.mark.parametrize("blackbox", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_aras_verilog_tiny_top_is_lint_clean(tmp_path, blackbox, capsys):
    """`aras verilog --config tiny` (behavioural crossbars; with --blackbox-macros: macro instances and a
    port declaration) writes SystemVerilog, a manifest, and passes verilator --lint-only -Wall, on the
    whole design and module by module."""
    from aras.cli import main

    argv = ["verilog", "--config", "tiny", "-o", str(tmp_path)] + (["--blackbox-macros"] if blackbox else [])
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "lint: clean (verilator --lint-only -Wall on the whole design" in out
    # the form that paper's text needs (hw/lint.py) passes the same design
    assert lint(tmp_path, "aras_top", "modules").startswith("clean (verilator --lint-only -Wall module by")
    man = json.loads((tmp_path / "manifest.json").read_text())
    assert man["blackbox_macros"] is blackbox
    assert {"start", "done", "prog_in__valid"} <= {p["name"] for p in man["ports"]}
    sv = (tmp_path / "aras_top.sv").read_text()
    assert ("aras_xbar_macro" in sv) is blackbox and "always_comb" in sv
    # shared units (hw/shared.py): one module each, instantiated once per copy
    cfg = preset("tiny")
    sfx = "_bb" if blackbox else ""
    for module, copies in ((f"aras_pe{sfx}", cfg.n_pe), (f"aras_apu{sfx}", cfg.apus_per_pe),
                           ("aras_input_fetch", cfg.n_xbars), ("aras_block_post", cfg.n_xbars),
                           ("aras_member_sum", cfg.n_xbars),  # one chunk of crossbars at tiny
                           ("aras_post", 1),  # inside aras_block_post
                           (r"aras_gbuf_storage_r\d+_b\d+_w\d+", 1)):  # hw/sram.py, one replica at tiny
        assert len(re.findall(rf"^module {module}\(", sv, re.M)) == 1, module
        assert len(re.findall(rf"^\s*{module} \S+ \(", sv, re.M)) == copies, module


def test_place_checks_driven_ports_and_keeps_wide_units_inline():
    """``hw.shared.place``: a ``drive`` entry must name an input port; during generation a unit with
    more output (or input) bits than Amaranth can number stays an ordinary submodule."""
    from amaranth.hdl import Module

    from hw.block_post import MemberSum
    from hw.datapath import Post
    from hw.pe import Pe
    from hw.shared import MAX_PORT_BITS, emitting, place

    cfg = preset("tiny")
    for bad in ("nope", "out__valid"):  # unknown, and an output
        with pytest.raises(ValueError, match=f"no input port '{bad}'"):
            place(Module(), "post", Post(cfg=cfg), "aras_post", drive={bad: 0})
    wide = preset("paper")
    pe = Pe(cfg=wide, blackbox_macros=True)
    assert sum(len(p.payload.as_value()) for p in pe.psum) > MAX_PORT_BITS
    wide_in = MemberSum(cfg=wide, n=64)  # 64 crossbars' partial sums in
    assert sum(len(p.as_value()) for p in wide_in.psum) > MAX_PORT_BITS
    narrow = MemberSum(cfg=wide, n=52)
    with emitting() as lib:
        m = Module()
        place(m, "pe0", pe, "aras_pe_bb")
        place(m, "sum0", wide_in, "aras_member_sum")
        assert m.submodules["pe0"] is pe and m.submodules["sum0"] is wide_in and not lib
        place(m, "sum1", narrow, "aras_member_sum")
        assert m.submodules["sum1"] is not narrow and "aras_member_sum" in lib


def test_conversion_in_batches_of_modules_is_the_same_verilog(monkeypatch):
    """Modules go through yosys in batches (the builtin WebAssembly yosys cannot hold the paper top at
    once): small batches give the same modules as one run."""
    from amaranth.back import rtlil

    import hw.generate as gen
    from hw.pe import Pe

    def modules(sv):  # module texts without yosys' header comment, in name order
        sv = re.sub(r"^/\* Generated by [^\n]*\*/\n", "", sv, flags=re.M)
        return sorted(m.strip() for m in re.split(r"^(?=module |\(\* )", sv, flags=re.M) if "module " in m)

    cfg = preset("tiny")
    whole = gen.to_sv_flat(Pe(cfg=cfg), "aras_pe")
    assert len(gen.rtlil_modules(rtlil.convert(Pe(cfg=cfg), name="aras_pe", emit_src=False))) > 10
    monkeypatch.setattr(gen, "BATCH_CHARS", 4096)
    split = gen.to_sv_flat(Pe(cfg=cfg), "aras_pe")
    assert split.count("/* Generated by") > 10 and modules(split) == modules(whole)
