"""On-disk cache of experiment results (``aras sweep``, ``compare``, ``dse``): one JSON file per task.

The key is a SHA-256 over everything a result depends on: the task function's name, the content of the
trace it runs on (every field, array and sample: :func:`trace_digest`), its arguments (config fields,
mode, scheduler options, ...: :func:`canonical`), and the bytes of every ``.py`` file of ``aras/`` and
``sim_models/`` (:func:`source_digest`), so an edited checkout -- committed or not -- never reads a result
of other code. Files live in ``$ARAS_CACHE/results/<2 hex>/<key>.json`` (default ``~/.cache/aras``, the
directory :func:`aras.fetch.cache_dir` gives). A file is written to a temporary name in its own directory
and renamed into place (``os.replace``), so concurrent writers -- several sweeps sharing a cache --
never leave a partial entry; a damaged or foreign entry reads as a miss and is recomputed.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np

FORMAT = "aras-result-cache"
VERSION = 1
_PKGS = ("aras", "sim_models")


@functools.lru_cache(maxsize=1)
def source_digest() -> str:
    """SHA-256 of the ``.py`` files of ``aras/`` and ``sim_models/`` (relative path and bytes, sorted)."""
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for pkg in _PKGS:
        for p in sorted((root / pkg).rglob("*.py")):
            if "__pycache__" in p.parts:
                continue
            h.update(p.relative_to(root).as_posix().encode() + b"\0")
            h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def _array_bytes(h, a: np.ndarray) -> None:
    a = np.ascontiguousarray(a)
    h.update(f"{a.dtype.str}{a.shape}".encode())
    h.update(memoryview(a).cast("B") if a.size else b"")


def trace_digest(tr) -> str:
    """SHA-256 of a :class:`~aras.trace.Trace`'s content: metadata, tensors, layers (attributes and
    arrays), samples and labels. Two traces with the same digest give the same results."""
    h = hashlib.sha256()
    meta = {"name": tr.name, "weights": tr.weights, "notes": tr.notes, "input": tr.input, "outputs": tr.outputs,
            "tensors": {k: [list(t.shape), t.scale, t.zero_point] for k, t in tr.tensors.items()},
            "layers": [[ly.name, ly.op, ly.inputs, ly.output, ly.attrs, sorted(ly.arrays)] for ly in tr.layers]}
    h.update(json.dumps(canonical(meta), sort_keys=True).encode())
    for ly in tr.layers:
        for k in sorted(ly.arrays):
            _array_bytes(h, ly.arrays[k])
    for a in (tr.samples, tr.labels):
        h.update(b"none" if a is None else b"array")
        if a is not None:
            _array_bytes(h, a)
    return h.hexdigest()


def canonical(o):
    """A JSON-ready, order-independent form of a task argument: configs by their fields, dataclasses
    by theirs, tuples as lists, numpy scalars as Python numbers, non-finite floats by name."""
    from .config import Config

    if isinstance(o, Config):
        return {"__config__": canonical(o.to_dict())}
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        return {f"__{type(o).__name__}__": canonical(dataclasses.asdict(o))}
    if isinstance(o, dict):
        return {str(k): canonical(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [canonical(v) for v in o]
    if isinstance(o, np.ndarray):
        return {"__array__": hashlib.sha256(np.ascontiguousarray(o).tobytes()).hexdigest(),
                "dtype": o.dtype.str, "shape": list(o.shape)}
    if isinstance(o, np.generic):
        return canonical(o.item())
    if isinstance(o, float) and not math.isfinite(o):
        return {"__float__": repr(o)}
    if o is None or isinstance(o, (bool, int, float, str)):
        return o
    raise TypeError(f"cannot key a cache entry on {type(o).__name__}")


def task_key(fn_name: str, trace: str | None, args) -> str:
    """The cache key of ``fn_name(trace, *args)``; ``trace`` is a :func:`trace_digest` or None."""
    body = {"format": FORMAT, "version": VERSION, "fn": fn_name, "trace": trace, "args": canonical(args),
            "source": source_digest()}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def default_root() -> Path:
    """``$ARAS_CACHE/results`` (default ``~/.cache/aras/results``)."""
    from .fetch import cache_dir

    return cache_dir() / "results"


class ResultCache:
    """Results by key under ``root`` (default :func:`default_root`); see the module docstring."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else default_root()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict | None:
        """The stored result, or None (absent, unreadable, damaged or another key's)."""
        try:
            d = json.loads(self.path(key).read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(d, dict) or d.get("format") != FORMAT or d.get("key") != key or "result" not in d:
            return None
        return d["result"]

    def put(self, key: str, result, task: dict | None = None) -> None:
        """Store ``result`` (JSON-ready) atomically; a cache that cannot be written is skipped silently
        (the result is still returned to the caller)."""
        p = self.path(key)
        text = json.dumps({"format": FORMAT, "version": VERSION, "key": key, "task": task, "result": result},
                          allow_nan=False, separators=(",", ":"))
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{p.stem[:16]}.", suffix=".tmp", dir=p.parent)
        except OSError:
            return
        try:
            with os.fdopen(fd, "w") as f:
                f.write(text)
            os.chmod(tmp, 0o644)
            os.replace(tmp, p)
        except OSError:
            pass
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
