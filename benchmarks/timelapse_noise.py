"""Is ZSSR's output noisier than bicubic on real low-photon data? A no-reference check.

Input: the shared membrane time-lapse (``microscopy/bian_membrane_2d_timelapse.tif``, real
widefield data, TYX uint16, 5 x 256 x 256; see ``../shared/data/README.md``). There is no
ground truth, so two measures that need none, per pair of consecutive frames, for bicubic and
for ZSSR (x2, defaults: noise estimated, no PSF; ``--preset``, default ``fast``):

* **frame-difference RMS**: the root-mean-square of ``output(t+1) - output(t)``, each frame
  upscaled on its own, over the whole frame and over its **static half**: the pixels where
  the two input frames, smoothed (Gaussian, 3 input px), differ least. Over the whole frame
  the cells' own changes between frames make up most of it (the inputs' frame difference is
  about twice what their noise alone gives, ``difference_noise_std``), and a method that
  sharpens those changes shows more there without being noisier; in the static half what
  is left is mostly the noise each method leaves in (or adds to) its output. The inputs' own
  frame difference is given for scale (on the input grid).
* **power above the input's cutoff**: the share of the output's spectral power at
  frequencies beyond the input's Nyquist limit (0.5 cycles per input pixel, 0.25 per output
  pixel at x2), in the normalised intensity unit. Interpolation puts almost nothing there;
  restored detail and amplified noise both put power there, so read it with the first
  measure: more power above the cutoff with no more frame-difference noise is detail.

Run from the repository root (about a minute per ZSSR run on a 2-core CPU)::

    PYTHONPATH=$PWD/src OMP_NUM_THREADS=1 python benchmarks/timelapse_noise.py [--data DIR]
        [--pairs 0-1,2-3] [--preset fast] [--threads 1] [--crop 0] [--stack]

``--stack`` runs the whole movie as one time-lapse instead (axes TYX, ``time_axis=0``: one
network trained on the stack, fine-tuned on each frame, the noise also read from the frames'
differences), as the command line does with ``--axes TYX``; the table is the same.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import microscopy as mic

SCALE = 2


def power_above_cutoff(img: np.ndarray, cutoff: float) -> float:
    """Share of ``img``'s spectral power (mean removed, Hann window) at radial frequencies
    above ``cutoff`` cycles per pixel."""
    x = img - img.mean()
    win = np.outer(np.hanning(x.shape[0]), np.hanning(x.shape[1]))
    p = np.abs(np.fft.fftshift(np.fft.fft2(x * win))) ** 2
    fy = np.fft.fftshift(np.fft.fftfreq(x.shape[0]))
    fx = np.fft.fftshift(np.fft.fftfreq(x.shape[1]))
    r = np.hypot(fy[:, None], fx[None, :])
    return float(p[r > cutoff].sum() / p.sum())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=mic.DEFAULT_DATA)
    p.add_argument("--pairs", default="0-1,2-3", help="consecutive frame pairs, e.g. 0-1,2-3")
    p.add_argument("--preset", default="fast")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--crop", type=int, default=0, help="centre crop of the frames (0: whole)")
    p.add_argument(
        "--stack",
        action="store_true",
        help="run the frames as one time-lapse (TYX, time_axis=0, one network for the stack) "
        "instead of each frame on its own",
    )
    args = p.parse_args(argv)

    import tifffile
    import torch

    from napari_zssr import super_resolve
    from napari_zssr.arrays.intensity import normalise_intensity

    torch.set_num_threads(args.threads)
    movie = tifffile.imread(args.data / "microscopy" / "bian_membrane_2d_timelapse.tif")
    if args.crop:
        h, w = movie.shape[-2:]
        y0, x0 = (h - args.crop) // 2, (w - args.crop) // 2
        movie = movie[:, y0 : y0 + args.crop, x0 : x0 + args.crop]
    # one intensity scale for every frame and method: the whole movie's
    _, info = normalise_intensity(movie)
    lo = float(np.ravel(info.offsets()[0])[0])
    span = float(np.ravel(info.spans()[0])[0])

    def norm(a: np.ndarray) -> np.ndarray:
        return (np.asarray(a, np.float64) - lo) / span

    outs: dict[int, dict[str, np.ndarray]] = {}
    notes = {}
    pairs = [tuple(int(t) for t in pair.split("-")) for pair in args.pairs.split(",")]
    frames = sorted({t for pair in pairs for t in pair})
    whole = None
    if args.stack:  # the product's path for a time-lapse: the movie as one TYX stack
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            whole, run = super_resolve(
                movie, SCALE, preset=args.preset, device="cpu", return_info=True, time_axis=0
            )
        print(
            f"stack: {time.perf_counter() - t0:.1f} s, noise on the sons "
            f"{run['noise_std']:.4f} ({run['noise_estimate_from']}; frames read "
            f"{run['noise_estimate_frames']})",
            flush=True,
        )
    for t in frames:
        frame = movie[t]
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if whole is not None:
                out = whole[t]
            else:
                out, run = super_resolve(
                    frame, SCALE, preset=args.preset, device="cpu", return_info=True
                )
        notes[t] = (time.perf_counter() - t0, run.get("noise_std"), run.get("consistency_step"))
        outs[t] = {
            "input": norm(frame),
            "bicubic": mic.bicubic(norm(frame), SCALE),
            "zssr": norm(out),
        }
        if whole is None:  # (the stack's run was reported above)
            print(
                f"frame {t}: {notes[t][0]:.1f} s, noise on the sons {notes[t][1]:.4f}, "
                f"consistency {notes[t][2]}",
                flush=True,
            )
    print()
    from scipy import ndimage

    from napari_zssr.core.noise import difference_noise_std

    print(
        "| frames | input frame-diff RMS | bicubic frame-diff RMS | ZSSR frame-diff RMS | "
        "input, static half | bicubic, static half | ZSSR, static half | "
        "input noise (frame differences) | "
        "bicubic power above cutoff | ZSSR power above cutoff |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for a, b in pairs:
        d = {
            k: float(np.sqrt(np.mean((outs[b][k] - outs[a][k]) ** 2)))
            for k in ("input", "bicubic", "zssr")
        }
        change = np.abs(
            ndimage.gaussian_filter(outs[b]["input"], 3)
            - ndimage.gaussian_filter(outs[a]["input"], 3)
        )
        static = change < np.median(change)
        static_hr = np.kron(static, np.ones((SCALE, SCALE), dtype=bool))
        st = {
            k: float(
                np.sqrt(
                    np.mean((outs[b][k] - outs[a][k])[static if k == "input" else static_hr] ** 2)
                )
            )
            for k in ("input", "bicubic", "zssr")
        }
        noise = difference_noise_std(outs[a]["input"], outs[b]["input"])
        pw = {
            k: np.mean([power_above_cutoff(outs[t][k], 0.5 / SCALE) for t in (a, b)])
            for k in ("bicubic", "zssr")
        }
        print(
            f"| {a}-{b} | {d['input']:.4f} | {d['bicubic']:.4f} | {d['zssr']:.4f} | "
            f"{st['input']:.4f} | {st['bicubic']:.4f} | {st['zssr']:.4f} | {noise:.4f} | "
            f"{pw['bicubic']:.2e} | {pw['zssr']:.2e} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
