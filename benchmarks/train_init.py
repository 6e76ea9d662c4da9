"""Learn the bundled initialisation (``napari_zssr/data/zssr_init.safetensors``) from synthetic
scenes only: nothing is downloaded and no image licence travels with the weights.

Recipe (plain multi-task pre-training; run by hand, not by CI or the tests):

* Scenes, procedural and microscopy-like, ``SCENE`` px square: Gaussian spots, filaments
  (smooth random curves), membranes (Voronoi cell boundaries), nuclei (textured ellipses),
  dense textures (1/f^beta noise) and dead leaves (discs of power-law radii). A third of
  them are the sum of two kinds. Each gets a random gamma and background, half of them a
  small blur of their own (an input is never sharper than its optics), and is scaled to
  [0, 1] as the engine scales an input.
* Degradations, one per training pair: MATLAB bicubic; isotropic and anisotropic (rotated)
  Gaussian kernels; widefield-like (Gaussian core plus a faint wide halo) and confocal-like
  (narrower core) PSF kernels of several widths; factors 2, 2.5, 3, 3.5 and 4.
* Noise as the estimator reports it: none for a third of the pairs, else Gaussian or
  Poisson-Gaussian with a root-mean-square level up to 0.05 of the range, on the father too
  (a noisy input) and on the son (the engine's noise on sons).
* Pairs are made exactly as the engine makes them at training time
  (:meth:`napari_zssr.core.engine.PreparedRun.training_pair`): the father crop is degraded
  with :func:`napari_zssr.core.inference.degrade` (the engine's kernel or bicubic model), the
  son gets :func:`napari_zssr.core.engine.son_noise` and is upscaled back with
  :func:`napari_zssr.core.resize.imresize`; the network (:class:`ZSSRNet`, residual) learns
  son -> father with the L1 loss and Adam, as ZSSR does, on 64 x 64 crops (``fast``'s) cut
  with a context margin.

Usage (from the repository root; one thread by default)::

    PYTHONPATH=$PWD/src python benchmarks/train_init.py --steps 3000

It prints a learning curve (the held-out L1 loss and the gain in PSNR over the son upscaled
by bicubic, on a fixed validation set drawn from another seed), writes the weights and the
model card next to them, and prints the file's SHA-256, which goes into
:data:`napari_zssr.core.init_weights.BUNDLED_SHA256`.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage
from scipy.spatial import cKDTree

from napari_zssr.core.config import ZSSRConfig
from napari_zssr.core.engine import son_noise
from napari_zssr.core.inference import degrade
from napari_zssr.core.kernels import prepare_kernel
from napari_zssr.core.network import ZSSRNet, preferred_memory_format
from napari_zssr.core.resize import imresize
from napari_zssr.core.sampling import crop_shape

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "src" / "napari_zssr" / "data" / "zssr_init.safetensors"
SCENE = 160
CROP = 64
MARGIN = 12
SCALES = (2.0, 2.0, 2.0, 2.5, 3.0, 3.5, 4.0)
KINDS = ("spots", "filaments", "membranes", "nuclei", "texture", "dead_leaves")


# --------------------------------------------------------------------------------------------
# scenes
# --------------------------------------------------------------------------------------------
def _spots(n: int, rng: np.random.Generator) -> np.ndarray:
    img = np.zeros((n, n))
    k = int(rng.integers(10, 400))
    ys, xs = rng.integers(0, n, k), rng.integers(0, n, k)
    np.add.at(img, (ys, xs), rng.lognormal(0.0, 0.5, k))
    return ndimage.gaussian_filter(img, rng.uniform(0.6, 3.0))


def _filaments(n: int, rng: np.random.Generator) -> np.ndarray:
    img = np.zeros((n, n))
    for _ in range(int(rng.integers(3, 40))):
        steps = int(rng.integers(50, 6 * n))
        turn = rng.normal(0.0, rng.uniform(0.01, 0.15), steps).cumsum()
        angle = rng.uniform(0, 2 * np.pi) + turn
        y = rng.uniform(0, n) + np.cumsum(0.5 * np.sin(angle))
        x = rng.uniform(0, n) + np.cumsum(0.5 * np.cos(angle))
        keep = (y >= 0) & (y < n) & (x >= 0) & (x < n)
        np.add.at(img, (y[keep].astype(int), x[keep].astype(int)), rng.uniform(0.3, 1.0))
    img = np.minimum(img, np.quantile(img[img > 0], 0.9) if img.any() else 1.0)
    return ndimage.gaussian_filter(img, rng.uniform(0.5, 2.0))


def _membranes(n: int, rng: np.random.Generator) -> np.ndarray:
    seeds = rng.uniform(0, n, (int(rng.integers(4, 60)), 2))
    yy, xx = np.mgrid[0:n, 0:n]
    d, _ = cKDTree(seeds).query(np.c_[yy.ravel(), xx.ravel()], k=2)
    gap = (d[:, 1] - d[:, 0]).reshape(n, n)
    width = rng.uniform(0.6, 3.0)
    img = np.exp(-0.5 * (gap / width) ** 2)
    return img * (1 + 0.3 * _smooth_noise(n, rng, 8.0))


def _nuclei(n: int, rng: np.random.Generator) -> np.ndarray:
    img = np.zeros((n, n))
    yy, xx = np.mgrid[0:n, 0:n]
    for _ in range(int(rng.integers(1, 15))):
        cy, cx = rng.uniform(0, n, 2)
        a, b = rng.uniform(6, n / 3, 2)
        t = rng.uniform(0, np.pi)
        u = ((yy - cy) * np.cos(t) + (xx - cx) * np.sin(t)) / a
        v = (-(yy - cy) * np.sin(t) + (xx - cx) * np.cos(t)) / b
        inside = 1 / (1 + np.exp(np.minimum((np.hypot(u, v) - 1) * rng.uniform(8, 40), 50)))
        img = np.maximum(img, inside * rng.uniform(0.3, 1.0))
    texture = 1 + rng.uniform(0.1, 0.6) * _smooth_noise(n, rng, rng.uniform(1.0, 4.0))
    return img * texture


def _texture(n: int, rng: np.random.Generator) -> np.ndarray:
    beta = rng.uniform(1.0, 3.0)
    fy, fx = np.fft.fftfreq(n)[:, None], np.fft.fftfreq(n)[None, :]
    f = np.hypot(fy, fx)
    f[0, 0] = 1.0
    spec = (rng.normal(size=(n, n)) + 1j * rng.normal(size=(n, n))) / f ** (beta / 2)
    img = np.fft.ifft2(spec).real
    if rng.random() < 0.4:  # a structured texture: level sets
        img = np.abs(np.sin(img / img.std() * rng.uniform(1, 4)))
    return img


def _dead_leaves(n: int, rng: np.random.Generator) -> np.ndarray:
    img = np.full((n, n), rng.random())
    yy, xx = np.mgrid[0:n, 0:n]
    rmin, rmax = 1.0, n / 3
    for _ in range(int(rng.integers(100, 600))):
        # radius density ~ r^-3 between rmin and rmax (inverse transform of its CDF)
        u = rng.random()
        r = 1 / math.sqrt(u / rmax**2 + (1 - u) / rmin**2)
        cy, cx = rng.uniform(-r, n + r, 2)
        y0, y1 = max(int(cy - r), 0), min(int(cy + r) + 2, n)
        x0, x1 = max(int(cx - r), 0), min(int(cx + r) + 2, n)
        if y0 >= y1 or x0 >= x1:
            continue
        disc = (yy[y0:y1, x0:x1] - cy) ** 2 + (xx[y0:y1, x0:x1] - cx) ** 2 <= r * r
        img[y0:y1, x0:x1][disc] = rng.random()
    return img


def _smooth_noise(n: int, rng: np.random.Generator, sigma: float) -> np.ndarray:
    z = ndimage.gaussian_filter(rng.normal(size=(n, n)), sigma)
    return z / (z.std() + 1e-12)


MAKERS = {
    "spots": _spots,
    "filaments": _filaments,
    "membranes": _membranes,
    "nuclei": _nuclei,
    "texture": _texture,
    "dead_leaves": _dead_leaves,
}


def _unit(img: np.ndarray) -> np.ndarray:
    lo, hi = float(img.min()), float(img.max())
    return (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)


def scene(rng: np.random.Generator, n: int = SCENE) -> np.ndarray:
    """One random scene in [0, 1], float32 ``(n, n)``."""
    kinds = rng.choice(len(KINDS), 2 if rng.random() < 1 / 3 else 1, replace=False)
    img = sum(rng.uniform(0.3, 1.0) * _unit(MAKERS[KINDS[k]](n, rng)) for k in kinds)
    img = _unit(img) ** rng.uniform(0.5, 2.0)
    if rng.random() < 0.5:
        img = ndimage.gaussian_filter(img, rng.uniform(0.3, 1.2))
    img = rng.uniform(0.0, 0.3) + img
    return _unit(img).astype(np.float32)


# --------------------------------------------------------------------------------------------
# degradations
# --------------------------------------------------------------------------------------------
def _gauss(sy: float, sx: float, theta: float, size: int) -> np.ndarray:
    r = np.arange(size) - (size - 1) / 2
    yy, xx = np.meshgrid(r, r, indexing="ij")
    u = yy * np.cos(theta) + xx * np.sin(theta)
    v = -yy * np.sin(theta) + xx * np.cos(theta)
    return np.exp(-0.5 * ((u / sy) ** 2 + (v / sx) ** 2))


def kernel_for(s: float, rng: np.random.Generator) -> tuple[str, np.ndarray | None]:
    """A random downscaling kernel on the HR grid for factor ``s`` (None: bicubic)."""
    kind = rng.choice(
        ["bicubic", "gaussian", "anisotropic", "widefield", "confocal"],
        p=[0.3, 0.2, 0.15, 0.2, 0.15],
    )
    if kind == "bicubic":
        return kind, None
    if kind == "gaussian":
        sy = sx = s * rng.uniform(0.3, 0.9)
        theta = 0.0
    elif kind == "anisotropic":
        sy, sx = s * rng.uniform(0.25, 0.9, 2)
        theta = rng.uniform(0, np.pi)
    elif kind == "widefield":
        sy = sx = s * rng.uniform(0.45, 1.0)
        theta = 0.0
    else:
        sy = sx = s * rng.uniform(0.3, 0.6)
        theta = 0.0
    size = 2 * math.ceil(3.5 * max(sy, sx)) + 1
    if kind == "widefield":  # a faint, wide halo around the core, as an Airy pattern's rings
        size = 2 * math.ceil(6 * sy) + 1
        k = _gauss(sy, sx, 0, size) + rng.uniform(0.01, 0.04) * _gauss(3 * sy, 3 * sx, 0, size)
    else:
        k = _gauss(sy, sx, theta, size)
    return str(kind), k / k.sum()


def noise_config(rng: np.random.Generator) -> ZSSRConfig:
    """The noise of one pair, as the estimator would report it for a noisy input."""
    if rng.random() < 1 / 3:
        return ZSSRConfig(noise_std=0.0)
    std = float(np.exp(rng.uniform(np.log(0.003), np.log(0.05))))
    if rng.random() < 0.5:
        return ZSSRConfig(noise_std=std)
    share = rng.uniform(0.3, 1.0)  # of the variance that is photon noise at mid intensity
    return ZSSRConfig(
        noise_std=std,
        noise_model="poisson-gaussian",
        noise_gain=2 * share * std**2,
        noise_offset=(1 - share) * std**2,
    )


def training_pair(
    img: np.ndarray, rng: np.random.Generator, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """One (network input, father) pair of ``CROP`` x ``CROP``, made as the engine makes it."""
    s = float(rng.choice(SCALES))
    cut = crop_shape(CROP + 2 * MARGIN + 8, (s, s), img.shape)
    y0 = int(rng.integers(0, img.shape[0] - cut[0] + 1))
    x0 = int(rng.integers(0, img.shape[1] - cut[1] + 1))
    hr = np.ascontiguousarray(
        np.rot90(img[y0 : y0 + cut[0], x0 : x0 + cut[1]], int(rng.integers(4)))
    )
    father = torch.from_numpy(hr.copy())[None, None]
    _, k = kernel_for(s, rng)
    dk = None if k is None else prepare_kernel(k, (s, s), cut)
    cfg = noise_config(rng)
    if cfg.noise_std > 0:  # the input itself is noisy: so is every father cut from it
        father = son_noise(father, cfg, gen).clamp(max=1.0)
    son = son_noise(degrade(father, (s, s), dk), cfg, gen)
    inp = imresize(son, (s, s), father.shape[-2:])
    cy, cx = (cut[0] - CROP) // 2, (cut[1] - CROP) // 2
    return inp[0, :, cy : cy + CROP, cx : cx + CROP], father[0, :, cy : cy + CROP, cx : cx + CROP]


def batch(pool: list[np.ndarray], n: int, rng: np.random.Generator, gen: torch.Generator):
    pairs = [training_pair(pool[int(rng.integers(len(pool)))], rng, gen) for _ in range(n)]
    return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])


# --------------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------------
def _psnr_gain(net: ZSSRNet, inp: torch.Tensor, hr: torch.Tensor) -> tuple[float, float]:
    with torch.inference_mode():
        out = net(inp).clamp(0, 1)
    l1 = float((out - hr).abs().mean())
    mse_out = ((out - hr) ** 2).mean(dim=(1, 2, 3)).clamp(min=1e-10)
    mse_in = ((inp.clamp(0, 1) - hr) ** 2).mean(dim=(1, 2, 3)).clamp(min=1e-10)
    return l1, float((10 * torch.log10(mse_in / mse_out)).mean())


def train(args: argparse.Namespace) -> tuple[ZSSRNet, list[tuple[int, float, float, float]]]:
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    gen = torch.Generator().manual_seed(args.seed + 1)
    vrng = np.random.default_rng(args.seed + 1000)
    vgen = torch.Generator().manual_seed(args.seed + 1001)
    vpool = [scene(vrng) for _ in range(32)]
    v_inp, v_hr = batch(vpool, 64, vrng, vgen)
    pool = [scene(rng) for _ in range(args.pool)]
    net = ZSSRNet(1, args.width, args.depth, generator=torch.Generator().manual_seed(args.seed))
    if args.resume:  # continue from earlier weights (a longer pre-training in two sittings)
        from safetensors.torch import load_file

        net.load_state_dict(load_file(args.resume))
    net = net.to(memory_format=preferred_memory_format(torch.device("cpu")))
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    curve = []
    t0 = time.perf_counter()
    l1, gain = _psnr_gain(net.eval(), v_inp, v_hr)
    curve.append((0, l1, gain, 0.0))
    print(f"step     0  val L1 {l1:.5f}  gain over bicubic {gain:+.3f} dB", flush=True)
    for step in range(1, args.steps + 1):
        if step % args.refresh_every == 0:  # new scenes replace the oldest ones
            del pool[: args.refresh]
            pool += [scene(rng) for _ in range(args.refresh)]
        lr = args.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / args.steps)))
        for g in opt.param_groups:
            g["lr"] = lr
        inp, hr = batch(pool, args.batch, rng, gen)
        net.train()
        loss = (net(inp) - hr).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % args.eval_every == 0 or step == args.steps:
            l1, gain = _psnr_gain(net.eval(), v_inp, v_hr)
            el = time.perf_counter() - t0
            curve.append((step, l1, gain, el))
            print(
                f"step {step:5d}  val L1 {l1:.5f}  gain over bicubic {gain:+.3f} dB  "
                f"lr {lr:.1e}  {el:6.0f} s",
                flush=True,
            )
            if step % (4 * args.eval_every) == 0:
                save(net, args, curve, el, partial=True)
    return net, curve


def save(
    net: ZSSRNet, args: argparse.Namespace, curve: list, seconds: float, partial: bool = False
) -> str:
    """Write the weights (safetensors, with the recipe in the header) and the model card."""
    from safetensors.numpy import save_file

    weights = {
        k: v.detach().float().contiguous().numpy().copy() for k, v in net.state_dict().items()
    }
    meta = {
        "format": "napari-zssr bundled initialisation",
        "channels": "1",
        "width": str(args.width),
        "depth": str(args.depth),
        "seed": str(args.seed),
        "steps": str(curve[-1][0]),
        "recipe": "benchmarks/train_init.py",
    }
    out = Path(args.out)
    save_file(weights, str(out), metadata=meta)
    out.chmod(0o644)  # package data: readable by every user of an installed copy
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    card = model_card(args, curve, seconds, digest, out.stat().st_size, partial)
    out.with_suffix(".md").write_text(card, encoding="utf-8")
    return digest


def model_card(args, curve, seconds, digest, size, partial) -> str:
    rows = "\n".join(f"| {s} | {l1:.5f} | {g:+.3f} | {t:.0f} |" for s, l1, g, t in curve)
    cmd = "PYTHONPATH=$PWD/src python benchmarks/train_init.py " + shlex.join(args.argv)
    resumed, earlier = "", ""
    if args.resume:
        start = Path(args.resume)
        digest_start = hashlib.sha256(start.read_bytes()).hexdigest()
        resumed = (
            f"- Continued from `{start.name}` (SHA-256 `{digest_start}`, its card below); the "
            "steps and the learning curve here are this sitting's\n"
        )
        card = start.with_suffix(".md")
        if card.exists():  # the earlier sittings' cards, nested, so the whole history stays
            text = card.read_text(encoding="utf-8").replace("\n## ", "\n#### ")
            earlier = "\n## Earlier sitting: " + text.removeprefix("# ")
    return f"""# zssr_init.safetensors: the bundled initialisation of napari-zssr

{"**Partial checkpoint (training still running).**" if partial else ""}

A single-channel ZSSR network (depth {args.depth}, width {args.width}, 3x3 convolutions
without bias, global residual) pre-trained on synthetic scenes only, the start of every new
network when `ZSSRConfig.init == "bundled"`.

- SHA-256: `{digest}` ({size} bytes)
- Command: `{cmd}`
{resumed}- Seed: {args.seed}; steps: {curve[-1][0]}; batch: {args.batch} crops of {CROP} x {CROP};
  Adam, lr {args.lr:g} with a cosine decay to 5% of it; L1 loss
- Training time: {seconds:.0f} s on {platform.processor() or platform.machine()},
  {torch.get_num_threads()} torch thread(s), torch {torch.__version__}
- Data recipe: procedural scenes ({", ".join(KINDS)}; a third of them the sum of two kinds),
  random gamma, background and own blur; kernels: MATLAB bicubic, isotropic and anisotropic
  Gaussians, widefield-like (core plus faint halo) and confocal-like PSFs; factors
  {sorted(set(SCALES))}; noise none, Gaussian or Poisson-Gaussian up to 0.05 of the range on
  father and son. No external image: no image licence applies to these weights.
- Measured on: see docs/benchmarks.md, "Bundled initialisation".

## Learning curve (validation: 64 pairs drawn with seed + 1000, one set per sitting)

| step | validation L1 | PSNR gain over the bicubic-upscaled son (dB) | seconds |
|---:|---:|---:|---:|
{rows}
{earlier}"""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--depth", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pool", type=int, default=128)
    p.add_argument("--refresh", type=int, default=8)
    p.add_argument("--refresh-every", type=int, default=50)
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(OUT))
    p.add_argument("--resume", default=None, help="start from these weights (safetensors)")
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    net, curve = train(args)
    seconds = time.perf_counter() - t0
    digest = save(net, args, curve, seconds)
    print(f"wrote {args.out} in {seconds:.0f} s; SHA-256 {digest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
