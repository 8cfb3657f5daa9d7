"""MTCNN P-Net, R-Net and O-Net with the real facenet-pytorch 2.6.0 weights, as float graphs.

The weights are the state dicts ``facenet_pytorch/data/{pnet,rnet,onet}.pt`` of the pinned wheel
(MIT), read without torch by :mod:`aras.importers.torch_legacy`. The architectures follow
facenet-pytorch's ``PNet``/``RNet``/``ONet`` modules (checked against the state-dict shapes):
convolutions without padding, per-channel PReLU, max pooling with ``ceil_mode=True``, softmax
heads over the two face/no-face classes. Inputs are the native crop sizes (12, 24, 48 px square),
NCHW, already normalized to ``(pixel - 127.5) / 128``; that normalization is outside the graph.

Two torch features have no graph operator and are folded into equivalent forms:

* ``ceil_mode`` pooling = floor-mode pooling with extra bottom/right padding (max-pool padding
  never wins, it is -inf);
* R/O-Net's ``x.permute(0, 3, 2, 1)`` before flattening = a permutation of the first dense
  layer's input columns, so a plain C-order ``flatten`` gives identical results.

No face images are available offline, so calibration and sample inputs are deterministic smooth
synthetic images (low-pass noise, a colour gradient and Gaussian blobs) scaled to [-1, 1].
"""

from __future__ import annotations

import numpy as np

from ..errors import ArasError
from ..fetch import PINS, wheel_member
from ..graph import FloatGraph, FNode
from ..importers.torch_legacy import load_state_dict
from . import ModelSource

N_CALIB = 64
N_SAMPLES = 16
NOTES = ("real weights (facenet-pytorch {v} {net}.pt), synthetic inputs (seeded smooth random images "
         "in [-1, 1]; no face images offline)")


def load_weights(net: str) -> dict[str, np.ndarray]:
    """State dict of ``net`` ("pnet", "rnet" or "onet") from the pinned facenet-pytorch wheel."""
    member = f"facenet_pytorch/data/{net}.pt"
    return load_state_dict(wheel_member("facenet-pytorch", member), f"facenet-pytorch {member}")


def ceil_mode_extra(size: int, kernel: int, stride: int) -> int:
    """Extra bottom/right padding that makes floor-mode pooling produce torch's ceil_mode output size.

    torch (no padding): ``out = ceil((size - kernel) / stride) + 1``, minus one if the last window
    would start outside the input.
    """
    out = -(-(size - kernel) // stride) + 1
    if (out - 1) * stride >= size:
        out -= 1
    return max(0, (out - 1) * stride + kernel - size)


def fold_permute_flatten(weight: np.ndarray, chw: tuple[int, int, int]) -> np.ndarray:
    """Dense weight for C-order flatten of (C, H, W) equal to ``weight`` after ``permute(0, 3, 2, 1)``.

    torch flattens the (W, H, C) permuted tensor, so its input column ``(w*H + h)*C + c`` holds what
    our flatten puts at ``(c*H + h)*W + w``.
    """
    c, h, w = chw
    n = weight.shape[0]
    if weight.shape[1] != c * h * w:
        raise ArasError(f"dense weight {weight.shape} does not fit a flattened {chw} tensor")
    return weight.reshape(n, w, h, c).transpose(0, 3, 2, 1).reshape(n, c * h * w)


class _Builder:
    """Appends nodes in order, tracking each tensor's shape (without batch)."""

    def __init__(self, sd: dict[str, np.ndarray], source: str, input_shape: tuple[int, int, int]):
        self.sd, self.source = sd, source
        self.nodes: list[FNode] = []
        self.cur = "input"
        self.shapes: dict[str, tuple[int, ...]] = {"input": input_shape}
        self.used: set[str] = set()
        self.folded_chw: tuple[int, int, int] | None = None

    def param(self, key: str, shape: tuple[int, ...]) -> np.ndarray:
        if key not in self.sd:
            raise ArasError(f"{self.source}: state dict has no {key!r}")
        a = self.sd[key]
        if a.shape != shape:
            raise ArasError(f"{self.source}: {key} has shape {a.shape}, the architecture needs {shape}")
        self.used.add(key)
        return np.asarray(a, dtype=np.float64)

    def add(self, name: str, op: str, shape, attrs=None, params=None, src=None, out=None) -> str:
        out = out or name
        self.nodes.append(FNode(name, op, [src or self.cur], out, attrs or {}, params or {}))
        self.shapes[out] = tuple(shape)
        self.cur = out
        return out

    def conv(self, name: str, cout: int, k: int, src=None, out=None) -> str:
        cin, h, w = self.shapes[src or self.cur]
        p = {"weight": self.param(f"{name}.weight", (cout, cin, k, k)),
             "bias": self.param(f"{name}.bias", (cout,))}
        attrs = {"stride": (1, 1), "pads": (0, 0, 0, 0)}
        return self.add(name, "conv2d", (cout, h - k + 1, w - k + 1), attrs, p, src, out)

    def prelu(self, name: str) -> str:
        shape = self.shapes[self.cur]
        return self.add(name, "prelu", shape, params={"slope": self.param(f"{name}.weight", (shape[0],))})

    def softmax(self, name: str, axis: int, out: str) -> str:
        return self.add(name, "softmax", self.shapes[self.cur], {"axis": axis}, out=out)

    def maxpool_ceil(self, name: str, k: int, s: int) -> str:
        c, h, w = self.shapes[self.cur]
        eh, ew = ceil_mode_extra(h, k, s), ceil_mode_extra(w, k, s)
        return self.add(name, "maxpool", (c, (h + eh - k) // s + 1, (w + ew - k) // s + 1),
                        {"kernel": (k, k), "stride": (s, s), "pads": (0, 0, eh, ew)})

    def flatten_permuted(self, name: str) -> str:
        """C-order flatten; the next ``dense(fold=True)`` folds torch's permute(0, 3, 2, 1) in."""
        self.folded_chw = self.shapes[self.cur]
        return self.add(name, "flatten", (int(np.prod(self.folded_chw)),))

    def dense(self, name: str, n: int, src=None, out=None, fold=False) -> str:
        (k,) = self.shapes[src or self.cur]
        w = self.param(f"{name}.weight", (n, k))
        if fold:
            w = fold_permute_flatten(w, self.folded_chw)
        return self.add(name, "linear", (n,), params={"weight": w, "bias": self.param(f"{name}.bias", (n,))},
                        src=src, out=out)

    def graph(self, name: str, outputs: list[str]) -> FloatGraph:
        unused = sorted(set(self.sd) - self.used)
        if unused:
            raise ArasError(f"{self.source}: state-dict entries not used by the architecture: {unused}")
        g = FloatGraph(name, "input", self.shapes["input"], self.nodes, outputs, weights="real")
        for t, shape in self.shapes.items():  # our shape bookkeeping must agree with the graph's inference
            if g.shapes[t] != shape:
                raise ArasError(f"graph {name}: tensor {t!r} has shape {g.shapes[t]}, expected {shape}")
        return g


def synthetic_images(n: int, size: int, seed: int) -> np.ndarray:
    """``n`` deterministic smooth RGB images (n, 3, size, size) in [-1, 1].

    Each is low-pass filtered noise (shared luminance plus weaker per-channel tint), a random
    colour gradient and one to three Gaussian blobs, min-max scaled to exactly [-1, 1].
    """
    rng = np.random.default_rng(seed)
    f = np.fft.fftfreq(size)
    f2 = f[:, None] ** 2 + f[None, :] ** 2
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1) * 2.0 - 1.0
    out = np.empty((n, 3, size, size))
    for i in range(n):
        sigma = rng.uniform(0.04, 0.15) * size  # smoothing length in pixels
        lowpass = np.exp(-2.0 * np.pi ** 2 * sigma ** 2 * f2)
        noise = rng.standard_normal((4, size, size))
        smooth = np.fft.ifft2(np.fft.fft2(noise) * lowpass).real
        smooth /= smooth.std(axis=(1, 2), keepdims=True) + 1e-12
        img = smooth[0][None] + 0.3 * smooth[1:]
        g = rng.standard_normal((3, 2))
        img += g[:, :1, None] * xx + g[:, 1:, None] * yy
        for _ in range(rng.integers(1, 4)):
            cy, cx = rng.uniform(-0.8, 0.8, 2)
            r = rng.uniform(0.1, 0.5)
            blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
            img += rng.normal(0.0, 2.0, 3)[:, None, None] * blob
        lo, hi = img.min(), img.max()
        out[i] = 2.0 * (img - lo) / (hi - lo) - 1.0
    return out


def _source(net: str, graph: FloatGraph, size: int, seed: int) -> ModelSource:
    return ModelSource(graph, calib=synthetic_images(N_CALIB, size, seed),
                       samples=synthetic_images(N_SAMPLES, size, seed + 1), labels=None,
                       notes=NOTES.format(v=PINS["facenet-pytorch"][0], net=net))


def pnet() -> ModelSource:
    """P-Net on one 12x12 crop: outputs ``prob`` (2, 1, 1) face/no-face softmax and ``bbox`` (4, 1, 1)."""
    shape = (3, 12, 12)
    b = _Builder(load_weights("pnet"), "facenet-pytorch pnet.pt", shape)
    b.conv("conv1", 10, 3)
    b.prelu("prelu1")
    b.maxpool_ceil("pool1", 2, 2)
    b.conv("conv2", 16, 3)
    b.prelu("prelu2")
    b.conv("conv3", 32, 3)
    trunk = b.prelu("prelu3")
    b.conv("conv4_1", 2, 1, src=trunk)
    b.softmax("softmax4_1", 0, out="prob")  # torch Softmax(dim=1): the channel axis of (C, H, W)
    b.conv("conv4_2", 4, 1, src=trunk, out="bbox")
    return _source("pnet", b.graph("mtcnn-pnet", ["prob", "bbox"]), 12, seed=1201)


def rnet() -> ModelSource:
    """R-Net on one 24x24 crop: outputs ``prob`` (2,) and ``bbox`` (4,)."""
    shape = (3, 24, 24)
    b = _Builder(load_weights("rnet"), "facenet-pytorch rnet.pt", shape)
    b.conv("conv1", 28, 3)
    b.prelu("prelu1")
    b.maxpool_ceil("pool1", 3, 2)
    b.conv("conv2", 48, 3)
    b.prelu("prelu2")
    b.maxpool_ceil("pool2", 3, 2)
    b.conv("conv3", 64, 2)
    b.prelu("prelu3")
    b.flatten_permuted("flatten")
    b.dense("dense4", 128, fold=True)
    trunk = b.prelu("prelu4")
    b.dense("dense5_1", 2, src=trunk)
    b.softmax("softmax5_1", -1, out="prob")
    b.dense("dense5_2", 4, src=trunk, out="bbox")
    return _source("rnet", b.graph("mtcnn-rnet", ["prob", "bbox"]), 24, seed=2401)


def onet() -> ModelSource:
    """O-Net on one 48x48 crop: outputs ``prob`` (2,), ``bbox`` (4,) and ``landmarks`` (10,)."""
    shape = (3, 48, 48)
    b = _Builder(load_weights("onet"), "facenet-pytorch onet.pt", shape)
    b.conv("conv1", 32, 3)
    b.prelu("prelu1")
    b.maxpool_ceil("pool1", 3, 2)
    b.conv("conv2", 64, 3)
    b.prelu("prelu2")
    b.maxpool_ceil("pool2", 3, 2)
    b.conv("conv3", 64, 3)
    b.prelu("prelu3")
    b.maxpool_ceil("pool3", 2, 2)
    b.conv("conv4", 128, 2)
    b.prelu("prelu4")
    b.flatten_permuted("flatten")
    b.dense("dense5", 256, fold=True)
    trunk = b.prelu("prelu5")
    b.dense("dense6_1", 2, src=trunk)
    b.softmax("softmax6_1", -1, out="prob")
    b.dense("dense6_2", 4, src=trunk, out="bbox")
    b.dense("dense6_3", 10, src=trunk, out="landmarks")
    return _source("onet", b.graph("mtcnn-onet", ["prob", "bbox", "landmarks"]), 48, seed=4801)
