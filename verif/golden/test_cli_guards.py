"""The command line's guards and terminal wording, run as a user runs it (``python -m aras.cli`` in a
subprocess): output paths checked before any work, counts and flag combinations refused naming the
flag, empty and huge inputs, provenance on the terminal and in the reports, sweep defaults and axis,
simulate's modes and ablations as compare's rows, and the encoding study on a model without writes."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from aras.trace import Trace

ROOT = Path(__file__).resolve().parents[2]
LENET = ROOT / "aras" / "fixtures" / "lenet5"  # committed trace, no samples; fits the paper chip


def aras(*args, warn_error: bool = False, env: dict | None = None, timeout: float = 600):
    cmd = [sys.executable] + (["-W", "error"] if warn_error else []) + ["-m", "aras.cli"] + [str(a) for a in args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)


def _lines(stderr: str) -> list[str]:
    """stderr lines without tqdm's carriage-return redraws."""
    return [ln.rsplit("\r", 1)[-1] for ln in stderr.splitlines() if ln.rsplit("\r", 1)[-1].strip()]


def one_line_error(r, *needles: str) -> str:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr, r.stderr
    err = _lines(r.stderr)
    assert len(err) == 1 and err[0].startswith("aras: "), r.stderr
    for n in needles:
        assert n in err[0], (n, err[0])
    return err[0]


def _snapshot(d: Path) -> dict[str, float]:
    return {str(p.relative_to(d)): p.stat().st_mtime_ns for p in sorted(d.rglob("*"))}


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """The LeNet-5 trace with 12 stored samples (labelled), notes as committed ("samples: the 1,000 test
    digits"): what the header may say about them and what not."""
    tr = Trace.load(LENET)
    rng = np.random.default_rng(0)
    t = tr.with_samples(rng.integers(-128, 128, (12, 1, 28, 28), dtype=np.int8), rng.integers(0, 10, 12))
    d = tmp_path_factory.mktemp("digits") / "lenet5"
    t.save(d)
    return d


# ---------------------------------------------------------------------------------------------- (a) outputs
@pytest.mark.parametrize("argv,needle", [
    (["simulate", "DIGITS", "--outputs", "DIR"], "is a directory"),
    (["simulate", "DIGITS", "--outputs", "T/new/"], "is a directory"),
    (["simulate", "DIGITS", "--json", "FILE/r.json"], "is not a directory"),
    (["simulate", "DIGITS", "--outputs", "T/o.npz", "--json", "FILE/deeper/r.json"], "is not a directory"),
    (["compare", "LENET", "--config", "tiny", "-o", "FILE"], "exists and is not a directory"),
    (["compare", "LENET", "--config", "tiny", "-o", "T/rep"], "is a directory where aras writes a file"),
    (["sweep", "LENET", "--param", "batch", "-o", "FILE/sub"], "is not a directory"),
    (["import-onnx", "T/missing.onnx", "-o", "FILE"], "exists and is not a directory"),
    (["import-onnx", "T/missing.onnx", "-o", "DIR"], "is not a trace directory"),
    (["verilog", "-o", "FILE/v"], "is not a directory"),
    (["verify", "LENET", "-o", "FILE"], "exists and is not a directory"),
])
def test_bad_output_path_fails_first_and_writes_nothing(tmp_path, digits, argv, needle):
    (tmp_path / "file").write_text("keep")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "mine.txt").write_text("keep")
    (tmp_path / "rep" / "report.md").mkdir(parents=True)
    sub = {"DIGITS": digits, "LENET": LENET, "FILE": tmp_path / "file", "DIR": tmp_path / "dir"}
    args = [str(sub[a]) if a in sub else a.replace("FILE", str(tmp_path / "file")).replace("T/", f"{tmp_path}/")
            for a in argv]
    before = _snapshot(tmp_path)
    r = aras(*args)
    bad = next(a for a in args if a.startswith(str(tmp_path)) and not a.endswith((".onnx", "o.npz")))
    one_line_error(r, needle, bad)
    assert r.stdout == "", "nothing ran"
    assert _snapshot(tmp_path) == before, "nothing written or changed"


def test_unwritable_parent(tmp_path, digits):
    if os.geteuid() == 0:  # root writes anywhere permissions allow; /sys refuses even root
        try:
            os.rmdir(os.path.join("/sys", os.path.basename(__import__("tempfile").mkdtemp(dir="/sys"))))
            pytest.skip("/sys is writable here")
        except OSError:
            pass
        target = "/sys/aras-out/o.npz"
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        target = str(ro / "sub" / "o.npz")
    r = aras("simulate", digits, "--outputs", target)
    one_line_error(r, "--outputs", target, "cannot write in")
    assert r.stdout == "" and not os.path.exists(target)


# ---------------------------------------------------------------------------------------------- (b) counts, inputs
@pytest.mark.parametrize("argv,flag", [
    (["simulate", "LENET", "--batch", "0"], "--batch"),
    (["simulate", "LENET", "--limit", "0"], "--limit"),
    (["simulate", "LENET", "--limit", "-3"], "--limit"),
    (["simulate", "LENET", "--lookahead", "-1"], "--lookahead"),
    (["simulate", "LENET", "--lookahead", "0"], "--lookahead"),
    (["compare", "LENET", "-o", "OUT", "--jobs", "0"], "--jobs"),
    (["compare", "LENET", "-o", "OUT", "--batch", "-1"], "--batch"),
    (["sweep", "LENET", "--param", "batch", "-o", "OUT", "--jobs", "0"], "--jobs"),
    (["verify", "LENET", "-o", "OUT", "--runs", "0"], "--runs"),
    (["verify", "LENET", "-o", "OUT", "--seed", "-1"], "--seed"),
])
def test_counts_must_be_positive(tmp_path, argv, flag):
    r = aras(*[LENET if a == "LENET" else tmp_path / "out" if a == "OUT" else a for a in argv])
    one_line_error(r, flag)
    assert not (tmp_path / "out").exists()


def test_perf_only_refuses_functional_flags(tmp_path, digits):
    r = aras("simulate", digits, "--perf-only", "--outputs", tmp_path / "o.npz")
    one_line_error(r, "--perf-only", "--outputs")
    one_line_error(aras("simulate", digits, "--perf-only", "--limit", "3"), "--perf-only", "--limit")
    assert not list(tmp_path.iterdir())


def test_empty_inputs_clear_error(tmp_path, digits):
    x = tmp_path / "empty.npy"
    np.save(x, np.zeros((0, 1, 28, 28), np.float32))
    r = aras("simulate", digits, "--inputs", x, "--outputs", tmp_path / "o.npz")
    one_line_error(r, str(x), "0 samples")
    assert "KeyError" not in r.stderr and r.stdout == "" and not (tmp_path / "o.npz").exists()


@pytest.mark.parametrize("value", [1e30, -1e30, 1e308])
def test_huge_inputs_saturate_without_warnings(tmp_path, digits, value):
    x = tmp_path / "x.npy"
    np.save(x, np.full((2, 1, 28, 28), value))
    r = aras("simulate", digits, "--inputs", x, "--functional-only", "--outputs", tmp_path / "o.npz", warn_error=True)
    assert r.returncode == 0, r.stderr
    assert "Warning" not in r.stderr, r.stderr
    q = np.load(tmp_path / "o.npz")["output_q"]
    assert q.shape == (2, 10)


# ---------------------------------------------------------------------------------------------- (c) provenance
def test_header_says_what_ran(tmp_path, digits):
    r = aras("simulate", digits, "--config", "tiny")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "weights: real — LeNet-5 trained by the project" in out
    assert "inputs: real (labelled) — the trace's 12 samples: the 1,000 test digits" in out
    assert "12 samples through the bit-exact functional model" in out

    r = aras("simulate", digits, "--config", "tiny", "--limit", "5")
    assert r.returncode == 0, r.stderr
    assert "inputs: real (labelled) — the first 5 of the trace's 12 samples\n" in r.stdout
    assert "1,000" not in r.stdout and "test digits" not in r.stdout
    assert re.search(r"accuracy: .* \(\d+/5\)", r.stdout), r.stdout

    x = tmp_path / "x.npy"
    np.save(x, np.random.default_rng(0).random((3, 1, 28, 28)))
    r = aras("simulate", digits, "--config", "tiny", "--inputs", x, "--functional-only")
    assert r.returncode == 0, r.stderr
    assert f"inputs: 3 inputs from {x} (your file" in r.stdout
    assert "1,000" not in r.stdout and "test digits" not in r.stdout and "accuracy" not in r.stdout

    r = aras("simulate", "mtcnn-pnet", "--perf-only")
    assert r.returncode == 0, r.stderr
    assert "weights: real — real weights (facenet-pytorch" in r.stdout
    assert "inputs: none run" in r.stdout


def test_steady_state_and_cold_start_lines(digits):
    r = aras("simulate", LENET, "--perf-only")  # paper chip: LeNet-5 fits, no writes in steady state
    assert r.returncode == 0, r.stderr
    steady = next(ln for ln in r.stdout.splitlines() if ln.startswith("aras, steady state"))
    cold = next(ln for ln in r.stdout.splitlines() if ln.startswith("aras, cold start"))
    assert "rows written 0," in steady and "no writes" in steady
    m = re.search(r"rows written ([\d,]+)", cold)
    assert m and int(m.group(1).replace(",", "")) > 0, cold


# ---------------------------------------------------------------------------------------------- (d) modes, sweep
def test_simulate_takes_compare_rows(tmp_path):
    from aras.experiments import compare_runs

    help_text = aras("simulate", "--help").stdout
    for run in compare_runs():
        if run.startswith("no_"):
            assert f"--{run.replace('_', '-')}" in help_text, run
    cyc = {}
    for name, argv in (("mode", ["--mode", "no-resident"]), ("flag", ["--no-resident"]),
                       ("mode_", ["--mode", "no_replicate"]), ("repl", ["--no-replication"])):
        js = tmp_path / f"{name}.json"
        r = aras("simulate", LENET, "--config", "tiny", "--perf-only", "--json", js, *argv)
        assert r.returncode == 0, r.stderr
        rep = json.loads(js.read_text())
        cyc[name] = rep["cycles"]
        key = "resident" if "resident" in " ".join(argv) else "replicate"
        assert rep["options"][key] is False, rep["options"]
    assert cyc["mode"] == cyc["flag"] and cyc["mode_"] == cyc["repl"]


@pytest.mark.parametrize("argv,needles", [
    (["--mode", "functional"], ["--functional-only"]),
    (["--mode", "tpu", "--no-overlap"], ["--no-overlap", "TPU-like"]),
    (["--mode", "ideal", "--no-resident"], ["--no-resident", "ideal PUM"]),
    (["--mode", "baseline", "--lookahead", "2"], ["--lookahead", "baseline"]),
    (["--mode", "no-such"], ["unknown --mode", "no-replicate", "no-resident", "tpu"]),
    (["--functional-only", "--mode", "baseline"], ["--functional-only"]),
])
def test_modes_simulate_cannot_run_say_why(argv, needles):
    one_line_error(aras("simulate", LENET, *argv), *needles)


def test_sweep_help_shows_every_default():
    r = aras("sweep", "--help")
    assert r.returncode == 0
    text = " ".join(r.stdout.split())
    assert "write_energy: energy per SET and RESET pulse: e_set_pj = e_reset_pj (default values 0.6, 6, 20, 60, 200)" \
        in text
    from aras.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "cmd").choices["sweep"]
    for act in sub._actions:
        if act.option_strings and act.dest != "help":
            assert act.help and "default" in act.help, act.option_strings


def test_sweep_write_energy_defaults_log_axis_and_provenance(tmp_path):
    out = tmp_path / "sw"
    r = aras("sweep", LENET, "--config", "tiny", "--param", "write_energy", "-o", out, "--jobs", "1")
    assert r.returncode == 0, r.stderr
    assert "lenet5 weights: real — LeNet-5 trained" in r.stdout and "inputs: none run" in r.stdout
    data = json.loads((out / "sweep_write_energy.json").read_text())
    assert [p["value"] for p in data["points"]] == [0.6, 6.0, 20.0, 60.0, 200.0]
    from aras.report import sweep_axis

    assert sweep_axis(data["points"])[2] == "log"
    md = (out / "sweep_write_energy.md").read_text()
    assert f"Command: `aras sweep {LENET} --config tiny --param write_energy -o {out} --jobs 1`" in md
    assert re.search(r"git commit: `([0-9a-f]{40}( \+ uncommitted changes)?|unknown)`", md)
    assert re.search(r"date: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", md)


def test_sweep_axis_scales():
    from aras.report import sweep_axis

    def pts(*vs):
        return [{"value": v} for v in vs]

    assert sweep_axis(pts(1, 2, 4, 8))[2] == "linear"
    assert sweep_axis(pts(0.0, 5.0, 10.0, 20.0, 40.0))[2] == "linear"  # positive values span 8x
    assert sweep_axis(pts(0.0, 1.0, 100.0))[2] == "symlog"
    ordered, x, scale = sweep_axis(pts(100.0, 2.0, 5.0))
    assert scale == "log" and list(x) == [2.0, 5.0, 100.0] and [p["value"] for p in ordered] == [2.0, 5.0, 100.0]
    _, x, scale = sweep_axis(pts(1, 8, None))  # unbounded look-ahead: evenly spaced, in order
    assert scale == "linear" and list(x) == [0.0, 1.0, 2.0]


# ---------------------------------------------------------------------------------------------- (e) reports
def test_compare_report_provenance_without_git(tmp_path):
    out = tmp_path / "cmp"
    env = dict(os.environ, PATH=str(tmp_path / "no-bin"))  # no git on the PATH: "unknown", no crash
    r = aras("compare", LENET, "--config", "tiny", "-o", out, "--jobs", "1", env=env)
    assert r.returncode == 0, r.stderr
    assert "lenet5 weights: real — " in r.stdout and "inputs: none run" in r.stdout
    md = (out / "report.md").read_text()
    assert f"Command: `aras compare {LENET} --config tiny -o {out} --jobs 1`; git commit: `unknown`; date: " in md
    html = (out / "report.html").read_text()
    assert "git commit: <code>unknown</code>" in html
    data = json.loads((out / "results.json").read_text())
    assert data["provenance"]["git_commit"] == "unknown" and data["provenance"]["date"][:2] == "20"

    from aras.report import ablation_figure, speedup_figure

    fig = ablation_figure(data)
    fig.canvas.draw()
    none = [(k, a) for k, a in data["summary"]["lenet5"]["ablation"].items() if a["write_energy_rel"] == 1]
    assert none, "the tiny LeNet-5 run has ablations without effect"
    ax = fig.axes[2]  # write energy / full ARAS
    zero = [t for t in ax.texts if t.get_text() == "0 %"]
    assert len(zero) == len(none)
    lo, hi = ax.get_ylim()
    for t in zero:
        x, y = ax.transData.inverted().transform(t.get_window_extent().get_points().mean(axis=0))
        assert t.get_visible() and lo < y < hi, (y, lo, hi)
    assert not [t for t in ax.texts if t.get_text() in ("1.000", "+0.0 %", "-0.0 %")]

    fig = speedup_figure(data)
    energy = fig.axes[1]
    assert "%" in energy.get_ylabel() and "saving" in energy.get_title().lower()
    saving = 100 * data["summary"]["lenet5"]["energy_saving_vs_baseline"]
    assert f"{saving:.1f} %" in [t.get_text() for t in energy.texts]


def test_git_commit_outside_a_checkout(tmp_path):
    """A copy of the package outside any git checkout reports the commit as unknown."""
    pkg = tmp_path / "aras"
    shutil.copytree(ROOT / "aras", pkg, ignore=shutil.ignore_patterns("fixtures", "__pycache__"))
    r = subprocess.run([sys.executable, "-c", "import aras.experiments as e; print(e.__file__, e.provenance('x'))"],
                       capture_output=True, text=True, cwd=tmp_path, timeout=120,
                       env=dict(os.environ, PYTHONPATH=str(tmp_path), GIT_CEILING_DIRECTORIES=str(tmp_path.parent)))
    assert r.returncode == 0, r.stderr
    assert "'git_commit': 'unknown'" in r.stdout, r.stdout


# ---------------------------------------------------------------------------------------------- (f) encoding study
def test_encoding_study_model_without_writes(tmp_path):
    js = tmp_path / "enc.json"
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "encoding_study.py"), "mtcnn-pnet", "--json", js],
                       capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "ZeroDivisionError" not in r.stderr
    rows = [ln for ln in r.stdout.splitlines() if ln.startswith("| mtcnn-pnet")]
    assert len(rows) == 5 and all("no writes (fits the chip)" in ln for ln in rows), rows
    data = json.loads(js.read_text())
    assert data["mtcnn-pnet/no_writes"] == "no writes (fits the chip)"
    assert data["mtcnn-pnet/offset (plain)"]["vs_offset_plain"] is None
