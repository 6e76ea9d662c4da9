"""Saved networks: train once, apply many times.

:func:`train_model` trains a network on an image and returns it as a
:class:`~napari_zssr.core.model.ZSSRModel`; :func:`save_model` and :func:`load_model` write and
read it as a ``.zssr`` file (:mod:`napari_zssr.io.model_file`); ``super_resolve(...,
model=...)`` applies it to another image, optionally fine-tuned on that image first
(``finetune``). :class:`SavedRun` is the part of :func:`~napari_zssr.super_resolve` that deals
with a network given to or kept from a run.

A saved network learns the whole factor in one jump (gradual steps are not used), as
stack-wide training does: it is applied by one network pass per ensemble member. Each image,
at training and when a network is applied, is mapped to [0, 1] by its own range
(:data:`~napari_zssr.core.model.INTENSITY_METHOD`); the file records the training image's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..core.config import ZSSRConfig, resolve_config
from ..core.model import INTENSITY_METHOD, ZSSRModel, check_model_scale, snapshot
from ..io.model_file import load_model, save_model

__all__ = ["SavedRun", "ZSSRModel", "load_model", "save_model", "train_model"]


def _check_finetune(finetune: Any) -> int:
    if isinstance(finetune, bool) or not isinstance(finetune, (int, np.integer)):
        raise TypeError(f"finetune must be a whole number of iterations, got {finetune!r}")
    if finetune < 0:
        raise ValueError(f"finetune must be >= 0 iterations, got {finetune!r}")
    return int(finetune)


def _as_model(model: Any) -> tuple[ZSSRModel, str]:
    """A network given as a ZSSRModel or a ``.zssr`` path, and how to name it."""
    if isinstance(model, ZSSRModel):
        return model, "a network in memory"
    if isinstance(model, (str, os.PathLike)):
        return load_model(model), str(Path(model))
    raise TypeError(f"model must be a ZSSRModel or the path of a .zssr file, got {model!r}")


@dataclass
class SavedRun:
    """A run's dealings with saved networks: the one it applies and the one it keeps.

    Attributes
    ----------
    model : ZSSRModel or None
        The network applied to every plane (None: the run trains its own).
    source : str
        Where ``model`` came from (its file, or "a network in memory").
    finetune : int
        Training iterations on each plane, starting from ``model``'s weights (0: apply only).
    keep : bool
        Keep the run's network (``info["model"]``).
    kept : ZSSRModel or None
        The kept network, once trained.
    note : str or None
        Why no network was kept, when one was asked for.
    """

    model: ZSSRModel | None = None
    source: str = ""
    finetune: int = 0
    keep: bool = False
    kept: ZSSRModel | None = None
    note: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def make(
        cls,
        model: Any,
        *,
        finetune: Any,
        keep: Any,
        return_info: bool,
        kernel: Any,
        scale: tuple[float, float],
    ) -> SavedRun:
        """Check the network arguments of :func:`~napari_zssr.super_resolve` (the file is
        read and checked here, before any work) and the factor against the network's."""
        n_ft = _check_finetune(finetune)
        if not isinstance(keep, (bool, np.bool_)):
            raise TypeError(f"keep_model must be True or False, got {keep!r}")
        if keep and not return_info:
            raise ValueError(
                "keep_model=True needs return_info=True: the network is returned in info['model']"
            )
        if model is None:
            if n_ft:
                raise ValueError("finetune applies to a saved network: give model= too")
            return cls(keep=bool(keep))
        net, source = _as_model(model)
        if kernel is not None:
            raise ValueError(
                "kernel: a saved network brings the kernel it was trained for; "
                "leave kernel unset when model is given"
            )
        check_model_scale(net.scale, scale, source)
        return cls(model=net, source=source, finetune=n_ft, keep=bool(keep))

    def kernel(self) -> np.ndarray | None:
        """The kernel of the network applied (None: bicubic)."""
        return None if self.model is None else self.model.kernel

    def check_layout(self, layout: Any, stack_mode: str) -> None:
        """Refuse a network for another number of channels, or keeping one of many."""
        if self.model is not None and layout.channels != self.model.channels:
            raise ValueError(
                f"the image has {layout.channels} channel(s) but the saved network "
                f"({self.source}) was trained on {self.model.channels}"
            )
        if self.keep and self.model is None and layout.n_planes > 1 and stack_mode != "shared":
            raise ValueError(
                "keep_model=True needs one plane or stack_mode='shared' (with "
                "'per_plane' every plane has a network of its own)"
            )

    def config(self, cfg: ZSSRConfig) -> ZSSRConfig:
        """The run's configuration with the applied network's shape, in one jump."""
        if self.model is None:
            return cfg
        net_cfg = self.model.config
        return cfg.replace(width=net_cfg.width, depth=net_cfg.depth, gradual_scales=())

    def keep_from(self, trained: Any, job: Any) -> None:
        """Keep ``trained`` (a host copy, now) when asked to."""
        if not self.keep:
            return
        if tuple(trained.scale) != tuple(job.sc):
            self.note = (
                "no network kept: this run went through gradual steps, and a kept network "
                "learns the whole factor in one jump (gradual_scales=(), --one-jump)"
            )
            return
        self.kept = snapshot(
            trained,
            intensity={
                "method": INTENSITY_METHOD,
                "channels": int(job.layout.channels),
                **job.info.to_dict(),
            },
            noise_std=float(job.cfg.noise_std),
            version=__version__,
            training={"seed": int(job.seed), "input_shape": list(job.layout.shape)},
        )

    def apply(self, job: Any, dev: Any) -> tuple[int, list[float]]:
        """Every plane upscaled by the saved network (fine-tuned on the plane first when
        ``finetune`` > 0, each plane starting again from the saved weights)."""
        from ..core.engine import fit, predict
        from ..core.model import restore_weights, to_trained
        from .planes import normalise_plane

        assert self.model is not None
        trained = to_trained(self.model, device=dev, config=job.cfg)
        n_ft = self.finetune
        ft_cfg = job.cfg.replace(max_iters=n_ft, min_iters=n_ft) if n_ft else None
        iterations, losses = 0, []
        out_yx = job.out_canon.shape[-2:]
        for k, idx in enumerate(np.ndindex(*job.layout.stack_shape)):
            job.rep.plane = k
            if job.out_canon.done(idx):  # finished by an earlier run (a resumable output)
                continue
            plane = normalise_plane(job.layout.plane(job.arr, idx), job.info)  # lazy: one plane
            if ft_cfg is not None:
                if k:
                    restore_weights(trained, self.model)
                trained = fit(
                    [plane],
                    job.sc,
                    kernel=trained.kernel,
                    config=ft_cfg,
                    model=trained,
                    seed=job.seed + k,
                    reporter=job.rep,
                )
                iterations += n_ft
                if trained.final_loss is not None:
                    losses.append(trained.final_loss)
            coll = job.collect()
            hr = predict(
                trained, plane, out_shape=out_yx, reporter=job.rep, vmax=job.info.vmax, collect=coll
            )
            job.store(idx, plane, hr, coll)
        if self.keep:  # the given network, or its weights after the last plane's fine-tuning
            tuned = self.model.replace(weights=snapshot(trained).weights) if n_ft else None
            self.kept = tuned or self.model
        return iterations, losses

    def info(self) -> dict[str, Any]:
        """The run information's entries: ``saved_network`` (JSON-able) and, when a network
        was kept, ``model``."""
        out: dict[str, Any] = {"saved_network": None}
        if self.model is not None:
            out["saved_network"] = {
                "source": self.source,
                "finetune": self.finetune,
                "scale": list(self.model.scale),
                "description": self.model.describe(),
                "trained_with": self.model.version,
            }
        if self.keep:
            out["model"] = self.kept
            if self.note:
                out["model_note"] = self.note
        return out


def train_model(
    image: Any,
    scale: float | tuple[float, float],
    *,
    preset: str = "balanced",
    config: ZSSRConfig | None = None,
    **kwargs: Any,
) -> ZSSRModel:
    """Train a network on ``image`` for ``scale`` and return it (to save or apply elsewhere).

    Runs :func:`~napari_zssr.super_resolve` with the same arguments in one jump
    (``gradual_scales=()``) and keeps its network; the upscaled image is discarded. A stack
    trains one network on up to 16 of its planes (``stack_mode="shared"``).

    Parameters
    ----------
    image : ndarray
        As for :func:`~napari_zssr.super_resolve`.
    scale : float or (float, float)
        The factor the network learns; it can only be applied at this factor.
    preset, config
        The training configuration, as for :func:`~napari_zssr.super_resolve`.
    **kwargs
        Other arguments of :func:`~napari_zssr.super_resolve` (``kernel``, ``noise_std``,
        ``channel_axis``, ``rgb``, ``device``, ``seed``, ``callback``).

    Returns
    -------
    ZSSRModel
    """
    from .upscale import super_resolve

    for name in ("return_info", "keep_model", "model", "finetune", "maps"):
        if name in kwargs:
            raise TypeError(f"train_model() does not take {name!r}")
    cfg = resolve_config(preset, config).replace(gradual_scales=())
    _, info = super_resolve(
        image, scale, preset=preset, config=cfg, return_info=True, keep_model=True, **kwargs
    )
    return info["model"]
