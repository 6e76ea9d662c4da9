"""The bundled initialisation: a network that starts from what microscopy images share.

``ZSSRConfig.init="bundled"`` starts every new network from the weights in
``napari_zssr/data/zssr_init.safetensors`` instead of random ones. They were learned on
synthetic scenes only (spots, filaments, membranes, nuclei, textures, dead leaves) degraded
by many kernels, factors and noise levels (``benchmarks/train_init.py``; its model card is
``napari_zssr/data/zssr_init.md``). The file is read once per process, through safetensors
(no pickle), and checked against :data:`BUNDLED_SHA256` before use.

The bundled network is single-channel. A network for ``C`` channels starts from it with the
first layer's weights shared by every channel (divided by ``C``) and the last layer's
copied to every output channel: on an image whose channels are equal it computes what the
single-channel network computes, and fine-tuning on the image separates the channels.

A width or depth other than the bundled network's is refused (a clear error), not silently
started from scratch: the run's record would then name a start that was not used.
"""

from __future__ import annotations

import functools
import hashlib
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = [
    "BUNDLED_FILE",
    "BUNDLED_SHA256",
    "apply_bundled",
    "bundled_shape",
    "bundled_state",
    "load_bundled",
]

#: File name of the bundled initialisation inside the package's ``data`` folder.
BUNDLED_FILE = "zssr_init.safetensors"
#: SHA-256 of that file (also written in its model card, ``zssr_init.md``).
BUNDLED_SHA256 = "9e90acd45a463a713786a27c6c20cca85654960b3080913a175a6cd794e2a4e1"


def _read_bytes() -> bytes:
    ref = resources.files("napari_zssr") / "data" / BUNDLED_FILE
    try:
        return ref.read_bytes()
    except FileNotFoundError as exc:
        raise FileNotFoundError(
            f"the bundled initialisation {BUNDLED_FILE} is missing from the installed "
            "package; reinstall napari-zssr or use init='scratch'"
        ) from exc


@functools.lru_cache(maxsize=1)
def load_bundled() -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The bundled weights (float32, ``body.<i>.weight``) and the file's metadata.

    Read once per process and cached; callers must not modify the arrays.

    Raises
    ------
    ValueError
        If the file's SHA-256 is not :data:`BUNDLED_SHA256` (a damaged or replaced file).
    """
    from safetensors.numpy import load

    data = _read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != BUNDLED_SHA256:
        raise ValueError(
            f"the bundled initialisation {BUNDLED_FILE} has SHA-256 {digest[:12]}..., not "
            f"the recorded {BUNDLED_SHA256[:12]}...: the file is damaged; reinstall napari-zssr"
        )
    weights = load(data)
    meta = _metadata(data)
    for arr in weights.values():
        arr.setflags(write=False)
    return weights, meta


def _metadata(data: bytes) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file's JSON header."""
    import json

    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n].decode("utf-8"))
    return dict(header.get("__metadata__") or {})


def bundled_shape() -> tuple[int, int]:
    """``(width, depth)`` of the bundled network."""
    weights, _ = load_bundled()
    depth = len(weights)
    width = int(weights["body.0.weight"].shape[0])
    return width, depth


def bundled_state(channels: int, width: int, depth: int) -> dict[str, np.ndarray]:
    """The bundled weights for a network of ``channels`` image channels.

    Parameters
    ----------
    channels : int
        Image channels of the network (the bundled one has 1; see the module's notes).
    width, depth : int
        The configuration's hidden channels and layers; they must be the bundled network's.

    Returns
    -------
    dict of str to ndarray
        A new float32 array per layer, ``(out, in, 3, 3)``.

    Raises
    ------
    ValueError
        If ``width`` or ``depth`` differ from the bundled network's.
    """
    weights, _ = load_bundled()
    b_width, b_depth = bundled_shape()
    if (width, depth) != (b_width, b_depth):
        raise ValueError(
            f"init='bundled' needs width {b_width} and depth {b_depth} (the bundled "
            f"network's), got width {width} and depth {depth}; use init='scratch' for "
            "another network size"
        )
    state = {k: np.array(v, np.float32) for k, v in weights.items()}
    if channels != 1:
        first, last = "body.0.weight", f"body.{2 * (depth - 1)}.weight"
        state[first] = np.repeat(state[first], channels, axis=1) / channels
        state[last] = np.repeat(state[last], channels, axis=0)
    return state


def apply_bundled(net: torch.nn.Module, channels: int, width: int, depth: int) -> None:
    """Overwrite ``net``'s weights (a :class:`~napari_zssr.core.network.ZSSRNet`) with the
    bundled initialisation (:func:`bundled_state`)."""
    import torch

    state = bundled_state(channels, width, depth)
    current = net.state_dict()
    loaded: dict[str, Any] = {
        k: torch.from_numpy(v).to(current[k].device, current[k].dtype) for k, v in state.items()
    }
    net.load_state_dict(loaded)
