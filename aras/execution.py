"""The execution layer of the multi-point commands (``aras sweep``, ``aras compare``, ``aras dse``).

A command builds a list of independent :class:`Task` s -- a module-level function, the trace it runs on
(by name, in a mapping given once) and its arguments -- and :func:`run` returns their results in the
order of the list, whatever order they finish in:

- ``jobs == 1`` (or when one worker is all the remaining runs or the free memory allow): one after the
  other in this process (no Dask);
- otherwise on **Dask distributed**: a local cluster of ``jobs`` worker processes (default: one per
  core, fewer when the machine's memory would not hold that many copies of the network, each worker's
  memory limit its share of the free memory: :func:`local_workers`), or the existing cluster whose
  scheduler ``scheduler`` names (``tcp://host:port``). Each trace is shipped to the workers once
  (``client.scatter``), not once per task; the longest tasks are submitted first.

Before anything runs, every task's result is looked up in the :class:`~aras.cache.ResultCache` (when
one is given); only the missing ones are computed, and each is stored as soon as it arrives, so an
interrupted run resumes where it stopped. A task that raises is reported as a :class:`Failure` (its
parameters and the error) and the others still complete; the caller decides what a failure means
(the command line exits non-zero at the end). Inside each task the wall and CPU time are measured, so
the CPU seconds a run costs include those spent on the workers (:attr:`Outcome.cpu_s`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import time
import traceback
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

import numpy as np

from .cache import ResultCache, source_digest, task_key, trace_digest
from .errors import ArasError

# Peak memory of one worker simulating one network (measured on paper, a process holding the unpickled
# trace): MiniLM-L6 (10.6 M crossbar weights) ~270 MB; VGG-16 (138 M weights) 1.83 GB ARAS, 2.14 GB baseline (and
# 4.9 GB in the process that builds or loads its trace from disk, which is the client, not a worker).
# 300 MB + 16 B per weight leaves room for the shipped copy and the result: 2.5 GB for VGG-16.
WORKER_BASE_BYTES = 300e6
WORKER_BYTES_PER_WEIGHT = 16.0


# ---------------------------------------------------------------------------------------------- tasks
@dataclass(frozen=True)
class Task:
    """One independent unit of work: ``fn(traces[trace], *args)`` (``fn(*args)`` when ``trace`` is None).

    ``fn`` must be a module-level function (workers import it by name); its result must be JSON-ready
    (what the cache stores). ``params`` says what the point is, for failure messages; ``cost`` orders
    the submission (largest first); ``cache=False`` never caches the task."""

    key: Hashable
    fn: Callable
    args: tuple = ()
    trace: str | None = None
    params: dict = field(default_factory=dict)
    cost: float = 1.0
    cache: bool = True


@dataclass
class Failure:
    """A task that raised: its key, its parameters, the error (``Type: message``) and the traceback."""

    key: Hashable
    params: dict
    error: str
    traceback: str = ""

    def describe(self) -> str:
        what = ", ".join(f"{k}={_show(v)}" for k, v in self.params.items()) or str(self.key)
        return f"{what}: {self.error}"


def _show(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


@dataclass
class Outcome:
    """What :func:`run` returns: ``results[i]`` of ``tasks[i]`` (None where it failed), the failures,
    how many results were computed and how many came from the cache, the CPU and wall seconds the
    computed tasks spent inside their functions (wherever they ran), and how they were run."""

    results: list
    failures: list[Failure]
    computed: int
    cached: int
    cpu_s: float
    task_wall_s: float
    wall_s: float
    workers: int
    backend: str

    def by_key(self, tasks: list[Task]) -> dict:
        return {t.key: r for t, r in zip(tasks, self.results, strict=True)}

    def summary(self) -> dict:
        """For a result file's ``execution`` field (run metadata, like the wall times)."""
        return {"backend": self.backend, "workers": self.workers, "tasks": len(self.results),
                "computed": self.computed, "cached": self.cached, "failed": len(self.failures),
                "cpu_s": self.cpu_s, "task_wall_s": self.task_wall_s, "wall_s": self.wall_s}


def fn_name(fn: Callable) -> str:
    return f"{fn.__module__}:{fn.__qualname__}"


def _call(fn: Callable, trace, args: tuple) -> dict:
    """Run one task where it was sent (this process or a worker) and time it there."""
    w0, c0 = time.perf_counter(), time.process_time()
    res = fn(*args) if trace is None else fn(trace, *args)
    return {"result": res, "wall_s": time.perf_counter() - w0, "cpu_s": time.process_time() - c0,
            "source": source_digest()}


# ---------------------------------------------------------------------------------------------- common tasks
def plain(o):
    """JSON-ready copy: numpy scalars and arrays to Python, tuples to lists, non-finite floats to None."""
    if isinstance(o, dict):
        return {str(k): plain(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [plain(v) for v in o]
    if isinstance(o, np.ndarray):
        return plain(o.tolist())
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.bool_):
        return bool(o)
    if isinstance(o, (float, np.floating)):
        return float(o) if math.isfinite(o) else None
    return o


def simulate_run(trace, cfg, mode: str, overrides: tuple = (), record_errors: bool = False) -> dict:
    """``sim_models.perf.simulate`` of ``trace`` on ``cfg`` in ``mode`` with the scheduler ``Options``
    overrides ``(field, value)``, JSON-ready, plus its ``wall_s``; with ``record_errors`` an ArasError
    (e.g. a point that does not fit) is the result ``{"error": ..., "mode": ...}``."""
    from sim_models.perf import simulate
    from sim_models.scheduler import Options

    t0 = time.perf_counter()
    try:
        opts = Options.for_mode(mode, **dict(overrides)) if mode in ("aras", "baseline") else None
        res = plain(simulate(trace, cfg, mode, opts))
    except ArasError as e:
        if not record_errors:
            raise
        res = {"error": str(e), "mode": mode}
    res["wall_s"] = time.perf_counter() - t0
    return res


# ---------------------------------------------------------------------------------------------- sizing
def mem_available() -> int | None:
    """Free memory of this machine (``MemAvailable``), bytes."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:
        return None


def worker_bytes(weights: int) -> float:
    """Estimated peak memory of a worker simulating a network of ``weights`` int8 weights."""
    return WORKER_BASE_BYTES + WORKER_BYTES_PER_WEIGHT * weights


def local_workers(jobs: int | None, n_tasks: int, weights: int) -> tuple[int, int | None]:
    """(worker processes, memory limit per worker in bytes or None) of a local run: ``jobs`` (default:
    all cores), at most one per task, and no more than 90 % of the free memory holds at
    :func:`worker_bytes` each; each worker may use its share of those 90 %."""
    n = jobs or os.cpu_count() or 1
    if n < 1:
        raise ArasError(f"jobs must be >= 1, got {jobs}")
    n = min(n, max(1, n_tasks))
    avail = mem_available()
    if not avail:
        return n, None
    if n > 1:
        n = max(1, min(n, int(0.9 * avail // worker_bytes(weights))))
    return n, int(0.9 * avail / n)


# ---------------------------------------------------------------------------------------------- run
def run(tasks: list[Task], traces: dict | None = None, *, jobs: int | None = None, scheduler: str | None = None,
        cache: ResultCache | None = None, progress: bool = True, desc: str = "runs", weights: int = 0) -> Outcome:
    """Results of ``tasks`` (see the module docstring). ``traces``: name -> Trace for the tasks' ``trace``;
    ``weights``: the largest network's weight count (sizes the local workers); ``desc``: the progress bar's
    label."""
    from tqdm import tqdm

    t0 = time.perf_counter()
    traces = traces or {}
    if scheduler is not None and jobs is not None:
        raise ArasError("--jobs and --scheduler: give one (the scheduler's cluster has its own workers)")
    results: list = [None] * len(tasks)
    keys: list[str | None] = [None] * len(tasks)
    cached = 0
    if cache is not None:
        digests = {name: trace_digest(traces[name]) for name in {t.trace for t in tasks if t.cache} - {None}}
        for i, t in enumerate(tasks):
            if not t.cache:
                continue
            keys[i] = task_key(fn_name(t.fn), digests.get(t.trace), t.args)
            r = cache.get(keys[i])
            if r is not None:
                results[i] = r
                cached += 1
    todo = sorted((i for i in range(len(tasks)) if results[i] is None), key=lambda i: -tasks[i].cost)
    failures: dict[int, Failure] = {}
    stats = {"cpu_s": 0.0, "wall_s": 0.0, "computed": 0}
    bar = tqdm(total=len(tasks), initial=cached, desc=desc, unit="run", disable=not progress, leave=False)

    def done(i: int, out: dict | None, err: Failure | None) -> None:
        if err is not None:
            failures[i] = err
            bar.set_postfix_str(f"{len(failures)} failed")
        else:
            if out["source"] != source_digest():
                failures[i] = Failure(tasks[i].key, tasks[i].params,
                                      "the worker runs other aras/sim_models sources than this checkout "
                                      f"({out['source'][:12]} vs {source_digest()[:12]})")
            else:
                results[i] = out["result"]
                stats["cpu_s"] += out["cpu_s"]
                stats["wall_s"] += out["wall_s"]
                stats["computed"] += 1
                if cache is not None and keys[i] is not None:
                    cache.put(keys[i], results[i], {"fn": fn_name(tasks[i].fn), "params": plain(tasks[i].params)})
        bar.update()

    try:
        if not todo:
            workers, backend = 0, "cache"
        elif scheduler is None and (jobs == 1 or local_workers(jobs, len(todo), weights)[0] == 1):
            # one worker (asked for, one run left, or memory for one copy only): no cluster to start
            workers, backend = 1, "serial"
            for i in todo:
                t = tasks[i]
                try:
                    out = _call(t.fn, traces[t.trace] if t.trace is not None else None, t.args)
                except Exception as e:
                    done(i, None, Failure(t.key, t.params, _error(e), traceback.format_exc()))
                else:
                    done(i, out, None)
        else:
            workers, backend = _run_dask(tasks, todo, traces, jobs, scheduler, weights, done)
    finally:
        bar.close()
    return Outcome(results, [failures[i] for i in sorted(failures)], stats["computed"], cached, stats["cpu_s"],
                   stats["wall_s"], time.perf_counter() - t0, workers, backend)


def _error(e: BaseException) -> str:
    """``Type: message`` on one line."""
    msg = " ".join(s.strip() for s in str(e).strip().splitlines())
    return f"{type(e).__name__}: {msg}" if msg else type(e).__name__


@contextlib.contextmanager
def _quiet_dask():
    """Dask's INFO logs (workers starting, connections closing) stay off the terminal."""
    loggers = [logging.getLogger(n) for n in ("distributed", "distributed.nanny", "distributed.scheduler",
                                              "distributed.core", "distributed.worker", "distributed.comm")]
    old = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, lv in zip(loggers, old, strict=True):
            lg.setLevel(lv)


def _connect(scheduler: str):
    from distributed import Client
    from distributed.comm import parse_address
    from distributed.comm.registry import get_backend

    try:
        scheme, loc = parse_address(scheduler)
        get_backend(scheme)
        if not loc:
            raise ValueError("no host:port")
    except ValueError as e:
        raise ArasError(f"--scheduler {scheduler}: not a scheduler address ({e}); e.g. tcp://host:8786") from None
    try:
        return Client(scheduler, timeout="20s", set_as_default=False)
    except (OSError, TimeoutError) as e:
        raise ArasError(f"--scheduler {scheduler}: cannot reach the Dask scheduler ({_error(e)})") from None


# Dask starts worker processes with MALLOC_TRIM_THRESHOLD_=65536 (to hand memory back to the OS), which
# turns off glibc's adaptive mmap threshold: every array over 128 KiB is then mmap'ed and unmapped, and
# the simulator spends twice the CPU time (measured: MiniLM-L6 baseline 1.6 s -> 3.3-3.8 s). Local
# clusters start their workers without it; workers of --scheduler that have it get a warning.
_TRIM = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"


def _worker_env() -> tuple[str, str | None]:
    return source_digest(), os.environ.get("MALLOC_TRIM_THRESHOLD_")


def _say(msg: str) -> None:
    """A line on stderr, above the progress bar."""
    from tqdm import tqdm

    tqdm.write(msg, file=sys.stderr)


def _check_workers(client, scheduler: str) -> int:
    """Wait for a worker (a cluster may still be starting) and check that every worker imports this
    checkout's aras and sim_models; returns the worker count."""
    if not client.scheduler_info()["workers"]:
        _say(f"aras: waiting for a worker to join the Dask scheduler {scheduler} ...")
        client.wait_for_workers(1)
    try:
        env = client.run(_worker_env)
    except Exception as e:  # a worker that cannot import aras, or one that died
        raise ArasError(f"Dask workers of {scheduler} cannot run aras: {_error(e)}") from None
    other = sorted(a for a, (d, _) in env.items() if d != source_digest())
    if other:
        raise ArasError(f"Dask worker{'s' * (len(other) > 1)} {', '.join(other)} of {scheduler} run other "
                        f"aras/sim_models sources than this checkout (source hash {source_digest()[:12]}); "
                        "run the same checkout on every worker, and restart them after changing it")
    trim = sorted(a for a, (_, t) in env.items() if t is not None)
    if trim:
        _say(f"aras: warning: {len(trim)} of {len(env)} Dask workers run with MALLOC_TRIM_THRESHOLD_ set, which "
             "about doubles the simulator's CPU time; start them without it (docs/dse.md)")
    return len(env)


def _run_dask(tasks, todo, traces, jobs, scheduler, weights, done) -> tuple[int, str]:
    with _quiet_dask(), contextlib.ExitStack() as stack:
        import dask
        from distributed import Client, LocalCluster, as_completed

        if scheduler is not None:
            client = stack.enter_context(_connect(scheduler))
            backend = f"dask scheduler {scheduler}"
        else:
            n, mem = local_workers(jobs, len(todo), weights)
            stack.enter_context(dask.config.set({_TRIM: None}))  # see _TRIM
            cluster = stack.enter_context(LocalCluster(
                n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0",
                memory_limit=mem if mem is not None else "auto", silence_logs=logging.ERROR))
            client = stack.enter_context(Client(cluster, set_as_default=False))
            backend = "local dask cluster"
            scheduler = cluster.scheduler_address
        workers = _check_workers(client, scheduler)
        names = sorted({tasks[i].trace for i in todo} - {None})
        shipped = {name: client.scatter(traces[name], broadcast=True, hash=False) for name in names}
        futures = {}
        for rank, i in enumerate(todo):
            t = tasks[i]
            f = client.submit(_call, t.fn, shipped[t.trace] if t.trace is not None else None, t.args,
                              priority=len(todo) - rank, pure=False)
            futures[f] = i
        try:
            for f in as_completed(list(futures), loop=client.loop):
                i = futures.pop(f)
                t = tasks[i]
                if f.status == "finished":
                    done(i, f.result(), None)
                else:
                    try:
                        exc = f.exception()
                        tb = "".join(traceback.format_tb(f.traceback())) if f.traceback() else ""
                        err = _error(exc)
                        if type(exc).__name__ == "KilledWorker":
                            err += " (the worker died running it, e.g. out of memory)"
                    except Exception as e:  # cancelled: the cluster went away
                        err, tb = _error(e) or f.status, ""
                    done(i, None, Failure(t.key, t.params, err, tb))
                f.release()
        except BaseException:
            client.cancel(list(futures))
            raise
        return workers, backend


# ---------------------------------------------------------------------------------------------- results
VOLATILE = ("provenance", "wall_s", "jobs", "execution", "simulate_s")


def strip_volatile(o):
    """A result file's content without what differs from run to run of the same command -- the date
    (``provenance``), wall and CPU times, and how the runs ran (``jobs``, ``execution``) -- at any depth:
    what must be identical whether the runs ran serially, on a cluster or came from the cache."""
    if isinstance(o, dict):
        return {k: strip_volatile(v) for k, v in o.items() if k not in VOLATILE}
    if isinstance(o, list):
        return [strip_volatile(v) for v in o]
    return o
