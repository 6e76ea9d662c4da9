"""Microscopy benchmark: simulated widefield acquisition, then x2 super-resolution.

Ground truth: 2-D fluorescence and EM images (and a confocal z-stack) from ``../shared/data``
(see its README for origins and licences), each taken as the object sampled on a 50 nm grid.
Acquisition is simulated from it: a widefield PSF (psfmodels vectorial model, NA 1.4,
emission 520 nm, oil immersion 1.515, sample 1.33) on the 50 nm grid, integration over the
100 nm camera pixel (2 x 2 HR pixels), then Poisson photon noise plus Gaussian read noise at
two levels. Each method's x2 result is compared with the ground truth (PSNR and SSIM from
scikit-image, data range of the ground truth, 2-pixel border shaved).

Methods: bicubic (MATLAB-compatible cubic, a = -0.5); ZSSR with its default bicubic kernel
and ZSSR with the true PSF kernel (as :func:`napari_zssr.psf.kernel_from_optics` gives it,
cropped to 3 FWHM), each with four noise settings on the LR sons: the default (estimated from
the image, ``noise_std="auto"``), the same level with ``noise_model="poisson-gaussian"``
(``*_pg``), none (``noise_std=0``), and Gaussian noise matched to the simulated noise (the
last two with the noise given explicitly; any noise on the sons turns back-projection off,
as in the reference's real-image configuration).
Anisotropic Z: the cells3d stack with pairs of planes averaged (z step x2) is restored by
linear and cubic interpolation along z and by :func:`napari_zssr.arrays.isotropic.isotropic_z`.

Run from the repository root::

    python benchmarks/microscopy.py                 # full run, writes into docs/benchmarks.md
    python benchmarks/microscopy.py --quick         # smoke test (prints only, unless --out)
    python benchmarks/microscopy.py --methods bicubic,linear_z   # no engine needed
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import shlex
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"
DEFAULT_OUT = REPO / "docs" / "benchmarks.md"
MARKERS = {  # section -> (opening, closing) marker lines in the markdown file
    "main": ("<!-- microscopy -->", "<!-- /microscopy -->"),
    "stack": ("<!-- microscopy-stack -->", "<!-- /microscopy-stack -->"),
}

HR_PIXEL_UM = 0.05
SCALE = 2
NA, WAVELENGTH_UM, NI, NS = 1.4, 0.52, 1.515, 1.33
CAMERA_OFFSET = 100.0
NOISE_LEVELS = {  # name: (peak photons, read noise in electrons)
    "high SNR": (1000.0, 2.0),
    "low SNR": (100.0, 5.0),
}
SHAVE = SCALE
METHODS_2D = (
    "bicubic",
    "zssr",
    "zssr_noise0",
    "zssr_noise",
    "zssr_psf",
    "zssr_psf_noise0",
    "zssr_psf_noise",
    "zssr_pg",
    "zssr_psf_pg",
    "zssr_est",
)
METHODS_Z = ("linear_z", "cubic_z", "isotropic")
METHODS_STACK = ("stack_per_plane", "stack_shared")
ALL_METHODS = METHODS_2D + METHODS_Z + METHODS_STACK
STACK_PLANES = 32
LABELS = {
    "bicubic": "bicubic",
    "zssr": "ZSSR, defaults (bicubic kernel, estimated noise)",
    "zssr_noise0": "ZSSR, bicubic kernel, noise 0",
    "zssr_noise": "ZSSR, bicubic kernel + matched noise",
    "zssr_psf": "ZSSR, true PSF, estimated noise (default)",
    "zssr_psf_noise0": "ZSSR, true PSF, noise 0",
    "zssr_psf_noise": "ZSSR, true PSF + matched noise",
    "zssr_pg": "ZSSR, bicubic kernel, estimated Poisson-Gaussian noise",
    "zssr_psf_pg": "ZSSR, true PSF, estimated Poisson-Gaussian noise",
    "zssr_est": "ZSSR, kernel estimated from the image, estimated noise",
    "linear_z": "linear interpolation (z)",
    "cubic_z": "cubic interpolation (z)",
    "isotropic": "isotropic_z (ZSSR on XZ/YZ)",
    "stack_per_plane": "ZSSR, one network per plane",
    "stack_shared": "ZSSR, one network for the stack",
}
ENGINE_METHODS = set(METHODS_2D[1:]) | {"isotropic"} | set(METHODS_STACK)
NOISY_METHODS = ("zssr_noise", "zssr_psf_noise")
NOISE_FREE_METHODS = ("zssr_noise0", "zssr_psf_noise0")
DEFAULT_METHODS = ("zssr", "zssr_psf")  # the noise left at its default (estimated)
PG_METHODS = ("zssr_pg", "zssr_psf_pg")  # estimated noise, noise_model="poisson-gaussian"
PSF_METHODS = ("zssr_psf", "zssr_psf_noise0", "zssr_psf_noise", "zssr_psf_pg")


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------


@dataclass
class Image2D:
    name: str
    gt: np.ndarray  # float64 in [0, 1], the object on the HR grid


def _normalise(a: np.ndarray) -> np.ndarray:
    a = a.astype(np.float64)
    lo, hi = float(a.min()), float(np.percentile(a, 99.9))
    if hi <= lo:
        hi = float(a.max()) if a.max() > lo else lo + 1.0
    return np.clip((a - lo) / (hi - lo), 0.0, 1.0)


def _crop(a: np.ndarray, size: int, centre: tuple[int, int] | None = None) -> np.ndarray:
    h, w = a.shape[-2:]
    size = min(size, h, w)
    cy, cx = centre if centre is not None else (h // 2, w // 2)
    y0 = int(np.clip(cy - size // 2, 0, h - size))
    x0 = int(np.clip(cx - size // 2, 0, w - size))
    return a[..., y0 : y0 + size, x0 : x0 + size]


def load_images(data: Path, quick: bool) -> list[Image2D]:
    """The 2-D ground-truth images (256 x 256; 128 x 128 and fewer with ``quick``)."""
    import tifffile
    from skimage.io import imread

    micro = data / "microscopy"
    size = 128 if quick else 256
    bpae = tifffile.imread(micro / "bian_BPAE_actin_mito_nuclei.tif")
    membrane = tifffile.imread(micro / "bian_membrane_2d_timelapse.tif")
    cells = tifffile.imread(micro / "cells3d_nuclei_zyx.tif")
    em = imread(micro / "em_isbi2012" / "test_0.png")
    images = [
        Image2D("BPAE actin", _crop(bpae[0], size, (340, 550))),
        Image2D("BPAE mitochondria", _crop(bpae[1], size, (340, 550))),
        Image2D("BPAE nuclei", _crop(bpae[2], size, (340, 550))),
        Image2D("membrane t=0", _crop(membrane[0], size)),
        Image2D("membrane t=4", _crop(membrane[4], size)),
        Image2D("ssTEM (ISBI 2012)", _crop(em if em.ndim == 2 else em[..., 0], size)),
        Image2D("cells3d nuclei z=30", _crop(cells[30], size)),
    ]
    if quick:
        images = images[:1]
    return [Image2D(im.name, _normalise(im.gt)) for im in images]


def load_stack(data: Path, quick: bool) -> np.ndarray:
    import tifffile

    stack = tifffile.imread(data / "microscopy" / "cells3d_nuclei_zyx.tif")
    if quick:
        stack = _crop(stack, 48)
    return _normalise(stack)


# ---------------------------------------------------------------------------------------------
# simulation
# ---------------------------------------------------------------------------------------------


def true_psf() -> np.ndarray:
    """The simulation's widefield PSF on the 50 nm grid (odd, wide window, sum 1)."""
    from napari_zssr.psf import kernel_from_optics

    res = kernel_from_optics(
        image_pixel_size=HR_PIXEL_UM,
        scale=1,
        na=NA,
        wavelength=WAVELENGTH_UM,
        ni=NI,
        ns=NS,
        integrate_pixel=False,
        energy=1.0,
        max_fwhm=None,
    )
    return np.array(res.kernel)


def zssr_kernel() -> Any:
    """The kernel ZSSR is given: same optics, cropped to 3 FWHM, pixel integration included."""
    from napari_zssr.psf import kernel_from_optics

    return kernel_from_optics(
        image_pixel_size=HR_PIXEL_UM * SCALE,
        scale=SCALE,
        na=NA,
        wavelength=WAVELENGTH_UM,
        ni=NI,
        ns=NS,
    )


def acquire(gt: np.ndarray, psf: np.ndarray) -> np.ndarray:
    """Noise-free LR image: PSF blur on the HR grid, then the mean over each 2 x 2 block."""
    from scipy.signal import fftconvolve

    pad = psf.shape[0] // 2 + SCALE
    padded = np.pad(gt, pad, mode="symmetric")
    blurred = fftconvolve(padded, psf, mode="same")[pad:-pad, pad:-pad]
    h, w = (n // SCALE * SCALE for n in blurred.shape)
    blocks = blurred[:h, :w].reshape(h // SCALE, SCALE, w // SCALE, SCALE)
    return np.clip(blocks.mean(axis=(1, 3)), 0.0, None)


def add_noise(lr: np.ndarray, peak: float, read: float, rng: np.random.Generator) -> np.ndarray:
    """Camera counts (uint16): Poisson photons + Gaussian read noise + offset."""
    counts = rng.poisson(lr * peak).astype(np.float64) + rng.normal(0.0, read, lr.shape)
    return np.clip(np.rint(counts + CAMERA_OFFSET), 0, 65535).astype(np.uint16)


def to_signal(counts: np.ndarray, peak: float) -> np.ndarray:
    return (counts.astype(np.float64) - CAMERA_OFFSET) / peak


def matched_noise_std(lr_clean: np.ndarray, counts: np.ndarray, peak: float, read: float) -> float:
    """RMS simulated noise in the [0, 1] units the engine normalises ``counts`` to."""
    sigma_counts = math.sqrt(float(np.mean(lr_clean * peak)) + read**2)
    try:
        from napari_zssr.arrays.intensity import normalise_intensity

        _, info = normalise_intensity(counts)
        span = float(info.hi[0] - info.lo[0])
    except ImportError:
        span = float(counts.max()) - float(counts.min())
    return sigma_counts / max(span, 1e-9)


# ---------------------------------------------------------------------------------------------
# baselines (numpy only)
# ---------------------------------------------------------------------------------------------


def _cubic_matrix(n_in: int, n_out: int, scale: float) -> np.ndarray:
    """MATLAB imresize cubic (a = -0.5) upsampling matrix, symmetric borders."""
    x = (np.arange(n_out) + 0.5) / scale - 0.5
    left = np.floor(x).astype(int) - 1
    m = np.zeros((n_out, n_in))
    for t in range(4):
        idx = left + t
        d = np.abs(x - idx)
        w = np.where(
            d <= 1,
            1.5 * d**3 - 2.5 * d**2 + 1,
            np.where(d < 2, -0.5 * d**3 + 2.5 * d**2 - 4 * d + 2, 0),
        )
        idx = np.where(idx < 0, -idx - 1, idx)
        idx = np.where(idx >= n_in, 2 * n_in - idx - 1, idx)
        np.add.at(m, (np.arange(n_out), np.clip(idx, 0, n_in - 1)), w)
    return m / m.sum(axis=1, keepdims=True)


def bicubic(img: np.ndarray, scale: int) -> np.ndarray:
    my = _cubic_matrix(img.shape[0], img.shape[0] * scale, scale)
    mx = _cubic_matrix(img.shape[1], img.shape[1] * scale, scale)
    return my @ img @ mx.T


def interp_z(lr: np.ndarray, ratio: int, n_out: int, kind: str) -> np.ndarray:
    """Linear or cubic interpolation along axis 0 on the pixel-area grid."""
    flat = lr.reshape(lr.shape[0], -1)
    if kind == "cubic":
        out = _cubic_matrix(lr.shape[0], n_out, ratio) @ flat
    else:
        z_lr = (np.arange(lr.shape[0]) + 0.5) * ratio - 0.5
        z = np.clip(np.arange(n_out, dtype=np.float64), z_lr[0], z_lr[-1])
        i0 = np.clip(np.searchsorted(z_lr, z, side="right") - 1, 0, lr.shape[0] - 2)
        f = ((z - z_lr[i0]) / ratio)[:, None]
        out = (1 - f) * flat[i0] + f * flat[i0 + 1]
    return out.reshape((n_out, *lr.shape[1:]))


# ---------------------------------------------------------------------------------------------
# metrics
# ---------------------------------------------------------------------------------------------


def metrics(gt: np.ndarray, est: np.ndarray, shave: int) -> tuple[float, float]:
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    sl = tuple(slice(shave, n - shave) for n in gt.shape[-2:])
    g = gt[(..., *sl)]
    e = est[(..., *sl)].astype(np.float64)
    rng = float(g.max() - g.min())
    return (
        float(peak_signal_noise_ratio(g, e, data_range=rng)),
        float(structural_similarity(g, e, data_range=rng)),
    )


# ---------------------------------------------------------------------------------------------
# runs
# ---------------------------------------------------------------------------------------------


@dataclass
class Row:
    image: str
    level: str
    method: str
    psnr: float
    ssim: float
    seconds: float


def run_2d(
    images: list[Image2D | None],
    methods: list[str],
    zssr_args: dict[str, Any],
    seed: int,
    log: Callable[[str], None],
) -> tuple[list[Row], dict[str, Any]]:
    psf = true_psf()
    kern = zssr_kernel() if any(m in PSF_METHODS for m in methods) else None
    notes: dict[str, Any] = {"psf_shape": psf.shape}
    if kern is not None:
        notes["kernel"] = kern.description
    rows: list[Row] = []
    for i, im in enumerate(images):
        if im is None:  # left out with --images
            continue
        lr_clean = acquire(im.gt, psf)
        for j, (level, (peak, read)) in enumerate(NOISE_LEVELS.items()):
            rng = np.random.default_rng(seed + 100 * i + j)
            counts = add_noise(lr_clean, peak, read, rng)
            sigma = matched_noise_std(lr_clean, counts, peak, read)
            notes.setdefault("noise_std", {}).setdefault(level, []).append(sigma)
            for m in methods:
                t0 = time.perf_counter()
                if m == "bicubic":
                    est = bicubic(to_signal(counts, peak), SCALE)
                else:
                    from napari_zssr import super_resolve

                    kw = dict(zssr_args)
                    if m in PSF_METHODS:
                        kw["kernel"] = kern.kernel
                    if m in NOISY_METHODS:
                        # noise on the sons, and no back-projection (which would re-impose
                        # the noisy input): the reference's real-image configuration
                        kw["noise_std"] = sigma
                        kw["config"] = kw["config"].replace(back_projection_iters=0)
                    if m in NOISE_FREE_METHODS:
                        kw["noise_std"] = 0.0
                    if m in PG_METHODS:
                        kw["noise_model"] = "poisson-gaussian"
                    if m == "zssr_est":
                        kw["kernel"] = "estimate"  # blind: neither PSF nor pixel size given
                    with warnings.catch_warnings():
                        # noise 0 on a noisy image warns; the benchmark measures exactly that
                        warnings.simplefilter("ignore", UserWarning)
                        out, info = super_resolve(counts, SCALE, return_info=True, **kw)
                    notes["device"] = info["device"]
                    if m in DEFAULT_METHODS:
                        notes.setdefault("auto_noise", {}).setdefault(level, []).append(
                            info["noise_std"]
                        )
                    est = to_signal(out, peak)
                    if m == "zssr_est":
                        log(f"    estimate: {_fit_text(info['kernel_estimate'])}")
                secs = time.perf_counter() - t0
                p, s = metrics(im.gt, est, SHAVE)
                rows.append(Row(im.name, level, m, p, s, secs))
                msg = f"{im.name:22s} {level:9s} {LABELS[m]:36s} {p:6.2f} dB  {s:.4f}"
                log(f"  {msg}  {secs:5.1f} s")
    return rows, notes


def _fit_text(rec: dict[str, Any]) -> str:
    """The estimated kernel's widths and whether it was used (from ``info["kernel_estimate"]``)."""
    return (
        f"{rec['sigma_major_hr_px']:.2f} x {rec['sigma_minor_hr_px']:.2f} HR px, FWHM "
        f"{rec['fwhm_lr_px']:.2f} vs resolution {rec['image_resolution_px']:.2f} LR px, "
        + ("used" if rec["reliable"] else "not trusted: bicubic kernel used")
    )


def run_z(
    stack: np.ndarray,
    methods: list[str],
    zssr_args: dict[str, Any],
    log: Callable[[str], None],
) -> tuple[list[Row], dict[str, Any]]:
    ratio = 2
    nz = stack.shape[0] // ratio * ratio
    gt = stack[:nz]
    lr = gt.reshape(nz // ratio, ratio, *gt.shape[1:]).mean(axis=1)
    lr_u16 = np.rint(lr * 60000).astype(np.uint16)
    lr_f = lr_u16.astype(np.float64) / 60000
    rows: list[Row] = []
    notes: dict[str, Any] = {"gt_shape": gt.shape, "lr_shape": lr.shape}
    for m in methods:
        t0 = time.perf_counter()
        if m == "linear_z":
            est = interp_z(lr_f, ratio, nz, "linear")
        elif m == "cubic_z":
            est = interp_z(lr_f, ratio, nz, "cubic")
        else:
            from napari_zssr.arrays.isotropic import isotropic_z

            keep = ("preset", "config", "device", "seed")
            args = {k: v for k, v in zssr_args.items() if k in keep}
            out, info = isotropic_z(lr_u16, ratio, return_info=True, **args)
            notes["device"] = info["device"]
            est = out.astype(np.float64) / 60000
        secs = time.perf_counter() - t0
        p, s = metrics(gt, est, 0)
        rows.append(Row("cells3d nuclei", "z x2", m, p, s, secs))
        log(f"  cells3d {gt.shape} z x2  {LABELS[m]:36s} {p:6.2f} dB  {s:.4f}  {secs:6.1f} s")
    return rows, notes


def run_stack(
    stack: np.ndarray,
    methods: list[str],
    zssr_args: dict[str, Any],
    seed: int,
    quick: bool,
    log: Callable[[str], None],
) -> tuple[list[Row], dict[str, Any]]:
    """Stack-wide against per-plane training on a simulated widefield Z stack.

    ``STACK_PLANES`` consecutive planes of the cells3d stack (128 x 128 crops) go through the
    2-D acquisition at high SNR; both modes get the true PSF and matched noise on the sons.
    """
    from napari_zssr import super_resolve

    n = 4 if quick else STACK_PLANES
    z0 = max(0, (stack.shape[0] - n) // 2)
    gt = _crop(stack[z0 : z0 + n], 80 if quick else 128)
    psf = true_psf()
    kern = zssr_kernel()
    peak, read = NOISE_LEVELS["high SNR"]
    rng = np.random.default_rng(seed)
    lr_clean = np.stack([acquire(p, psf) for p in gt])
    counts = add_noise(lr_clean, peak, read, rng)
    sigma = matched_noise_std(lr_clean, counts, peak, read)
    notes: dict[str, Any] = {"gt_shape": gt.shape, "lr_shape": counts.shape, "noise_std": sigma}
    kw = dict(zssr_args)
    notes["finetune_iters"] = kw["config"].plane_finetune_iters
    kw["config"] = kw["config"].replace(back_projection_iters=0)
    rows: list[Row] = []
    for m in methods:
        mode = "shared" if m == "stack_shared" else "per_plane"
        t0 = time.perf_counter()
        out, info = super_resolve(
            counts, SCALE, kernel=kern.kernel, noise_std=sigma, stack_mode=mode,
            return_info=True, **kw,
        )  # fmt: skip
        secs = time.perf_counter() - t0
        notes["device"] = info["device"]
        est = to_signal(out, peak)
        # PSNR of the whole volume; SSIM averaged over the planes
        from skimage.metrics import peak_signal_noise_ratio

        sl = (slice(None), slice(SHAVE, -SHAVE), slice(SHAVE, -SHAVE))
        p = float(peak_signal_noise_ratio(gt[sl], est[sl], data_range=float(np.ptp(gt[sl]))))
        ssim = float(np.mean([metrics(g, e, SHAVE)[1] for g, e in zip(gt, est)]))
        rows.append(Row("cells3d nuclei stack", "high SNR", m, p, ssim, secs))
        log(f"  stack {gt.shape} {LABELS[m]:36s} {p:6.2f} dB  {ssim:.4f}  {secs:6.1f} s")
    return rows, notes


# ---------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": f"{cpu} ({os.cpu_count()} logical cores)", "python": platform.python_version()}
    try:
        import torch

        info["torch"] = f"{torch.__version__} ({torch.get_num_threads()} threads)"
    except ImportError:
        info["torch"] = "not installed"
    return info


def _markers(section: str) -> tuple[str, str]:
    if section in MARKERS:
        return MARKERS[section]
    return f"<!-- microscopy-{section} -->", f"<!-- /microscopy-{section} -->"


def config_changes(pairs: list[str]) -> dict[str, Any]:
    """``["consistency_iters=0"]`` -> ``{"consistency_iters": 0}`` (JSON values, else text):
    the ``--set FIELD=VALUE`` ablations of the benchmark scripts."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def write_section(path: Path, text: str, section: str = "main") -> None:
    """Put ``text`` between the ``section`` markers of ``path`` (appended if absent)."""
    begin, end = _markers(section)
    block = f"{begin}\n{text}\n{end}"
    old = path.read_text() if path.is_file() else ""
    if begin in old and end in old:
        head, rest = old.split(begin, 1)
        new = head + block + rest.split(end, 1)[1]
    else:
        new = (old.rstrip() + "\n\n" if old.strip() else "") + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new)


def run_header(args: argparse.Namespace, command: str, device: str) -> list[str]:
    """Command, date, machine and ZSSR settings of a report, then a blank line."""
    mach = machine()
    return [
        f"Command: `{command}`  ",
        f"Date: {_dt.datetime.now().strftime('%Y-%m-%d %H:%M')}  ",
        f"Machine: {mach['cpu']}; Python {mach['python']}; torch {mach['torch']}; "
        f"device {device}  ",
        f"ZSSR: preset `{args.preset}`"
        + (f", max_iters {args.max_iters}" if args.max_iters else "")
        + (f", init {args.init}" if args.init else "")
        + f", seed {args.seed}",
        "",
    ]


def render(
    rows2d: list[Row],
    rowsz: list[Row],
    notes2d: dict[str, Any],
    notesz: dict[str, Any],
    args: argparse.Namespace,
    command: str,
) -> str:
    device = notes2d.get("device") or notesz.get("device") or "n/a (no ZSSR method run)"
    lines = [
        "## Microscopy benchmark" if args.section == "main" else f"### Microscopy: {args.section}",
        "",
    ]
    if args.quick:
        lines += [
            "**Quick run (smoke test): small crops, few iterations; not representative.**",
            "",
        ]
    lines += run_header(args, command, device)
    lines += [
        "### Simulated acquisition",
        "",
        f"Each ground-truth image is normalised to [0, 1] (minimum to 99.9th percentile) and "
        f"taken as the object on a {HR_PIXEL_UM * 1000:.0f} nm grid. Widefield PSF: "
        f"psfmodels vectorial model, NA {NA}, emission {WAVELENGTH_UM * 1000:.0f} nm, "
        f"immersion n = {NI}, sample n = {NS}, in focus at the coverslip, on a "
        f"{notes2d.get('psf_shape', ('?',))[0]}-pixel window; then integration over the "
        f"{HR_PIXEL_UM * SCALE * 1000:.0f} nm camera pixel (mean of 2 x 2 HR pixels). Noise: "
        "Poisson photons, Gaussian read noise, offset "
        f"{CAMERA_OFFSET:.0f} counts, stored as uint16:",
        "",
    ]
    for level, (peak, read) in NOISE_LEVELS.items():
        sig = notes2d.get("noise_std", {}).get(level)
        extra = f" (matched noise_std on sons: {np.mean(sig):.4f} on average" if sig else ""
        auto = notes2d.get("auto_noise", {}).get(level)
        if auto:
            extra += f"; estimated by `noise_std='auto'`: {np.mean(auto):.4f}"
        extra += ")" if extra else ""
        lines.append(f"- {level}: peak {peak:.0f} photons, read noise {read:g} e-{extra}")
    lines += [
        "",
        "ZSSR's PSF kernel: " + notes2d.get("kernel", "not used") + " (cropped to 3 FWHM, "
        "the simulation uses the full window).",
        "",
        "ZSSR runs the preset with the noise on the sons at its default (estimated from the "
        "image, `noise_std='auto'`), at 0, or matched to the simulated noise (listed above). "
        "Any noise on the sons turns back-projection off, as in the reference's real-image "
        "configuration: back-projection re-imposes consistency with the noisy input and, with "
        "a PSF kernel, amplifies its noise.",
        "",
        f"Metrics: PSNR and SSIM (scikit-image) against the ground truth, data range of the "
        f"ground truth, {SHAVE}-pixel border shaved. Times in seconds (wall clock).",
        "",
    ]
    if rows2d:
        methods = [m for m in METHODS_2D if any(r.method == m for r in rows2d)]
        lines += ["### x2 super-resolution: mean over images", ""]
        head = "| noise | " + " | ".join(LABELS[m] for m in methods) + " |"
        lines += [head, "|" + "---|" * (len(methods) + 1)]
        means: dict[tuple[str, str], float] = {}
        for level in NOISE_LEVELS:
            cells = []
            for m in methods:
                sel = [r for r in rows2d if r.level == level and r.method == m]
                if not sel:
                    cells.append("")
                    continue
                p = float(np.mean([r.psnr for r in sel]))
                s = float(np.mean([r.ssim for r in sel]))
                t = float(np.mean([r.seconds for r in sel]))
                means[(level, m)] = p
                cells.append(f"{p:.2f} dB / {s:.4f} / {t:.1f} s")
            lines.append(f"| {level} | " + " | ".join(cells) + " |")
        lines += ["", "Cells: PSNR / SSIM / time per image.", ""]
        lines += _targets(rows2d, means)
        lines += ["### x2 super-resolution: every image", ""]
        lines += [
            "| image | noise | method | PSNR (dB) | SSIM | time (s) |",
            "|---|---|---|---|---|---|",
        ]
        for r in rows2d:
            lines.append(
                f"| {r.image} | {r.level} | {LABELS[r.method]} | {r.psnr:.2f} | {r.ssim:.4f} "
                f"| {r.seconds:.1f} |"
            )
        lines.append("")
    if rowsz:
        gt_shape = notesz.get("gt_shape")
        lr_shape = notesz.get("lr_shape")
        lines += [
            "### Anisotropic Z (isotropic reconstruction)",
            "",
            f"cells3d nuclei stack {gt_shape} (z 0.29 um, xy 0.26 um: taken as isotropic ground "
            f"truth); the LR stack {lr_shape} averages each pair of planes (z step x2, exactly "
            "the box kernel isotropic_z assumes by default). Interpolation places LR plane k at "
            "z = 2k + 0.5. Metrics on the whole volume (3-D SSIM).",
            "",
            *_method_table(rowsz),
        ]
        lin = next((r for r in rowsz if r.method == "linear_z"), None)
        iso = next((r for r in rowsz if r.method == "isotropic"), None)
        if lin and iso:
            d = iso.psnr - lin.psnr
            lines += [
                "",
                f"isotropic_z vs linear interpolation: {d:+.2f} dB (target > 0: "
                f"{'met' if d > 0 else 'not met'})",
            ]
        lines.append("")
    return "\n".join(lines)


def _targets(rows2d: list[Row], means: dict[tuple[str, str], float]) -> list[str]:
    """The benchmark's targets: defaults above bicubic on every image, and the PSF's gain."""
    lines: list[str] = []
    bic = {(r.image, r.level): r.psnr for r in rows2d if r.method == "bicubic"}
    for m in DEFAULT_METHODS:
        runs = [r for r in rows2d if r.method == m and (r.image, r.level) in bic]
        if not runs or not bic:
            continue
        gains = [r.psnr - bic[(r.image, r.level)] for r in runs]
        worst = min(range(len(runs)), key=lambda i: gains[i])
        ok = all(g > 0 for g in gains)
        lines.append(
            f"- {LABELS[m]} above bicubic on every image and SNR: "
            f"{'met' if ok else 'not met'} ({sum(g > 0 for g in gains)} of {len(gains)}; "
            f"mean {np.mean(gains):+.2f} dB, smallest {gains[worst]:+.2f} dB on "
            f"{runs[worst].image}, {runs[worst].level})"
        )
    for level in NOISE_LEVELS:
        best = means.get((level, "zssr_psf_noise"))
        if best is None:
            continue
        parts = []
        if (level, "bicubic") in means:
            d = best - means[(level, "bicubic")]
            parts.append(
                f"{d:+.2f} dB vs bicubic (target >= +1.5: {'met' if d >= 1.5 else 'not met'})"
            )
        if (level, "zssr_noise0") in means:
            d = best - means[(level, "zssr_noise0")]
            parts.append(
                f"{d:+.2f} dB vs ZSSR without PSF or noise (target >= +0.5: "
                f"{'met' if d >= 0.5 else 'not met'})"
            )
        if (level, "zssr_noise") in means:
            d = best - means[(level, "zssr_noise")]
            parts.append(f"{d:+.2f} dB vs ZSSR with matched noise but no PSF")
        if (level, "zssr_psf") in means:
            d = means[(level, "zssr_psf")] - best
            parts.append(f"the estimated noise level gives {d:+.2f} dB vs the matched one")
        lines.append(f"- {level}, true PSF + matched noise: " + "; ".join(parts))
    lines += _poisson_gaussian_targets(rows2d)
    return ["Targets:", "", *lines, ""] if lines else []


def _poisson_gaussian_targets(rows2d: list[Row]) -> list[str]:
    """Poisson-Gaussian against Gaussian estimated noise: mean and worst image per SNR."""
    lines = []
    psnr = {(r.image, r.level, r.method): r.psnr for r in rows2d}
    for gauss, pg in zip(DEFAULT_METHODS, PG_METHODS):
        for level in NOISE_LEVELS:
            keys = [(i, lv) for i, lv, m in psnr if m == pg and lv == level]
            diffs = [psnr[(i, lv, pg)] - psnr[(i, lv, gauss)] for i, lv in keys if
                     (i, lv, gauss) in psnr]  # fmt: skip
            if not diffs:
                continue
            worst = min(diffs)
            lines.append(
                f"- {level}, {LABELS[pg]} vs {LABELS[gauss]}: mean {np.mean(diffs):+.2f} dB "
                f"(target >= +0.2: {'met' if np.mean(diffs) >= 0.2 else 'not met'}), worst "
                f"image {worst:+.2f} dB, better on {sum(d > 0 for d in diffs)} of {len(diffs)}"
            )
    return lines


def _method_table(rows: list[Row]) -> list[str]:
    """Markdown rows of a one-volume comparison: method, PSNR, SSIM, seconds."""
    return [
        "| method | PSNR (dB) | SSIM | time (s) |",
        "|---|---|---|---|",
        *(f"| {LABELS[r.method]} | {r.psnr:.2f} | {r.ssim:.4f} | {r.seconds:.1f} |" for r in rows),
    ]


def render_stack(
    rowss: list[Row], notess: dict[str, Any], args: argparse.Namespace, command: str
) -> str:
    lines = [
        "### Stack-wide against per-plane training",
        "",
        *run_header(args, command, notess.get("device", "?")),
        f"{notess.get('gt_shape', ('?',))[0]} planes of the cells3d nuclei stack, "
        f"{notess.get('gt_shape', ('?', '?'))[1]}-pixel crops, through the acquisition above "
        f"at high SNR (LR stack {notess.get('lr_shape')}); both runs get the true PSF and "
        f"noise on sons {notess.get('noise_std', float('nan')):.4f}. `per_plane` trains one "
        "network per plane from scratch; `shared` trains one network on fathers drawn from "
        "up to 16 planes, then fine-tunes it on each plane for "
        f"{notess.get('finetune_iters', '?')} iterations before upscaling it. PSNR of the "
        "whole volume, SSIM averaged over planes; the simulated acquisition is the one of "
        "the 2-D benchmark above.",
        "",
        *_method_table(rowss),
    ]
    per = next((r for r in rowss if r.method == "stack_per_plane"), None)
    sha = next((r for r in rowss if r.method == "stack_shared"), None)
    if per and sha:
        speed = per.seconds / max(sha.seconds, 1e-9)
        d = sha.psnr - per.psnr
        ok = speed >= 5 and d >= -0.1
        lines += [
            "",
            f"shared vs per-plane: {speed:.1f}x faster, {d:+.2f} dB (target: >= 5x faster "
            f"within 0.1 dB: {'met' if ok else 'not met'})",
        ]
    lines.append("")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        help="evaluation data folder (default: ../shared/data from the repo root)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: one 128 x 128 image, a 60 x 48 x 48 stack, 40 iterations",
    )
    p.add_argument("--preset", default="fast", help="ZSSR preset (default: fast)")
    p.add_argument("--max-iters", type=int, default=None, help="override the preset's max_iters")
    p.add_argument(
        "--init",
        choices=("scratch", "bundled"),
        default=None,
        help="override the preset's start of a new network (every preset's is scratch)",
    )
    p.add_argument("--device", default="auto", help="torch device (default: auto)")
    p.add_argument(
        "--methods",
        default=",".join(ALL_METHODS),
        help="comma-separated subset of: " + ", ".join(ALL_METHODS),
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--section",
        default="main",
        help="name of the 2-D/Z report's section in the markdown file (default: main, the "
        "full benchmark; another name, e.g. for a subset of methods, gets its own markers)",
    )
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument(
        "--images",
        default=None,
        help="comma-separated 1-based indices of the 2-D images to run (default: all 7: BPAE "
        "actin, mitochondria, nuclei, membrane t=0, t=4, ssTEM, cells3d nuclei)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="markdown file to write the microscopy section into "
        "(default: docs/benchmarks.md; none with --quick)",
    )
    args = p.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in ALL_METHODS]
    if unknown:
        p.error(f"unknown method(s) {unknown}; choose from {ALL_METHODS}")
    args.methods = methods
    if args.quick and args.max_iters is None:
        args.max_iters = 40
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = "python benchmarks/microscopy.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    if not args.data.is_dir():
        print(f"evaluation data not found at {args.data}", file=sys.stderr)
        return 2
    zssr_args: dict[str, Any] = {"preset": args.preset, "device": args.device, "seed": args.seed}
    if any(m in ENGINE_METHODS for m in args.methods):
        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
        from napari_zssr import resolve_config

        cfg = resolve_config(args.preset, init=args.init)
        if args.max_iters:
            cfg = cfg.replace(
                max_iters=args.max_iters, min_iters=min(cfg.min_iters, args.max_iters)
            )
        zssr_args["config"] = cfg

    def log(msg: str) -> None:
        print(msg, flush=True)

    m2d = [m for m in METHODS_2D if m in args.methods]
    mz = [m for m in METHODS_Z if m in args.methods]
    mstack = [m for m in METHODS_STACK if m in args.methods]
    rows2d, notes2d, rowsz, notesz, rowss, notess = [], {}, [], {}, [], {}
    if m2d:
        log("x2 super-resolution of simulated widefield images:")
        images = load_images(args.data, args.quick)
        if args.images:  # the others stay as None: the noise drawn depends on the index
            keep = {int(k) - 1 for k in args.images.split(",")}
            images = [im if k in keep else None for k, im in enumerate(images)]
        rows2d, notes2d = run_2d(images, m2d, zssr_args, args.seed, log)
    if mz:
        log("anisotropic z (x2):")
        rowsz, notesz = run_z(load_stack(args.data, args.quick), mz, zssr_args, log)
    if mstack:
        log("stack-wide vs per-plane training:")
        rowss, notess = run_stack(
            load_stack(args.data, False), mstack, zssr_args, args.seed, args.quick, log
        )
    out = args.out if args.out is not None else (None if args.quick else DEFAULT_OUT)
    sections = {}
    if rows2d or rowsz:
        sections[args.section] = render(rows2d, rowsz, notes2d, notesz, args, command)
    if rowss:
        sections["stack"] = render_stack(rowss, notess, args, command)
    for name, text in sections.items():
        print()
        print(text)
        if out is not None:
            write_section(out, text, name)
            print(f"\nwritten to {out} ({_markers(name)[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
