"""Hazard monitor of the system testbench (``top_tb.py``; docs/verification.md, "Hazard rules and which
decide"): the interlocks of docs/architecture.md §9.6 checked from what the design does, not from how
the controller decides it.

- :class:`ProgramView`: what the monitor expects, decoded from the program image in Python
  (``aras.isa.decode``): per WRITE its crossbar, rows and tile tag; per COMPUTE the crossbars its dense
  tile table reads, each with ``need_gen`` and tag.
- :class:`HazardChecker`: the checking core, a plain class fed one :meth:`~HazardChecker.step` per cycle
  (so it is testable without a simulator). It keeps per crossbar the WRITE that last started
  programming it and how many of that WRITE's rows have been committed, and per run the COMPUTE that
  is running. At a COMPUTE start every crossbar of the round must hold all rows of the WRITE its entry
  waits for (the ``need_gen``-th WRITE to it in this run; ``need_gen`` 0: the tile fully written before,
  untouched since) and that WRITE's tag must be the entry's; at a WRITE's programming start no running
  COMPUTE may read its crossbar, no earlier WRITE may still be programming it (two drivers) and it must
  be its PE's next WRITE. Every violation is a message naming the cycle, crossbar and instruction
  indices. It also records every start: DRAM transfer, programming start and the cycle after the last
  row's commit (``A_start``, ``B_start``, ``B_fin`` per WRITE) and every execute start (``E_start``).
- :class:`Monitor`: the cocotb side, sampling in the read-only phase of every cycle of a run the top's
  ``exec_start`` and ``compute_done`` (the compute engine's ``done``, cycle ``E_fin − 1``), the DRAM
  unit's request handshake, the PEs' WRITE issue lanes (``pe<p>.tile__<k>``, payload: crossbar and
  tag) and every crossbar's row write port at its APU (``pe<p>.apu<a>.wr__<k>__en`` / ``__row``: the
  commit of one row).

None of those is the controller's scoreboard (``done_gen``, ``xbusy``, ``raw_ok``) or its
``exec_retired``: "fully written" is counted from the crossbar's own row commits and the expected tag
comes from the program, so a scoreboard or tile-table bug that the controller trusts shows up here.
:func:`compare_starts` compares the recorded starts with a golden ``sim_models.timing`` run.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import cocotb
from cocotb.triggers import ReadOnly, RisingEdge

from aras import isa
from hw.pe import tile_layout

Tag = tuple[int, int, int, int]  # (layer, t_group, t_row, t_col)
KINDS = {isa.Opcode.COMPUTE.value: "compute", isa.Opcode.VECTOR.value: "vector", isa.Opcode.HOST.value: "host"}
START_KINDS = ("write_dram", "write_prog", "write_fin", "exec")


@dataclass(frozen=True)
class WriteOp:
    xbar: int
    rows: int
    tag: Tag


@dataclass(frozen=True)
class ExecOp:
    kind: str  # compute / vector / host
    reads: tuple[tuple[int, int, Tag], ...] = ()  # COMPUTE: (crossbar, need_gen, tag) of its valid entries


@dataclass
class ProgramView:
    writes: list[WriteOp]
    execs: list[ExecOp]  # the END word excluded
    per_pe: int  # crossbars per PE

    @classmethod
    def from_image(cls, image: bytes, per_pe: int) -> ProgramView:
        t = isa.decode(image)
        writes = [WriteOp(w["xbar"], w["rows"], (w["layer"], w["t_group"], w["t_row"], w["t_col"])) for w in t.writes]
        execs = []
        for e in t.execs:
            kind = KINDS.get(e["op"])
            if kind is None:
                continue
            reads = ()
            if kind == "compute":
                reads = tuple((te["xbar"], te["need_gen"], (e["layer"], te["t_group"], te["t_row"], te["t_col"]))
                              for te in t.tiles[e["tiles_ptr"]:e["tiles_ptr"] + e["tiles_n"]] if te["valid"])
            execs.append(ExecOp(kind, reads))
        return cls(writes, execs, per_pe)

    def nth_write(self) -> dict[tuple[int, int], int]:
        """(crossbar, n) -> write-stream index of the n-th WRITE to the crossbar (n from 1: ``need_gen``)."""
        out, seen = {}, {}
        for i, w in enumerate(self.writes):
            seen[w.xbar] = seen.get(w.xbar, 0) + 1
            out[w.xbar, seen[w.xbar]] = i
        return out


@dataclass
class Cycle:
    """What the monitor saw in one cycle: an execute start, the compute engine's ``done``, a DRAM
    request, WRITE programming starts ``(pe, crossbar local to the PE, tag)`` in lane order and row
    commits ``(crossbar, row)``."""

    exec_start: bool = False
    compute_done: bool = False
    dram_start: bool = False
    prog_starts: list[tuple[int, int, Tag]] = field(default_factory=list)
    commits: list[tuple[int, int]] = field(default_factory=list)


class HazardChecker:
    """The checking core (module docstring). One object per design: ``held`` (the tag of the tile each
    crossbar fully holds) survives runs and resets, like the cells. Per run: :meth:`begin`, then
    :meth:`step` for cycles 0, 1, ... in order; ``violations`` and ``starts`` hold the run's results."""

    def __init__(self):
        self.held: dict[int, Tag | None] = {}  # None from a programming start on (a cut WRITE leaves it so)

    def begin(self, prog: ProgramView) -> None:
        self.prog, self.nth = prog, prog.nth_write()
        self.cur = {}  # crossbar -> WRITE that last started programming it in this run
        self.done_rows = [0] * len(prog.writes)
        self.pe_next = {}  # PE -> its WRITEs not yet started, in program order
        for i, w in enumerate(prog.writes):
            self.pe_next.setdefault(w.xbar // prog.per_pe, deque()).append(i)
        self.running: tuple[int, int, frozenset[int]] | None = None  # (COMPUTE index, start cycle, crossbars)
        self.starts = {"write_dram": [], "write_prog": [None] * len(prog.writes),
                       "write_fin": [None] * len(prog.writes), "exec": []}
        self.violations: list[str] = []
        self.checked = {"compute": 0, "write_prog": 0}

    def _bad(self, t: int, msg: str) -> None:
        self.violations.append(f"cycle {t}: {msg}")

    def step(self, t: int, c: Cycle) -> None:
        """Cycle ``t``. Order: execute start, DRAM start, programming starts, then finishes — a start in
        cycle t must not see a row committed or a COMPUTE finished in that same cycle (B_fin, E_fin are
        the cycle after)."""
        if c.exec_start:
            self._exec_start(t)
        if c.dram_start:
            self.starts["write_dram"].append(t)
        for p, lx, tag in c.prog_starts:
            self._prog_start(t, p, p * self.prog.per_pe + lx, tag)
        if c.compute_done:
            if self.running is None:
                self._bad(t, "the compute engine reports done with no COMPUTE running")
            self.running = None
        for x, r in c.commits:
            self._commit(t, x, r)

    def _exec_start(self, t: int) -> None:
        e = len(self.starts["exec"])
        self.starts["exec"].append(t)
        if e >= len(self.prog.execs):
            self._bad(t, f"execute instruction {e} starts; the program has {len(self.prog.execs)}")
            return
        if self.running is not None:
            self._bad(t, f"execute instruction {e} starts while COMPUTE {self.running[0]} (started in cycle "
                         f"{self.running[1]}) runs")
        op = self.prog.execs[e]
        if op.kind != "compute":
            return
        self.checked["compute"] += 1
        self.running = (e, t, frozenset(x for x, _, _ in op.reads))
        for x, n, tag in op.reads:
            where = f"COMPUTE {e} reads crossbar {x}"
            if n == 0:  # resident: written before this run and not touched since
                if x in self.cur:
                    self._bad(t, f"{where} (resident tile), which WRITE {self.cur[x]} of this run reprograms")
                elif self.held.get(x) != tag:
                    self._bad(t, f"{where} (resident tile {tag}); it holds {self.held.get(x)}")
                continue
            w = self.nth.get((x, n))
            if w is None:
                self._bad(t, f"{where} after its WRITE {n}; the program writes it {n - 1} times or fewer")
                continue
            wo, got = self.prog.writes[w], self.cur.get(x)
            if got is None or got < w:
                self._bad(t, f"{where}: its WRITE {w} has not started programming"
                             + ("" if got is None else f" (WRITE {got} holds it)"))
            elif got > w:
                self._bad(t, f"{where}: its WRITE {w} is already overwritten by WRITE {got}")
            elif self.done_rows[w] < wo.rows:
                self._bad(t, f"{where}: {self.done_rows[w]} of the {wo.rows} rows of WRITE {w} written")
            if wo.tag != tag:
                self._bad(t, f"{where}: WRITE {w} carries tag {wo.tag}, the tile entry expects {tag}")

    def _prog_start(self, t: int, p: int, x: int, tag: Tag) -> None:
        self.checked["write_prog"] += 1
        queue = self.pe_next.get(p, deque())
        w = next((i for i in queue if self.prog.writes[i].xbar == x and self.prog.writes[i].tag == tag), None)
        if w is None:
            self._bad(t, f"PE {p} starts programming crossbar {x} with tag {tag}: no WRITE of the program left")
            return
        if w != queue[0]:
            self._bad(t, f"WRITE {w} (crossbar {x}) starts programming before WRITE {queue[0]} of its PE {p}")
        queue.remove(w)
        self.starts["write_prog"][w] = t
        if w >= len(self.starts["write_dram"]):
            self._bad(t, f"WRITE {w} starts programming crossbar {x} before its DRAM transfer started")
        if self.running is not None and x in self.running[2]:
            e, s, _ = self.running
            self._bad(t, f"WRITE {w} starts programming crossbar {x} while COMPUTE {e} (started in cycle {s}) "
                         "reads it")
        old = self.cur.get(x)
        if old is not None and self.done_rows[old] < self.prog.writes[old].rows:
            self._bad(t, f"WRITE {w} starts programming crossbar {x} while WRITE {old} still programs it "
                         f"({self.done_rows[old]} of {self.prog.writes[old].rows} rows)")
        self.cur[x] = w
        self.held[x] = None  # from now on the crossbar holds part of the new tile

    def _commit(self, t: int, x: int, r: int) -> None:
        w = self.cur.get(x)
        if w is None:
            self._bad(t, f"row {r} of crossbar {x} is written with no WRITE of this run programming it")
            return
        wo, n = self.prog.writes[w], self.done_rows[w]
        if n >= wo.rows or r != n:
            self._bad(t, f"row {r} of crossbar {x} is written; WRITE {w} has {n} of its {wo.rows} rows written")
            return
        self.done_rows[w] = n + 1
        if n + 1 == wo.rows:
            self.starts["write_fin"][w] = t + 1
            self.held[x] = wo.tag


def compare_starts(starts: dict, write_times, exec_times) -> list[str]:
    """The first difference of each kind between the recorded starts and a golden run's
    ``write_times`` / ``exec_times`` (``sim_models.timing.Run``)."""
    exp = {"write_dram": [w[0] for w in write_times], "write_prog": [w[2] for w in write_times],
           "write_fin": [w[3] for w in write_times], "exec": [e[0] for e in exec_times]}
    what = {"write_dram": "WRITE {} DRAM start", "write_prog": "WRITE {} programming start",
            "write_fin": "WRITE {} B_fin (last row committed + 1)", "exec": "execute instruction {} start"}
    msgs = []
    for k in START_KINDS:
        got, want = list(starts[k]), [int(v) for v in exp[k]]
        i = next((i for i, (a, b) in enumerate(zip(got, want, strict=False)) if a != b), min(len(got), len(want)))
        if got != want:
            msgs.append(f"{what[k].format(i)}: cycle {got[i] if i < len(got) else 'never'}, golden "
                        f"{want[i] if i < len(want) else 'none'} ({len(got)} observed, {len(want)} golden)")
    return msgs


def _get(handle, name: str):
    """A net or instance of the generated design (the PE, APU and DRAM instances of ``hw/shared.py``)."""
    try:
        return getattr(handle, name)
    except AttributeError:
        raise AssertionError(f"hazard monitor: the design has no {handle._path}.{name} (a unit generated "
                             "inline instead of as an instance?)") from None


class Monitor:
    """Samples the design every cycle of a run and feeds a :class:`HazardChecker` (module docstring).
    :meth:`start` in cycle 0 of a run, :meth:`stop` once ``done`` rose or the run is cut."""

    def __init__(self, tb, cfg):
        self.tb, dut = tb, tb.dut
        self.checker = HazardChecker()
        self.per_pe = cfg.apus_per_pe * cfg.xbars_per_apu
        self.layout = tile_layout(cfg)
        self.exec_start, self.compute_done = _get(dut, "exec_start"), _get(dut, "compute_done")
        dram = _get(dut, "dram")
        self.dram = (_get(dram, "req__valid"), _get(dram, "req__ready"))
        # per PE: its issue lanes (valid, ready, payload) in lane order, its crossbars' (flat index, en, row)
        self.pes = []
        for p in range(cfg.n_pe):
            pe = _get(dut, f"pe{p}")
            lanes = [tuple(_get(pe, f"tile__{k}__{n}") for n in ("valid", "ready", "payload"))
                     for k in range(cfg.write_drivers_per_pe)]
            rows = [(p * self.per_pe + a * cfg.xbars_per_apu + k, _get(_get(pe, f"apu{a}"), f"wr__{k}__en"),
                     _get(_get(pe, f"apu{a}"), f"wr__{k}__row"))
                    for a in range(cfg.apus_per_pe) for k in range(cfg.xbars_per_apu)]
            self.pes.append((p, lanes, rows))
        self._task = None

    def start(self, prog: ProgramView) -> None:
        self.checker.begin(prog)
        self._task = cocotb.start_soon(self._run())

    def stop(self) -> HazardChecker:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        return self.checker

    async def _run(self):
        clk, chk, layout = self.tb.clk, self.checker, self.layout
        dv, dr = self.dram
        t = 0
        while True:
            await ReadOnly()
            c = Cycle(exec_start=bool(int(self.exec_start.value)), compute_done=bool(int(self.compute_done.value)),
                      dram_start=bool(int(dv.value) and int(dr.value)))
            for p, lanes, rows in self.pes:
                started = False
                for v, r, pay in lanes:
                    if int(v.value) and int(r.value):
                        f = layout.from_bits(int(pay.value))
                        c.prog_starts.append((p, int(f.xbar), (int(f.layer), int(f.t_group), int(f.t_row),
                                                               int(f.t_col))))
                        started = True
                # Sampling is most of the monitor's cost: a row commits only on a busy driver or one starting
                # now, and the last lane's ready says "every driver idle" (the write engine's registered state)
                if started or not int(lanes[-1][1].value):
                    c.commits += [(x, int(row.value)) for x, en, row in rows if int(en.value)]
            if c.exec_start or c.compute_done or c.dram_start or c.prog_starts or c.commits:
                chk.step(t, c)
            await RisingEdge(clk)
            t += 1
