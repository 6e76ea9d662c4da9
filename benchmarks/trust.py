"""Trust benchmark: resolution without ground truth and how well the quality maps find errors.

On images with ground truth (the simulated widefield acquisitions of ``microscopy.py``, high
SNR, ZSSR given the true PSF kernel; and Set5 x2 with the published LR files) the script
measures:

- the decorrelation resolution (:func:`napari_zssr.estimate_resolution`) of the bicubic
  upscale, the ZSSR output and the HR ground truth, in HR pixels;
- the Spearman rank correlation of each map of ``super_resolve(..., maps=True)`` (``spread``,
  ``consistency``, ``added``) with the true absolute error ``|ZSSR - GT|``, per image and the
  mean (border of 2 x scale pixels left out; channels averaged);
- the time of the same run with and without ``maps=True`` (same seed, so the same training);
- the time of ``estimate_resolution`` on a 1024 x 1024 plane.

Run from the repository root::

    python benchmarks/trust.py                                  # full run, writes the docs
    python benchmarks/trust.py --crop 128 --micro 3 --set5 2    # reduced run
    python benchmarks/trust.py --quick --no-write               # smoke test
"""

from __future__ import annotations

import argparse
import datetime as _dt
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import microscopy as micro  # the simulation of the microscopy benchmark
from _metrics import to_luma

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data"
DEFAULT_OUT = REPO / "docs" / "benchmarks.md"
MAPS = ("spread", "consistency", "added")
SCALE = 2
PEAK, READ = micro.NOISE_LEVELS["high SNR"]


@dataclass
class Case:
    name: str
    lr: np.ndarray  # what ZSSR is given (uint16 counts or uint8 RGB)
    gt: np.ndarray  # float, same unit as ``to_float(output)``
    kernel: np.ndarray | None
    rgb: bool
    offset: float = 0.0  # counts -> signal: (x - offset) / peak
    peak: float = 1.0


def _centre_crop(a: np.ndarray, size: int, multiple: int) -> np.ndarray:
    h, w = a.shape[:2]
    sh, sw = min(size, h) // multiple * multiple, min(size, w) // multiple * multiple
    y0, x0 = (h - sh) // 2 // multiple * multiple, (w - sw) // 2 // multiple * multiple
    return a[y0 : y0 + sh, x0 : x0 + sw]


def microscopy_cases(data: Path, crop: int, n: int, seed: int) -> list[Case]:
    images = micro.load_images(data, quick=False)[:n]
    psf = micro.true_psf()
    kern = micro.zssr_kernel().kernel
    cases = []
    for i, im in enumerate(images):
        gt = _centre_crop(im.gt, crop, SCALE)
        rng = np.random.default_rng(seed + i)
        counts = micro.add_noise(micro.acquire(gt, psf), PEAK, READ, rng)
        cases.append(Case(im.name, counts, gt, kern, False, micro.CAMERA_OFFSET, PEAK))
    return cases


def set5_cases(data: Path, crop: int, n: int) -> list[Case]:
    from PIL import Image

    cases = []
    for k in range(1, n + 1):
        with Image.open(data / "Set5" / f"img_00{k}_SRF_4_HR.png") as f:
            hr = np.asarray(f.convert("RGB"))
        with Image.open(data / "Set5" / "LR_x2" / f"img_00{k}_SRF_2_LR.png") as f:
            lr = np.asarray(f.convert("RGB"))
        hr = hr[: lr.shape[0] * SCALE, : lr.shape[1] * SCALE]
        lr_c = _centre_crop(lr, crop // SCALE, 1)
        y0 = (lr.shape[0] - lr_c.shape[0]) // 2 * SCALE
        x0 = (lr.shape[1] - lr_c.shape[1]) // 2 * SCALE
        gt = hr[y0 : y0 + lr_c.shape[0] * SCALE, x0 : x0 + lr_c.shape[1] * SCALE]
        cases.append(Case(f"Set5 img_00{k}", lr_c, gt.astype(np.float64), None, True))
    return cases


def _to_float(case: Case, arr: np.ndarray) -> np.ndarray:
    return (arr.astype(np.float64) - case.offset) / case.peak


def _bicubic(case: Case) -> np.ndarray:
    import torch

    from napari_zssr.core.resize import imresize

    x = torch.from_numpy(_to_float(case, case.lr))
    if case.rgb:
        return imresize(x.permute(2, 0, 1), SCALE).permute(1, 2, 0).numpy()
    return imresize(x, SCALE).numpy()


def _resolution(img: np.ndarray, rgb: bool) -> float:
    from napari_zssr import estimate_resolution

    res = estimate_resolution(to_luma(np.clip(img, 0, 255)) if rgb else img)
    return float(res.resolution_px)


def _spearman(a: np.ndarray, b: np.ndarray, border: int) -> float:
    from scipy.stats import spearmanr

    a, b = a[border:-border, border:-border], b[border:-border, border:-border]
    return float(spearmanr(a.ravel(), b.ravel())[0])


def run_case(case: Case, zssr: dict[str, Any]) -> dict[str, Any]:
    from napari_zssr import super_resolve

    kw = dict(zssr, kernel=case.kernel, rgb=case.rgb, return_info=True)
    t0 = time.perf_counter()
    super_resolve(case.lr, SCALE, **kw)
    t_plain = time.perf_counter() - t0
    t0 = time.perf_counter()
    out, info = super_resolve(case.lr, SCALE, maps=True, **kw)
    t_maps = time.perf_counter() - t0
    sr = _to_float(case, out)
    err = np.abs(sr - case.gt)
    # maps are in counts (microscopy): the same unit change as the error, ranks unaffected
    if case.rgb:
        err = err.mean(axis=-1)
    border = 2 * SCALE
    corr = {}
    for name in MAPS:
        m = info["maps"][name]
        corr[name] = _spearman(m.mean(axis=-1) if case.rgb else m, err, border)
    return {
        "name": case.name,
        "res_bicubic": _resolution(_bicubic(case), case.rgb),
        "res_zssr": _resolution(sr, case.rgb),
        "res_gt": _resolution(case.gt, case.rgb),
        "res_info": info["resolution"],
        "rsp": info["consistency"]["rsp"],
        "spearman": corr,
        "t_plain": t_plain,
        "t_maps": t_maps,
        "t_maps_only": info["maps_seconds"],
        "t_short": time_overhead(case, zssr, repeat=3),
    }


def time_overhead(case: Case, zssr: dict[str, Any], repeat: int) -> tuple[float, float]:
    """Seconds of ``maps=True`` beyond the same run without, training reduced to 1 iteration.

    The maps cost nothing during training, so a 1-iteration run isolates their extra time
    (inference bookkeeping, maps, resolution estimates) from the training's. Runs alternate
    and the minimum of each is kept, which resists a busy machine better than two long runs.
    """
    from napari_zssr import super_resolve

    cfg = zssr["config"].replace(max_iters=1, min_iters=1)
    kw = dict(zssr, config=cfg, kernel=case.kernel, rgb=case.rgb, return_info=True)
    plain, maps = [], []
    for _ in range(repeat):
        for flag, times in ((False, plain), (True, maps)):
            t0 = time.perf_counter()
            super_resolve(case.lr, SCALE, maps=flag, **kw)
            times.append(time.perf_counter() - t0)
    return min(plain), min(maps)


def time_estimate(repeat: int) -> list[float]:
    """Seconds of ``estimate_resolution`` on a 1024 x 1024 band-limited noisy plane."""
    from napari_zssr import estimate_resolution

    rng = np.random.default_rng(0)
    spec = np.fft.fft2(rng.standard_normal((1024, 1024)))
    f = np.hypot(np.fft.fftfreq(1024)[:, None], np.fft.fftfreq(1024)[None, :])
    img = np.fft.ifft2(spec * (f < 0.2)).real + 0.05 * rng.standard_normal((1024, 1024))
    img = img.astype(np.float32)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        estimate_resolution(img)
        times.append(time.perf_counter() - t0)
    return times


def render(rows: list[dict[str, Any]], est_times: list[float], header: list[str]) -> str:
    lines = ["### Trust: resolution without ground truth and quality maps", "", *header]
    lines += [
        "Decorrelation resolution in HR pixels (smaller is finer; 2 = the HR grid's Nyquist "
        "limit); `info` is what `super_resolve` reports, in input pixels.",
        "",
        "| image | bicubic | ZSSR | ground truth | info: input / bicubic / output (input px) "
        "| RSP |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ri = r["res_info"]
        info_s = f"{ri['input']:.2f} / {ri['bicubic']:.2f} / {ri['output']:.2f}" if ri else "n/a"
        lines.append(
            f"| {r['name']} | {r['res_bicubic']:.2f} | {r['res_zssr']:.2f} | "
            f"{r['res_gt']:.2f} | {info_s} | {r['rsp']:.4f} |"
        )
    lines += [
        "",
        "Spearman rank correlation of each map with the true absolute error |ZSSR - GT|:",
        "",
        "| image | spread | consistency | added | s without maps | s with maps | extra "
        "| of which maps | 1-iteration runs: s without / with maps | extra / full run |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        c = r["spearman"]
        extra = 100 * (r["t_maps"] / r["t_plain"] - 1)
        lines.append(
            f"| {r['name']} | {c['spread']:.3f} | {c['consistency']:.3f} | {c['added']:.3f} | "
            f"{r['t_plain']:.1f} | {r['t_maps']:.1f} | {extra:+.1f}% | "
            f"{r['t_maps_only']:.2f} | {r['t_short'][0]:.2f} / {r['t_short'][1]:.2f} | "
            f"{100 * (r['t_short'][1] - r['t_short'][0]) / r['t_plain']:+.1f}% |"
        )
    mean = {k: float(np.mean([r["spearman"][k] for r in rows])) for k in MAPS}
    tp, tm = sum(r["t_plain"] for r in rows), sum(r["t_maps"] for r in rows)
    to = sum(r["t_maps_only"] for r in rows)
    s0, s1 = sum(r["t_short"][0] for r in rows), sum(r["t_short"][1] for r in rows)
    lines.append(
        f"| **mean** | **{mean['spread']:.3f}** | **{mean['consistency']:.3f}** | "
        f"**{mean['added']:.3f}** | {tp:.1f} (total) | {tm:.1f} (total) | "
        f"{100 * (tm / tp - 1):+.1f}% | {to:.2f} (total) | {s0:.2f} / {s1:.2f} (total) | "
        f"{100 * (s1 - s0) / tp:+.1f}% |"
    )
    lines += [
        "",
        "`extra` compares two full runs of the same training (same seed) timed end to end, so "
        "on a busy machine it mostly shows the machine's noise; `of which maps` is the time "
        "spent in the maps and the resolution estimates inside the run "
        "(`info['maps_seconds']`). The last two columns isolate the cost of `maps=True`: the "
        "same runs with training cut to 1 iteration (minimum of 3 alternating runs each), "
        "their difference as a fraction of the full run without maps.",
    ]
    lines += [
        "",
        f"`estimate_resolution` on a 1024 x 1024 float32 plane: median "
        f"{np.median(est_times):.3f} s over {len(est_times)} runs "
        f"(min {min(est_times):.3f} s, max {max(est_times):.3f} s).",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--preset", default="fast")
    p.add_argument("--crop", type=int, default=256, help="HR crop side (pixels)")
    p.add_argument("--micro", type=int, default=7, help="number of microscopy images (max 7)")
    p.add_argument("--set5", type=int, default=5, help="number of Set5 images (max 5)")
    p.add_argument("--max-iters", type=int, default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--repeat", type=int, default=5, help="runs of the 1024 x 1024 timing")
    p.add_argument("--quick", action="store_true", help="1 + 1 images, 128 px, 40 iterations")
    p.add_argument("--no-write", action="store_true")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    if args.quick:
        args.crop, args.micro, args.set5, args.max_iters = 128, 1, 1, 40
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = "python benchmarks/trust.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    import torch

    from napari_zssr import PRESETS

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = PRESETS[args.preset]
    if args.max_iters:
        cfg = cfg.replace(max_iters=args.max_iters, min_iters=min(cfg.min_iters, args.max_iters))
    zssr = {"config": cfg, "device": args.device, "seed": args.seed}
    cases = microscopy_cases(args.data, args.crop, args.micro, args.seed)
    cases += set5_cases(args.data, args.crop, args.set5)
    rows = []
    for case in cases:
        r = run_case(case, zssr)
        c = r["spearman"]
        print(
            f"{r['name']:22s} res bicubic {r['res_bicubic']:.2f} zssr {r['res_zssr']:.2f} "
            f"gt {r['res_gt']:.2f} | spearman spread {c['spread']:.3f} consistency "
            f"{c['consistency']:.3f} added {c['added']:.3f} | {r['t_plain']:.1f} s, "
            f"maps {r['t_maps']:.1f} s (maps only {r['t_maps_only']:.2f} s)",
            flush=True,
        )
        rows.append(r)
    est = time_estimate(args.repeat)
    header = [
        f"Command: `{command}`  ",
        f"Date: {_dt.datetime.now().strftime('%Y-%m-%d %H:%M')}  ",
        f"Machine: {micro.machine()['cpu']}; torch {micro.machine()['torch']}; "
        f"device {args.device}  ",
        f"ZSSR: preset `{args.preset}`"
        + (f", max_iters {args.max_iters}" if args.max_iters else "")
        + f", seed {args.seed}; HR crops of {args.crop} px; microscopy: high SNR, true PSF "
        "kernel; Set5: published LR_x2, RGB",
        "",
    ]
    text = render(rows, est, header)
    print(text)
    if not args.no_write and not args.quick:
        micro.write_section(args.out, text, section="trust")
        print(f"written into {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
