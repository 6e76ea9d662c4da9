"""ZSSR against Richardson-Lucy deconvolution with the same PSF, on held-out microscopy images.

What a microscopist runs instead of ZSSR is deconvolution (Richardson-Lucy in RedLionfish,
pycudadecon, napari-sdeconv, DeconvolutionLab2), then interpolation. This benchmark compares,
per case, in PSNR / SSIM against the ground truth (2 px border shaved):

* ``bicubic``: MATLAB-style bicubic x2 of the input;
* ``RL input grid + bicubic``: Richardson-Lucy on the input with the PSF integrated over the
  camera pixel and sampled at the input's pitch, then bicubic; at a practical fixed count
  (``--rl-iters``, default 20) and at the count of 1-80 that is best against the ground truth
  (an **oracle**: no user has the ground truth; an upper bound for RL);
* ``RL output grid``: Richardson-Lucy with the downsampling in its forward model
  (``A x = D(h * x)``, D the mean over 2 x 2 blocks), on the output grid, started from the
  bicubic upscale; fixed count and oracle best count, as above;
* ZSSR (``fast`` by default, ``--threads 1``) with the true PSF kernel, with
  ``kernel="estimate"`` (blind) and with the defaults (no PSF); noise on the sons at its
  default (estimated).

Cases (none of them tuned on: the microscopy benchmark uses other crops and planes): ground
truth crops of ``--hr`` px (default 192, so 96 px inputs) of five images of different
structure: nuclei (the shared cells3d stack, plane 44), actin filaments (the shared BPAE image,
another region than ``microscopy.py``'s), membranes (the shared time-lapse, t=2), spots
(scikit-image's Hubble deep field) and phase-contrast cells (scikit-image's ``cell``); each
normalised to [0, 1] and taken as the object on a 50 nm grid. PSFs: widefield (NA 1.4, 520 nm,
vectorial model) and point-scanning confocal (same, pinhole 1 AU); camera pixel 100 nm (2 x 2
HR pixels); Poisson photons at ``--photons`` peak levels (default 400 and 100) with 2 e- read
noise and an offset of 100 counts, stored as uint16.

Run from the repository root (one process, one thread: about 15 s per ZSSR run on a 2-core
CPU)::

    PYTHONPATH=$PWD/src OMP_NUM_THREADS=1 python benchmarks/deconvolution.py [--data DIR]
        [--psfs widefield,confocal] [--photons 400,100] [--images 1,2,...] [--hr 192]
        [--methods bicubic,rl,zssr_psf,zssr_est,zssr] [--preset fast] [--json PATH]
        [--set FIELD=VALUE ...]

``--methods model`` prints how far the engine's forward model with the kernel ZSSR is given is
from the simulated acquisition (RMS over the clean input's standard deviation), for the kernel
as it is now and cropped at 3 FWHMs. ``--methods estimates`` prints only what the run would
read from each input before training (noise estimate against the simulation's true noise,
noise on the sons, the blind kernel fit): seconds per case, and a way to compare two versions
of the code (``PYTHONPATH`` pointing at each) without training.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import microscopy as mic

SCALE = 2
SHAVE = 2
READ_NOISE = 2.0
RL_MAX_ITERS = 80
METHODS = ("bicubic", "rl", "zssr_psf", "zssr_est", "zssr")
LABELS = {
    "bicubic": "bicubic",
    "rl_in_fixed": "RL input grid, fixed + bicubic",
    "rl_in_best": "RL input grid, oracle best + bicubic",
    "rl_out_fixed": "RL output grid, fixed",
    "rl_out_best": "RL output grid, oracle best",
    "zssr_psf": "ZSSR, true PSF",
    "zssr_est": 'ZSSR, kernel="estimate"',
    "zssr": "ZSSR, defaults",
}


def held_out_images(data: Path, hr: int) -> list[tuple[str, np.ndarray]]:
    """``(name, ground truth in [0, 1])`` of the five held-out images, ``hr`` px crops."""
    import skimage.data as skd
    import tifffile

    micro = data / "microscopy"
    cells = tifffile.imread(micro / "cells3d_nuclei_zyx.tif")
    bpae = tifffile.imread(micro / "bian_BPAE_actin_mito_nuclei.tif")
    membrane = tifffile.imread(micro / "bian_membrane_2d_timelapse.tif")
    hubble = skd.hubble_deep_field()[..., :3].astype(np.float64).mean(axis=2)
    images = [
        ("nuclei (cells3d z=44)", mic._crop(cells[44], hr)),
        ("actin (BPAE, other region)", mic._crop(bpae[0], hr, (160, 250))),
        ("membrane t=2", mic._crop(membrane[2], hr)),
        ("spots (Hubble deep field)", mic._crop(hubble, hr, (300, 500))),
        ("cells (phase, skimage cell)", mic._crop(skd.cell(), hr)),
    ]
    return [(name, mic._normalise(gt)) for name, gt in images]


#: The simulation's optics (``benchmarks/microscopy.py``), for ``kernel_from_optics``.
OPTICS = {"na": mic.NA, "wavelength": mic.WAVELENGTH_UM, "ni": mic.NI, "ns": mic.NS}


def psfs(kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The simulation's PSF on the 50 nm grid, the same PSF integrated over the 100 nm camera
    pixel and sampled at the input's pitch, and the kernel ZSSR is given (HR grid)."""
    from napari_zssr.psf import kernel_from_optics

    optics = {**OPTICS, "modality": kind}
    hr = kernel_from_optics(
        image_pixel_size=mic.HR_PIXEL_UM,
        scale=1,
        integrate_pixel=False,
        energy=1.0,
        max_fwhm=None,
        **optics,
    )
    lr = kernel_from_optics(
        image_pixel_size=mic.HR_PIXEL_UM * SCALE, scale=1, energy=1.0, max_fwhm=None, **optics
    )
    kern = kernel_from_optics(image_pixel_size=mic.HR_PIXEL_UM * SCALE, scale=SCALE, **optics)
    return np.array(hr.kernel), np.array(lr.kernel), np.array(kern.kernel)


def _conv(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Convolution with symmetric (reflecting) borders, same size."""
    from scipy.signal import fftconvolve

    pad = k.shape[0] // 2 + 1
    big = np.pad(x, pad, mode="symmetric")
    return fftconvolve(big, k, mode="same")[pad:-pad, pad:-pad]


def rl_input_grid(y: np.ndarray, psf_lr: np.ndarray, gt: np.ndarray) -> list[float]:
    """PSNR after bicubic of Richardson-Lucy on the input grid, for 1 .. RL_MAX_ITERS."""
    y = np.clip(y, 1e-6, None)
    x = y.copy()
    flipped = psf_lr[::-1, ::-1]
    out = []
    for _ in range(RL_MAX_ITERS):
        x = x * _conv(y / np.clip(_conv(x, psf_lr), 1e-6, None), flipped)
        out.append(mic.metrics(gt, mic.bicubic(x, SCALE), SHAVE)[0])
    return out


def _down(x: np.ndarray) -> np.ndarray:
    h, w = x.shape
    return x.reshape(h // SCALE, SCALE, w // SCALE, SCALE).mean(axis=(1, 3))


def _up_adjoint(r: np.ndarray) -> np.ndarray:
    return np.repeat(np.repeat(r, SCALE, axis=0), SCALE, axis=1) / SCALE**2


def rl_output_grid(y: np.ndarray, psf_hr: np.ndarray, gt: np.ndarray) -> list[float]:
    """PSNR of Richardson-Lucy with ``A x = D(h * x)`` on the output grid, started from the
    bicubic upscale, for 1 .. RL_MAX_ITERS."""
    y = np.clip(y, 1e-6, None)
    x = np.clip(mic.bicubic(y, SCALE), 1e-6, None)
    flipped = psf_hr[::-1, ::-1]
    norm = np.clip(_conv(_up_adjoint(np.ones_like(y)), flipped), 1e-12, None)
    out = []
    for _ in range(RL_MAX_ITERS):
        ratio = y / np.clip(_down(_conv(x, psf_hr)), 1e-6, None)
        x = x * _conv(_up_adjoint(ratio), flipped) / norm
        out.append(mic.metrics(gt, x, SHAVE)[0])
    return out


def _zssr(
    counts: np.ndarray,
    peak: float,
    method: str,
    kern: np.ndarray,
    preset: str,
    changes: dict[str, Any] | None = None,
    seed: int = 0,
):
    from napari_zssr import super_resolve
    from napari_zssr.core.config import PRESETS

    kw: dict[str, Any] = {"preset": preset, "device": "cpu", "seed": seed}
    if changes:  # an ablation: the preset with some fields changed (e.g. consistency_iters=0)
        kw = {"config": PRESETS[preset].replace(**changes), "device": "cpu", "seed": seed}
    if method == "zssr_psf":
        kw["kernel"] = kern
    elif method == "zssr_est":
        kw["kernel"] = "estimate"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out, info = super_resolve(counts, SCALE, return_info=True, **kw)
    est = info.get("kernel_estimate") or {}
    note = {
        "noise_std": info.get("noise_std"),
        "noise_estimate": info.get("noise_estimate"),
        "kernel_used": info.get("kernel") is not None,
        "consistency_step": info.get("consistency_step"),
        "family": est.get("family"),
        "sigmas": [est.get("sigma_major_hr_px"), est.get("sigma_minor_hr_px")] if est else None,
        "warnings": [str(w.message)[:160] for w in caught],
    }
    return mic.to_signal(out, peak), note


def add_case_arguments(p: argparse.ArgumentParser) -> None:
    """The options that pick the held-out cases and their noise draws (shared with
    ``benchmarks/consistency_stop.py``, so that both see the same inputs)."""
    p.add_argument("--data", type=Path, default=mic.DEFAULT_DATA)
    p.add_argument("--psfs", default="widefield,confocal")
    p.add_argument("--photons", default="400,100")
    p.add_argument("--images", default="", help="1-based image numbers (default all)")
    p.add_argument("--hr", type=int, default=192, help="ground-truth side (input: half)")
    p.add_argument("--seed", type=int, default=0, help="added to each case's noise draw's seed")


def held_out_cases(args: argparse.Namespace) -> Iterator[tuple[str, np.ndarray, str, float, int]]:
    """``(name, ground truth, PSF kind, photons, noise seed)`` of each case that the options
    of :func:`add_case_arguments` pick, PSF by PSF, then photon level, then image."""
    images = held_out_images(args.data, args.hr)
    pick = [int(v) for v in args.images.split(",") if v.strip()]
    for kind in args.psfs.split(","):
        for peak in (float(v) for v in args.photons.split(",")):
            for i, (name, gt) in enumerate(images, start=1):
                if not pick or i in pick:
                    yield name, gt, kind, peak, args.seed + 1000 * i + int(peak)


def simulate(
    gt: np.ndarray, psf_hr: np.ndarray, peak: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """The clean input (``microscopy.acquire``) and the camera's counts of one case."""
    lr = mic.acquire(gt, psf_hr)
    return lr, mic.add_noise(lr, peak, READ_NOISE, np.random.default_rng(seed))


def run_case(
    name: str, gt: np.ndarray, psf_kind: str, peak: float, args: argparse.Namespace, seed: int
) -> dict[str, Any]:
    psf_hr, psf_lr, kern = psfs(psf_kind)
    lr, counts = simulate(gt, psf_hr, peak, seed)
    y = mic.to_signal(counts, peak)
    row: dict[str, Any] = {"image": name, "psf": psf_kind, "photons": peak, "psnr": {}}
    row["notes"] = {}
    methods = args.methods.split(",")
    if "estimates" in methods:
        row["estimates"] = estimates(counts, lr, peak, kern)
    if "model" in methods:
        row["model_error"] = model_error(gt, lr, psf_kind)
    if "bicubic" in methods:
        row["psnr"]["bicubic"] = mic.metrics(gt, mic.bicubic(y, SCALE), SHAVE)[0]
    if "rl" in methods:
        fixed = args.rl_iters - 1
        for key, curve in (
            ("rl_in", rl_input_grid(y, psf_lr, gt)),
            ("rl_out", rl_output_grid(y, psf_hr, gt)),
        ):
            row["psnr"][f"{key}_fixed"] = curve[fixed]
            best = int(np.argmax(curve))
            row["psnr"][f"{key}_best"] = curve[best]
            row["notes"][f"{key}_best_iters"] = best + 1
    for m in ("zssr_psf", "zssr_est", "zssr"):
        if m not in methods:
            continue
        scores = []
        for net_seed in (int(v) for v in args.net_seeds.split(",")):
            t0 = time.perf_counter()
            est, note = _zssr(
                counts, peak, m, kern, args.preset, mic.config_changes(args.set), net_seed
            )
            note["seconds"] = time.perf_counter() - t0
            scores.append(mic.metrics(gt, est, SHAVE)[0])
        # the mean over the network seeds; each seed's PSNR and the last run's record beside it
        row["psnr"][m] = float(np.mean(scores))
        row["notes"][m] = {**note, "psnr_per_seed": scores}
    return row


def model_error(gt: np.ndarray, lr: np.ndarray, kind: str) -> dict[str, float]:
    """How well the engine's forward model (``degrade`` with the kernel ZSSR is given)
    reproduces the simulated acquisition of ``gt``: the RMS of the difference over the
    standard deviation of the clean input (4 px border left out), for the kernel as
    ``kernel_from_optics`` gives it now and cropped at 3 FWHMs (the earlier default)."""
    import torch

    from napari_zssr.core.inference import degrade
    from napari_zssr.core.kernels import prepare_kernel
    from napari_zssr.psf import kernel_from_optics

    out = {}
    for name, cap in (("kernel as given", None), ("cropped at 3 FWHM", 3.0)):
        kern = kernel_from_optics(
            image_pixel_size=mic.HR_PIXEL_UM * SCALE,
            scale=SCALE,
            modality=kind,
            max_fwhm=cap,
            **OPTICS,
        )
        dk = prepare_kernel(np.array(kern.kernel), (SCALE, SCALE))
        hr = torch.tensor(gt[None], dtype=torch.float32)
        model = degrade(hr, (SCALE, SCALE), dk, lr.shape)[0].double().numpy()
        diff = (model - lr)[4:-4, 4:-4]
        out[name] = float(np.sqrt(np.mean(diff**2)) / np.std(lr[4:-4, 4:-4]))
    return out


def estimates(counts: np.ndarray, lr: np.ndarray, peak: float, kern: np.ndarray) -> dict[str, Any]:
    """What ``super_resolve`` reads from the input before training: the noise estimate
    (without a kernel, and with the true PSF given, where the level is read beyond its
    cutoff), the noise ``"auto"`` puts on the sons without and with a kernel, and
    ``kernel="estimate"``'s fit (no training: a quick way to see what a code change alters
    per case); beside them, the simulation's true root-mean-square noise in the same units
    and the ratio of each estimated to the true variance."""
    from napari_zssr.arrays.degradation import NoiseProfiles, estimate_noise
    from napari_zssr.arrays.intensity import intensity_info, normalise_intensity
    from napari_zssr.arrays.planes import make_layout
    from napari_zssr.core.kernel_estimate import estimate_kernel
    from napari_zssr.core.noise import auto_noise_std, estimate_noise_std

    plane = normalise_intensity(counts)[0].astype(np.float64)
    noise = estimate_noise_std(plane)
    est = estimate_kernel([plane], (SCALE, SCALE), noise_std=[noise])
    true = mic.matched_noise_std(lr, counts, peak, READ_NOISE)
    layout = make_layout(counts.shape, None, False)
    info = intensity_info(counts, layout)
    profiles = NoiseProfiles(counts, layout, info, kern, (SCALE, SCALE))
    with_psf = estimate_noise(profiles)  # what a run given the true PSF reads
    # what a run without a kernel reads (the same bands, scaled to a flat high-frequency band)
    without = estimate_noise(profiles.without_kernel())
    return {
        "noise_estimate": noise,
        "true_noise": true,
        "variance_ratio": (noise / true) ** 2,
        "noise_with_psf": with_psf,
        "variance_ratio_with_psf": (with_psf / true) ** 2,
        "noise_without_kernel": without,
        "variance_ratio_without_kernel": (without / true) ** 2,
        "auto_without_kernel": auto_noise_std(without, with_kernel=False),
        "auto_with_kernel": auto_noise_std(noise, with_kernel=True),
        "estimate": f"{getattr(est, 'family', 'anisotropic')} "
        f"{est.sigma_major:.2f} x {est.sigma_minor:.2f} HR px, "
        + ("used" if est.reliable else "not used"),
    }


def _table(rows: list[dict[str, Any]]) -> list[str]:
    keys = [k for k in LABELS if any(k in r["psnr"] for r in rows)]
    out = [
        "| image | PSF | photons | " + " | ".join(LABELS[k] for k in keys) + " |",
        "|---|---|---|" + "---|" * len(keys),
    ]
    for r in rows:
        cells = []
        for k in keys:
            v = r["psnr"].get(k)
            cell = "" if v is None else f"{v:.2f}"
            if k.endswith("_best") and v is not None:
                cell += f" ({r['notes'][k.replace('_best', '_best_iters')]} it.)"
            cells.append(cell)
        out.append(f"| {r['image']} | {r['psf']} | {r['photons']:g} | " + " | ".join(cells) + " |")
    means = [np.mean([r["psnr"][k] for r in rows if k in r["psnr"]]) for k in keys]
    out.append("| **mean** | | | " + " | ".join(f"**{m:.2f}**" for m in means) + " |")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_case_arguments(p)
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--rl-iters", type=int, default=20, help="the practical fixed RL count")
    p.add_argument("--preset", default="fast")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="change a field of the preset's configuration (repeatable), e.g. consistency_iters=0",
    )
    p.add_argument("--threads", type=int, default=1)
    p.add_argument(
        "--net-seeds",
        default="0",
        help="network seeds of the ZSSR runs, comma-separated: each case runs once per seed "
        "(a single run of these noisy cases moves by up to about 0.5 dB with it)",
    )
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    rows = []
    for name, gt, kind, peak, seed in held_out_cases(args):
        row = run_case(name, gt, kind, peak, args, seed)
        rows.append(row)
        psnr = "  ".join(f"{k} {v:.2f}" for k, v in row["psnr"].items())
        print(f"{name:28s} {kind:9s} {peak:5g}  {psnr}", flush=True)
        if "estimates" in row:
            print(f"    {row['estimates']}", flush=True)
        if "model_error" in row:
            text = ", ".join(f"{k} {v:.3f}" for k, v in row["model_error"].items())
            print(f"    forward model error / signal: {text}", flush=True)
        for m in ("zssr_psf", "zssr_est", "zssr"):
            if m in row["notes"]:
                n = row["notes"][m]
                print(
                    f"    {m}: {n['seconds']:.1f} s, noise {n['noise_std']:.4f}, "
                    f"kernel used {n['kernel_used']}, family {n['family']}, "
                    f"sigmas {n['sigmas']}",
                    flush=True,
                )
    print("\n".join(_table(rows)))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=float), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
