"""Noise-estimate robustness: clean small images, white and spatially correlated noise.

What ``noise_std="auto"`` reads (:func:`napari_zssr.core.noise.estimate_noise_std`) against the
true per-pixel noise, on images the estimator was not developed on:

* **clean**: held-out images (scikit-image's bundled ``cell``, ``coins``, ``moon``,
  ``camera``, the Hubble deep field as a spot image, the hematoxylin channel of
  ``immunohistochemistry``, and the cells3d nuclei stack of the shared data at planes other
  than the microscopy benchmark's), cropped and downscaled with MATLAB's antialiased bicubic
  to 64, 96 and 128 px, stored as 12-bit integers (4095 at the maximum): the true noise is 0
  (quantisation: 7e-5);
* **white**: the same inputs with Gaussian noise of standard deviation 0.01 and 0.03 (fraction
  of the range), and with Poisson-Gaussian noise (peak 400 photons, read noise 2 e-);
* **correlated**: the same noise levels passed through a small filter so that neighbours
  correlate about 0.47 along Y and 0.17 along X (as EMCCD, binned or resampled data do),
  scaled so that the per-pixel standard deviation is the stated one: the estimate should read
  that, not the smaller high-frequency part of it; and photon-starved integer data (67 grey
  levels) with such noise at 0.029 of that range.

The clean cases' counts at or above 0.003 and 0.01 are those ``noise_std="auto"`` would take
as noisy with and without a PSF kernel (``CLEAN_BELOW_WITH_KERNEL``,
``CLEAN_BELOW_WITHOUT_KERNEL``). Real images carry their own noise (the cells3d z=12 plane
reads 0.11 at full size, about 0.046 after the downscale): they are listed, not excluded.

Run from the repository root::

    PYTHONPATH=$PWD/src python benchmarks/noise_robustness.py [--data ../shared/data]
        [--sizes 64,96,128] [--estimator package|immerkaer]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"

#: Correlating filter on white noise: neighbour correlation 1 / 2.12 = 0.47 along Y and
#: 0.35 / 2.12 = 0.17 along X.
CORRELATE = np.array([[1.0, 0.35], [1.0, 0.0]])


def _normalise(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    lo, hi = np.percentile(a, 0.1), np.percentile(a, 99.9)
    return np.clip((a - lo) / max(hi - lo, 1e-12), 0.0, 1.0)


def render(kind: str, side: int = 256, seed: int = 0) -> np.ndarray:
    """A noise-free fluorescence-like render of one structure type, blurred by a Gaussian
    PSF of 1 px sigma, normalised to [0, 1]: ``nuclei`` (smooth filled ellipses), ``filaments``
    (random curved lines), ``spots`` (isolated points), ``membranes`` (Voronoi cell borders)."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:side, :side].astype(np.float64)
    obj = np.zeros((side, side))
    if kind == "nuclei":
        for _ in range(12):
            cy, cx = rng.uniform(0, side, 2)
            ry, rx = rng.uniform(12, 30, 2)
            inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1
            obj[inside] = np.maximum(obj[inside], rng.uniform(0.4, 1.0))
    elif kind == "filaments":
        for _ in range(25):
            t = np.linspace(0.0, 1.0, 2000)
            p0, p1, p2 = rng.uniform(0, side, (3, 2))
            pts = (
                (1 - t)[:, None] ** 2 * p0 + 2 * (t * (1 - t))[:, None] * p1 + t[:, None] ** 2 * p2
            )
            ys, xs = np.clip(pts.astype(int), 0, side - 1).T
            obj[ys, xs] = rng.uniform(0.5, 1.0)
    elif kind == "spots":
        n = side * side // 400
        obj[rng.integers(0, side, n), rng.integers(0, side, n)] = rng.uniform(0.3, 1.0, n)
    elif kind == "membranes":
        seeds = rng.uniform(0, side, (30, 2))
        d = np.sort(
            ((yy[..., None] - seeds[:, 0]) ** 2 + (xx[..., None] - seeds[:, 1]) ** 2) ** 0.5
        )
        obj = (d[..., 1] - d[..., 0] < 1.5).astype(np.float64)
    else:
        raise ValueError(kind)
    img = ndimage.gaussian_filter(obj, 1.0)
    return img / img.max()


def sources(data: Path) -> Iterator[tuple[str, np.ndarray]]:
    """Held-out ``(name, image)`` pairs, each normalised to [0, 1], at least 256 px a side:
    noise-free renders, then real images (whose own noise, about 0.4 times the full-size
    level after the x2 bicubic downscale, is the clean cases' floor)."""
    import skimage.data as skd

    for kind in ("nuclei", "filaments", "spots", "membranes"):
        yield f"render {kind}", render(kind)

    yield "cell (phase)", _normalise(skd.cell())
    yield "coins", _normalise(skd.coins())
    yield "moon", _normalise(skd.moon())
    yield "camera", _normalise(skd.camera())
    yield "hubble (spots)", _normalise(skd.hubble_deep_field()[..., :3].mean(axis=2))
    from skimage.color import rgb2hed

    yield "IHC hematoxylin", _normalise(rgb2hed(skd.immunohistochemistry())[..., 0])
    stack = data / "microscopy" / "cells3d_nuclei_zyx.tif"
    if stack.exists():
        import tifffile

        vol = tifffile.imread(stack)
        for z in (12, 44):
            yield f"cells3d nuclei z={z}", _normalise(vol[z])


def centre_crop(img: np.ndarray, size: int) -> np.ndarray:
    """The centre ``size`` x ``size`` px of ``img`` (or the largest square that fits)."""
    crop = min(size, *img.shape)
    y0, x0 = (img.shape[0] - crop) // 2, (img.shape[1] - crop) // 2
    return img[y0 : y0 + crop, x0 : x0 + crop]


def downscale(img: np.ndarray, side: int, factor: int = 2) -> np.ndarray:
    """Centre crop of ``factor * side`` px (or the largest that fits, resized), downscaled by
    MATLAB's antialiased bicubic to ``side`` px and quantised to 12 bits, in [0, 1]."""
    import torch

    from napari_zssr.core.resize import imresize

    hr = torch.from_numpy(np.ascontiguousarray(centre_crop(img, factor * side)))
    lr = imresize(hr, out_shape=(side, side)).numpy()
    return np.round(np.clip(lr, 0.0, 1.0) * 4095.0) / 4095.0


def correlated_noise(shape: tuple[int, int], sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise of per-pixel standard deviation ``sigma`` correlated by ``CORRELATE``."""
    from scipy.signal import fftconvolve

    white = rng.normal(0.0, 1.0, (shape[0] + 1, shape[1] + 1))
    out = fftconvolve(white, CORRELATE, mode="valid")[: shape[0], : shape[1]]
    return out * sigma / np.sqrt(np.sum(CORRELATE**2))


def cases(data: Path, sizes: list[int]) -> Iterator[tuple[str, str, int, np.ndarray, float]]:
    """``(kind, image name, side, plane, true noise std)`` for every case."""
    for i, (name, img) in enumerate(sources(data)):
        for side in sizes:
            clean = downscale(img, side)
            yield "clean", name, side, clean, 0.0
            rng = np.random.default_rng(1000 * i + side)
            for sigma in (0.01, 0.03):
                yield (
                    f"white {sigma}",
                    name,
                    side,
                    clean + rng.normal(0.0, sigma, clean.shape),
                    sigma,
                )
                noise = correlated_noise(clean.shape, sigma, rng)
                yield f"correlated {sigma}", name, side, clean + noise, sigma
            # photon-starved integer data (67 grey levels above an offset of 91, as a
            # telomere time-lapse frame), correlated noise of 0.029 of that range
            counts = np.round(
                91.0 + 67.0 * (0.25 + 0.5 * clean + correlated_noise(clean.shape, 0.029, rng))
            )
            span = float(counts.max() - counts.min())
            yield (
                "correlated 0.029, 67 levels",
                name,
                side,
                (counts - counts.min()) / span,
                0.029 * 67.0 / span,
            )
            peak, read = 400.0, 2.0
            counts = rng.poisson(clean * peak) + rng.normal(0.0, read, clean.shape)
            true = float(np.sqrt(np.mean(clean * peak + read**2))) / peak
            yield "Poisson-Gaussian 400", name, side, counts / peak, true


def run_reading(plane: np.ndarray) -> float:
    """The noise a run without a kernel reads from ``plane`` (``NoiseProfiles``: the bands,
    scaled to the level of a flat band of the highest frequencies where there is one; shared
    with ``benchmarks/noise_estimate.py``)."""
    from napari_zssr.arrays.degradation import NoiseProfiles, estimate_noise
    from napari_zssr.arrays.intensity import IntensityInfo
    from napari_zssr.arrays.planes import make_layout

    layout = make_layout(plane.shape, None, False)
    # the plane's own units (already in [0, 1]), as the other estimators read it
    info = IntensityInfo(np.dtype(np.float64), np.zeros(1), np.ones(1), 1.0)
    return estimate_noise(NoiseProfiles(plane, layout, info, None, None))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--sizes", default="64,96,128")
    p.add_argument(
        "--estimator",
        default="package",
        choices=("package", "run", "immerkaer"),
        help="package: the intensity bands (estimate_noise_std); run: what a run without a "
        "kernel reads (the bands scaled to a flat high-frequency band where there is one); "
        "immerkaer: Immerkaer's Laplacian estimator",
    )
    p.add_argument("--verbose", action="store_true", help="one line per case")
    args = p.parse_args(argv)
    from napari_zssr.core.noise import estimate_noise_std, immerkaer_noise_std

    est = {
        "package": estimate_noise_std,
        "run": run_reading,
        "immerkaer": immerkaer_noise_std,
    }[args.estimator]
    sizes = [int(s) for s in args.sizes.split(",")]
    t0 = time.perf_counter()
    rows = []
    for kind, name, side, plane, true in cases(args.data, sizes):
        value = est(plane)
        rows.append((kind, name, side, value, true))
        if args.verbose:
            print(f"{kind:22s} {name:22s} {side:4d}  est {value:.4f}  true {true:.4f}", flush=True)
    print("| noise | n | true | estimate: min / median / max | ratio to true: min / median / max |")
    print("|---|---|---|---|---|")
    for kind in dict.fromkeys(r[0] for r in rows):
        sel = [r for r in rows if r[0] == kind]
        vals = np.array([r[3] for r in sel])
        trues = np.array([r[4] for r in sel])
        cell = f"{vals.min():.4f} / {np.median(vals):.4f} / {vals.max():.4f}"
        if trues.max() > 0:
            ratio = vals / trues
            rcell = f"{ratio.min():.2f} / {np.median(ratio):.2f} / {ratio.max():.2f}"
            tcell = f"{trues.min():.4f} - {trues.max():.4f}"
        else:
            rcell, tcell = "", "0"
        print(f"| {kind} | {len(sel)} | {tcell} | {cell} | {rcell} |")
    clean = [r for r in rows if r[0] == "clean"]
    for floor in (0.003, 0.01):
        print(f"clean read at {floor} or more: {sum(r[3] >= floor for r in clean)} of {len(clean)}")
    worst = sorted(clean, key=lambda r: -r[3])[:5]
    print("clean, highest estimates: " + ", ".join(f"{r[1]} {r[2]} px {r[3]:.4f}" for r in worst))
    print(f"({time.perf_counter() - t0:.0f} s, {len(rows)} cases)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
