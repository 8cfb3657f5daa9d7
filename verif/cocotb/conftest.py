"""Fixtures of the cocotb tests: the root of the per-design build directories."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def cocotb_build_root(tmp_path_factory) -> Path:
    """``$ARAS_COCOTB_BUILD`` (a persistent cache shared between sessions) or a session tmp dir."""
    root = os.environ.get("ARAS_COCOTB_BUILD")
    if root:
        path = Path(root)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("cocotb_build")
