"""Super-resolving many planes or images at once: one network each, trained together.

:func:`super_resolve_many` upscales a list of independent images;
:func:`super_resolve` uses :func:`per_plane_batches` for ``stack_mode="per_plane"`` with
``batch_planes`` above 1. Each image (or plane) gets the network it would get alone, with
the same seed; the networks of a batch share every kernel on the device
(:mod:`napari_zssr.core.batched`), which pays on a GPU, where one small network leaves most
of the device idle.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..core.config import ZSSRConfig, resolve_config
from ..core.progress import ProgressCallback

__all__ = ["auto_batch", "check_batch", "per_plane_batches", "super_resolve_many"]

#: Most networks :func:`auto_batch` trains together. Chosen, not measured: a GPU run of
#: ``benchmarks/gpu_check.py`` measures planes per second at this and smaller sizes.
MAX_AUTO_BATCH = 16
#: Share of the free device memory that the networks of one batch may use.
MEMORY_FRACTION = 0.5
#: Bytes per father pixel and hidden channel of one training step: the activations kept
#: for the backward pass, their gradients and the ReLU masks, with headroom (an estimate).
BYTES_PER_ACTIVATION = 16


def check_batch(value: object, name: str = "batch_planes") -> int | None:
    """Validate a batch size: None (automatic) or a whole number >= 1."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be None (automatic) or a whole number >= 1, got {value!r}")
    if int(value) < 1:
        raise ValueError(f"{name} must be None (automatic) or a whole number >= 1, got {value!r}")
    return int(value)


def auto_batch(device: Any, config: ZSSRConfig, n_items: int) -> int:
    """How many networks to train together on ``device``.

    On CUDA: as many as half the free memory holds (an estimate of one network's training
    memory from the crop, width and depth), at most :data:`MAX_AUTO_BATCH` and
    ``n_items``. Elsewhere 1: on a 2-core CPU four planes trained together were not
    faster than one after another (docs/benchmarks.md), and MPS has not been measured.
    """
    import torch

    dev = torch.device(device)
    if dev.type != "cuda" or n_items <= 1:
        return 1
    free, _ = torch.cuda.mem_get_info(dev)
    pixels = config.batch_size * config.crop_size**2
    per_net = pixels * config.width * config.depth * BYTES_PER_ACTIVATION
    fits = int(free * MEMORY_FRACTION // max(per_net, 1))
    return max(1, min(MAX_AUTO_BATCH, n_items, fits))


def per_plane_batches(
    arr: np.ndarray,
    layout: Any,
    info: Any,
    *,
    scale: tuple[float, float],
    kernel: Any,
    config: ZSSRConfig,
    device: Any,
    seed: int,
    reporter: Any,
    batch: int,
    out_canon: np.ndarray,
    collector: Any = None,
) -> tuple[int, list[float]]:
    """``stack_mode="per_plane"`` with ``batch`` planes trained together.

    Writes each plane's result into ``out_canon`` (and the maps into ``collector``) as the
    plane-by-plane loop of :func:`~napari_zssr.arrays.upscale.super_resolve` does; returns the
    iterations and the final losses.
    """
    from ..core.batched import upscale_planes
    from .planes import normalise_plane, restore_plane

    # stack indices only: a lazy input is read one batch at a time; planes an earlier run
    # finished (a resumable output) are left out
    done = getattr(out_canon, "done", None)
    planes = [idx for idx in np.ndindex(*layout.stack_shape) if done is None or not done(idx)]
    iterations, losses = 0, []
    for start in range(0, len(planes), batch):
        group = [(idx, layout.plane(arr, idx)) for idx in planes[start : start + batch]]
        reporter.plane = start
        imgs = [normalise_plane(view, info) for _, view in group]
        colls: list[dict | None] = [{} if collector is not None else None for _ in group]
        outs, models = upscale_planes(
            imgs,
            scale,
            kernel=kernel,
            configs=[config] * len(group),
            device=device,
            seed=seed,
            reporter=reporter,
            vmax=info.vmax,
            collects=colls,
        )
        for (idx, _), img, hr, model, coll in zip(group, imgs, outs, models, colls):
            out_canon[idx] = restore_plane(hr, info)
            if collector is not None and coll is not None:
                collector.add(idx, img, hr, coll)
            iterations += model.iterations
            if model.final_loss is not None:
                losses.append(model.final_loss)
    return iterations, losses


class _Item:
    """One image of :func:`super_resolve_many`, checked and ready to be upscaled."""

    def __init__(self, index: int, image: Any, ctx: dict[str, Any]) -> None:
        from ..core.kernels import validate_kernel
        from ..core.resize import output_shape
        from .planes import intensity_info, make_layout
        from .upscale import NoiseProfiles, _camera_noise, _check_image, _noise_on_sons

        self.index = index
        self.arr = _check_image(image)
        self.layout = make_layout(self.arr.shape, ctx["channel_axis"], ctx["rgb"])
        self.info = intensity_info(self.arr, self.layout)
        if ctx["kernel"] is not None:
            validate_kernel(ctx["kernel"], self.layout.plane_shape)
        profiles = NoiseProfiles(self.arr, self.layout, self.info)  # shared by both uses
        noise = _noise_on_sons(
            profiles,
            ctx["noise"],
            ctx["preset"],
            ctx["config"],
            ctx["kernel"] is not None,
            prefix=f"image {index}: ",
            warn=False,  # issued by super_resolve_many once every image is checked
        )
        self.estimate = noise["noise_estimate"]
        self.noise = noise["noise_std"]
        self.noise_source = noise["noise_std_source"]
        self.warning = noise["warnings"][0] if noise["warnings"] else None
        self.cfg = ctx["cfg"].replace(noise_std=self.noise)
        # a configuration's Poisson-Gaussian model gets its gain and offset from the image
        model = self.cfg.noise_model
        self.cfg = self.cfg.replace(**_camera_noise(profiles, self.noise, model))
        out_yx = output_shape(self.layout.plane_shape, ctx["scale"])
        self.out = np.empty(self.layout.output_shape(out_yx), dtype=self.arr.dtype)
        self.iterations = 0
        self.losses: list[float] = []


def super_resolve_many(
    images: Sequence[np.ndarray],
    scale: float | tuple[float, float],
    *,
    kernel: np.ndarray | None = None,
    noise_std: float | str | None = None,
    preset: str = "balanced",
    config: ZSSRConfig | None = None,
    channel_axis: int | None = None,
    rgb: bool = False,
    device: str = "auto",
    seed: int = 0,
    callback: ProgressCallback | None = None,
    batch_size: int | None = None,
    return_info: bool = False,
) -> list[np.ndarray] | tuple[list[np.ndarray], list[dict[str, Any]]]:
    """Super-resolve several independent images, training their networks together.

    Every plane of every image gets its own network, trained with ``seed`` as
    :func:`~napari_zssr.super_resolve` would train it (``stack_mode="per_plane"``), up to
    float rounding; each image keeps its own intensity handling and noise estimate.
    Images whose father crops differ (different sizes below the crop size, different
    channel counts) go in different batches.

    Parameters
    ----------
    images : sequence of ndarray
        The images, each as :func:`~napari_zssr.super_resolve` accepts it (not modified).
    scale, kernel, noise_std, preset, config, channel_axis, rgb, device, seed, callback
        As for :func:`~napari_zssr.super_resolve`, applied to every image (the progress
        callback sees every plane of every image as one plane of one run).
    batch_size : int, optional
        Networks trained together; None chooses from the free GPU memory (1 on the CPU).
    return_info : bool
        Also return one dictionary per image (noise, iterations, losses, batch size).

    Returns
    -------
    list of ndarray, or (list of ndarray, list of dict)
        One output per image, its dtype that of its input.
    """
    from ..core.engine import Reporter, normalise_scale
    from ..core.kernels import prepare_kernel
    from .upscale import _check_noise

    if isinstance(images, np.ndarray) or not isinstance(images, Sequence) or not images:
        raise TypeError("images must be a non-empty list (or tuple) of arrays")
    sc = normalise_scale(scale)
    batch = check_batch(batch_size, "batch_size")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable (or None), got {callback!r}")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise TypeError(f"seed must be a non-negative integer, got {seed!r}")
    ctx = {
        "channel_axis": channel_axis,
        "rgb": bool(rgb),
        "kernel": kernel,
        "noise": _check_noise(noise_std),
        "preset": preset,
        "config": config,
        "cfg": resolve_config(preset, config),
        "scale": sc,
    }
    items = [_Item(i, im, ctx) for i, im in enumerate(images)]
    for item in items:
        if item.warning is not None:
            warnings.warn(item.warning, UserWarning, stacklevel=2)
    dk = prepare_kernel(kernel, sc, items[0].layout.plane_shape) if kernel is not None else None
    t0 = time.perf_counter()
    used = _run_many(items, sc, dk, device, int(seed), batch, Reporter(callback))
    outs = [item.out for item in items]
    if not return_info:
        return outs
    seconds = time.perf_counter() - t0
    return outs, [_item_info(item, used, seconds / len(items)) for item in items]


def _run_many(
    items: list[_Item],
    sc: tuple[float, float],
    dk: Any,
    device: str,
    seed: int,
    batch: int | None,
    rep: Any,
) -> dict[str, Any]:
    """Train and apply the networks of ``items`` in batches; returns the device and sizes."""
    from ..core.batched import training_signature, upscale_planes
    from ..core.device import resolve_device
    from .planes import normalise_plane, restore_plane

    dev, reason = resolve_device(device)
    # every plane of every image, grouped by what must agree to share kernels
    groups: dict[tuple, list[tuple[_Item, tuple[int, ...], np.ndarray]]] = {}
    for item in items:
        canon = item.layout.canonical(item.arr)
        key = (
            item.layout.channels,
            training_signature(item.cfg, sc, item.layout.plane_shape, dk),
        )
        for idx in np.ndindex(*item.layout.stack_shape):
            groups.setdefault(key, []).append((item, idx, canon[idx]))
    rep.n_planes = sum(len(g) for g in groups.values())
    sizes, done = [], 0
    for members in groups.values():
        k = batch if batch is not None else auto_batch(dev, members[0][0].cfg, len(members))
        for start in range(0, len(members), k):
            chunk = members[start : start + k]
            rep.plane = done
            imgs = [normalise_plane(view, it.info) for it, _, view in chunk]
            outs, models = upscale_planes(
                imgs,
                sc,
                kernel=dk,
                configs=[it.cfg for it, _, _ in chunk],
                device=dev,
                seed=seed,
                reporter=rep,
                vmax=[it.info.vmax for it, _, _ in chunk],
            )
            for (it, idx, _), hr, model in zip(chunk, outs, models):
                it.layout.canonical(it.out)[idx] = restore_plane(hr, it.info)
                it.iterations += model.iterations
                if model.final_loss is not None:
                    it.losses.append(model.final_loss)
            sizes.append(len(chunk))
            done += len(chunk)
    rep.plane, rep.step = rep.n_planes - 1, rep.n_steps - 1
    rep("done", 1.0, message="done")
    return {"device": str(dev), "device_reason": reason, "batch_sizes": sizes}


def _item_info(item: _Item, used: dict[str, Any], seconds: float) -> dict[str, Any]:
    return {
        "index": item.index,
        "input_shape": list(item.arr.shape),
        "output_shape": list(item.out.shape),
        "config": item.cfg.to_dict(),
        "noise_std": item.noise,
        "noise_std_source": item.noise_source,
        "noise_estimate": item.estimate,
        "warnings": [item.warning] if item.warning is not None else [],
        "iterations": item.iterations,
        "final_loss": float(np.mean(item.losses)) if item.losses else None,
        "seconds_per_image": seconds,
        "intensity": item.info.to_dict(),
        **used,
    }
