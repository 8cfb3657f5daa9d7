"""The RTL jobs' time and memory estimates (aras/resources.py) against what was measured, and the guard."""

from __future__ import annotations

import subprocess
import sys

import pytest

from aras.config import preset
from aras.resources import generation, text_mb, verify_job
from scripts.benchmark_rtl import scaled

# Measured on the project's 2-core machine (scripts/benchmark_rtl.py --scale, each in a fresh process;
# docs/results.md §6): (n_pe, apus_per_pe, xbars_per_apu, rows) -> generation wall s, peak GB, SV MB.
MEASURED = [((2, 2, 2, 16), 12, 0.19, 4.2), ((4, 4, 4, 16), 69, 0.61, 12.1), ((2, 2, 2, 64), 68, 0.29, 9.2),
            ((2, 4, 4, 32), 40, 0.47, None)]
PAPER = (1081, 20.6, 358)


@pytest.mark.parametrize("shape,secs,gb,mb", MEASURED)
def test_estimates_within_2x_of_the_measured_scaled_tops(shape, secs, gb, mb):
    cfg = scaled(*shape)
    est = generation(cfg)
    assert 0.5 < est.seconds / secs < 2 and 0.5 < est.peak_gb / gb < 2
    if mb is not None:
        assert 0.5 < text_mb(cfg) / mb < 2


def test_paper_estimate_within_2x_and_beyond_the_machine():
    est = generation(preset("paper"))
    assert 0.5 < est.seconds / PAPER[0] < 2 and 0.5 < est.peak_gb / PAPER[1] < 2
    assert 0.5 < text_mb(preset("paper")) / PAPER[2] < 2
    assert verify_job(preset("paper")).peak_gb > est.peak_gb  # the Verilator build of ~350 MB of text dominates
    assert verify_job(preset("tiny")).peak_gb < 1


def test_verify_refuses_a_design_beyond_this_machine(tmp_path):
    r = subprocess.run([sys.executable, "-m", "aras.cli", "verify", "lenet5", "--config", "paper-unbounded", "-o",
                        str(tmp_path / "v")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and "--force" in r.stderr and "Traceback" not in r.stderr
    assert "estimate for generating and building the paper-unbounded top" in r.stdout
    assert not (tmp_path / "v").exists() or not any((tmp_path / "v").iterdir())


@pytest.mark.parametrize("cmd", ["verify lenet5", "verilog"])
def test_rtl_commands_refuse_rules_the_rtl_does_not_implement(tmp_path, cmd):
    """paper bounds fetch, drain and post (§10.3); the RTL implements the unbounded rule only: one line, no work."""
    r = subprocess.run([sys.executable, "-m", "aras.cli", *cmd.split(), "--config", "paper", "-o",
                        str(tmp_path / "v")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and "fetch_ports = 2" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "v").exists() or not any((tmp_path / "v").iterdir())
