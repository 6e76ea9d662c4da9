"""Fast preset against balanced with a wide PSF: variants of a preset on microscopy PSF cases.

Uses the microscopy benchmark's simulation (``benchmarks/microscopy.py``: widefield PSF, pixel
integration, Poisson-Gaussian noise, x2) and its ZSSR kernel, with the noise on the sons
estimated (the default). Prints PSNR, the gain over bicubic, seconds and iterations of each
variant. Run from the repository root::

    python benchmarks/fast_psf.py --images "BPAE nuclei" \\
        --variants "fast;fast:crop_size=96,max_iters=222,min_iters=128;balanced"

A variant is a preset name, optionally followed by ``:`` and ``field=value`` overrides of its
configuration (Python literals, comma-separated).
"""

from __future__ import annotations

import argparse
import ast
import sys
import time
import warnings
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", required=True, help="comma-separated image names")
    p.add_argument("--variants", required=True, help="';'-separated preset[:field=value,...]")
    p.add_argument("--level", default="high SNR", choices=list(mb.NOISE_LEVELS))
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    import torch

    from napari_zssr import resolve_config, super_resolve

    torch.set_num_threads(args.threads)
    images = mb.load_images(mb.DEFAULT_DATA, False)
    names = [n.strip() for n in args.images.split(",")]
    psf, kern = mb.true_psf(), mb.zssr_kernel()
    j = list(mb.NOISE_LEVELS).index(args.level)
    peak, read = mb.NOISE_LEVELS[args.level]
    for i, im in enumerate(images):
        if im.name not in names:
            continue
        # the same noise draw as benchmarks/microscopy.py (seed 0)
        counts = mb.add_noise(
            mb.acquire(im.gt, psf), peak, read, np.random.default_rng(100 * i + j)
        )
        bic = mb.metrics(im.gt, mb.bicubic(mb.to_signal(counts, peak), 2), 2)[0]
        print(f"{im.name} {args.level} bicubic {bic:.2f}", flush=True)
        for text in args.variants.split(";"):
            preset, fields = _variant(text)
            cfg = resolve_config(preset).replace(**fields)
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out, info = super_resolve(
                    counts, 2, kernel=kern.kernel, config=cfg, preset=preset, return_info=True
                )
            psnr = mb.metrics(im.gt, mb.to_signal(out, peak), 2)[0]
            print(
                f"  {text:50s} {psnr:.2f} gain {psnr - bic:+.2f}  "
                f"{time.perf_counter() - t0:5.1f}s it={info['iterations']}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
