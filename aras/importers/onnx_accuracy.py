"""Accuracy of an imported, quantized ONNX model: the bit-exact int8 golden model
(``sim_models.functional``) against a float reference run of the same ONNX graph (onnxruntime when
installed, else ``onnx.reference.ReferenceEvaluator``) on the same inputs, per output: cosine
similarity and max |error| (``aras import-onnx`` prints it)."""

from __future__ import annotations

import numpy as np

from ..errors import ArasError

__all__ = ["float_reference", "accuracy", "host_layers_line"]


def float_reference(model, x: np.ndarray) -> tuple[dict[str, np.ndarray], str]:
    """({ONNX output name: float output}, name of the runtime) of ``model`` on the batch ``x``."""
    name = next(v.name for v in model.graph.input if v.name not in {i.name for i in model.graph.initializer})
    feed = {name: np.asarray(x, dtype=np.float32)}
    outs = [o.name for o in model.graph.output]
    try:
        import onnxruntime as ort
    except ImportError:
        ort = None
    try:
        if ort is not None:
            sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
            return dict(zip(outs, sess.run(outs, feed), strict=True)), f"onnxruntime {ort.__version__}"
        from onnx.reference import ReferenceEvaluator

        # one sample at a time: onnx 1.23's reference ConvTranspose writes only the first image of a batch
        ev = ReferenceEvaluator(model)
        runs = [ev.run(outs, {name: feed[name][i:i + 1]}) for i in range(len(x))]
        return {o: np.concatenate([r[j] for r in runs]) for j, o in enumerate(outs)}, \
            "onnx.reference.ReferenceEvaluator"
    except Exception as e:
        raise ArasError(f"float reference run failed ({type(e).__name__}: {str(e).strip().splitlines()[0]})") \
            from None


def accuracy(model, trace, graph, x: np.ndarray, cfg) -> tuple[list[dict], str]:
    """Per trace output: {"output", "onnx", "cosine", "max_abs_error", "max_ref", "scale"}, and the
    reference runtime's name. ``graph`` is the imported FloatGraph (its ``source_outputs`` map ONNX
    output names to trace tensors)."""
    from sim_models import functional

    from ..quant import dequantize

    ref, runtime = float_reference(model, x)
    q = functional.run(trace, cfg, trace.quantize_input(x, source="calibration inputs"))
    back = {}
    for onnx_name, t in getattr(graph, "source_outputs", {}).items():
        back.setdefault(t, onnx_name)
    rows = []
    for t in trace.outputs:
        tq = trace.tensors[t]
        got = dequantize(q[t], tq.scale, tq.zero_point).astype(np.float64).reshape(len(x), -1)
        onnx_name = back.get(t, t)
        r = np.asarray(ref[onnx_name], dtype=np.float64).reshape(len(x), -1)
        den = float(np.linalg.norm(got) * np.linalg.norm(r))
        cos = float(np.dot(got.ravel(), r.ravel()) / den) if den > 0 else float(np.allclose(got, r))
        rows.append({"output": t, "onnx": onnx_name, "cosine": cos, "max_abs_error": float(np.abs(got - r).max()),
                     "max_ref": float(np.abs(r).max()), "scale": tq.scale})
    return rows, runtime


def host_layers_line(trace) -> str | None:
    """``host path: N layers: name (op), ...`` for the trace's host layers, or None."""
    hs = [ly for ly in trace.layers if ly.on_host]
    if not hs:
        return None
    return f"host path: {len(hs)} layer{'s' * (len(hs) != 1)}: " + ", ".join(f"{ly.name} ({ly.op})" for ly in hs)
