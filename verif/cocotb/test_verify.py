"""``aras verify``: the RTL and the golden model side by side with a report; exit status on mismatch."""

from __future__ import annotations

import json

from aras import verify
from aras.cli import main
from aras.config import preset
from verif.testbench import runner
from verif.testbench.system_vectors import make_case


def test_verify_trace_dir_writes_report(cocotb_build_root, tmp_path, monkeypatch, capsys):
    """A trace directory (three linear layers with rounds and a host softmax) through the RTL, twice."""
    monkeypatch.setenv("ARAS_COCOTB_BUILD", str(cocotb_build_root))  # share the session's build
    tdir = tmp_path / "mlp"
    make_case("mlp", preset("tiny"), seed=2).trace.save(tdir)
    out = tmp_path / "report"
    assert main(["verify", str(tdir), "--config", "tiny", "-o", str(out), "--runs", "2"]) == 0
    md = (out / "report.md").read_text()
    assert "Verdict: MATCH" in md and "## Run 1 (steady state" in md and "**NO**" not in md
    assert "weights: **synthetic**" in md and "cycles/s" in md
    for layer in ("fc1", "fc2", "fc3", "softmax"):
        assert f"| {layer} |" in md
    assert (out / "report.html").read_text().startswith("<!DOCTYPE html>")
    rep = json.loads((out / "report.json").read_text())
    assert rep["match"] and len(rep["runs"]) == 2
    sim = runner.simulator()  # the default: Verilator when installed
    assert rep["meta"]["simulator"] == {"name": sim, "version": runner.simulator_version(sim)}
    assert f"simulator: {sim} {runner.simulator_version(sim)}" in md and "cycles per CPU-second" in md
    assert all(r["cpu_s"] > 0 for r in rep["runs"]) and rep["waves"] is None
    assert all(r["cycles"][0] == r["cycles"][1] for r in rep["runs"])
    assert rep["runs"][0]["host_layers"] == [3]
    assert "MATCH" in capsys.readouterr().out


def _record(mismatch: bool) -> dict:
    lay = {"name": "L", "start": [5, 5], "end": [9, 9 if not mismatch else 10], "wstart": [0, 0], "wend": [4, 4],
           "counters": {"xbar_reads": [8, 8]}, "crc": [1, 1]}
    run = {"cycles": [10, 10 if not mismatch else 11], "wall_s": 1.0, "load_s": 0.1, "layers": [lay],
           "totals": {"cycles": [10, 10 if not mismatch else 11]}, "outputs_crc": [7, 7], "host_layers": [],
           "mismatches": ["done rose in cycle 11, expected 10"] if mismatch else []}
    return {"runs": [run], "seconds": 2.0}


def _meta():
    cfg = preset("tiny")
    return {"model": "m", "config": "tiny", "mode": "aras", "weights": "real", "inputs": "random",
            "simulator": {"name": "icarus", "version": "11.0"}, "build_s": 1.0, "vectors_s": 0.1,
            "config_dict": cfg.to_dict()}


def test_report_flags_a_mismatch(tmp_path):
    assert verify.render(_record(False), _meta(), tmp_path / "ok")
    assert not verify.render(_record(True), _meta(), tmp_path / "bad")
    md = (tmp_path / "bad" / "report.md").read_text()
    assert "Verdict: MISMATCH" in md and "**Mismatch:** done rose in cycle 11" in md and "**NO**" in md
    assert "on icarus 11.0 (cocotb)" in md
    # the first mismatch comes right after the title, in red in the HTML
    assert md.split("\n\n")[1] == "> **First mismatch: done rose in cycle 11, expected 10**"
    html = (tmp_path / "bad" / "report.html").read_text()
    assert "<p class=alert>First mismatch: done rose in cycle 11" in html and "p.alert{color:#b00" in html
    assert "First mismatch" not in (tmp_path / "ok" / "report.md").read_text()


def test_exit_status_on_mismatch(monkeypatch, tmp_path):
    monkeypatch.setattr(verify, "run_verify", lambda *a, **k: False)
    assert main(["verify", "lenet5", "-o", str(tmp_path)]) == 1


def test_bad_arguments(tmp_path, capsys):
    assert main(["verify", "lenet5", "--mode", "fast", "-o", str(tmp_path)]) == 2  # simulate's modes, one line
    assert "unknown --mode 'fast'" in capsys.readouterr().err
    assert main(["verify", str(tmp_path / "missing"), "-o", str(tmp_path / "r")]) != 0
    assert "missing" in capsys.readouterr().err
