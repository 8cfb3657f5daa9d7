#!/usr/bin/env python3
"""Long random regression of the generated RTL against the golden model (cocotb; Verilator when installed,
else Icarus; ``$SIM`` picks).

Configs: presets (``--presets tiny tiny-adc``) and ``--configs N`` random small ones from ``--config-seed``:
``tiny`` with random crossbar rows/columns, PEs, APUs per PE, crossbars per APU, write drivers per PE, ADC
bits (exact, or clipping like ``tiny-adc``) and write-buffer slots. Every draw is validated like any config
(``aras.config``, ``hw.top.check_buildable``) and kept within :data:`SIZE` so that its Verilator build stays
a few minutes; a rejected draw is redrawn. Each config is built once (the content-hashed build cache) and
runs ``--n`` random cases (kind x mode x seed, drawn per case slot from ``--seed`` and the config's name, so
a chain can be rerun alone) in chains of ``--chain`` per simulator process (``system.run_cases``: each case
starts from the cells the previous one left). The first ``--disturbed`` cases form a chain of their own
with random DRAM stalls and a late host (outputs and untimed counters exact, cycles only grow); LeNet-5
test digits (``--lenet-digits``) run on the first config, ``--chunk`` back-to-back runs per process (the
first cold, the others steady state). When a chain fails, its cases after the failing one run again as a
new chain (from cold cells).

Prints every config's fields, the pass/fail table (also ``table.txt`` and ``results.json`` in the work
directory), per-config totals, every failure with its seeds and the command that reruns its chain, the
functional coverage (start kind x mode x deciding rule over the passing undisturbed runs,
``verif/testbench/coverage.py``) with its empty reachable bins and, with ``--coverage``, Verilator line and
toggle coverage merged over every simulator run (``merged.dat``). Exit status 1 if any case failed.

    .venv/bin/python scripts/regress.py --presets tiny tiny-adc --n 20 --lenet-digits 10 -o out/regress
    .venv/bin/python scripts/regress.py --configs 3 --config-seed 1 --n 40 --coverage -o out/cov
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import random
import re
import resource
import shlex
import sys
import tempfile
import time
import zlib
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aras.config import Config, load, preset  # noqa: E402
from aras.errors import ArasError  # noqa: E402
from hw.top import check_buildable  # noqa: E402
from sim_models import hazards  # noqa: E402
from sim_models.scheduler import MODES  # noqa: E402
from verif.testbench import coverage, runner, system  # noqa: E402
from verif.testbench.system_vectors import TOP_PARAMS, Case, make_case, top_params  # noqa: E402

KINDS = ("conv", "fc", "mlp", "rand", "rand")  # rand: random networks over shapes, drawn twice as often
# Random configs: tiny's fields but these. SIZE bounds the generated top: tiny has 8 crossbars of 256
# cells; twice its cells keeps one Verilator build at a few minutes on 2 cores (4-5 with coverage).
SPACE = {"xbar_rows": (16, 32), "xbar_cols": (16, 32), "n_pe": (1, 2, 3), "apus_per_pe": (1, 2),
         "xbars_per_apu": (1, 2, 4), "write_drivers_per_pe": (1, 2, 3), "adc_bits": tuple(range(3, 9)),
         "adc_exact": (True, False), "wbuf_slots": (1, 2, 3)}
SIZE = {"crossbars": 8, "cells": 4096}
CASE_DRAWS = 20  # per case slot: kinds that do not fit the chip or the build are redrawn


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        self.exit(2, f"{self.prog}: error: {message}\n")


def die(msg: str) -> None:
    print(f"regress.py: error: {msg}", file=sys.stderr)
    sys.exit(2)


# ---------------------------------------------------------------- configs
def config_name(f: dict) -> str:
    return (f"r{f['xbar_rows']}x{f['xbar_cols']}-pe{f['n_pe']}a{f['apus_per_pe']}x{f['xbars_per_apu']}"
            f"-d{f['write_drivers_per_pe']}-adc{f['adc_bits']}{'e' if f['adc_exact'] else 'c'}-wb{f['wbuf_slots']}")


def draw_config(rng: random.Random) -> Config:
    """One random small config (raises ``ArasError`` if the draw is invalid or too big)."""
    f = {k: rng.choice(v) for k, v in SPACE.items()}
    tiny = preset("tiny")
    slots = f.pop("wbuf_slots")
    tile = f["xbar_rows"] * (f["xbar_cols"] // tiny.slices)  # bytes of the largest tile
    cfg = tiny.replace(name=config_name({**f, "wbuf_slots": slots}), write_buffer_bytes=slots * tile, **f)
    check_buildable(cfg)
    cells = cfg.n_xbars * cfg.xbar_rows * cfg.xbar_cols
    if cfg.n_xbars > SIZE["crossbars"] or cells > SIZE["cells"]:
        raise ArasError(f"config {cfg.name!r}: {cfg.n_xbars} crossbars, {cells} cells exceed the regression's "
                        f"size ({SIZE['crossbars']} crossbars, {SIZE['cells']} cells)")
    return cfg


def draw_configs(n: int, seed: int) -> tuple[list[Config], Counter]:
    """``n`` distinct valid configs and why the rejected draws were rejected."""
    rng, out, rejected = random.Random(seed), [], Counter()
    while len(out) < n:
        try:
            cfg = draw_config(rng)
        except ArasError as e:
            m = re.search(r"field '(\w+)'", str(e))
            rejected[m.group(1) if m else "size"] += 1
            continue
        if all(c.name != cfg.name for c in out):
            out.append(cfg)
    return out, rejected


def config_row(cfg: Config) -> str:
    kind = "exact" if cfg.adc_exact else ("clipping" if cfg.adc_bits < cfg.adc_exact_bits else "unclipped")
    return (f"{cfg.name:28} {cfg.xbar_rows:>4}x{cfg.xbar_cols:<3} {cfg.n_pe:>3} {cfg.apus_per_pe:>5} "
            f"{cfg.xbars_per_apu:>6} {cfg.n_xbars:>6} {cfg.n_xbars * cfg.xbar_rows * cfg.xbar_cols:>6} "
            f"{cfg.write_drivers_per_pe:>8} {cfg.adc_bits:>3}/{cfg.adc_exact_bits:<3} {kind:9} "
            f"{cfg.write_buffer_bytes:>5} ({cfg.write_buffer_slots})")


CONFIG_HEAD = (f"{'config':28} {'xbar':>8} {'PEs':>3} {'APU/PE':>5} {'xb/APU':>6} {'xbars':>6} {'cells':>6} "
               f"{'drivers':>8} {'ADC/exact':>9} {'ADC':9} {'wbuf B (slots)'}")


# ---------------------------------------------------------------- plan
@dataclasses.dataclass
class Chain:
    id: str  # <config>:<k> (exact), <config>:d (disturbed), <config>:lenet<k>
    cfg: Config
    slots: list[int]  # case slots (random cases) or [] for a LeNet-5 chunk
    kw: dict  # system.vectors options of every case (disturbance)
    tb_seed: int
    lenet: tuple[int, int] | None = None  # (chunk seed, runs)

    @property
    def check(self) -> str:
        return "disturbed" if self.kw else "exact"


@dataclasses.dataclass
class Row:
    config: str
    chain: str
    case: str
    seed: int
    runs: int
    check: str
    verdict: str  # pass, FAIL, not run, skip
    cycles: int | None = None
    cpu_s: float | None = None
    tb_seed: int = 0
    why: str = ""


def plan(cfgs: list[Config], args) -> list[Chain]:
    chains = []
    for ci, cfg in enumerate(cfgs):
        def tb_seed(tag, cfg=cfg):
            return zlib.crc32(f"{args.seed}/{cfg.name}/{tag}".encode()) & 0xFFFF
        d = min(args.disturbed, args.n)
        if d:
            chains.append(Chain(f"{cfg.name}:d", cfg, list(range(d)), {"stall": 0.3, "host_delay": 0.5},
                                tb_seed("d")))
        for k, first in enumerate(range(d, args.n, args.chain)):
            chains.append(Chain(f"{cfg.name}:{k}", cfg, list(range(first, min(first + args.chain, args.n))), {},
                                tb_seed(k)))
        if ci == 0:
            for k, first in enumerate(range(0, args.lenet_digits, args.chunk)):
                # trace_case takes samples seed*runs ...: chunks of equal size tile the test set
                n = min(args.chunk, args.lenet_digits - first)
                chains.append(Chain(f"{cfg.name}:lenet{k}", cfg, [], {}, tb_seed(f"lenet{k}"),
                                    (first // args.chunk, n)))
    return chains


def draw_case(cfg: Config, seed: int, slot: int) -> tuple[Case, int]:
    """The case of ``slot`` (its own rng: independent of the other slots) and how many draws it took.
    Kinds that do not schedule on the chip or do not fit the build (``TOP_PARAMS``) are redrawn."""
    rng = random.Random(f"{seed}/{cfg.name}/{slot}")
    why = ""
    for k in range(CASE_DRAWS):
        name, s = f"{rng.choice(KINDS)}@{rng.choice(list(MODES))}", rng.randrange(1 << 16)
        try:
            case = make_case(name, cfg, s)
        except ArasError as e:
            why = str(e)
            continue
        if top_params(case, cfg) == TOP_PARAMS:
            return case, k + 1
        why = f"{name} seed {s} does not fit the build's {TOP_PARAMS}"
    raise ArasError(f"no case of slot {slot} fits {cfg.name} in {CASE_DRAWS} draws (last: {why})")


# ---------------------------------------------------------------- running
@contextlib.contextmanager
def output_to(path: Path, verbose: bool):
    """The simulator's and the runner's output (file descriptors 1 and 2, children included) into ``path``."""
    if verbose:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "ab") as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def _failed_index(rec: dict, err: str) -> int | None:
    """Slot of the case that failed: the one whose run has mismatches in the report, else the one the error
    names (a testbench exception writes no report), else None."""
    for c in rec.get("cases", []):
        if any(r.get("mismatches") for r in c["runs"]):
            return int(c["case"].rsplit("#", 1)[1])
    m = re.search(r"#(\d+) on ", err)
    return int(m.group(1)) if m else None


class Regression:
    def __init__(self, work: Path, verbose: bool):
        self.work, self.verbose = work, verbose
        self.func = coverage.Functional()
        self.dats: dict[str, list[Path]] = {}  # config -> coverage.dat of every simulator run
        self.sim_cpu = 0.0  # CPU seconds of the simulator processes
        self.sim_runs = 0
        self.redraws = 0  # case draws that did not schedule or fit the build

    def run(self, chain: Chain, cases: list[tuple[int, Case]], rows: list[Row]) -> None:
        """Run ``cases`` ((slot, case), in order) as ``chain``; a failure reruns the cases after it."""
        cfg, pending, attempt = chain.cfg, list(cases), 0
        while pending:
            d = self.work / chain.id.replace(":", "_") / f"run{attempt}"
            tagged = [dataclasses.replace(c, name=f"{c.name}#{i}") for i, c in pending]  # unique labels
            err = ""
            t0 = time.perf_counter()
            with output_to(d / "sim.log", self.verbose):
                try:
                    rec = system.run_cases(tagged, cfg, None, d, tb_seed=chain.tb_seed, **chain.kw)
                except AssertionError as e:
                    err = str(e)
                    report = d / "report.json"
                    rec = json.loads(report.read_text()) if report.is_file() else {"cases": []}
            self.sim_cpu += rec.get("cpu_s", 0.0)
            self.sim_runs += 1
            if (d / runner.COVERAGE_FILE).is_file():
                self.dats.setdefault(cfg.name, []).append(d / runner.COVERAGE_FILE)
            got = {int(c["case"].rsplit("#", 1)[1]): c for c in rec.get("cases", [])}
            bad = _failed_index(rec, err) if err else None
            if err and bad is None:  # the failing case is unknown: nothing of this chain counts as passed
                rows += [self._row(chain, c, "not run", why="chain failed, case unknown") for _, c in pending]
                rows.append(dataclasses.replace(self._row(chain, pending[0][1], "FAIL", why=err[:400]), case="(chain)"))
                print(f"  {chain.id} run {attempt}: FAILED, failing case unknown; log {d / 'sim.log'}", flush=True)
                return
            pos = len(pending) if bad is None else [i for i, _ in pending].index(bad)
            passed = pending[:pos]
            for i, c in passed:
                runs = got.get(i, {}).get("runs", [])
                rows.append(self._row(chain, c, "pass", sum(r["cycles"][1] for r in runs) if runs else None,
                                      sum(r["cpu_s"] for r in runs) if runs else None))
            if not chain.kw:  # the starts the passing cases checked, from the cells their chain began with
                self._count([c for _, c in passed], cfg)
            note = f"{len(passed)} passed"
            if bad is not None:
                i, c = pending[pos]
                rows.append(self._row(chain, c, "FAIL", why=err[:400]))
                note += f", {c.name} (slot {i}, seed {c.seed}) FAILED; log {d / 'sim.log'}"
            print(f"  {chain.id} run {attempt}: {note} ({time.perf_counter() - t0:.0f} s, "
                  f"{rec.get('cpu_s', 0.0):.0f} simulator CPU-s)", flush=True)
            pending = pending[pos + 1:]
            attempt += 1

    def _count(self, cases: list[Case], cfg: Config) -> None:
        initial = None
        for c in cases:
            mode = c.name.partition("@")[2] or "aras"
            for _ in range(len(c.inputs)):
                res = hazards.analyse(c.trace, c.prog, cfg, initial)
                self.func.add(mode, res.starts, cfg.write_drivers_per_pe)
                initial = res.run.final_levels

    @staticmethod
    def _row(chain: Chain, case: Case, verdict: str, cycles=None, cpu=None, why="") -> Row:
        return Row(chain.cfg.name, chain.id, case.name, case.seed, len(case.inputs), chain.check, verdict, cycles,
                   cpu, chain.tb_seed, why)


def rerun_command(args, chain_id: str, sim: str) -> str:
    parts = [f"SIM={sim}", ".venv/bin/python", "scripts/regress.py"]
    if args.presets:
        parts += ["--presets", *args.presets]
    if args.configs:
        parts += ["--configs", str(args.configs), "--config-seed", str(args.config_seed)]
    parts += ["--n", str(args.n), "--seed", str(args.seed), "--chain", str(args.chain), "--disturbed",
              str(args.disturbed)]
    if args.lenet_digits:
        parts += ["--lenet-digits", str(args.lenet_digits), "--chunk", str(args.chunk)]
    if args.coverage:
        parts.append("--coverage")
    return shlex.join(parts + ["--only", chain_id])


def table(rows: list[Row]) -> str:
    out = [f"{'config':28} {'chain':34} {'case':22} {'seed':>6} {'runs':>4} {'check':9} {'verdict':7} "
           f"{'cycles':>8} {'CPU-s':>6}"]
    for r in rows:
        cyc = "" if r.cycles is None else r.cycles
        cpu = "" if r.cpu_s is None else f"{r.cpu_s:.1f}"
        out.append(f"{r.config:28} {r.chain:34} {r.case:22} {r.seed:>6} {r.runs:>4} {r.check:9} {r.verdict:7} "
                   f"{cyc:>8} {cpu:>6}" + (f"  {r.why}" if r.why and r.verdict != "not run" else ""))
    return "\n".join(out)


def totals(rows: list[Row], cfgs: list[Config]) -> str:
    out = [f"{'config':28} {'cases':>6} {'pass':>6} {'FAIL':>5} {'not run':>7} {'skip':>5} {'cycles':>10} "
           f"{'sim CPU-s':>9}"]
    for name in [c.name for c in cfgs] + ["all"]:
        rs = [r for r in rows if name in ("all", r.config) and r.case != "(chain)"]
        v = Counter(r.verdict for r in rs)
        fails = v["FAIL"] + sum(r.case == "(chain)" and name in ("all", r.config) for r in rows)
        out.append(f"{name:28} {len(rs):>6} {v['pass']:>6} {fails:>5} {v['not run']:>7} {v['skip']:>5} "
                   f"{sum(r.cycles or 0 for r in rs):>10} {sum(r.cpu_s or 0 for r in rs):>9.0f}")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = Parser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--presets", nargs="+", default=[], metavar="NAME", help="preset configs or config files "
                    "(default tiny unless --configs)")
    ap.add_argument("--configs", type=int, default=0, metavar="N", help="random small configs to draw")
    ap.add_argument("--config-seed", type=int, default=1, help="draws the random configs (default 1)")
    ap.add_argument("--n", type=int, default=10, help="random cases per config (default 10)")
    ap.add_argument("--seed", type=int, default=1, help="draws kinds, modes and case seeds (default 1)")
    ap.add_argument("--chain", type=int, default=50, help="cases per simulator process (default 50)")
    ap.add_argument("--disturbed", type=int, default=2, help="of the random cases, how many disturbed (default 2)")
    ap.add_argument("--lenet-digits", type=int, default=0, help="LeNet-5 test digits on the first config")
    ap.add_argument("--chunk", type=int, default=5, help="LeNet-5 digits per simulator process (default 5)")
    ap.add_argument("--coverage", action="store_true", help="Verilator line/toggle coverage (a build of its own)")
    ap.add_argument("--only", nargs="+", metavar="CHAIN", help="run only these chains (ids as in the table)")
    ap.add_argument("-v", "--verbose", action="store_true", help="show the simulator output (default: a log "
                    "per chain in the work directory)")
    ap.add_argument("-o", "--out", help="work directory (default: a temporary one)")
    args = ap.parse_args(argv)
    for name, lo in (("n", 0), ("configs", 0), ("chain", 1), ("disturbed", 0), ("lenet_digits", 0), ("chunk", 1)):
        if getattr(args, name) < lo:
            die(f"--{name.replace('_', '-')} must be >= {lo}, got {getattr(args, name)}")
    if not args.presets and not args.configs:
        args.presets = ["tiny"]
    try:
        sim = runner.simulator()
        cfgs = [load(n) for n in args.presets]
        for c in cfgs:
            check_buildable(c)
    except (ValueError, ArasError) as e:
        die(str(e))
    if len({c.name for c in cfgs}) < len(cfgs):
        die(f"--presets names a config twice: {' '.join(args.presets)}")
    if args.coverage:
        if sim != "verilator":
            die(f"--coverage needs Verilator (line/toggle coverage), the simulator is {sim}")
        os.environ["ARAS_COVERAGE"] = "1"  # runner.build reads it: system.py builds with coverage
    if (why := runner.unusable(sim)) is not None:
        die(f"SIM={sim} cannot run: {why}")
    drawn, rejected = draw_configs(args.configs, args.config_seed)
    cfgs += drawn
    chains = plan(cfgs, args)
    if args.only:
        ids = {c.id for c in chains}
        unknown = [i for i in args.only if i not in ids]
        if unknown:
            die(f"unknown chain {unknown[0]!r}; this plan has {', '.join(sorted(ids)[:6])}{' ...' * (len(ids) > 6)}")
        chains = [c for c in chains if c.id in args.only]
    work = Path(args.out or tempfile.mkdtemp(prefix="aras-regress-"))
    work.mkdir(parents=True, exist_ok=True)
    (work / "configs.json").write_text(json.dumps({c.name: c.to_dict() for c in cfgs}, indent=1))

    print(f"simulator {sim} {runner.simulator_version(sim)}{', line/toggle coverage' if args.coverage else ''}; "
          f"{len(cfgs)} configs ({len(drawn)} random from --config-seed {args.config_seed}"
          + (f", {sum(rejected.values())} draws rejected: "
             + ", ".join(f"{k} {n}" for k, n in rejected.most_common()) if rejected else "") + ")")
    print(CONFIG_HEAD)
    for c in cfgs:
        print(config_row(c))
    print(f"(other fields as tiny; fields of every config in {work / 'configs.json'})\n", flush=True)

    reg = Regression(work, args.verbose)
    rows: list[Row] = []
    cpu0, t0 = time.process_time(), time.perf_counter()
    broken: dict[str, str] = {}  # config -> why its design could not be built
    for k, chain in enumerate(chains):
        cfg = chain.cfg
        if cfg.name not in broken and not any(c.cfg.name == cfg.name for c in chains[:k]):
            try:
                with output_to(work / f"build_{cfg.name}.log", args.verbose):
                    d = system.design(cfg)  # cached: run_cases gets this build
                print(f"{cfg.name}: {f'built in {d.build_s:.0f} s' if d.build_s else 'build from the cache'} "
                      f"{d.build_dir}", flush=True)
            except (AssertionError, ArasError, ValueError) as e:
                broken[cfg.name] = str(e).splitlines()[0][:300]
                rows.append(Row(cfg.name, chain.id, "(build)", 0, 0, "", "FAIL", why=broken[cfg.name]))
                print(f"{cfg.name}: BUILD FAILED: {broken[cfg.name]}", flush=True)
        cases = []
        for slot in chain.slots or [0]:
            label = "lenet5@aras" if chain.lenet else f"slot {slot}"
            try:
                if chain.lenet:
                    case = make_case("lenet5", cfg, *chain.lenet)
                    if top_params(case, cfg) != TOP_PARAMS:
                        raise ArasError(f"LeNet-5 does not fit the build's {TOP_PARAMS} on {cfg.name}")
                else:
                    case, draws = draw_case(cfg, args.seed, slot)
                    reg.redraws += draws - 1
                cases.append((slot, case))
            except ArasError as e:
                rows.append(Row(cfg.name, chain.id, label, 0, 0, chain.check, "skip", why=str(e)[:300]))
            except Exception as e:  # the golden side failed on a valid draw: a finding, not a skip
                rows.append(Row(cfg.name, chain.id, label, 0, 0, chain.check, "FAIL",
                                why=f"golden model: {type(e).__name__}: {e}"[:300]))
        print(f"[{k + 1}/{len(chains)}] {chain.id}: {len(cases)} cases ({chain.check}), testbench seed "
              f"{chain.tb_seed}", flush=True)
        if cfg.name in broken:
            rows += [reg._row(chain, c, "not run", why=broken[cfg.name]) for _, c in cases]
        elif cases:
            reg.run(chain, cases, rows)
    wall = time.perf_counter() - t0
    children = resource.getrusage(resource.RUSAGE_CHILDREN)

    text = table(rows)
    (work / "table.txt").write_text(text + "\n")
    print("\n" + text)
    print("\n" + totals(rows, cfgs))
    fails = [r for r in rows if r.verdict == "FAIL"]
    for r in fails:
        print(f"\nFAIL {r.config} chain {r.chain}: {r.case} seed {r.seed} (testbench seed {r.tb_seed}): {r.why}\n"
              f"  rerun: {rerun_command(args, r.chain, sim)}")
    n_case = sum(r.case not in ("(chain)", "(build)") for r in rows)
    print(f"\n{n_case} cases, {sum(r.verdict == 'pass' for r in rows)} passed, {len(fails)} failed, "
          f"{sum(r.verdict == 'not run' for r in rows)} not run, {sum(r.verdict == 'skip' for r in rows)} skipped "
          f"({reg.redraws} case draws redrawn: no fit); "
          f"{reg.sim_runs} simulator processes, {reg.sim_cpu:.0f} simulator CPU-s; all child processes "
          f"{children.ru_utime + children.ru_stime:.0f} CPU-s (builds included), this process "
          f"{time.process_time() - cpu0:.0f} CPU-s; {wall:.0f} s wall")

    print(f"\nfunctional coverage: starts decided per kind x mode x rule, {sum(reg.func.cases.values())} passing "
          f"undisturbed runs (0: an empty reachable bin; '.': reached only through earlier instructions)")
    print(reg.func.table())
    empty = reg.func.empty()
    by_rule: dict[tuple[str, str], list[str]] = {}
    for k, m, r in empty:
        by_rule.setdefault((k, r), []).append(m)
    print(f"empty reachable bins: {len(empty)} of {len(reg.func.reachable_bins())} (kind x rule: modes)"
          + "".join(f"\n  {k} x {r}: {'every mode' if len(ms) == len(MODES) else ', '.join(ms)}"
                    for (k, r), ms in by_rule.items()))
    result = {"argv": sys.argv[1:], "simulator": sim, "configs": [c.name for c in cfgs],
              "rows": [dataclasses.asdict(r) for r in rows], "functional": reg.func.to_dict(),
              "sim_cpu_s": reg.sim_cpu, "wall_s": wall}
    if args.coverage:
        dats = [p for ps in reg.dats.values() for p in ps]
        if dats:
            points = coverage.merge_dat(dats)
            coverage.write_dat(points, work / "merged.dat")
            summ = coverage.code_summary(points)
            per_cfg = {name: coverage.code_summary(coverage.merge_dat(ps))["types"] for name, ps in reg.dats.items()}
            print(f"\nVerilator coverage, {len(dats)} runs merged ({work / 'merged.dat'}); per config:")
            for name, types in per_cfg.items():
                print(f"  {name:28} " + "  ".join(f"{t} {100 * types[t][0] / types[t][1]:.1f} %"
                                                  for t in ("line", "branch", "toggle") if t in types))
            print(coverage.code_table(summ))
            (work / "coverage_modules.txt").write_text(coverage.code_table(summ, "modules") + "\n")
            print(f"(per module: {work / 'coverage_modules.txt'})")
            result["code_coverage"] = {"per_config": per_cfg, **summ}
        else:
            print("\nVerilator coverage: no coverage.dat was written")
    (work / "results.json").write_text(json.dumps(result, indent=1))
    print(f"\nwork directory {work}")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
