"""The gradual driver: one or several planes trained and upscaled, step by step.

:func:`upscale_planes` trains a network per image (all of them together, through
:func:`~napari_zssr.core.batched.fit_many`) for each gradual step of the configuration and
applies it; :func:`upscale_plane` is the same for one image. A step's output joins the
next step's fathers; the final output is back-projected onto the input when the last step
upscaled an earlier output.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import torch

from . import engine as _engine  # predict looked up at call time (tests replace it)
from .batched import FitJob, fit_many
from .config import ZSSRConfig, step_order, step_pair
from .engine import (
    Reporter,
    TrainedModel,
    as_tensor,
    effective_back_projection,
    father_crop,
    normalise_scale,
)
from .inference import back_project
from .kernels import DownscaleKernel
from .progress import ProgressCallback
from .resize import output_shape
from .sampling import FatherSource

__all__ = [
    "gradual_plan",
    "gradual_stages",
    "training_signature",
    "upscale_plane",
    "upscale_planes",
]


def gradual_plan(
    scale: tuple[float, float],
    gradual: Sequence[float | tuple[float, float]],
    back_projection: Sequence[int] = (),
    final_back_projection: int = 0,
    above: float = 1.0,
) -> list[tuple[tuple[float, float], int]]:
    """Each gradual step's total factor with its back-projection iterations, ending at ``scale``."""
    steps: dict[tuple[float, float], int] = {}
    if max(scale) <= above:
        gradual = ()
    for i, g in enumerate(gradual):
        gy, gx = step_pair(g)
        st = (min(gy, scale[0]), min(gx, scale[1]))
        if st != scale and st != (1.0, 1.0):
            steps.setdefault(st, back_projection[i] if back_projection else final_back_projection)
    order = sorted(steps, key=step_order)
    return [(st, steps[st]) for st in order] + [(scale, final_back_projection)]


def gradual_stages(
    scale: tuple[float, float],
    gradual: Sequence[float | tuple[float, float]],
    above: float = 1.0,
) -> list[tuple[float, float]]:
    """Total scale of each gradual step (factors or (s_y, s_x) pairs), ending at ``scale``.

    Steps are capped at ``scale`` per axis, duplicates and steps equal to ``scale`` are
    dropped, and the rest run in order of increasing area; none unless a factor of
    ``scale`` exceeds ``above`` (``ZSSRConfig.gradual_above``).
    """
    return [st for st, _ in gradual_plan(scale, gradual, above=above)]


def upscale_plane(
    image: np.ndarray,
    scale: object,
    *,
    kernel: np.ndarray | DownscaleKernel | None = None,
    config: ZSSRConfig | None = None,
    device: str | torch.device = "auto",
    seed: int = 0,
    callback: ProgressCallback | None = None,
    reporter: Reporter | None = None,
    vmax: float = 1.0,
    collect: dict[str, torch.Tensor] | None = None,
) -> tuple[np.ndarray, TrainedModel]:
    """ZSSR of one ``(C, H, W)`` image in [0, 1]: train, then infer; gradual if configured.

    With ``config.gradual_scales`` the same network is trained for each intermediate
    factor in turn and each step's output joins the pool of fathers. By default each step
    upscales the previous step's output, and the final result is back-projected onto the
    input itself through the whole factor; with ``config.gradual_from_input`` every step
    upscales the input by its own total factor (the reference's gradual configuration),
    except a final factor above the largest step on both axes, which is reached from that
    step's output (the reference's "base change"; from the input it was worse: Set5 x4).
    Gradual steps need the bicubic model (a kernel is defined for the final factor only)
    and are skipped when a kernel is given. ``collect`` (a dict) receives the last step's
    ensemble spread and output before back-projection (see :func:`predict`).
    """
    outs, models = upscale_planes(
        [image],
        scale,
        kernel=kernel,
        configs=[config if config is not None else ZSSRConfig()],
        device=device,
        seed=seed,
        reporter=reporter if reporter is not None else Reporter(callback),
        vmax=vmax,
        collects=[collect],
    )
    return outs[0], models[0]


def _plan(cfg: ZSSRConfig, sc: tuple[float, float], with_kernel: bool) -> list:
    """Gradual steps with their back-projection iterations (one jump with a kernel)."""
    if with_kernel:
        return [(sc, cfg.back_projection_iters)]
    return gradual_plan(
        sc,
        cfg.gradual_scales,
        cfg.gradual_back_projection_iters,
        cfg.back_projection_iters,
        cfg.gradual_above,
    )


def training_signature(
    cfg: ZSSRConfig,
    scale: object,
    plane_shape: Sequence[int],
    kernel: DownscaleKernel | None,
) -> tuple:
    """What images must share to train together: the father crop (and context margin) of
    every gradual step."""
    sc = normalise_scale(scale)
    plan = _plan(cfg, sc, kernel is not None)
    factors = [st for st, _ in plan] + [
        (b[0] / a[0], b[1] / a[1]) for (a, _), (b, _) in itertools.pairwise(plan)
    ]
    return tuple(father_crop(cfg, f, tuple(plane_shape), kernel) for f in factors)


def upscale_planes(
    images: Sequence[np.ndarray],
    scale: object,
    *,
    kernel: np.ndarray | DownscaleKernel | None = None,
    configs: Sequence[ZSSRConfig],
    device: str | torch.device = "auto",
    seed: int = 0,
    reporter: Reporter | None = None,
    vmax: float | Sequence[float] = 1.0,
    collects: Sequence[dict | None] | None = None,
    noises: Sequence[Sequence[tuple[float, float]] | None] | None = None,
) -> tuple[list[np.ndarray], list[TrainedModel]]:
    """:func:`upscale_plane` of several images, trained together.

    Image ``i`` (``(C, H, W)`` in [0, 1]) gets its own network, trained with
    ``configs[i]`` and ``seed`` exactly as ``upscale_plane`` would train it alone (up to
    float rounding; one image is ``upscale_plane`` itself). Every gradual step trains all
    networks at once through :func:`fit_many`. The configurations must agree on the
    network, the batch and the gradual steps (they may differ in noise and policy).

    Returns
    -------
    outputs : list of ndarray
        ``(C, ceil(H*s_y), ceil(W*s_x))`` float32 per image, clipped to ``[0, vmax]``
        (one ``vmax`` for all images or one per image).
    models : list of TrainedModel
    """
    sc = normalise_scale(scale)
    rep = reporter if reporter is not None else Reporter()
    if len(configs) != len(images):
        raise ValueError(f"one config per image needed: {len(configs)} for {len(images)} images")
    plan = _plan(configs[0], sc, kernel is not None)
    if any(_plan(c, sc, kernel is not None) != plan for c in configs[1:]):
        raise ValueError("images trained together need the same gradual steps")
    noise_models = list(noises) if noises is not None else [None] * len(images)
    coll = list(collects) if collects is not None else [None] * len(images)
    vmaxes = [float(vmax)] * len(images) if np.isscalar(vmax) else [float(v) for v in vmax]
    imgs = [np.asarray(im, dtype=np.float32) for im in images]
    imgs = [im[None] if im.ndim == 2 else im for im in imgs]
    rep.n_steps = len(plan)
    rep.span = len(imgs)  # the images share one stretch of the progress
    from_input = configs[0].gradual_from_input
    # a final factor beyond every step goes on from the largest step's output
    chain_last = len(plan) > 1 and sc[0] > plan[-2][0][0] and sc[1] > plan[-2][0][1]
    current: list[np.ndarray | torch.Tensor] = list(imgs)
    models: list[TrainedModel | None] = [None] * len(imgs)
    extras: list[list[FatherSource]] = [[] for _ in imgs]
    prev = (1.0, 1.0)
    for k, (st, n_bp) in enumerate(plan):
        rep.step = k
        last = k == len(plan) - 1
        chained = not from_input or (last and chain_last)
        jobs = [
            FitJob([im], _step_config(c, n_bp), seed + k, m, tuple(ex))
            for im, c, m, ex in zip(imgs, configs, models, extras)
        ]
        factor = (st[0] / prev[0], st[1] / prev[1]) if chained else st
        models = list(fit_many(jobs, factor, kernel=kernel, device=device, reporter=rep))
        outs = []
        for i, (im, model) in enumerate(zip(imgs, models)):
            rep.member = i
            shape = output_shape(im.shape[-2:], sc if last else st)
            # stays on the device: it is one of the next step's fathers (and maybe its input)
            out = _engine.predict(
                model,
                current[i] if chained else im,
                out_shape=shape,
                reporter=rep,
                vmax=vmaxes[i],
                as_numpy=False,
                collect=coll[i] if last else None,
                # a chained last step's output is made consistent with the input itself below
                consistency=last and not (len(plan) > 1 and chained),
                noise=noise_models[i],
            )
            outs.append(out)
            if not last:
                # a normal tensor (not an inference-mode one): training crops it
                extras[i].append(FatherSource(out.float().clone(), base=st))
        if not last:
            current, prev = outs, st
    rep.span, rep.member = 1, 0
    final = [
        _back_project_input(o, im, m, sc, len(plan) > 1 and chained, v, nm)
        for o, im, m, v, nm in zip(outs, imgs, models, vmaxes, noise_models)
    ]
    return final, [m for m in models if m is not None]


def _step_config(cfg: ZSSRConfig, n_bp: int) -> ZSSRConfig:
    return cfg if n_bp == cfg.back_projection_iters else cfg.replace(back_projection_iters=n_bp)


def _back_project_input(
    out: torch.Tensor,
    img: np.ndarray,
    model: TrainedModel | None,
    sc: tuple[float, float],
    chained_gradual: bool,
    vmax: float,
    noise: Sequence[tuple[float, float]] | None = None,
) -> np.ndarray:
    """The output as float32 NumPy, back-projected onto the input when the last gradual
    step upscaled an earlier output (it must reproduce the input through the whole factor)."""
    assert model is not None
    n_bp = effective_back_projection(model.config)
    if chained_gradual and n_bp:
        with torch.inference_mode():
            out = back_project(out, as_tensor(img, model.device), sc, None, n_bp, vmax)
    elif chained_gradual:
        lr = as_tensor(img, model.device)
        out = _engine.finish_noisy(model, out, lr, sc, None, vmax, noise)
    return out.float().cpu().numpy()
