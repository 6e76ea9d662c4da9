"""The bundled start against the random one: PSNR and time of ``fast`` per image and per size.

Every case is super-resolved x2 once per variant, in the same process, one after the other:
``scratch`` is the ``fast`` preset as it is (random start, 500 iterations); a variant such as
``init=bundled,max_iters=100`` is ``fast`` with those fields changed. Each run's PSNR, the
bicubic baseline's, the wall-clock and the CPU seconds of ``super_resolve`` are appended to
a JSON-lines file (one row per run; rows already there are not run again, so a long run can
be resumed or extended), and ``--report`` prints the tables from that file.

Sets
----
* ``set5``: Set5 x2, the published LR files, PSNR on Y (``benchmarks/natural.py``'s
  loading and metrics); ``set5-64`` and ``set5-128``: the centre 64 x 64 and 128 x 128 of
  each LR input (and the matching HR), for small inputs.
* ``div2krk-true`` and ``div2krk-est``: the DIV2KRK subset x2 with the true kernel and with
  ``kernel="estimate"``.
* ``micro-psf`` and ``micro-default``: the microscopy benchmark's simulated widefield
  acquisition (``benchmarks/microscopy.py``: 256 x 256 ground truth, 128 x 128 inputs),
  both noise levels, with the true PSF and with the defaults (bicubic kernel, estimated
  noise); ``micro-psf-64`` and ``micro-default-64``: the centre 128 x 128 of the ground
  truth (64 x 64 inputs).

Example (one torch thread, as on a laptop with other work)::

    PYTHONPATH=$PWD/src python benchmarks/warm_start.py --sets set5,micro-psf \\
        --variants scratch init=bundled,max_iters=100 --rows /tmp/warm.jsonl
    PYTHONPATH=$PWD/src python benchmarks/warm_start.py --rows /tmp/warm.jsonl --report
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
import microscopy as micro
import natural
from _metrics import evaluate_pair

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _centre(a: np.ndarray, size: int) -> np.ndarray:
    h, w = a.shape[:2]
    y0, x0 = (h - size) // 2, (w - size) // 2
    return a[y0 : y0 + size, x0 : x0 + size]


def natural_cases(set_key: str, data: Path) -> Iterator[dict[str, Any]]:
    """Set5 (whole or centre crops) and DIV2KRK cases: LR, HR, kernel, how to score."""
    key, _, size = set_key.partition("-")
    name = "div2krk" if key == "div2krk" else "set5"
    cases, _ = natural.load_cases(data, name, 2)
    for c in cases:
        lr, hr, kernel = c.lr, c.hr, None
        if size.isdigit():
            n = int(size)
            if min(lr.shape[:2]) < n:
                continue
            lr, hr = _centre(lr, n), _centre(hr, 2 * n)
        if size == "true":
            kernel = c.kernel
        elif size == "est":
            kernel = "estimate"
        base = evaluate_pair(natural.bicubic_upscale(lr, 2), hr, 2)[0]
        yield {
            "image": c.label or c.name,
            "lr": lr,
            "kwargs": {"rgb": lr.ndim == 3, "kernel": kernel},
            "score": lambda out, hr=hr: evaluate_pair(out, hr, 2)[0],
            "bicubic": base,
            "size": int(min(lr.shape[:2])),
        }


def micro_cases(set_key: str, data: Path) -> Iterator[dict[str, Any]]:
    """The microscopy benchmark's simulated acquisitions (both noise levels)."""
    psf = micro.true_psf()
    kern = micro.zssr_kernel().kernel if set_key.startswith("micro-psf") else None
    small = set_key.endswith("-64")
    for i, im in enumerate(micro.load_images(data, quick=False)):
        gt = _centre(im.gt, 128) if small else im.gt
        lr_clean = micro.acquire(gt, psf)
        for j, (level, (peak, read)) in enumerate(micro.NOISE_LEVELS.items()):
            rng = np.random.default_rng(100 * i + j)
            counts = micro.add_noise(lr_clean, peak, read, rng)
            base = micro.metrics(gt, micro.bicubic(micro.to_signal(counts, peak), 2), 2)[0]
            yield {
                "image": f"{im.name} ({level})",
                "lr": counts,
                "kwargs": {"kernel": kern},
                "score": lambda out, gt=gt, peak=peak: micro.metrics(
                    gt, micro.to_signal(out, peak), 2
                )[0],
                "bicubic": base,
                "size": int(min(counts.shape)),
            }


def variant_config(spec: str) -> Any:
    """``fast`` with the fields of ``spec`` (``"scratch"`` or ``"name=value,..."``)."""
    from napari_zssr.core.config import PRESETS

    cfg = PRESETS["fast"]
    if spec == "scratch":
        return cfg
    changes = {}
    for item in spec.split(","):
        k, _, v = item.partition("=")
        changes[k] = json.loads(v) if v[:1].isdigit() or v in ("true", "false") else v
    return cfg.replace(**changes)


def run_one(case: dict[str, Any], spec: str, seed: int) -> dict[str, Any]:
    from napari_zssr import super_resolve

    cfg = variant_config(spec)
    t0, c0 = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        out, info = super_resolve(
            case["lr"],
            2,
            config=cfg,
            device="cpu",
            seed=seed,
            return_info=True,
            **case["kwargs"],
        )
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "psnr": float(case["score"](out)),
        "wall": wall,
        "cpu": cpu,
        "iterations": info.get("iterations"),
        "init": info["config"]["init"],
    }


def use_weights(path: Path) -> None:
    """Make ``init="bundled"`` read ``path`` (a candidate from ``train_init.py``)."""
    import hashlib

    from napari_zssr.core import init_weights

    data = path.read_bytes()
    init_weights.BUNDLED_SHA256 = hashlib.sha256(data).hexdigest()
    init_weights._read_bytes = lambda: data
    init_weights.load_bundled.cache_clear()


def run(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    done = {(r["set"], r["image"], r["variant"]) for r in _rows(args.rows)}
    for set_key in args.sets:
        maker = micro_cases if set_key.startswith("micro") else natural_cases
        for case in maker(set_key, args.data):
            for spec in args.variants:
                if (set_key, case["image"], spec) in done:
                    continue
                res = run_one(case, spec, args.seed)
                row = {
                    "set": set_key,
                    "image": case["image"],
                    "size": case["size"],
                    "variant": spec,
                    "bicubic": case["bicubic"],
                    **res,
                }
                with open(args.rows, "a", encoding="utf-8") as f:
                    f.write(json.dumps(row) + "\n")
                print(
                    f"{set_key:14s} {case['image']:32s} {spec:44s} {res['psnr']:6.2f} dB "
                    f"(bicubic {case['bicubic']:6.2f})  {res['wall']:5.1f} s wall "
                    f"{res['cpu']:5.1f} s CPU",
                    flush=True,
                )


def _rows(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def report(path: Path, variants: list[str]) -> str:
    """Markdown tables: per set, mean PSNR, worst image against scratch, time ratio."""
    rows = _rows(path)
    lines = [
        "| set | inputs (px) | n | variant | mean PSNR | vs scratch (mean) | worst image "
        "vs scratch | wall s / image | CPU s / image | time vs scratch |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for set_key in dict.fromkeys(r["set"] for r in rows):
        by = {(r["image"], r["variant"]): r for r in rows if r["set"] == set_key}
        images = list(dict.fromkeys(r["image"] for r in rows if r["set"] == set_key))
        scratch = [by.get((i, "scratch")) for i in images]
        sizes = sorted({r["size"] for r in rows if r["set"] == set_key})
        size_txt = f"{sizes[0]}-{sizes[-1]}" if len(sizes) > 1 else str(sizes[0])
        bic = np.mean(
            [by[(i, next(v for v in variants if (i, v) in by))]["bicubic"] for i in images]
        )
        lines.append(f"| {set_key} | {size_txt} | {len(images)} | bicubic | {bic:.2f} | | | | | |")
        for v in variants:
            got = [by.get((i, v)) for i in images]
            if any(g is None for g in got):
                continue
            mean = np.mean([g["psnr"] for g in got])
            wall = np.mean([g["wall"] for g in got])
            cpu = np.mean([g["cpu"] for g in got])
            if all(s is not None for s in scratch) and v != "scratch":
                d = [g["psnr"] - s["psnr"] for g, s in zip(got, scratch)]
                ratio = cpu / np.mean([s["cpu"] for s in scratch])
                cmp = f"{np.mean(d):+.2f} | {min(d):+.2f} | {wall:.1f} | {cpu:.1f} | {ratio:.2f}"
            else:
                cmp = f" | | {wall:.1f} | {cpu:.1f} |"
            lines.append(f"| {set_key} | {size_txt} | {len(images)} | {v} | {mean:.2f} | {cmp} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sets", type=lambda s: s.split(","), default=["set5"])
    p.add_argument("--variants", nargs="+", default=["scratch", "init=bundled,max_iters=100"])
    p.add_argument("--rows", type=Path, required=True, help="JSON-lines file of results")
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--report", action="store_true", help="print the tables and exit")
    p.add_argument(
        "--weights",
        type=Path,
        help="start 'bundled' networks from this file instead (to compare recipes)",
    )
    args = p.parse_args(argv)
    if args.weights is not None:
        use_weights(args.weights)
    if args.report:
        seen = list(dict.fromkeys(r["variant"] for r in _rows(args.rows)))
        print(report(args.rows, seen))
        return 0
    run(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
