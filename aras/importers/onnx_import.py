"""ONNX importer: a float (or int8 QDQ) ONNX model to a :class:`aras.graph.FloatGraph`.

:func:`load_onnx` reads a file, :func:`from_model` converts an in-memory ``onnx.ModelProto``.
The model must have exactly one graph input (initializers aside) whose first dimension is the
batch (symbolic or fixed); every other dimension must be a number.

Operator coverage (default ONNX domain, any opset the installed ``onnx`` package knows):

- ``Conv`` (2-D; groups, depthwise, dilations, explicit pads, ``auto_pad`` NOTSET / VALID /
  SAME_UPPER / SAME_LOWER) -> ``conv2d``; ``Gemm`` (``transB``, ``alpha``, ``beta``; no
  ``transA``) and ``MatMul`` with a constant (K, N) right operand -> ``linear`` (weight = B.T).
- ``Add``: two activations -> ``add``; activation + constant right after a ``conv2d``/``linear``
  whose output has no other use, broadcasting per output channel -> folded into that bias.
- ``BatchNormalization`` directly after a ``conv2d`` (or a ``linear`` with a flat output) whose
  output has no other use -> folded into its weight and bias, in float64 and kept in float64 (a
  missing bias is created). A BN anywhere else is an error naming the node: folding it into a
  *following* conv is not exact when that conv zero-pads, so it is not attempted.
- ``Relu``; ``Clip`` (bounds as attributes or constant inputs): (0, 6) -> ``relu6``,
  (0, +inf) -> ``relu``, otherwise ``clamp``; ``LeakyRelu``; ``PRelu`` with a per-channel
  (axis 1) or scalar slope.
- ``MaxPool`` / ``AveragePool`` (pads, strides, ``auto_pad``, ``count_include_pad``).
  ``ceil_mode=1`` is ignored when it gives the floor-mode output shape; otherwise max pool gets
  extra bottom/right padding (-inf, so exact) and average pool is rejected (its divisor for the
  windows running past the padding is runtime-specific). ``GlobalAveragePool`` and ``ReduceMean`` over
  (H, W) -> ``gap`` (+ ``flatten`` when ``keepdims=0``); ``GlobalMaxPool`` -> whole-map ``maxpool``.
- ``Flatten`` (axis 1), ``Reshape`` (constant target keeping the batch first: 0, -1 and a copy of
  a fixed batch size are understood), ``Softmax`` (axis of the unbatched shape; opset < 13 only
  where the legacy 2-D coercion equals a single-axis softmax).
- ``Identity``, ``Dropout`` (inference) are removed.
- Constants: initializers, ``Constant`` nodes, and small constant subgraphs (``Shape`` of an
  activation, ``Gather``, ``Unsqueeze``, ``Squeeze``, ``Concat``, ``Cast``, ``Reshape``,
  ``Transpose``, ``Add``/``Sub``/``Mul``/``Div``, ``QuantizeLinear``/``DequantizeLinear`` on
  constants) are evaluated at import time, e.g. the ``x.view(x.size(0), -1)`` pattern.

Anything else raises :class:`ArasError` naming the operator type and the node.

Pre-quantized int8 QDQ models: a ``QuantizeLinear`` -> ``DequantizeLinear`` pair on an activation
is removed and its (scale, zero point) recorded in ``FloatGraph.fixed_qparams`` under the float
tensor's name; int8 weights behind a ``DequantizeLinear`` are dequantized and their per-output-
channel scales recorded in ``FloatGraph.fixed_weight_scales`` under the layer's node name (int32
biases are dequantized too). A Q/DQ pair between a layer and a bias ``Add`` folded into it is
dropped with the tensor it quantized. uint8, asymmetric weights, blocked quantization and
operator-format models (``QLinearConv``, ``ConvInteger``, ...) are rejected.
:func:`has_quant_params` tells whether the graph carries every parameter the quantizer needs.

Names: node and tensor names are the ONNX ones with characters outside ``[A-Za-z0-9_.-]`` replaced
by ``_`` (made unique with a suffix; unnamed nodes become ``<OpType>_<index>``). A node folded into
its predecessor (BN, bias Add) gives that layer's output tensor its own output name; removed nodes
(Identity, Dropout, Q/DQ) pass their input's name on, so a graph output is named after the float
tensor that reaches it (e.g. ``fc``, not ``fc_dq``).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from ..errors import ArasError
from ..graph import WEIGHT_OPS, FloatGraph, FNode, _infer

__all__ = ["SUPPORTED_OPS", "load_onnx", "from_model", "has_quant_params", "needs_qparams"]

# Value of the batch dimension inside constant-folded shape tensors (``Shape`` of an activation).
# Any derived value that is not exactly this one is detected by its size and rejected.
_BATCH = 1 << 40

_QOPERATOR_OPS = {
    "QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger", "QLinearAdd", "QLinearMul",
    "QLinearGlobalAveragePool", "QLinearAveragePool", "QLinearSigmoid", "QLinearLeakyRelu",
    "QLinearConcat", "QLinearSoftmax", "QGemm", "QAttention", "DynamicQuantizeLinear",
    "DynamicQuantizeMatMul", "MatMulIntegerToFloat",
}
_FOLDABLE = {
    "Identity", "Cast", "Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Reshape", "Transpose",
    "Add", "Sub", "Mul", "Div", "QuantizeLinear", "DequantizeLinear",
}
SUPPORTED_OPS = sorted({
    "Conv", "Gemm", "MatMul", "Add", "BatchNormalization", "Relu", "Clip", "LeakyRelu", "PRelu",
    "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "ReduceMean", "Flatten",
    "Reshape", "Softmax", "Identity", "Dropout", "Constant", "QuantizeLinear", "DequantizeLinear",
})
_FLOAT_TYPES = {1, 10, 11, 16}  # FLOAT, FLOAT16, DOUBLE, BFLOAT16 (onnx.TensorProto)


def _sanitize(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


# ---------------------------------------------------------------------------------------- public API
def load_onnx(path) -> FloatGraph:
    """Read an ONNX file and convert it (see the module docstring for what is understood).

    Raises
    ------
    ArasError
        The file is missing, unreadable, not an ONNX model, fails the ONNX checker, or uses an
        unsupported operator / attribute (the message names the file, the node and its op type).
    """
    import onnx

    p = Path(path)
    if not p.exists():
        raise ArasError(f"{p}: no such file")
    if not p.is_file():
        raise ArasError(f"{p}: not a file")
    try:
        model = onnx.load(str(p))
    except Exception as e:  # protobuf / external-data / OS errors: all mean "not a readable model"
        raise ArasError(f"{p}: not a readable ONNX model ({type(e).__name__}: {e})") from None
    return from_model(model, str(p))


def from_model(model, source_name: str = "<model>") -> FloatGraph:
    """Convert an ``onnx.ModelProto``; ``source_name`` (a path or label) prefixes every error.

    The graph is named after the file stem of ``source_name`` (or the ONNX graph name when
    ``source_name`` is empty or the placeholder ``"<model>"``).
    """
    import onnx

    if not isinstance(model, onnx.ModelProto):
        raise ArasError(f"{source_name}: expected an onnx.ModelProto, got {type(model).__name__}")
    if not model.graph.node or not model.opset_import:
        raise ArasError(f"{source_name}: not an ONNX model (no graph nodes or no opset)")
    try:
        onnx.checker.check_model(model)
    except Exception as e:
        raise ArasError(f"{source_name}: invalid ONNX model: {str(e).strip().splitlines()[0]}") from None
    return _Importer(model, source_name).build()


def needs_qparams(graph: FloatGraph) -> list[str]:
    """Tensors whose activation (scale, zero point) :func:`aras.quantize.quantize` takes from
    ``fixed_qparams`` or calibration: the input and each layer output, where an activation fused
    into its conv/linear/add stands for that layer and same-scale ops (pools, reshapes, unfused
    ReLU/clamp) inherit their input's parameters."""
    from ..quantize import SAME_SCALE_OPS, _fusable  # the quantizer's own rules, not a copy

    fused = {n.name: a for n in graph.nodes if (a := _fusable(graph, n)) is not None}
    skip = {a.name for a in fused.values()}
    out = [graph.input_name]
    for n in graph.nodes:
        if n.name not in skip and n.op not in SAME_SCALE_OPS:
            out.append(fused[n.name].output if n.name in fused else n.output)
    return out


def has_quant_params(graph: FloatGraph) -> bool:
    """True when the graph carries every quantization parameter: activation (scale, zero point)
    for each tensor of :func:`needs_qparams` and per-channel weight scales for each layer."""
    if any(t not in graph.fixed_qparams for t in needs_qparams(graph)):
        return False
    return all(n.name in graph.fixed_weight_scales for n in graph.nodes if n.op in WEIGHT_OPS)


# ---------------------------------------------------------------------------------------- helpers
def _attrs(node) -> dict:
    from onnx import helper

    d = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        if isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        d[a.name] = v
    return d


def _same_pads(size: int, k_eff: int, stride: int, lower: bool) -> tuple[int, int]:
    """(begin, end) padding for auto_pad SAME_*: output = ceil(size / stride)."""
    out = -(-size // stride)
    total = max(0, (out - 1) * stride + k_eff - size)
    begin = (total + 1) // 2 if lower else total // 2
    return begin, total - begin


class _Importer:
    def __init__(self, model, src: str):
        from onnx import numpy_helper

        self.g = model.graph
        self.src = src
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
        if not self.opset:
            raise ArasError(f"{src}: the model imports no default-domain ONNX opset")
        self.consts: dict[str, np.ndarray] = {}
        self.wq: dict[str, tuple[int, np.ndarray]] = {}  # const name -> (axis, scales) of int8 DQ
        self.alias: dict[str, str] = {}  # ONNX tensor -> FloatGraph tensor
        self.names_of: dict[str, set[str]] = {}  # FloatGraph tensor -> ONNX names resolving to it
        self.qout: dict[str, tuple[str, float, int]] = {}  # int8 tensor of a Q -> (fg tensor, s, zp)
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.producer: dict[str, FNode] = {}
        self.nodes: list[FNode] = []
        self.fixed_qparams: dict[str, tuple[float, int]] = {}
        self.fixed_weight_scales: dict[str, np.ndarray] = {}
        self.tensor_names: dict[str, str] = {}
        self.used_tensor_names: set[str] = set()
        self.used_node_names: set[str] = set()
        self.outputs = [o.name for o in self.g.output]
        self.uses: dict[str, int] = {}
        for n in self.g.node:
            # a QuantizeLinear is not a use: its DequantizeLinear outputs alias the tensor and count
            for t in (n.input[1:] if n.op_type == "QuantizeLinear" else n.input):
                if t:
                    self.uses[t] = self.uses.get(t, 0) + 1
        for o in self.outputs:
            self.uses[o] = self.uses.get(o, 0) + 1
        for init in self.g.initializer:
            try:
                self.consts[init.name] = numpy_helper.to_array(init)
            except Exception as e:
                raise ArasError(f"{src}: initializer {init.name!r} cannot be read: {e}") from None
        if len(self.g.sparse_initializer):
            raise ArasError(f"{src}: sparse initializers are not supported")

    # -------------------------------------------------------------- naming
    def _unique(self, base: str, used: set[str]) -> str:
        name, i = base, 1
        while name in used:
            name = f"{base}_{i}"
            i += 1
        used.add(name)
        return name

    def tname(self, onnx_name: str) -> str:
        if onnx_name not in self.tensor_names:
            self.tensor_names[onnx_name] = self._unique(_sanitize(onnx_name) or "t", self.used_tensor_names)
        return self.tensor_names[onnx_name]

    # -------------------------------------------------------------- errors and lookups
    def where(self, node) -> str:
        return f"{self.src}: node {self._nname!r} ({node.op_type})"

    def err(self, node, msg: str) -> ArasError:
        return ArasError(f"{self.where(node)}: {msg}")

    def is_const(self, t: str) -> bool:
        return t in self.consts

    def act(self, node, t: str) -> str:
        """FloatGraph tensor of activation input ``t`` of ``node``."""
        if t in self.alias:
            return self.alias[t]
        if t in self.consts:
            raise self.err(node, f"input {t!r} is a constant; {node.op_type} needs an activation there")
        if t in self.qout:
            raise self.err(node, f"input {t!r} is an int8 QuantizeLinear output; only DequantizeLinear "
                                 "may consume it (QDQ format)")
        raise self.err(node, f"input {t!r} is not produced by any earlier node")

    def const(self, node, i: int, what: str, default=None) -> np.ndarray | None:
        t = node.input[i] if i < len(node.input) else ""
        if not t:
            if default is None:
                raise self.err(node, f"missing {what} (input {i})")
            return default
        if t not in self.consts:
            raise self.err(node, f"{what} (input {t!r}) must be a constant (initializer or Constant node)")
        return self.consts[t]

    def set_alias(self, onnx_name: str, fg: str):
        self.alias[onnx_name] = fg
        self.names_of.setdefault(fg, set()).add(onnx_name)

    def sole_use(self, fg: str) -> bool:
        return sum(self.uses.get(t, 0) for t in self.names_of.get(fg, ())) == 1

    # -------------------------------------------------------------- graph building
    def emit(self, node, op: str, inputs: list[str], out_onnx: str, attrs=None, params=None,
             out_fg: str | None = None) -> FNode:
        fg_out = out_fg or self.tname(out_onnx)
        # the first FloatGraph node of an ONNX node takes its name; a second one (ReduceMean) a suffix
        name = self._unique(f"{self._nname}_{op}", self.used_node_names) if self._emitted else self._nname
        self._emitted += 1
        n = FNode(name, op, list(inputs), fg_out, dict(attrs or {}), dict(params or {}))
        try:
            self.shapes[fg_out] = _infer(n, [self.shapes[t] for t in inputs])
        except ArasError as e:
            raise self.err(node, str(e)) from None
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise self.err(node, f"{type(e).__name__}: {e}") from None
        self.nodes.append(n)
        self.producer[fg_out] = n
        if out_onnx:
            self.set_alias(out_onnx, fg_out)
        return n

    def rename_output(self, prod: FNode, out_onnx: str):
        """Give a folded-into layer the output name of the node folded into it."""
        old, new = prod.output, self.tname(out_onnx)
        prod.output = new
        self.shapes[new] = self.shapes.pop(old)
        self.producer[new] = self.producer.pop(old)
        for t in self.names_of.pop(old, set()):
            self.alias[t] = new  # still resolvable, but their one use was the folded node: not counted
        self.set_alias(out_onnx, new)
        # a QDQ pair between the layer and the folded node quantized a tensor that no longer exists
        self.fixed_qparams.pop(old, None)

    def fresh(self, base: str) -> str:
        return self._unique(_sanitize(base), self.used_tensor_names)

    # -------------------------------------------------------------- main
    def build(self) -> FloatGraph:
        self._input()
        for i, node in enumerate(self.g.node):
            base = _sanitize(node.name) if node.name else f"{node.op_type}_{i}"
            self._nname = self._unique(base or f"node_{i}", self.used_node_names)
            self._emitted = 0
            self._node(node)
        outs = []
        for o in self.outputs:
            if o in self.consts:
                raise ArasError(f"{self.src}: graph output {o!r} is a constant")
            if o in self.qout:
                raise ArasError(f"{self.src}: graph output {o!r} is an int8 tensor; only float outputs "
                                "(after DequantizeLinear) are supported")
            if o not in self.alias:
                raise ArasError(f"{self.src}: graph output {o!r} is not produced by any node")
            if self.alias[o] not in outs:
                outs.append(self.alias[o])
        stem = Path(self.src).stem if self.src and self.src != "<model>" else ""
        name = _sanitize(stem or self.g.name or "onnx_model")
        return FloatGraph(name=name, input_name=self.input_fg, input_shape=self.input_shape,
                          nodes=self.nodes, outputs=outs, weights="real",
                          fixed_qparams=self.fixed_qparams, fixed_weight_scales=self.fixed_weight_scales)

    def _input(self):
        from onnx import TensorProto

        ins = [v for v in self.g.input if v.name not in self.consts]
        if len(ins) != 1:
            raise ArasError(f"{self.src}: the graph must have exactly one input besides initializers, has "
                            f"{len(ins)}: {[v.name for v in ins]}")
        v = ins[0]
        if not v.type.HasField("tensor_type"):
            raise ArasError(f"{self.src}: input {v.name!r} is not a tensor")
        tt = v.type.tensor_type
        if tt.elem_type not in _FLOAT_TYPES:
            raise ArasError(f"{self.src}: input {v.name!r} has element type "
                            f"{TensorProto.DataType.Name(tt.elem_type)}; only float inputs are supported")
        if not tt.HasField("shape") or len(tt.shape.dim) < 2:
            raise ArasError(f"{self.src}: input {v.name!r} needs a known shape (batch, ...) of rank >= 2")
        dims = []
        for i, d in enumerate(tt.shape.dim[1:], start=1):
            if not d.HasField("dim_value") or d.dim_value < 1:
                raise ArasError(f"{self.src}: input {v.name!r} dimension {i} must be a fixed positive number "
                                f"(only the batch dimension 0 may be symbolic), got "
                                f"{d.dim_param or d.dim_value!r}")
            dims.append(int(d.dim_value))
        b = tt.shape.dim[0]
        self.batch = int(b.dim_value) if b.HasField("dim_value") and b.dim_value > 0 else None
        self.input_fg = self.tname(v.name)
        self.input_shape = tuple(dims)
        self.shapes[self.input_fg] = self.input_shape
        self.set_alias(v.name, self.input_fg)

    def _node(self, node):
        op = node.op_type
        if node.domain not in ("", "ai.onnx"):
            raise self.err(node, f"unsupported operator {op!r} of domain {node.domain!r} (only the default "
                                 "ONNX domain is supported)")
        if op in _QOPERATOR_OPS:
            raise self.err(node, f"unsupported operator {op!r}: operator-format (QOperator) quantized models "
                                 "are not supported; export int8 QDQ format (QuantizeLinear/DequantizeLinear)")
        if op == "Constant":
            return self._constant(node)
        ins = [t for t in node.input if t]
        if op in _FOLDABLE and ins and all(self.is_const(t) for t in ins):
            return self._fold(node)
        if op == "Shape":
            return self._fold(node)
        h = getattr(self, f"_op_{op}", None)
        if h is None:
            raise self.err(node, f"unsupported operator {op!r}; supported: {', '.join(SUPPORTED_OPS)}")
        h(node, _attrs(node))

    # -------------------------------------------------------------- constants
    def _constant(self, node):
        from onnx import numpy_helper

        a = node.attribute
        if len(a) != 1:
            raise self.err(node, "Constant needs exactly one value attribute")
        a = a[0]
        if a.name == "value":
            v = numpy_helper.to_array(a.t)
        elif a.name == "value_float":
            v = np.array(a.f, dtype=np.float32)
        elif a.name == "value_floats":
            v = np.array(list(a.floats), dtype=np.float32)
        elif a.name == "value_int":
            v = np.array(a.i, dtype=np.int64)
        elif a.name == "value_ints":
            v = np.array(list(a.ints), dtype=np.int64)
        else:
            raise self.err(node, f"Constant attribute {a.name!r} is not supported")
        self.consts[node.output[0]] = v

    def _axes(self, node, attrs, i: int):
        if "axes" in attrs:
            return [int(a) for a in attrs["axes"]]
        if len(node.input) > i and node.input[i]:
            return [int(a) for a in np.asarray(self.const(node, i, "axes")).reshape(-1)]
        return None

    def _fold(self, node):
        """Evaluate a node whose inputs are all constants (or ``Shape`` of an activation)."""
        from onnx import helper

        op, a = node.op_type, _attrs(node)
        c = [self.consts.get(t) if t else None for t in node.input]
        try:
            if op == "Shape":
                t = node.input[0]
                if t in self.consts:
                    full = list(self.consts[t].shape)
                else:
                    full = [_BATCH] + list(self.shapes[self.act(node, t)])
                r = len(full)
                s, e = int(a.get("start", 0)), int(a.get("end", r))
                s, e = (s + r if s < 0 else s), (e + r if e < 0 else e)
                v = np.array(full[max(0, s):min(r, e)], dtype=np.int64)
            elif op == "Identity":
                v = c[0]
            elif op == "Cast":
                v = c[0].astype(helper.tensor_dtype_to_np_dtype(int(a["to"])))
            elif op == "Gather":
                v = np.take(c[0], c[1].astype(np.int64), axis=int(a.get("axis", 0)))
            elif op == "Unsqueeze":
                axes = self._axes(node, a, 1)
                r = c[0].ndim + len(axes)
                v = c[0]
                for ax in sorted(x + r if x < 0 else x for x in axes):
                    v = np.expand_dims(v, ax)
            elif op == "Squeeze":
                axes = self._axes(node, a, 1)
                v = np.squeeze(c[0]) if axes is None else np.squeeze(c[0], axis=tuple(axes))
            elif op == "Concat":
                v = np.concatenate([x for x in c if x is not None], axis=int(a["axis"]))
            elif op == "Reshape":
                shape = [int(d) for d in c[1]]
                if not a.get("allowzero", 0):
                    shape = [c[0].shape[i] if d == 0 else d for i, d in enumerate(shape)]
                v = c[0].reshape(shape)
            elif op == "Transpose":
                v = np.transpose(c[0], a.get("perm"))
            elif op in ("Add", "Sub", "Mul", "Div"):
                x, y = c[0], c[1]
                with np.errstate(over="ignore"):
                    if op == "Div" and np.issubdtype(np.result_type(x, y), np.integer):
                        v = np.trunc(x / y).astype(np.result_type(x, y))  # ONNX integer Div truncates
                    else:
                        v = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}[op](x, y)
            elif op == "QuantizeLinear":
                v = self._quantize_const(node, a, c)
            elif op == "DequantizeLinear":
                v = self._dequantize_const(node, a, c)
            else:  # pragma: no cover - _FOLDABLE and this chain are kept in step
                raise self.err(node, f"cannot evaluate constant {op}")
        except ArasError:
            raise
        except (ValueError, TypeError, IndexError, KeyError) as e:
            raise self.err(node, f"cannot evaluate on constants: {e}") from None
        self.consts[node.output[0]] = np.asarray(v)

    def _qtype(self, node, a, zp) -> np.dtype:
        from onnx import helper

        if a.get("block_size", 0):
            raise self.err(node, "blocked quantization is not supported")
        if zp is not None:
            return zp.dtype
        if a.get("output_dtype", 0):
            return np.dtype(helper.tensor_dtype_to_np_dtype(int(a["output_dtype"])))
        return np.dtype(np.uint8)  # ONNX default when no zero point is given

    def _per_axis(self, node, a, x: np.ndarray, s: np.ndarray) -> tuple[int, np.ndarray]:
        """(axis, shape to broadcast scale/zero point over x) of a per-tensor or per-axis Q/DQ."""
        if s.size == 1:
            return -1, (1,) * x.ndim
        ax = int(a.get("axis", 0 if x.ndim == 1 else 1))  # a 1-D bias is only per-axis along axis 0
        ax = ax + x.ndim if ax < 0 else ax
        if s.ndim != 1 or not 0 <= ax < x.ndim or x.shape[ax] != s.size:
            raise self.err(node, f"scale shape {s.shape} does not match axis {ax} of {x.shape}")
        shape = [1] * x.ndim
        shape[ax] = s.size
        return ax, tuple(shape)

    def _quantize_const(self, node, a, c):
        x, s = c[0].astype(np.float64), c[1].astype(np.float64)
        zp = c[2] if len(c) > 2 else None
        dt = self._qtype(node, a, zp)
        if dt != np.int8:
            raise self.err(node, f"only int8 quantization is supported, not {dt}")
        _, bshape = self._per_axis(node, a, x, s)
        z = 0.0 if zp is None else zp.astype(np.float64).reshape(bshape)
        q = np.rint(x / s.reshape(bshape)) + z
        return np.clip(q, -128, 127).astype(np.int8)

    def _dequantize_const(self, node, a, c):
        x, s = c[0], c[1].astype(np.float64)
        zp = c[2] if len(c) > 2 and c[2] is not None else None
        if x.dtype not in (np.int8, np.int32):
            raise self.err(node, f"only int8 weights and int32 biases are supported, not {x.dtype}")
        if zp is not None and zp.dtype != x.dtype:
            raise self.err(node, f"zero point type {zp.dtype} differs from data type {x.dtype}")
        ax, bshape = self._per_axis(node, a, x, s)
        z = np.zeros(bshape) if zp is None else zp.astype(np.float64).reshape(bshape)
        if x.dtype == np.int8:
            if np.any(z != 0):
                raise self.err(node, "int8 weights need zero point 0 (symmetric); asymmetric is not supported")
            self.wq[node.output[0]] = (ax, s.reshape(-1).copy())
        v = (x.astype(np.float64) - z) * s.reshape(bshape)
        return v.astype(np.float32)

    # -------------------------------------------------------------- weight layers
    def _weight_scales(self, node, t: str, axis: int, cout: int) -> np.ndarray | None:
        if t not in self.wq:
            return None
        ax, s = self.wq[t]
        if ax == -1:
            return np.full(cout, float(s[0]))
        if ax != axis:
            raise self.err(node, f"weight {t!r} is quantized along axis {ax}; per-output-channel scales "
                                 f"(axis {axis}) are required")
        return s.astype(np.float64)

    def _op_Conv(self, node, a):
        x = self.act(node, node.input[0])
        w = np.array(self.const(node, 1, "weight"), dtype=np.float32)  # own, writable copy
        if w.ndim != 4:
            raise self.err(node, f"only 2-D convolution is supported (weight shape {w.shape})")
        ks = tuple(int(k) for k in a.get("kernel_shape", w.shape[2:]))
        if ks != tuple(w.shape[2:]):
            raise self.err(node, f"kernel_shape {ks} does not match weight {w.shape}")
        b = self.const(node, 2, "bias", default=np.zeros(0))
        params = {"weight": w}
        if b.size:
            params["bias"] = np.array(b, dtype=np.float32).reshape(-1)
        s = self.shapes[x]
        if len(s) != 3:
            raise self.err(node, f"Conv needs a (C, H, W) input, got {s}")
        stride = tuple(int(v) for v in a.get("strides", (1, 1)))
        dil = tuple(int(v) for v in a.get("dilations", (1, 1)))
        pads = self._pads(node, a, s, tuple(w.shape[2:]), stride, dil)
        n = self.emit(node, "conv2d", [x], node.output[0],
                      {"stride": stride, "pads": pads, "dilation": dil, "groups": int(a.get("group", 1))}, params)
        ws = self._weight_scales(node, node.input[1], 0, w.shape[0])
        if ws is not None:
            self.fixed_weight_scales[n.name] = ws

    def _pads(self, node, a, s, kernel, stride, dil) -> tuple[int, int, int, int]:
        ap = a.get("auto_pad", "NOTSET") or "NOTSET"
        if ap == "NOTSET":
            p = tuple(int(v) for v in a.get("pads", (0, 0, 0, 0)))
            if len(p) != 4:
                raise self.err(node, f"pads must have 4 values for 2-D, got {p}")
            return p  # ONNX order (top, left, bottom, right) is ours
        if ap == "VALID":
            return (0, 0, 0, 0)
        if ap in ("SAME_UPPER", "SAME_LOWER"):
            lower = ap == "SAME_LOWER"
            t, bo = _same_pads(s[1], dil[0] * (kernel[0] - 1) + 1, stride[0], lower)
            le, r = _same_pads(s[2], dil[1] * (kernel[1] - 1) + 1, stride[1], lower)
            return (t, le, bo, r)
        raise self.err(node, f"unknown auto_pad {ap!r}")

    def _op_Gemm(self, node, a):
        if int(a.get("transA", 0)):
            raise self.err(node, "transA=1 is not supported (the activation must be the left operand)")
        x = self.act(node, node.input[0])
        bmat = np.asarray(self.const(node, 1, "B (weight)"), dtype=np.float64)
        if bmat.ndim != 2:
            raise self.err(node, f"B must be 2-D, got {bmat.shape}")
        tb = int(a.get("transB", 0))
        alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
        w = alpha * (bmat if tb else bmat.T)  # (N, K)
        params = {"weight": w.astype(np.float32)}
        cmat = self.const(node, 2, "C (bias)", default=np.zeros(0))
        if cmat.size:
            n_out = w.shape[0]
            cc = np.asarray(cmat, dtype=np.float64)
            if cc.size != 1 and (cc.ndim > 2 or cc.shape[-1] != n_out or cc.size != n_out):
                raise self.err(node, f"bias C of shape {cc.shape} is not a per-output vector of {n_out}")
            params["bias"] = (beta * np.broadcast_to(cc.reshape(-1), (n_out,))).astype(np.float32)
        if len(self.shapes[x]) != 1:
            raise self.err(node, f"Gemm needs a flat (K,) input per sample, got {self.shapes[x]}")
        n = self.emit(node, "linear", [x], node.output[0], {}, params)
        ws = self._weight_scales(node, node.input[1], 0 if tb else 1, w.shape[0])
        if ws is not None:
            self.fixed_weight_scales[n.name] = ws * abs(alpha)

    def _op_MatMul(self, node, a):
        if self.is_const(node.input[0]) or not self.is_const(node.input[1]):
            raise self.err(node, "MatMul is supported only as activation @ constant (K, N) weight")
        x = self.act(node, node.input[0])
        bmat = np.asarray(self.consts[node.input[1]], dtype=np.float32)
        if bmat.ndim != 2:
            raise self.err(node, f"the constant weight must be 2-D (K, N), got {bmat.shape}")
        n = self.emit(node, "linear", [x], node.output[0], {}, {"weight": np.ascontiguousarray(bmat.T)})
        ws = self._weight_scales(node, node.input[1], 1, bmat.shape[1])
        if ws is not None:
            self.fixed_weight_scales[n.name] = ws

    def _foldable_producer(self, node, x: str, what: str) -> FNode:
        prod = self.producer.get(x)
        if prod is None or prod.op not in WEIGHT_OPS:
            raise self.err(node, f"{what} must directly follow a Conv/Gemm/MatMul to be folded into it "
                                 f"(input {x!r} comes from {prod.op if prod else 'the graph input'})")
        if not self.sole_use(x):
            raise self.err(node, f"{what}: the output of {prod.name!r} has other uses, so it cannot be folded")
        return prod

    def _op_Add(self, node, a):
        i0, i1 = node.input[0], node.input[1]
        c0, c1 = self.is_const(i0), self.is_const(i1)
        if not c0 and not c1:
            x, y = self.act(node, i0), self.act(node, i1)
            self.emit(node, "add", [x, y], node.output[0])
            return
        x = self.act(node, i1 if c0 else i0)
        c = np.asarray(self.consts[i0 if c0 else i1], dtype=np.float64)
        prod = self._foldable_producer(node, x, "Add of a constant")
        full = (1,) + self.shapes[x]
        ch = 1 if prod.op == "conv2d" else len(full) - 1
        cout = full[ch]
        if c.ndim > len(full):
            raise self.err(node, f"constant of shape {c.shape} broadcasts beyond the activation {full}")
        cs = (1,) * (len(full) - c.ndim) + c.shape
        if any(d != 1 for i, d in enumerate(cs) if i != ch) or cs[ch] not in (1, cout):
            raise self.err(node, f"constant of shape {c.shape} is not a per-output-channel bias of "
                                 f"{prod.name!r} (channel axis {ch} of {full})")
        add = np.broadcast_to(c.reshape(-1), (cout,)).astype(np.float64)
        old = prod.params.get("bias")
        prod.params["bias"] = ((old if old is not None else 0.0) + add).astype(np.float32)
        self.rename_output(prod, node.output[0])

    def _op_BatchNormalization(self, node, a):
        if int(a.get("training_mode", 0)):
            raise self.err(node, "training_mode=1 is not supported")
        if any(t and self.uses.get(t, 0) for t in node.output[1:]):
            raise self.err(node, "the running mean/var outputs are used; only inference BN is supported")
        x = self.act(node, node.input[0])
        prod = self._foldable_producer(node, x, "BatchNormalization")
        if prod.op == "linear" and len(self.shapes[x]) != 1:
            raise self.err(node, f"BN after a linear layer with output {self.shapes[x]}: channel axis 1 is not "
                                 "the output-feature axis")
        if prod.name in self.fixed_weight_scales:
            raise self.err(node, f"BN after the pre-quantized layer {prod.name!r}: fold BN before quantizing")
        gamma, beta, mean, var = (np.asarray(self.const(node, i, nm), dtype=np.float64).reshape(-1)
                                  for i, nm in ((1, "scale"), (2, "B"), (3, "mean"), (4, "var")))
        eps = float(a.get("epsilon", 1e-5))
        cout = prod.params["weight"].shape[0]
        if not all(v.size == cout for v in (gamma, beta, mean, var)):
            raise self.err(node, f"BN parameters must have {cout} channels")
        denom = var + eps
        if np.any(denom <= 0):
            raise self.err(node, f"channels {np.flatnonzero(denom <= 0).tolist()} have var + epsilon <= 0")
        # Fold in float64 and keep the folded weight and bias in float64: rounding them back to float32
        # would put a second float32 rounding between the model and the quantizer (which works in float64).
        k = gamma / np.sqrt(denom)
        w = prod.params["weight"].astype(np.float64)
        b = prod.params.get("bias")
        b = np.zeros(cout) if b is None else b.astype(np.float64)
        w = w * k.reshape((-1,) + (1,) * (w.ndim - 1))
        b = (b - mean) * k + beta
        if not (np.all(np.isfinite(w)) and np.all(np.isfinite(b))):
            raise self.err(node, "folding BN gives non-finite weights")
        prod.params["weight"] = w
        prod.params["bias"] = b
        self.rename_output(prod, node.output[0])

    # -------------------------------------------------------------- activations
    def _op_Relu(self, node, a):
        self.emit(node, "relu", [self.act(node, node.input[0])], node.output[0])

    def _op_LeakyRelu(self, node, a):
        self.emit(node, "leaky_relu", [self.act(node, node.input[0])], node.output[0],
                  {"alpha": float(a.get("alpha", 0.01))})

    def _op_Clip(self, node, a):
        x = self.act(node, node.input[0])
        if self.opset < 11:
            lo, hi = float(a.get("min", -np.inf)), float(a.get("max", np.inf))
        else:
            lo = float(np.asarray(self.const(node, 1, "min", default=np.array(-np.inf))).reshape(()))
            hi = float(np.asarray(self.const(node, 2, "max", default=np.array(np.inf))).reshape(()))
        if lo == 0.0 and hi == 6.0:
            self.emit(node, "relu6", [x], node.output[0])
        elif lo == 0.0 and hi == math.inf:
            self.emit(node, "relu", [x], node.output[0])
        else:
            self.emit(node, "clamp", [x], node.output[0], {"min": lo, "max": hi})

    def _op_PRelu(self, node, a):
        x = self.act(node, node.input[0])
        sl = np.asarray(self.const(node, 1, "slope"), dtype=np.float32)
        full = (1,) + self.shapes[x]
        if len(full) < 2 or sl.ndim > len(full):
            raise self.err(node, f"slope {sl.shape} does not fit input {full}")
        ss = (1,) * (len(full) - sl.ndim) + sl.shape
        c = full[1]
        if any(d != 1 for i, d in enumerate(ss) if i != 1) or ss[1] not in (1, c):
            raise self.err(node, f"slope of shape {sl.shape} is not per-channel (axis 1) for input of shape "
                                 f"{full} under ONNX broadcasting; use shape ({c}, 1, 1) for (C, H, W) inputs")
        self.emit(node, "prelu", [x], node.output[0],
                  params={"slope": np.broadcast_to(sl.reshape(-1), (c,)).astype(np.float32).copy()})

    def _op_Softmax(self, node, a):
        x = self.act(node, node.input[0])
        r = len(self.shapes[x]) + 1
        ax = int(a.get("axis", -1 if self.opset >= 13 else 1))
        ax = ax + r if ax < 0 else ax
        if not 1 <= ax < r:
            raise self.err(node, f"softmax axis {a.get('axis')} is the batch axis or out of range")
        if self.opset < 13 and int(np.prod(self.shapes[x][ax:], dtype=np.int64)) != 1:
            raise self.err(node, f"opset {self.opset} Softmax over axes {ax}.. of {(None,) + self.shapes[x]} "
                                 "(legacy 2-D coercion) is not a single-axis softmax")
        self.emit(node, "softmax", [x], node.output[0], {"axis": ax - 1})

    # -------------------------------------------------------------- pooling
    def _pool(self, node, a, kind: str):
        x = self.act(node, node.input[0])
        s = self.shapes[x]
        if len(s) != 3:
            raise self.err(node, f"{node.op_type} needs a (C, H, W) input, got {s}")
        if len(node.output) > 1 and node.output[1] and self.uses.get(node.output[1]):
            raise self.err(node, "the Indices output is not supported")
        k = tuple(int(v) for v in a["kernel_shape"])
        if len(k) != 2:
            raise self.err(node, f"only 2-D pooling is supported (kernel_shape {k})")
        if any(int(d) != 1 for d in a.get("dilations", (1, 1))):
            raise self.err(node, "pooling dilations are not supported")
        stride = tuple(int(v) for v in a.get("strides", (1, 1)))
        pads = list(self._pads(node, a, s, k, stride, (1, 1)))
        if int(a.get("ceil_mode", 0)) and (a.get("auto_pad", "NOTSET") or "NOTSET") == "NOTSET":
            for d in range(2):
                size, lo, hi = s[1 + d], pads[d], pads[2 + d]
                floor_out = (size + lo + hi - k[d]) // stride[d] + 1
                ceil_out = -(-(size + lo + hi - k[d]) // stride[d]) + 1
                if (ceil_out - 1) * stride[d] >= size + lo:  # last window may not start in the end padding
                    ceil_out -= 1
                if ceil_out == floor_out:
                    continue
                if kind == "avg":
                    raise self.err(node, "AveragePool with ceil_mode=1 changing the output size is not supported")
                pads[2 + d] += (ceil_out - 1) * stride[d] + k[d] - (size + lo + hi)
        attrs = {"kernel": k, "stride": stride, "pads": tuple(pads)}
        if kind == "avg":
            attrs["count_include_pad"] = bool(int(a.get("count_include_pad", 0)))
        self.emit(node, f"{kind}pool", [x], node.output[0], attrs)

    def _op_MaxPool(self, node, a):
        self._pool(node, a, "max")

    def _op_AveragePool(self, node, a):
        self._pool(node, a, "avg")

    def _op_GlobalAveragePool(self, node, a):
        self.emit(node, "gap", [self.act(node, node.input[0])], node.output[0])

    def _op_GlobalMaxPool(self, node, a):
        x = self.act(node, node.input[0])
        s = self.shapes[x]
        if len(s) != 3:
            raise self.err(node, f"GlobalMaxPool needs a (C, H, W) input, got {s}")
        self.emit(node, "maxpool", [x], node.output[0], {"kernel": s[1:], "stride": s[1:], "pads": (0, 0, 0, 0)})

    def _op_ReduceMean(self, node, a):
        x = self.act(node, node.input[0])
        s = self.shapes[x]
        axes = self._axes(node, a, 1)
        if len(s) != 3 or axes is None or sorted(v % 4 for v in axes) != [2, 3]:
            raise self.err(node, f"ReduceMean is supported only over the spatial axes (2, 3) of a (C, H, W) input "
                                 f"(axes {axes}, input {s})")
        if int(a.get("keepdims", 1)):
            self.emit(node, "gap", [x], node.output[0])
        else:
            g = self.emit(node, "gap", [x], "", out_fg=self.fresh(f"{node.output[0]}_gap"))
            self.emit(node, "flatten", [g.output], node.output[0])

    # -------------------------------------------------------------- shapes and no-ops
    def _op_Flatten(self, node, a):
        x = self.act(node, node.input[0])
        r = len(self.shapes[x]) + 1
        ax = int(a.get("axis", 1))
        if (ax + r if ax < 0 else ax) != 1:
            raise self.err(node, f"Flatten axis {ax} merges the batch dimension; only axis 1 is supported")
        self.emit(node, "flatten", [x], node.output[0])

    def _op_Reshape(self, node, a):
        x = self.act(node, node.input[0])
        tgt = [int(d) for d in np.asarray(self.const(node, 1, "shape")).reshape(-1)]
        s = self.shapes[x]
        full = [None] + list(s)
        if a.get("allowzero", 0) and 0 in tgt:
            raise self.err(node, "allowzero=1 with a 0 in the target shape is not supported")
        if not tgt:
            raise self.err(node, "reshape to a scalar drops the batch dimension")
        out = []
        for i, d in enumerate(tgt[1:], start=1):
            if d == 0:
                if i >= len(full):
                    raise self.err(node, f"0 at position {i} of the target {tgt} has no input dimension to copy")
                d = full[i]
            elif d >= _BATCH // 2 or d < -1:
                raise self.err(node, f"target shape {tgt} depends on the batch size beyond dimension 0")
            out.append(d)
        b = tgt[0]
        keeps_batch = b in (0, _BATCH) or (self.batch is not None and b == self.batch)
        if b == -1:
            if out.count(-1):
                raise self.err(node, f"target shape {tgt} has two -1")
            keeps_batch = int(np.prod(out, dtype=np.int64)) == int(np.prod(s, dtype=np.int64))
        if not keeps_batch:
            raise self.err(node, f"target shape {tgt} does not keep the batch as dimension 0 of input "
                                 f"(batch, {', '.join(map(str, s))})")
        if out.count(-1) > 1:
            raise self.err(node, f"target shape {tgt} has two -1")
        if -1 in out:
            rest = int(np.prod([d for d in out if d != -1], dtype=np.int64))
            tot = int(np.prod(s, dtype=np.int64))
            if rest == 0 or tot % rest:
                raise self.err(node, f"cannot reshape {s} to {tgt}")
            out[out.index(-1)] = tot // rest
        self.emit(node, "reshape", [x], node.output[0], {"shape": tuple(out)})

    def _op_Identity(self, node, a):
        self.set_alias(node.output[0], self.act(node, node.input[0]))

    def _op_Dropout(self, node, a):
        if len(node.output) > 1 and node.output[1] and self.uses.get(node.output[1]):
            raise self.err(node, "the Dropout mask output is used; not supported")
        if len(node.input) > 2 and node.input[2] and bool(np.any(self.const(node, 2, "training_mode"))):
            raise self.err(node, "training_mode=true (active dropout) is not supported")
        self.set_alias(node.output[0], self.act(node, node.input[0]))

    # -------------------------------------------------------------- QDQ activations
    def _act_qparams(self, node, a) -> tuple[float, int]:
        s = np.asarray(self.const(node, 1, "scale"), dtype=np.float64)
        zp = self.const(node, 2, "zero point") if len(node.input) > 2 and node.input[2] else None
        dt = self._qtype(node, a, zp)
        if dt != np.int8:
            raise self.err(node, f"only int8 QDQ is supported, this one is {dt}")
        if s.size != 1 or (zp is not None and zp.size != 1):
            raise self.err(node, "per-axis activation quantization is not supported")
        scale = float(s.reshape(()))
        if not (scale > 0 and math.isfinite(scale)):
            raise self.err(node, f"scale {scale} must be positive and finite")
        return scale, 0 if zp is None else int(zp.reshape(()))

    def _op_QuantizeLinear(self, node, a):
        x = self.act(node, node.input[0])
        scale, zp = self._act_qparams(node, a)
        self.qout[node.output[0]] = (x, scale, zp)

    def _op_DequantizeLinear(self, node, a):
        t = node.input[0]
        if t not in self.qout:
            if t in self.alias:
                raise self.err(node, f"input {t!r} is a float tensor; DequantizeLinear must follow a "
                                     "QuantizeLinear (int8 graph inputs are not supported)")
            raise self.err(node, f"input {t!r} is not produced by a QuantizeLinear")
        x, scale, zp = self.qout[t]
        if self._act_qparams(node, a) != (scale, zp):
            raise self.err(node, f"(scale, zero point) {self._act_qparams(node, a)} differ from those of the "
                                 f"QuantizeLinear ({scale}, {zp})")
        old = self.fixed_qparams.get(x)
        if old is not None and old != (scale, zp):
            raise self.err(node, f"tensor {x!r} is quantized twice with different parameters {old}, "
                                 f"{(scale, zp)}")
        self.fixed_qparams[x] = (scale, zp)
        self.set_alias(node.output[0], x)
