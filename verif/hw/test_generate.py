"""SystemVerilog generation: always_comb (no X at t=0 under Icarus), no machine paths, lint-clean
under `verilator --lint-only -Wall` with the waivers of hw/lint.vlt (skipped without Verilator)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from aras.config import preset
from hw.apu import Apu
from hw.generate import write

LINT_WAIVERS = Path(__file__).resolve().parents[2] / "hw" / "lint.vlt"


def lint(sv: Path, top: str) -> subprocess.CompletedProcess:
    return subprocess.run(["verilator", "--lint-only", "-Wall", str(LINT_WAIVERS), str(sv), "--top-module", top],
                          capture_output=True, text=True)


@pytest.mark.parametrize("blackbox", [False, True])
def test_apu_generates_lint_clean_sv(tmp_path, blackbox):
    cfg = preset("tiny")
    m = write(Apu(cfg=cfg, blackbox=blackbox), "aras_apu", cfg, tmp_path)
    sv = (tmp_path / "aras_apu.sv").read_text()
    assert "always_comb" in sv and "always @*" not in sv
    assert str(Path.home()) not in sv and str(LINT_WAIVERS.parents[1]) not in sv  # no machine paths
    man = json.loads((tmp_path / "manifest.json").read_text())
    assert man["config"]["name"] == "tiny" and {"item__valid", "tsum__ready"} <= {p["name"] for p in m["ports"]}
    if blackbox:
        assert "aras_xbar_macro" in sv
        return
    if shutil.which("verilator") is None:
        pytest.skip("verilator not installed (scripts/setup.sh installs it)")
    r = lint(tmp_path / "aras_apu.sv", "aras_apu")
    assert r.returncode == 0, r.stderr[-2000:]


@pytest.mark.parametrize("blackbox", [False, pytest.param(True, marks=pytest.mark.slow)])
def test_aras_verilog_tiny_top_is_lint_clean(tmp_path, blackbox, capsys):
    """`aras verilog --config tiny` (behavioural crossbars; with --blackbox-macros: macro instances and a
    port declaration) writes SystemVerilog, a manifest, and passes verilator --lint-only -Wall."""
    from aras.cli import main

    argv = ["verilog", "--config", "tiny", "-o", str(tmp_path)] + (["--blackbox-macros"] if blackbox else [])
    if shutil.which("verilator") is None:
        pytest.skip("verilator not installed (scripts/setup.sh installs it)")
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "lint: clean" in out
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
