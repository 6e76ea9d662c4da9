"""The public entry point: :func:`super_resolve` for N-D arrays of any common dtype."""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .._version import __version__
from ..core.config import (
    MAX_FATHER_PLANES,
    MAX_NOISE_STD,
    NOISE_MODELS,
    PRESETS,
    ZSSRConfig,
    default_noise_std,
    father_planes,
    resolve_config,
)
from ..core.device import resolve_device
from ..core.engine import (
    Reporter,
    effective_back_projection,
    fit,
    gradual_stages,
    normalise_scale,
    predict,
    upscale_plane,
)
from ..core.kernels import prepare_kernel, validate_kernel
from ..core.maps import MapsCollector
from ..core.progress import ProgressCallback
from ..core.resize import output_shape
from .lazy import check_lazy, is_lazy
from .output import PlaneOutput, prepare_output
from .planes import intensity_info, make_layout, normalise_plane, restore_plane
from .snapshots import snapshot_relay
from .upscale_many import auto_batch, check_batch, per_plane_batches

__all__ = ["super_resolve"]

StackMode = Literal["per_plane", "shared"]
SHARED_ITERS_FACTOR = 2


def _check_image(image: Any) -> np.ndarray:
    if is_lazy(image):  # dask, zarr, memmap: read plane by plane, never whole
        return check_lazy(image)
    if isinstance(image, (list, tuple)) or not hasattr(image, "shape"):
        raise TypeError(
            f"image must be a NumPy array (or array-like with a shape), got {type(image).__name__}"
        )
    if isinstance(image, np.ma.MaskedArray) and np.ma.getmask(image) is not np.ma.nomask:
        if np.ma.getmaskarray(image).any():
            raise ValueError(
                "image is a masked array with masked pixels; the network cannot honour a mask "
                "(masked values would be processed as data): pass image.filled(value) or the "
                "plain data"
            )
    arr = np.asarray(image)
    if arr.dtype == object:
        raise TypeError("image has dtype object; pass a numeric array")
    if arr.size == 0:
        raise ValueError(f"image is empty (shape {arr.shape})")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError("image contains NaN or Inf values; replace them before super-resolving")
    return arr


def _check_noise(noise_std: Any) -> float | str | None:
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


class NoiseProfiles:
    """The noise profile (:func:`~napari_zssr.core.noise.noise_profile`) and mean of each
    plane-channel of an image, measured once and shared by the noise on the sons, the
    Poisson-Gaussian fit and the kernel estimate (each would otherwise measure the same
    planes again: the patch statistics are most of an estimate's cost). Normalised units.

    Parameters
    ----------
    arr, layout, info
        The image, its layout and its intensity range (:mod:`napari_zssr.arrays.planes`); planes are
        read (from a lazy array too) only when first asked for.
    """

    def __init__(self, arr: Any, layout: Any, info: Any) -> None:
        self.arr, self.layout, self.info = arr, layout, info
        self._planes: dict[tuple[int, ...], tuple[list[Any], float]] = {}

    def plane(
        self, idx: tuple[int, ...], normalised: np.ndarray | None = None
    ) -> tuple[list[Any], float]:
        """The profiles of plane ``idx``'s channels and the plane's mean intensity;
        ``normalised``: the plane as :func:`~napari_zssr.arrays.planes.normalise_plane` gives it, when the
        caller has read it already (not read again)."""
        if idx not in self._planes:
            from ..core.noise import noise_profile

            chans = normalised
            if chans is None:
                chans = normalise_plane(self.layout.plane(self.arr, idx), self.info)
            self._planes[idx] = ([noise_profile(c) for c in chans], float(chans.mean()))
        return self._planes[idx]

    def sampled(self) -> list[tuple[int, ...]]:
        """The planes the noise is measured on: up to 16 plane-channels over the stack."""
        return _father_planes(self.layout, max(1, MAX_FATHER_PLANES // self.layout.channels))


def _estimate_noise(profiles: NoiseProfiles) -> float:
    """Median noise estimate over channels and up to 16 planes, in normalised units."""
    # at most 16 plane-channels: about 0.1 s each on a 1024 x 1024 plane
    values = [p.rms for idx in profiles.sampled() for p in profiles.plane(idx)[0]]
    return float(min(max(np.median(values), 0.0), MAX_NOISE_STD))


def _resolve_noise(
    noise: float | str | None,
    preset: str,
    config: ZSSRConfig | None,
    estimate: float,
    with_kernel: bool,
) -> tuple[float, str, str | None]:
    """The noise the run adds to the sons, where it came from ("set", "preset" or "auto"),
    and a warning when a set (or preset) value is far below a high estimate."""
    from ..core.noise import auto_noise_std, noise_warning

    source = "set"
    if noise is None:
        noise = default_noise_std(preset, config)
        source = "preset"
    if noise == "auto":
        return auto_noise_std(estimate, with_kernel=with_kernel), "auto", None
    value = float(noise)
    return value, source, noise_warning(value, estimate, with_kernel=with_kernel)


def _noise_on_sons(
    profiles: NoiseProfiles,
    noise: float | str | None,
    preset: str,
    config: ZSSRConfig | None,
    with_kernel: bool,
    *,
    prefix: str = "",
    warn: bool = True,
) -> dict[str, Any]:
    """The noise on the sons (``noise_std``), its source, the image's estimate and the warnings
    of :func:`super_resolve`: each starts with ``prefix`` and, with ``warn``, is also issued
    (:func:`~napari_zssr.arrays.upscale_many.super_resolve_many` issues its own, once every image is checked)."""
    estimate = _estimate_noise(profiles)
    value, source, message = _resolve_noise(noise, preset, config, estimate, with_kernel)
    if message is not None:
        message = prefix + message
        if warn:
            warnings.warn(message, UserWarning, stacklevel=3)
    return {
        "noise_std": value,
        "noise_std_source": source,
        "noise_estimate": estimate,
        "warnings": [message] if message is not None else [],
    }


def _check_noise_model(noise_model: Any, cfg: ZSSRConfig) -> str:
    """``noise_model`` as given, or the configuration's; refused when unknown."""
    model = cfg.noise_model if noise_model is None else noise_model
    if model not in NOISE_MODELS:
        raise ValueError(f"noise_model must be one of {', '.join(NOISE_MODELS)}, got {model!r}")
    return str(model)


def _camera_noise(profiles: NoiseProfiles, noise_std: float, model: str) -> dict[str, Any]:
    """The sons' noise model: for ``"poisson-gaussian"`` the gain and offset fitted to the
    image (median over channels and up to 16 planes, normalised units), scaled so that the
    model's root-mean-square over the image is ``noise_std`` when that was set by hand (its
    shape across intensities stays the image's); zero when the sons get no noise."""
    if model != "poisson-gaussian" or noise_std == 0:
        return {"noise_model": model, "noise_gain": 0.0, "noise_offset": 0.0}
    planes = [profiles.plane(idx) for idx in profiles.sampled()]
    fits = [p.poisson_gaussian_fit() for chans, _ in planes for p in chans]
    gain, offset = (float(v) for v in np.median(np.asarray(fits), axis=0))
    level = gain * float(np.mean([mean for _, mean in planes])) + offset  # the model's mean var
    if level <= 0:  # no band above the noise floor: a flat variance at the level
        gain, offset, level = 0.0, noise_std**2, noise_std**2
    factor = noise_std**2 / level
    return {"noise_model": model, "noise_gain": gain * factor, "noise_offset": offset * factor}


def _estimate_kernel(kernel: str, profiles: NoiseProfiles, scale: tuple[float, float]) -> Any:
    """``kernel="estimate"``: fit the kernel to the image (channel mean, up to 4 planes)."""
    from ..core.kernel_estimate import MAX_PLANES, estimate_kernel

    if kernel.strip().lower() != "estimate":
        raise ValueError(f"kernel must be an array, None or 'estimate', got {kernel!r}")
    layout, idxs = profiles.layout, _father_planes(profiles.layout, MAX_PLANES)
    read = [normalise_plane(layout.plane(profiles.arr, idx), profiles.info) for idx in idxs]
    planes = [chans.mean(axis=0) for chans in read]
    noise = None
    if layout.channels == 1:  # the plane is the channel the noise on the sons is measured on
        noise = [profiles.plane(idx, chans)[0][0].rms for idx, chans in zip(idxs, read)]
    del read
    return estimate_kernel(planes, scale, noise_std=noise)


def _fallback(kernel_est: Any) -> str | None:
    """The warning of an estimated kernel that was not used, or None."""
    if kernel_est is None or kernel_est.reliable:
        return None
    return kernel_est.fallback_message()


def _resolve_kernel(
    kernel: Any, profiles: NoiseProfiles, scale: tuple[float, float]
) -> tuple[Any, Any]:
    """``kernel`` as given, or for ``"estimate"`` the estimated one (None, with a warning, when
    the estimate is not reliable: the bicubic kernel is used), and the estimate itself."""
    if not isinstance(kernel, str):
        return kernel, None
    kernel_est = _estimate_kernel(kernel, profiles, scale)
    fallback = _fallback(kernel_est)
    if fallback is not None:
        warnings.warn(fallback, UserWarning, stacklevel=3)
        return None, kernel_est
    # from here on, used exactly like a given kernel
    return kernel_est.kernel, kernel_est


def _father_planes(layout: Any, limit: int = MAX_FATHER_PLANES) -> list[tuple[int, ...]]:
    """Stack indices of up to ``limit`` planes spread evenly over the stack."""
    indices = list(np.ndindex(*layout.stack_shape))
    return [indices[i] for i in father_planes(len(indices), limit)]


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
        :mod:`napari_zssr.arrays.upscale_many`). None (default) chooses from the free GPU memory, and 1
        on the CPU; 1 trains one plane after another. Unused in shared mode.
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
    arr = _check_image(image)
    sc = normalise_scale(scale)
    cfg = resolve_config(preset, config)
    noise = _check_noise(noise_std)
    noise_model = _check_noise_model(noise_model, cfg)
    _check_arguments(callback, rgb, stack_mode, seed, maps, return_info)
    batch_planes = check_batch(batch_planes)
    from .networks import SavedRun  # the network given to the run, or kept from it

    saved = SavedRun.make(
        model, finetune=finetune, keep=keep_model, return_info=return_info, kernel=kernel, scale=sc
    )
    kernel = saved.kernel() if saved.model is not None else kernel
    layout = make_layout(arr.shape, channel_axis, bool(rgb))
    saved.check_layout(layout, stack_mode)
    info = intensity_info(arr, layout)  # validates the dtype
    profiles = NoiseProfiles(arr, layout, info)  # measured once, for each use below
    kernel, kernel_est = _resolve_kernel(kernel, profiles, sc)
    if kernel is not None:
        validate_kernel(kernel, layout.plane_shape)
    noise_info = _noise_on_sons(profiles, noise, preset, config, kernel is not None)
    noise_info["warnings"] += [m for m in [_fallback(kernel_est)] if m is not None]
    cfg = saved.config(cfg.replace(noise_std=noise_info.pop("noise_std")))
    camera = _camera_noise(profiles, cfg.noise_std, noise_model)
    cfg = cfg.replace(**camera)
    noise_info.update(camera)
    dev, reason = resolve_device(device)
    _warn_ignored_gradual(kernel, cfg, preset, sc)
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
    job = _Planes(arr, layout, info, sc, dk, cfg, int(seed), rep, writer, collector)
    job.saved = saved
    n_batch = 1
    if not shared and layout.n_planes > 1:
        n_batch = batch_planes or auto_batch(dev, cfg, layout.n_planes)
    iterations, losses = _run_planes(job, dev, shared, n_batch)
    writer.finish()  # the completion flag, last
    rep.plane = rep.n_planes - 1
    rep.step = rep.n_steps - 1
    rep("done", 1.0, loss=losses[-1] if losses else None, message="done")
    if not return_info:
        return out
    run_info = {
        "version": __version__,
        "preset": None if config is not None else preset,
        "config": cfg.to_dict(),
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
        "seed": int(seed),
        "device": str(dev),
        "device_reason": reason,
        "stack_mode": stack_mode,
        "n_planes": layout.n_planes,
        "batch_planes": n_batch,
        "seconds": time.perf_counter() - t0,
        "final_loss": float(np.mean(losses)) if losses else None,
        "iterations": iterations,
        "intensity": info.to_dict(),
        "input_shape": list(arr.shape),
        "output_shape": list(out.shape),
    }
    if collector is not None:
        run_info.update(collector.info())
    run_info.update(saved.info())
    return out, run_info


def _run_planes(job: _Planes, dev: Any, shared: bool, n_batch: int) -> tuple[int, list[float]]:
    """Train and infer every plane: one shared network, batches of networks, or one by one."""
    if job.saved is not None and job.saved.model is not None:
        return job.saved.apply(job, dev)  # a saved network, the same for every plane
    if shared:
        return _train_shared(job, dev)
    if n_batch > 1:  # several planes' networks trained together
        return per_plane_batches(
            job.arr,
            job.layout,
            job.info,
            scale=job.sc,
            kernel=job.dk,
            config=job.cfg,
            device=dev,
            seed=job.seed,
            reporter=job.rep,
            batch=n_batch,
            out_canon=job.out_canon,
            collector=job.collector,
        )
    return _train_per_plane(job, dev)


def _check_arguments(
    callback: Any, rgb: Any, stack_mode: Any, seed: Any, maps: Any, return_info: Any
) -> None:
    """The plain arguments of :func:`super_resolve`, each refused with its own message."""
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable (or None), got {callback!r}")
    if not isinstance(rgb, (bool, np.bool_)):
        raise TypeError(f"rgb must be True or False, got {rgb!r}")
    if stack_mode not in ("per_plane", "shared"):
        raise ValueError(f"stack_mode must be 'per_plane' or 'shared', got {stack_mode!r}")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"seed must be an integer, got {seed!r}")
    if not 0 <= int(seed) < 2**32:
        raise ValueError(f"seed must be in [0, 2**32 - 1], got {seed!r}")
    if not isinstance(maps, (bool, np.bool_)):
        raise TypeError(f"maps must be True or False, got {maps!r}")
    if maps and not return_info:
        raise ValueError("maps=True needs return_info=True: the maps are returned in the info")


def _warn_ignored_gradual(kernel: Any, cfg: ZSSRConfig, preset: Any, sc: tuple) -> None:
    """Warn when the caller asked for gradual steps that a custom kernel rules out."""
    preset_gradual = (
        PRESETS[preset].gradual_scales if isinstance(preset, str) and preset in PRESETS else ()
    )
    if (
        kernel is not None
        and cfg.gradual_scales != preset_gradual  # the caller asked for other steps
        and len(gradual_stages(sc, cfg.gradual_scales, cfg.gradual_above)) > 1
    ):
        warnings.warn(
            "gradual_scales are ignored with a custom kernel (it is defined for the final "
            "factor only)",
            stacklevel=3,
        )


@dataclass
class _Planes:
    """What the plane loops share: input, layout, intensities, factors, kernel, output view."""

    arr: np.ndarray
    layout: Any
    info: Any
    sc: tuple[float, float]
    dk: Any
    cfg: ZSSRConfig
    seed: int
    rep: Reporter
    out_canon: PlaneOutput
    collector: MapsCollector | None = None
    saved: Any = None  # napari_zssr.arrays.networks.SavedRun: a network given to or kept from the run

    def collect(self) -> dict[str, Any] | None:
        """A dict for one plane's map ingredients, when maps are asked for."""
        return {} if self.collector is not None else None

    def store(self, idx: tuple, plane: np.ndarray, hr: np.ndarray, coll: Any) -> None:
        """Write one output plane back (and hand its map ingredients to the collector)."""
        self.out_canon[idx] = restore_plane(hr, self.info)
        if self.collector is not None and coll is not None:
            self.collector.add(idx, plane, hr, coll)


def _train_shared(job: _Planes, dev: Any) -> tuple[int, list[float]]:
    """One network trained on up to 16 planes, then fine-tuned briefly on each plane."""
    cfg, rep = job.cfg, job.rep
    if job.out_canon.all_done:  # a resumed run that had finished every plane
        return 0, []
    fathers = [
        normalise_plane(job.layout.plane(job.arr, idx), job.info)
        for idx in _father_planes(job.layout)
    ]
    model = fit(
        fathers,
        job.sc,
        kernel=job.dk,
        # many planes to learn from: twice the iterations of a single plane, without the
        # early stop (measured on a 32-plane stack: stopping early costs 0.1 dB)
        config=cfg.replace(
            gradual_scales=(),
            max_iters=SHARED_ITERS_FACTOR * cfg.max_iters,
            min_iters=SHARED_ITERS_FACTOR * cfg.max_iters,
        ),
        device=dev,
        seed=job.seed,
        reporter=rep,
    )
    del fathers
    if job.saved is not None:
        job.saved.keep_from(model, job)
    iterations = model.iterations
    losses = [model.final_loss if model.final_loss is not None else float("nan")]
    # Each plane starts from the shared weights and adapts to itself for a few
    # iterations: most of the per-plane quality at a fraction of its cost.
    n_ft = cfg.plane_finetune_iters
    ft_cfg = cfg.replace(gradual_scales=(), max_iters=n_ft, min_iters=n_ft) if n_ft else None
    shared_state = (
        {k: v.clone() for k, v in model.net.state_dict().items()} if ft_cfg is not None else None
    )
    out_yx = job.out_canon.shape[-2:]
    for k, idx in enumerate(np.ndindex(*job.layout.stack_shape)):
        rep.plane = k + 1
        if job.out_canon.done(idx):  # finished by an earlier run
            continue
        plane = normalise_plane(job.layout.plane(job.arr, idx), job.info)
        if ft_cfg is not None and shared_state is not None:
            model.net.load_state_dict(shared_state)
            model = fit(
                [plane],
                job.sc,
                kernel=job.dk,
                config=ft_cfg,
                model=model,
                seed=job.seed + 1 + k,
                reporter=rep,
            )
            iterations += n_ft
        coll = job.collect()
        hr = predict(model, plane, out_shape=out_yx, reporter=rep, vmax=job.info.vmax, collect=coll)
        job.store(idx, plane, hr, coll)
    return iterations, losses


def _train_per_plane(job: _Planes, dev: Any) -> tuple[int, list[float]]:
    """A network trained from scratch for every plane."""
    iterations, losses = 0, []
    for k, idx in enumerate(np.ndindex(*job.layout.stack_shape)):
        job.rep.plane = k
        if job.out_canon.done(idx):  # finished by an earlier run
            continue
        plane = normalise_plane(job.layout.plane(job.arr, idx), job.info)
        coll = job.collect()
        hr, model = upscale_plane(
            plane,
            job.sc,
            kernel=job.dk,
            config=job.cfg,
            device=dev,
            seed=job.seed,
            reporter=job.rep,
            vmax=job.info.vmax,
            collect=coll,
        )
        job.store(idx, plane, hr, coll)
        if job.saved is not None:
            job.saved.keep_from(model, job)
        iterations += model.iterations
        if model.final_loss is not None:
            losses.append(model.final_loss)
    return iterations, losses
