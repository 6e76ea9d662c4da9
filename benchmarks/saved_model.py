"""Saved networks: train once on one time point, apply to another, against training afresh.

Data: ``microscopy/bian_membrane_2d_timelapse.tif`` (TYX 5 x 256 x 256, a membrane stain
imaged over time: the same sample at five time points). Each frame, normalised to [0, 1]
(its minimum to its 99.9th percentile), is the ground truth; its LR image is the frame
downscaled x2 with MATLAB's bicubic (:func:`napari_zssr.core.resize.imresize`), the model
the networks assume. A network is trained on time point A (``--train``, default 0) with
the ``fast`` preset and saved to a ``.zssr`` file; for each other time point B
(``--apply``) the script measures PSNR against the ground truth (border of 2 px shaved) and
the seconds of:

* bicubic upscaling of the LR image (baseline);
* ZSSR trained afresh on B (``fast``);
* the saved network (loaded from the file) applied to B as it is (``--model``, finetune 0);
* the saved network fine-tuned on B for ``--finetune`` iterations first.

The seconds are those of :func:`napari_zssr.super_resolve` (training and inference), loading
the file included for the saved network. Unless ``--no-write`` is given, the table goes into
``docs/benchmarks.md`` between ``<!-- microscopy-saved-model -->`` markers.

Example (the documented numbers)::

    python benchmarks/saved_model.py --threads 1
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from microscopy import machine, metrics, write_section  # noqa: E402

SCALE = 2
SHAVE = 2
FILE = "microscopy/bian_membrane_2d_timelapse.tif"


def load_frames(data: Path) -> np.ndarray:
    """The time points as float64 ground truths in [0, 1] (each by its own range)."""
    import tifffile

    frames = tifffile.imread(data / FILE).astype(np.float64)
    out = []
    for f in frames:
        lo, hi = float(f.min()), float(np.percentile(f, 99.9))
        out.append(np.clip((f - lo) / (hi - lo), 0.0, 1.0))
    return np.stack(out)


def resize(img: np.ndarray, factor: float) -> np.ndarray:
    """MATLAB bicubic resize by ``factor`` (antialiased when shrinking), float32."""
    import torch

    from napari_zssr.core.resize import imresize

    x = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float64))
    return imresize(x, factor).numpy().astype(np.float32)


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def run(args: argparse.Namespace) -> list[dict]:
    """Train on A, save, then every method on each B; one row per (B, method)."""
    import napari_zssr as nz

    frames = load_frames(Path(args.data))
    lrs = [resize(f, 1.0 / SCALE) for f in frames]
    common = {"preset": args.preset, "device": args.device, "seed": args.seed}
    if args.max_iters:
        common["config"] = nz.PRESETS[args.preset].replace(max_iters=args.max_iters)
    model, t_train = timed(nz.train_model, lrs[args.train], SCALE, **common)
    path = Path(tempfile.mkdtemp()) / "membrane_t0.zssr"
    nz.save_model(model, path)
    print(f"trained on t={args.train} in {t_train:.1f} s; saved to {path}", flush=True)
    rows = [{"b": args.train, "method": "train on A (kept network)", "psnr": None, "s": t_train}]
    for b in args.apply:
        gt, lr = frames[b], lrs[b]
        cases = [
            ("bicubic", lambda lr=lr: resize(lr, SCALE)),
            ("ZSSR trained afresh on B", lambda lr=lr: nz.super_resolve(lr, SCALE, **common)),
            (
                "saved network, finetune 0",
                lambda lr=lr: nz.super_resolve(lr, SCALE, model=path, **common),
            ),
            (
                f"saved network, finetune {args.finetune}",
                lambda lr=lr: nz.super_resolve(
                    lr, SCALE, model=path, finetune=args.finetune, **common
                ),
            ),
        ]
        for name, fn in cases:
            out, sec = timed(fn)
            psnr, _ = metrics(gt, out, SHAVE)
            rows.append({"b": b, "method": name, "psnr": psnr, "s": sec})
            print(f"t={b}  {name:32s} {psnr:7.2f} dB {sec:7.1f} s", flush=True)
    return rows


def render(rows: list[dict], args: argparse.Namespace, command: str) -> str:
    mach = machine()
    lines = [
        "### Saved network: trained on one time point, applied to others",
        "",
        f"Command: `{command}`  ",
        f"Machine: {mach['cpu']}; Python {mach['python']}; torch {mach['torch']}; "
        f"device {args.device}  ",
        f"Data: `{FILE}` (the same sample at 5 time points); ground truth = each frame, LR = "
        f"the frame downscaled x{SCALE} with MATLAB's bicubic; network trained on t={args.train} "
        f"with preset `{args.preset}`"
        + (f" (max_iters {args.max_iters})" if args.max_iters else "")
        + f", seed {args.seed}. PSNR against the frame, {SHAVE} px border shaved.",
        "",
        "| B (time point) | method | PSNR (dB) | vs afresh (dB) | seconds |",
        "|---|---|---|---|---|",
    ]
    fresh = {r["b"]: r["psnr"] for r in rows if r["method"].startswith("ZSSR trained afresh")}
    for r in rows:
        if r["psnr"] is None:
            lines.append(f"| {r['b']} (A) | {r['method']} | | | {r['s']:.1f} |")
            continue
        delta = r["psnr"] - fresh[r["b"]]
        lines.append(
            f"| {r['b']} | {r['method']} | {r['psnr']:.2f} | {delta:+.2f} | {r['s']:.1f} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=str(HERE.parent.parent / "shared" / "data"))
    p.add_argument("--train", type=int, default=0, help="time point A the network learns")
    p.add_argument("--apply", type=int, nargs="+", default=[1, 4], help="time points B")
    p.add_argument("--finetune", type=int, default=50, help="fine-tuning iterations on B")
    p.add_argument("--preset", default="fast")
    p.add_argument("--max-iters", type=int, default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--no-write", action="store_true", help="print only")
    p.add_argument("--doc", default=str(HERE.parent / "docs" / "benchmarks.md"))
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    command = shlex.join(["python", "benchmarks/saved_model.py", *(argv or sys.argv[1:])])
    rows = run(args)
    text = render(rows, args, command)
    print(text)
    if not args.no_write:
        write_section(Path(args.doc), text, "saved-model")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
