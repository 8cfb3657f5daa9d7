"""Which interlock rule decides each start (docs/verification.md, "Hazard rules and which decide").

The timing model (:mod:`sim_models.timing`) computes every start as the max() of the terms of
docs/architecture.md §10; :data:`sim_models.timing.RULES` names them (``dram``, ``slot``, ``barrier``
bound a WRITE's DRAM transfer; ``fetch``, ``pe_order``, ``driver``, ``war``, ``waw`` its programming;
``exec_order``, ``raw`` and its two single-tile instances ``raw_last`` / ``raw_top`` a COMPUTE;
``exec_order`` a VECTOR or HOST). :func:`decisive_rules` runs the model once with every term recorded
and once per rule with that rule removed, and for every start says which rules decided it:

- ``earlier``: the start comes earlier in the replay without the rule (its effect through later
  instructions included: a WRITE whose transfer waited for a slot also programs later);
- ``binding``: the rule's term equals the start cycle (> 0) — ties each count; a single-tile instance
  (``raw_last``, ``raw_top``) binds only if no other tile's wait is as late (a tie between tiles is
  ``raw``'s);
- ``direct``: binding, and the start is not explained by the pure issue order — if ``exec_order`` or
  ``pe_order`` binds, only they are direct;
- ``sole``: the only binding term (removing the rule alone moves the start, whatever came before);
- ``decides`` = earlier or direct: the headline count.

Removing a rule can in principle make a start later (driver choice is greedy: a scheduling anomaly);
such starts are counted under ``later`` and never as decided.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from aras.config import Config
from aras.program import Program
from aras.trace import Trace

from . import timing
from .timing import RULES

KINDS = ("write_dram", "write_prog", "compute", "vector", "host")
ISSUE_ORDER = frozenset({"exec_order", "pe_order"})
MEASURES = ("decides", "earlier", "binding", "direct", "sole", "later")
# Rules whose term is in a start of each kind (the others reach it only through earlier instructions).
TERMS = {"write_dram": ("dram", "slot", "barrier"), "write_prog": ("fetch", "pe_order", "driver", "war", "waw"),
         "compute": ("exec_order", "raw", "raw_last", "raw_top"), "vector": ("exec_order",), "host": ("exec_order",)}
SUB_RULES = frozenset({"raw_last", "raw_top"})  # single-tile instances of raw


@dataclass(frozen=True)
class Start:
    """One start: ``kind`` (:data:`KINDS`), ``index`` in its stream (write or execute stream), its cycle,
    the terms of its max() and which rules decided it by each measure (module docstring)."""

    kind: str
    index: int
    cycle: int
    terms: dict[str, int]
    earlier: dict[str, int]  # rule -> cycles earlier without it
    later: frozenset[str]
    binding: frozenset[str]
    direct: frozenset[str]
    sole: frozenset[str]

    @property
    def decided_by(self) -> frozenset[str]:
        return frozenset(self.earlier) | self.direct


def binding_set(cycle: int, terms: dict[str, int]) -> frozenset[str]:
    """Rules whose term equals the start cycle (> 0: a start at cycle 0 waits for nothing)."""
    return frozenset(r for r, t in terms.items() if cycle > 0 and t == cycle)


def direct_set(binding: frozenset[str]) -> frozenset[str]:
    """The binding rules that decide the start directly: the issue order if it binds, else all of them."""
    return binding & ISSUE_ORDER or binding


def _starts(run: timing.Run) -> dict[tuple[str, int], int]:
    out = {}
    for i, (a0, _, b0, _) in enumerate(run.write_times):
        out["write_dram", i] = a0
        out["write_prog", i] = b0
    for i, (e0, _) in enumerate(run.exec_times):
        out["exec", i] = e0
    return out


@dataclass
class Result:
    """Output of :func:`decisive_rules` (``counts()`` gives the dict of counts)."""

    starts: list[Start]
    run: timing.Run  # the unmodified golden run
    rules: tuple[str, ...]

    def counts(self) -> dict:
        """``per_rule[measure][rule]`` and ``per_kind[measure][(kind, rule)]`` for every measure of
        :data:`MEASURES`; ``per_rule`` / ``per_kind`` at the top level are the ``decides`` counts."""
        return counts(self.starts, self.rules)


def counts(starts: list[Start], rules: tuple[str, ...] = RULES) -> dict:
    """Counts of :func:`decisive_rules` over any list of starts (e.g. several programs together)."""
    by_rule = {m: Counter({r: 0 for r in rules}) for m in MEASURES}
    by_kind = {m: Counter() for m in MEASURES}
    for s in starts:
        sets = {"decides": s.decided_by, "earlier": s.earlier.keys(), "binding": s.binding, "direct": s.direct,
                "sole": s.sole, "later": s.later}
        for m, rs in sets.items():
            for r in rs:
                by_rule[m][r] += 1
                by_kind[m][s.kind, r] += 1
    return {"per_rule": dict(by_rule["decides"]), "per_kind": dict(by_kind["decides"]),
            "measures": {m: {"per_rule": dict(by_rule[m]), "per_kind": dict(by_kind[m])} for m in MEASURES},
            "starts": len(starts)}


def decisive_rules(trace: Trace, prog: Program, cfg: Config, initial: np.ndarray | None = None,
                   rules: tuple[str, ...] = RULES, cache: dict | None = None) -> dict:
    """Which rules decide every WRITE start (DRAM transfer and programming) and every execute-instruction
    start of ``prog`` run from crossbar contents ``initial`` (None: cold): the golden model once with the
    terms recorded, then once per rule of ``rules`` with the rule removed.

    Returns :meth:`Result.counts` (``per_rule``: rule -> number of starts it decides; ``per_kind``:
    (kind, rule) -> number; ``measures``: the same for every measure) plus ``result``, the
    :class:`Result` with every :class:`Start` and the golden run (its ``final_levels`` feed the next run
    of a chain)."""
    res = analyse(trace, prog, cfg, initial, rules, cache)
    return {**res.counts(), "result": res}


def analyse(trace: Trace, prog: Program, cfg: Config, initial: np.ndarray | None = None,
            rules: tuple[str, ...] = RULES, cache: dict | None = None) -> Result:
    """The per-start analysis behind :func:`decisive_rules`."""
    bounds: list = []
    ref = timing.run(prog, trace, cfg, initial, cache=cache, bounds=bounds)
    base = _starts(ref)
    alt = {r: _starts(timing.run(prog, trace, cfg, initial, cache=cache, drop=frozenset({r}))) for r in rules}
    starts = []
    for kind, index, cycle, terms in bounds:
        key = (kind if kind.startswith("write") else "exec", index)
        assert base[key] == cycle, (kind, index)
        earlier = {r: cycle - a[key] for r, a in alt.items() if a[key] < cycle}
        later = frozenset(r for r, a in alt.items() if a[key] > cycle)
        terms = {r: t for r, t in terms.items() if r in rules}
        binding = binding_set(cycle, terms)
        direct = direct_set(binding)
        sole = binding if len(binding - SUB_RULES) == 1 else frozenset()  # raw with its instances is one
        starts.append(Start(kind, index, cycle, terms, earlier, later, binding, direct, sole))
    return Result(starts, ref, tuple(rules))


def table(columns: dict[str, dict], rules: tuple[str, ...] = RULES) -> str:
    """A plain-text table: one row per rule, one column per entry of ``columns`` (title -> {rule: n})."""
    heads = ["rule"] + list(columns)
    rows = [[r] + [str(columns[c].get(r, 0)) for c in columns] for r in rules]
    w = [max(len(x) for x in col) for col in zip(heads, *rows, strict=True)]
    fmt = "  ".join(f"{{:<{w[0]}}}" if i == 0 else f"{{:>{n}}}" for i, n in enumerate(w))
    return "\n".join(fmt.format(*r) for r in [heads] + rows)
