"""Stopping rules of the consistency step, compared from the same network outputs.

For each held-out case of ``benchmarks/deconvolution.py`` (the true PSF, ``fast``), the
network is trained once with the consistency step off (``consistency_iters=0``).
Richardson-Lucy with the PSF is then run from its output, and the table gives the PSNR at the
iteration count each rule chooses:

- ``best``: the count with the highest PSNR, chosen with the ground truth (an upper bound no
  rule can beat);
- ``discrepancy``: Morozov's discrepancy principle, the first count whose mean squared
  residual over the input's noise variance is at most 1 (the step's rule before; an update
  that raised the residual ended it);
- ``risk``: the shipped step (:func:`napari_zssr.core.consistency.consistency_step`, the count
  of lowest estimated risk).

Both rules read the input's noise model as the package fits it, and again with that
variance scaled by each ``--noise-factors`` value, to show how much a noise level read too
low or too high moves each rule's result. Expect about 40 s per case and seed on a 2-core
CPU (the training), against well under a second for the rules.

Usage: ``PYTHONPATH=$PWD/src OMP_NUM_THREADS=1 python benchmarks/consistency_stop.py
[--psfs widefield,confocal] [--photons 400,100] [--images 1,2] [--seeds 0]``
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import deconvolution as dc
import microscopy as mic

#: Richardson-Lucy counts the discrepancy rule and the best count are searched over (the
#: step's own cap, ``consistency_iters`` of the presets).
COUNTS = 20


def network_output(counts: np.ndarray, kern: np.ndarray, seed: int) -> np.ndarray:
    """The `fast` preset's output with the true PSF and the consistency step off."""
    from napari_zssr import super_resolve
    from napari_zssr.core.config import PRESETS

    cfg = PRESETS["fast"].replace(consistency_iters=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(
            super_resolve(counts, dc.SCALE, config=cfg, kernel=kern, device="cpu", seed=seed),
            dtype=np.float64,
        )


def rules(
    counts: np.ndarray, out: np.ndarray, kern: np.ndarray, gt: np.ndarray, peak: float,
    factors: list[float],
) -> dict[str, Any]:  # fmt: skip
    """PSNR (dB) and count of each rule on one network output, for each noise factor."""
    import torch

    from napari_zssr.arrays.intensity import normalise_intensity, normalise_plane, restore_plane
    from napari_zssr.core.consistency import consistency_step, input_noise_model
    from napari_zssr.core.inference import degrade
    from napari_zssr.core.kernels import prepare_kernel

    lr_n, info = normalise_intensity(counts)
    y = torch.tensor(np.asarray(lr_n, dtype=np.float32)[None])
    # the output in the engine's unit: planes are (C, Y, X); restoring rounds to the input's
    # dtype, as a run's output is
    x0 = torch.tensor(np.asarray(normalise_plane(out[None], info), dtype=np.float32))
    scale = (float(dc.SCALE), float(dc.SCALE))
    dk = prepare_kernel(kern, scale)
    ((gain, offset),) = input_noise_model(y)

    def psnr(x: torch.Tensor) -> float:
        restored = restore_plane(x.clamp(0.0, 1.0).numpy(), info)[0]
        return float(mic.metrics(gt, mic.to_signal(restored, peak), dc.SHAVE)[0])

    def forward(z: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return degrade(z, scale, dk, y.shape[-2:], fft=True)

    def adjoint(r: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            z = torch.zeros_like(x0, requires_grad=True)
            (grad,) = torch.autograd.grad(degrade(z, scale, dk, y.shape[-2:], fft=True), z, r)
        return grad

    # one Richardson-Lucy chain from the network's output, the same update as the step's
    chain, fits = [x0], [forward(x0)]
    norm = adjoint(torch.ones_like(y)).clamp_min(1e-4)
    x = x0.clamp_min(1e-4)
    for _ in range(COUNTS):
        x = x * adjoint(y.clamp_min(1e-4) / forward(x).clamp_min(1e-4)) / norm
        chain.append(x)
        fits.append(forward(x))
    curve = [psnr(c) for c in chain]
    best = int(np.argmax(curve))
    row: dict[str, Any] = {"best": [best, curve[best]], "start": curve[0]}
    for f in factors:
        g, o = gain * f, offset * f

        def discrepancy(ax: torch.Tensor, g: float = g, o: float = o) -> float:
            var = (g * ax.clamp_min(0.0) + o).clamp_min(1e-8)
            return float(((y - ax) ** 2 / var).mean())

        d = [discrepancy(a) for a in fits]
        n = 0
        while n < COUNTS and d[n] > 1.0 and math.isfinite(d[n + 1]) and d[n + 1] < d[n]:
            n += 1
        stepped, rec = consistency_step(x0, y, scale, dk, max_iters=COUNTS, noise=[(g, o)])
        row[f"discrepancy x{f:g}"] = [n, curve[n]]
        row[f"risk x{f:g}"] = [int(rec["iterations"][0]), psnr(stepped)]
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    dc.add_case_arguments(p)  # the same cases and noise draws as deconvolution.py
    p.add_argument("--seeds", default="0", help="network seeds, comma-separated")
    p.add_argument(
        "--noise-factors",
        default="1,0.8,1.25",
        help="scale the fitted noise variance by each (a noise level read low or high)",
    )
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    factors = [float(v) for v in args.noise_factors.split(",")]
    rows = []
    for name, gt, kind, peak, noise_seed in dc.held_out_cases(args):
        psf_hr, _, kern = dc.psfs(kind)
        _, counts = dc.simulate(gt, psf_hr, peak, noise_seed)
        for seed in (int(v) for v in args.seeds.split(",")):
            out = network_output(counts, kern, seed)
            row = {"image": name.split(" (")[0], "psf": kind, "photons": peak}
            row.update(seed=seed, **rules(counts, out, kern, gt, peak, factors))
            rows.append(row)
            cells = "  ".join(
                f"{k} {v[0]}:{v[1]:.2f}" for k, v in row.items() if isinstance(v, list)
            )
            print(f"{row['image']:9s} {kind:9s} {peak:4g} seed {seed}  {cells}", flush=True)
    keys = [k for k, v in rows[0].items() if isinstance(v, list)]
    print("\n| image | PSF | photons | seed | " + " | ".join(keys) + " |")
    print("|---|---|---|---|" + "---|" * len(keys))
    for r in rows:
        cells = " | ".join(f"{r[k][1]:.2f} ({r[k][0]})" for k in keys)
        print(f"| {r['image']} | {r['psf']} | {r['photons']:g} | {r['seed']} | {cells} |")
    means = " | ".join(f"**{np.mean([r[k][1] for r in rows]):.2f}**" for k in keys)
    print(f"| **mean** | | | | {means} |")
    short = " | ".join(
        f"{np.mean([r['best'][1] - r[k][1] for r in rows]):.2f} / "
        f"{max(r['best'][1] - r[k][1] for r in rows):.2f}"
        for k in keys
    )
    print(f"| **below best: mean / worst** | | | | {short} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=float), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
