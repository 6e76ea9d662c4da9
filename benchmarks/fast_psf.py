"""Fast preset against balanced with a wide PSF: variants of a preset on microscopy PSF cases.

Uses the microscopy benchmark's simulation (``benchmarks/microscopy.py``: widefield PSF, pixel
integration, Poisson-Gaussian noise, x2) and its ZSSR kernel, with the noise on the sons
estimated (the default). Prints PSNR, the gain over bicubic, seconds and iterations of each
variant and training seed. Run from the repository root::

    python benchmarks/fast_psf.py --images "BPAE nuclei" \\
        --variants "fast;fast:crop_size=96,max_iters=222,min_iters=128;balanced"

A variant is a preset name, optionally followed by ``:`` and ``field=value`` overrides of its
configuration (Python literals, comma-separated). ``--seeds 0,1,2`` repeats every run with
other training seeds (the noise draw stays that of the microscopy benchmark), ``--json FILE``
appends one JSON line per run, and ``--summary FILE [FILE ...]`` prints, from such files, the
gain of every variant on every case (mean over seeds) and its ratio to ``--reference``::

    python benchmarks/fast_psf.py --summary a.jsonl b.jsonl --reference balanced
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
import time
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import microscopy as mb


def _variant(text: str) -> tuple[str, dict]:
    preset, _, over = text.partition(":")
    fields = {}
    for item in filter(None, over.split(",")):
        key, value = item.split("=", 1)
        fields[key.strip()] = ast.literal_eval(value.strip())
    return preset.strip(), fields


def _levels(text: str) -> list[str]:
    if text == "both":
        return list(mb.NOISE_LEVELS)
    levels = [t.strip() for t in text.split(";")]
    unknown = [t for t in levels if t not in mb.NOISE_LEVELS]
    if unknown:
        raise SystemExit(f"unknown level(s) {unknown}; choose from {list(mb.NOISE_LEVELS)}")
    return levels


def run(args: argparse.Namespace) -> int:
    import torch

    from napari_zssr import resolve_config, super_resolve

    torch.set_num_threads(args.threads)
    images = mb.load_images(mb.DEFAULT_DATA, False)
    names = [n.strip() for n in args.images.split(",")]
    missing = set(names) - {im.name for im in images}
    if missing:
        raise SystemExit(f"unknown image(s) {sorted(missing)}")
    psf, kern = mb.true_psf(), mb.zssr_kernel()
    seeds = [int(s) for s in args.seeds.split(",")]
    for level in _levels(args.level):
        j = list(mb.NOISE_LEVELS).index(level)
        peak, read = mb.NOISE_LEVELS[level]
        for i, im in enumerate(images):
            if im.name not in names:
                continue
            # the same noise draw as benchmarks/microscopy.py (seed 0)
            counts = mb.add_noise(
                mb.acquire(im.gt, psf), peak, read, np.random.default_rng(100 * i + j)
            )
            bic = mb.metrics(im.gt, mb.bicubic(mb.to_signal(counts, peak), 2), 2)[0]
            print(f"{im.name} {level} bicubic {bic:.2f}", flush=True)
            for text in args.variants.split(";"):
                preset, fields = _variant(text)
                cfg = resolve_config(preset).replace(**fields)
                for seed in seeds:
                    t0 = time.perf_counter()
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        out, info = super_resolve(
                            counts,
                            2,
                            kernel=kern.kernel,
                            config=cfg,
                            preset=preset,
                            seed=seed,
                            return_info=True,
                        )
                    seconds = time.perf_counter() - t0
                    psnr = mb.metrics(im.gt, mb.to_signal(out, peak), 2)[0]
                    print(
                        f"  {text:50s} seed {seed} {psnr:.2f} gain {psnr - bic:+.2f}  "
                        f"{seconds:5.1f}s it={info['iterations']}",
                        flush=True,
                    )
                    if args.json:
                        row = {
                            "image": im.name,
                            "level": level,
                            "variant": text,
                            "seed": seed,
                            "bicubic": bic,
                            "psnr": psnr,
                            "seconds": seconds,
                            "iterations": info["iterations"],
                            "threads": args.threads,
                        }
                        with open(args.json, "a") as f:
                            f.write(json.dumps(row) + "\n")
    return 0


def summary(files: list[str], reference: str | None) -> int:
    """Mean gain over seeds per case and variant, ratio to the reference variant."""
    rows: dict[tuple[str, str, str, int], dict] = {}
    for name in files:
        for line in Path(name).read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                # a run repeated in several files counts once (the last one read)
                rows[r["image"], r["level"], r["variant"], r["seed"]] = r
    gains: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    secs: dict[str, list[float]] = defaultdict(list)
    for r in rows.values():
        gains[r["image"], r["level"], r["variant"]].append(r["psnr"] - r["bicubic"])
        secs[r["variant"]].append(r["seconds"])
    variants = sorted({k[2] for k in gains}, key=lambda v: (v != reference, v))
    cases = sorted({k[:2] for k in gains}, key=lambda c: (c[1], c[0]))
    head = ["image", "SNR"] + [f"`{v}`" for v in variants]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    floor: dict[str, float] = {}
    for case in cases:
        ref = gains.get((*case, reference), [])
        cells = []
        for v in variants:
            g = gains.get((*case, v))
            if not g:
                cells.append("")
                continue
            cell = f"{np.mean(g):+.2f}" + (f" ±{np.std(g):.2f}" if len(g) > 1 else "")
            if ref and v != reference and np.mean(ref) > 0:
                ratio = np.mean(g) / np.mean(ref)
                floor[v] = min(floor.get(v, np.inf), ratio)
                cell += f" ({100 * ratio:.0f}%)"
            cells.append(cell)
        print(f"| {case[0]} | {case[1].split()[0]} | " + " | ".join(cells) + " |")
    for level in [*sorted({c[1] for c in cases}), "all"]:
        cells = []
        for v in variants:
            rows = [c for c in cases if level in ("all", c[1]) and gains.get((*c, v))]
            total = sum(np.mean(gains[(*c, v)]) for c in rows)
            cell = f"{total:+.2f}"
            ref_rows = [c for c in rows if gains.get((*c, reference))]
            if v != reference and ref_rows and len(ref_rows) == len(rows):
                ref_total = sum(np.mean(gains[(*c, reference)]) for c in rows)
                cell += f" ({100 * total / ref_total:.0f}%)"
            cells.append(cell)
        label = "**sum**, all" if level == "all" else f"**sum**, {level.split()[0]}"
        print(f"| {label} | | " + " | ".join(cells) + " |")
    print()
    for v in variants:
        low = f", lowest ratio {100 * floor[v]:.0f}%" if v in floor else ""
        print(f"- `{v}`: {np.mean(secs[v]):.1f} s per run (mean of {len(secs[v])}){low}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", help="comma-separated image names")
    p.add_argument("--variants", help="';'-separated preset[:field=value,...]")
    p.add_argument(
        "--level", default="high SNR", help="a noise level, several ';'-separated, or 'both'"
    )
    p.add_argument("--seeds", default="0", help="comma-separated training seeds")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", help="append one JSON line per run to this file")
    p.add_argument("--summary", nargs="+", metavar="FILE", help="summarise JSON-line files")
    p.add_argument("--reference", default="balanced", help="variant the ratios refer to")
    args = p.parse_args(argv)
    if args.summary:
        return summary(args.summary, args.reference)
    if not (args.images and args.variants):
        p.error("--images and --variants are needed (or --summary)")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
