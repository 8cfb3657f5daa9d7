"""The execution layer of sweep/compare/dse (aras/execution.py) and its result cache (aras/cache.py):
a sweep through ``--scheduler`` on a real local Dask cluster (a scheduler and two worker processes on
127.0.0.1) gives the serial path's files byte for byte; a second run computes nothing and a longer one
only its new points; a failing point is reported with its parameters and the others are kept; no Dask
process outlives its test."""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
import threading
from pathlib import Path

import psutil
import pytest

from aras import cache as C
from aras.config import preset
from aras.execution import Task, local_workers, strip_volatile
from aras.execution import run as execute
from aras.experiments import run_sweep
from aras.trace import Trace

ROOT = Path(__file__).resolve().parents[2]
LENET = ROOT / "aras" / "fixtures" / "lenet5"
TINY = preset("tiny")
SWEEP = ["sweep", str(LENET), "--config", "tiny", "--param", "write_energy", "--values", "0.6,6"]


def _aras(*args, cache: Path):
    env = dict(os.environ, ARAS_CACHE=str(cache), PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, "-m", "aras.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL)


def _left_over(marker: str, wait_s: float = 10.0) -> list[str]:
    """Processes (other than this one) whose environment carries ``marker`` in ARAS_CACHE, once they
    had ``wait_s`` to exit."""
    import time

    deadline = time.monotonic() + wait_s
    while True:
        left = _with_marker(marker)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


def _with_marker(marker: str) -> list[str]:
    out = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        if p.pid == os.getpid():
            continue
        try:
            if marker in p.environ().get("ARAS_CACHE", ""):
                out.append(f"{p.pid} {' '.join(p.info['cmdline'] or [])}")
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    return out


def _stripped(path: Path) -> bytes:
    return json.dumps(strip_volatile(json.loads(path.read_text())), indent=1).encode()


def _md(path: Path) -> str:
    return "\n".join(line for line in path.read_text().splitlines() if not line.startswith("Command: "))


@pytest.fixture(scope="module")
def cluster():
    """A Dask scheduler and two worker processes on 127.0.0.1, quiet, closed (with every child) after."""
    from distributed import LocalCluster

    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0",
                      silence_logs=logging.ERROR) as c:
        yield c.scheduler_address
    left = [p for p in psutil.Process().children(recursive=True)
            if p.pid not in before and not _is_resource_tracker(p)]  # multiprocessing's, lives with pytest
    gone, alive = psutil.wait_procs(left, timeout=10)
    assert not alive, f"Dask processes still running: {[p.pid for p in alive]}"


def _is_resource_tracker(p) -> bool:
    try:
        return "multiprocessing.resource_tracker" in " ".join(p.cmdline())
    except psutil.Error:
        return True  # gone


# ---------------------------------------------------------------------------------------------- scheduler
def test_scheduler_sweep_is_the_serial_sweep(tmp_path, cluster):
    serial = _aras(*SWEEP, "-o", str(tmp_path / "serial"), "--jobs", "1", "--no-cache", cache=tmp_path / "c1")
    assert serial.returncode == 0, serial.stderr
    dist = _aras(*SWEEP, "-o", str(tmp_path / "dask"), "--scheduler", cluster, cache=tmp_path / "c2")
    assert dist.returncode == 0, dist.stderr
    a, b = tmp_path / "serial" / "sweep_write_energy.json", tmp_path / "dask" / "sweep_write_energy.json"
    ex = json.loads(b.read_text())["execution"]
    assert ex["backend"] == f"dask scheduler {cluster}" and ex["workers"] == 2 and ex["computed"] == 4
    assert json.loads(a.read_text())["execution"]["backend"] == "serial"
    assert _stripped(a) == _stripped(b)
    assert _md(a.with_suffix(".md")) == _md(b.with_suffix(".md"))
    assert a.with_suffix(".png").read_bytes() == b.with_suffix(".png").read_bytes()
    assert "Traceback" not in dist.stderr and "distributed." not in dist.stderr  # no Dask log noise


def test_unreachable_and_malformed_scheduler(tmp_path):
    r = _aras(*SWEEP, "-o", str(tmp_path / "o"), "--scheduler", "nosuch://x", "--no-cache", cache=tmp_path / "c")
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith("aras: --scheduler nosuch://x: not a "
                                                                              "scheduler address")
    assert "Traceback" not in r.stderr
    r = _aras(*SWEEP, "-o", str(tmp_path / "o"), "--scheduler", "tcp://127.0.0.1:9", "--jobs", "2", cache=tmp_path)
    assert r.returncode == 2 and "not allowed with argument" in r.stderr


def test_local_cluster_leaves_no_process(tmp_path):
    marker = tmp_path / "local-cache"
    r = _aras(*SWEEP, "-o", str(tmp_path / "o"), "--jobs", "2", cache=marker)
    assert r.returncode == 0, r.stderr
    d = json.loads((tmp_path / "o" / "sweep_write_energy.json").read_text())
    assert d["execution"]["backend"] == "local dask cluster" and d["jobs"] == 2
    assert not _left_over(str(marker))


# ---------------------------------------------------------------------------------------------- failures
def _points():
    return [Task(i, math.sqrt, (x,), params={"x": x}) for i, x in enumerate([4.0, -1.0, 9.0])]


@pytest.mark.parametrize("where", ["serial", "dask"])
def test_a_failing_task_is_reported_and_the_others_kept(where, cluster):
    tasks = _points()
    kw = {"jobs": 1} if where == "serial" else {"scheduler": cluster}
    out = execute(tasks, progress=False, **kw)
    assert out.results == [2.0, None, 3.0] and out.computed == 2
    (f,) = out.failures
    assert f.key == 1 and f.params == {"x": -1.0} and f.error == "ValueError: math domain error"
    assert f.describe() == "x=-1: ValueError: math domain error"


def test_failing_sweep_point_exits_non_zero_and_resumes(tmp_path, monkeypatch, capsys):
    import sim_models.perf as perf
    from aras.cli import main

    real = perf.simulate

    def flaky(trace, cfg, mode="aras", opts=None, keep=None):
        if cfg.e_set_pj == 6.0:
            raise RuntimeError("injected failure")
        return real(trace, cfg, mode, opts, keep)

    monkeypatch.setenv("ARAS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(perf, "simulate", flaky)
    args = SWEEP[:-1] + ["0.6,6,60", "-o", str(tmp_path / "o"), "--jobs", "1"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "aras: failed: model=lenet5, write_energy=6, mode=aras: RuntimeError: injected failure" in err
    assert "aras: failed: model=lenet5, write_energy=6, mode=baseline: RuntimeError: injected failure" in err
    assert "2 of 6 runs failed; the other 4 are kept" in err
    d = json.loads((tmp_path / "o" / "sweep_write_energy.json").read_text())
    assert [p["runs"]["aras"].get("error") for p in d["points"]] == [None, "failed: RuntimeError: injected failure",
                                                                      None]
    assert d["points"][0]["runs"]["aras"]["cycles"] > 0 and d["points"][2]["summary"]["speedup_vs_baseline"]
    assert len(d["failures"]) == 2 and d["failures"][0]["params"]["write_energy"] == 6.0
    assert "failed: RuntimeError" in (tmp_path / "o" / "sweep_write_energy.md").read_text()

    monkeypatch.setattr(perf, "simulate", real)  # fixed: only the failed runs are computed again
    assert main(args) == 0
    d2 = json.loads((tmp_path / "o" / "sweep_write_energy.json").read_text())
    assert (d2["execution"]["computed"], d2["execution"]["cached"], d2["execution"]["failed"]) == (2, 4, 0)
    assert "failures" not in d2 and d2["points"][1]["runs"]["aras"]["cycles"] > 0


def test_failing_compare_run_writes_results_but_no_report(tmp_path, monkeypatch, capsys):
    import sim_models.perf as perf
    from aras.cli import main

    real = perf.simulate

    def flaky(trace, cfg, mode="aras", opts=None, keep=None):
        if mode == "tpu":
            raise MemoryError("injected")
        return real(trace, cfg, mode, opts, keep)

    monkeypatch.setenv("ARAS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(perf, "simulate", flaky)
    out = tmp_path / "o"
    assert main(["compare", str(LENET), "--config", "tiny", "-o", str(out), "--jobs", "1"]) == 1
    err = capsys.readouterr().err
    assert "aras: failed: model=lenet5, run=tpu: MemoryError: injected" in err
    d = json.loads((out / "results.json").read_text())
    assert d["runs"]["lenet5"]["tpu"]["error"] == "failed: MemoryError: injected" and d["summary"] == {}
    assert d["runs"]["lenet5"]["aras"]["cycles"] > 0 and not (out / "report.md").exists()


# ---------------------------------------------------------------------------------------------- cache
def test_second_run_computes_nothing_and_a_longer_one_only_new_points(tmp_path):
    tr = Trace.load(LENET)
    cache = C.ResultCache(tmp_path / "cache")
    kw = {"jobs": 1, "progress": False, "cache": cache}
    a = run_sweep(tr, TINY, "write_energy", [0.6, 6.0], tmp_path / "a", **kw)
    assert (a["execution"]["computed"], a["execution"]["cached"]) == (4, 0)
    assert len(list((tmp_path / "cache").rglob("*.json"))) == 4
    b = run_sweep(tr, TINY, "write_energy", [0.6, 6.0], tmp_path / "b", **kw)
    assert (b["execution"]["computed"], b["execution"]["cached"], b["execution"]["backend"]) == (0, 4, "cache")
    name = "sweep_write_energy.json"
    assert _stripped(tmp_path / "a" / name) == _stripped(tmp_path / "b" / name)
    c = run_sweep(tr, TINY, "write_energy", [0.6, 6.0, 60.0], tmp_path / "c", **kw)
    assert (c["execution"]["computed"], c["execution"]["cached"]) == (2, 4)
    d = run_sweep(tr, TINY, "write_energy", [0.6], tmp_path / "d", jobs=1, progress=False, cache=None)
    assert (d["execution"]["computed"], d["execution"]["cached"]) == (2, 0)  # no cache: computed again
    assert len(list((tmp_path / "cache").rglob("*.json"))) == 6 and not list((tmp_path / "cache").rglob("*.tmp"))


def test_no_cache_flag_neither_reads_nor_writes(tmp_path):
    cache = tmp_path / "cache"
    r = _aras(*SWEEP, "-o", str(tmp_path / "o"), "--jobs", "1", "--no-cache", cache=cache)
    assert r.returncode == 0, r.stderr
    assert not (cache / "results").exists() or not list((cache / "results").rglob("*.json"))


def test_key_covers_trace_config_options_and_sources(monkeypatch):
    tr = Trace.load(LENET)
    d = C.trace_digest(tr)
    assert d == C.trace_digest(Trace.load(LENET))
    other = Trace.load(LENET)
    w = other.weight_layers()[0].arrays["weight"]
    w.flat[0] = w.flat[0] ^ 1
    assert C.trace_digest(other) != d
    k = C.task_key("f", d, (TINY, "aras", ()))
    assert k == C.task_key("f", d, (preset("tiny"), "aras", ()))
    assert k != C.task_key("f", d, (TINY.replace(adc_bits=7), "aras", ()))
    assert k != C.task_key("f", d, (TINY, "aras", (("lookahead", 2),)))
    assert k != C.task_key("g", d, (TINY, "aras", ()))
    monkeypatch.setattr(C, "source_digest", lambda: "edited sources")
    assert k != C.task_key("f", d, (TINY, "aras", ()))


def test_concurrent_writers_leave_whole_entries(tmp_path):
    cache = C.ResultCache(tmp_path)
    key = "ab" + "0" * 62
    results = [{"writer": i, "payload": list(range(2000))} for i in range(8)]
    threads = [threading.Thread(target=cache.put, args=(key, r)) for r in results]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cache.get(key) in results
    assert [p.name for p in (tmp_path / "ab").iterdir()] == [f"{key}.json"]
    cache.path(key).write_text("{not json")  # a damaged entry is a miss
    assert cache.get(key) is None


def test_local_workers_sized_by_cores_and_memory(monkeypatch):
    import aras.execution as E

    monkeypatch.setattr(E, "mem_available", lambda: 24 * 2**30)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert local_workers(None, 10, 10_000_000) == (2, int(0.9 * 24 * 2**30 / 2))
    assert local_workers(8, 3, 0)[0] == 3  # no more workers than tasks
    n, mem = local_workers(8, 100, 138_000_000)  # VGG-16: ~2.5 GB each -> 8 fit in 21.6 GB
    assert n == 8 and mem >= E.worker_bytes(138_000_000)
    monkeypatch.setattr(E, "mem_available", lambda: 4 * 2**30)
    n, mem = local_workers(8, 100, 138_000_000)
    assert n == 1 and mem == int(0.9 * 4 * 2**30)
