"""Training a ZSSR network on one image (or one stack) and applying it.

``fit`` trains on HR fathers cut from the given images and ``predict`` upscales an image with
a trained model (:mod:`napari_zssr.core.upscale` chains them, with gradual steps, for one or
several planes). All arrays here are float32 in [0, 1]
(intensity handling lives in :mod:`napari_zssr.arrays.planes`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .config import MAX_SCALE, ZSSRConfig
from .consistency import consistency_step
from .device import resolve_device
from .inference import degrade, quick_output, super_resolve_tensor
from .init_weights import apply_bundled
from .kernels import DownscaleKernel, allowed_transforms, prepare_kernel, son_kernel
from .lr_policy import LRPolicy
from .network import ZSSRNet, preferred_memory_format
from .progress import Cancelled, Progress, ProgressCallback
from .resize import imresize
from .sampling import FatherSampler, FatherSource, context_margin, crop_shape, trim_margin
from .train_step import TrainStep

__all__ = [
    "Reporter",
    "TrainedModel",
    "as_tensor",
    "effective_back_projection",
    "father_crop",
    "finish_noisy",
    "fit",
    "normalise_scale",
    "predict",
    "son_noise",
]

#: Fractions of a step's progress for training (the first) and inference (the rest).
INFER_START, INFER_SHARE = 0.9, 0.1
#: Fewest iterations for which the training step is captured in a CUDA graph.
GRAPH_MIN_ITERS = 100


def normalise_scale(scale: object) -> tuple[float, float]:
    """Validate a scale factor and return it as ``(s_y, s_x)``.

    Raises
    ------
    TypeError
        If ``scale`` is not a number or a pair of numbers.
    ValueError
        If a factor is not finite, below 1, above 16, or both factors are 1.
    """
    if isinstance(scale, (bool, np.bool_, str, bytes)):
        # a string is iterable: "22" must not become (2.0, 2.0)
        raise TypeError(f"scale must be a number or a (scale_y, scale_x) pair, got {scale!r}")
    if isinstance(scale, (int, float, np.integer, np.floating)):
        pair = (float(scale), float(scale))
    else:
        try:
            vals = [float(v) for v in scale]  # type: ignore[union-attr]
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"scale must be a number or a (scale_y, scale_x) pair, got {scale!r}"
            ) from exc
        if len(vals) != 2:
            raise ValueError(f"scale must be one number or two (scale_y, scale_x), got {scale!r}")
        pair = (vals[0], vals[1])
    for s in pair:
        if not math.isfinite(s) or s < 1.0 or s > MAX_SCALE:
            raise ValueError(
                f"scale factors must be finite numbers in [1, {MAX_SCALE:g}], got {scale!r}"
            )
    if pair == (1.0, 1.0):
        raise ValueError("scale must be greater than 1 on at least one axis, got 1")
    return pair


class Reporter:
    """Turns engine events into :class:`Progress` reports and honours cancellation.

    Parameters
    ----------
    callback : callable, optional
        Receives each :class:`Progress`; returning False or raising :class:`Cancelled`
        stops the run.
    n_planes : int
        Number of planes (or plane groups) the run will process.
    snapshots : bool
        Pass on the engine's training snapshots (:attr:`Progress.snapshot`); off by default,
        for callers whose training images are not what their callback expects to see.
    """

    def __init__(
        self,
        callback: ProgressCallback | None = None,
        n_planes: int = 1,
        snapshots: bool = False,
    ) -> None:
        self.callback = callback
        self.snapshots = snapshots
        self.n_planes = max(1, n_planes)
        self.plane = 0
        self.step = 0
        self.n_steps = 1
        #: Planes the current unit of work covers (networks trained together), and which of
        #: them is being inferred: the inference part of a step is shared out among them.
        self.span = 1
        self.member = 0
        self.start = time.perf_counter()
        self.last: Progress | None = None

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def __call__(self, stage: str, within: float, **fields: object) -> None:
        """Report ``stage`` at fraction ``within`` of the current plane's current step."""
        within = min(max(within, 0.0), 1.0)
        if not self.snapshots:
            fields.pop("snapshot", None)
        if stage == "infer" and self.span > 1:
            within = INFER_START + (within - INFER_START + INFER_SHARE * self.member) / self.span
        step_frac = (self.step + within) / self.n_steps
        fraction = (self.plane + self.span * step_frac) / self.n_planes
        prog = Progress(
            stage=stage,
            elapsed=self.elapsed(),
            fraction=min(fraction, 1.0),
            plane=self.plane,
            n_planes=self.n_planes,
            step=self.step,
            n_steps=self.n_steps,
            **fields,  # type: ignore[arg-type]
        )
        self.last = prog
        if self.callback is not None and self.callback(prog) is False:
            raise Cancelled("run cancelled by the progress callback")


@dataclass
class TrainedModel:
    """A network trained for one scale factor and degradation model."""

    net: ZSSRNet
    scale: tuple[float, float]
    kernel: DownscaleKernel | None
    transforms: tuple[tuple[bool, bool, bool], ...]
    config: ZSSRConfig
    device: torch.device
    device_reason: str = ""
    iterations: int = 0
    final_loss: float | None = None
    seconds: float = 0.0
    history: list[tuple[int, float]] = field(default_factory=list)
    full_kernel: DownscaleKernel | None = None
    """The kernel as given, for the consistency step's forward model; ``kernel`` is its
    core, which the sons are made with (:func:`~napari_zssr.core.kernels.son_kernel`).
    None: the same as ``kernel``."""
    consistency: dict[str, Any] = field(default_factory=dict)
    """The last :func:`predict`'s consistency step record (empty when none ran)."""


def as_tensor(img: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    t = img if isinstance(img, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(img))
    if t.ndim == 2:
        t = t[None]
    if t.ndim != 3:
        raise ValueError(f"expected a (C, H, W) or (H, W) image, got shape {tuple(t.shape)}")
    return t.to(device=device, dtype=torch.float32)


def _make_generator(device: torch.device, seed: int) -> torch.Generator:
    try:
        gen = torch.Generator(device=device)
    except RuntimeError:  # a backend without device generators
        gen = torch.Generator()
    gen.manual_seed(int(seed))
    return gen


def _randn_like(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    if gen.device == x.device:
        return torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype)
    return torch.randn(x.shape, generator=gen, dtype=x.dtype).to(x.device)


def _eval_region(img: torch.Tensor, side: int, scale: Sequence[float]) -> torch.Tensor:
    """Central crop (at most ``side``) of an input, for the reconstruction error."""
    h, w = img.shape[-2:]
    cy, cx = crop_shape(min(side, h), scale, (h, w))[0], crop_shape(min(side, w), scale, (h, w))[1]
    y0, x0 = (h - cy) // 2, (w - cx) // 2
    return img[:, y0 : y0 + cy, x0 : x0 + cx]


def add_son_noise(lr_son: torch.Tensor, noise_std: float, gen: torch.Generator) -> torch.Tensor:
    """``lr_son`` plus N(0, noise_std) drawn from ``gen``, clipped at 0 (unchanged for 0)."""
    if noise_std > 0:
        return (lr_son + noise_std * _randn_like(lr_son, gen)).clamp(min=0.0)
    return lr_son


def son_noise(lr_son: torch.Tensor, cfg: ZSSRConfig, gen: torch.Generator) -> torch.Tensor:
    """The configuration's noise on ``lr_son``: Gaussian (:func:`add_son_noise`), or
    Poisson-Gaussian, N(0, gain * I + offset) at the son's clean intensity I (clipped at 0),
    clipped at 0; unchanged when ``noise_std`` is 0. A Poisson-Gaussian configuration without
    a gain or offset (not fitted to an image) falls back to the Gaussian ``noise_std``."""
    fitted = cfg.noise_gain > 0 or cfg.noise_offset > 0
    if cfg.noise_model == "poisson-gaussian" and cfg.noise_std > 0 and fitted:
        std = (cfg.noise_gain * lr_son.clamp(min=0.0) + cfg.noise_offset).sqrt()
        return (lr_son + std * _randn_like(lr_son, gen)).clamp(min=0.0)
    return add_son_noise(lr_son, cfg.noise_std, gen)


def make_policy(cfg: ZSSRConfig) -> LRPolicy:
    """A fresh learning-rate policy with the configuration's parameters."""
    return LRPolicy(
        lr=cfg.learning_rate,
        decay=cfg.lr_decay,
        min_lr=cfg.min_learning_rate,
        check_every=cfg.lr_check_every,
        slope_window=cfg.lr_slope_window,
        fit_points=cfg.lr_fit_points,
        ratio=cfg.lr_slope_ratio,
        min_iters=cfg.min_iters,
    )


@dataclass
class PreparedRun:
    """Everything one training run draws from: its model, fathers, policy and generators."""

    model: TrainedModel
    sampler: FatherSampler
    policy: LRPolicy
    noise_gen: torch.Generator
    eval_hr: torch.Tensor
    eval_in: torch.Tensor
    first: torch.Tensor | None = None
    """The first father image ``(C, H, W)``: what a training snapshot upscales."""
    margin: tuple[int, int] = (0, 0)
    """HR pixels cut around each father crop and trimmed after degradation
    (``ZSSRConfig.kernel_context``)."""

    def training_pair(self, hr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The network's input and target for the fathers ``hr`` ``(B, C, h, w)``: the son
        (degraded, with the configuration's noise) upscaled back, and the father, both
        without the context margin."""
        cfg, sc = self.model.config, self.model.scale
        son = son_noise(degrade(hr, sc, self.model.kernel), cfg, self.noise_gen)
        inp = imresize(son, sc, hr.shape[-2:])
        return trim_margin(inp, self.margin), trim_margin(hr, self.margin)

    def snapshot(self, network: bool = True) -> torch.Tensor:
        """The current network's quick output for :attr:`first` (see :class:`Progress`)."""
        if self.first is None:
            raise ValueError("this run has no image to take a snapshot of")
        cfg = self.model.config
        return quick_output(
            self.model.net,
            self.first,
            self.model.scale,
            tile=cfg.tile_size,
            overlap=cfg.tile_overlap,
            network=network,
        )


def prepare_run(
    fathers: Sequence[np.ndarray | torch.Tensor],
    sc: tuple[float, float],
    *,
    kernel: np.ndarray | DownscaleKernel | None,
    config: ZSSRConfig,
    device: torch.device,
    device_reason: str = "",
    seed: int = 0,
    model: TrainedModel | None = None,
    extra_sources: Sequence[FatherSource] = (),
) -> PreparedRun:
    """Set up one training run as :func:`fit` does (same seeds, same random streams).

    A new network is initialised from ``seed`` (or from the bundled weights when
    ``config.init`` is ``"bundled"``) unless ``model`` is continued; the father
    sampler draws from ``seed``, the noise on the sons from ``seed + 1``.
    """
    cfg, dev = config, device
    if not fathers:
        raise ValueError("fit needs at least one father image")
    srcs = [FatherSource(as_tensor(f, dev)) for f in fathers]
    channels = srcs[0].image.shape[0]
    if any(s.image.shape[0] != channels for s in srcs):
        raise ValueError("all father images must have the same number of channels")
    min_h = min(s.image.shape[-2] for s in srcs)
    min_w = min(s.image.shape[-1] for s in srcs)
    if isinstance(kernel, DownscaleKernel):
        dk = kernel
    elif kernel is not None:
        dk = prepare_kernel(kernel, sc, (min_h, min_w))
    else:
        dk = None
    full, dk = dk, (None if dk is None else son_kernel(dk))
    transforms = allowed_transforms(
        None if dk is None else dk.weights, sc, rotations=cfg.rotations, flips=cfg.augment_flips
    )
    rng = np.random.default_rng(seed)
    gen = _make_generator(dev, seed + 1)
    if model is None:
        init_gen = torch.Generator().manual_seed(int(seed))
        net = ZSSRNet(channels, cfg.width, cfg.depth, generator=init_gen)
        if cfg.init == "bundled":
            # every new network (fit, fit_many's stacked ones, a stack's shared one) starts
            # from the same state; the random draw above stays, so "scratch" is unchanged
            apply_bundled(net, channels, cfg.width, cfg.depth)
        net = net.to(dev, memory_format=preferred_memory_format(dev))
        model = TrainedModel(
            net=net,
            scale=sc,
            kernel=dk,
            transforms=transforms,
            config=cfg,
            device=dev,
            device_reason=device_reason,
            full_kernel=full,
        )
    else:
        model.scale, model.kernel, model.transforms, model.config = sc, dk, transforms, cfg
        model.full_kernel = full
    crop, margin = father_crop(cfg, sc, (min_h, min_w), dk)
    cut = (crop[0] + 2 * margin[0], crop[1] + 2 * margin[1])
    sampling = cfg
    if dk is not None and cfg.kernel_min_father_scale is not None and cfg.noise_std > 0:
        sampling = cfg.replace(min_father_scale=cfg.kernel_min_father_scale)
    sampler = FatherSampler(srcs + list(extra_sources), cut, sampling, transforms, rng)
    eval_hr = _eval_region(srcs[0].image, cfg.eval_max_side, sc)
    eval_in = imresize(degrade(eval_hr, sc, dk), sc, eval_hr.shape[-2:])
    return PreparedRun(
        model, sampler, make_policy(cfg), gen, eval_hr, eval_in, first=srcs[0].image, margin=margin
    )


def father_crop(
    cfg: ZSSRConfig,
    sc: tuple[float, float],
    limit: Sequence[int],
    kernel: DownscaleKernel | None,
) -> tuple[tuple[int, int], tuple[int, int]]:
    """The father crop a run trains on and the context margin cut around it.

    Returns
    -------
    crop, margin : (int, int), (int, int)
        See :func:`~napari_zssr.core.sampling.crop_shape` and
        :func:`~napari_zssr.core.sampling.context_margin` (``(0, 0)`` unless
        ``cfg.kernel_context`` and a kernel is given).
    """
    crop = crop_shape(cfg.crop_size, sc, limit)
    if not cfg.kernel_context or kernel is None:
        return crop, (0, 0)
    return crop, context_margin(sc, kernel.shape, crop, limit)


def fit(
    fathers: Sequence[np.ndarray | torch.Tensor],
    scale: object,
    *,
    kernel: np.ndarray | DownscaleKernel | None = None,
    config: ZSSRConfig | None = None,
    device: str | torch.device = "auto",
    seed: int = 0,
    callback: ProgressCallback | None = None,
    model: TrainedModel | None = None,
    reporter: Reporter | None = None,
    extra_sources: Sequence[FatherSource] = (),
) -> TrainedModel:
    """Train a ZSSR network on HR fathers drawn from ``fathers``.

    Parameters
    ----------
    fathers : sequence of arrays
        ``(C, H, W)`` (or ``(H, W)``) float images in [0, 1]: the input, or several planes
        of a stack whose internal statistics the network should learn together.
    scale : float or (float, float)
        Factor ``(s_y, s_x)`` the network learns (one factor may be 1).
    kernel : array or DownscaleKernel, optional
        Downscaling kernel on the HR grid; None for MATLAB's bicubic.
    config : ZSSRConfig, optional
        Parameters (the ``paper`` defaults when omitted).
    device : str or torch.device
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"mps"``...
    seed : int
        Seed of every random choice; the same seed on the CPU gives the same network.
    callback : callable, optional
        Progress callback (see :class:`Reporter`).
    model : TrainedModel, optional
        Continue training this model (gradual SR) instead of starting a new network.
    reporter : Reporter, optional
        Used instead of ``callback`` by callers that track several planes or steps.
    extra_sources : sequence of FatherSource
        Additional fathers with their base scale (outputs of earlier gradual steps).

    Returns
    -------
    TrainedModel
    """
    cfg = config if config is not None else ZSSRConfig()
    sc = normalise_scale(scale)
    dev, reason = (
        (model.device, model.device_reason) if model is not None else resolve_device(device)
    )
    rep = reporter if reporter is not None else Reporter(callback)
    run = prepare_run(
        fathers,
        sc,
        kernel=kernel,
        config=cfg,
        device=dev,
        device_reason=reason,
        seed=seed,
        model=model,
        extra_sources=extra_sources,
    )
    step = TrainStep(
        run.model.net,
        cfg.learning_rate,
        mixed_precision=cfg.mixed_precision,
        # a capture pays off over many iterations, not over a short fine-tuning
        cuda_graph=cfg.cuda_graphs and cfg.max_iters >= GRAPH_MIN_ITERS,
    )
    t0 = time.perf_counter()
    it, last_loss = _train(run, step, rep)
    model = run.model
    model.iterations += it
    model.final_loss = last_loss
    model.seconds += time.perf_counter() - t0
    return model


def _train(run: PreparedRun, step: TrainStep, rep: Reporter) -> tuple[int, float | None]:
    """The training loop of :func:`fit`; returns the iterations run and the last loss."""
    model, sampler, policy = run.model, run.sampler, run.policy
    cfg, net = model.config, model.net
    eval_hr, eval_in = run.eval_hr, run.eval_in
    loss_sum = torch.zeros((), device=model.device)
    n_sum = 0
    last_loss: float | None = None
    it = 0
    net.train()
    rep("train", 0.0, iteration=0, max_iterations=cfg.max_iters, lr=policy.lr, message="training")
    for it in range(1, cfg.max_iters + 1):
        inp, hr = run.training_pair(sampler.sample(cfg.batch_size))
        loss_sum += step(inp, hr)
        n_sum += 1
        if it % cfg.eval_every == 0:
            net.eval()
            with torch.inference_mode():
                err = (net(eval_in[None])[0] - eval_hr).abs().mean().item()
            net.train()
            policy.record(it, err)
        if policy.step(it):
            step.set_lr(policy.lr)
        done = policy.finished or it == cfg.max_iters
        if it % cfg.report_every == 0 or done:
            last_loss = (loss_sum / max(n_sum, 1)).item()
            model.history.append((it, last_loss))
            loss_sum.zero_()
            n_sum = 0
            rep(
                "train",
                INFER_START * it / cfg.max_iters,
                iteration=it,
                max_iterations=cfg.max_iters,
                loss=last_loss,
                lr=policy.lr,
                message="training",
                snapshot=run.snapshot,
            )
        if policy.finished:
            break
    return it, last_loss


def effective_back_projection(config: ZSSRConfig) -> int:
    """Back-projection iterations actually run: none when noise is added to the sons.

    Back-projection makes the output reproduce the input exactly through the kernel, so on
    a noisy input (the case noise on sons is for) it copies the noise back, amplified by a
    wide kernel; the reference's real-image configuration also pairs noise with none.
    """
    return 0 if config.noise_std > 0 else config.back_projection_iters


def finish_noisy(
    model: TrainedModel,
    out: torch.Tensor,
    lr: torch.Tensor,
    scale: Sequence[float],
    kernel: DownscaleKernel | None,
    vmax: float,
    noise: Sequence[tuple[float, float]] | None = None,
) -> torch.Tensor:
    """The consistency step of a run with noise on the sons (none otherwise): ``out`` made
    to agree with ``lr`` through ``kernel`` (a kernel only; measured, not changed, without
    one) up to the input's noise
    (:func:`~napari_zssr.core.consistency.consistency_step`); its record goes to
    ``model.consistency``. ``noise``: the input's noise model per channel, ``(gain, offset)``
    (measured on ``lr`` when None)."""
    cfg = model.config
    if cfg.noise_std <= 0:
        model.consistency = {}
        return out
    # Richardson-Lucy needs a non-negative forward model: a kernel. MATLAB's bicubic has
    # negative lobes, and on the bundled sample the update diverged within 12 iterations
    # (ringing patterns at full scale). Without a kernel, and with consistency_iters=0, the
    # step only measures how far the output is from the input (for likely_harm).
    iters = cfg.consistency_iters if kernel is not None else 0
    out, record = consistency_step(out, lr, scale, kernel, max_iters=iters, noise=noise, vmax=vmax)
    model.consistency = record
    return out


def predict(
    model: TrainedModel,
    lr: np.ndarray | torch.Tensor,
    *,
    out_shape: Sequence[int] | None = None,
    callback: ProgressCallback | None = None,
    reporter: Reporter | None = None,
    vmax: float = 1.0,
    as_numpy: bool = True,
    collect: dict[str, torch.Tensor] | None = None,
    consistency: bool = True,
    noise: Sequence[tuple[float, float]] | None = None,
) -> np.ndarray | torch.Tensor:
    """Upscale ``lr`` ``(C, H, W)`` in [0, 1] with a trained model.

    Applies the configured self-ensemble (the transforms valid for the kernel), the
    back-projection iterations (or, with noise on the sons, the noise-aware consistency
    step, see :func:`finish_noisy`; ``consistency=False`` leaves it to the caller, for an
    output that is not yet at the input's full factor; ``noise``: the input's noise model per
    channel for it, measured when None) and tiling. Returns
    ``(C, ceil(H*s_y), ceil(W*s_x))`` float32 (or ``out_shape``), clipped to ``[0, vmax]``.
    ``collect`` (a dict) receives the ensemble's spread and the output before
    back-projection (see
    :func:`~napari_zssr.core.inference.super_resolve_tensor`).
    """
    cfg = model.config
    rep = reporter if reporter is not None else Reporter(callback)
    x = as_tensor(lr, model.device)
    transforms = model.transforms if cfg.self_ensemble else ((False, False, False),)

    def on_member(i: int, n: int) -> None:
        rep(
            "infer",
            INFER_START + INFER_SHARE * i / n,
            iteration=i,
            max_iterations=n,
            loss=model.final_loss,
            message=f"inference {i + 1}/{n}",
        )

    def on_identity(raw: torch.Tensor, up: torch.Tensor) -> None:
        # A free snapshot of the trained network (the ensemble's identity member): with
        # several members the result is still several passes away. Taken inside the report,
        # like a training snapshot.
        def snapshot(network: bool = True) -> torch.Tensor:
            return (raw if network else up).float().clamp(min=0.0)

        n = len(transforms)
        rep(
            "infer",
            INFER_START + INFER_SHARE / n,
            iteration=1,
            max_iterations=n,
            loss=model.final_loss,
            message=f"inference 1/{n}: the trained network's output",
            snapshot=snapshot,
        )

    out = super_resolve_tensor(
        model.net,
        x,
        model.scale,
        model.kernel,
        transforms=transforms,
        back_projection_iters=effective_back_projection(cfg),
        tile=cfg.tile_size,
        overlap=cfg.tile_overlap,
        out_shape=out_shape,
        vmax=vmax,
        autocast=False,
        on_member=on_member,
        collect=collect,
        on_identity=on_identity if len(transforms) > 1 and rep.snapshots else None,
    )
    if consistency:
        forward = model.full_kernel if model.full_kernel is not None else model.kernel
        out = finish_noisy(model, out, x, model.scale, forward, vmax, noise)
    if not as_numpy:
        return out
    return out.float().cpu().numpy()
