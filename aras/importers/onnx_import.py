"""ONNX importer: a float (or int8 QDQ) ONNX model to a :class:`aras.graph.FloatGraph`.

:func:`load_onnx` reads a file, :func:`from_model` converts an in-memory ``onnx.ModelProto``.
The model must have exactly one graph input (initializers aside) whose first dimension is the
batch (symbolic or fixed); every other dimension must be a number, or be fixed with
``input_shapes`` (``--input-shape``). The model is first normalised (:mod:`.onnx_normalise`:
input shapes, shape inference, constant folding with ONNX's reference evaluator, fusion of
hard-swish / SiLU / GELU / LayerNorm written out); docs/trace-format.md, "ONNX import", lists every
operator and pattern.

Operator coverage (default ONNX domain, any opset the installed ``onnx`` package knows):

- ``Conv`` (2-D; groups, depthwise, dilations, explicit pads, ``auto_pad`` NOTSET / VALID /
  SAME_UPPER / SAME_LOWER) -> ``conv2d``; ``Gemm`` (``transB``, ``alpha``, ``beta``; no
  ``transA``) and ``MatMul`` with a constant (K, N) right operand -> ``linear`` (weight = B.T).
  ``MatMul`` of two activations -> host ``matmul``; ``ConvTranspose`` -> ``conv2d`` at stride 1
  (flipped kernel), behind a host ``upsample`` (zero insertion) when the stride is > 1.
- ``Add``: two activations of equal shape -> ``add``. ``Add``/``Sub``/``Mul``/``Div`` of an
  activation and a per-channel (or scalar) constant, and ``BatchNormalization``, are an affine map
  ``a·x + b``: folded into the ``conv2d``/``linear`` producing the activation (in float64, a missing
  bias created; into a *copy* of that layer when its output has other readers), a scalar into a host
  ``matmul``'s alpha, else lowered to a depthwise 1x1 ``conv2d`` / diagonal ``linear`` (never folded
  into a *following* conv: not exact when that conv zero-pads). ``Mul`` of two activations -> host
  ``mul`` (broadcasting, e.g. a squeeze-and-excitation scale).
- Host ops: ``Sigmoid``, ``HardSigmoid``, ``HardSwish``, ``Swish``, ``Gelu``,
  ``LayerNormalization`` (last axis), ``Transpose``, ``Concat``, ``Slice``/``Split``, ``Resize``
  (nearest / linear).
  ``Squeeze``/``Unsqueeze`` of activations -> ``reshape``; a zero ``Pad`` of H, W folds into the
  padding of a following ``Conv`` (its only reader), else host ``upsample`` with up (1, 1).
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
- Constants: initializers, ``Constant`` nodes, and constant subgraphs (``Shape`` of an
  activation, then any default-domain operator on constants, through ONNX's reference evaluator
  where not evaluated here; ``QuantizeLinear``/``DequantizeLinear`` on constants) are evaluated at
  import time, e.g. the ``x.view(x.size(0), -1)`` pattern.

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
from .onnx_normalise import _NO_FOLD, FUSED_DOMAIN, _eval_node, normalise

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
_FOLDABLE = {  # evaluated here on constants; any other op with constant inputs goes to the reference evaluator
    "Identity", "Cast", "Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Reshape", "Transpose",
    "Add", "Sub", "Mul", "Div", "QuantizeLinear", "DequantizeLinear",
}
SUPPORTED_OPS = sorted({
    "Conv", "Gemm", "MatMul", "Add", "BatchNormalization", "Relu", "Clip", "LeakyRelu", "PRelu",
    "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "ReduceMean", "Flatten",
    "Reshape", "Softmax", "Identity", "Dropout", "Constant", "QuantizeLinear", "DequantizeLinear",
    "Sub", "Mul", "Div", "Sigmoid", "HardSigmoid", "HardSwish", "Swish", "Gelu", "LayerNormalization",
    "Transpose", "Concat", "Resize", "ConvTranspose", "Squeeze", "Unsqueeze", "Slice", "Split", "Pad",
})
# Nodes the normaliser fuses (onnx_normalise.FUSED_DOMAIN); the importer runs them like the ONNX ops
_FUSED_OPS = {"HardSwish", "Silu", "Gelu", "LayerNormalization"}
# Readers of a tensor that do not count as uses: they see only its (unchanged) shape
_SHAPE_READERS = {"Shape", "Size"}
_FLOAT_TYPES = {1, 10, 11, 16}  # FLOAT, FLOAT16, DOUBLE, BFLOAT16 (onnx.TensorProto)


def _sanitize(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


# ---------------------------------------------------------------------------------------- public API
def load_onnx(path, input_shapes: dict | None = None) -> FloatGraph:
    """Read an ONNX file and convert it (see the module docstring for what is understood);
    ``input_shapes`` (name -> dims) fixes symbolic input dimensions (``--input-shape``).

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
    return from_model(model, str(p), input_shapes)


def load_model(path):
    """The ``onnx.ModelProto`` of a file, with :func:`load_onnx`'s errors (for a float reference run)."""
    import onnx

    p = Path(path)
    if not p.is_file():
        raise ArasError(f"{p}: no such file")
    try:
        return onnx.load(str(p))
    except Exception as e:
        raise ArasError(f"{p}: not a readable ONNX model ({type(e).__name__}: {e})") from None


def from_model(model, source_name: str = "<model>", input_shapes: dict | None = None) -> FloatGraph:
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
    return _Importer(normalise(model, source_name, input_shapes), source_name).build()


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
            if n.op_type in _SHAPE_READERS:
                continue
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
             out_fg: str | None = None, name: str | None = None) -> FNode:
        fg_out = out_fg or self.tname(out_onnx)
        # the first FloatGraph node of an ONNX node takes its name; a second one (ReduceMean) a suffix
        if name is not None:  # an explicitly named helper node does not take the ONNX node's name
            name = self._unique(name, self.used_node_names)
        elif self._emitted:
            name = self._unique(f"{self._nname}_{op}", self.used_node_names)
            self._emitted += 1
        else:
            name = self._nname
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
        fg = FloatGraph(name=name, input_name=self.input_fg, input_shape=self.input_shape,
                        nodes=self.nodes, outputs=outs, weights="real",
                        fixed_qparams=self.fixed_qparams, fixed_weight_scales=self.fixed_weight_scales)
        fg.source_outputs = {o: self.alias[o] for o in self.outputs}  # ONNX output -> graph tensor
        return fg

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
                                f"{d.dim_param or d.dim_value!r}; fix it with --input-shape "
                                f"{v.name}={','.join(['1'] + ['D'] * (len(tt.shape.dim) - 1))}")
            dims.append(int(d.dim_value))
        b = tt.shape.dim[0]
        self.batch = int(b.dim_value) if b.HasField("dim_value") and b.dim_value > 0 else None
        self.input_fg = self.tname(v.name)
        self.input_shape = tuple(dims)
        self.shapes[self.input_fg] = self.input_shape
        self.set_alias(v.name, self.input_fg)

    def _node(self, node):
        op = node.op_type
        if node.domain == FUSED_DOMAIN and op in _FUSED_OPS:
            return getattr(self, f"_fused_{op}")(node, _attrs(node))
        if node.domain not in ("", "ai.onnx"):
            raise self.err(node, f"unsupported operator {op!r} of domain {node.domain!r} (only the default "
                                 "ONNX domain is supported)")
        if op in _QOPERATOR_OPS:
            raise self.err(node, f"unsupported operator {op!r}: operator-format (QOperator) quantized models "
                                 "are not supported; export int8 QDQ format (QuantizeLinear/DequantizeLinear)")
        if op == "Constant":
            return self._constant(node)
        ins = [t for t in node.input if t]
        if (op in _FOLDABLE or op not in _NO_FOLD) and ins and all(self.is_const(t) for t in ins):
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
            else:  # anything else on constants (Slice, Range, Expand, ...): ONNX's reference evaluator
                try:
                    vs = _eval_node(node, self.consts, self.opset)
                except Exception as e:
                    raise self.err(node, f"cannot evaluate on constants: {type(e).__name__}: "
                                         f"{str(e).strip().splitlines()[0] if str(e).strip() else ''}") from None
                for o, val in zip(node.output[1:], vs[1:], strict=False):
                    if o:
                        self.consts[o] = np.asarray(val)
                v = vs[0]
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

    def _op_Pad(self, node, a):
        """Zero padding of H, W (negative: crop) -> host ``upsample`` with up (1, 1); folded into the
        padding of a Conv that is its only reader (exact: the conv zero-pads)."""
        x = self.act(node, node.input[0])
        s = self.shapes[x]
        mode = a.get("mode", "constant") or "constant"
        if self.opset < 11:
            pads, val = [int(v) for v in a.get("pads", ())], float(a.get("value", 0.0))
        else:
            pads = [int(v) for v in np.asarray(self.const(node, 1, "pads")).reshape(-1)]
            val = float(np.asarray(self.const(node, 2, "constant_value", default=np.zeros(1))).reshape(-1)[0]) \
                if len(node.input) > 2 and node.input[2] else 0.0
            if len(node.input) > 3 and node.input[3]:
                axes = [int(v) for v in np.asarray(self.const(node, 3, "axes")).reshape(-1)]
                full = [0] * (2 * (len(s) + 1))
                for i, ax in enumerate(axes):
                    ax = ax + len(s) + 1 if ax < 0 else ax
                    full[ax], full[ax + len(s) + 1] = pads[i], pads[i + len(axes)]
                pads = full
        if mode != "constant" or val != 0.0:
            raise self.err(node, f"only zero padding is supported (mode {mode!r}, value {val})")
        if len(s) != 3 or len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)):
            raise self.err(node, f"pads {pads} must pad only H and W of a (C, H, W) input {s}")
        border = [pads[2], pads[3], pads[6], pads[7]]
        if not any(border):
            self.set_alias(node.output[0], x)
            return
        self.emit(node, "upsample", [x], node.output[0], {"up": [1, 1], "border": border})

    def _op_Conv(self, node, a):
        x = self.act(node, node.input[0])
        extra = (0, 0, 0, 0)
        prod = self.producer.get(x)
        s_in = self.shapes[x]  # the (padded) input shape auto_pad refers to
        if prod is not None and prod.op == "upsample" and list(prod.attrs["up"]) == [1, 1] \
                and min(prod.attrs["border"]) >= 0 and self.sole_use(x):
            extra = tuple(int(v) for v in prod.attrs["border"])  # a zero Pad folds into the conv's padding
            self.nodes.remove(prod)
            del self.producer[x]
            x = prod.inputs[0]
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
        if len(s_in) != 3:
            raise self.err(node, f"Conv needs a (C, H, W) input, got {s_in}")
        stride = tuple(int(v) for v in a.get("strides", (1, 1)))
        dil = tuple(int(v) for v in a.get("dilations", (1, 1)))
        pads = self._pads(node, a, s_in, tuple(w.shape[2:]), stride, dil)
        pads = tuple(p + e for p, e in zip(pads, extra, strict=True))
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
        if self.is_const(node.input[0]):
            raise self.err(node, "MatMul is supported only as activation @ constant (K, N) weight or as a product "
                                 "of two activations (host)")
        if not self.is_const(node.input[1]):  # both activations: attention scores / context, on the host
            x, y = self.act(node, node.input[0]), self.act(node, node.input[1])
            self.emit(node, "matmul", [x, y], node.output[0], {"alpha": 1.0})
            return
        x = self.act(node, node.input[0])
        bmat = np.asarray(self.consts[node.input[1]], dtype=np.float32)
        if bmat.ndim != 2:
            raise self.err(node, f"the constant weight must be 2-D (K, N), got {bmat.shape}")
        n = self.emit(node, "linear", [x], node.output[0], {}, {"weight": np.ascontiguousarray(bmat.T)})
        ws = self._weight_scales(node, node.input[1], 1, bmat.shape[1])
        if ws is not None:
            self.fixed_weight_scales[n.name] = ws

    # -------------------------------------------------------------- constant affine maps (Add/Sub/Mul/Div, BN)
    def _channel_axis(self, node, x: str, c: np.ndarray):
        """Axis of ``(1,) + shape(x)`` along which constant ``c`` varies (None: a scalar everywhere)."""
        full = (1,) + self.shapes[x]
        if c.ndim > len(full):
            raise self.err(node, f"constant of shape {c.shape} broadcasts beyond the activation {full}")
        cs = (1,) * (len(full) - c.ndim) + c.shape
        vary = [i for i, d in enumerate(cs) if d != 1]
        if not vary:
            return None
        if len(vary) > 1 or vary[0] == 0 or cs[vary[0]] != full[vary[0]]:
            raise self.err(node, f"constant of shape {c.shape} is neither a scalar nor per-output-channel for the "
                                 f"activation {full} (one value per channel along a single axis)")
        return vary[0]

    def _affine(self, node, x: str, a, b, pre=0.0, what: str | None = None):
        """y = a·(x + pre) + b with constants broadcasting per channel (ONNX broadcasting): folded into
        the conv/linear producing ``x`` (into a copy of it when ``x`` has other readers), else a scalar
        into a host matmul's alpha, else lowered to a standalone crossbar layer (depthwise 1x1 conv for
        (C, H, W), diagonal linear over the last axis otherwise)."""
        what = what or node.op_type
        full = (1,) + self.shapes[x]
        arrs = [np.asarray(v, dtype=np.float64) for v in (a, b, pre)]
        axes = {self._channel_axis(node, x, v) for v in arrs} - {None}
        if len(axes) > 1:
            raise self.err(node, f"{what}: constants vary along different axes {sorted(axes)} of {full}")
        ax = axes.pop() if axes else None
        prod = self.producer.get(x)
        pch = None if prod is None else 1 if prod.op == "conv2d" else len(full) - 1
        if prod is not None and prod.op in WEIGHT_OPS and ax in (None, pch):
            return self._fold_affine(node, x, prod, full[pch], pch, arrs, what)
        a_, b_, p_ = arrs
        if prod is not None and prod.op == "matmul" and ax is None and not b_.any() and not p_.any() \
                and self.sole_use(x):
            prod.attrs["alpha"] = float(prod.attrs.get("alpha", 1.0)) * float(a_.reshape(-1)[0])
            self.rename_output(prod, node.output[0])
            return
        if len(full) == 4 and ax in (None, 1):
            ch, kind = full[1], "conv2d"
        elif len(full) >= 2 and ax in (None, len(full) - 1):
            ch, kind = full[-1], "linear"
        else:
            raise self.err(node, f"{what}: a constant along axis {ax} of {full} is not per-output-channel (axis 1 "
                                 "of a (C, H, W) tensor, or the last axis)")
        k = np.broadcast_to(a_.reshape(-1), (ch,)) if a_.size in (1, ch) else a_.reshape(-1)
        bias = np.broadcast_to(p_.reshape(-1), (ch,)) * k + np.broadcast_to(b_.reshape(-1), (ch,))
        if np.all(k == 1.0) and not bias.any():
            self.set_alias(node.output[0], x)  # the identity
            return
        w = k.reshape(ch, 1, 1, 1) if kind == "conv2d" else np.diag(k)
        attrs = {"stride": (1, 1), "pads": (0, 0, 0, 0), "dilation": (1, 1), "groups": ch} if kind == "conv2d" else {}
        self.emit(node, kind, [x], node.output[0], attrs, {"weight": w.astype(np.float64),
                                                           "bias": np.asarray(bias, np.float64)})

    def _fold_affine(self, node, x, prod: FNode, cout: int, pch: int, arrs, what: str):
        a_, b_, p_ = (np.broadcast_to(v.reshape(-1), (cout,)).astype(np.float64) for v in arrs)
        scaled = bool(np.any(a_ != 1.0))
        ws = self.fixed_weight_scales.get(prod.name)
        if ws is not None and scaled:
            if np.any(a_ == 0):
                raise self.err(node, f"{what}: a zero scale cannot be folded into the pre-quantized layer "
                                     f"{prod.name!r}")
            ws = ws * np.abs(a_)
        old = prod.params.get("bias")
        if scaled or p_.any():
            b0 = np.zeros(cout) if old is None else old.astype(np.float64)
            bias = (b0 + p_) * a_ + b_
            w = prod.params["weight"].astype(np.float64)
            w = w * a_.reshape((-1,) + (1,) * (w.ndim - 1))
        else:  # a bias Add: float32, as the model's own bias
            bias = ((old if old is not None else 0.0) + b_).astype(np.float32)
            w = prod.params["weight"]
        if not (np.all(np.isfinite(w)) and np.all(np.isfinite(bias))):
            raise self.err(node, f"folding {what} into {prod.name!r} gives non-finite weights")
        if self.sole_use(x):
            prod.params["weight"], prod.params["bias"] = w, bias
            if ws is not None:
                self.fixed_weight_scales[prod.name] = ws
            self.rename_output(prod, node.output[0])
            return
        # x has other readers: fold into a copy of the layer (same input, its own output)
        n = self.emit(node, prod.op, list(prod.inputs), node.output[0], dict(prod.attrs),
                      {**prod.params, "weight": w, "bias": bias})
        if ws is not None:
            self.fixed_weight_scales[n.name] = ws

    def _const_and_act(self, node):
        """(activation, constant, constant first) of a binary node with exactly one constant input."""
        i0, i1 = node.input[0], node.input[1]
        c0, c1 = self.is_const(i0), self.is_const(i1)
        if c0 == c1:
            return None
        return self.act(node, i1 if c0 else i0), np.asarray(self.consts[i0 if c0 else i1], np.float64), c0

    def _op_Add(self, node, a):
        r = self._const_and_act(node)
        if r is None:
            x, y = self.act(node, node.input[0]), self.act(node, node.input[1])
            if self.shapes[x] != self.shapes[y]:
                raise self.err(node, f"Add of activations of shapes {self.shapes[x]} and {self.shapes[y]}: "
                                     "broadcasting adds of two activations are not supported")
            self.emit(node, "add", [x, y], node.output[0])
            return
        x, c, _ = r
        self._affine(node, x, 1.0, c, what="Add of a constant")

    def _op_Sub(self, node, a):
        r = self._const_and_act(node)
        if r is None:
            raise self.err(node, "Sub of two activations is not supported (only activation - constant, "
                                 "constant - activation, or inside a LayerNorm pattern)")
        x, c, first = r
        self._affine(node, x, -1.0 if first else 1.0, c if first else -c, what="Sub of a constant")

    def _op_Mul(self, node, a):
        r = self._const_and_act(node)
        if r is None:
            x, y = self.act(node, node.input[0]), self.act(node, node.input[1])
            self.emit(node, "mul", [x, y], node.output[0])
            return
        x, c, _ = r
        self._affine(node, x, c, 0.0, what="Mul by a constant")

    def _op_Div(self, node, a):
        r = self._const_and_act(node)
        if r is None or r[2]:
            raise self.err(node, "Div is supported only as activation / constant")
        x, c, _ = r
        if np.any(c == 0):
            raise self.err(node, "division by a constant holding zeros")
        self._affine(node, x, 1.0 / c, 0.0, what="Div by a constant")

    def _op_BatchNormalization(self, node, a):
        if int(a.get("training_mode", 0)):
            raise self.err(node, "training_mode=1 is not supported")
        if any(t and self.uses.get(t, 0) for t in node.output[1:]):
            raise self.err(node, "the running mean/var outputs are used; only inference BN is supported")
        x = self.act(node, node.input[0])
        prod = self.producer.get(x)
        full = (1,) + self.shapes[x]
        if prod is not None and prod.op == "linear" and len(full) != 2:
            raise self.err(node, f"BN after a linear layer with output {self.shapes[x]}: channel axis 1 is not "
                                 "the output-feature axis")
        if prod is not None and prod.name in self.fixed_weight_scales:
            raise self.err(node, f"BN after the pre-quantized layer {prod.name!r}: fold BN before quantizing")
        gamma, beta, mean, var = (np.asarray(self.const(node, i, nm), dtype=np.float64).reshape(-1)
                                  for i, nm in ((1, "scale"), (2, "B"), (3, "mean"), (4, "var")))
        eps = float(a.get("epsilon", 1e-5))
        cout = full[1]
        if not all(v.size == cout for v in (gamma, beta, mean, var)):
            raise self.err(node, f"BN parameters must have {cout} channels")
        denom = var + eps
        if np.any(denom <= 0):
            raise self.err(node, f"channels {np.flatnonzero(denom <= 0).tolist()} have var + epsilon <= 0")
        # Fold in float64 and keep the folded weight and bias in float64: rounding them back to float32
        # would put a second float32 rounding between the model and the quantizer (which works in float64).
        k = gamma / np.sqrt(denom)
        shp = (cout,) + (1,) * (len(full) - 2)
        self._affine(node, x, k.reshape(shp), beta.reshape(shp), -mean.reshape(shp), what="BatchNormalization")

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

    # -------------------------------------------------------------- host-path activations and fused patterns
    def _op_Sigmoid(self, node, a):
        self.emit(node, "sigmoid", [self.act(node, node.input[0])], node.output[0])

    def _op_HardSigmoid(self, node, a):
        self.emit(node, "hardsigmoid", [self.act(node, node.input[0])], node.output[0],
                  {"alpha": float(a.get("alpha", 0.2)), "beta": float(a.get("beta", 0.5))})

    def _op_HardSwish(self, node, a):  # ONNX HardSwish: x * HardSigmoid(x; 1/6, 1/2)
        self.emit(node, "hardswish", [self.act(node, node.input[0])], node.output[0],
                  {"alpha": float(a.get("alpha", 1.0 / 6.0)), "beta": float(a.get("beta", 0.5))})

    _fused_HardSwish = _op_HardSwish

    def _op_Swish(self, node, a):  # ONNX Swish (opset 24): x * sigmoid(alpha * x)
        self.emit(node, "silu", [self.act(node, node.input[0])], node.output[0], {"alpha": float(a.get("alpha", 1.0))})

    _fused_Silu = _op_Swish

    def _op_Gelu(self, node, a):
        ap = a.get("approximate", "none") or "none"
        if ap not in ("none", "tanh"):
            raise self.err(node, f"approximate={ap!r} is not supported")
        self.emit(node, "gelu", [self.act(node, node.input[0])], node.output[0],
                  {"approximate": "tanh"} if ap == "tanh" else {})

    _fused_Gelu = _op_Gelu

    def _op_LayerNormalization(self, node, a):
        x = self.act(node, node.input[0])
        s = self.shapes[x]
        r = len(s) + 1
        ax = int(a.get("axis", -1))
        if (ax + r if ax < 0 else ax) != r - 1:
            raise self.err(node, f"LayerNormalization over axis {ax} of {(None,) + s}: only the last axis is "
                                 "supported")
        if any(t and self.uses.get(t, 0) for t in node.output[1:]):
            raise self.err(node, "the Mean / InvStdDev outputs are used; not supported")
        d = s[-1]
        p = {}
        for i, nm, dflt in ((1, "gamma", 1.0), (2, "beta", 0.0)):
            v = np.asarray(self.const(node, i, nm, default=np.full(d, dflt)), dtype=np.float64)
            if v.size not in (1, d) or (v.ndim > 1 and v.shape[:-1] != (1,) * (v.ndim - 1)):
                raise self.err(node, f"{nm} of shape {v.shape} is not a vector over the last axis ({d})")
            p[nm] = np.broadcast_to(v.reshape(-1), (d,)).astype(np.float32)
        self.emit(node, "layernorm", [x], node.output[0], {"eps": float(a.get("epsilon", 1e-5))}, p)

    _fused_LayerNormalization = _op_LayerNormalization

    # -------------------------------------------------------------- host-path data movement and products
    def _op_Transpose(self, node, a):
        x = self.act(node, node.input[0])
        r = len(self.shapes[x]) + 1
        perm = [int(p) for p in a.get("perm", range(r - 1, -1, -1))]
        if sorted(perm) != list(range(r)) or perm[0] != 0:
            raise self.err(node, f"perm {perm} moves the batch axis 0; only permutations of the other axes are "
                                 "supported")
        if perm == list(range(r)):
            self.set_alias(node.output[0], x)
            return
        self.emit(node, "transpose", [x], node.output[0], {"perm": [p - 1 for p in perm[1:]]})

    def _op_Concat(self, node, a):
        ins = [t for t in node.input if t]
        xs = [self.act(node, t) for t in ins]
        r = len(self.shapes[xs[0]]) + 1
        ax = int(a["axis"])
        ax = ax + r if ax < 0 else ax
        if not 1 <= ax < r:
            raise self.err(node, f"concatenation along axis {a['axis']} (the batch axis or out of range)")
        if len(xs) == 1:
            self.set_alias(node.output[0], xs[0])
            return
        self.emit(node, "concat", xs, node.output[0], {"axis": ax - 1})

    def _slice_node(self, node, x, axes, starts, ends, steps, out_onnx):
        s = self.shapes[x]
        r = len(s) + 1
        ax_u, st_u, sp_u, cn_u = [], [], [], []
        for ax, st, en, sp in zip(axes, starts, ends, steps, strict=True):
            ax = ax + r if ax < 0 else ax
            if not 1 <= ax < r:
                raise self.err(node, f"slicing axis {ax} (the batch axis or out of range) is not supported")
            d = s[ax - 1]
            if sp == 0:
                raise self.err(node, "step 0")
            st = st + d if st < 0 else st
            en = en + d if en < 0 else en
            if sp > 0:
                st, en = min(max(st, 0), d), min(max(en, 0), d)
                cnt = max(0, -(-(en - st) // sp))
            else:
                st, en = min(max(st, 0), d - 1), min(max(en, -1), d - 1)
                cnt = max(0, -(-(st - en) // -sp))
            if cnt == 0:
                raise self.err(node, f"the slice of axis {ax} is empty")
            ax_u.append(ax - 1)
            st_u.append(int(st))
            sp_u.append(int(sp))
            cn_u.append(int(cnt))
        if all(c == s[a_] and st == 0 and sp == 1 for a_, st, sp, c in zip(ax_u, st_u, sp_u, cn_u, strict=True)):
            self.set_alias(out_onnx, x)
            return
        self.emit(node, "slice", [x], out_onnx, {"axes": ax_u, "starts": st_u, "steps": sp_u, "counts": cn_u})

    def _op_Slice(self, node, a):
        x = self.act(node, node.input[0])
        r = len(self.shapes[x]) + 1
        if self.opset < 10:
            starts, ends = list(a["starts"]), list(a["ends"])
            axes = list(a.get("axes", range(len(starts))))
            steps = [1] * len(starts)
        else:
            def vec(i, what, dflt):
                v = self.const(node, i, what, default=np.asarray(dflt, np.int64) if dflt is not None else None)
                return [int(t) for t in np.asarray(v).reshape(-1)]
            starts, ends = vec(1, "starts", None), vec(2, "ends", None)
            axes = vec(3, "axes", list(range(len(starts))))
            steps = vec(4, "steps", [1] * len(starts))
        big = 1 << 62  # INT64_MAX-style "to the end" stays the end after clamping
        ends = [min(max(e, -big), big) for e in ends]
        starts = [min(max(t, -big), big) for t in starts]
        if not (len(starts) == len(ends) == len(axes) == len(steps)) or len(set(v % r for v in axes)) != len(axes):
            raise self.err(node, f"starts/ends/axes/steps {starts}/{ends}/{axes}/{steps} do not match")
        self._slice_node(node, x, axes, starts, ends, steps, node.output[0])

    def _op_Split(self, node, a):
        x = self.act(node, node.input[0])
        s = self.shapes[x]
        r = len(s) + 1
        ax = int(a.get("axis", 0))
        ax = ax + r if ax < 0 else ax
        if not 1 <= ax < r:
            raise self.err(node, f"Split along axis {a.get('axis', 0)} (the batch axis or out of range)")
        d, n = s[ax - 1], len(node.output)
        if "split" in a:
            sizes = [int(v) for v in a["split"]]
        elif len(node.input) > 1 and node.input[1]:
            sizes = [int(v) for v in np.asarray(self.const(node, 1, "split")).reshape(-1)]
        else:
            n = int(a.get("num_outputs", n))
            step = -(-d // n)
            sizes = [min(step, d - i * step) for i in range(n)]
        if len(sizes) != len(node.output) or sum(sizes) != d or min(sizes) < 1:
            raise self.err(node, f"split sizes {sizes} do not cover axis {ax} ({d}) in {len(node.output)} outputs")
        off = 0
        for o, k in zip(node.output, sizes, strict=True):
            if o:
                self._slice_node(node, x, [ax], [off], [off + k], [1], o)
            off += k

    def _squeeze_like(self, node, a, op):
        x = self.act(node, node.input[0])
        s = list(self.shapes[x])
        axes = self._axes(node, a, 1)
        full = [1] + s
        if op == "Squeeze":
            axes = [i for i, d in enumerate(full) if d == 1 and i] if axes is None else \
                [v + len(full) if v < 0 else v for v in axes]
            if 0 in axes or any(not 0 < v < len(full) or full[v] != 1 for v in axes):
                raise self.err(node, f"Squeeze axes {axes} of {(None,) + tuple(s)}: only size-1 non-batch axes")
            out = [d for i, d in enumerate(full) if i not in axes][1:]
        else:
            r = len(full) + len(axes)
            axes = sorted(v + r if v < 0 else v for v in axes)
            if 0 in axes:
                raise self.err(node, "Unsqueeze at axis 0 would move the batch axis")
            for v in axes:
                full.insert(v, 1)
            out = full[1:]
        if not out:
            raise self.err(node, "the result would have no dimension besides the batch")
        self.emit(node, "reshape", [x], node.output[0], {"shape": tuple(out)})

    def _op_Squeeze(self, node, a):
        self._squeeze_like(node, a, "Squeeze")

    def _op_Unsqueeze(self, node, a):
        self._squeeze_like(node, a, "Unsqueeze")

    def _op_Resize(self, node, a):
        x = self.act(node, node.input[0])
        s = self.shapes[x]
        if len(s) != 3:
            raise self.err(node, f"Resize needs a (C, H, W) input, got {s}")
        mode = a.get("mode", "nearest")
        coord = a.get("coordinate_transformation_mode", "half_pixel" if self.opset >= 11 else "asymmetric")
        if mode not in ("nearest", "linear"):
            raise self.err(node, f"mode {mode!r} is not supported (nearest, linear)")
        if coord == "tf_crop_and_resize" or int(a.get("antialias", 0)) or int(a.get("exclude_outside", 0)):
            raise self.err(node, f"coordinate_transformation_mode {coord!r} / antialias / exclude_outside are "
                                 "not supported")
        if a.get("axes") is not None or (a.get("keep_aspect_ratio_policy", "stretch") or "stretch") != "stretch":
            raise self.err(node, "axes / keep_aspect_ratio_policy are not supported")
        if self.opset < 11:
            sc, sz = self.const(node, 1, "scales"), None
        else:
            def opt(i):
                t = node.input[i] if i < len(node.input) else ""
                return None if not t else self.const(node, i, ("roi", "scales", "sizes")[i - 1])
            sc, sz = opt(2), opt(3)
            if sc is not None and sc.size == 0:
                sc = None
            if sz is not None and sz.size == 0:
                sz = None
        full = (1,) + s
        if sz is not None:
            sz = [int(v) for v in np.asarray(sz).reshape(-1)]
            if len(sz) != 4 or sz[1] != s[0]:
                raise self.err(node, f"sizes {sz} must keep N and C of {(None,) + s}")
            size = (sz[2], sz[3])
            scales = (sz[2] / s[1], sz[3] / s[2])
        elif sc is not None:
            scv = [float(v) for v in np.asarray(sc).reshape(-1)]
            if len(scv) != 4 or scv[0] != 1 or scv[1] != 1 or min(scv) <= 0:
                raise self.err(node, f"scales {scv} must be (1, 1, sh, sw) with positive sh, sw")
            scales = (scv[2], scv[3])
            size = (int(math.floor(full[2] * scv[2])), int(math.floor(full[3] * scv[3])))
        else:
            raise self.err(node, "needs constant scales or sizes")
        if min(size) < 1:
            raise self.err(node, f"output size {size} is empty")
        attrs = {"size": list(size), "scales": list(scales), "mode": mode, "coord": coord}
        if mode == "nearest":
            attrs["nearest"] = a.get("nearest_mode", "round_prefer_floor") if self.opset >= 11 else "floor"
        self.emit(node, "resize", [x], node.output[0], attrs)

    def _op_ConvTranspose(self, node, a):
        """Lowered to a stride-1 conv2d on the crossbars, behind a host zero insertion when stride > 1."""
        x = self.act(node, node.input[0])
        s = self.shapes[x]
        w = np.asarray(self.const(node, 1, "weight"), dtype=np.float64)
        if w.ndim != 4 or len(s) != 3:
            raise self.err(node, f"only 2-D ConvTranspose on (C, H, W) is supported (weight {w.shape}, input {s})")
        g = int(a.get("group", 1))
        cin, cout_g, kh, kw = w.shape
        if cin != s[0] or cin % g:
            raise self.err(node, f"weight {w.shape} does not fit input {s} with group={g}")
        st = tuple(int(v) for v in a.get("strides", (1, 1)))
        dil = tuple(int(v) for v in a.get("dilations", (1, 1)))
        op_ = tuple(int(v) for v in a.get("output_padding", (0, 0)))
        ke = (dil[0] * (kh - 1) + 1, dil[1] * (kw - 1) + 1)
        ap = a.get("auto_pad", "NOTSET") or "NOTSET"
        if "output_shape" in a:
            raise self.err(node, "the output_shape attribute is not supported; give pads")
        if ap in ("SAME_UPPER", "SAME_LOWER"):  # output = input * stride (ONNX reference split of the total)
            tot = [st[i] * (s[1 + i] - 1) + op_[i] + ke[i] - s[1 + i] * st[i] for i in range(2)]
            if min(tot) < 0:
                raise self.err(node, f"auto_pad {ap} needs negative total padding {tot}")
            lo = [t // 2 for t in tot] if ap == "SAME_UPPER" else [t - t // 2 for t in tot]
            pads = (lo[0], lo[1], tot[0] - lo[0], tot[1] - lo[1])
        elif ap == "VALID":
            pads = (0, 0, 0, 0)
        elif ap == "NOTSET":
            pads = tuple(int(v) for v in a.get("pads", (0, 0, 0, 0)))
        else:
            raise self.err(node, f"unknown auto_pad {ap!r}")
        # y = conv(zero-inserted x padded by k_eff - 1 - pad (+ output_padding at the end), flipped kernel)
        border = [ke[0] - 1 - pads[0], ke[1] - 1 - pads[1], ke[0] - 1 - pads[2] + op_[0], ke[1] - 1 - pads[3] + op_[1]]
        cin_g = cin // g
        wc = np.empty((g * cout_g, cin_g, kh, kw))
        for gi in range(g):
            blk = w[gi * cin_g:(gi + 1) * cin_g]  # (cin_g, cout_g, kh, kw)
            wc[gi * cout_g:(gi + 1) * cout_g] = blk.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1]
        b = self.const(node, 2, "bias", default=np.zeros(0))
        params = {"weight": wc}
        if b.size:
            params["bias"] = np.asarray(b, dtype=np.float64).reshape(-1)
        conv_in, cpads = x, (0, 0, 0, 0)
        if st == (1, 1) and min(border) >= 0:
            cpads = tuple(border)
        else:
            up = self.emit(node, "upsample", [x], "", {"up": list(st), "border": border},
                           out_fg=self.fresh(f"{node.output[0]}_up"), name=f"{self._nname}_upsample")
            conv_in = up.output
        self.emit(node, "conv2d", [conv_in], node.output[0],
                  {"stride": (1, 1), "pads": cpads, "dilation": dil, "groups": g}, params)

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
