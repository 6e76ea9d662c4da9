"""napari-zssr: zero-shot super-resolution (Shocher et al., CVPR 2018) for microscopy.

``super_resolve``, ``super_resolve_many`` and ``isotropic_z`` import torch on first use, so
importing this package (as napari does when it scans plugins) stays cheap;
``estimate_resolution`` (NumPy only) is loaded on first use too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._version import __version__
from .core.config import PRESETS, ZSSRConfig, resolve_config
from .core.progress import Cancelled, Progress

__all__ = [
    "PRESETS",
    "Cancelled",
    "OutputInUse",
    "Progress",
    "ReadFailure",
    "WriteFailure",
    "ZSSRConfig",
    "ZSSRModel",
    "__version__",
    "estimate_resolution",
    "isotropic_z",
    "load_model",
    "resolve_config",
    "save_model",
    "super_resolve",
    "super_resolve_many",
    "train_model",
]

if TYPE_CHECKING:
    from .arrays.isotropic import isotropic_z
    from .arrays.networks import ZSSRModel, load_model, save_model
    from .arrays.train import train_model
    from .arrays.upscale import super_resolve
    from .arrays.upscale_many import super_resolve_many
    from .core.resolution import estimate_resolution
    from .io.errors import OutputInUse, ReadFailure, WriteFailure


def __getattr__(name: str) -> Any:
    if name == "super_resolve":
        from .arrays.upscale import super_resolve

        return super_resolve
    if name == "isotropic_z":
        from .arrays.isotropic import isotropic_z

        return isotropic_z
    if name == "super_resolve_many":
        from .arrays.upscale_many import super_resolve_many

        return super_resolve_many
    if name == "estimate_resolution":
        from .core.resolution import estimate_resolution

        return estimate_resolution
    if name == "train_model":
        from .arrays.train import train_model  # saved networks: train once, apply many

        return train_model
    if name in ("OutputInUse", "ReadFailure", "WriteFailure"):
        from .io import errors  # faults met during a run (the io package loads on first use)

        return getattr(errors, name)
    if name in ("ZSSRModel", "load_model", "save_model"):
        from .arrays import networks

        return getattr(networks, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
