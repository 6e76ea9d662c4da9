"""How close the blind kernel estimate comes to the true kernel (DIV2KRK or microscopy; no ZSSR).

For each image of the subset (x2, the supplied LR crops and their true kernels) the estimate of
:func:`napari_zssr.core.kernel_estimate.estimate_kernel` is made from the channel mean, as
``super_resolve(kernel="estimate")`` makes it, and compared with the true kernel. Printed per
image, in a Markdown table:

With ``--set microscopy``, the 14 widefield cases of ``benchmarks/microscopy.py`` (7 images, 2
noise levels, the same simulation and noise draws) against the kernel of its true PSF; with
``--set microscopy-noise-free`` its 7 images without the noise.

- the FWHM (major axis, on the LR grid, from the second moments) of the true kernel and of the
  estimate, and their ratio (1 is right; above 1 too wide, the harmful direction for ZSSR);
- the normalised correlation of the two kernels (centred on a common grid);
- the image's own resolution (decorrelation analysis), the estimate's FWHM as a multiple of
  it, and whether ``super_resolve`` would use the estimate (``reliable``) or fall back.

The last line gives the mean absolute log ratio over the images (0 is perfect). It takes a few
seconds per image: a quick check of an estimator change before the full ZSSR benchmark
(``benchmarks/natural.py --sets div2krk --variants "estimated kernel"``, about an hour on a
2-core CPU).

``--family isotropic`` / ``anisotropic`` forces the kernel family (default ``auto``: the
isotropic fit unless the anisotropic one is clearly better and not degenerate).

``--whiten yes`` / ``no`` forces ``estimate_kernel``'s choice between the first differences'
statistics and the intensities' (by default it chooses from the noise: ``auto``).

``--crop-median SIDE`` also fits the four corner crops of SIDE pixels and reports the median
FWHM of the five fits: whether the errors are sampling noise (the median would help) or a bias
of the image's content (it would not).

Run from the repository root::

    OMP_NUM_THREADS=1 python benchmarks/kernel_accuracy.py [--images 2,3,6] [--crop-median 112]
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from natural import DEFAULT_DATA, load_cases

WHITEN = {"auto": None, "yes": True, "no": False}


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised correlation of two kernels placed centre on centre on a common grid."""
    n = max(a.shape[0], b.shape[0]), max(a.shape[1], b.shape[1])

    def pad(k: np.ndarray) -> np.ndarray:
        out = np.zeros(n)
        y0, x0 = (n[0] - k.shape[0]) // 2, (n[1] - k.shape[1]) // 2
        out[y0 : y0 + k.shape[0], x0 : x0 + k.shape[1]] = k
        return out

    pa, pb = pad(a), pad(b)
    return float((pa * pb).sum() / math.sqrt((pa * pa).sum() * (pb * pb).sum()))


def _microscopy_cases(data: Path, noisy: bool = True) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """The microscopy benchmark's 14 widefield cases: (name, LR image in [0, 1], true kernel).

    The same simulation, seeds and noise draws as ``benchmarks/microscopy.py``; the true kernel
    is the one its ``zssr_psf`` method is given (optics, pixel integration, on the HR grid).
    ``noisy=False``: the 7 images without noise (min-max scaled).
    """
    import microscopy as mic

    from napari_zssr.arrays.intensity import normalise_intensity

    psf, kernel = mic.true_psf(), np.asarray(mic.zssr_kernel().kernel, dtype=np.float64)
    out = []
    for i, im in enumerate(mic.load_images(data, quick=False)):
        lr_clean = mic.acquire(im.gt, psf)
        if not noisy:
            span = max(float(lr_clean.max() - lr_clean.min()), 1e-12)
            out.append((f"{im.name}, noise-free", (lr_clean - lr_clean.min()) / span, kernel))
            continue
        for j, (level, (peak, read)) in enumerate(mic.NOISE_LEVELS.items()):
            counts = mic.add_noise(lr_clean, peak, read, np.random.default_rng(100 * i + j))
            out.append((f"{im.name}, {level}", normalise_intensity(counts)[0], kernel))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="benchmark data folder")
    p.add_argument("--images", default="", help="comma-separated image numbers (default all)")
    p.add_argument("--crop-median", type=int, default=0, help="also the median of crops")
    p.add_argument(
        "--whiten",
        choices=tuple(WHITEN),
        default="auto",
        help="estimate_kernel's whiten: auto (None, the default), yes (True) or no (False)",
    )
    p.add_argument(
        "--family",
        choices=("auto", "isotropic", "anisotropic"),
        default="auto",
        help="estimate_kernel's kernel family (default auto)",
    )
    p.add_argument(
        "--set",
        choices=("div2krk", "microscopy", "microscopy-noise-free"),
        default="div2krk",
        help="images (DIV2KRK)",
    )
    args = p.parse_args(argv)
    import torch

    from napari_zssr.core.kernel_estimate import _lr_fwhm, estimate_kernel

    torch.set_num_threads(1)
    images = [s for s in args.images.split(",") if s.strip()] or None
    if args.set.startswith("microscopy"):
        cases = _microscopy_cases(args.data, noisy=args.set == "microscopy")
    else:
        loaded, _ = load_cases(args.data, "div2krk", 2, images=images)
        cases = [(c.name, _channel_mean(c.lr), c.kernel) for c in loaded]
    sc = (2.0, 2.0)
    head = "| image | true FWHM | estimate | ratio | correlation | resolution | / res. | used |"
    if args.crop_median:
        head += f" median of 5 ({args.crop_median} px crops) ratio |"
    print(head)
    print("|---" * (head.count("|") - 1) + "|")
    logs, logs_med = [], []
    for name, plane, kernel in cases:
        true = kernel / kernel.sum()
        true_fwhm = _lr_fwhm(true, sc)
        est = estimate_kernel([plane], sc, whiten=WHITEN[args.whiten], family=args.family)
        ratio = est.fwhm_lr_px / true_fwhm
        logs.append(abs(math.log(ratio)))
        label = f"{name} (whitened)" if est.whitened else name
        label += f", {est.family}"
        if "isotropic_sigma_hr_px" in est.family_check:
            fc = est.family_check
            iso_s, (an_a, an_b) = fc["isotropic_sigma_hr_px"], fc["anisotropic_sigmas_hr_px"]
            ratio_s = fc["anisotropic_score"] / max(fc["isotropic_score"], 1e-30)
            label += f" (iso {iso_s:.2f}, aniso {an_a:.2f} x {an_b:.2f}, score ratio {ratio_s:.2f})"
        row = (
            f"| {label} | {true_fwhm:.2f} | {est.fwhm_lr_px:.2f} | {ratio:.2f} | "
            f"{_correlation(est.kernel, true):.3f} | {est.resolution_px:.2f} | "
            f"{est.fwhm_lr_px / est.resolution_px:.2f} | {'yes' if est.reliable else 'no'} "
            f"(spectrum: signal to {est.spectral_check.get('signal_cutoff', math.nan):.3f}, "
            f"kernel to {est.spectral_check.get('kernel_cutoff', math.nan):.3f}) |"
        )
        if args.crop_median:
            s = args.crop_median
            h, w = plane.shape
            crops = [plane[y : y + s, x : x + s] for y in (0, h - s) for x in (0, w - s)]
            fits = [est.fwhm_lr_px]
            fits += [
                estimate_kernel([c], sc, whiten=WHITEN[args.whiten], family=args.family).fwhm_lr_px
                for c in crops
            ]
            med = float(np.median(fits)) / true_fwhm
            logs_med.append(abs(math.log(med)))
            row += f" {med:.2f} |"
        print(row, flush=True)
    line = f"mean |log ratio| over {len(logs)} images: {np.mean(logs):.3f}"
    if logs_med:
        line += f"; median of 5 fits: {np.mean(logs_med):.3f}"
    print(line)
    return 0


def _channel_mean(lr: np.ndarray) -> np.ndarray:
    a = lr.astype(np.float64) / 255.0
    return a.mean(axis=-1) if a.ndim == 3 else a


if __name__ == "__main__":
    sys.exit(main())
