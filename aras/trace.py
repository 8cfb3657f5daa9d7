"""Layer traces: the versioned on-disk form of a quantized network (docs/trace-format.md).

A trace directory holds ``trace.json`` (format, version, metadata, tensors with their quantization,
layers in execution order with attributes) and ``arrays.npz`` (int8 weights, int32 biases and
requantization multipliers/shifts, float host-op parameters, int8 input samples, labels). Loading
validates everything and names the file, layer and field of any problem.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import ArasError

FORMAT = "aras-trace"
VERSION = 1

CROSSBAR_OPS = ("conv2d", "linear")
VECTOR_OPS = ("maxpool", "avgpool", "gap", "add", "clamp", "leaky")
SHAPE_OPS = ("flatten", "reshape")
HOST_OPS = ("softmax", "layernorm", "gelu", "attention", "sigmoid", "hardsigmoid", "hardswish", "silu", "mul",
            "matmul", "transpose", "concat", "resize", "upsample", "slice")  # = aras.graph.HOST_OPS
ACTIVATIONS = ("none", "relu", "relu6", "clamp", "leaky", "prelu")

# Arrays every op must carry: name -> (dtype kind, required)
_ARRAYS = {
    "conv2d": {"weight": "i8", "bias": "i32", "mult": "i32", "shift": "i32"},
    "linear": {"weight": "i8", "bias": "i32", "mult": "i32", "shift": "i32"},
    "leaky": {"mult_id": "i32", "shift_id": "i32", "mult_alpha": "i32", "shift_alpha": "i32"},
    "layernorm": {"gamma": "f", "beta": "f"},
}


@dataclass
class TensorQ:
    """An int8 tensor's shape (without batch) and its affine quantization."""

    shape: tuple[int, ...]
    scale: float
    zero_point: int


@dataclass
class Layer:
    name: str
    op: str
    inputs: list[str]
    output: str
    attrs: dict = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def on_crossbars(self) -> bool:
        return self.op in CROSSBAR_OPS

    @property
    def on_host(self) -> bool:
        return self.op in HOST_OPS


@dataclass
class Trace:
    name: str
    weights: str  # "real" | "synthetic"
    input: str
    tensors: dict[str, TensorQ]
    layers: list[Layer]
    outputs: list[str]
    notes: str = ""
    samples: np.ndarray | None = None  # int8, (N,) + input shape
    labels: np.ndarray | None = None

    # ------------------------------------------------------------------ helpers
    @property
    def input_q(self) -> TensorQ:
        return self.tensors[self.input]

    def quantize_input(self, x: np.ndarray, source: str = "input") -> np.ndarray:
        """Float inputs (batch first, the model's layout) -> int8 with the input's scale/zero point."""
        from .quant import quantize

        x = np.asarray(x)
        if x.ndim != len(self.input_q.shape) + 1 or tuple(x.shape[1:]) != self.input_q.shape:
            raise ArasError(f"{source}: shape {tuple(x.shape)} does not match the model input "
                            f"(N, {', '.join(map(str, self.input_q.shape))})")
        if not np.issubdtype(x.dtype, np.number) or not np.isfinite(x).all():
            raise ArasError(f"{source}: inputs must be finite numbers")
        return quantize(x, self.input_q.scale, self.input_q.zero_point)

    def with_samples(self, samples: np.ndarray | None, labels: np.ndarray | None) -> Trace:
        t = Trace(self.name, self.weights, self.input, self.tensors, self.layers, self.outputs, self.notes,
                  samples, labels)
        t.validate("trace")
        return t

    def weight_layers(self) -> list[Layer]:
        return [ly for ly in self.layers if ly.on_crossbars]

    # ------------------------------------------------------------------ validation
    def validate(self, source: str = "trace"):
        def bad(where, why):
            raise ArasError(f"{source}: {where}: {why}")

        if self.weights not in ("real", "synthetic"):
            bad("field 'weights'", f"must be 'real' or 'synthetic', got {self.weights!r}")
        for name, t in self.tensors.items():
            _check_tensor(t.shape, t.scale, t.zero_point, lambda why, n=name: bad(f"tensor {n!r}", why))
        if self.input not in self.tensors:
            bad("field 'input'", f"tensor {self.input!r} is not declared")
        produced = {self.input}
        names = set()
        for ly in self.layers:
            where = f"layer {ly.name!r} ({ly.op})"
            if ly.name in names:
                bad(where, "duplicate layer name")
            names.add(ly.name)
            if ly.op not in CROSSBAR_OPS + VECTOR_OPS + SHAPE_OPS + HOST_OPS:
                bad(where, f"unsupported op {ly.op!r}")
            for t in ly.inputs + [ly.output]:
                if t not in self.tensors:
                    bad(where, f"tensor {t!r} is not declared")
            for t in ly.inputs:
                if t not in produced:
                    bad(where, f"input {t!r} is not produced by an earlier layer")
            if ly.output in produced:
                bad(where, f"output {ly.output!r} is produced twice")
            produced.add(ly.output)
            for aname, kind in _ARRAYS.get(ly.op, {}).items():
                a = ly.arrays.get(aname)
                if a is None:
                    bad(where, f"missing array {aname!r}")
                _check_kind(a, kind, lambda why, a_=aname, w_=where: bad(f"{w_}, array {a_!r}", why))
            _check_layer(self, ly, lambda why, w_=where: bad(w_, why))
        for o in self.outputs:
            if o not in produced:
                bad("field 'outputs'", f"{o!r} is not produced by any layer")
        if not self.outputs:
            bad("field 'outputs'", "empty")
        if self.samples is not None:
            s = self.samples
            if s.dtype != np.int8 or tuple(s.shape[1:]) != self.input_q.shape:
                bad("samples", f"must be int8 of shape (N, {self.input_q.shape}), got {s.dtype} {s.shape}")
            if self.labels is not None and (self.labels.ndim != 1 or len(self.labels) != len(s)):
                bad("labels", f"must be one label per sample ({len(s)}), got shape {self.labels.shape}")

    # ------------------------------------------------------------------ disk format
    def save(self, path: str | os.PathLike):
        """Write the trace directory atomically (a temporary directory renamed into place)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".trace-", dir=path.parent))
        try:
            arrays = {}
            layers = []
            for ly in self.layers:
                layers.append({"name": ly.name, "op": ly.op, "inputs": ly.inputs, "output": ly.output,
                               "attrs": ly.attrs, "arrays": sorted(ly.arrays)})
                for k, v in ly.arrays.items():
                    arrays[f"layers/{ly.name}/{k}"] = v
            if self.samples is not None:
                arrays["samples/input"] = self.samples
            if self.labels is not None:
                arrays["samples/labels"] = self.labels
            meta = {
                "format": FORMAT, "version": VERSION, "name": self.name, "weights": self.weights,
                "notes": self.notes, "input": self.input, "outputs": self.outputs,
                "tensors": {k: {"shape": list(t.shape), "scale": t.scale, "zero_point": t.zero_point}
                            for k, t in self.tensors.items()},
                "layers": layers,
            }
            (tmp / "trace.json").write_text(json.dumps(meta, indent=1, default=json_default) + "\n")
            np.savez_compressed(tmp / "arrays.npz", **arrays)
            tmp.chmod(0o755)  # mkdtemp makes it private; a trace is an ordinary readable directory
            if path.exists():
                shutil.rmtree(path)
            tmp.rename(path)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)

    @staticmethod
    def load(path: str | os.PathLike) -> Trace:
        path = Path(path)
        jf, af = path / "trace.json", path / "arrays.npz"
        if not path.is_dir():
            raise ArasError(f"{path}: not a trace directory")
        for f in (jf, af):
            if not f.exists():
                raise ArasError(f"{path}: missing {f.name}")
        try:
            meta = json.loads(jf.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ArasError(f"{jf}: corrupt JSON: {e}") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ArasError(f"{jf}: not an {FORMAT} file")
        if meta.get("version") != VERSION:
            raise ArasError(f"{jf}: trace version {meta.get('version')!r}, this build reads version {VERSION}")
        try:
            with np.load(af, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
            raise ArasError(f"{af}: corrupt array file: {e}") from None

        def bad_tensor(name, why):
            raise ArasError(f"{jf}: tensor {name!r}: {why}")

        try:
            tensors = {}
            for k, v in meta["tensors"].items():  # checked as written: 2.5 or true must not become 2 or 1
                _check_tensor(v["shape"], v["scale"], v["zero_point"], lambda why, k_=k: bad_tensor(k_, why))
                tensors[k] = TensorQ(tuple(int(d) for d in v["shape"]), float(v["scale"]), int(v["zero_point"]))
            layers = []
            for d in meta["layers"]:
                arrs = {}
                for k in d.get("arrays", []):
                    key = f"layers/{d['name']}/{k}"
                    if key not in arrays:
                        raise ArasError(f"{af}: layer {d['name']!r}: missing array {k!r}")
                    arrs[k] = arrays[key]
                layers.append(Layer(d["name"], d["op"], list(d["inputs"]), d["output"], dict(d.get("attrs", {})),
                                    arrs))
            t = Trace(meta["name"], meta["weights"], meta["input"], tensors, layers, list(meta["outputs"]),
                      meta.get("notes", ""), arrays.get("samples/input"), arrays.get("samples/labels"))
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ArasError(f"{jf}: malformed trace field: {e}") from None
        t.validate(str(path))
        return t


def json_default(o):
    """``json.dumps`` default for numpy scalars and arrays."""
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


# Bound of a tensor's element count (1 TiB of int8 per sample): element counts and what the models multiply
# them by (batch, kernel sizes, bytes) stay far inside int64; 2**32 x 2**32 would wrap to 0 in np.prod.
MAX_ELEMENTS = 1 << 40


def _is_int(v) -> bool:
    """A Python or numpy integer, not a bool (bool is an int in Python) and not a float such as 2.0."""
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_positive_finite(v) -> bool:
    """A real number in (0, float max]: not a bool, a string, NaN or Inf (nor an int too large for a float)."""
    if _is_int(v):
        return 0 < v <= float(np.finfo(np.float64).max)  # exact comparison, no conversion of a huge int
    return isinstance(v, (float, np.floating)) and bool(np.isfinite(v)) and v > 0


def _check_tensor(shape, scale, zero_point, bad):
    """A tensor's declared shape and quantization, as stored or as built in memory."""
    if not isinstance(shape, (list, tuple)) or not shape:
        bad(f"shape must be a non-empty list of positive integers, got {shape!r}")
    for i, d in enumerate(shape):
        if not _is_int(d) or d < 1:
            bad(f"shape {list(shape)}: dimension {i} must be a positive integer, got {d!r}")
    n = 1
    for d in shape:
        n *= int(d)
    if n > MAX_ELEMENTS:
        bad(f"shape {list(shape)} has {n} elements; at most 2**40 are supported")
    if not _is_positive_finite(scale):
        bad(f"scale must be positive and finite, got {scale!r}")
    if not _is_int(zero_point):
        bad(f"zero_point must be an integer in [-128, 127], got {zero_point!r}")
    if not -128 <= zero_point <= 127:
        bad(f"zero_point {zero_point} outside [-128, 127]")


def _check_kind(a: np.ndarray, kind: str, bad):
    ok = {"i8": a.dtype == np.int8, "i32": a.dtype == np.int32, "f": a.dtype.kind == "f"}[kind]
    if not ok:
        bad(f"dtype {a.dtype}, expected {kind}")
    if kind == "f" and not np.isfinite(a).all():
        bad("holds non-finite values")


def _int_attr(ly: Layer, key: str, bad, lo=None, hi=None) -> int:
    v = ly.attrs.get(key)
    if not isinstance(v, int) or isinstance(v, bool):
        bad(f"attribute {key!r} must be an integer, got {v!r}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        bad(f"attribute {key!r} = {v} outside [{lo}, {hi}]")
    return v


# Geometry attributes: (entries, least value); the shape rules below would truncate 1.5 to 1 silently.
_GEOMETRY = {"kernel": (2, 1), "stride": (2, 1), "dilation": (2, 1), "pads": (4, 0), "shape": (None, 1)}


def _check_geometry(ly: Layer, bad):
    for key, (n, lo) in _GEOMETRY.items():
        if key not in ly.attrs:
            continue
        v = ly.attrs[key]
        if not isinstance(v, (list, tuple)) or (n is not None and len(v) != n) or \
                not all(_is_int(d) and d >= lo for d in v):
            bad(f"attribute {key!r} must be {n or 'a list of'} integers >= {lo}, got {v!r}")
        if key == "shape":
            _check_tensor(v, 1.0, 0, lambda why: bad(f"attribute 'shape': {why}"))
    for key in ("groups", "heads"):
        if key in ly.attrs:
            _int_attr(ly, key, bad, 1, MAX_ELEMENTS)


def _check_layer(tr: Trace, ly: Layer, bad):
    """Shape and range checks per op (the functional model relies on them)."""
    from .graph import FNode, _infer

    _check_geometry(ly, bad)
    ins = [tr.tensors[t].shape for t in ly.inputs]
    out = tr.tensors[ly.output].shape
    a = ly.arrays
    if ly.op in CROSSBAR_OPS:
        w = a["weight"]
        if w.min(initial=0) < -127:
            bad("weight -128 is not allowed (weights are in [-127, 127])")
        cout = w.shape[0]
        for k in ("bias", "mult", "shift"):
            if a[k].shape != (cout,):
                bad(f"array {k!r} shape {a[k].shape} != ({cout},)")
        if ((a["shift"] < -31) | (a["shift"] > 30)).any():
            bad("array 'shift' outside [-31, 30]")
        act = ly.attrs.get("act", "none")
        if act not in ACTIVATIONS:
            bad(f"attribute 'act' = {act!r} not one of {ACTIVATIONS}")
        if act in ("leaky", "prelu"):
            for k in ("mult_neg", "shift_neg"):
                if k not in a or a[k].shape != (cout,) or a[k].dtype != np.int32:
                    bad(f"fused {act} needs int32 array {k!r} of shape ({cout},)")
    if ly.op in CROSSBAR_OPS or ly.op in ("maxpool", "avgpool", "gap", "add", "clamp"):
        lo = _int_attr(ly, "act_min", bad, -128, 127)
        hi = _int_attr(ly, "act_max", bad, -128, 127)
        if lo > hi:
            bad(f"act_min {lo} > act_max {hi}")
    if ly.op == "add":
        for k in ("m1", "m2", "mo"):
            _int_attr(ly, k, bad, -(1 << 31) + 1, (1 << 31) - 1)
        for k in ("s1", "s2", "so"):
            _int_attr(ly, k, bad, -31, 30)
        _int_attr(ly, "left_shift", bad, 0, 30)
    if ly.op in ("maxpool", "avgpool", "gap") and tr.tensors[ly.inputs[0]].scale != tr.tensors[ly.output].scale:
        bad("pooling must keep the input's scale and zero point")
    # Shapes: reuse the float graph's shape rules on a stand-in node.
    params = {}
    if ly.op in CROSSBAR_OPS:
        params = {"weight": a["weight"], "bias": a["bias"].astype(np.float64)}
    elif ly.op == "layernorm":
        params = {"gamma": a["gamma"], "beta": a["beta"]}
    fop = {"leaky": "clamp", "clamp": "clamp"}.get(ly.op, ly.op)
    try:
        got = _infer(FNode(ly.name, fop, ly.inputs, ly.output, ly.attrs, params), ins)
    except ArasError as e:
        bad(str(e).split(": ", 1)[-1])
    except (KeyError, ValueError, TypeError, IndexError) as e:
        bad(f"bad attributes: {e}")
    if tuple(got) != tuple(out):
        bad(f"output shape {out} does not match the computed {tuple(got)}")


def live_bytes(trace: Trace) -> list[tuple[str, int]]:
    """Per layer: bytes of int8 activations live while it runs (its inputs, its output and every
    tensor produced earlier and read later), for one sample."""
    size = {k: int(np.prod(t.shape)) for k, t in trace.tensors.items()}
    last = {trace.input: -1}
    for i, ly in enumerate(trace.layers):
        for t in ly.inputs:
            last[t] = i
    for o in trace.outputs:
        last[o] = len(trace.layers)
    born = {trace.input: -1}
    born.update({ly.output: i for i, ly in enumerate(trace.layers)})
    out = []
    for i, ly in enumerate(trace.layers):
        live = [t for t in born if born[t] <= i and last.get(t, born[t]) >= i]
        out.append((ly.name, sum(size[t] for t in live)))
    return out


def check_fits(trace: Trace, cfg) -> None:
    """Reject a config whose Gbuffer cannot hold some layer's live activations (x batch)."""
    for name, b in live_bytes(trace):
        need = b * cfg.batch
        if need > cfg.gbuf_bytes:
            raise ArasError(
                f"config {cfg.name!r}: Gbuffer too small for layer {name!r} of {trace.name}: needs {need} B of live "
                f"activations (batch {cfg.batch}), has {cfg.gbuf_bytes} B (fields 'gbuf_banks' x 'gbuf_bank_bytes')")
