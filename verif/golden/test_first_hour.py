"""Issue 15's remaining items, as a user meets them: ``aras verify`` takes ``simulate``'s modes and
``--no-*`` flags (compare's rows) and refuses what it cannot run with the reason; its terminal output
says what the weights and inputs are, shows progress and keeps cocotb's own output in ``DIR/cocotb.log``;
the build stays in the cache, not in the report folder; its report carries the command, commit and date."""

from __future__ import annotations

import io
import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from tqdm import tqdm

from aras import cli, verify
from aras.config import preset
from aras.report import provenance_line
from verif.golden.test_cli_guards import _lines, one_line_error
from verif.golden.test_cli_guards import aras as cli_run

ROOT = Path(__file__).resolve().parents[2]
LENET = ROOT / "aras" / "fixtures" / "lenet5"


def aras(*args, timeout: float = 900, env: dict | None = None):
    return cli_run(*args, timeout=timeout, env=env)


# ---------------------------------------------------------------------------------------------- (7) modes
def _flags(sub: str) -> set[str]:
    ap = cli.build_parser()
    sp = next(a for a in ap._actions if a.dest == "cmd").choices[sub]
    return {o for a in sp._actions for o in a.option_strings if o.startswith("--no-") or o == "--lookahead"}


def test_verify_has_simulates_ablation_flags():
    assert {"--no-overlap", "--no-replicate", "--no-resident", "--lookahead"} <= _flags("simulate")
    assert _flags("verify") == _flags("simulate")


@pytest.mark.parametrize("mode", cli._mode_names())
def test_verify_runs_every_mode_simulate_schedules_or_says_why(monkeypatch, tmp_path, capsys, mode):
    """Each of simulate's modes reaches ``run_verify`` with the scheduler options simulate would use,
    or is refused in one line with the reason (model-only modes; residency, which the cold program
    aras verify runs does not have)."""
    got = {}
    monkeypatch.setattr(verify, "run_verify", lambda *a, **k: got.update(k) or True)
    rc = cli.main(["verify", str(LENET), "--config", "tiny", "--mode", mode, "-o", str(tmp_path / "v")])
    err = capsys.readouterr().err
    if mode in ("ideal", "baseline-resident", "tpu"):
        assert rc == 2 and "a model-only mode, not run on the RTL" in err and mode in err
        return
    if mode == "no-resident":
        assert rc == 2 and err.startswith("aras: --no-resident: residency only changes the steady-state program")
        return
    assert rc == 0 and not err, err
    args = cli.build_parser().parse_args(["simulate", str(LENET), "--mode", mode])
    run, smode, opts = cli.run_spec(args)
    assert got["opts"] == opts and got["mode"] == smode and got["run_name"] == run
    assert got["command"] == f"aras verify {LENET} --config tiny --mode {mode} -o {tmp_path / 'v'}"


def test_verify_ablation_flags_and_lookahead_reach_the_schedule(monkeypatch, tmp_path):
    got = {}
    monkeypatch.setattr(verify, "run_verify", lambda *a, **k: got.update(k) or True)
    assert cli.main(["verify", str(LENET), "-o", str(tmp_path), "--no-placement", "--no-replication",
                     "--lookahead", "2"]) == 0
    o = got["opts"]
    assert (o.placement, o.replicate, o.lookahead, o.overlap) == (False, False, 2, True)
    assert got["mode"] == "aras" and got["run_name"] == "no-placement+no-replicate (lookahead 2)"


@pytest.mark.parametrize("argv,needles", [
    (["--mode", "fast"], ["unknown --mode 'fast'", "no-replicate", "signmag"]),
    (["--mode", "tpu"], ["--mode tpu", "model-only", "analytical model"]),
    (["--mode", "ideal"], ["--mode ideal", "model-only"]),
    (["--no-resident"], ["--no-resident", "cold program"]),
    (["--mode", "no-resident"], ["--no-resident", "cold program"]),
    (["--mode", "baseline", "--no-overlap"], ["--no-overlap", "--mode baseline"]),
    (["--lookahead", "0"], ["--lookahead must be a positive integer"]),
])
def test_verify_bad_modes_one_line_before_any_work(tmp_path, argv, needles):
    out = tmp_path / "v"
    r = aras("verify", LENET, "--config", "tiny", "-o", out, *argv, timeout=120)
    one_line_error(r, *needles)
    assert r.stdout == "" and not out.exists()


# ---------------------------------------------------------------------------------------------- (1) progress, log
def test_simulator_output_goes_to_the_log_and_the_bar_to_the_terminal(tmp_path, capfd):
    log = tmp_path / "cocotb.log"
    with verify._to_log(log) as term:
        subprocess.run(["sh", "-c", "echo GPI-noise; echo docstring-line >&2"], check=True)
        term.write("BAR 1/2\n")
    print("after")
    cap = capfd.readouterr()
    text = log.read_text()
    assert "GPI-noise" in text and "docstring-line" in text
    assert "GPI-noise" not in cap.out + cap.err and "docstring-line" not in cap.out + cap.err
    assert "BAR 1/2" in cap.err and "after" in cap.out


def test_progress_follows_the_testbench_log(tmp_path):
    """Layer lines move the bar one step (the first sets the total to runs x layers), a run's SPEED
    line completes the run; partial lines wait for their end."""
    log = tmp_path / "cocotb.log"
    log.write_text("")
    bar = tqdm(total=2 * 5, file=io.StringIO())
    with verify._Follow(log, bar, runs=2, layers=5) as f:
        with log.open("a") as w:
            w.write("   10.00ns INFO     cocotb.aras_top   LAYER 1/3 done (cycle 99)\n")
            w.write("   20.00ns INFO     cocotb.aras_top   LAYER 2/3 do")
            w.flush()
            f._read()
            assert (bar.n, bar.total) == (1, 6)
            w.write("ne (cycle 120)\n   30.00ns INFO  cocotb.aras_top  SPEED 300 cycles in 1.00 s wall\n")
            w.flush()
            f._read()
            assert bar.n == 3
            w.write("   40.00ns INFO     cocotb.aras_top   LAYER 1/3 done (cycle 50)\n")
    assert bar.n == 4  # read once more on exit
    with verify._Follow(log, tqdm(total=4, file=io.StringIO()), runs=2, layers=2) as g:
        pass
    assert (g.bar.n, g.bar.total) == (4, 6)  # the whole log from its start: run 0, then one layer of run 1


# ---------------------------------------------------------------------------------------------- (4, 8) report
def test_verify_report_says_what_ran(tmp_path):
    cfg = preset("tiny")
    run = {"cycles": [10, 10], "wall_s": 1.0, "cpu_s": 0.5, "load_s": 0.1, "layers": [], "totals": {},
           "outputs_crc": [7, 7], "host_layers": [], "mismatches": []}
    meta = {"model": "m", "config": "tiny", "mode": "no-placement", "weights": "real",
            "weights_source": "trained by the project", "inputs": "real samples 0..0 of the trace (the trace's "
            "samples: the 1,000 test digits)", "simulator": {"name": "verilator", "version": "5.048"},
            "build_s": 30.0, "build_cached": True, "vectors_s": 0.1, "config_dict": cfg.to_dict(), "log": "cocotb.log",
            "provenance": {"command": "aras verify m -o x", "git_commit": "abc123",
                           "date": "2025-01-02T03:04:05+00:00"},
            "aras_version": "0.1.0"}
    assert verify.render({"runs": [run], "seconds": 2.0, "cpu_s": 1.0}, meta, tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert provenance_line(meta) in md and "Command: `aras verify m -o x`; git commit: `abc123`; date: 2025" in md
    assert "weights: **real** — trained by the project; inputs: real samples 0..0" in md
    assert "1 run(s) of mode `no-placement`" in md and "its log: `cocotb.log`" in md
    assert "(SystemVerilog generation and build 30.0 s (compiled model reused from the build cache)" in md
    assert "10 cycles simulated in 1.0 s = 10 simulated cycles/s (0.5 CPU-s = 20 cycles per CPU-second)" in md
    assert json.loads((tmp_path / "report.json").read_text())["meta"]["provenance"]["git_commit"] == "abc123"


# ---------------------------------------------------------------------------------------------- (1) end to end
def test_verify_terminal_progress_log_and_no_build_in_the_report(tmp_path):
    """A three-layer MLP with a host softmax through the RTL twice (``--no-placement``), as a user runs
    it: the terminal has the provenance, a progress bar that ends at every layer of both runs, cycles/s
    with CPU time beside; cocotb's own lines (GPI, the test docstring, the results table) only in the
    log; the compiled model in the build cache, nothing of it in the report folder."""
    from verif.testbench.system_vectors import make_case

    tdir = tmp_path / "mlp"
    make_case("mlp", preset("tiny"), seed=2).trace.save(tdir)
    out = tmp_path / "report"
    t0 = time.time()
    r = aras("verify", tdir, "--config", "tiny", "-o", out, "--runs", "2", "--no-placement")
    assert r.returncode == 0, (r.stdout, r.stderr[-3000:])
    term = _lines(r.stdout) + _lines(r.stderr)
    for noise in ("gpi", "cocotb.regression", "Every case named", "** TEST", "Verilog $finish"):
        assert not any(noise in ln for ln in term), (noise, term)
    assert "weights: synthetic — the trace has no notes on their source" in term
    assert "inputs: random int8 (seed 1000)" in term
    assert any(ln.startswith("mlp@no-placement: 2 runs on ") and "100%" in ln and "8/8" in ln
               for ln in _lines(r.stderr)), r.stderr[-2000:]
    speed = [ln for ln in term if ln.startswith("run ")]
    assert len(speed) == 2 and all("cycles/s; " in s and "cycles per CPU-second" in s for s in speed), speed
    log = (out / "cocotb.log").read_text()
    assert "gpi" in log and "Every case named" in log and log.count("SPEED") == 2
    rep = json.loads((out / "report.json").read_text())
    assert rep["match"] and rep["meta"]["mode"] == "no-placement"
    assert rep["meta"]["provenance"]["command"].startswith("aras verify ")
    build = Path(rep["meta"]["build_dir"])
    assert (build / "build.json").is_file() and out not in build.parents
    files = [p for p in out.rglob("*") if p.is_file()]
    assert not any(p.name in ("build.json", "build.log") or p.suffix in (".so", ".o", ".sv") for p in files)
    assert sum(p.stat().st_size for p in files) < 5e6
    assert all(p.stat().st_mtime >= t0 - 1 for p in files)
    assert "Command: `aras verify" in (out / "report.md").read_text()
    assert os.access(out / "report.html", os.R_OK)


# ---------------------------------------------------------------------------------------------- (8) compare
def test_compare_report_has_latency_ms_and_area(tmp_path):
    """Latency in ms and the total area were in results.json only: the report has them per network."""
    out = tmp_path / "cmp"
    r = aras("compare", LENET, "--config", "tiny", "-o", out, "--jobs", "1", timeout=600)
    assert r.returncode == 0, r.stderr
    data = json.loads((out / "results.json").read_text())
    md = (out / "report.md").read_text()
    head = "| network | weights | ARAS latency (ms) | baseline PUM latency (ms) | TPU-like latency (ms) |"
    assert head in md
    row = next(ln for ln in md.split(head, 1)[1].splitlines() if ln.startswith("| lenet5 |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    runs = data["runs"]["lenet5"]
    for cell, m in zip(cells[2:5], ("aras", "baseline", "tpu"), strict=True):
        assert float(cell) == pytest.approx(runs[m]["latency_s"] * 1e3, rel=5e-3), (m, cell)
        assert runs[m]["latency_s"] == pytest.approx(runs[m]["cycles"] / (data["config"]["clock_ghz"] * 1e9))
    assert float(cells[5]) == pytest.approx(runs["aras"]["area_mm2"]["total"], rel=5e-4)
    assert float(cells[6]) == pytest.approx(runs["tpu"]["area_mm2"]["total"], rel=5e-4)
