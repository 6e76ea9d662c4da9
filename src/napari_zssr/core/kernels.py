"""The downscaling-kernel pipeline: validate, normalise, centre, then correlate + subsample.

The kernel is the blur of the imaging system on the HR grid. ``prepare_kernel`` turns a user
array into a :class:`DownscaleKernel` whose centre of mass sits where the scale factor needs
it, and :func:`downscale` applies it on any torch device. With ``kernel=None`` the engine uses
MATLAB's antialiased bicubic (:func:`napari_zssr.core.resize.imresize`) instead.

Alignment convention (the same as MATLAB's resize): LR pixel ``i`` covers HR pixels
``[i*s, (i+1)*s)`` and its centre lies at HR coordinate ``(i + 0.5) * s - 0.5``. For an integer
factor the kernel is shifted so that this position falls on whole pixels (a half-pixel phase
for even factors); then the downscale is an exact strided correlation. An even-sized kernel
produced by pixel integration at an even factor already has that phase and is not resampled.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from .device import DeviceCache, upload

__all__ = [
    "CUTOFF_POWER",
    "DownscaleKernel",
    "allowed_transforms",
    "centre_kernel",
    "crop_to_plane",
    "downscale",
    "power_transfer",
    "prepare_kernel",
    "son_kernel",
    "validate_kernel",
]

_PHASE_TOL = 0.02  # pixels: a centre of mass this close to the target phase is not resampled

#: A kernel's cutoff: where its power transfer (:func:`power_transfer`) falls below this
#: fraction of its value at zero frequency, the image it made holds no signal (a Gaussian of
#: 2 HR px, a widefield PSF's core at x2, reaches it at 0.48 cycles per image pixel, just
#: under Nyquist). Used by the kernel estimate's spectral check and by the noise read beyond
#: a given kernel's cutoff.
CUTOFF_POWER = 1e-4


def power_transfer(
    kernel: np.ndarray, scale: tuple[float, float], shape: tuple[int, int]
) -> np.ndarray:
    """Power transfer ``|K|^2`` of an HR-grid kernel at the FFT frequencies of an image-grid
    plane of ``shape`` (an image frequency f is the HR frequency f / s), 1 at zero.

    Evaluated as the kernel's discrete-time Fourier transform at those frequencies (two
    matrix products), so a kernel larger or smaller than the plane needs no padding."""
    k = kernel / kernel.sum()
    fy = np.fft.fftfreq(shape[0]) / scale[0]
    fx = np.fft.fftfreq(shape[1]) / scale[1]
    m = np.arange(k.shape[0]) - (k.shape[0] - 1) / 2.0
    n = np.arange(k.shape[1]) - (k.shape[1] - 1) / 2.0
    ey = np.exp(-2j * np.pi * fy[:, None] * m[None, :])  # (H, taps_y)
    ex = np.exp(-2j * np.pi * fx[:, None] * n[None, :])  # (W, taps_x)
    return np.abs(ey @ k @ ex.T) ** 2


def validate_kernel(kernel: object, image_shape: Sequence[int] | None = None) -> np.ndarray:
    """Check a user kernel and return it as a float64 array normalised to sum 1.

    Parameters
    ----------
    kernel : array_like
        2-D downscaling kernel on the HR grid.
    image_shape : (int, int), optional
        Shape of the plane it will blur; the kernel must be no larger.

    Raises
    ------
    TypeError
        For non-numeric input.
    ValueError
        If the kernel is not 2-D, is empty, holds NaN or Inf, sums to zero or less, has
        substantial negative mass, or is larger than the image by more than the tails beyond
        its 3-FWHM core (those are cropped: see :func:`crop_to_plane`).
    """
    arr = np.asarray(kernel)
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise TypeError(f"kernel must be a real numeric array, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(
            f"kernel must be a 2-D array (use a 1 x k array for a one-axis blur), "
            f"got shape {arr.shape}"
        )
    if arr.size == 0:
        raise ValueError("kernel is empty")
    arr = arr.astype(np.float64)  # always a copy: the caller's array is never touched
    if not np.all(np.isfinite(arr)):
        raise ValueError("kernel contains NaN or Inf values")
    peak = float(np.max(np.abs(arr))) or 1.0
    if peak != 1.0:  # only the shape matters: rescaling first keeps the sum finite (1e308 taps)
        arr /= peak
    total = arr.sum()
    if not total > 0:
        raise ValueError(
            f"kernel must have a positive sum (it is normalised to 1), got sum {total * peak:g}"
        )
    neg = -arr[arr < 0].sum()
    if neg > 0:
        pos = arr[arr > 0].sum()
        if neg > 0.1 * pos:
            raise ValueError(
                f"kernel has too much negative mass ({neg / pos:.1%} of its positive mass; "
                "at most 10% is accepted): is the background subtracted twice?"
            )
        warnings.warn(
            f"kernel has small negative values ({neg / pos:.2%} of its mass); "
            "they were clipped to zero",
            stacklevel=3,
        )
        arr = np.clip(arr, 0, None)
        total = arr.sum()
    if max(arr.shape) > 257:
        raise ValueError(f"kernel of shape {arr.shape} is too large (at most 257 x 257)")
    if image_shape is not None:
        h, w = (int(n) for n in image_shape[-2:])
        if arr.shape[0] > h or arr.shape[1] > w:
            arr = crop_to_plane(arr, (h, w))
            total = arr.sum()
    return arr / total


def _core(k: np.ndarray, fwhms: float) -> tuple[int, int, int, int]:
    """The peak ``(y, x)`` of ``k`` and the half-sizes (taps each side of it) of ``fwhms``
    FWHMs, the FWHM counted along the row and the column through the peak, with one tap of
    allowance for the count's rounding."""
    py, px = (int(i) for i in np.unravel_index(int(np.argmax(k)), k.shape))
    half = k[py, px] / 2.0
    fy = int(np.count_nonzero(k[:, px] >= half))
    fx = int(np.count_nonzero(k[py, :] >= half))
    return py, px, math.ceil(fwhms * fy) + 1, math.ceil(fwhms * fx) + 1


def crop_to_plane(k: np.ndarray, plane: Sequence[int]) -> np.ndarray:
    """A kernel larger than the ``(Y, X)`` plane, cropped to it (centred, each axis keeping
    its parity, not renormalised) when only its tails beyond the 3-FWHM core the sons are
    made with are cut: rings reaching past the image describe light from outside it.
    Otherwise a ValueError; a kernel that fits is returned as it is."""
    if k.shape[0] <= plane[0] and k.shape[1] <= plane[1]:
        return k
    _, _, hy, hx = _core(k, SON_KERNEL_FWHMS)
    size = [min(n, t - ((n - t) % 2)) for n, t in zip(k.shape, plane)]
    if size[0] < min(2 * hy + 1, k.shape[0]) or size[1] < min(2 * hx + 1, k.shape[1]):
        raise ValueError(
            f"kernel of shape {k.shape} is larger than the image plane {tuple(plane)}; "
            "crop the kernel to where its energy is"
        )
    y0, x0 = (k.shape[0] - size[0]) // 2, (k.shape[1] - size[1]) // 2
    core = k[y0 : y0 + size[0], x0 : x0 + size[1]]
    if not core.sum() > 0:
        raise ValueError(f"kernel of shape {k.shape} holds no energy within the image plane")
    return core


def _is_integer(s: float) -> bool:
    return abs(s - round(s)) < 1e-6


def centre_of_mass(kernel: np.ndarray) -> np.ndarray:
    ys, xs = np.indices(kernel.shape, dtype=np.float64)
    total = kernel.sum()
    return np.array([(ys * kernel).sum() / total, (xs * kernel).sum() / total])


def centre_kernel(kernel: np.ndarray, scale: Sequence[float]) -> np.ndarray:
    """Shift a normalised kernel so its centre of mass has the phase the scale needs.

    For an integer factor ``s`` on an axis the centre of mass must sit at a coordinate
    whose fractional part equals that of ``(s - 1) / 2``: 0.5 for even factors, 0 for odd
    ones. Non-integer factors are sampled by interpolation and need no shift. The shift
    uses cubic-spline interpolation; ringing below zero is clipped and the kernel is
    renormalised. A kernel already at the right phase is returned unchanged.
    """
    com = centre_of_mass(kernel)
    shift = np.zeros(2)
    for ax in range(2):
        s = float(scale[ax])
        if not _is_integer(s):
            continue
        phase = ((round(s) - 1) / 2.0) % 1.0
        target = math.floor(com[ax] - phase + 0.5) + phase  # nearest coordinate with that phase
        shift[ax] = target - com[ax]
    shift[np.abs(shift) < _PHASE_TOL] = 0.0
    if not np.any(shift):
        return kernel.copy()
    pad = [(2, 2) if shift[ax] else (0, 0) for ax in range(2)]
    padded = np.pad(kernel, pad)
    shifted = ndimage.shift(padded, shift, order=3, mode="constant", cval=0.0)
    shifted = np.clip(shifted, 0, None)
    # Trim rows/columns that stayed empty so the kernel does not grow needlessly.
    rows = np.flatnonzero(shifted.sum(axis=1) > 1e-12 * shifted.sum())
    cols = np.flatnonzero(shifted.sum(axis=0) > 1e-12 * shifted.sum())
    shifted = shifted[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    return shifted / shifted.sum()


# The 8 dihedral transforms of a square, as (transpose, flip_y, flip_x) applied in that order.
DIHEDRAL = tuple((t, fy, fx) for t in (False, True) for fy in (False, True) for fx in (False, True))


def _apply_dihedral_np(a: np.ndarray, tf: tuple[bool, bool, bool]) -> np.ndarray:
    t, fy, fx = tf
    if t:
        a = a.T
    if fy:
        a = a[::-1, :]
    if fx:
        a = a[:, ::-1]
    return a


def allowed_transforms(
    kernel: np.ndarray | None,
    scale: Sequence[float],
    *,
    rotations: bool | None = None,
    flips: bool = True,
    tol: float = 0.05,
) -> tuple[tuple[bool, bool, bool], ...]:
    """Dihedral transforms that commute with the degradation model.

    Augmenting a father with transform ``g`` is only valid when degrading ``g(father)``
    equals ``g`` of the degraded father, i.e. when the kernel is invariant under ``g`` and
    ``g`` keeps the scale factors (no transpose when ``s_y != s_x``). The bicubic kernel is
    invariant under all eight. ``rotations=False`` drops the transposing half, ``True``
    forces it (only when ``s_y == s_x``), ``None`` decides from the kernel.
    """
    square = abs(float(scale[0]) - float(scale[1])) < 1e-9
    out = []
    if kernel is not None:
        k = np.asarray(kernel, dtype=np.float64)
        k = k / k.sum()
        # Compare about the centre of mass: embed in an odd square canvas centred on it.
        com = centre_of_mass(k)
        half = int(np.ceil(max(k.shape) / 2.0)) + 2
        size = 2 * half + 1
        canvas = np.zeros((size, size))
        canvas[: k.shape[0], : k.shape[1]] = k
        canvas = ndimage.shift(canvas, (half - com[0], half - com[1]), order=1)
    for tf in DIHEDRAL:
        if not flips and tf != (False, False, False):
            continue
        if tf[0]:
            if not square or rotations is False:
                continue
            if rotations is True:
                out.append(tf)
                continue
        if kernel is None or tf == (False, False, False):
            out.append(tf)
            continue
        if np.abs(_apply_dihedral_np(canvas, tf) - canvas).sum() < tol:
            out.append(tf)
    return tuple(out)


@dataclass(frozen=True)
class DownscaleKernel:
    """A validated, centred kernel for one scale factor.

    Attributes
    ----------
    weights : np.ndarray
        Centred kernel, float64, sum 1.
    scale : (float, float)
        The (s_y, s_x) factor it is centred for.
    com : (float, float)
        Its centre of mass (pixels, from the top-left tap).
    """

    weights: np.ndarray
    scale: tuple[float, float]
    com: tuple[float, float]

    @property
    def shape(self) -> tuple[int, int]:
        return self.weights.shape  # type: ignore[return-value]

    def summary(self) -> str:
        """One-line description for metadata."""
        k = self.weights
        ys, xs = np.indices(k.shape)
        vy = float((k * (ys - self.com[0]) ** 2).sum())
        vx = float((k * (xs - self.com[1]) ** 2).sum())
        fwhm = 2.3548
        return (
            f"kernel {k.shape[0]}x{k.shape[1]} on the HR grid, FWHM ~ "
            f"{fwhm * math.sqrt(vy):.2f} x {fwhm * math.sqrt(vx):.2f} HR px"
        )


def prepare_kernel(
    kernel: object, scale: Sequence[float], image_shape: Sequence[int] | None = None
) -> DownscaleKernel:
    """Validate, normalise and centre ``kernel`` for ``scale``."""
    k = validate_kernel(kernel, image_shape)
    sc = (float(scale[0]), float(scale[1]))
    k = centre_kernel(k, sc)
    com = centre_of_mass(k)
    return DownscaleKernel(weights=k, scale=sc, com=(float(com[0]), float(com[1])))


#: The sons are made with the kernel's core, this many FWHMs each side of its centre.
SON_KERNEL_FWHMS = 3.0


def son_kernel(dk: DownscaleKernel, fwhms: float = SON_KERNEL_FWHMS) -> DownscaleKernel:
    """``dk`` cropped to ``fwhms`` FWHMs each side of its peak (renormalised), for making
    the sons; ``dk`` itself when it is no larger.

    A widefield PSF keeps about 10% of its energy in rings and tails beyond 3 FWHMs, which
    the consistency step needs (its forward model must be the acquisition's: cropped there,
    it was off by 10% of the signal on the held-out cases). The sons do not: every training
    step convolves with the kernel, so its cost grows with the taps (a 64 x 64 widefield
    kernel made ``fast`` 17% slower than its 30 x 30 core, for no consistent gain after the
    consistency step: within 0.25 dB either way on five held-out cases). The FWHM is
    counted along the row and the column through the peak.
    """
    k = dk.weights
    # (the count's allowance keeps a kernel already cropped at 3 FWHMs by the psf helpers)
    py, px, hy, hx = _core(k, fwhms)
    if k.shape[0] <= 2 * hy + 1 and k.shape[1] <= 2 * hx + 1:
        return dk
    y0, y1 = max(0, py - hy), min(k.shape[0], py + hy + 1)
    x0, x1 = max(0, px - hx), min(k.shape[1], px + hx + 1)
    core = k[y0:y1, x0:x1]
    return prepare_kernel(core / core.sum(), dk.scale)


@lru_cache(maxsize=128)
def _mirror_index(n: int, pad: int) -> np.ndarray:
    mirror = np.concatenate([np.arange(n), np.arange(n)[::-1]])
    return mirror[np.mod(np.arange(-pad, n + pad), 2 * n)]


# The entry keeps its DownscaleKernel alive, so the id() in the key cannot be reused by a
# different kernel while the entry exists.
_KERNELS: DeviceCache[tuple[DownscaleKernel, torch.Tensor]] = DeviceCache(64)
_INDICES: DeviceCache[torch.Tensor] = DeviceCache(256)
_SAMPLES: DeviceCache[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]] = DeviceCache(256)


def _kernel_tensor(dk: DownscaleKernel, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    key = (id(dk), str(device), dtype)
    return _KERNELS.get(key, lambda: (dk, upload(dk.weights, dtype, device)[None, None]))[1]


def _index_tensor(n: int, pad: int, device: torch.device) -> torch.Tensor:
    key = (n, pad, str(device))
    return _INDICES.get(key, lambda: upload(_mirror_index(n, pad), torch.long, device))


def _sample_tables(
    pos: np.ndarray, dim: int, ndim: int, length: int, device: torch.device, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    lo = np.floor(pos).astype(np.int64)
    frac = pos - lo
    hi = np.minimum(lo + 1, length - 1)
    w = None
    if not np.all(frac < 1e-6):
        shape = [1] * ndim
        shape[dim] = len(pos)
        w = upload(frac, dtype, device).reshape(shape)
    return upload(lo, torch.long, device), upload(hi, torch.long, device), w


def _sample_axis(x: torch.Tensor, pos: np.ndarray, dim: int) -> torch.Tensor:
    """Sample ``x`` along ``dim`` at float positions (linear interpolation).

    Index and weight tensors are cached per device so that repeated calls in the training
    loop cause no host-to-device copies.
    """
    key = (pos.tobytes(), dim, x.ndim, x.shape[dim], str(x.device), x.dtype)
    lo_t, hi_t, w = _SAMPLES.get(
        key, lambda: _sample_tables(pos, dim, x.ndim, x.shape[dim], x.device, x.dtype)
    )
    a = x.index_select(dim, lo_t)
    if w is None:
        return a
    b = x.index_select(dim, hi_t)
    return a + (b - a) * w


def _correlate_fft(work: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``F.conv2d(work, weight)`` (valid cross-correlation, one channel) through the FFT.

    Its cost does not grow with the kernel's taps: with a 64 x 64 widefield kernel on a
    1024 x 1024 plane it is tens of times faster than the direct convolution on a CPU, and
    it stays differentiable (the consistency step takes its adjoint by autograd). The
    circular wrap-around only reaches the first ``k - 1`` rows and columns of the full
    convolution, which the valid part leaves out.
    """
    h, w = work.shape[-2:]
    kh, kw = weight.shape[-2:]
    flipped = torch.flip(weight[0, 0], dims=(0, 1))
    spec = torch.fft.rfft2(work) * torch.fft.rfft2(flipped, s=(h, w))
    return torch.fft.irfft2(spec, s=(h, w))[..., kh - 1 :, kw - 1 :]


def downscale(
    x: torch.Tensor,
    dk: DownscaleKernel,
    out_shape: Sequence[int] | None = None,
    *,
    fft: bool = False,
) -> torch.Tensor:
    """Blur ``x`` with the kernel and subsample it by the kernel's scale factor.

    Parameters
    ----------
    x : torch.Tensor
        ``(..., H, W)`` floating-point tensor.
    dk : DownscaleKernel
        Kernel prepared by :func:`prepare_kernel` for the factor to apply.
    out_shape : (int, int), optional
        Output size; ``ceil(n / s)`` by default.
    fft : bool
        Convolve through the FFT (:func:`_correlate_fft`): the same result to float
        rounding, faster for large kernels; the training's small crops keep the direct one.

    Returns
    -------
    torch.Tensor
        ``(..., H_out, W_out)``; symmetric borders as in MATLAB's resize.
    """
    lead = x.shape[:-2]
    h, w = x.shape[-2:]
    sy, sx = dk.scale
    if out_shape is None:
        out_shape = (
            math.ceil(round(h / sy, 9)),
            math.ceil(round(w / sx, 9)),
        )
    ny, nx = (int(n) for n in out_shape)
    kh, kw = dk.shape
    py, px = kh + math.ceil(sy) + 1, kw + math.ceil(sx) + 1
    xx = x.reshape(-1, 1, h, w)
    work = xx if xx.dtype in (torch.float32, torch.float64) else xx.float()
    work = work.index_select(2, _index_tensor(h, py, x.device))
    work = work.index_select(3, _index_tensor(w, px, x.device))
    weight = _kernel_tensor(dk, x.device, work.dtype)
    # Correlation output index j has its effective centre at HR coordinate j + com - pad.
    pos_y = (np.arange(ny) + 0.5) * sy - 0.5 - dk.com[0] + py
    pos_x = (np.arange(nx) + 0.5) * sx - 0.5 - dk.com[1] + px
    int_y = _is_integer(sy) and np.all(np.abs(pos_y - np.round(pos_y)) < _PHASE_TOL)
    int_x = _is_integer(sx) and np.all(np.abs(pos_x - np.round(pos_x)) < _PHASE_TOL)
    if int_y and int_x and fft:
        y0, x0 = round(pos_y[0]), round(pos_x[0])
        full = _correlate_fft(work, weight)
        out = full[:, :, y0 :: round(sy), x0 :: round(sx)][:, :, :ny, :nx]
    elif int_y and int_x:
        y0, x0 = round(pos_y[0]), round(pos_x[0])
        work = work[:, :, y0:, x0:]
        out = F.conv2d(work, weight, stride=(round(sy), round(sx)))[:, :, :ny, :nx]
    else:
        full = _correlate_fft(work, weight) if fft else F.conv2d(work, weight)
        pos_y = np.round(pos_y) if int_y else pos_y
        pos_x = np.round(pos_x) if int_x else pos_x
        out = _sample_axis(full, np.clip(pos_y, 0, full.shape[2] - 1), 2)
        out = _sample_axis(out, np.clip(pos_x, 0, full.shape[3] - 1), 3)
    return out.reshape(*lead, ny, nx).to(x.dtype)
