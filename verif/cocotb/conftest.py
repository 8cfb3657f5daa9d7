"""Fixtures of the cocotb tests: the root of the content-hashed build cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from verif.testbench import runner


@pytest.fixture(scope="session")
def cocotb_build_root() -> Path:
    """``$ARAS_COCOTB_BUILD`` or ``$ARAS_CACHE/cocotb`` (``runner.cache_root``): builds are keyed by the
    hash of what they compile, so sessions, tests and ``aras verify`` share them."""
    return runner.cache_root()


def unit_simulators() -> list[str]:
    """Simulators of the unit testbenches and the Icarus subset of the system cases: ``$SIM`` alone if
    set, else Verilator (when installed, the default) and Icarus both."""
    if os.environ.get("SIM", "").strip():
        return [runner.simulator()]
    return ["verilator", "icarus"] if runner.simulator() == "verilator" else ["icarus"]


@pytest.fixture(scope="module", params=unit_simulators())
def cocotb_sim(request) -> str:
    """Each simulator of :func:`unit_simulators` in turn (module scope: one build per design and simulator)."""
    return request.param
