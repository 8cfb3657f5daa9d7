"""Shared pytest set-up: the project root on sys.path (tests import ``verif.*`` helpers)."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture
def emit(request):
    """``emit(text)``: print ``text`` in the run's terminal summary ("tables"), whether or not pytest captures
    output and also from pytest-xdist workers (the test's report carries it as a user property)."""
    return lambda text: request.node.user_properties.append(("table", text))


def pytest_terminal_summary(terminalreporter):
    tables = [v for key in ("passed", "failed") for r in terminalreporter.stats.get(key, [])
              if getattr(r, "when", "") == "call" for k, v in getattr(r, "user_properties", ()) if k == "table"]
    if tables:
        terminalreporter.section("tables")
        for text in tables:
            terminalreporter.write_line(text.strip("\n") + "\n")
