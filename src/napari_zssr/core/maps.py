"""Quality maps of a ZSSR run: ensemble spread, consistency with the input, added detail.

For one plane, from the tensors the inference already holds:

- ``spread``: median absolute deviation of the geometric self-ensemble members around their
  median, where the network's answer depends on the orientation of the input;
- ``consistency``: SQUIRREL-style error map (Culley et al., "Quantitative mapping and
  minimization of super-resolution optical imaging artifacts", Nature Methods 15, 263-266,
  2018). The network's output *before* back-projection is degraded by the run's own model
  (its kernel, or MATLAB's bicubic), fitted to the input by ``alpha * S + beta`` and
  subtracted from it; the absolute error is interpolated to the output grid. Back-projection
  enforces agreement with the input by construction, so the residual after it is reported
  as a number only;
- ``added``: local RMS of the output minus the bicubic upscale of the input.

Every map is in the normalised intensity unit here; :class:`MapsCollector` converts them to
the input's intensity unit and assembles the run's ``info`` entries.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .inference import degrade
from .kernels import DownscaleKernel
from .resize import imresize
from .resolution import estimate_resolution

__all__ = ["MAP_NAMES", "MapsCollector", "PlaneMaps", "plane_maps"]

MAP_NAMES = ("spread", "consistency", "added")


@dataclass
class PlaneMaps:
    """Maps and consistency numbers of one ``(C, H, W)`` plane, normalised intensity unit.

    ``maps`` holds ``(C, H_out, W_out)`` float32 arrays; ``rsp``, ``rse`` and ``residual``
    hold one value per channel (``rse`` and ``residual`` as root-mean-square errors);
    ``bicubic`` is the bicubic upscale of the input, the baseline of ``added``.
    """

    maps: dict[str, np.ndarray]
    rsp: np.ndarray
    rse: np.ndarray
    residual: np.ndarray
    bicubic: np.ndarray


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(C, H, W)`` with mirrored borders."""
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    g = torch.exp(-0.5 * (t / sigma) ** 2)
    g = g / g.sum()
    h, w = x.shape[-2:]
    y = x[:, None]  # (C, 1, H, W)
    # reflect padding needs the pad below the size; replicate covers tiny planes
    mode = "reflect" if radius < min(h, w) else "replicate"
    y = F.conv2d(F.pad(y, (radius, radius, 0, 0), mode=mode), g.view(1, 1, 1, -1))
    y = F.conv2d(F.pad(y, (0, 0, radius, radius), mode=mode), g.view(1, 1, -1, 1))
    return y[:, 0]


def _fit_error(ref: torch.Tensor, est: torch.Tensor) -> tuple[torch.Tensor, np.ndarray]:
    """Per channel: ``|ref - (alpha * est + beta)|`` (least squares) and Pearson(ref, est).

    The statistics are taken in float64 on the CPU (some devices have no float64); the
    tensors are input-sized, so the copy is cheap.
    """
    c = ref.shape[0]
    r = ref.reshape(c, -1).detach().cpu().double()
    s = est.reshape(c, -1).detach().cpu().double()
    rc = r - r.mean(dim=1, keepdim=True)
    sc = s - s.mean(dim=1, keepdim=True)
    var_s = (sc * sc).sum(dim=1)
    cov = (rc * sc).sum(dim=1)
    var_r = (rc * rc).sum(dim=1)
    alpha = torch.where(var_s > 0, cov / var_s.clamp_min(1e-300), torch.zeros_like(cov))
    beta = r.mean(dim=1) - alpha * s.mean(dim=1)
    a_t = alpha.to(device=ref.device, dtype=ref.dtype)[:, None, None]
    b_t = beta.to(device=ref.device, dtype=ref.dtype)[:, None, None]
    err = (ref - (a_t * est + b_t)).abs()
    denom = torch.sqrt(var_s * var_r)
    # a constant reference or estimate has no defined correlation
    pearson = torch.where(denom > 0, cov / denom.clamp_min(1e-300), torch.full_like(cov, math.nan))
    return err, pearson.numpy()


def _rms(x: torch.Tensor) -> np.ndarray:
    """Root-mean-square over the last two axes, in float64 on the CPU."""
    return x.detach().cpu().double().pow(2).mean(dim=(-2, -1)).sqrt().numpy()


def plane_maps(
    lr: torch.Tensor,
    result: torch.Tensor,
    collected: dict[str, torch.Tensor],
    scale: Sequence[float],
    kernel: DownscaleKernel | None,
) -> PlaneMaps:
    """Quality maps of one plane.

    Parameters
    ----------
    lr : torch.Tensor
        The input ``(C, h, w)``, normalised intensity.
    result : torch.Tensor
        The final output ``(C, H, W)`` (after back-projection), same unit.
    collected : dict
        ``"raw"`` (output before back-projection) and ``"spread"`` from the inference.
    scale : (float, float)
        The run's total factor ``(s_y, s_x)``.
    kernel : DownscaleKernel or None
        The run's degradation kernel; None for MATLAB's bicubic.

    Returns
    -------
    PlaneMaps
    """
    sc = (float(scale[0]), float(scale[1]))
    lr = lr.to(device=result.device, dtype=torch.float32)
    out_shape = tuple(result.shape[-2:])
    with torch.inference_mode():
        raw_lr = degrade(collected["raw"].float(), sc, kernel, lr.shape[-2:])
        err_lr, rsp = _fit_error(lr, raw_lr)
        consistency = imresize(err_lr, sc, out_shape).clamp_min(0.0)
        residual = _rms(lr - degrade(result.float(), sc, kernel, lr.shape[-2:]))
        bicubic = imresize(lr, sc, out_shape)
        diff = result.float() - bicubic
        # one input pixel of smoothing: the added detail oscillates at that scale
        added = _gaussian_blur(diff * diff, sigma=max(1.0, 0.5 * (sc[0] + sc[1]))).sqrt()
        maps = {
            "spread": collected["spread"].float(),
            "consistency": consistency,
            "added": added,
        }
        arrays = {k: v.cpu().numpy().astype(np.float32, copy=False) for k, v in maps.items()}
    return PlaneMaps(
        maps=arrays,
        rsp=rsp,
        rse=_rms(err_lr),
        residual=residual,
        bicubic=bicubic.cpu().numpy(),
    )


def _plane_resolution(
    lr: np.ndarray, bicubic: np.ndarray, result: np.ndarray, scale: tuple[float, float]
) -> tuple[float, float, float] | None:
    """Median decorrelation resolution over channels, in input pixels.

    Of the input, of its bicubic upscale and of the output. The two upscaled images are
    measured alike on the output grid: interpolation leaves residues above the input's
    Nyquist frequency that the method counts as signal, so the output is to be read
    against the bicubic value, not against the input's.
    """
    # output pixels are 1/s input pixels: measure directly in input pixels
    spacing = (1.0 / scale[0], 1.0 / scale[1])
    try:
        res_in = [estimate_resolution(ch).resolution_px for ch in lr]
        res_bic = [estimate_resolution(ch, pixel_size=spacing).resolution_um for ch in bicubic]
        res_out = [estimate_resolution(ch, pixel_size=spacing).resolution_um for ch in result]
    except ValueError:  # a plane too small or constant has no resolution
        return None
    return tuple(float(np.median(v)) for v in (res_in, res_bic, res_out))  # type: ignore[return-value]


@dataclass
class MapsCollector:
    """Accumulates per-plane maps of a run into arrays of the output's shape.

    Parameters
    ----------
    out_shape : tuple of int
        Shape of the output in the user's axis order (each map gets it).
    canonical : callable
        Maps an array of ``out_shape`` to a ``(stack..., C, H_out, W_out)`` view
        (:meth:`napari_zssr.arrays.planes.Layout.canonical`).
    span : ndarray
        Per-channel intensity span ``hi - lo`` (input unit per normalised unit).
    scale : (float, float)
        The run's factor.
    kernel : DownscaleKernel or None
        The run's degradation kernel.
    """

    out_shape: tuple[int, ...]
    canonical: Callable[[np.ndarray], np.ndarray]
    span: np.ndarray
    scale: tuple[float, float]
    kernel: DownscaleKernel | None
    maps: dict[str, np.ndarray] = field(default_factory=dict)
    planes: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def __post_init__(self) -> None:
        self.maps = {k: np.zeros(self.out_shape, np.float32) for k in MAP_NAMES}

    def add(
        self,
        idx: tuple[int, ...],
        lr: np.ndarray,
        result: np.ndarray,
        collected: dict[str, torch.Tensor],
    ) -> None:
        """Compute and store the maps of stack plane ``idx`` (normalised ``(C, H, W)`` arrays)."""
        t0 = time.perf_counter()
        res_t = torch.from_numpy(np.ascontiguousarray(result, dtype=np.float32))
        device = collected["raw"].device
        pm = plane_maps(
            torch.from_numpy(np.ascontiguousarray(lr, dtype=np.float32)),
            res_t.to(device),
            collected,
            self.scale,
            self.kernel,
        )
        unit = self.span.astype(np.float32)[:, None, None]
        for name, arr in pm.maps.items():
            self.canonical(self.maps[name])[idx] = arr * unit
        resolution = _plane_resolution(lr, pm.bicubic, result, self.scale)
        self.planes.append(
            {
                "rsp": float(np.nanmean(pm.rsp)) if np.isfinite(pm.rsp).any() else None,
                "rse": float(np.mean(pm.rse * self.span)),
                "residual": float(np.mean(pm.residual * self.span)),
                "resolution": resolution,
            }
        )
        self.seconds += time.perf_counter() - t0

    def info(self) -> dict[str, Any]:
        """The run's ``maps``, ``consistency`` and ``resolution`` entries."""
        rsps = [p["rsp"] for p in self.planes if p["rsp"] is not None]
        consistency: dict[str, Any] = {
            "rsp": float(np.mean(rsps)) if rsps else None,
            "rse": float(np.mean([p["rse"] for p in self.planes])),
            "residual_after_back_projection": float(np.mean([p["residual"] for p in self.planes])),
            "unit": "input intensity (rse, residual: root-mean-square on the input grid)",
        }
        resolved = [p["resolution"] for p in self.planes if p["resolution"] is not None]
        resolution: dict[str, Any] | None = None
        if resolved:
            resolution = {
                "input": float(np.median([r[0] for r in resolved])),
                "bicubic": float(np.median([r[1] for r in resolved])),
                "output": float(np.median([r[2] for r in resolved])),
                "unit": "px",
                "method": "decorrelation",
            }
        if len(self.planes) > 1:
            consistency["planes"] = [
                {k: p[k] for k in ("rsp", "rse", "residual")} for p in self.planes
            ]
            if resolution is not None:
                resolution["planes"] = [p["resolution"] for p in self.planes]
        return {
            "maps": dict(self.maps),
            "consistency": consistency,
            "resolution": resolution,
            "maps_seconds": self.seconds,
        }
