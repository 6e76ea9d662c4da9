"""``.zssr`` files: a trained network, its configuration, factor, kernel and intensity handling.

A ``.zssr`` file is a safetensors file: the network's weights (``body.<i>.weight``, float32)
and the kernel (``kernel``, float64, on the output grid; absent for bicubic) as tensors, and
one JSON document in the header's metadata under ``napari_zssr``::

    {"format": "napari-zssr network", "format_version": 1, "package_version": "0.1.0",
     "scale": [2.0, 2.0], "channels": 1, "config": {...every ZSSRConfig field...},
     "kernel": false, "intensity": {...}, "noise_std": 0.012, "training": {...},
     "sha256": "..."}

Nothing is ever unpickled: the file is parsed as JSON plus raw little-endian arrays (with the
``safetensors`` NumPy reader; no torch). Reading checks everything: the header, the format
and its version, the configuration, the names, shapes and dtypes of the tensors against the
configuration, and a SHA-256 of the weights; every error names the file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np

from ..core.config import MAX_SCALE, ZSSRConfig
from ..core.model import ZSSRModel, expected_shapes
from .atomic import atomic_write

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "ModelFileError",
    "load_model",
    "read_model_header",
    "save_model",
]

FORMAT_NAME = "napari-zssr network"
FORMAT_VERSION = 1
"""Version of the layout written; files of a higher version are refused."""
META_KEY = "napari_zssr"
#: Largest header accepted: a real one is a few kilobytes.
MAX_HEADER = 16 * 2**20
_PICKLE_HINT = (
    "; .zssr networks are safetensors files (weights and a JSON header) and a pickle is "
    "never loaded, as it can run code"
)


class ModelFileError(ValueError):
    """A file that is not a valid ``.zssr`` network; the message names the file."""


def _fail(path: Path, problem: str) -> ModelFileError:
    return ModelFileError(f"{path}: {problem}")


def _digest(meta: dict[str, Any], tensors: dict[str, np.ndarray]) -> str:
    """SHA-256 of the metadata (canonical JSON, without the digest) and of every tensor's
    name, shape, dtype and bytes, in name order: any change to the file changes it."""
    h = hashlib.sha256()
    doc = {k: v for k, v in meta.items() if k != "sha256"}
    h.update(json.dumps(doc, sort_keys=True, default=_json_default).encode())
    for name in sorted(tensors):
        arr = np.ascontiguousarray(tensors[name])
        h.update(f"{name}:{arr.shape}:{arr.dtype.str};".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def _metadata(model: ZSSRModel) -> dict[str, Any]:
    config = model.config.to_dict()
    config.pop("extra", None)  # free-form annotations: not part of the network
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "package_version": model.version,
        "scale": [float(model.scale[0]), float(model.scale[1])],
        "channels": int(model.channels),
        "config": config,
        "kernel": model.kernel is not None,
        "intensity": model.intensity,
        "noise_std": float(model.noise_std),
        "training": model.training,
    }


def save_model(model: ZSSRModel, path: str | os.PathLike[str]) -> Path:
    """Write ``model`` to ``path`` (a ``.zssr`` file), atomically.

    Parameters
    ----------
    model : ZSSRModel
        The network (from ``super_resolve(..., keep_model=True)`` or ``train_model``).
    path : str or path-like
        The file; ``.zssr`` is the usual suffix. An existing file is replaced.

    Returns
    -------
    Path
        The file written.
    """
    from safetensors.numpy import save

    if not isinstance(model, ZSSRModel):
        raise TypeError(f"model must be a ZSSRModel, got {type(model).__name__}")
    path = Path(path)
    tensors = {k: np.ascontiguousarray(v, np.float32) for k, v in model.weights.items()}
    if model.kernel is not None:
        tensors["kernel"] = np.ascontiguousarray(model.kernel, np.float64)
    meta = _metadata(model)
    meta["sha256"] = _digest(meta, tensors)
    meta = json.dumps(meta, allow_nan=False, default=_json_default)
    data = save(tensors, metadata={META_KEY: meta})
    atomic_write(path, lambda fh: fh.write(data))
    return path


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-able")


def _read_bytes(path: Path) -> bytes:
    if not path.exists():
        raise FileNotFoundError(f"network file not found: {path}")
    if not path.is_file():
        raise _fail(path, "not a file")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise type(exc)(exc.errno, f"cannot read the network file {path}: {exc.strerror}") from None


def _header(path: Path, data: bytes) -> dict[str, Any]:
    """The safetensors JSON header of ``data``, after refusing pickles and broken headers."""
    if data[:1] == b"\x80" and data[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        raise _fail(path, "this is a Python pickle, not a .zssr network" + _PICKLE_HINT)
    if data[:4] == b"PK\x03\x04":
        raise _fail(path, "this is a zip archive (torch.save?), not a .zssr network" + _PICKLE_HINT)
    if len(data) < 10:
        raise _fail(path, f"too short to be a .zssr network ({len(data)} bytes)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > min(MAX_HEADER, len(data) - 8):
        raise _fail(
            path,
            "no valid .zssr header (the header length is wrong): not a .zssr "
            "network, or a damaged one",
        )
    try:
        header = json.loads(data[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(
            path, f"the .zssr header is not valid JSON ({exc}): the file is damaged or was modified"
        ) from None
    if not isinstance(header, dict):
        raise _fail(path, "the .zssr header is not a JSON object")
    return header


def _meta(path: Path, header: dict[str, Any]) -> dict[str, Any]:
    """The napari-zssr document of a header, its format and version checked."""
    raw = (header.get("__metadata__") or {}).get(META_KEY)
    if not isinstance(raw, str):
        raise _fail(path, "a safetensors file without napari-zssr metadata: not a .zssr network")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise _fail(path, f"the napari-zssr metadata is not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise _fail(path, "the metadata does not describe a napari-zssr network")
    # The digest covers the parsed values; the text must also be exactly what the writer
    # makes of them, or a changed digit below a float's precision would go unnoticed.
    try:
        canonical = json.dumps(meta, allow_nan=False, default=_json_default)
    except ValueError:
        canonical = None
    if canonical != raw:
        raise _fail(
            path,
            "the napari-zssr metadata is not as napari-zssr writes it: the file is damaged "
            "or was modified",
        )
    version = meta.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise _fail(path, f"unknown format version {version!r}")
    if version > FORMAT_VERSION:
        raise _fail(
            path,
            f"format version {version} was written by a newer napari-zssr "
            f"({meta.get('package_version', '?')}); this one reads up to version "
            f"{FORMAT_VERSION}: update napari-zssr",
        )
    return meta


def read_model_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The napari-zssr metadata of a ``.zssr`` file (format checked, weights not read).

    Used to check a run's options against the network (its factor) before any work.

    Raises
    ------
    FileNotFoundError, OSError
        A missing or unreadable file.
    ModelFileError
        Not a ``.zssr`` network (a pickle, another file, a damaged header, a newer format).
    """
    path = Path(path)
    return _check_meta(path, _meta(path, _header(path, _read_bytes(path))))


def _check_meta(path: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """The metadata's scale, channels and configuration, each checked."""
    scale = meta.get("scale")
    ok = isinstance(scale, list) and len(scale) == 2
    ok = ok and all(isinstance(s, (int, float)) and math.isfinite(s) for s in scale)
    if not ok or not all(1.0 <= s <= MAX_SCALE for s in scale) or scale == [1.0, 1.0]:
        raise _fail(path, f"invalid scale {scale!r} in the metadata")
    channels = meta.get("channels")
    if not isinstance(channels, int) or isinstance(channels, bool) or channels < 1:
        raise _fail(path, f"invalid channel count {channels!r} in the metadata")
    config = meta.get("config")
    if not isinstance(config, dict):
        raise _fail(path, "the metadata holds no configuration")
    known = {f.name for f in dataclasses.fields(ZSSRConfig)}
    unknown = sorted(set(config) - known)
    if unknown:
        raise _fail(path, f"unknown configuration field(s) {unknown}")
    try:
        meta["config"] = ZSSRConfig(**config)
    except (TypeError, ValueError) as exc:
        raise _fail(path, f"invalid configuration: {exc}") from None
    return meta


def _tensors(path: Path, data: bytes) -> dict[str, np.ndarray]:
    from safetensors import SafetensorError
    from safetensors.numpy import load

    try:
        return load(data)
    except (SafetensorError, ValueError, TypeError) as exc:
        raise _fail(
            path, f"the tensors cannot be read ({exc}): the file is damaged or was modified"
        ) from None


def _check_weights(path: Path, tensors: dict[str, np.ndarray], meta: dict[str, Any]) -> dict:
    cfg: ZSSRConfig = meta["config"]
    expected = expected_shapes(meta["channels"], cfg.width, cfg.depth)
    names = set(tensors) - {"kernel"}
    if names != set(expected):
        missing, extra = sorted(set(expected) - names), sorted(names - set(expected))
        raise _fail(
            path,
            f"the weights do not match the configuration (missing {missing}, unexpected {extra})",
        )
    for name, shape in expected.items():
        arr = tensors[name]
        if arr.shape != shape or arr.dtype != np.float32:
            raise _fail(
                path,
                f"tensor {name} is {arr.dtype} {arr.shape}, expected float32 "
                f"{shape} for depth {cfg.depth}, width {cfg.width}, "
                f"{meta['channels']} channel(s)",
            )
        if not np.isfinite(arr).all():
            raise _fail(path, f"tensor {name} holds NaN or Inf values")
    return {name: tensors[name] for name in expected}


def _check_kernel(path: Path, tensors: dict[str, np.ndarray], meta: dict) -> np.ndarray | None:
    has = meta.get("kernel")
    if has is not True:
        if "kernel" in tensors or has is not False:
            raise _fail(path, "the kernel entry of the metadata does not match the tensors")
        return None
    k = tensors.get("kernel")
    if k is None or k.ndim != 2 or k.dtype != np.float64:
        raise _fail(path, "the kernel is missing or is not a 2-D float64 array")
    if not np.isfinite(k).all() or k.min() < 0 or not k.sum() > 0:
        raise _fail(path, "the kernel holds negative, NaN or Inf values or sums to 0")
    return k


def load_model(path: str | os.PathLike[str]) -> ZSSRModel:
    """Read and check a ``.zssr`` network (no pickle, no torch; loads onto no device).

    Parameters
    ----------
    path : str or path-like
        The file written by :func:`save_model`.

    Returns
    -------
    ZSSRModel

    Raises
    ------
    FileNotFoundError, OSError
        A missing or unreadable file.
    ModelFileError
        A file that is not a valid network, naming the file and the problem: a pickle or
        another format, a damaged or modified header, an unknown format version, weights
        whose names, shapes or checksum do not match.
    """
    path = Path(path)
    data = _read_bytes(path)
    meta = _meta(path, _header(path, data))
    tensors = _tensors(path, data)
    if _digest(meta, tensors) != meta.get("sha256"):
        raise _fail(
            path,
            "the content does not match its SHA-256 checksum: the file is damaged or was modified",
        )
    meta = _check_meta(path, meta)
    weights = _check_weights(path, tensors, meta)
    kernel = _check_kernel(path, tensors, meta)
    noise = meta.get("noise_std", 0.0)
    return ZSSRModel(
        weights=weights,
        config=meta["config"],
        scale=(float(meta["scale"][0]), float(meta["scale"][1])),
        kernel=kernel,
        channels=int(meta["channels"]),
        intensity=dict(meta.get("intensity") or {}),
        noise_std=float(noise) if isinstance(noise, (int, float)) else 0.0,
        version=str(meta.get("package_version", "")),
        training=dict(meta.get("training") or {}),
    )
