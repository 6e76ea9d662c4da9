"""A noise-aware consistency step: the output made to agree with the input through the
kernel, up to the input's own noise and no further.

Back-projection (``sr += upscale(lr - degrade(sr))``) makes a clean input's output reproduce
it exactly; on a noisy input it copies the noise back, so runs with noise on the sons switch
it off (:func:`~napari_zssr.core.engine.effective_back_projection`). The network's output is
then free to disagree with the input by more than the noise: on the held-out microscopy
cases (``benchmarks/deconvolution.py``) its residual through the PSF was 1.1-2.7 times the
input's noise variance, and Richardson-Lucy with the same PSF recovered the detail the
network had left in that residual (most on sparse filaments).

This step closes that gap without fitting the noise. It runs Richardson-Lucy iterations on
the output grid, started from the network's output, with the forward model of the run
(``degrade``: the kernel, or MATLAB's bicubic without one), and keeps the iteration count
whose predicted risk (the expected squared error of the output seen through the kernel) is
lowest by Stein's unbiased risk estimate for the input's Poisson-Gaussian noise (variance
``gain * intensity + offset`` at each pixel, fitted on the input by
:func:`~napari_zssr.core.noise.noise_profile`). An output that already agrees with its input
as well as the noise allows (a count of 0 scores best) is returned untouched.

Why a risk estimate and not Morozov's discrepancy principle (stop once the mean squared
residual over the noise variance is at most 1), which this step used first: the principle's
threshold sits on a knife edge. On the held-out widefield cases the network's output often
starts close to it (1.03-1.22 on seven of ten), where one Richardson-Lucy iteration (which mostly
corrects the PSF's far rings, beyond the core the sons were made with) is worth up to 1.6 dB,
so a noise level read a little higher can stop it before that iteration. The risk estimate
weighs what an iteration removes from the residual against the noise it fits, so a small
change in the noise level moves its choice by a count, not from some to none. Measured from
the same network outputs on the 20 held-out cases (``benchmarks/consistency_stop.py``): with
the noise as this package reads it, both rules came within 0.08 dB on average of the count
chosen with the ground truth; with the noise variance read 20% low the principle fell 2.17 dB
short on average (8.75 dB on one case, 9 iterations where none was best) and the risk
estimate 0.07 dB; read 25% high, 0.32 dB (1.60 at worst) against 0.06 dB (0.24). On the
synthetic cases of ``tests/test_consistency.py`` the same reading errors moved the
principle's result by 0.47-2.01 dB and the risk estimate's by at most 0.39 dB.

Why Richardson-Lucy and not least squares: the multiplicative update keeps the output
non-negative and is the maximum-likelihood step for photon noise. Measured on the five
held-out widefield cases at 400 photons, from the same network outputs: conjugate-gradient
least squares with the same stopping rule gained 0.0-1.0 dB, Richardson-Lucy 0.4-1.8 dB, and
plain back-projection (bicubic upsampling of the residual) diverged under a widefield PSF.

The adjoint of ``degrade`` is taken by automatic differentiation, so it is exact for any
kernel and for the bicubic model, with no hand-written transpose to keep in step.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .inference import degrade
from .kernels import DownscaleKernel

__all__ = ["HARM_DISCREPANCY", "consistency_step", "input_noise_model"]

#: Floor on intensities inside the multiplicative update (normalised units): keeps the ratio
#: finite in black regions without biasing anything above the quantisation of 16-bit data.
_FLOOR = 1e-4
#: Floor on the noise variance of a pixel in the discrepancy (normalised units squared).
_MIN_VAR = 1e-8
#: Size of the Monte-Carlo probe that measures the chain's divergence, as a fraction of the
#: input's standard deviation: small enough for the chain to respond linearly, large enough
#: to stay far above float32 rounding.
_PROBE = 1e-3
#: Counts past the lowest risk estimate before the search ends (the estimate falls, then
#: rises, once the iterations start to fit the noise).
_PATIENCE = 3
#: A residual left above this multiple of the input's noise variance after the step reads
#: as likely harm (:func:`napari_zssr.arrays.run_info.consistency_summary`). The step does not
#: stop at 1 (the risk estimate settled between 0.86 and 1.16 on the held-out cases), and
#: where the noise level comes from the intensity bands alone (no band beyond the PSF's
#: cutoff, :func:`~napari_zssr.core.noise.beyond_cutoff_noise_std`) it is read a fifth low
#: often enough (median 0.87 of the true variance on those cases), which gives 1.25 at a
#: perfect fit: a residual above that is more than either explains.
HARM_DISCREPANCY = 1.25


def input_noise_model(lr: torch.Tensor) -> list[tuple[float, float]]:
    """``(gain, offset)`` of the input's noise variance, ``gain * intensity + offset``, per
    channel of ``lr`` ``(C, H, W)`` (normalised units), from
    :meth:`~napari_zssr.core.noise.NoiseProfile.poisson_gaussian_fit`."""
    from .noise import noise_profile

    planes = lr.detach().float().cpu().numpy().astype(np.float64)
    return [noise_profile(p).poisson_gaussian_fit() for p in planes]


def consistency_step(
    sr: torch.Tensor,
    lr: torch.Tensor,
    scale: Sequence[float],
    kernel: DownscaleKernel | None,
    *,
    max_iters: int,
    noise: Sequence[tuple[float, float]] | None = None,
    vmax: float = 1.0,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Richardson-Lucy on ``sr`` ``(C, H_out, W_out)`` against ``lr`` ``(C, H, W)``, with the
    iteration count of lowest estimated risk.

    Parameters
    ----------
    sr, lr : Tensor
        The network's output and the input, in the normalised intensity unit.
    scale : (float, float)
        The factor ``(s_y, s_x)``.
    kernel : DownscaleKernel or None
        The run's degradation model (None: MATLAB's bicubic).
    max_iters : int
        Most iterations per channel; 0 only measures the discrepancy (``sr`` is returned
        unchanged). The search ends earlier once the risk estimate has risen for
        ``_PATIENCE`` counts past its lowest, or when an iteration is no longer finite.
    noise : sequence of (float, float), optional
        ``(gain, offset)`` of the input's noise variance per channel; measured on ``lr``
        when None. A channel whose model is zero everywhere (no noise read) is left as it is:
        without a noise level the risk estimate has nothing to weigh the fit against.
    vmax : float
        Upper clip of the result.

    Returns
    -------
    (Tensor, dict)
        The result, clipped to ``[0, vmax]``, and a record: ``max_iters``, ``iterations`` per
        channel, and
        ``discrepancy_before`` / ``discrepancy_after`` per channel (the mean squared residual
        over the noise variance; 1 means the residual is the noise's size) and ``seconds``.
    """
    record: dict[str, Any] = {
        "max_iters": int(max_iters),
        "iterations": [],
        "discrepancy_before": [],
        "discrepancy_after": [],
    }
    start = time.perf_counter()
    models = list(noise) if noise is not None else input_noise_model(lr)
    out = []
    with torch.inference_mode(False), torch.enable_grad():
        for c in range(sr.shape[0]):
            x, n, before, after = _channel(
                sr[c : c + 1].detach().clone().float(),
                lr[c : c + 1].detach().clone().float(),
                scale,
                kernel,
                models[c],
                max_iters,
            )
            out.append(x)
            record["iterations"].append(n)
            record["discrepancy_before"].append(before)
            record["discrepancy_after"].append(after)
    record["seconds"] = time.perf_counter() - start
    if not any(record["iterations"]):
        return sr, record  # measured only: the very tensor given
    return torch.cat(out).to(sr.dtype).clamp(0.0, vmax), record


def _channel(
    x: torch.Tensor,
    y: torch.Tensor,
    scale: Sequence[float],
    kernel: DownscaleKernel | None,
    model: tuple[float, float],
    max_iters: int,
) -> tuple[torch.Tensor, int, float, float]:
    gain, offset = model
    shape = y.shape[-2:]

    def forward(z: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return degrade(z, scale, kernel, shape, fft=True)

    def adjoint(r: torch.Tensor) -> torch.Tensor:
        z = torch.zeros_like(x, requires_grad=True)
        model = degrade(z, scale, kernel, shape, fft=True)
        (grad,) = torch.autograd.grad(model, z, grad_outputs=r)
        return grad

    def variance(ax: torch.Tensor) -> torch.Tensor:
        return (gain * ax.clamp_min(0.0) + offset).clamp_min(_MIN_VAR)

    def discrepancy(ax: torch.Tensor) -> float:
        return float(((y - ax) ** 2 / variance(ax)).mean())

    ax = forward(x)
    before = discrepancy(ax)
    if (gain <= 0.0 and offset <= 0.0) or max_iters <= 0:
        return x, 0, before, before
    # Stein's unbiased estimate of the predicted risk E||A x_n - A x_true||^2 / N for
    # heteroscedastic Gaussian noise of variance var_i (the Poisson-Gaussian model, held at
    # the network's prediction so that every count is scored with the same weights):
    #   ||y - A x_n||^2 / N - mean(var) + 2 mean(var_i d(A x_n)_i / dy_i).
    # The divergence of the Richardson-Lucy chain is taken by a second chain run on
    # y + eps * b (Monte-Carlo SURE, Ramani, Blu and Unser, IEEE TIP 2008). The network's
    # own dependence on y is left out (the counts are scored as if its output were fixed);
    # even so the count chosen came within 0.08 dB of the best on average (module docstring).
    var = variance(ax)
    gen = torch.Generator().manual_seed(0)
    probe = torch.randn(y.shape, generator=gen, dtype=torch.float32).to(y.device, y.dtype)
    eps = _PROBE * max(float(y.std()), 1e-6)
    y_pos = y.clamp_min(_FLOOR)
    y_probe = (y + eps * probe).clamp_min(_FLOOR)

    def risk(a: torch.Tensor, a_probe: torch.Tensor) -> float:
        div = float((var * probe * (a_probe - a)).mean()) / eps
        return float(((y - a) ** 2).mean() - var.mean()) + 2.0 * div

    best_risk, best_n, best_x, best_ax = risk(ax, ax), 0, x, ax
    norm = adjoint(torch.ones_like(y)).clamp_min(_FLOOR)
    xa = x.clamp_min(_FLOOR)
    aa = forward(xa)
    xb, ab = xa, aa  # both chains start alike; each update makes new tensors
    for n in range(1, max_iters + 1):
        xa = xa * adjoint(y_pos / aa.clamp_min(_FLOOR)) / norm
        xb = xb * adjoint(y_probe / ab.clamp_min(_FLOOR)) / norm
        aa, ab = forward(xa), forward(xb)
        r = risk(aa, ab)
        # a chain that is no longer finite means the model does not hold here: stop before it
        if not (math.isfinite(r) and bool(torch.isfinite(xa).all())):
            break
        if r < best_risk:
            best_risk, best_n, best_x, best_ax = r, n, xa, aa
        elif n - best_n >= _PATIENCE:
            break  # the risk has risen for _PATIENCE counts: the noise is being fitted
    return best_x.detach(), best_n, before, discrepancy(best_ax)
