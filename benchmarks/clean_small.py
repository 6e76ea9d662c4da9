"""ZSSR's defaults on clean small inputs: above bicubic, or did the noise estimate hurt?
(And, with ``--noise``, on the same inputs with white or correlated noise added.)

The inputs are those of ``benchmarks/noise_robustness.py`` without noise: 12 held-out sources
(four noise-free renders: nuclei, filaments, spots, membranes; scikit-image's ``cell``,
``coins``, ``moon``, ``camera``, the Hubble deep field, the IHC hematoxylin channel; the shared
cells3d nuclei stack at planes 12 and 44), a centre crop of twice the input size downscaled by
MATLAB's antialiased bicubic to ``--sizes`` px and quantised to 12 bits. The ground truth is
that crop: the bicubic kernel is the true one, the case ZSSR's defaults are made for. Per
case: bicubic, and ZSSR x2 with the defaults (noise estimated, no PSF; ``--preset``, default
``fast``) and with ``noise_std=0``; PSNR in dB against the crop (2 px shaved), the noise the
run put on the sons, and whether the consistency step ran.

A real image carries its own noise (the cells3d plane 12 reads 0.11 at full size, about 0.046
after the downscale), so "clean" means no noise was added, not that there is none.

``--noise KIND`` runs the noisy inputs of ``noise_robustness.py`` of that kind instead
(``"white 0.03"``, ``"correlated 0.03"``: neighbours correlated 0.47 along Y and 0.17 along X,
as EMCCD, binned or resampled data are, at the stated per-pixel level; the same draws as that
script's), against the same clean ground truth; the ``noise_std=0`` run is then left out.
``--noise-std VALUE`` gives the "defaults" run that noise on the sons instead of the estimate.
``--set FIELD=VALUE`` (repeatable) changes a field of the preset's configuration in both runs,
e.g. ``--set init=bundled``.

``--frames N`` (with ``--noise``) makes each input a time-lapse of N frames: frame 0 is the
input above, frames 1 to N-1 the same clean image, moved by ``--drift`` px per frame along X
(and 0.3 times that along Y; a Fourier shift, as a stage's drift moves the field), each with
a noise draw of its own of the same kind. Per case: the noise on the sons that a run of the
stack reads without and with its time axis (``time_axis=0``: the frames' differences raise
the level where they read more), converted to frame 0's own intensity units; the defaults on
frame 0 alone (as without ``--frames``); and, where the time axis raises the level, frame 0
alone run with the frames' level where that is above frame 0's own reading (this isolates
what the time axis changes, the level, at a single frame's cost). ``--whole-stack`` also runs
the stack itself, without and with its time axis, scoring frame 0 (one network trained on
all frames, ``stack_mode="shared"``: about 2.4 times a frame's iterations).

Run from the repository root (about 10-40 s per ZSSR run on a 2-core CPU)::

    PYTHONPATH=$PWD/src OMP_NUM_THREADS=1 python benchmarks/clean_small.py [--sizes 64,128]
        [--preset fast] [--threads 1] [--sources 1,2,...] [--json PATH]
        [--noise "correlated 0.03"] [--noise-std auto] [--set FIELD=VALUE ...]
        [--frames 4] [--drift 0.5] [--whole-stack]
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import microscopy as mic
import noise_robustness as nr


def ground_truth(img: np.ndarray, side: int) -> np.ndarray:
    """The ``2 * side`` px centre crop ``noise_robustness.downscale`` starts from."""
    hr = nr.centre_crop(img, 2 * side)
    if hr.shape[0] != 2 * side:  # a small source: the crop is resized, as downscale does
        import torch

        from napari_zssr.core.resize import imresize

        hr = imresize(torch.from_numpy(np.ascontiguousarray(hr)), out_shape=(2 * side,) * 2)
        hr = hr.numpy()
    return np.asarray(hr, np.float64)


#: The kinds of ``noise_robustness.cases`` whose inputs keep the clean image's intensity scale
#: (the photon-starved integer kind is renormalised to its own range, so a PSNR against the
#: clean crop would not mean the same).
NOISE_KINDS = (
    "clean",
    "white 0.01",
    "white 0.03",
    "correlated 0.01",
    "correlated 0.03",
    "Poisson-Gaussian 400",
)


def _noise_kind(text: str) -> str:
    if text in NOISE_KINDS:
        return text
    parts = text.split()
    try:
        if len(parts) == 2 and parts[0] == "white" and float(parts[1]) > 0:
            return text
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"unknown noise {text!r}")


def inputs(data: Path, sizes: list[int], kind: str):
    """``(source number, name, image, side, input)`` of each case of ``kind``, the very
    inputs (and noise draws) of ``noise_robustness.cases``; ``"white SIGMA"`` at another
    level than that script's: the clean input plus white Gaussian noise of its own draw."""
    images = {name: (i, img) for i, (name, img) in enumerate(nr.sources(data), start=1)}
    if kind not in NOISE_KINDS:
        sigma = float(kind.split()[1])
        for name, (i, img) in images.items():
            for side in sizes:
                rng = np.random.default_rng(1000 * i + side + 7)
                clean = nr.downscale(img, side)
                yield i, name, img, side, clean + rng.normal(0.0, sigma, clean.shape)
        return
    for case_kind, name, side, plane, _ in nr.cases(data, sizes):
        if case_kind == kind:
            number, img = images[name]
            yield number, name, img, side, plane


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=mic.DEFAULT_DATA)
    p.add_argument("--sizes", default="64,128")
    p.add_argument("--preset", default="fast")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--sources", default="", help="1-based source numbers (default all)")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument(
        "--noise",
        default="clean",
        type=_noise_kind,
        help="the inputs of noise_robustness.py of this kind (default: clean; "
        + ", ".join(NOISE_KINDS)
        + "), or 'white SIGMA' at another level",
    )
    p.add_argument(
        "--noise-std",
        default="auto",
        help="noise on the sons of the 'defaults' run (default: auto, the estimate; a number "
        "runs that level instead, e.g. the true per-pixel level of --noise)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="change a field of the preset's configuration (repeatable), e.g. init=bundled",
    )
    p.add_argument("--frames", type=int, default=1, help="frames per input (a time-lapse)")
    p.add_argument("--drift", type=float, default=0.0, help="drift between frames, px along X")
    p.add_argument(
        "--whole-stack",
        action="store_true",
        help="with --frames, also run the whole stack without and with its time axis",
    )
    args = p.parse_args(argv)
    noise_std = args.noise_std if args.noise_std == "auto" else float(args.noise_std)
    if args.frames > 1:
        if args.noise == "clean":
            p.error("--frames needs --noise: clean frames of one field are all the same")
        return frames_main(args, noise_std)

    import torch

    from napari_zssr import super_resolve
    from napari_zssr.core.config import PRESETS

    torch.set_num_threads(args.threads)
    # the preset as it is, or with the --set fields changed
    run_kw = {"preset": args.preset}
    if args.set:
        run_kw = {"config": PRESETS[args.preset].replace(**mic.config_changes(args.set))}
    pick = [int(v) for v in args.sources.split(",") if v.strip()]
    rows: list[dict[str, Any]] = []
    print("| source | px | bicubic | ZSSR defaults | noise on the sons | ZSSR noise 0 |")
    print("|---|---|---|---|---|---|")
    clean = args.noise == "clean"
    sizes = [int(s) for s in args.sizes.split(",")]
    for i, name, img, side, lr in inputs(args.data, sizes, args.noise):
        if pick and i not in pick:
            continue
        gt = ground_truth(img, side)
        row: dict[str, Any] = {"source": name, "side": side, "noise": args.noise}
        row["bicubic"] = mic.metrics(gt, mic.bicubic(lr, 2), 2)[0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out, info = super_resolve(
                lr.astype(np.float32),
                2,
                **run_kw,
                device="cpu",
                noise_std=noise_std,
                return_info=True,
            )
            out0 = None
            if clean:
                out0 = super_resolve(lr.astype(np.float32), 2, **run_kw, device="cpu", noise_std=0)
        row["defaults"] = mic.metrics(gt, np.asarray(out, np.float64), 2)[0]
        row["noise_std"] = float(info["noise_std"])
        row["noise_estimate_from"] = info.get("noise_estimate_from")
        row["consistency_step"] = info.get("consistency_step")
        if out0 is not None:
            row["noise0"] = mic.metrics(gt, np.asarray(out0, np.float64), 2)[0]
        rows.append(row)
        zero = f"{row['noise0']:.2f}" if "noise0" in row else "-"
        print(
            f"| {name} | {side} | {row['bicubic']:.2f} | {row['defaults']:.2f} | "
            f"{row['noise_std']:.4f} | {zero} |",
            flush=True,
        )
    gains = [r["defaults"] - r["bicubic"] for r in rows]
    gains0 = [r["noise0"] - r["bicubic"] for r in rows if "noise0" in r]
    text = (
        f"\ndefaults over bicubic ({args.noise}): mean {np.mean(gains):+.2f} dB, below bicubic "
        f"on {sum(g < 0 for g in gains)} of {len(gains)} (worst {min(gains):+.2f})"
    )
    if gains0:
        text += f"; noise 0: mean {np.mean(gains0):+.2f}, below on {sum(g < 0 for g in gains0)}"
    print(text)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


def _frame_noise(kind: str, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A noise draw of ``kind`` (white or correlated; a Poisson-Gaussian kind is refused)."""
    name, _, level = kind.partition(" ")
    if name == "white":
        return rng.normal(0.0, float(level), shape)
    if name == "correlated":
        return nr.correlated_noise(shape, float(level), rng)
    raise SystemExit(f"--frames takes white or correlated noise, not {kind!r}")


def _readings(stack: np.ndarray, noise_std: Any, preset: str) -> tuple[float, float, Any]:
    """The noise on the sons a run of ``stack`` reads without and with its time axis, in the
    units of frame 0 alone, and the frames' own level (None: no pair read)."""
    from napari_zssr.arrays.degradation import NoiseProfiles, noise_on_sons
    from napari_zssr.arrays.intensity import intensity_info
    from napari_zssr.arrays.planes import make_layout

    layout = make_layout(stack.shape, None, False)
    info = intensity_info(stack, layout)
    one = make_layout(stack[0].shape, None, False)
    # the stack is normalised by its range, frame 0 alone by its own
    ratio = float(info.spans()[0]) / float(intensity_info(stack[0], one).spans()[0])
    out = []
    for axis in (None, 0):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            profiles = NoiseProfiles(stack, layout, info, None, None, axis)
            read = noise_on_sons(profiles, noise_std, preset, None, False, warn=False)
        out.append(float(read["noise_std"]) * ratio)
    frames = read["noise_estimate_frames"]
    return out[0], out[1], None if frames is None else frames[0] * ratio


def frames_main(args: argparse.Namespace, noise_std: Any) -> int:
    """``--frames``: each input a time-lapse; the noise its time axis reads, given to a run of
    frame 0 (the training otherwise as today's defaults on that frame)."""
    import torch

    from napari_zssr import super_resolve
    from napari_zssr.core.noise import _moved

    torch.set_num_threads(args.threads)
    pick = [int(v) for v in args.sources.split(",") if v.strip()]
    sizes = [int(s) for s in args.sizes.split(",")]
    rows: list[dict[str, Any]] = []
    print(
        f"{args.frames} frames, drift {args.drift} px per frame, {args.noise}\n\n"
        "| source | px | bicubic | defaults (frame 0 alone) | noise on the sons | "
        "stack without time axis: noise | with time axis: noise | frames' level | "
        "frame 0 with that noise |"
        + (" whole stack, no time axis | whole stack, time axis |" if args.whole_stack else "")
    )
    print("|---|---|---|---|---|---|---|---|---|" + ("---|---|" if args.whole_stack else ""))
    for i, name, img, side, lr in inputs(args.data, sizes, args.noise):
        if pick and i not in pick:
            continue
        gt = ground_truth(img, side)
        clean = nr.downscale(img, side)
        rng = np.random.default_rng(5000 + 1000 * i + side)
        frames = [lr]
        for t in range(1, args.frames):
            moved = _moved(clean, (0.3 * args.drift * t, args.drift * t))
            frames.append(moved + _frame_noise(args.noise, clean.shape, rng))
        stack = np.stack(frames).astype(np.float32)
        row: dict[str, Any] = {"source": name, "side": side, "noise": args.noise}
        row["bicubic"] = mic.metrics(gt, mic.bicubic(lr, 2), 2)[0]
        row["stack_plane"], row["stack_frames"], row["frames_level"] = _readings(
            stack, noise_std, args.preset
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frame0 = stack[0]
            out, info = super_resolve(
                frame0, 2, preset=args.preset, device="cpu", noise_std=noise_std,
                return_info=True,
            )  # fmt: skip
            row["defaults"] = mic.metrics(gt, np.asarray(out, np.float64), 2)[0]
            row["noise_std"] = float(info["noise_std"])
            row["with_frames"] = row["defaults"]
            # the frames' level changes the run only where it is above frame 0's own
            level = row["frames_level"]
            if level is not None and level > row["noise_std"]:
                out = super_resolve(frame0, 2, preset=args.preset, device="cpu", noise_std=level)
                row["with_frames"] = mic.metrics(gt, np.asarray(out, np.float64), 2)[0]
            if args.whole_stack:  # the product's path: one network for the stack
                for key, axis in (("stack_without", None), ("stack_with", 0)):
                    out = super_resolve(
                        stack, 2, preset=args.preset, device="cpu", noise_std=noise_std,
                        time_axis=axis,
                    )  # fmt: skip
                    row[key] = mic.metrics(gt, np.asarray(out[0], np.float64), 2)[0]
        rows.append(row)
        level = row["frames_level"]
        whole = ""
        if args.whole_stack:
            whole = f" {row['stack_without']:.2f} | {row['stack_with']:.2f} |"
        print(
            f"| {name} | {side} | {row['bicubic']:.2f} | {row['defaults']:.2f} | "
            f"{row['noise_std']:.4f} | {row['stack_plane']:.4f} | {row['stack_frames']:.4f} | "
            f"{'none' if level is None else f'{level:.4f}'} | {row['with_frames']:.2f} |" + whole,
            flush=True,
        )
    for key, label in (("defaults", "defaults"), ("with_frames", "with the frames' level")):
        gains = [r[key] - r["bicubic"] for r in rows]
        print(
            f"\n{label}: over bicubic mean {np.mean(gains):+.2f} dB, below bicubic on "
            f"{sum(g < 0 for g in gains)} of {len(gains)} (worst {min(gains):+.2f})"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
