"""Choosing the torch device: CUDA, then Apple MPS, then the CPU."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

import numpy as np
import torch

__all__ = ["DeviceCache", "available_devices", "resolve_device", "upload"]

T = TypeVar("T")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def available_devices() -> list[str]:
    """Names of the devices this machine can run on, best first."""
    names = []
    if torch.cuda.is_available():
        names += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _mps_available():
        names.append("mps")
    names.append("cpu")
    return names


def resolve_device(device: str | torch.device | None = "auto") -> tuple[torch.device, str]:
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"`` into a device.

    Returns
    -------
    device : torch.device
    reason : str
        Why this device was picked (shown to users).

    Raises
    ------
    ValueError
        For an unknown name or a device this machine does not have.
    """
    if device is None:
        device = "auto"
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise TypeError(f"device must be a string such as 'auto' or 'cpu', got {device!r}")
    name = device.strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            dev = torch.device("cuda", torch.cuda.current_device())
            return dev, f"auto: CUDA GPU found ({torch.cuda.get_device_name(dev)})"
        if _mps_available():
            return torch.device("mps"), "auto: Apple MPS GPU found"
        return torch.device("cpu"), (
            f"auto: no CUDA or MPS GPU available, using the CPU ({torch.get_num_threads()} threads)"
        )
    try:
        dev = torch.device(name)
    except RuntimeError as exc:
        raise ValueError(
            f"unknown device {device!r}; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"
        ) from exc
    if dev.type == "cpu":
        return dev, "requested: CPU"
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {device!r} requested but CUDA is not available on this machine "
                f"(available: {', '.join(available_devices())})"
            )
        index = 0 if dev.index is None else dev.index
        if index >= torch.cuda.device_count():
            raise ValueError(
                f"device {device!r} requested but only {torch.cuda.device_count()} CUDA "
                "device(s) exist"
            )
        dev = torch.device("cuda", index)
        return dev, f"requested: {torch.cuda.get_device_name(dev)}"
    if dev.type == "mps":
        if not _mps_available():
            raise ValueError(
                f"device {device!r} requested but Apple MPS is not available "
                f"(available: {', '.join(available_devices())})"
            )
        return dev, "requested: Apple MPS"
    raise ValueError(f"unsupported device {device!r}; use 'auto', 'cpu', 'cuda' or 'mps'")


def upload(array: np.ndarray, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Copy a host array to ``device`` as ``dtype`` without stalling the host on CUDA.

    A copy from pageable host memory makes the CPU wait until the GPU has finished all
    queued work; the training loop uploads a new resize matrix for almost every random
    father scale, so on CUDA the array goes through pinned memory and an asynchronous
    copy (torch keeps the pinned block alive until the copy has run).
    """
    # Normal tensors even when first asked for under inference mode: they are cached, and
    # the consistency step takes the adjoint of the same operators through autograd, which
    # refuses inference tensors.
    with torch.inference_mode(False):
        host = torch.tensor(array, dtype=dtype)  # a copy: cached arrays are read-only
        if device.type == "cuda":
            return host.pin_memory().to(device, non_blocking=True)
        return host.to(device)


class DeviceCache(Generic[T]):
    """Least-recently-used cache of small tables built on the host and kept on a device.

    Resize matrices, kernel weights and index tables are reused at every training
    iteration; building and uploading them once per key keeps the loop free of host work.
    A full cache drops its oldest entry only: the father sampler asks for a new resize
    matrix at almost every random scale, and emptying the whole cache would also drop the
    few tables every iteration reuses.

    Parameters
    ----------
    maxsize : int
        Entries kept.
    """

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._items: OrderedDict[Hashable, T] = OrderedDict()
        self._lock = threading.Lock()  # engines may run in several threads (napari workers)

    def get(self, key: Hashable, build: Callable[[], T]) -> T:
        """The entry for ``key``, made by ``build()`` when missing."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = build()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)
        return value
