"""Noise-estimate benchmark: what ``noise_std="auto"`` reads on clean and on noisy images.

For every image the script prints the estimate that ``super_resolve`` would use (median over
channels, in units of the normalised [0, 1] range) by the package's estimator
(:func:`napari_zssr.core.noise.estimate_noise_std`), as a run without a kernel reads it (the
same, scaled to a flat band of the highest frequencies where there is one) and by Immerkaer's
3x3 estimator, with
the true noise where it is known:

* clean natural images: the published LR inputs of Set5 and Set14 (x2) and the DIV2KRK subset
  (x2), whose estimate should be near 0 so that the default adds (almost) nothing;
* the microscopy benchmark's simulated widefield images (``benchmarks/microscopy.py``): the
  noise-free render and the high- and low-SNR acquisitions (Poisson photons, Gaussian read
  noise), whose true value is the root-mean-square noise the simulation added;
* pure Gaussian noise of known level.

Run from the repository root::

    python benchmarks/noise_estimate.py                # prints the tables (under a minute)
    python benchmarks/noise_estimate.py --write        # and puts them into docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"
DOCS = REPO / "docs" / "benchmarks.md"
MARKERS = ("<!-- noise-estimate -->", "<!-- /noise-estimate -->")


def _planes(image: np.ndarray, rgb: bool) -> list[np.ndarray]:
    """The normalised channel planes ``super_resolve`` estimates on (first plane of a stack)."""
    from napari_zssr.arrays.intensity import intensity_info, normalise_plane
    from napari_zssr.arrays.planes import make_layout

    layout = make_layout(image.shape, None, rgb)
    info = intensity_info(image, layout)
    first = next(iter(np.ndindex(*layout.stack_shape)))
    return [c.astype(np.float64) for c in normalise_plane(layout.canonical(image)[first], info)]


def natural(data: Path) -> Iterator[tuple[str, str, list[np.ndarray], float | None]]:
    from skimage.io import imread

    for folder, group in (
        ("Set5/LR_x2", "Set5 x2 LR"),
        ("Set14/LR_x2", "Set14 x2 LR"),
        ("DIV2KRK_subset/lr_x2_crop", "DIV2KRK x2 LR"),
    ):
        for f in sorted((data / folder).glob("*.png")):
            im = imread(f)
            yield group, f.stem, _planes(im, im.ndim == 3), None


def microscopy(data: Path) -> Iterator[tuple[str, str, list[np.ndarray], float | None]]:
    sys.path.insert(0, str(REPO / "benchmarks"))
    import microscopy as mb

    psf = mb.true_psf()
    for i, im in enumerate(mb.load_images(data, quick=False)):
        lr = mb.acquire(im.gt, psf)
        yield "microscopy, noise-free", im.name, [lr / max(float(lr.max()), 1e-12)], 0.0
        for j, (level, (peak, read)) in enumerate(mb.NOISE_LEVELS.items()):
            counts = mb.add_noise(lr, peak, read, np.random.default_rng(100 * i + j))
            true = mb.matched_noise_std(lr, counts, peak, read)
            yield f"microscopy, {level}", im.name, _planes(counts, False), true


def pure_noise() -> Iterator[tuple[str, str, list[np.ndarray], float | None]]:
    rng = np.random.default_rng(0)
    for sigma in (0.005, 0.02, 0.05):
        for side in (128, 512):
            plane = 0.5 + rng.normal(0.0, sigma, (side, side))
            yield "pure Gaussian noise", f"sigma {sigma}, {side} x {side}", [plane], sigma


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="shared data folder")
    p.add_argument("--write", action="store_true", help="write the tables into docs")
    args = p.parse_args(argv)

    from napari_zssr.core.noise import estimate_noise_std, immerkaer_noise_std

    sys.path.insert(0, str(REPO / "benchmarks"))
    from noise_robustness import run_reading

    estimators: dict[str, Callable[[np.ndarray], float]] = {
        "package": estimate_noise_std,
        "run, no kernel": run_reading,
        "Immerkaer": immerkaer_noise_std,
    }
    rows: list[tuple[str, str, dict[str, float], float | None]] = []
    t0 = time.perf_counter()
    for source in (natural(args.data), microscopy(args.data), pure_noise()):
        for group, name, planes, true in source:
            est = {k: float(np.median([f(pl) for pl in planes])) for k, f in estimators.items()}
            rows.append((group, name, est, true))
            known = f"  true {true:.4f}" if true is not None else ""
            print(
                f"{group:26s} {name:28s} "
                + "  ".join(f"{k} {v:.4f}" for k, v in est.items())
                + known,
                flush=True,
            )
    lines = _summary(rows, list(estimators))
    print("\n".join(lines))
    print(f"({time.perf_counter() - t0:.0f} s)")
    if args.write:
        _write(lines)
    return 0


def _summary(rows: list, names: list[str]) -> list[str]:
    """Markdown: per group, the range of each estimate (and of its ratio to the truth)."""
    out = [
        "## Noise estimate",
        "",
        "Command: `python benchmarks/noise_estimate.py --write`. Estimates in units of the "
        "normalised [0, 1] intensity range (median over an image's channels, as "
        '`noise_std="auto"` uses them); *true*: the root-mean-square noise the simulation '
        "added. `package` is `napari_zssr.core.noise.estimate_noise_std` (the intensity "
        "bands); `run, no kernel` is what a run without a kernel reads (the bands scaled to "
        "the level of a flat band of the highest frequencies, where there is one).",
        "",
        "| images | n | true | " + " | ".join(f"{k}: min - max" for k in names) + " |",
        "|---|---|---|" + "---|" * len(names),
    ]
    groups = list(dict.fromkeys(r[0] for r in rows))
    for g in groups:
        sel = [r for r in rows if r[0] == g]
        trues = [r[3] for r in sel if r[3] is not None]
        true = f"{min(trues):.4f} - {max(trues):.4f}" if trues else "unknown (clean)"
        cells = []
        for k in names:
            vals = [r[2][k] for r in sel]
            cell = f"{min(vals):.4f} - {max(vals):.4f}"
            ratios = [r[2][k] / r[3] for r in sel if r[3]]
            if ratios:
                cell += f" (x{min(ratios):.2f} - x{max(ratios):.2f} of true)"
            cells.append(cell)
        out.append(f"| {g} | {len(sel)} | {true} | " + " | ".join(cells) + " |")
    return [*out, ""]


def _write(lines: list[str]) -> None:
    text = DOCS.read_text(encoding="utf-8")
    block = "\n".join([MARKERS[0], *lines, MARKERS[1]])
    if MARKERS[0] in text and MARKERS[1] in text:
        head, rest = text.split(MARKERS[0], 1)
        tail = rest.split(MARKERS[1], 1)[1]
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    DOCS.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
