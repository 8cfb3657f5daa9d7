"""ONNX graph normalisation before import (docs/trace-format.md, "ONNX import").

:func:`normalise` returns a rewritten copy of a checked ``onnx.ModelProto``:

1. **Input shapes**: ``input_shapes`` (``--input-shape NAME=1,3,48,192``) fixes the dimensions of
   graph inputs; a fixed dimension that disagrees, an unknown name or a wrong rank is an error.
2. **Shape inference and constant folding**, repeated until nothing changes: ``onnx.shape_inference``
   (with data propagation) annotates every tensor it can; every default-domain node whose inputs are
   all constants is evaluated with ``onnx.reference.ReferenceEvaluator`` and becomes an initializer
   (Shape/Gather/Slice/Cast/Reshape/Unsqueeze/Squeeze/Concat chains on shapes, weight transposes,
   ...); ``Shape``/``Size`` of a tensor whose inferred shape is fully static is replaced by its value.
   ``QuantizeLinear``/``DequantizeLinear`` are left to the importer (it records their scales), and
   so are random and control-flow operators.
3. **Pattern fusion** into single nodes of the internal domain :data:`FUSED_DOMAIN`, each named
   after the last node of its pattern (so errors and reports name a node of the user's model):

   - ``HardSwish`` (attrs alpha, beta): ``x · HardSigmoid(x)`` and the written-out
     ``x · Clip(x + b, 0, d) / d`` (``/ d`` as Div or a Mul by ``1/d``, on either factor);
   - ``Silu`` (attr alpha): ``x · Sigmoid(x)`` and ``x · Sigmoid(α·x)`` (e.g. the "quick GELU" α = 1.702);
   - ``Gelu`` (attr approximate "none" / "tanh"): ``x · 0.5 · (1 + Erf(x / √2))`` and
     ``x · 0.5 · (1 + Tanh(√(2/π) · (x + 0.044715 · x³)))`` in any association of the products;
   - ``LayerNormalization`` (attr epsilon; inputs x, gamma?, beta?): ``ReduceMean`` over the last
     axis, ``Sub``, ``Pow 2`` (or ``d · d``), ``ReduceMean``, ``Add ε``, ``Sqrt``, ``Div`` (or a
     ``Mul`` by ``Reciprocal``), then optional ``Mul γ`` and ``Add β``.

   A pattern is fused only when every intermediate tensor is read inside the pattern alone (and is
   no graph output); otherwise the nodes stay as they are (and the importer says which operator it
   cannot run).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ArasError

__all__ = ["FUSED_DOMAIN", "normalise", "parse_input_shapes"]

FUSED_DOMAIN = "aras.fused"

_NO_FOLD = {"QuantizeLinear", "DequantizeLinear", "RandomNormal", "RandomUniform", "RandomNormalLike",
            "RandomUniformLike", "Multinomial", "Bernoulli", "If", "Loop", "Scan", "SequenceConstruct",
            "SequenceAt", "SequenceEmpty", "SequenceInsert", "SequenceErase", "SplitToSequence",
            "ConcatFromSequence", "Optional", "OptionalGetElement", "OptionalHasElement", "Dropout"}


def parse_input_shapes(specs, flag: str = "--input-shape") -> dict[str, tuple[int, ...]]:
    """``["x=1,3,48,192", ...]`` -> {"x": (1, 3, 48, 192)}; a malformed entry is a one-line error."""
    out: dict[str, tuple[int, ...]] = {}
    for s in specs or ():
        name, eq, dims = str(s).rpartition("=")
        try:
            shape = tuple(int(d) for d in dims.replace("x", ",").split(",") if d.strip())
        except ValueError:
            shape = ()
        if not eq or not name or not shape or min(shape) < 1:
            raise ArasError(f"{flag} {s!r}: expected NAME=D0,D1,... with positive integers, e.g. x=1,3,48,192")
        if name in out:
            raise ArasError(f"{flag}: input {name!r} given twice")
        out[name] = shape
    return out


def normalise(model, src: str = "<model>", input_shapes: dict | None = None):
    """A normalised copy of ``model`` (see the module docstring)."""
    import onnx

    m = onnx.ModelProto()
    m.CopyFrom(model)
    for i, n in enumerate(m.graph.node):  # unnamed nodes keep the name of their index in the user's model
        if not n.name:
            n.name = f"{n.op_type}_{i}"
    _fix_inputs(m, src, input_shapes or {})
    del m.graph.value_info[:]  # stale annotations would contradict the fixed input shapes
    for _ in range(8):
        m = _infer(m)
        if not _fold(m, src):
            break
    m = _infer(m)
    _fuse(m)
    return m


# ---------------------------------------------------------------------------------------------- inputs
def _fix_inputs(m, src: str, shapes: dict):
    inits = {i.name for i in m.graph.initializer}
    ins = {v.name: v for v in m.graph.input if v.name not in inits}
    for name, shape in shapes.items():
        if name not in ins:
            raise ArasError(f"{src}: --input-shape names {name!r}, but the graph inputs are {sorted(ins)}")
        tt = ins[name].type.tensor_type
        dims = tt.shape.dim
        if tt.HasField("shape") and len(dims) != len(shape):
            raise ArasError(f"{src}: --input-shape {name}={','.join(map(str, shape))} has rank {len(shape)}, the "
                            f"model's input {name!r} has rank {len(dims)}")
        if not tt.HasField("shape"):
            for _ in shape:
                tt.shape.dim.add()
        for i, (d, v) in enumerate(zip(tt.shape.dim, shape, strict=True)):
            if d.HasField("dim_value") and d.dim_value > 0 and d.dim_value != v:
                raise ArasError(f"{src}: --input-shape {name}: dimension {i} is {d.dim_value} in the model, not {v}")
            d.Clear()
            d.dim_value = int(v)


# ---------------------------------------------------------------------------------------------- folding
def _infer(m):
    import onnx

    try:
        return onnx.shape_inference.infer_shapes(m, check_type=False, strict_mode=False, data_prop=True)
    except Exception:  # inference is advisory: the importer computes and checks every shape itself
        return m


def _static_shapes(m) -> dict[str, list[int]]:
    out = {}
    for v in list(m.graph.value_info) + list(m.graph.input) + list(m.graph.output):
        if not v.type.HasField("tensor_type") or not v.type.tensor_type.HasField("shape"):
            continue
        dims = v.type.tensor_type.shape.dim
        if all(d.HasField("dim_value") and d.dim_value >= 0 for d in dims):
            out[v.name] = [int(d.dim_value) for d in dims]
    return out


def _opset(m) -> int:
    return next((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), 0)


def _eval_node(node, consts: dict, opset: int) -> list[np.ndarray]:
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    ins = [t for t in node.input if t]
    g = helper.make_graph(
        [node], "fold", [helper.make_tensor_value_info(t, helper.np_dtype_to_tensor_dtype(consts[t].dtype),
                                                       consts[t].shape) for t in dict.fromkeys(ins)],
        [helper.make_empty_tensor_value_info(o) for o in node.output if o])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    outs = ReferenceEvaluator(m).run(None, {t: consts[t] for t in dict.fromkeys(ins)})
    return [np.asarray(o) for o in outs]


def _fold(m, src: str) -> bool:
    """Evaluate constant nodes in place; True when anything changed."""
    from onnx import numpy_helper

    g = m.graph
    consts = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    static = _static_shapes(m)
    opset = _opset(m)
    keep, changed, new_inits = [], False, []
    for node in g.node:
        ins = [t for t in node.input if t]
        value = None
        if node.domain not in ("", "ai.onnx") or node.op_type in _NO_FOLD:
            pass
        elif node.op_type == "Constant":
            try:
                value = _eval_node(node, consts, opset)
            except Exception as e:
                raise ArasError(f"{src}: node {node.name or node.output[0]!r} (Constant): cannot be read: {e}") \
                    from None
        elif node.op_type in ("Shape", "Size") and ins and ins[0] in static and ins[0] not in consts:
            shp = static[ins[0]]
            if node.op_type == "Size":
                value = [np.array(int(np.prod(shp, dtype=np.int64)), dtype=np.int64)]
            else:
                a = {x.name: x.i for x in node.attribute}
                r = len(shp)
                s, e = a.get("start", 0), a.get("end", r)
                s, e = (s + r if s < 0 else s), (e + r if e < 0 else e)
                value = [np.array(shp[max(0, s):min(r, e)], dtype=np.int64)]
        elif ins and all(t in consts for t in ins) and node.output:
            try:
                value = _eval_node(node, consts, opset)
            except Exception:  # left to the importer, which names the node and what it cannot do
                value = None
        if value is None:
            keep.append(node)
            continue
        changed = True
        for o, v in zip(node.output, value, strict=False):
            if o:
                consts[o] = v
                new_inits.append(numpy_helper.from_array(v, o))
    if changed:
        del g.node[:]
        g.node.extend(keep)
        g.initializer.extend(new_inits)
        used = {t for n in g.node for t in n.input} | {o.name for o in g.output}
        # initializers nothing reads any more (intermediate folded values) are dropped, and so are
        # their entries in the graph inputs (IR < 4 lists initializers there)
        dropped = {i.name for i in g.initializer if i.name not in used}
        live = [i for i in g.initializer if i.name in used]
        del g.initializer[:]
        g.initializer.extend(live)
        ins = [v for v in g.input if v.name not in dropped]
        del g.input[:]
        g.input.extend(ins)
    return changed


# ---------------------------------------------------------------------------------------------- fusion
class _View:
    """Producers, users and constants of the current node list."""

    def __init__(self, m):
        from onnx import numpy_helper

        self.g = m.graph
        self.consts = {i.name: numpy_helper.to_array(i) for i in self.g.initializer}
        self.producer = {o: n for n in self.g.node for o in n.output if o}
        self.users: dict[str, list] = {}
        for n in self.g.node:
            for t in n.input:
                if t:
                    self.users.setdefault(t, []).append(n)
        self.outputs = {o.name for o in self.g.output}
        self.rank = {k: len(v) for k, v in _static_shapes(m).items()}
        for v in list(self.g.value_info) + list(self.g.input):
            tt = v.type.tensor_type
            if v.type.HasField("tensor_type") and tt.HasField("shape"):
                self.rank.setdefault(v.name, len(tt.shape.dim))

    def prod(self, t, *ops):
        n = self.producer.get(t)
        return n if n is not None and n.domain in ("", "ai.onnx") and (not ops or n.op_type in ops) else None

    def scalar(self, t) -> float | None:
        c = self.consts.get(t)
        if c is None or c.size != 1 or c.dtype.kind not in "fiu":
            return None
        return float(c.reshape(()))

    def private(self, t, inside: set) -> bool:
        """Every reader of ``t`` is a node of the pattern (by id) and ``t`` is no graph output."""
        return t not in self.outputs and all(id(u) in inside for u in self.users.get(t, []))

    def attr(self, n, name, default=None):
        from onnx import helper

        for a in n.attribute:
            if a.name == name:
                return helper.get_attribute_value(a)
        return default


def _close(v, ref, rtol=1e-4) -> bool:
    return v is not None and abs(v - ref) <= rtol * abs(ref)


def _other(n, t):
    """The input of binary node ``n`` that is not ``t`` (None unless ``t`` is one of its two inputs)."""
    a, b = n.input[0], n.input[1]
    return b if a == t else a if b == t else None


def _flatten_mul(v: _View, t, inside: list, root=True):
    """Leaves of the product tree at ``t`` (Mul nodes, Div by constants): (activation leaves, constant
    factor). Nodes of the tree are appended to ``inside``; a non-root product node is expanded only
    when ``t`` has one reader."""
    n = v.prod(t, "Mul", "Div")
    if n is None or (not root and (len(v.users.get(t, [])) != 1 or t in v.outputs)):
        c = v.scalar(t)
        return ([], c) if c is not None else ([t], 1.0)
    if n.op_type == "Div":
        c = v.scalar(n.input[1])
        if c is None or c == 0:
            return [t], 1.0
        inside.append(n)
        leaves, k = _flatten_mul(v, n.input[0], inside, False)
        return leaves, k / c
    inside.append(n)
    la, ka = _flatten_mul(v, n.input[0], inside, False)
    lb, kb = _flatten_mul(v, n.input[1], inside, False)
    return la + lb, ka * kb


def _clip_bounds(v: _View, n) -> tuple[float | None, float | None]:
    if n.op_type == "Relu":
        return 0.0, math.inf
    lo, hi = v.attr(n, "min"), v.attr(n, "max")
    if len(n.input) > 1 and n.input[1]:
        lo = v.scalar(n.input[1])
    if len(n.input) > 2 and n.input[2]:
        hi = v.scalar(n.input[2])
    return (-math.inf if lo is None and len(n.input) < 2 else lo), (math.inf if hi is None else hi)


def _hardsigmoid_of(v: _View, t):
    """(x, alpha, beta, nodes) when ``t`` is HardSigmoid(x) or Clip(x + b, 0, d) / d, else None."""
    n = v.prod(t, "HardSigmoid")
    if n is not None:
        return n.input[0], float(v.attr(n, "alpha", 0.2)), float(v.attr(n, "beta", 0.5)), [n]
    inside: list = []
    leaves, k = _flatten_mul(v, t, inside)
    if len(leaves) != 1 or not inside:
        return None
    r = _relu6_of(v, leaves[0])
    if r is None:
        return None
    x, b, d, nodes = r
    if not _close(k * d, 1.0):
        return None
    return x, 1.0 / d, b / d, inside + nodes


def _relu6_of(v: _View, t):
    """(x, b, d, nodes) when ``t`` is Clip(x + b, 0, d) with constants b, d > 0, else None."""
    c = v.prod(t, "Clip")
    if c is None:
        return None
    lo, hi = _clip_bounds(v, c)
    a = v.prod(c.input[0], "Add")
    if lo != 0.0 or hi is None or not 0 < hi < math.inf or a is None:
        return None
    for x, bt in ((a.input[0], a.input[1]), (a.input[1], a.input[0])):
        b = v.scalar(bt)
        if b is not None and x not in v.consts:
            return x, b, hi, [c, a]
    return None


def _gelu_core(v: _View, t):
    """(x, approximate, nodes) when ``t`` is 1 + Erf(x/√2) or 1 + Tanh(√(2/π)(x + 0.044715x³))."""
    a = v.prod(t, "Add")
    if a is None:
        return None
    for e, one in ((a.input[0], a.input[1]), (a.input[1], a.input[0])):
        if not _close(v.scalar(one), 1.0):
            continue
        en = v.prod(e, "Erf", "Tanh")
        if en is None:
            continue
        inside: list = []
        leaves, k = _flatten_mul(v, en.input[0], inside)
        if len(leaves) != 1:
            continue
        if en.op_type == "Erf" and _close(k, 1 / math.sqrt(2.0)):
            return leaves[0], "none", [a, en] + inside
        if en.op_type == "Tanh" and _close(k, math.sqrt(2 / math.pi)):
            s = v.prod(leaves[0], "Add")
            if s is None:
                continue
            for x, cube in ((s.input[0], s.input[1]), (s.input[1], s.input[0])):
                inner: list = []
                cl, ck = _flatten_mul(v, cube, inner, False)
                pw = [n for n in (v.prod(q, "Pow") for q in cl) if n is not None]
                if len(cl) == 1 and pw and pw[0].input[0] == x and _close(v.scalar(pw[0].input[1]), 3.0) \
                        and len(v.users.get(cl[0], [])) == 1:
                    inner.append(pw[0])
                elif sorted(cl) != [x, x, x]:
                    continue
                if _close(ck, 0.044715):
                    return x, "tanh", [a, en, s] + inside + inner
    return None


def _layernorm_core(v: _View, n):
    """(x, eps, nodes) when ``n`` is (x − mean)/√(var + ε) over the last axis, else None."""
    if n.op_type == "Div":
        d_t, s_t = n.input[0], n.input[1]
        extra: list = []
    elif n.op_type == "Mul":
        pairs = [(d, r) for d, r in ((n.input[0], n.input[1]), (n.input[1], n.input[0]))
                 if v.prod(r, "Reciprocal") is not None]
        if not pairs:
            return None
        d_t, r = pairs[0][0], v.prod(pairs[0][1], "Reciprocal")
        s_t, extra = r.input[0], [r]
    else:
        return None
    sub, sq = v.prod(d_t, "Sub"), v.prod(s_t, "Sqrt")
    if sub is None or sq is None:
        return None
    x, mu = sub.input[0], sub.input[1]
    rm1 = v.prod(mu, "ReduceMean")
    add = v.prod(sq.input[0], "Add")
    if rm1 is None or rm1.input[0] != x or add is None:
        return None
    for var_t, eps_t in ((add.input[0], add.input[1]), (add.input[1], add.input[0])):
        eps = v.scalar(eps_t)
        rm2 = v.prod(var_t, "ReduceMean")
        if eps is None or rm2 is None:
            continue
        p = v.prod(rm2.input[0], "Pow", "Mul")
        if p is None or p.input[0] != d_t or (p.op_type == "Pow" and not _close(v.scalar(p.input[1]), 2.0)) \
                or (p.op_type == "Mul" and p.input[1] != d_t):
            continue
        if not (_last_axis(v, rm1, x) and _last_axis(v, rm2, x)):
            continue
        return x, eps, [n, sub, sq, rm1, add, rm2, p] + extra
    return None


def _last_axis(v: _View, rm, x) -> bool:
    axes = v.attr(rm, "axes")
    if axes is None and len(rm.input) > 1 and rm.input[1] in v.consts:
        axes = [int(a) for a in v.consts[rm.input[1]].reshape(-1)]
    if axes is None or len(axes) != 1 or not int(v.attr(rm, "keepdims", 1)):
        return False
    r = v.rank.get(x)
    return axes[0] == -1 or (r is not None and axes[0] == r - 1)


def _match(v: _View, n):
    """(fused op, inputs, attrs, pattern nodes) of the pattern whose last node is ``n``, or None."""
    if n.domain not in ("", "ai.onnx"):
        return None
    op = n.op_type
    if op in ("Mul", "Div"):
        # x * act(x) forms, with the whole product tree as the pattern's tail
        inside: list = []
        leaves, k = _flatten_mul(v, n.output[0], inside)
        if len(leaves) == 2:
            for x, s in ((leaves[0], leaves[1]), (leaves[1], leaves[0])):
                sg = v.prod(s, "Sigmoid")
                if sg is not None and _close(k, 1.0):
                    sin: list = []
                    sl, alpha = _flatten_mul(v, sg.input[0], sin, False)  # x * sigmoid(alpha * x)
                    if sl == [x]:
                        return "Silu", [x], {"alpha": alpha}, inside + [sg] + sin
                hs = _hardsigmoid_of(v, s)
                if hs is not None and hs[0] == x and _close(k, 1.0):
                    return "HardSwish", [x], {"alpha": hs[1], "beta": hs[2]}, inside + hs[3]
                r6 = _relu6_of(v, s)  # x * Clip(x + b, 0, d) * k with k = 1/d
                if r6 is not None and r6[0] == x and _close(k * r6[2], 1.0):
                    return "HardSwish", [x], {"alpha": 1.0 / r6[2], "beta": r6[1] / r6[2]}, inside + r6[3]
                g = _gelu_core(v, s)
                if g is not None and g[0] == x and _close(k, 0.5):
                    return "Gelu", [x], {"approximate": g[1]}, inside + g[2]
        ln = _layernorm_core(v, n)
        if ln is not None:
            return "LayerNormalization", [ln[0]], {"epsilon": ln[1]}, ln[2]
    return None


def _extend_layernorm(v: _View, out: str, nodes: list, inputs: list):
    """Absorb a following Mul by a constant γ and Add of a constant β (last-axis vectors)."""
    for op, slot in (("Mul", 1), ("Add", 2)):
        us = v.users.get(out, [])
        if len(us) != 1 or out in v.outputs or us[0].op_type != op or us[0].domain not in ("", "ai.onnx"):
            if op == "Mul":
                continue
            break
        u = us[0]
        c = _other(u, out)
        if c is None or c not in v.consts or v.consts[c].ndim > 1 or v.consts[c].dtype.kind != "f":
            if op == "Mul":
                continue
            break
        while len(inputs) < slot:
            inputs.append("")
        inputs.append(c)
        nodes.append(u)
        out = u.output[0]
    return out


def _fuse(m):
    from onnx import helper

    while True:
        v = _View(m)
        done: set = set()
        repl: dict[int, object] = {}
        drop: set = set()
        for n in reversed(list(m.graph.node)):  # last nodes first: the largest pattern wins
            if id(n) in done:
                continue
            r = _match(v, n)
            if r is None:
                continue
            op, inputs, attrs, nodes = r
            ids = {id(k) for k in nodes}
            if ids & done or any(not v.private(o, ids) for k in nodes if k is not n for o in k.output if o):
                continue
            out, last = n.output[0], n
            if op == "LayerNormalization":
                tail = [n]
                out = _extend_layernorm(v, out, tail, inputs)
                last = tail[-1]
                nodes = nodes + tail[1:]
                ids = {id(k) for k in nodes}
                if any(not v.private(o, ids) for k in nodes if k is not last for o in k.output if o):
                    continue
                while inputs and not inputs[-1]:
                    inputs.pop()
            fused = helper.make_node(op, inputs, [out], name=last.name or out, domain=FUSED_DOMAIN, **attrs)
            done |= ids
            repl[id(last)] = fused
            drop |= ids - {id(last)}
        if not repl:
            return
        new = [repl.get(id(k), k) for k in m.graph.node if id(k) not in drop]
        del m.graph.node[:]
        m.graph.node.extend(new)
        if not any(o.domain == FUSED_DOMAIN for o in m.opset_import):
            m.opset_import.append(helper.make_opsetid(FUSED_DOMAIN, 1))
