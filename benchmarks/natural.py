"""Natural-image benchmark of napari-zssr: Set5, Set14, BSD100 and a DIV2KRK subset.

For every image the script prints PSNR and SSIM of the ZSSR output and of the bicubic
baseline (luma of MATLAB's ``rgb2ycbcr``, border shaved by the scale, see ``_metrics.py``),
the seconds per image and the device, then the mean per set and a comparison with the
numbers of the ZSSR paper (Shocher et al., CVPR 2018). Unless ``--no-write`` is given, each
set's table is written into ``docs/benchmarks.md`` between the markers
``<!-- natural:TAG -->`` and ``<!-- /natural:TAG -->``, together with the command line, the
date and the machine, so that the tables of several runs coexist.

Inputs
------
* Set5, Set14: the published LR files (MATLAB ``imresize(..., 'bicubic')``), compared with
  the published HR (``HR_x2_modcrop2`` for Set14 images 005, 007 and 014 at x2).
* BSD100: LR made from the HR with the package's MATLAB-compatible resize
  (:func:`napari_zssr.core.resize.imresize`), rounded to uint8 as the published LR are.
* DIV2KRK subset: the supplied LR crops, super-resolved twice, once with the true kernel
  (``gt_k_xS/kernel_N.mat``) and once with none (the bicubic assumption).

Examples
--------
Quick check (seconds)::

    python benchmarks/natural.py --sets set5 --limit 1 --max-iters 30 --preset fast --no-write

Bicubic baselines of every set, no training::

    python benchmarks/natural.py --sets set5,set14,bsd100,div2krk --bicubic-only
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

try:  # run as a script from benchmarks/ (its folder is on sys.path)
    from _metrics import evaluate_pair, shave_for_scale
except ImportError:  # imported as benchmarks.natural from the repository root
    from benchmarks._metrics import evaluate_pair, shave_for_scale

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO_ROOT / ".." / "shared" / "data"
DEFAULT_DOCS = REPO_ROOT / "docs" / "benchmarks.md"

SETS: dict[str, str] = {
    "set5": "Set5",
    "set14": "Set14",
    "bsd100": "BSD100",
    "div2krk": "DIV2KRK subset",
}
SCALES = (2, 4)

LABELS: dict[str, list[str]] = {
    "set5": ["baby", "bird", "butterfly", "head", "woman"],
    "set14": [
        "baboon",
        "barbara",
        "bridge",
        "coastguard",
        "comic",
        "face",
        "flowers",
        "foreman",
        "lenna",
        "man",
        "monarch",
        "pepper",
        "ppt3",
        "zebra",
    ],
}

# (set, scale) -> (bicubic, ZSSR) mean PSNR in dB reported by the ZSSR paper (ideal case).
PAPER: dict[tuple[str, int], tuple[float, float]] = {
    ("set5", 2): (33.66, 37.37),
    ("set5", 4): (28.42, 31.13),
    ("set14", 2): (30.24, 33.00),
}

MARKER_PREFIX = "natural"
INSERT_ANCHOR = "<!-- end of natural-image results -->"
TAG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")

DOCS_SKELETON = f"""# Benchmarks

Conventions and how to reproduce these tables: see `benchmarks/README.md`.

## Natural images

{INSERT_ANCHOR}
"""


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------


@dataclass
class Case:
    """One benchmark image: the LR input, the ground truth and the optional true kernel."""

    set_key: str
    name: str
    label: str
    lr: np.ndarray
    hr: np.ndarray
    kernel: np.ndarray | None = None


def _read_png(path: Path) -> np.ndarray:
    from PIL import Image

    if not path.is_file():
        raise FileNotFoundError(f"benchmark file not found: {path}")
    with Image.open(path) as im:
        if im.mode not in ("L", "RGB"):
            im = im.convert("RGB")
        arr = np.asarray(im)
    if arr.dtype != np.uint8:
        raise ValueError(f"{path}: expected an 8-bit image, got {arr.dtype}")
    return arr


def _number(name: str) -> int:
    digits = re.findall(r"\d+", name)
    return int(digits[-1]) if digits else -1


def bicubic_upscale(lr: np.ndarray, scale: float) -> np.ndarray:
    """MATLAB ``imresize(lr, scale, 'bicubic')`` of a uint8 image, rounded back to uint8."""
    return _resize_uint8(lr, scale)


def make_lr(hr: np.ndarray, scale: float) -> np.ndarray:
    """LR of a uint8 HR image made as the published ones: MATLAB bicubic, rounded to uint8."""
    return _resize_uint8(hr, 1.0 / scale)


def _resize_uint8(img: np.ndarray, factor: float) -> np.ndarray:
    import torch

    from napari_zssr.core.resize import imresize

    x = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float64))
    if x.ndim == 3:
        x = x.permute(2, 0, 1)
    y = imresize(x, factor)
    if y.ndim == 3:
        y = y.permute(1, 2, 0)
    return np.clip(np.floor(y.numpy() + 0.5), 0, 255).astype(np.uint8)


def _check_shapes(case_id: str, lr: np.ndarray, hr: np.ndarray, scale: int) -> None:
    want = tuple(n * scale for n in lr.shape[:2])
    if hr.shape[:2] != want or lr.ndim != hr.ndim:
        raise ValueError(
            f"{case_id}: LR {lr.shape} x{scale} does not match the ground truth {hr.shape}"
        )


def _list_natural(data: Path, set_key: str, scale: int) -> list[tuple[str, str, Path, Path | None]]:
    folder = data / SETS[set_key]
    if not folder.is_dir():
        raise FileNotFoundError(f"{SETS[set_key]} folder not found: {folder}")
    hrs = sorted(folder.glob("img_*_SRF_4_HR.png"))
    if not hrs:
        raise FileNotFoundError(f"no img_*_SRF_4_HR.png files in {folder}")
    out = []
    labels = LABELS.get(set_key, [])
    for hr_path in hrs:
        name = hr_path.name.split("_SRF_")[0]
        k = _number(name) - 1
        label = labels[k] if 0 <= k < len(labels) else ""
        if set_key in ("set5", "set14"):
            lr_path: Path | None = folder / f"LR_x{scale}" / f"{name}_SRF_{scale}_LR.png"
            if scale == 2:
                alt = folder / "HR_x2_modcrop2" / f"{name}_SRF_2_HR.png"
                if alt.is_file():
                    hr_path = alt
        else:
            lr_path = None  # regenerated from the HR
        out.append((name, label, hr_path, lr_path))
    return out


def _list_div2krk(data: Path, scale: int) -> list[tuple[str, str, Path, Path, Path]]:
    folder = data / "DIV2KRK_subset"
    lr_dir = folder / f"lr_x{scale}_crop"
    if not lr_dir.is_dir():
        raise FileNotFoundError(f"DIV2KRK LR folder not found: {lr_dir}")
    out = []
    for lr_path in sorted(lr_dir.glob("im_*.png"), key=lambda p: _number(p.stem)):
        n = _number(lr_path.stem)
        out.append(
            (
                lr_path.stem,
                "",
                folder / "gt_crop" / lr_path.name,
                lr_path,
                folder / f"gt_k_x{scale}" / f"kernel_{n}.mat",
            )
        )
    if not out:
        raise FileNotFoundError(f"no im_*.png files in {lr_dir}")
    return out


def _matches(selector: str, name: str, label: str) -> bool:
    s = selector.strip().lower()
    if not s:
        return False
    if s in (name.lower(), label.lower()):
        return True
    return s.isdigit() and int(s) == _number(name)


def select_names(
    entries: Sequence[tuple[str, str]], images: Sequence[str] | None, limit: int | None
) -> list[int]:
    """Indices of the entries (name, label) chosen by ``--images`` and then ``--limit``."""
    idx = list(range(len(entries)))
    if images:
        idx = [i for i in idx if any(_matches(s, *entries[i]) for s in images)]
    if limit is not None:
        idx = idx[:limit]
    return idx


def load_cases(
    data: Path,
    set_key: str,
    scale: int,
    images: Sequence[str] | None = None,
    limit: int | None = None,
) -> tuple[list[Case], int]:
    """Load the chosen images of one set.

    Returns
    -------
    (list of Case, int)
        The cases and the number of images the whole set has.
    """
    cases: list[Case] = []
    if set_key == "div2krk":
        from scipy.io import loadmat

        entries = _list_div2krk(data, scale)
        for i in select_names([e[:2] for e in entries], images, limit):
            name, label, hr_path, lr_path, k_path = entries[i]
            if not k_path.is_file():
                raise FileNotFoundError(f"DIV2KRK kernel not found: {k_path}")
            kernel = np.asarray(loadmat(str(k_path))["Kernel"], dtype=np.float64)
            lr, hr = _read_png(lr_path), _read_png(hr_path)
            _check_shapes(f"{set_key}/{name}", lr, hr, scale)
            cases.append(Case(set_key, name, label, lr, hr, kernel))
        return cases, len(entries)
    entries_n = _list_natural(data, set_key, scale)
    for i in select_names([e[:2] for e in entries_n], images, limit):
        name, label, hr_path, lr_path = entries_n[i]
        hr = _read_png(hr_path)
        lr = _read_png(lr_path) if lr_path is not None else make_lr(hr, scale)
        _check_shapes(f"{set_key}/{name}", lr, hr, scale)
        cases.append(Case(set_key, name, label, lr, hr))
    return cases, len(entries_n)


# --------------------------------------------------------------------------------------
# Machine description
# --------------------------------------------------------------------------------------


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (platform's description elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def machine_info(device: str) -> dict[str, Any]:
    """CPU, cores, torch version and the name of ``device`` (the GPU's name on CUDA)."""
    import torch

    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 0
    dev = str(device)
    if dev.startswith("cuda"):
        dev_name = torch.cuda.get_device_name(torch.device(dev))
    elif dev.startswith("mps"):
        dev_name = "Apple MPS"
    else:
        dev_name = "CPU"
    return {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_usable": usable,
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": dev,
        "device_name": dev_name,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _git(*args: str) -> str:
    """Output of ``git ARGS`` in the repository (raises when git fails)."""
    return subprocess.run(
        ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10, check=True
    ).stdout.strip()


def git_revision() -> str | None:
    """Short commit of the working tree, with ``+local changes`` when it is modified."""
    try:
        rev = _git("rev-parse", "--short", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{rev} + local changes" if dirty else rev


def command_line(argv: Sequence[str]) -> str:
    """The command as typed from the repository root."""
    script = Path(sys.argv[0]).resolve()
    try:
        shown = str(script.relative_to(REPO_ROOT))
    except ValueError:
        shown = str(script)
    if script.name != "natural.py":  # called through main() from other code
        shown = "benchmarks/natural.py"
    return shlex.join(["python", shown, *argv])


# --------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------


@dataclass
class Result:
    """Metrics of one image. ``zssr`` maps a variant ("zssr", "no kernel", ...) to a dict."""

    name: str
    label: str
    lr_shape: tuple[int, ...]
    hr_shape: tuple[int, ...]
    bicubic: tuple[float, float]
    zssr: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class SetRun:
    """All results of one set."""

    set_key: str
    scale: int
    n_total: int
    results: list[Result]
    variants: list[str]


def _run_zssr(
    case: Case, scale: int, args: argparse.Namespace, cfg: Any, kernel: np.ndarray | None
) -> dict[str, Any]:
    from napari_zssr import super_resolve

    rgb = case.lr.ndim == 3
    t0 = time.perf_counter()
    out, info = super_resolve(
        case.lr,
        scale,
        rgb=rgb,
        preset=args.preset,
        config=cfg,
        kernel=kernel,
        noise_std=args.noise_std,
        device=args.device,
        seed=args.seed,
        return_info=True,
    )
    wall = time.perf_counter() - t0
    p, s = evaluate_pair(out, case.hr, scale)
    return {
        "psnr": p,
        "ssim": s,
        "seconds": float(info.get("seconds", wall)),
        "wall_seconds": wall,
        "noise_std": info.get("noise_std"),
        "noise_std_source": info.get("noise_std_source"),
        "device": str(info.get("device", args.device)),
        "iterations": info.get("iterations"),
        "final_loss": info.get("final_loss"),
        "estimate": _estimate_record(info.get("kernel_estimate")),
    }


def _estimate_record(rec: dict[str, Any] | None) -> dict[str, Any] | None:
    """The fitted parameters and time of an estimated kernel (the taps stay out of the JSON)."""
    if rec is None:
        return None
    return {k: v for k, v in rec.items() if k != "kernel"}


def _fmt_metric(p: float, s: float) -> str:
    return f"{p:6.2f} / {s:.4f}"


def _print_row(case: Case, res: Result, scale: int) -> None:
    name = f"{case.name} ({case.label})" if case.label else case.name
    lr = "x".join(str(n) for n in res.lr_shape[:2])
    parts = [f"  {name:<22} {lr:>9} -> x{scale}", f"bicubic {_fmt_metric(*res.bicubic)}"]
    for var, z in res.zssr.items():
        gain = z["psnr"] - res.bicubic[0]
        parts.append(
            f"{var} {_fmt_metric(z['psnr'], z['ssim'])} ({gain:+.2f} dB, {z['seconds']:.1f} s,"
            f" {z['device']})"
        )
    print("  ".join(parts), flush=True)


def run_set(set_key: str, args: argparse.Namespace, cfg: Any) -> SetRun:
    """Evaluate one set and print its rows as they come."""
    cases, n_total = load_cases(args.data, set_key, args.scale, args.images, args.limit)
    if set_key == "div2krk":
        variants = list(args.variants)
    else:
        variants = ["ZSSR"]
    if args.bicubic_only:
        variants = []
    print(f"{SETS[set_key]} x{args.scale}: {len(cases)} of {n_total} images", flush=True)
    results = []
    for case in cases:
        res = Result(
            case.name,
            case.label,
            tuple(case.lr.shape),
            tuple(case.hr.shape),
            evaluate_pair(bicubic_upscale(case.lr, args.scale), case.hr, args.scale),
        )
        for var in variants:
            kernel = {"true kernel": case.kernel, "estimated kernel": "estimate"}.get(var)
            if var == "estimated kernel without box":
                kernel = _estimate_without_box(case.lr, args.scale)
            res.zssr[var] = _run_zssr(case, args.scale, args, cfg, kernel)
        _print_row(case, res, args.scale)
        results.append(res)
    return SetRun(set_key, args.scale, n_total, results, variants)


def _estimate_without_box(lr: np.ndarray, scale: int) -> np.ndarray | None:
    """The estimated kernel without the LR pixel's box (``pixel_box=False``), fitted to the
    channel mean as ``kernel="estimate"`` does; None (bicubic) when it is not reliable."""
    from napari_zssr.core.kernel_estimate import estimate_kernel

    plane = lr.astype(np.float64)
    plane = plane.mean(axis=-1) if plane.ndim == 3 else plane
    plane = (plane - plane.min()) / max(float(np.ptp(plane)), 1e-12)
    est = estimate_kernel([plane], (scale, scale), pixel_box=False)
    print(
        f"    no-box estimate: {est.sigma_major:.2f} x {est.sigma_minor:.2f} HR px, "
        f"{np.degrees(est.angle):.0f} deg, reliable {est.reliable}",
        flush=True,
    )
    return est.kernel if est.reliable else None


def set_means(run: SetRun) -> dict[str, Any]:
    """Mean PSNR, SSIM and seconds per variant (and the bicubic baseline)."""
    rs = run.results
    out: dict[str, Any] = {
        "bicubic": (
            float(np.mean([r.bicubic[0] for r in rs])),
            float(np.mean([r.bicubic[1] for r in rs])),
        )
    }
    for var in run.variants:
        out[var] = {
            "psnr": float(np.mean([r.zssr[var]["psnr"] for r in rs])),
            "ssim": float(np.mean([r.zssr[var]["ssim"] for r in rs])),
            "seconds": float(np.mean([r.zssr[var]["seconds"] for r in rs])),
        }
    return out


def paper_summary(run: SetRun) -> str | None:
    """One line comparing the set's means with the ZSSR paper, or None without paper numbers."""
    key = (run.set_key, run.scale)
    if key not in PAPER or not run.results:
        return None
    p_bic, p_zssr = PAPER[key]
    means = set_means(run)
    bic = means["bicubic"][0]
    head = f"{SETS[run.set_key]} x{run.scale}"
    partial = len(run.results) < run.n_total
    note = (
        f" [{len(run.results)} of {run.n_total} images: not comparable with the paper's means]"
        if partial
        else ""
    )
    if "ZSSR" not in means:
        return (
            f"{head}: bicubic {bic:.2f} dB here vs {p_bic:.2f} dB in the ZSSR paper "
            f"({round(bic - p_bic, 2) + 0.0:+.2f} dB){note}"
        )
    z = means["ZSSR"]["psnr"]
    gain, p_gain = z - bic, p_zssr - p_bic
    return (
        f"{head}: ZSSR {z:.2f} dB vs {p_zssr:.2f} dB in the paper; bicubic {bic:.2f} vs "
        f"{p_bic:.2f}; gain over bicubic {gain:+.2f} dB = {100.0 * gain / p_gain:.0f}% of the "
        f"paper's {p_gain:+.2f} dB{note}"
    )


# --------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------


def _cell(p: float, s: float) -> str:
    return f"{p:.2f} / {s:.4f}"


def markdown_table(run: SetRun) -> str:
    """Markdown table of one set: per-image rows and the mean."""
    head = ["image", "LR (HxW)", "bicubic PSNR / SSIM"]
    for var in run.variants:
        head += [f"{var} PSNR / SSIM", f"{var} gain (dB)", f"{var} s/image"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in run.results:
        name = f"{r.name} ({r.label})" if r.label else r.name
        cells = [name, f"{r.lr_shape[0]}x{r.lr_shape[1]}", _cell(*r.bicubic)]
        for var in run.variants:
            z = r.zssr[var]
            cells += [
                _cell(z["psnr"], z["ssim"]),
                f"{z['psnr'] - r.bicubic[0]:+.2f}",
                f"{z['seconds']:.1f}",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    if run.results:
        m = set_means(run)
        cells = [f"**mean ({len(run.results)})**", "", f"**{_cell(*m['bicubic'])}**"]
        for var in run.variants:
            z = m[var]
            cells += [
                f"**{_cell(z['psnr'], z['ssim'])}**",
                f"**{z['psnr'] - m['bicubic'][0]:+.2f}**",
                f"{z['seconds']:.1f}",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _config_overrides(args: argparse.Namespace) -> list[tuple[str, Any]]:
    """Every ZSSRConfig change of the command line: the shortcut options, then ``--set``."""
    out: list[tuple[str, Any]] = []
    if args.max_iters is not None:
        out.append(("max_iters", args.max_iters))
    if args.gradual is not None:
        out.append(("gradual_scales", tuple(args.gradual)))
    if args.mixed_precision:
        out.append(("mixed_precision", True))
    return out + list(args.overrides)


def _overrides_text(args: argparse.Namespace) -> str:
    parts = [f"{k}={v!r}" for k, v in _config_overrides(args)]
    if getattr(args, "noise_std", None) is not None:
        parts.append(f"noise_std={args.noise_std!r}")
    return ", ".join(parts) if parts else "none"


def _input_text(set_key: str, scale: int) -> str:
    if set_key in ("set5", "set14"):
        gt = "`_SRF_4_HR.png`"
        if set_key == "set14" and scale == 2:
            gt += " (`HR_x2_modcrop2/` for 005, 007, 014)"
        return f"published LR `LR_x{scale}/` (MATLAB bicubic); ground truth {gt}"
    if set_key == "bsd100":
        return (
            f"LR made from the HR with `napari_zssr.core.resize.imresize` (1/{scale}), rounded "
            "to uint8"
        )
    return (
        f"supplied LR crops `lr_x{scale}_crop/` ({320 // scale} px), ground truth `gt_crop/` "
        f"(320 px); true kernel `gt_k_x{scale}/kernel_N.mat`; crop scores are not comparable "
        "with published full-image numbers"
    )


def markdown_block(run: SetRun, args: argparse.Namespace, meta: dict[str, Any]) -> str:
    """The text written between one run's markers (without the markers)."""
    mach = meta["machine"]
    method = "bicubic baseline only" if args.bicubic_only else f"preset `{args.preset}`"
    cores = f"{mach['cpu_count']} logical cores"
    if mach["cpu_usable"] and mach["cpu_usable"] != mach["cpu_count"]:
        cores += f", {mach['cpu_usable']} usable"
    machine = (
        f"{mach['cpu']} ({cores}; torch threads: {mach['torch_threads']}); torch {mach['torch']}"
    )
    if not args.bicubic_only:
        machine += f"; device `{meta['device']}`"
        if mach["device_name"] != "CPU":
            machine += f" ({mach['device_name']})"
    if mach["gpu"]:
        machine += f"; GPU {mach['gpu']} (CUDA {mach['cuda']})"
    rev = f" (git {meta['git']})" if meta.get("git") else ""
    title = f"### {SETS[run.set_key]} x{run.scale}: {method}"
    if not args.bicubic_only:
        if _overrides_text(args) != "none":
            title += f" ({_overrides_text(args)})"
        if mach["device_name"] != "CPU":
            title += f" on {mach['device_name']}"
    lines = [
        title,
        "",
        f"- Command: `{meta['command']}`",
        f"- Date: {meta['date']}; napari-zssr {meta['version']}{rev}",
        f"- Machine: {machine}",
    ]
    if not args.bicubic_only:
        lines.append(
            f"- Configuration: preset `{args.preset}`, overrides: "
            f"{_overrides_text(args)}; seed {args.seed}"
        )
        lines.append(f"- Noise on the sons: {_noise_text(run)}")
    lines += [
        f"- Images: {len(run.results)} of {run.n_total}; {_input_text(run.set_key, run.scale)}",
        f"- Metrics: Y of MATLAB `rgb2ycbcr` (gray images as they are), "
        f"{shave_for_scale(run.scale)} px shaved from each border"
        + ("" if args.bicubic_only else "; seconds = training + inference per image"),
        "",
        markdown_table(run),
    ]
    summary = paper_summary(run)
    if summary:
        lines += ["", summary + "."]
    return "\n".join(lines)


def _noise_text(run: SetRun) -> str:
    """How much noise the runs added to the sons, and where it came from."""
    values, sources = [], set()
    for res in run.results:
        for rec in res.zssr.values():
            if rec.get("noise_std") is not None:
                values.append(float(rec["noise_std"]))
                sources.add(rec.get("noise_std_source") or "?")
    if not values:
        return "not recorded"
    how = {"auto": "estimated from each image (the default)", "preset": "the preset's"}
    origin = ", ".join(how.get(s, s) for s in sorted(sources))
    if max(values) == min(values):
        return f"{values[0]:.4f}, {origin}"
    return f"{origin}: {min(values):.4f} to {max(values):.4f}, mean {np.mean(values):.4f}"


def marker_name(
    tag: str | None,
    set_key: str,
    args: argparse.Namespace,
    n_sets: int,
    device_type: str = "cpu",
) -> str:
    """The marker of one set's block: ``--tag`` (suffixed by the set when several run)."""
    if tag:
        return tag if n_sets == 1 else f"{tag}-{set_key}"
    parts = [set_key, f"x{args.scale}", "bicubic" if args.bicubic_only else args.preset]
    if not args.bicubic_only:
        if device_type != "cpu":
            parts.append(device_type)
        if args.max_iters is not None:
            parts.append(f"it{args.max_iters}")
        if args.gradual is not None:
            gradual = "-".join(f"{g:g}" for g in args.gradual)
            parts.append(f"gradual{gradual}" if gradual else "onejump")
        if args.mixed_precision:
            parts.append("bf16")
        for k, v in args.overrides:
            parts.append(re.sub(r"[^A-Za-z0-9._+-]", "", f"{k}{v}"))
        if getattr(args, "noise_std", None) is not None:
            parts.append(f"noise{args.noise_std}")
        if args.seed != 0:
            parts.append(f"seed{args.seed}")
    if args.images:
        parts.append("subset")
    if args.limit is not None:
        parts.append(f"first{args.limit}")
    return "-".join(parts)


def update_docs(path: Path, name: str, body: str) -> None:
    """Replace (or insert) the block between ``<!-- natural:NAME -->`` markers in ``path``.

    A new block goes just above the ``INSERT_ANCHOR`` comment, or at the end of the file
    when the anchor is missing. A missing file is created with a short header.
    """
    if not TAG_RE.match(name):
        raise ValueError(f"invalid marker name {name!r}: use letters, digits, '.', '_', '+', '-'")
    start = f"<!-- {MARKER_PREFIX}:{name} -->"
    end = f"<!-- /{MARKER_PREFIX}:{name} -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    text = path.read_text(encoding="utf-8") if path.is_file() else DOCS_SKELETON
    # Markers count only on lines of their own, so text that quotes them is left alone.
    pattern = re.compile(
        r"^" + re.escape(start) + r"[ \t]*\n.*?^" + re.escape(end) + r"[ \t]*$",
        flags=re.DOTALL | re.MULTILINE,
    )
    if pattern.search(text):
        text = pattern.sub(lambda _m: block, text, count=1)
    elif INSERT_ANCHOR in text:
        text = text.replace(INSERT_ANCHOR, f"{block}\n\n{INSERT_ANCHOR}", 1)
    else:
        text = text.rstrip("\n") + f"\n\n{block}\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _field(value: str) -> tuple[str, Any]:
    """``FIELD=VALUE`` with VALUE a Python literal (number, True, a tuple...)."""
    import ast

    name, sep, raw = value.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected FIELD=VALUE, got {value!r}")
    try:
        return name.strip(), ast.literal_eval(raw.strip())
    except (ValueError, SyntaxError) as exc:
        raise argparse.ArgumentTypeError(f"{value!r}: VALUE must be a Python literal") from exc


def _floats(value: str) -> list[float]:
    """Comma-separated factors > 1 (an empty string: none)."""
    try:
        vals = [float(v) for v in _csv(value)]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected numbers such as 2 or 1.5,2: {value!r}") from exc
    if any(not (math.isfinite(v) and v > 1) for v in vals):
        raise argparse.ArgumentTypeError(f"gradual factors must be > 1, got {value!r}")
    return vals


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser."""
    from napari_zssr import PRESETS

    p = argparse.ArgumentParser(
        prog="natural.py",
        description="ZSSR on Set5, Set14, BSD100, DIV2KRK: PSNR and SSIM (Y, shaved) vs bicubic.",
    )
    p.add_argument(
        "data",
        nargs="?",
        type=Path,
        default=DEFAULT_DATA,
        help="benchmark data folder (default: ../shared/data from the repository root)",
    )
    p.add_argument(
        "--sets",
        type=_csv,
        default=["set5"],
        help=f"comma-separated sets among {','.join(SETS)} (default: set5)",
    )
    p.add_argument("--scale", type=int, choices=SCALES, default=2, help="SR factor (default 2)")
    p.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="balanced",
        help="ZSSR preset (default: balanced)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument(
        "--limit", type=int, default=None, metavar="N", help="only the first N images of each set"
    )
    p.add_argument(
        "--images",
        type=_csv,
        default=None,
        metavar="NAME,...",
        help="only these images: file stem (img_001, im_2), number (1) or name (baby)",
    )
    p.add_argument(
        "--max-iters", type=int, default=None, metavar="N", help="override the preset's max_iters"
    )
    p.add_argument(
        "--gradual",
        type=_floats,
        default=None,
        metavar="S,...",
        help="override the preset's gradual_scales (intermediate factors, e.g. 2 for x4; "
        "an empty string for one jump)",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        type=_field,
        default=[],
        metavar="FIELD=VALUE",
        help="override any ZSSRConfig field (repeatable), e.g. --set native_prob=0.5",
    )
    p.add_argument(
        "--mixed-precision",
        action="store_true",
        help="train under bfloat16 autocast (CUDA only; ignored elsewhere)",
    )
    p.add_argument(
        "--noise-std",
        type=lambda v: v if v == "auto" else float(v),
        default=None,
        help="noise on the sons passed to super_resolve: a number or 'auto' (default: the "
        "API's default, estimated from the image except with the paper presets)",
    )
    p.add_argument(
        "--variants",
        type=_csv,
        default=["no kernel", "true kernel"],
        metavar="NAME,...",
        help="DIV2KRK runs among 'no kernel', 'true kernel', 'estimated kernel' "
        "(kernel='estimate'), 'estimated kernel without box' (the estimate without the LR "
        "pixel's box); default: no kernel,true kernel",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        metavar="N",
        help="torch CPU threads (default: torch's choice)",
    )
    p.add_argument(
        "--bicubic-only",
        action="store_true",
        help="only compute the bicubic baseline (no training)",
    )
    p.add_argument("--no-write", action="store_true", help="do not touch docs/benchmarks.md")
    p.add_argument(
        "--docs",
        type=Path,
        default=DEFAULT_DOCS,
        help="markdown file to update (default: docs/benchmarks.md)",
    )
    p.add_argument(
        "--tag",
        default=None,
        help="marker name of the docs block (suffixed by the set when several run; "
        "default: SET-xSCALE-PRESET[-DEVICE][-itN][-gradual...][-bf16][-seedS][-subset][-firstN])",
    )
    p.add_argument(
        "--json",
        type=Path,
        default=None,
        metavar="PATH",
        help="also write every number to this JSON file",
    )
    return p


def _validate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    unknown = [s for s in args.sets if s.lower() not in SETS]
    if unknown or not args.sets:
        parser.error(f"--sets: unknown set(s) {unknown}; choose from {','.join(SETS)}")
    args.sets = list(dict.fromkeys(s.lower() for s in args.sets))
    known = ("no kernel", "true kernel", "estimated kernel", "estimated kernel without box")
    bad = [v for v in args.variants if v not in known]
    if bad or not args.variants:
        parser.error(f"--variants: unknown {bad}; choose from {', '.join(known)}")
    if args.limit is not None and args.limit < 1:
        parser.error(f"--limit must be >= 1, got {args.limit}")
    if args.max_iters is not None and args.max_iters < 1:
        parser.error(f"--max-iters must be >= 1, got {args.max_iters}")
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    if args.tag is not None and not TAG_RE.match(args.tag):
        parser.error(f"--tag {args.tag!r}: use letters, digits, '.', '_', '+', '-'")
    if not args.data.is_dir():
        parser.error(f"data folder not found: {args.data} (pass it as the first argument)")
    args.data = args.data.resolve()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    _validate(args, parser)

    import torch

    from napari_zssr import __version__, resolve_config
    from napari_zssr.core.device import resolve_device

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        dev, reason = resolve_device(args.device)
    except (TypeError, ValueError) as exc:
        parser.error(f"--device: {exc}")
    try:
        cfg = resolve_config(args.preset).replace(**dict(_config_overrides(args)))
    except (TypeError, ValueError) as exc:
        parser.error(f"--set / --gradual / --max-iters: {exc}")
    # Check every requested --images name before any training starts.
    if args.images:
        known: list[tuple[str, str]] = []
        for s in args.sets:
            if s == "div2krk":
                known += [e[:2] for e in _list_div2krk(args.data, args.scale)]
            else:
                known += [e[:2] for e in _list_natural(args.data, s, args.scale)]
        missing = [n for n in args.images if not any(_matches(n, *k) for k in known)]
        if missing:
            parser.error(f"--images: no image named {missing} in {','.join(args.sets)}")

    meta = {
        "command": command_line(argv),
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "version": __version__,
        "git": git_revision(),
        "device": str(dev),
        "device_reason": reason,
        "machine": machine_info(str(dev)),
    }
    print(
        f"{meta['command']}\n{meta['date']}; device {dev} ({reason}); "
        f"CPU {meta['machine']['cpu']}; torch {meta['machine']['torch']}",
        flush=True,
    )
    if not args.bicubic_only:
        print(
            f"preset {args.preset}; overrides: {_overrides_text(args)}; seed {args.seed}",
            flush=True,
        )

    if dev.type != "cpu" and not args.bicubic_only:
        # CUDA context, cuDNN handles and kernel loading would otherwise be billed to the
        # first image: a few training steps on a small image take them first.
        from napari_zssr import super_resolve

        warm = np.random.default_rng(0).random((48, 48, 3)).astype(np.float32)
        super_resolve(warm, args.scale, rgb=True, config=cfg.replace(max_iters=5), device=dev)
        print("warm-up run done (not timed)", flush=True)

    runs: list[SetRun] = []
    summaries: list[str] = []
    for set_key in args.sets:
        run = run_set(set_key, args, cfg)
        runs.append(run)
        if not run.results:
            print(f"  no image of {SETS[set_key]} selected", flush=True)
            continue
        m = set_means(run)
        line = f"  mean ({len(run.results)}): bicubic {_fmt_metric(*m['bicubic'])}"
        for var in run.variants:
            z = m[var]
            line += (
                f"  {var} {_fmt_metric(z['psnr'], z['ssim'])} "
                f"({z['psnr'] - m['bicubic'][0]:+.2f} dB, {z['seconds']:.1f} s/image)"
            )
        print(line, flush=True)
        summary = paper_summary(run)
        if summary:
            summaries.append(summary)
            print("  " + summary, flush=True)
        if not args.no_write:
            name = marker_name(args.tag, set_key, args, len(args.sets), dev.type)
            update_docs(args.docs, name, markdown_block(run, args, meta))
            print(f"  written to {args.docs} (marker {MARKER_PREFIX}:{name})", flush=True)

    if summaries:
        print("\nSummary vs the ZSSR paper:")
        for s in summaries:
            print("  " + s)
    if args.json is not None:
        payload = {
            "meta": meta,
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "config": cfg.to_dict(),
            "sets": [
                {
                    "set": r.set_key,
                    "scale": r.scale,
                    "n_total": r.n_total,
                    "means": set_means(r) if r.results else None,
                    "images": [
                        {
                            "name": x.name,
                            "label": x.label,
                            "lr_shape": list(x.lr_shape),
                            "hr_shape": list(x.hr_shape),
                            "bicubic": list(x.bicubic),
                            "zssr": x.zssr,
                        }
                        for x in r.results
                    ],
                }
                for r in runs
            ],
        }
        args.json.write_text(json.dumps(payload, indent=2, default=_json_default), encoding="utf-8")
    return 0


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


if __name__ == "__main__":
    sys.exit(main())
