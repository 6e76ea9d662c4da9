"""The one builder of a run's information dictionary (``return_info=True``), shared by
:func:`~napari_zssr.super_resolve`, :func:`~napari_zssr.super_resolve_many` and
:func:`~napari_zssr.isotropic_z`, so that every run reports the same facts under the same
keys, in the same order."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._version import __version__
from ..core.config import ZSSRConfig
from ..core.consistency import HARM_DISCREPANCY

__all__ = ["consistency_summary", "job_info", "mean_loss", "run_info"]


def mean_loss(losses: list[float]) -> float | None:
    """The mean of a run's final losses (None when nothing was trained)."""
    return float(np.mean(losses)) if losses else None


def run_info(
    *,
    preset: Any,
    config: ZSSRConfig | None,
    cfg: ZSSRConfig,
    seed: int,
    device: Any,
    device_reason: str,
    seconds: float,
    final_loss: float | None,
    iterations: int,
    intensity: Any,
    input_shape: Any,
    output_shape: Any,
    method: str | None = None,
    degradation: dict[str, Any] | None = None,
    work: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A run's information, JSON-able except where ``degradation`` holds arrays.

    Parameters
    ----------
    preset, config
        As given to the run (the preset is recorded only when no ``config`` was given).
    cfg : ZSSRConfig
        The configuration the run used.
    seed, device, device_reason
        The seed and the device it ran on, with why that device.
    seconds, final_loss, iterations
        Its duration, its mean final training loss (None: nothing trained) and its total
        training iterations.
    intensity : IntensityInfo
        The input's intensity handling.
    input_shape, output_shape
        The input's and the output's shapes.
    method : str, optional
        Which function ran, where it is not :func:`~napari_zssr.super_resolve`.
    degradation : dict, optional
        What the run trained under (scale, kernel, noise), after the configuration.
    work : dict, optional
        How the work was split (stack mode, planes, batches), after the device.
    """
    head: dict[str, Any] = {"version": __version__}
    if method is not None:
        head["method"] = method
    return {
        **head,
        "preset": None if config is not None else preset,
        "config": cfg.to_dict(),
        **(degradation or {}),
        "seed": int(seed),
        "device": str(device),
        "device_reason": device_reason,
        **(work or {}),
        "seconds": seconds,
        "final_loss": final_loss,
        "iterations": iterations,
        "intensity": intensity.to_dict(),
        "input_shape": list(input_shape),
        "output_shape": list(output_shape),
    }


def job_info(
    job: Any,
    *,
    preset: Any,
    config: ZSSRConfig | None,
    seed: int,
    device: tuple[Any, str],
    seconds: float,
    degradation: dict[str, Any],
    work: dict[str, Any],
    method: str | None = None,
) -> dict[str, Any]:
    """:func:`run_info` of a :class:`~napari_zssr.arrays.loop.PlaneJob` (its configuration,
    intensities, shapes, iterations and losses); ``device`` is ``(device, reason)``."""
    info = run_info(
        preset=preset,
        config=config,
        cfg=job.config,
        seed=seed,
        device=device[0],
        device_reason=device[1],
        seconds=seconds,
        final_loss=mean_loss(job.losses),
        iterations=job.iterations,
        intensity=job.info,
        input_shape=job.arr.shape,
        output_shape=job.out.target.shape,
        method=method,
        degradation=degradation,
        work=work,
    )
    if job.consistency:
        info["consistency_step"] = consistency_summary(job.consistency)
    return info


def consistency_summary(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The consistency step over the planes: how many ran it, the median iterations and the
    median discrepancy (mean squared residual over the input's noise variance) before and
    after, the seconds it took in all, and the planes it ran on and left with the residual
    clearly above the noise (``HARM_DISCREPANCY``; with the largest discrepancy left)."""
    its = [n for r in records for n in r["iterations"]]
    # a channel the step ran on and left clearly above the noise: the step could not explain
    # the residual (noise read too low, or a kernel that does not match the data); a step
    # that only measured says nothing
    short = sum(
        r["max_iters"] > 0 and any(d > HARM_DISCREPANCY for d in r["discrepancy_after"])
        for r in records
    )
    before = [d for r in records for d in r["discrepancy_before"]]
    after = [d for r in records for d in r["discrepancy_after"]]
    return {
        "planes": len(records),
        "iterations": float(np.median(its)) if its else 0.0,
        "discrepancy_before": float(np.median(before)) if before else None,
        "discrepancy_after": float(np.median(after)) if after else None,
        "seconds": float(sum(r.get("seconds", 0.0) for r in records)),
        "planes_not_within_noise": int(short),
        "worst_discrepancy_after": float(max(after)) if after else None,
    }
