"""Build and run cocotb tests of the SystemVerilog generated from an Amaranth component
(``hw.generate.to_sv``), over ``cocotb_tools.runner``.

- Simulator: ``$SIM`` (``icarus``, the default, or ``verilator``). Verilator is used only when
  ``verilator --version`` is at least 5.036 (cocotb 2.x's minimum; older ones fail in cocotb's C++),
  otherwise the test is skipped, as it is without ``iverilog`` for Icarus.
- One build directory per design: ``<build_root>/<top>-<sim>-<hash>``, the hash covering the SV text,
  the simulator, the cocotb version and the waves flag, so equal parameter sets share one build and
  a stale build is never reused. ``build_root`` is the pytest tmp dir or ``$ARAS_COCOTB_BUILD``
  (a persistent cache; see ``conftest.py``).
- Icarus gets the SV through :func:`icarus_safe` (``always_comb`` → ``always @*`` with a time-0 kick):
  Icarus 11 hangs on yosys-style ``always_comb`` chains (the write engine driving a crossbar).
- ``WAVES=1``: trace the run (Icarus: FST in the test directory; Verilator: cocotb's ``dump.vcd``).
- Test vectors go to the cocotb module as files named in ``extra_env``. A failing cocotb test
  becomes an ``AssertionError`` carrying the cocotb failure messages (the runner itself only exits).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import cocotb
import numpy as np
import pytest
from cocotb_tools.runner import get_runner

from hw.generate import to_sv
from hw.lint import WAIVERS as LINT_WAIVERS

__all__ = ["SIMULATORS", "VERILATOR_MIN", "simulator", "verilator_version", "skip_reason", "waves_requested",
           "icarus_safe", "Build", "build", "write_inputs"]

SIMULATORS = ("icarus", "verilator")
VERILATOR_MIN = (5, 36)
TIMESCALE = ("1ns", "1ps")


def simulator() -> str:
    """``$SIM`` (default ``icarus``)."""
    sim = os.environ.get("SIM", "icarus").strip().lower() or "icarus"
    if sim not in SIMULATORS:
        raise ValueError(f"SIM={sim!r}: the cocotb tests support {', '.join(SIMULATORS)}")
    return sim


def verilator_version() -> tuple[int, int] | None:
    """(major, minor) of ``verilator`` on PATH, None if absent or unreadable."""
    exe = shutil.which("verilator")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30).stdout.split()
        major, minor = out[1].split(".")[:2]
        return int(major), int(minor)
    except (OSError, subprocess.SubprocessError, IndexError, ValueError):
        return None


def skip_reason(sim: str) -> str | None:
    """Why ``sim`` cannot run the cocotb tests here (None: it can)."""
    if sim == "icarus":
        return None if shutil.which("iverilog") and shutil.which("vvp") else "iverilog/vvp not installed"
    v = verilator_version()
    if v is None:
        return "verilator not installed"
    if v < VERILATOR_MIN:
        return (f"verilator {v[0]}.{v[1]:03d} is older than {VERILATOR_MIN[0]}.{VERILATOR_MIN[1]:03d}, "
                f"the minimum of cocotb {cocotb.__version__}")
    return None


def waves_requested() -> bool:
    return os.environ.get("WAVES", "0").strip().lower() in ("1", "true", "yes", "on")


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
class Build:
    """A built design: run cocotb test modules against it with :meth:`run`."""

    top: str
    sim: str
    build_dir: Path
    waves: bool

    def run(self, test_module: str, test_dir: Path, *, extra_env: dict[str, str] | None = None,
            testcase: str | list[str] | None = None, seed: int | None = None) -> Path:
        """Run the cocotb tests of ``test_module`` (dotted, importable) in ``test_dir``; ``extra_env`` names
        the vector files. Returns the results file; raises ``AssertionError`` with the cocotb failure
        messages if a test failed."""
        test_dir = Path(test_dir)
        test_dir.mkdir(parents=True, exist_ok=True)
        results = test_dir / f"{test_module.rsplit('.', 1)[-1]}.results.xml"
        plusargs = [f"+dumpfile_path={test_dir / (self.top + '.fst')}"] if self.waves and self.sim == "icarus" else []
        runner = get_runner(self.sim)
        try:
            runner.test(test_module=test_module, hdl_toplevel=self.top, hdl_toplevel_lang="verilog",
                        build_dir=self.build_dir, test_dir=test_dir, results_xml=str(results), testcase=testcase,
                        seed=seed, extra_env={k: str(v) for k, v in (extra_env or {}).items()}, waves=self.waves,
                        plusargs=plusargs, timescale=TIMESCALE)
        except SystemExit as e:  # the runner exits on failures; report what failed instead
            msgs = "; ".join(_failures(results)) or f"no results in {results}; see the log above"
            raise AssertionError(f"cocotb {test_module} on {self.sim} failed (exit {e.code}): {msgs}") from None
        return results


def build(component, top: str, build_root: Path, *, sim: str | None = None, waves: bool | None = None) -> Build:
    """Generate ``top``'s SystemVerilog from ``component`` and build it for ``sim`` (default :func:`simulator`)
    under ``build_root`` (skips the calling test if the simulator is unusable)."""
    sim = sim or simulator()
    reason = skip_reason(sim)
    if reason:
        pytest.skip(reason)
    waves = waves_requested() if waves is None else waves
    sv = to_sv(component, top)
    if sim == "icarus":
        sv = icarus_safe(sv)
    key = hashlib.sha256(f"{sim}\0{cocotb.__version__}\0{waves}\0{sv}".encode()).hexdigest()[:12]
    build_dir = Path(build_root) / f"{top}-{sim}-{key}"
    build_dir.mkdir(parents=True, exist_ok=True)
    src = build_dir / f"{top}.sv"
    if not src.is_file() or src.read_text() != sv:  # unchanged text keeps its mtime: the build is reused
        src.write_text(sv)
    sources: list = [src]
    build_args: list[str] = []
    if sim == "verilator":
        sources.append(LINT_WAIVERS)  # the generator-style waivers shared with aras verilog's lint
        build_args = ["-Wno-fatal"]
    log = build_dir / "build.log"  # Icarus prints hundreds of harmless "sorry: constant selects" notes
    try:
        get_runner(sim).build(sources=sources, hdl_toplevel=top, build_dir=build_dir, build_args=build_args,
                              always=False, timescale=TIMESCALE, waves=waves, log_file=log)
    except RuntimeError as e:
        tail = log.read_text(errors="replace")[-3000:] if log.is_file() else ""
        raise AssertionError(f"building {top} for {sim} failed ({e}); end of {log}:\n{tail}") from None
    return Build(top, sim, build_dir, waves)


def write_inputs(test_dir: Path, cfg, vectors: dict, seed: int = 0) -> dict[str, str]:
    """Write ``cfg`` (JSON) and ``vectors`` (npz) into ``test_dir``; returns the ``extra_env`` naming them
    (``ARAS_CFG``, ``ARAS_VECTORS``, ``ARAS_TB_SEED``; read with ``verif.cocotb.tb.load_*``)."""
    test_dir = Path(test_dir)
    test_dir.mkdir(parents=True, exist_ok=True)
    (test_dir / "cfg.json").write_text(json.dumps(cfg.to_dict()))
    np.savez(test_dir / "vectors.npz", **vectors)
    return {"ARAS_CFG": str(test_dir / "cfg.json"), "ARAS_VECTORS": str(test_dir / "vectors.npz"),
            "ARAS_TB_SEED": str(seed)}
