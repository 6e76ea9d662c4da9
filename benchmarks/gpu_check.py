"""Checks and timings of the engine on a GPU: what the CPU test suite cannot cover.

Prints one table row per check (``ok`` or ``FAIL`` with the measured numbers) and exits
with status 1 if a check fails:

* host synchronisations per training iteration (``torch.cuda.set_sync_debug_mode``);
* one training iteration of the engine's loop (sampling, degradation, network, Adam), with
  and without the CUDA graph, in float32 and under bfloat16 autocast, next to the network
  step alone;
* the same short ZSSR run on the GPU and on the CPU: PSNR of each against the ground truth;
* tiled against whole-image inference (within 1e-4) and the peak GPU memory of each;
* the public API on the GPU: a uint16 stack keeps its shape, dtype and input; cancellation;
* networks trained together (``napari_zssr.core.batched``): the batched step is captured in a
  CUDA graph and its replays equal eager steps, the networks of a batch end as separate runs
  do, and the time of one step for 1 to 32 networks (per network).

The throughput and quality targets of batched training are measured by
``benchmarks/batch_bench.py`` (``gpu_suite.sh`` steps ``batch-*``).

Run from the repository root on a machine with a GPU::

    python benchmarks/gpu_check.py [--device cuda] [--checks check_batched,...]

``--device cpu --checks check_batched --smoke`` runs the batched check on the CPU at tiny
sizes (the graph part is skipped there): a test of the script, not a measurement.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np
import torch

try:  # run as a script from benchmarks/ (its folder is on sys.path)
    from _metrics import psnr, shave
except ImportError:  # imported as benchmarks.gpu_check from the repository root
    from benchmarks._metrics import psnr, shave
from napari_zssr import PRESETS, Cancelled, Progress, ZSSRConfig, super_resolve
from napari_zssr.core.batched import BatchedStep, FitJob, StackedNets, fit_many
from napari_zssr.core.engine import fit
from napari_zssr.core.inference import forward_tiled
from napari_zssr.core.network import ZSSRNet
from napari_zssr.core.resize import imresize
from napari_zssr.core.train_step import TrainStep

ROWS: list[tuple[str, bool, str]] = []


def _row(name: str, ok: bool, detail: str) -> None:
    ROWS.append((name, ok, detail))
    print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}", flush=True)


def test_image(side: int = 192, seed: int = 0) -> np.ndarray:
    """A structured grayscale image in [0, 1]: edges, rings and texture at several scales."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:side, 0:side] / side
    img = 0.5 + 0.25 * np.sin(40 * np.hypot(y - 0.4, x - 0.6) ** 1.5)
    img += 0.2 * ((x + 0.3 * y) % 0.25 < 0.12)
    img += 0.05 * rng.standard_normal((side, side)).cumsum(0).cumsum(1) / side
    img = (img - img.min()) / (img.max() - img.min())
    return img.astype(np.float32)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR of two [0, 1] images, 2 px shaved from each border (the scale)."""
    return psnr(shave(a, 2), shave(b, 2), peak=1.0)


def _count_syncs(img: np.ndarray, cfg: ZSSRConfig, dev: torch.device) -> int:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            fit([img], 2, config=cfg, device=dev, seed=1)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchronizing" in str(w.message) for w in caught)


def check_syncs(dev: torch.device) -> None:
    """Host syncs per training iteration: a 400- minus a 200-iteration run (same set-up)."""
    img = test_image(256)
    cfg = PRESETS["paper"].replace(
        max_iters=200, min_iters=400, eval_every=100, report_every=100, lr_check_every=100
    )
    fit([img], 2, config=cfg.replace(max_iters=20), device=dev)  # caches and cuDNN warm
    short = _count_syncs(img, cfg, dev)
    long = _count_syncs(img, cfg.replace(max_iters=400), dev)
    # 200 more iterations add 2 evaluations and 2 progress reports (one .item() each);
    # a sync in every iteration would add 200.
    _row(
        "host syncs of 200 more training iterations",
        long - short <= 6,
        f"{long - short} (4 expected: 2 evaluations, 2 progress reports); "
        f"{short} in a whole 200-iteration fit",
    )


def check_iteration_time(dev: torch.device) -> None:
    """Seconds per training iteration of the engine's loop at crop 128 (the paper preset)."""
    img = test_image(256)
    for name, amp, graphs in (
        ("float32, CUDA graph", False, True),
        ("float32, eager", False, False),
        ("bfloat16 autocast, CUDA graph", True, True),
    ):
        cfg = PRESETS["paper"].replace(
            max_iters=300,
            min_iters=300,
            eval_every=300,
            report_every=300,
            mixed_precision=amp,
            cuda_graphs=graphs,
        )
        fit([img], 2, config=cfg.replace(max_iters=20), device=dev)
        torch.cuda.synchronize(dev)
        t0 = time.perf_counter()
        fit([img], 2, config=cfg, device=dev)
        torch.cuda.synchronize(dev)
        per_it = (time.perf_counter() - t0) / cfg.max_iters
        _row(f"engine training iteration, crop 128, {name}", True, f"{1e3 * per_it:.2f} ms")
    net = ZSSRNet(1, 64, 8).to(dev)
    step = TrainStep(net, 1e-3, cuda_graph=True)
    x = torch.rand(1, 1, 128, 128, device=dev)
    for i in range(320):
        if i == 20:
            torch.cuda.synchronize(dev)
            t0 = time.perf_counter()
        step(x, x)
    torch.cuda.synchronize(dev)
    bare = (time.perf_counter() - t0) / 300
    _row(
        "network step alone (forward, backward, Adam), crop 128, CUDA graph",
        step.graphed,
        f"{1e3 * bare:.2f} ms",
    )


def check_cpu_agreement(dev: torch.device) -> None:
    """A short run on both devices reaches the same quality (float rounding differs)."""
    hr = test_image(192, seed=3)
    lr = imresize(torch.from_numpy(hr)[None], 0.5)[0].numpy()
    cfg = PRESETS["fast"].replace(max_iters=150, min_iters=150)
    bic = imresize(torch.from_numpy(lr)[None], 2.0, hr.shape)[0].numpy().clip(0, 1)
    res = {}
    for name in ("cpu", str(dev)):
        t0 = time.perf_counter()
        res[name] = super_resolve(lr, 2, config=cfg, device=name, seed=0)
        print(f"     {name}: {time.perf_counter() - t0:.1f} s", flush=True)
    p_cpu, p_dev = _psnr(res["cpu"], hr), _psnr(res[str(dev)], hr)
    p_bic = _psnr(bic, hr)
    diff = float(np.abs(res["cpu"] - res[str(dev)]).max())
    _row(
        "same run on CPU and GPU",
        abs(p_cpu - p_dev) < 0.3 and p_dev > p_bic,
        f"PSNR cpu {p_cpu:.2f} dB, {dev} {p_dev:.2f} dB, bicubic {p_bic:.2f} dB; "
        f"max |difference| {diff:.3g}",
    )


def check_tiling(dev: torch.device) -> None:
    """Tiled inference equals the whole-image pass; tiles bound the peak memory."""
    gen = torch.Generator().manual_seed(0)
    net = ZSSRNet(3, 64, 8, generator=gen).to(dev).eval()
    x = torch.rand(3, 2048, 2048, generator=gen).to(dev)
    peaks, outs = {}, {}
    with torch.inference_mode():
        for tile in (4096, 512):
            torch.cuda.synchronize(dev)
            torch.cuda.reset_peak_memory_stats(dev)
            base = torch.cuda.memory_allocated(dev)
            outs[tile] = forward_tiled(net, x, tile, 16)
            torch.cuda.synchronize(dev)
            peaks[tile] = (torch.cuda.max_memory_allocated(dev) - base) / 2**20
    diff = float((outs[4096] - outs[512]).abs().max())
    _row(
        "tiled (512) vs whole 2048 x 2048 RGB forward",
        diff <= 1e-4,
        f"max |difference| {diff:.2e}; peak GPU memory {peaks[4096]:.0f} MiB whole, "
        f"{peaks[512]:.0f} MiB tiled",
    )


def check_api(dev: torch.device) -> None:
    """The public API on the GPU: a uint16 stack, its input untouched, and cancellation."""
    rng = np.random.default_rng(0)
    stack = test_image(64)[None].repeat(3, 0) * 40000 + rng.integers(0, 500, (3, 64, 64))
    stack = stack.astype(np.uint16)
    before = stack.copy()
    cfg = PRESETS["fast"].replace(max_iters=40, min_iters=40)
    out = super_resolve(stack, (2, 1.5), config=cfg, device=str(dev))
    ok = out.shape == (3, 128, 96) and out.dtype == np.uint16 and np.array_equal(stack, before)
    _row("uint16 stack, scale (2, 1.5)", ok, f"shape {out.shape}, dtype {out.dtype}")
    seen: list[int] = []

    def stop_at_20(p: Progress) -> bool:
        if p.stage == "train":
            seen.append(p.iteration)
        return p.stage != "train" or p.iteration < 20

    t0 = time.perf_counter()
    try:
        super_resolve(stack[0], 2, preset="paper", device=str(dev), callback=stop_at_20)
        cancelled = False
    except Cancelled:
        cancelled = True
    _row(
        "cancellation from the callback",
        cancelled and seen and max(seen) <= 30,
        f"stopped at iteration {max(seen, default=0)} after {time.perf_counter() - t0:.2f} s",
    )


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def check_batched(dev: torch.device, smoke: bool = False) -> None:
    """Networks trained together: graph capture, agreement with separate runs, step time."""
    side, width, iters = (24, 8, 30) if smoke else (256, 64, 300)
    crop = 16 if smoke else 128
    nets = [ZSSRNet(1, width, 8, generator=torch.Generator().manual_seed(s)) for s in range(4)]
    x = torch.rand(1, 4, crop, crop, device=dev)
    y = (x + 0.05 * torch.rand_like(x)).clamp(0, 1)
    graphed = BatchedStep(StackedNets.from_nets(nets).to(dev), 1e-3, cuda_graph=True)
    eager = BatchedStep(StackedNets.from_nets(nets).to(dev), 1e-3, cuda_graph=False)
    for _ in range(10):
        lg, le = graphed(x, y).clone(), eager(x, y)
    pairs = zip(graphed.net.weights, eager.net.weights)
    diff = max(float((a - b).detach().abs().max()) for a, b in pairs)
    _row(
        "batched step: CUDA graph replays vs eager steps (4 networks, 10 steps)",
        (graphed.graphed or dev.type != "cuda") and diff < 1e-4,
        f"graphed {graphed.graphed}; max |weight difference| {diff:.2e}; "
        f"losses {[round(v, 5) for v in lg.tolist()]} vs {[round(v, 5) for v in le.tolist()]}",
    )
    img = test_image(side, seed=5)
    cfg = PRESETS["paper"].replace(
        max_iters=iters, crop_size=crop, width=width, eval_every=50, report_every=50
    )
    together = fit_many([FitJob([img], cfg, s) for s in range(4)], 2, device=dev)
    alone = [fit([img], 2, config=cfg, device=dev, seed=s) for s in range(4)]
    rel = max(abs(a.final_loss - b.final_loss) / b.final_loss for a, b in zip(together, alone))
    _row(
        "4 networks together vs 4 separate fits (final L1 loss)",
        rel < 0.05 and [a.iterations for a in together] == [b.iterations for b in alone],
        f"largest relative difference {rel:.3%}; iterations "
        f"{[a.iterations for a in together]} vs {[b.iterations for b in alone]}",
    )
    times = []
    for k in (1, 2, 4) if smoke else (1, 4, 8, 16, 32):
        ks = [ZSSRNet(1, width, 8) for _ in range(k)]
        step = BatchedStep(StackedNets.from_nets(ks).to(dev), 1e-3, cuda_graph=True)
        xk = torch.rand(1, k, crop, crop, device=dev)
        n = 5 if smoke else 100
        for i in range(n + 10):
            if i == 10:
                _sync(dev)
                t0 = time.perf_counter()
            step(xk, xk)
        _sync(dev)
        per_step = (time.perf_counter() - t0) / n
        times.append(f"K={k}: {1e3 * per_step:.2f} ms ({1e3 * per_step / k:.2f} ms/network)")
    _row(f"batched step time, crop {crop}, width {width}", True, "; ".join(times))


CHECKS = (check_syncs, check_iteration_time, check_cpu_agreement, check_tiling, check_api)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda", help="a CUDA device (default: cuda)")
    names = [c.__name__ for c in (*CHECKS, check_batched)]
    p.add_argument("--checks", default=",".join(names), help="comma-separated subset")
    p.add_argument("--smoke", action="store_true", help="tiny sizes (check_batched only)")
    args = p.parse_args(argv)
    dev = torch.device(args.device)
    chosen = [c for c in (*CHECKS, check_batched) if c.__name__ in args.checks.split(",")]
    if dev.type == "cpu" and args.smoke and chosen == [check_batched]:
        check_batched(dev, smoke=True)
        return 0 if all(ok for _, ok, _ in ROWS) else 1
    if dev.type != "cuda" or not torch.cuda.is_available():
        print("gpu_check.py needs a CUDA device", file=sys.stderr)
        return 2
    print(
        f"{torch.cuda.get_device_name(dev)}; torch {torch.__version__} (CUDA "
        f"{torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}); "
        f"TF32 convolutions {torch.backends.cudnn.allow_tf32}, "
        f"TF32 matmul {torch.backends.cuda.matmul.allow_tf32}",
        flush=True,
    )
    for check in chosen:
        try:
            check(dev)
        except Exception as exc:  # report and go on: one broken check must not hide the rest
            _row(check.__name__, False, f"{type(exc).__name__}: {exc}")
    print("\n| check | result | measured |\n|---|---|---|")
    for name, ok, detail in ROWS:
        print(f"| {name} | {'ok' if ok else 'FAIL'} | {detail} |")
    return 0 if all(ok for _, ok, _ in ROWS) else 1


if __name__ == "__main__":
    sys.exit(main())
