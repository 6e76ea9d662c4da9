"""The noise read from a time-lapse's frames against one plane's reading (no training).

Inputs: the 12 held-out sources of ``benchmarks/noise_robustness.py`` at 64 and 128 px
(bicubic-downscaled, 12-bit), each made a time-lapse of 4 frames: the same clean image moved
by ``--drift`` px per frame along X and 0.3 times that along Y (a Fourier shift, as a stage's
drift moves the field; 0: a static field), each frame with its own draw of correlated noise
(neighbours correlated 0.47 along Y and 0.17 along X, as ``noise_robustness.py``) at 0.01 and
0.03 of the range. Per kind and drift, over the 24 inputs, the ratio to the true per-pixel
level of:

* **one plane**: what a run without a kernel reads from frame 0 alone (the intensity bands,
  or a flat band of the spectrum; ``noise_robustness.run_reading``);
* **differences, unregistered**: ``difference_noise_std(..., register=False)``, median over
  the 3 consecutive pairs;
* **differences, registered**: ``frame_noise_std`` (the drift undone first; what
  ``super_resolve(..., time_axis=0)`` reads), median over the pairs it accepts;

and, with ``--other-fields``, how often ``frame_noise_std`` refuses pairs that are not frames
of one field (consecutive planes of the shared cells3d Z-stack, and two different sources)
and pairs of a real time-lapse (the shared membrane time-lapse, whose cells move).

Run from the repository root (a minute or two on a 2-core CPU)::

    PYTHONPATH=$PWD/src python benchmarks/frame_noise.py [--drifts 0,0.5,2.3] [--other-fields]
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import noise_robustness as nr


def _stack(clean: np.ndarray, sigma: float, drift: float, rng: np.random.Generator) -> list:
    from napari_zssr.core.noise import _moved

    return [
        _moved(clean, (0.3 * drift * t, drift * t)) + nr.correlated_noise(clean.shape, sigma, rng)
        for t in range(4)
    ]


def _summary(values: list[float], digits: int = 2) -> str:
    r = np.asarray(values)
    return f"{r.min():.{digits}f} / {np.median(r):.{digits}f} / {r.max():.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=nr.DEFAULT_DATA)
    p.add_argument("--drifts", default="0,0.5,2.3", help="drifts in px per frame along X")
    p.add_argument("--other-fields", action="store_true")
    args = p.parse_args(argv)

    from napari_zssr.core.noise import difference_noise_std, frame_noise_std

    sources = list(nr.sources(args.data))
    print(
        "| noise | drift (px per frame) | n | one plane: min / median / max | "
        "differences, unregistered | differences, registered | pairs refused |"
    )
    print("|---|---|---|---|---|---|---|")
    for sigma in (0.01, 0.03):
        for drift in (float(d) for d in args.drifts.split(",")):
            plane, plain, registered, refused, pairs = [], [], [], 0, 0
            for i, (_, img) in enumerate(sources, start=1):
                for side in (64, 128):
                    clean = nr.downscale(img, side)
                    rng = np.random.default_rng(7000 + 1000 * i + side)
                    frames = _stack(clean, sigma, drift, rng)
                    plane.append(nr.run_reading(frames[0]) / sigma)
                    steps = list(itertools.pairwise(frames))
                    plain.append(
                        np.median([difference_noise_std(a, b, register=False) for a, b in steps])
                        / sigma
                    )
                    read = [frame_noise_std(a, b) for a, b in steps]
                    kept = [v for v in read if v is not None]
                    refused += len(read) - len(kept)
                    pairs += len(read)
                    if kept:
                        registered.append(float(np.median(kept)) / sigma)
            print(
                f"| correlated {sigma} | {drift:g} | {len(plane)} | {_summary(plane)} | "
                f"{_summary(plain)} | {_summary(registered)} | {refused} of {pairs} |",
                flush=True,
            )
    if args.other_fields:
        import tifffile

        from napari_zssr.arrays.intensity import normalise_intensity

        stack = tifffile.imread(args.data / "microscopy" / "cells3d_nuclei_zyx.tif")
        norm, _ = normalise_intensity(stack)
        z = np.asarray(norm, np.float64)
        read = [frame_noise_std(z[k], z[k + 1]) for k in range(z.shape[0] - 1)]
        print(
            f"\ncells3d nuclei, consecutive Z planes: {sum(v is None for v in read)} of "
            f"{len(read)} pairs refused; the others read "
            f"{_summary([v for v in read if v is not None], 4)} (normalised units)"
        )
        movie = tifffile.imread(args.data / "microscopy" / "bian_membrane_2d_timelapse.tif")
        norm, _ = normalise_intensity(movie)
        m = np.asarray(norm, np.float64)
        read = [frame_noise_std(a, b) for a, b in itertools.pairwise(m)]
        plain = [difference_noise_std(a, b, register=False) for a, b in itertools.pairwise(m)]
        print(
            f"membrane time-lapse (real, cells move), consecutive frames: "
            f"{sum(v is None for v in read)} of {len(read)} pairs refused; registered "
            f"{_summary([v for v in read if v is not None], 4)}, unregistered "
            f"{_summary(plain, 4)} (normalised units)"
        )
        refused = total = 0
        for side in (64, 128):
            planes = [nr.downscale(img, side) for _, img in sources]
            for a, b in itertools.pairwise(planes):
                total += 1
                refused += frame_noise_std(a, b) is None
        print(f"consecutive sources (different fields): {refused} of {total} pairs refused")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
