"""The one plane loop: every plane of a run read, normalised, upscaled, restored and written.

Whatever trains the networks (a fresh network per plane, several planes' networks trained
together, a network shared by a stack and fine-tuned on each plane, or a saved network), the
planes go through :func:`run_planes`: it skips the planes an earlier run finished (a
resumable output), reads one group of planes at a time (from a lazy array too), hands them
to an :data:`Upscaler`, writes each result back in the input's dtype, hands the quality-map
ingredients to the collector and counts iterations and losses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core import engine as _engine  # fit and predict looked up at call time (tests spy)
from ..core.config import ZSSRConfig
from ..core.engine import Reporter
from ..core.upscale import upscale_planes
from .intensity import IntensityInfo, normalise_plane, restore_plane
from .planes import Layout, sampled_planes

__all__ = [
    "MAX_AUTO_BATCH",
    "SHARED_ITERS_FACTOR",
    "Plane",
    "PlaneJob",
    "Upscaler",
    "auto_batch",
    "fresh_networks",
    "run_planes",
    "shared_network",
]

#: Most networks :func:`auto_batch` trains together. Chosen, not measured: a GPU run of
#: ``benchmarks/gpu_check.py`` measures planes per second at this and smaller sizes.
MAX_AUTO_BATCH = 16
#: Share of the free device memory that the networks of one batch may use.
MEMORY_FRACTION = 0.5
#: Bytes per father pixel and hidden channel of one training step: the activations kept
#: for the backward pass, their gradients and the ReLU masks, with headroom (an estimate).
BYTES_PER_ACTIVATION = 16


def auto_batch(device: Any, config: ZSSRConfig, n_items: int) -> int:
    """How many networks to train together on ``device``.

    On CUDA: as many as half the free memory holds (an estimate of one network's training
    memory from the crop, width and depth), at most :data:`MAX_AUTO_BATCH` and
    ``n_items``. Elsewhere 1: on a 2-core CPU four planes trained together were not
    faster than one after another (docs/benchmarks.md), and MPS has not been measured.
    """
    import torch

    dev = torch.device(device)
    if dev.type != "cuda" or n_items <= 1:
        return 1
    free, _ = torch.cuda.mem_get_info(dev)
    pixels = config.batch_size * config.crop_size**2
    per_net = pixels * config.width * config.depth * BYTES_PER_ACTIVATION
    fits = int(free * MEMORY_FRACTION // max(per_net, 1))
    return max(1, min(MAX_AUTO_BATCH, n_items, fits))


#: A stack's shared network trains this many times a single plane's iterations.
SHARED_ITERS_FACTOR = 2


@dataclass
class PlaneJob:
    """One image on its way through the engine, plane by plane.

    Attributes
    ----------
    arr : array-like
        The input (not modified; a lazy array is read one plane at a time).
    layout : Layout
        Its axes.
    info : IntensityInfo
        Its intensity range (how planes are normalised and restored).
    out : PlaneOutput
        Where the output planes go (:mod:`napari_zssr.arrays.output`).
    config : ZSSRConfig
        The configuration its networks train with.
    collector : MapsCollector or None
        Gathers the quality maps' ingredients, when maps are asked for.
    iterations, losses
        Training iterations and final losses counted so far.
    consistency
        Each plane's consistency step record (non-empty ones only).
    profiles : NoiseProfiles or None
        The planes' noise profiles (:class:`~napari_zssr.arrays.degradation.NoiseProfiles`),
        measured once per plane and shared with the noise set-up.
    """

    arr: Any
    layout: Layout
    info: IntensityInfo
    out: Any
    config: ZSSRConfig
    collector: Any = None
    iterations: int = 0
    losses: list[float] = field(default_factory=list)
    consistency: list[dict[str, Any]] = field(default_factory=list)
    profiles: Any = None

    def noise_model(self, idx: tuple[int, ...], image: np.ndarray) -> list[Any] | None:
        """Plane ``idx``'s noise model per channel, ``(gain, offset)``, for the consistency
        step (``image``: the plane as :meth:`read` gives it; the step measures the residual
        even where it does not iterate); None when the run has no consistency step (no noise
        on the sons) or no profiles, so that a clean run measures nothing more."""
        if self.profiles is None or self.config.noise_std <= 0:
            return None
        return [p.poisson_gaussian_fit() for p in self.profiles.plane(idx, image)[0]]

    def read(self, idx: tuple[int, ...]) -> np.ndarray:
        """Plane ``idx``, normalised to float32 ``(C, Y, X)``."""
        return normalise_plane(self.layout.plane(self.arr, idx), self.info)

    def pending(self, first: int = 0) -> list[Plane]:
        """The planes still to do (not finished by an earlier run), numbered for the
        progress reports from ``first`` on in stack order."""
        return [
            Plane(self, idx, first + k)
            for k, idx in enumerate(np.ndindex(*self.layout.stack_shape))
            if not self.out.done(idx)
        ]

    def store(self, idx: tuple[int, ...], plane: np.ndarray, hr: np.ndarray, coll: Any) -> None:
        """Write one output plane back (and hand its map ingredients to the collector)."""
        self.out[idx] = restore_plane(hr, self.info)
        if self.collector is not None and coll is not None:
            self.collector.add(idx, plane, hr, coll)


@dataclass(frozen=True)
class Plane:
    """One plane of a :class:`PlaneJob`: its stack index and its number in the progress."""

    job: PlaneJob
    idx: tuple[int, ...]
    number: int


#: Upscales a group of planes: ``(planes, their normalised images, their map dicts or None)``
#: -> for each, ``(float32 output, training iterations, final loss or None)``.
Upscaler = Callable[
    [Sequence[Plane], list[np.ndarray], list[dict | None]],
    list[tuple[np.ndarray, int, float | None]],
]


def run_planes(planes: Sequence[Plane], upscale: Upscaler, rep: Reporter, group: int = 1) -> None:
    """Upscale ``planes`` in groups of ``group`` (one network each, or one for all: that is
    the upscaler's business) and write every result to its job's output."""
    for start in range(0, len(planes), group):
        chunk = planes[start : start + group]
        rep.plane = chunk[0].number
        images = [p.job.read(p.idx) for p in chunk]
        colls: list[dict | None] = [{} if p.job.collector is not None else None for p in chunk]
        results = upscale(chunk, images, colls)
        for p, img, coll, (hr, iterations, loss) in zip(chunk, images, colls, results):
            p.job.store(p.idx, img, hr, coll)
            p.job.iterations += iterations
            if loss is not None:
                p.job.losses.append(loss)


def fresh_networks(
    sc: tuple[float, float],
    dk: Any,
    device: Any,
    seed: int,
    rep: Reporter,
    keep: Callable[[Any], None] | None = None,
) -> Upscaler:
    """A new network for every plane, the planes of a group trained together, each with
    its job's configuration and ``seed`` (:func:`~napari_zssr.core.upscale.upscale_planes`);
    ``keep`` receives each trained network."""

    def upscale(
        chunk: Sequence[Plane], images: list[np.ndarray], colls: list[dict | None]
    ) -> list[tuple[np.ndarray, int, float | None]]:
        outs, models = upscale_planes(
            images,
            sc,
            kernel=dk,
            configs=[p.job.config for p in chunk],
            device=device,
            seed=seed,
            reporter=rep,
            vmax=[p.job.info.vmax for p in chunk],
            collects=colls,
            noises=[p.job.noise_model(p.idx, img) for p, img in zip(chunk, images)],
        )
        for p, model in zip(chunk, models):
            if model.consistency:
                p.job.consistency.append(model.consistency)
        if keep is not None:
            for model in models:
                keep(model)
        return [(hr, m.iterations, m.final_loss) for hr, m in zip(outs, models)]

    return upscale


def shared_network(
    job: PlaneJob,
    cfg: ZSSRConfig,
    sc: tuple[float, float],
    dk: Any,
    device: Any,
    seed: int,
    rep: Reporter,
) -> tuple[Any, Upscaler]:
    """One network trained on up to 16 planes of ``job``'s stack; and the upscaler that
    starts each plane from its weights, fine-tunes it briefly on the plane
    (``cfg.plane_finetune_iters``) and applies it.

    Returns the trained shared network (before any fine-tuning) and the upscaler; the
    shared training's iterations and loss are counted in ``job``.
    """
    fathers = [job.read(idx) for idx in sampled_planes(job.layout)]
    model = _engine.fit(
        fathers,
        sc,
        kernel=dk,
        # many planes to learn from: twice the iterations of a single plane, without the
        # early stop (measured on a 32-plane stack: stopping early costs 0.1 dB)
        config=cfg.replace(
            gradual_scales=(),
            max_iters=SHARED_ITERS_FACTOR * cfg.max_iters,
            min_iters=SHARED_ITERS_FACTOR * cfg.max_iters,
        ),
        device=device,
        seed=seed,
        reporter=rep,
    )
    del fathers
    job.iterations += model.iterations
    job.losses.append(model.final_loss if model.final_loss is not None else float("nan"))
    # Each plane starts from the shared weights and adapts to itself for a few
    # iterations: most of the per-plane quality at a fraction of its cost.
    n_ft = cfg.plane_finetune_iters
    ft_cfg = cfg.replace(gradual_scales=(), max_iters=n_ft, min_iters=n_ft) if n_ft else None
    shared_state = (
        {k: v.clone() for k, v in model.net.state_dict().items()} if ft_cfg is not None else None
    )
    out_yx = job.out.shape[-2:]
    current = [model]

    def upscale(
        chunk: Sequence[Plane], images: list[np.ndarray], colls: list[dict | None]
    ) -> list[tuple[np.ndarray, int, float | None]]:
        results: list[tuple[np.ndarray, int, float | None]] = []
        for p, plane, coll in zip(chunk, images, colls):
            if ft_cfg is not None and shared_state is not None:
                current[0].net.load_state_dict(shared_state)
                current[0] = _engine.fit(
                    [plane], sc, kernel=dk, config=ft_cfg, model=current[0],
                    seed=seed + p.number, reporter=rep,
                )  # fmt: skip
            hr = _engine.predict(
                current[0], plane, out_shape=out_yx, reporter=rep, vmax=job.info.vmax,
                collect=coll, noise=job.noise_model(p.idx, plane),
            )  # fmt: skip
            if current[0].consistency:
                job.consistency.append(current[0].consistency)
            results.append((hr, n_ft if ft_cfg is not None else 0, None))
        return results

    return model, upscale
