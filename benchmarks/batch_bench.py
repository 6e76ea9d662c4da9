"""Networks trained together: planes per second, seconds per image and quality.

Three parts, each comparing one network after another (batch 1) with networks trained
together (``auto``: the batch :func:`napari_zssr.arrays.loop.auto_batch` picks, or a number),
under each requested precision:

* ``stack``: speed of ``stack_mode="per_plane"`` on a ``N x H x W`` uint16 stack (default
  32 x 512 x 512: cells3d nuclei planes, bicubic-upscaled x2), balanced preset: planes/s,
  and how far the batched output is from the batch-1 output (PSNR of one against the other);
* ``quality``: the microscopy benchmark's per-plane stack (``benchmarks/microscopy.py``:
  32 cells3d planes, simulated widefield, true PSF, matched noise): PSNR against the ground
  truth for each batch;
* ``bsd100``: the first 20 BSD100 images at x2 with the paper preset, one
  :func:`~napari_zssr.super_resolve` per image against one
  :func:`~napari_zssr.super_resolve_many` for all: seconds per image and mean PSNR (Y).

Precisions: ``default`` (torch's defaults: TF32 convolutions on CUDA), ``fp32`` (TF32 off for
convolutions and matrix products) and ``bf16`` (``ZSSRConfig.mixed_precision``: bfloat16
autocast of the training step; CUDA only). Batch 1 runs in ``default`` only.

Run from the repository root::

    python benchmarks/batch_bench.py --device cuda                  # the GPU targets
    python benchmarks/batch_bench.py --device cpu --smoke           # end-to-end check, tiny
    python benchmarks/batch_bench.py --device cpu --threads 1 --parts stack \\
        --stack 4,64,64 --preset fast --max-iters 100 --batches 1,4 # CPU: batch 1 vs 4
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

try:  # run as a script from benchmarks/ (its folder is on sys.path)
    import microscopy
    import natural
    from _metrics import evaluate_pair
except ImportError:  # imported as benchmarks.batch_bench from the repository root
    from benchmarks import microscopy, natural
    from benchmarks._metrics import evaluate_pair

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"
PARTS = ("stack", "quality", "bsd100")
PRECISIONS = ("default", "fp32", "bf16")
ROWS: list[dict[str, Any]] = []


@contextlib.contextmanager
def precision(mode: str) -> Iterator[dict[str, Any]]:
    """Set torch's TF32 switches for ``mode``; yields the config changes it needs."""
    import torch

    saved = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    if mode == "fp32":
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield {"mixed_precision": mode == "bf16"}
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _variants(args: argparse.Namespace) -> list[tuple[int | None, str]]:
    """(batch, precision) pairs: batch 1 in the default precision, then the others."""
    out: list[tuple[int | None, str]] = []
    for b in args.batches:
        modes = ["default"] if b == 1 else args.precisions
        out += [(b, m) for m in modes]
    return out


def _row(part: str, batch: int | None, mode: str, **values: Any) -> None:
    row = {"part": part, "batch": "auto" if batch is None else batch, "precision": mode}
    row.update(values)
    ROWS.append(row)
    print(f"{part:8s} batch {row['batch']!s:>4} {mode:8s} {_text(values)}", flush=True)


def _text(values: dict[str, Any]) -> str:
    return ", ".join(
        f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in values.items()
    )


def _config(args: argparse.Namespace, preset: str, changes: dict[str, Any]) -> Any:
    from napari_zssr import resolve_config

    cfg = resolve_config(preset)
    if args.max_iters:
        cfg = cfg.replace(max_iters=args.max_iters, min_iters=min(cfg.min_iters, args.max_iters))
    if args.crop:
        cfg = cfg.replace(crop_size=args.crop)
    if args.width:
        cfg = cfg.replace(width=args.width)
    return cfg.replace(**changes)


def speed_stack(args: argparse.Namespace) -> np.ndarray:
    """The stack of the speed part: cells3d planes upscaled to the requested size, uint16."""
    import tifffile
    import torch

    from napari_zssr.core.resize import imresize

    n, h, w = args.stack
    src = tifffile.imread(args.data / "microscopy" / "cells3d_nuclei_zyx.tif").astype(np.float32)
    z0 = max(0, (src.shape[0] - n) // 2)
    planes = torch.from_numpy(src[z0 : z0 + n])
    up = imresize(planes, out_shape=(h, w)).clamp(0, 65535).round().numpy()
    return up.astype(np.uint16)


def run_stack(args: argparse.Namespace) -> None:
    from napari_zssr import super_resolve

    stack = speed_stack(args)
    ref = None
    for batch, mode in _variants(args):
        with precision(mode) as changes:
            cfg = _config(args, args.preset, changes)
            kw = {"config": cfg, "device": args.device, "seed": 0, "stack_mode": "per_plane"}
            super_resolve(stack[:2, :64, :64], 2, batch_planes=batch, **kw)  # warm-up
            _sync(args.device)
            t0 = time.perf_counter()
            out, info = super_resolve(stack, 2, batch_planes=batch, return_info=True, **kw)
            _sync(args.device)
            secs = time.perf_counter() - t0
        if ref is None:
            ref = out.astype(np.float64)
        mse = float(np.mean((out.astype(np.float64) - ref) ** 2))
        agree = 10 * np.log10(float(ref.max()) ** 2 / mse) if mse > 0 else float("inf")
        _row(
            "stack",
            batch,
            mode,
            planes_per_s=len(stack) / secs,
            seconds=secs,
            used_batch=info["batch_planes"],
            psnr_vs_batch1=agree,
        )


def run_quality(args: argparse.Namespace) -> None:
    quick = args.smoke
    stack = microscopy.load_stack(args.data, False)
    for batch, mode in _variants(args):
        with precision(mode) as changes:
            cfg = _config(args, args.preset, changes)
            zssr_args = {"config": cfg, "device": args.device, "seed": 0, "batch_planes": batch}
            t0 = time.perf_counter()
            rows, notes = microscopy.run_stack(
                stack, ("stack_per_plane",), zssr_args, 0, quick, lambda m: None
            )
            secs = time.perf_counter() - t0
        _row(
            "quality",
            batch,
            mode,
            psnr=rows[0].psnr,
            ssim=rows[0].ssim,
            seconds=secs,
            shape=str(notes["gt_shape"]),
        )


def run_bsd100(args: argparse.Namespace) -> None:
    from napari_zssr import super_resolve, super_resolve_many

    cases, _ = natural.load_cases(args.data, "bsd100", 2, limit=args.images)
    lrs = [c.lr for c in cases]
    for batch, mode in _variants(args):
        with precision(mode) as changes:
            cfg = _config(args, args.natural_preset, changes)
            kw = {"config": cfg, "device": args.device, "seed": 0, "rgb": True}
            warm = [lr[:40, :40] for lr in lrs[:2]]
            super_resolve_many(warm, 2, batch_size=batch, **kw)
            _sync(args.device)
            t0 = time.perf_counter()
            if batch == 1:
                outs = [super_resolve(lr, 2, **kw) for lr in lrs]
                sizes = [1] * len(lrs)
            else:
                outs, infos = super_resolve_many(lrs, 2, batch_size=batch, return_info=True, **kw)
                sizes = infos[0]["batch_sizes"]
            _sync(args.device)
            secs = time.perf_counter() - t0
        scores = [evaluate_pair(o, c.hr, 2)[0] for o, c in zip(outs, cases)]
        _row(
            "bsd100",
            batch,
            mode,
            s_per_image=secs / len(lrs),
            mean_psnr=float(np.mean(scores)),
            images=len(lrs),
            batches=str(sizes),
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="evaluation data folder")
    p.add_argument("--device", default="cuda", help="torch device (default: cuda)")
    p.add_argument("--parts", default=",".join(PARTS), help=f"subset of {', '.join(PARTS)}")
    p.add_argument("--batches", default="1,auto", help="batch sizes: numbers or auto")
    p.add_argument("--precisions", default=",".join(PRECISIONS), help="default, fp32, bf16")
    p.add_argument("--stack", default="32,512,512", help="speed stack N,H,W (input planes)")
    p.add_argument("--preset", default="balanced", help="preset of the stack parts")
    p.add_argument("--natural-preset", default="paper", help="preset of the BSD100 part")
    p.add_argument("--images", type=int, default=20, help="BSD100 images")
    p.add_argument("--max-iters", type=int, default=None, help="override max_iters")
    p.add_argument("--crop", type=int, default=None, help="override crop_size")
    p.add_argument("--width", type=int, default=None, help="override width")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--smoke", action="store_true", help="tiny sizes: checks the script runs")
    p.add_argument("--json", type=Path, default=None, help="write the rows as JSON here")
    args = p.parse_args(argv)
    args.parts = [s for s in args.parts.split(",") if s]
    args.precisions = [s for s in args.precisions.split(",") if s]
    if args.smoke:
        args.stack, args.images = "3,40,40", 2
        args.max_iters, args.crop = args.max_iters or 12, args.crop or 16
        args.width = args.width or 8
        args.batches = "1,2" if args.batches == "1,auto" else args.batches
    args.stack = tuple(int(v) for v in args.stack.split(","))
    args.batches = [None if b == "auto" else int(b) for b in args.batches.split(",") if b]
    bad = [x for x in args.parts if x not in PARTS] + [
        x for x in args.precisions if x not in PRECISIONS
    ]
    if bad:
        p.error(f"unknown part or precision {bad}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    print(
        f"device {args.device} ({name}); torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; {' '.join(sys.argv[1:])}",
        flush=True,
    )
    for part in args.parts:
        {"stack": run_stack, "quality": run_quality, "bsd100": run_bsd100}[part](args)
    print("\n| part | batch | precision | measured |\n|---|---|---|---|")
    for r in ROWS:
        rest = {k: v for k, v in r.items() if k not in ("part", "batch", "precision")}
        print(f"| {r['part']} | {r['batch']} | {r['precision']} | {_text(rest)} |")
    if args.json:
        args.json.write_text(json.dumps({"device": name, "rows": ROWS}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
