"""The checks of the array API's arguments: one rule per argument, the same for every entry
point (:func:`~napari_zssr.super_resolve`, :func:`~napari_zssr.super_resolve_many`,
:func:`~napari_zssr.isotropic_z`, :func:`~napari_zssr.train_model`).

Each check returns the value as the engine uses it, or raises TypeError / ValueError with
one line that names the argument and what it accepts. Nothing here reads the data beyond
what the rule needs (a lazy array's values are checked plane by plane later, by
:func:`~napari_zssr.arrays.intensity.intensity_info`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..core.config import MAX_NOISE_STD, NOISE_MODELS, ZSSRConfig
from ..psf.checks import check_z_ratio
from .planes import is_lazy

__all__ = [
    "STACK_MODES",
    "check_batch",
    "check_callback",
    "check_finetune",
    "check_flag",
    "check_image",
    "check_images",
    "check_noise",
    "check_noise_model",
    "check_seed",
    "check_stack",
    "check_stack_mode",
    "check_time_axis",
    "check_z_ratio",
]

STACK_MODES = ("per_plane", "shared")


def _is_integer(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


#: Array types of other libraries, by the top module of their class: how to pass their data.
_FOREIGN_ARRAYS = {
    "torch": "a torch tensor; pass a NumPy array: {name}.detach().cpu().numpy()",
    "cupy": "a CuPy array on the GPU; pass a NumPy array: {name}.get()",
    "jax": "a JAX array; pass a NumPy array: numpy.asarray({name})",
    "jaxlib": "a JAX array; pass a NumPy array: numpy.asarray({name})",
    "tensorflow": "a TensorFlow tensor; pass a NumPy array: {name}.numpy()",
}


def _foreign_array(image: Any, name: str) -> str | None:
    """Why ``image`` is refused as it is, and what to pass instead (None: not refused)."""
    top = type(image).__module__.split(".")[0]
    if top in _FOREIGN_ARRAYS:
        return f"{name} is " + _FOREIGN_ARRAYS[top].format(name=name)
    if top == "xarray" and hasattr(image, "dims"):
        dims = tuple(str(d) for d in image.dims)
        return (
            f"{name} is an xarray.DataArray with dimensions {dims}, whose names are not read "
            f"here; pass its data with Y and X last, e.g. {name}.transpose(..., 'y', 'x').data "
            "(and channel_axis for a channel dimension)"
        )
    return None


def check_image(image: Any, name: str = "image") -> Any:
    """A NumPy array (or a lazy array-like, returned as it is) with a numeric dtype, not
    empty, not masked, without NaN or Inf (lazy arrays: found plane by plane later).
    Arrays of other libraries (torch, CuPy, JAX, TensorFlow, xarray) are refused with what
    to pass instead."""
    foreign = _foreign_array(image, name)
    if foreign is not None:
        raise TypeError(foreign)
    if is_lazy(image):  # dask, zarr, memmap: read plane by plane, never whole
        try:
            dtype = np.dtype(image.dtype)
        except TypeError:
            raise TypeError(
                f"{name} has dtype {image.dtype!r}, which NumPy cannot read; pass a NumPy "
                "array (or a dask or zarr array) of a numeric dtype"
            ) from None
        if dtype.kind == "O":
            raise TypeError(f"{name} has dtype object; pass a numeric array")
        if math.prod(int(n) for n in image.shape) == 0:
            raise ValueError(f"{name} is empty (shape {tuple(image.shape)})")
        return image
    if isinstance(image, (list, tuple)) or not hasattr(image, "shape"):
        raise TypeError(
            f"{name} must be a NumPy array (or array-like with a shape), got {type(image).__name__}"
        )
    if isinstance(image, np.ma.MaskedArray) and np.ma.getmask(image) is not np.ma.nomask:
        if np.ma.getmaskarray(image).any():
            raise ValueError(
                f"{name} is a masked array with masked pixels; the network cannot honour a "
                f"mask (masked values would be processed as data): pass {name}.filled(value) "
                "or the plain data"
            )
    arr = np.asarray(image)
    if arr.dtype == object:
        raise TypeError(f"{name} has dtype object; pass a numeric array")
    if arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or Inf values; replace them before super-resolving")
    return arr


def check_images(images: Any) -> list[Any]:
    """A non-empty list (or tuple) of images, each as :func:`check_image` accepts it."""
    if isinstance(images, np.ndarray) or not isinstance(images, Sequence) or not images:
        raise TypeError("images must be a non-empty list (or tuple) of arrays")
    return list(images)


def check_stack(stack: Any, channel_axis: Any) -> tuple[np.ndarray, np.ndarray, int | None]:
    """A Z stack: the array, its ``(C, Z, Y, X)`` view and its channel axis (None: none).

    ``(Z, Y, X)``, or 4-D with ``channel_axis``; the values as :func:`check_image` requires.
    """
    foreign = _foreign_array(stack, "stack")
    if foreign is not None:
        raise TypeError(foreign)
    if isinstance(stack, (list, tuple)) or not hasattr(stack, "shape"):
        raise TypeError(f"stack must be a NumPy array, got {type(stack).__name__}")
    arr = np.asarray(stack)
    if arr.dtype == object or arr.dtype.kind not in "uif":
        raise TypeError(f"stack must be a numeric array, got dtype {arr.dtype}")
    if channel_axis is None:
        if arr.ndim != 3:
            raise ValueError(
                f"stack must be (Z, Y, X), or 4-D with channel_axis; got shape {arr.shape}"
            )
        vol_in, ca = arr[None], None
    else:
        if arr.ndim != 4:
            raise ValueError(f"with channel_axis the stack must be 4-D, got shape {arr.shape}")
        if not _is_integer(channel_axis):
            raise TypeError(f"channel_axis must be an integer, got {channel_axis!r}")
        if not -4 <= int(channel_axis) < 4:
            raise ValueError(f"channel_axis must be in [-4, 3] for a 4-D stack, got {channel_axis}")
        ca = int(channel_axis) % 4
        vol_in = np.moveaxis(arr, ca, 0)  # (C, Z, Y, X) view
    if arr.size == 0:
        raise ValueError(f"stack is empty (shape {arr.shape})")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError("stack contains NaN or Inf values; replace them first")
    return arr, vol_in, ca


def check_seed(seed: Any) -> int:
    """An integer in [0, 2**32 - 1]."""
    if not _is_integer(seed):
        raise TypeError(f"seed must be an integer, got {seed!r}")
    if not 0 <= int(seed) < 2**32:
        raise ValueError(f"seed must be in [0, 2**32 - 1], got {seed!r}")
    return int(seed)


def check_callback(callback: Any) -> Any:
    """A callable, or None."""
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable (or None), got {callback!r}")
    return callback


def check_flag(value: Any, name: str) -> bool:
    """True or False (NumPy booleans too)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_stack_mode(stack_mode: Any) -> str:
    """``"per_plane"`` or ``"shared"``."""
    if stack_mode not in STACK_MODES:
        raise ValueError(f"stack_mode must be 'per_plane' or 'shared', got {stack_mode!r}")
    return str(stack_mode)


def check_noise(noise_std: Any) -> float | str | None:
    """None, ``"auto"`` or a number in [0, MAX_NOISE_STD] (normalised intensity units)."""
    if noise_std is None:
        return None
    if isinstance(noise_std, str):
        if noise_std.strip().lower() == "auto":
            return "auto"
        raise TypeError(
            f"noise_std must be a number in [0, {MAX_NOISE_STD}] or 'auto', got {noise_std!r}"
        )
    if isinstance(noise_std, bool) or not isinstance(noise_std, (int, float, np.number)):
        raise TypeError(f"noise_std must be a number or 'auto', got {noise_std!r}")
    val = float(noise_std)
    if not math.isfinite(val) or not 0.0 <= val <= MAX_NOISE_STD:
        raise ValueError(
            f"noise_std must be in [0, {MAX_NOISE_STD}] (units of the normalised [0, 1] "
            f"range), got {val!r}"
        )
    return val


def check_noise_model(noise_model: Any, cfg: ZSSRConfig) -> str:
    """``noise_model`` as given, or the configuration's; refused when unknown."""
    model = cfg.noise_model if noise_model is None else noise_model
    if model not in NOISE_MODELS:
        raise ValueError(f"noise_model must be one of {', '.join(NOISE_MODELS)}, got {model!r}")
    return str(model)


def check_batch(value: Any, name: str = "batch_planes") -> int | None:
    """None (automatic) or a whole number >= 1."""
    if value is None:
        return None
    if not _is_integer(value):
        raise TypeError(f"{name} must be None (automatic) or a whole number >= 1, got {value!r}")
    if int(value) < 1:
        raise ValueError(f"{name} must be None (automatic) or a whole number >= 1, got {value!r}")
    return int(value)


def check_finetune(finetune: Any) -> int:
    """A whole number of iterations >= 0."""
    if not _is_integer(finetune):
        raise TypeError(f"finetune must be a whole number of iterations, got {finetune!r}")
    if finetune < 0:
        raise ValueError(f"finetune must be >= 0 iterations, got {finetune!r}")
    return int(finetune)


def check_time_axis(time_axis: Any, layout: Any) -> int | None:
    """``time_axis`` as a non-negative axis of the image, or None: it must be one of the
    stack axes (not Y, X or the channel axis)."""
    if time_axis is None:
        return None
    if not _is_integer(time_axis):
        raise TypeError(f"time_axis must be an integer axis or None, got {time_axis!r}")
    ndim = len(layout.shape)
    axis = int(time_axis) + ndim if int(time_axis) < 0 else int(time_axis)
    if not 0 <= axis < ndim or axis not in layout.stack_axes:
        raise ValueError(
            f"time_axis must be a stack axis of the image (one of {list(layout.stack_axes)} "
            f"for its shape {tuple(layout.shape)}; not Y, X or the channel axis), got "
            f"{time_axis}"
        )
    return axis
