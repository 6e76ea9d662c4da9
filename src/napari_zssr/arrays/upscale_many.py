"""Super-resolving many planes or images at once: one network each, trained together.

:func:`super_resolve_many` upscales a list of independent images. Each image (or plane) gets
the network it would get alone from :func:`~napari_zssr.super_resolve`, with the same seed;
the networks of a batch share every kernel on the device (:mod:`napari_zssr.core.batched`),
which pays on a GPU, where one small network leaves most of the device idle.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..core.config import ZSSRConfig, resolve_config
from ..core.device import resolve_device
from ..core.engine import Reporter, normalise_scale
from ..core.kernels import prepare_kernel, validate_kernel
from ..core.progress import ProgressCallback
from ..core.resize import output_shape
from ..core.upscale import training_signature
from .checks import check_batch, check_callback, check_image, check_images, check_noise, check_seed
from .degradation import NoiseProfiles, camera_noise, noise_on_sons
from .intensity import intensity_info
from .loop import Plane, PlaneJob, auto_batch, fresh_networks, run_planes
from .output import prepare_output
from .planes import make_layout
from .run_info import job_info

__all__ = ["super_resolve_many"]


def _image_job(index: int, image: Any, ctx: dict[str, Any]) -> tuple[PlaneJob, dict[str, Any]]:
    """One image of :func:`super_resolve_many`, checked, with its noise set up: its plane job
    and its noise's account (whose warning, prefixed with the image's index, is not issued
    here)."""
    arr = check_image(image)
    layout = make_layout(arr.shape, ctx["channel_axis"], ctx["rgb"])
    info = intensity_info(arr, layout)
    if ctx["kernel"] is not None:
        validate_kernel(ctx["kernel"], layout.plane_shape)
    profiles = NoiseProfiles(arr, layout, info, ctx["kernel"], ctx["scale"])  # shared by both uses
    noise = noise_on_sons(
        profiles,
        ctx["noise"],
        ctx["preset"],
        ctx["config"],
        ctx["kernel"] is not None,
        prefix=f"image {index}: ",
        warn=False,  # issued by super_resolve_many once every image is checked
    )
    cfg = ctx["cfg"].replace(noise_std=noise.pop("noise_std"))
    # a configuration's Poisson-Gaussian model gets its gain and offset from the image
    cfg = cfg.replace(**camera_noise(profiles, cfg.noise_std, cfg.noise_model))
    out_yx = output_shape(layout.plane_shape, ctx["scale"])
    writer = prepare_output(None, arr, layout, out_yx, ctx["scale"], False, ())
    return PlaneJob(arr, layout, info, writer, cfg, profiles=profiles), noise


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
    sc = normalise_scale(scale)
    batch = check_batch(batch_size, "batch_size")
    images = check_images(images)
    check_callback(callback)
    seed = check_seed(seed)
    ctx = {
        "channel_axis": channel_axis,
        "rgb": bool(rgb),
        "kernel": kernel,
        "noise": check_noise(noise_std),
        "preset": preset,
        "config": config,
        "cfg": resolve_config(preset, config),
        "scale": sc,
    }
    made = [_image_job(i, im, ctx) for i, im in enumerate(images)]
    for _, noise in made:
        for message in noise["warnings"]:
            warnings.warn(message, UserWarning, stacklevel=2)
    jobs = [job for job, _ in made]
    dk = prepare_kernel(kernel, sc, jobs[0].layout.plane_shape) if kernel is not None else None
    t0 = time.perf_counter()
    dev, reason = resolve_device(device)
    sizes = _run_many(jobs, sc, dk, dev, seed, batch, Reporter(callback))
    outs = [job.out.target for job in jobs]
    if not return_info:
        return outs
    seconds = time.perf_counter() - t0
    return outs, [
        _image_info(i, job, noise, preset, config, seed, (dev, reason), sizes, seconds / len(jobs))
        for i, (job, noise) in enumerate(made)
    ]


def _image_info(
    index: int,
    job: PlaneJob,
    noise: dict[str, Any],
    preset: str,
    config: ZSSRConfig | None,
    seed: int,
    device: tuple[Any, str],
    sizes: list[int],
    seconds: float,
) -> dict[str, Any]:
    """One image's run information (its share of the time in ``seconds``)."""
    return job_info(
        job,
        preset=preset,
        config=config,
        seed=seed,
        device=device,
        seconds=seconds,
        method="super_resolve_many",
        degradation={"noise_std": job.config.noise_std, **noise},
        work={"index": index, "batch_sizes": sizes, "seconds_per_image": seconds},
    )


def _run_many(
    jobs: list[PlaneJob],
    sc: tuple[float, float],
    dk: Any,
    dev: Any,
    seed: int,
    batch: int | None,
    rep: Reporter,
) -> list[int]:
    """Train and apply the networks of every plane of ``jobs`` in batches, grouped by what
    must agree to share kernels; returns the batch sizes."""
    groups: dict[tuple, list[Plane]] = {}
    for job in jobs:
        key = (job.layout.channels, training_signature(job.config, sc, job.layout.plane_shape, dk))
        groups.setdefault(key, []).extend(job.pending())
    rep.n_planes = sum(len(g) for g in groups.values())
    sizes, done = [], 0
    upscale = fresh_networks(sc, dk, dev, seed, rep)
    for members in groups.values():
        k = batch if batch is not None else auto_batch(dev, members[0].job.config, len(members))
        # numbered in the order they are done: the progress runs over every image's planes
        numbered = [Plane(p.job, p.idx, done + i) for i, p in enumerate(members)]
        run_planes(numbered, upscale, rep, group=k)
        sizes += [len(numbered[s : s + k]) for s in range(0, len(numbered), k)]
        done += len(members)
    rep.plane, rep.step = rep.n_planes - 1, rep.n_steps - 1
    rep("done", 1.0, message="done")
    return sizes
