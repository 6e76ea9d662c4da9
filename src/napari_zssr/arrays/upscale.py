"""The public entry point: :func:`super_resolve` for N-D arrays of any common dtype."""

from __future__ import annotations

import time
from typing import Any, Literal

import numpy as np

from .._version import __version__
from ..core.config import ZSSRConfig, resolve_config
from ..core.device import resolve_device
from ..core.engine import Reporter, effective_back_projection, normalise_scale
from ..core.kernels import prepare_kernel
from ..core.maps import MapsCollector
from ..core.progress import ProgressCallback
from ..core.resize import output_shape
from .checks import (
    check_batch,
    check_callback,
    check_flag,
    check_image,
    check_noise,
    check_noise_model,
    check_seed,
    check_stack_mode,
)
from .degradation import set_up_degradation, warn_ignored_gradual
from .intensity import intensity_info
from .loop import PlaneJob, fresh_networks, run_planes, shared_network
from .networks import SavedRun
from .output import prepare_output
from .planes import make_layout
from .run_info import job_info
from .snapshots import snapshot_relay
from .upscale_many import auto_batch

__all__ = ["super_resolve"]

StackMode = Literal["per_plane", "shared"]


def super_resolve(
    image: np.ndarray,
    scale: float | tuple[float, float],
    *,
    kernel: np.ndarray | str | None = None,
    noise_std: float | str | None = None,
    preset: str = "balanced",
    config: ZSSRConfig | None = None,
    channel_axis: int | None = None,
    rgb: bool = False,
    device: str = "auto",
    seed: int = 0,
    callback: ProgressCallback | None = None,
    stack_mode: StackMode = "shared",
    return_info: bool = False,
    maps: bool = False,
    batch_planes: int | None = None,
    model: Any = None,
    finetune: int = 0,
    keep_model: bool = False,
    noise_model: str | None = None,
    out: Any = None,
    time_axis: int | None = None,
) -> np.ndarray | tuple[np.ndarray, dict[str, Any]]:
    """Super-resolve an image with zero-shot super-resolution (ZSSR).

    A small CNN is trained on the image itself: downscaled copies of the input ("HR
    fathers") are degraded by the downscaling model into "LR sons", the network learns
    son -> father, and is then applied to the input.

    Parameters
    ----------
    image : ndarray
        ``(Y, X)``; or N-D with Y, X as the last two axes and stack axes (Z, T, ...) before
        them, processed plane by plane; or ``(..., Y, X, 3|4)`` with ``rgb=True``. uint8,
        uint16, other integers, float32 and float64 are accepted. Not modified. Dask and
        zarr arrays and memmaps are read one plane at a time, never whole.
    scale : float or (float, float)
        Upscaling factor in [1, 16] (non-integer allowed), or ``(scale_y, scale_x)``.
        Output Y/X sizes are ``ceil(n * s)``; other axes are unchanged.
    kernel : ndarray, optional
        2-D downscaling kernel on the HR grid (the PSF sampled at pixel / scale, including
        pixel integration). Normalised and centred here. None: MATLAB's antialiased bicubic.
        ``"estimate"``: estimated from the image itself (an anisotropic Gaussian with the LR
        pixel's box, fitted by cross-scale patch recurrence on the channel mean of up to 4
        planes; see :mod:`napari_zssr.core.kernel_estimate`), then used like a given kernel;
        the kernel (list of lists, HR grid) and its parameters are in
        ``info["kernel_estimate"]`` (None otherwise). When the fit runs to the narrowest
        kernel of the family (``"reliable": False``: the image's fine texture does not recur
        across scales) the bicubic kernel is used instead, with a warning. Planes smaller than
        :func:`~napari_zssr.core.kernel_estimate.min_estimate_size` or flat images raise
        ValueError.
    noise_std : float or "auto", optional
        Gaussian noise added to the LR sons only, in units of the normalised [0, 1]
        intensity: the network learns to ignore noise, which does not recur across scales.
        ``"auto"`` uses the image's own noise level (root-mean-square, from its weakly
        textured patches, median over channels and up to 16 planes; see
        :func:`napari_zssr.core.noise.estimate_noise_std`); an estimate below 0.01 (0.003
        with a ``kernel``) counts as a noise-free image: no noise, and back-projection is
        kept (:func:`~napari_zssr.core.noise.auto_noise_std`). None (default) means ``"auto"``,
        except with the ``paper`` and ``paper-gradual`` presets (0: their published
        configuration) and with a ``config`` whose ``noise_std`` is above 0 (its value).
        0 turns the noise off; a value far below a high estimate draws a warning. The
        estimate and the value used are in the run information.
    preset : {"fast", "balanced", "paper", "paper-gradual", "real"}
        Named configuration; ignored when ``config`` is given, except for the noise default
        (see ``noise_std``).
    config : ZSSRConfig, optional
        Full configuration.
    channel_axis : int, optional
        Axis of a multi-channel array; the channels are processed jointly by one network.
    rgb : bool
        The last axis holds RGB(A) channels.
    device : str
        ``"auto"`` (CUDA, then Apple MPS, then CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"``,
        ``"mps"``.
    seed : int
        Seed of all random choices; the same seed on the CPU gives the same output.
    callback : callable, optional
        Called with a :class:`~napari_zssr.Progress` every few iterations; returning False
        (or raising :class:`~napari_zssr.Cancelled`) stops the run, which then raises
        :class:`~napari_zssr.Cancelled`.
    stack_mode : {"shared", "per_plane"}
        For stacks: ``"shared"`` (default) trains one network on fathers drawn from up to
        16 planes of the stack (its internal statistics as a whole), then each plane
        fine-tunes it briefly (``config.finetune_iters``) and is upscaled; ``"per_plane"``
        trains a network from scratch for every plane (slower).
    return_info : bool
        Also return a dictionary describing the run: JSON-able values except the arrays
        ``info["kernel"]`` (the downscaling kernel the sons were made with, float64 on the
        output grid, sum 1; None for MATLAB's bicubic; with ``kernel="estimate"`` the
        estimate) and, with ``maps=True``, ``info["maps"]``. ``info["kernel_summary"]``
        describes the kernel in words.
    maps : bool
        Also compute quality maps (needs ``return_info=True``): ``info["maps"]`` holds
        ``"spread"`` (median absolute deviation of the self-ensemble members),
        ``"consistency"`` (error of the output before back-projection, degraded back to the
        input, against the input) and ``"added"`` (local RMS of the output minus the
        bicubic upscale), float32 arrays of the output's shape in the input's intensity
        unit; ``info["consistency"]`` the SQUIRREL-style numbers (``rsp``, ``rse``,
        ``residual_after_back_projection``) and ``info["resolution"]`` the decorrelation
        resolution of the input, its bicubic upscale and the output, in input pixels; the
        arrays make the info no longer JSON-able. See :mod:`napari_zssr.core.maps`.
    batch_planes : int, optional
        With ``stack_mode="per_plane"``: planes whose networks train together on the
        device (each as it would alone, up to float rounding; see
        :mod:`napari_zssr.core.batched`). None (default) chooses from the free GPU memory,
        and 1 on the CPU; 1 trains one plane after another. Unused in shared mode.
    model : ZSSRModel or path, optional
        A saved network (a ``.zssr`` file or a :class:`~napari_zssr.ZSSRModel`) applied
        instead of training one: the same network upscales every plane (``stack_mode`` is
        unused), with this run's self-ensemble and back-projection. It brings its kernel
        (``kernel`` must be None), width and depth; ``scale`` must be the factor it learned
        and the image must have its number of channels. See :mod:`napari_zssr.arrays.networks`.
    finetune : int
        With ``model``: training iterations on each plane, starting from the saved weights
        (this run's configuration and noise on the sons), before it is upscaled; 0 (default)
        applies the network as it is.
    keep_model : bool
        Put the run's network in ``info["model"]`` (a :class:`~napari_zssr.ZSSRModel`, to
        :func:`~napari_zssr.save_model`; needs ``return_info=True``): for one plane its
        network, for a stack in shared mode the shared network (before each plane's
        fine-tuning). Kept only from a one-jump run (else None, with ``info["model_note"]``).
    noise_model : {"gaussian", "poisson-gaussian"}, optional
        Shape of the noise on the sons; None: the configuration's (``"gaussian"`` in every
        preset). ``"poisson-gaussian"``: variance ``a * I + b`` at each son pixel's clean
        intensity ``I`` (clipped at 0), with ``a`` and ``b`` fitted to the image's noise
        across intensities (:meth:`~napari_zssr.core.noise.NoiseProfile.poisson_gaussian_fit`)
        and scaled so that its root-mean-square over the image is the ``noise_std`` used
        (estimated or set; 0: no noise, so a clean image is treated exactly as with the
        Gaussian model). ``info["noise_gain"]`` and ``info["noise_offset"]`` hold ``a`` and
        ``b`` (normalised units).
    out : array-like or path, optional
        Where to write the output, plane by plane, instead of a new NumPy array: a writable
        array of the output's shape and dtype (a zarr array, a memmap), or the path of an
        OME-Zarr store to create (or reopen; its pixel size is ``1 / scale`` input pixels on
        Y and X; needs the ``zarr`` extra). With a zarr target the run is resumable: the
        finished planes are recorded in its attributes (``"napari_zssr"``) and a rerun with
        the same input and parameters skips them; the ``"complete"`` flag is written last.
        The target is returned. Not with ``maps=True``. Dask and zarr inputs and memmaps
        are read plane by plane whether or not ``out`` is given (see
        :mod:`napari_zssr.arrays.lazy`).
    time_axis : int, optional
        The stack axis along which the planes are frames of one field in time (a
        time-lapse, or repeated frames). With ``noise_std="auto"``, consecutive frames'
        differences, after undoing a drift of the whole field, give the per-pixel noise free
        of structure (:func:`~napari_zssr.core.noise.difference_noise_std`); where that is
        above a plane's own estimate it sets the level: single planes read noise correlated
        between neighbours (EMCCD, binning, resampling) and the noise of sparse bright
        structure low. ``info["noise_estimate_frames"]`` holds it per channel (None without a
        time axis). Not for Z: planes at other depths differ by structure. Not used with
        ``kernel="estimate"`` while its estimate is used.

    Returns
    -------
    ndarray or (ndarray, dict)
        The super-resolved array, same dtype as the input.

    Raises
    ------
    TypeError, ValueError
        For invalid input, naming the problem and the accepted range.
    napari_zssr.Cancelled
        When the callback stopped the run.
    """
    arr = check_image(image)
    sc = normalise_scale(scale)
    cfg = resolve_config(preset, config)
    noise = check_noise(noise_std)
    noise_model = check_noise_model(noise_model, cfg)
    seed = _check_arguments(callback, rgb, stack_mode, seed, maps, return_info)
    batch_planes = check_batch(batch_planes)
    saved = SavedRun.make(
        model, finetune=finetune, keep=keep_model, return_info=return_info, kernel=kernel, scale=sc
    )
    kernel = saved.kernel() if saved.model is not None else kernel
    layout = make_layout(arr.shape, channel_axis, bool(rgb))
    saved.check_layout(layout, stack_mode)
    info = intensity_info(arr, layout)  # validates the dtype
    cfg, kernel, kernel_est, noise_info, profiles = set_up_degradation(
        arr, layout, info, sc, kernel=kernel, noise=noise, noise_model=noise_model,
        preset=preset, config=config, cfg=cfg, saved=saved, time_axis=time_axis,
    )  # fmt: skip
    dev, reason = resolve_device(device)
    warn_ignored_gradual(kernel, cfg, preset, sc)
    dk = prepare_kernel(kernel, sc, layout.plane_shape) if kernel is not None else None

    out_yx = output_shape(layout.plane_shape, sc)
    writer = prepare_output(
        out, arr, layout, out_yx, sc, maps, (__version__, cfg, seed, stack_mode, dk, info, saved)
    )
    t0 = time.perf_counter()
    shared = stack_mode == "shared" and layout.n_planes > 1 and saved.model is None
    out = writer.target
    # training reports offer snapshots of the output (single planes): see snapshots.py
    relay = snapshot_relay(callback, layout, info, out.shape)
    rep = Reporter(relay, n_planes=layout.n_planes + (1 if shared else 0), snapshots=True)
    collector = MapsCollector(out.shape, layout.canonical, info.spans(), sc, dk) if maps else None
    job = PlaneJob(arr, layout, info, writer, cfg, collector, profiles=profiles)
    n_batch = 1
    if not shared and layout.n_planes > 1:
        n_batch = batch_planes or auto_batch(dev, cfg, layout.n_planes)
    try:
        _upscale_planes(job, saved, shared, n_batch, sc, dk, dev, seed, rep)
    except BaseException as exc:
        writer.settle(exc)  # an empty store of this run goes; finished planes stay
        raise
    writer.finish()  # the completion flag, last
    rep.plane = rep.n_planes - 1
    rep.step = rep.n_steps - 1
    rep("done", 1.0, loss=job.losses[-1] if job.losses else None, message="done")
    if not return_info:
        return out
    result = _run_information(
        job, sc, dk, kernel_est, noise_info, (dev, reason), time.perf_counter() - t0,
        preset=preset, config=config, seed=seed, stack_mode=stack_mode, n_batch=n_batch,
    )  # fmt: skip
    if collector is not None:
        result.update(collector.info())
    result.update(saved.info())
    return out, result


def _upscale_planes(
    job: PlaneJob,
    saved: SavedRun,
    shared: bool,
    n_batch: int,
    sc: tuple[float, float],
    dk: Any,
    dev: Any,
    seed: int,
    rep: Reporter,
) -> None:
    """Every plane through the plane loop: a saved network applied to each, one network
    shared by the stack, or a network of its own for each (``n_batch`` trained together)."""
    if saved.model is not None:  # a saved network, the same for every plane
        run_planes(job.pending(), saved.upscaler(job, sc, dev, seed, rep), rep)
        saved.finish()
        return
    if shared:
        if job.out.all_done:  # a resumed run that had finished every plane
            return
        model, upscale = shared_network(job, job.config, sc, dk, dev, seed, rep)
        saved.keep_from(model, job, sc, seed)
        run_planes(job.pending(first=1), upscale, rep)  # the shared training was "plane" 0
        return
    keep = None if not saved.keep else lambda model: saved.keep_from(model, job, sc, seed)
    run_planes(job.pending(), fresh_networks(sc, dk, dev, seed, rep, keep), rep, group=n_batch)


def _check_arguments(
    callback: Any, rgb: Any, stack_mode: Any, seed: Any, maps: Any, return_info: Any
) -> int:
    """The plain arguments of :func:`super_resolve`, each refused with its own message;
    returns the seed."""
    check_callback(callback)
    check_flag(rgb, "rgb")
    check_stack_mode(stack_mode)
    seed = check_seed(seed)
    if check_flag(maps, "maps") and not return_info:
        raise ValueError("maps=True needs return_info=True: the maps are returned in the info")
    return seed


def _run_information(
    job: PlaneJob,
    sc: tuple[float, float],
    dk: Any,
    kernel_est: Any,
    noise_info: dict[str, Any],
    device: tuple[Any, str],
    seconds: float,
    *,
    preset: str,
    config: ZSSRConfig | None,
    seed: int,
    stack_mode: str,
    n_batch: int,
) -> dict[str, Any]:
    """The run information of :func:`super_resolve` (before the maps and saved networks)."""
    cfg = job.config
    degradation = {
        "scale": [sc[0], sc[1]],
        # the kernel itself (given or estimated; None: MATLAB bicubic), and in words
        "kernel": None if dk is None else np.array(dk.weights, dtype=np.float64),
        "kernel_summary": (
            dk.summary() if dk is not None else "MATLAB bicubic (antialiased, a=-0.5)"
        ),
        "kernel_estimate": kernel_est.to_dict() if kernel_est is not None else None,
        "noise_std": cfg.noise_std,
        "noise_std_estimated": noise_info["noise_std_source"] == "auto",
        **noise_info,
        "back_projection_iters": effective_back_projection(cfg),
    }
    return job_info(
        job,
        preset=preset,
        config=config,
        seed=seed,
        device=device,
        seconds=seconds,
        degradation=degradation,
        work={"stack_mode": stack_mode, "n_planes": job.layout.n_planes, "batch_planes": n_batch},
    )
