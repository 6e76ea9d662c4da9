"""Isotropic reconstruction of anisotropic Z stacks with one zero-shot network.

In most microscope stacks the z step is 2-5 times coarser than the lateral pixel. Lateral
(XY) planes are sampled finely in both directions, so they can teach a network to undo the
degradation that coarse z sampling applies: the network is trained, ZSSR-style, to upscale
*one* axis of XY planes (and of their transposes, so both lateral directions supervise) by
the ratio ``z_step / xy_pixel``, with a 1-D kernel that models the axial blur on the lateral
(HR) grid, including the integration over one z step. It is then applied to every XZ and
every YZ plane, with Z as the upscaled axis, and the two results are averaged.

:func:`isotropic_placement` gives the z scale and translate that put the result exactly over
its source in napari's world coordinates.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..core.config import MAX_FATHER_PLANES, ZSSRConfig, father_planes, resolve_config
from ..core.progress import Cancelled, Progress, ProgressCallback, relay
from ..psf.axial import axial_kernel_for
from .checks import check_seed, check_stack, check_z_ratio
from .intensity import intensity_info, normalise_plane, restore_plane
from .planes import make_layout
from .run_info import run_info

__all__ = ["MAX_FATHER_PLANES", "axial_kernel_for", "isotropic_placement", "isotropic_z"]

_MONTAGE_PIXELS = 1 << 20  # output pixels per montage of XZ/YZ planes given to the network
_TRAIN_SHARE = 0.7  # share of the progress bar given to training


def isotropic_placement(z_scale: float, z_translate: float, z_ratio: float) -> tuple[float, float]:
    """Z scale and translate of the upsampled stack so that it lies over its source.

    napari puts pixel centres at integer data coordinates; new plane ``j`` covers source
    coordinates ``[j / f - 1/2, (j + 1) / f - 1/2]``, so its centre is shifted by half a new
    plane minus half an old one.

    Parameters
    ----------
    z_scale, z_translate : float
        The source layer's scale and translate along Z (world units).
    z_ratio : float
        Upsampling factor along Z (> 0).

    Returns
    -------
    (float, float)
        ``(z_scale / z_ratio, z_translate + 0.5 * (new_scale - z_scale))``.
    """
    s, t, f = float(z_scale), float(z_translate), float(z_ratio)
    if not (math.isfinite(s) and math.isfinite(t) and math.isfinite(f)) or f <= 0 or s == 0:
        raise ValueError(
            f"isotropic_placement needs finite values, z_ratio > 0 and z_scale != 0; got "
            f"z_scale={z_scale!r}, z_translate={z_translate!r}, z_ratio={z_ratio!r}"
        )
    from .placement import upscaled_placement  # the one placement formula

    placed = upscaled_placement((f,), scale=(s,), translate=(t,))
    return float(placed.scale[0]), float(placed.translate[0])


def _training_message(p: Progress) -> str:
    return "training on lateral planes" if p.stage == "train" else p.message


def _emit(callback: ProgressCallback | None, progress: Progress) -> None:
    if callback is not None and callback(progress) is False:
        raise Cancelled("run cancelled by the progress callback")


def _predict_planes(
    model: Any,
    planes: np.ndarray,
    out_len: int,
    vmax: float,
    on_group: Callable[[int], None],
) -> np.ndarray:
    """Upscale the last axis of ``planes`` ``(N, C, R, Z)`` -> ``(N, C, R, out_len)``.

    Planes are laid side by side along R in montages, each padded by a mirrored margin wider
    than the network's receptive field, so one forward pass serves many planes.
    """
    from ..core.engine import predict

    n, c, rows, _ = planes.shape
    g = int(model.net.receptive_radius) + 2 if n > 1 else 0
    block = rows + 2 * g
    per = max(1, _MONTAGE_PIXELS // max(1, block * out_len))
    out = np.empty((n, c, rows, out_len), dtype=np.float32)
    for start in range(0, n, per):
        chunk = planes[start : start + per]
        k = chunk.shape[0]
        padded = np.pad(chunk, ((0, 0), (0, 0), (g, g), (0, 0)), mode="symmetric")
        montage = np.ascontiguousarray(padded.transpose(1, 0, 2, 3).reshape(c, k * block, -1))
        hr = predict(model, montage, out_shape=(k * block, out_len), vmax=vmax)
        hr = np.asarray(hr).reshape(c, k, block, out_len)[:, :, g : g + rows, :]
        out[start : start + k] = hr.transpose(1, 0, 2, 3)
        on_group(start + k)
    return out


def isotropic_z(
    stack: np.ndarray,
    z_ratio: float,
    *,
    axial_kernel: np.ndarray | None = None,
    axial_fwhm: float | None = None,
    channel_axis: int | None = None,
    preset: str = "fast",
    config: ZSSRConfig | None = None,
    device: str = "auto",
    seed: int = 0,
    callback: ProgressCallback | None = None,
    return_info: bool = False,
) -> np.ndarray | tuple[np.ndarray, dict[str, Any]]:
    """Upsample the Z axis of a stack to the lateral sampling with a zero-shot network.

    One network is trained on lateral planes (up to 16 of them, evenly spaced, each also
    transposed) to upscale one axis by ``z_ratio`` under the axial kernel; it is applied to
    every XZ and every YZ plane (Z being the upscaled axis) and the two results averaged.

    Parameters
    ----------
    stack : numpy.ndarray
        ``(Z, Y, X)``, or 4-D with a channel axis (``channel_axis``); channels are processed
        jointly by one network. uint8, uint16, other integers, float32, float64. Not
        modified.
    z_ratio : float
        z step / lateral pixel size, in (1, 16] (non-integer allowed).
    axial_kernel : numpy.ndarray, optional
        Complete 1-D axial kernel on the lateral grid, integration over the z step included
        (see :func:`napari_zssr.psf.axial_profile`).
    axial_fwhm : float, optional
        Instead: FWHM in lateral pixels of a Gaussian extra axial blur. With neither, the
        kernel is the integration over one z step (a box ``z_ratio`` pixels wide).
    channel_axis : int, optional
        Channel axis of a 4-D stack.
    preset : str
        Configuration preset (``"fast"`` by default); ignored when ``config`` is given.
    config : ZSSRConfig, optional
        Full configuration (gradual scales are not used here).
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"mps"``...
    seed : int
        Seed of all random choices.
    callback : callable, optional
        Receives :class:`~napari_zssr.Progress` reports; returning False or raising
        :class:`~napari_zssr.Cancelled` stops the run with :class:`~napari_zssr.Cancelled`.
    return_info : bool
        Also return a JSON-able dictionary describing the run.

    Returns
    -------
    numpy.ndarray or (numpy.ndarray, dict)
        ``(ceil(Z * z_ratio), Y, X)`` (the channel axis kept in place), input dtype. Place it
        with :func:`isotropic_placement`.

    Raises
    ------
    TypeError, ValueError
        For invalid input.
    napari_zssr.Cancelled
        When the callback stopped the run.
    """
    from ..core.device import resolve_device
    from ..core.engine import fit

    seed = check_seed(seed)
    r = check_z_ratio(z_ratio)
    arr, vol_in, ca = check_stack(stack, channel_axis)
    c, nz, ny, nx = vol_in.shape
    if nz < 2:
        raise ValueError(f"the stack needs at least 2 z planes, got {nz}")
    kernel = _fitting_kernel(r, axial_kernel, axial_fwhm, (ny, nx))
    cfg = resolve_config(preset, config).replace(gradual_scales=())
    dev, reason = resolve_device(device)
    t0 = time.perf_counter()

    layout = make_layout(vol_in.shape, 0 if ca is not None else None)
    src = vol_in if ca is not None else vol_in[0]
    info = intensity_info(src, layout)
    canon = layout.canonical(src)  # (Z, C, Y, X)
    vol = np.stack([normalise_plane(canon[z], info) for z in range(nz)], axis=1)  # (C,Z,Y,X)

    _emit(callback, Progress("prepare", message="preparing lateral planes", n_planes=1))
    chosen = father_planes(nz)
    model = fit(
        _lateral_fathers(vol, chosen),
        (1.0, r),
        kernel=kernel,
        config=cfg,
        device=dev,
        seed=int(seed),
        callback=relay(callback, (0.0, _TRAIN_SHARE), total=0.9, message=_training_message),
    )

    out_z = math.ceil(round(nz * r, 9))
    acc = _xz_and_yz(model, vol, out_z, info.vmax, callback, t0)
    n_total = ny + nx
    restored = restore_plane(acc.reshape(c, out_z * ny, nx), info).reshape(c, out_z, ny, nx)
    out = restored[0] if ca is None else np.moveaxis(restored, 0, ca)
    out = np.ascontiguousarray(out)
    seconds = time.perf_counter() - t0
    done = Progress("done", iteration=n_total, max_iterations=n_total, loss=model.final_loss,
                    elapsed=seconds, fraction=1.0, message="done")  # fmt: skip
    _emit(callback, done)
    if not return_info:
        return out
    return out, _run_information(
        model, kernel, len(chosen), r, (dev, reason), seconds,
        preset=preset, config=config, cfg=cfg, seed=seed, info=info, shapes=(arr.shape, out.shape),
    )  # fmt: skip


def _fitting_kernel(
    r: float, axial_kernel: Any, axial_fwhm: Any, plane: tuple[int, int]
) -> np.ndarray:
    """The axial kernel, refused when wider than the lateral planes."""
    kernel = axial_kernel_for(r, axial_kernel, axial_fwhm)
    if kernel.shape[1] > min(plane):
        raise ValueError(
            f"the axial kernel ({kernel.shape[1]} taps) is wider than the lateral planes "
            f"({plane[0]} x {plane[1]})"
        )
    return kernel


def _lateral_fathers(vol: np.ndarray, chosen: list[int]) -> list[np.ndarray]:
    """The chosen lateral planes of ``vol`` ``(C, Z, Y, X)``, each also transposed."""
    fathers: list[np.ndarray] = []
    for z in chosen:
        plane = np.ascontiguousarray(vol[:, z])
        fathers.append(plane)
        fathers.append(np.ascontiguousarray(plane.transpose(0, 2, 1)))
    return fathers


def _xz_and_yz(
    model: Any,
    vol: np.ndarray,
    out_z: int,
    vmax: float,
    callback: ProgressCallback | None,
    t0: float,
) -> np.ndarray:
    """The mean of the XZ and YZ reconstructions of ``vol`` ``(C, Z, Y, X)``: ``(C, Zo, Y, X)``."""
    ny, nx = vol.shape[2], vol.shape[3]
    n_total = ny + nx

    def progress(done: int, label: str) -> None:
        frac = _TRAIN_SHARE + (1.0 - _TRAIN_SHARE) * done / n_total
        _emit(
            callback,
            Progress(
                "infer",
                iteration=done,
                max_iterations=n_total,
                loss=model.final_loss,
                elapsed=time.perf_counter() - t0,
                fraction=min(frac, 1.0),
                message=f"{label} planes ({done}/{n_total})",
            ),
        )

    progress(0, "XZ")
    xz = _predict_planes(  # one (C, X, Z) plane per y
        model, vol.transpose(2, 0, 3, 1), out_z, vmax, lambda k: progress(k, "XZ")
    )
    acc = xz.transpose(1, 3, 0, 2).astype(np.float32)  # (C, Zo, Y, X)
    del xz
    yz = _predict_planes(  # one (C, Y, Z) plane per x
        model, vol.transpose(3, 0, 2, 1), out_z, vmax, lambda k: progress(ny + k, "YZ")
    )
    acc += yz.transpose(1, 3, 2, 0)
    acc *= 0.5
    del yz
    return acc


def _run_information(
    model: Any,
    kernel: np.ndarray,
    n_fathers: int,
    r: float,
    device: tuple[Any, str],
    seconds: float,
    *,
    preset: str,
    config: ZSSRConfig | None,
    cfg: ZSSRConfig,
    seed: int,
    info: Any,
    shapes: tuple[Any, Any],
) -> dict[str, Any]:
    """The run information of :func:`isotropic_z` (JSON-able)."""
    summary = f"axial 1 x {kernel.shape[1]} on the lateral grid"
    degradation = {
        "z_ratio": r,
        "scale": [1.0, r],
        "axial_kernel": [float(v) for v in kernel[0]],
        # JSON-able throughout (the taps are axial_kernel); kernel_summary as super_resolve's
        "kernel": summary,
        "kernel_summary": summary,
        "n_father_planes": n_fathers,
    }
    return run_info(
        preset=preset,
        config=config,
        cfg=cfg,
        seed=seed,
        device=device[0],
        device_reason=device[1],
        seconds=seconds,
        final_loss=model.final_loss,
        iterations=model.iterations,
        intensity=info,
        input_shape=shapes[0],
        output_shape=shapes[1],
        method="isotropic_z",
        degradation=degradation,
    )
