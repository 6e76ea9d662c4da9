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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..core import engine as _engine  # fit and predict looked up at call time (tests spy)
from ..core.config import ZSSRConfig
from ..core.engine import Reporter
from ..core.model import (
    INTENSITY_METHOD,
    ZSSRModel,
    check_model_scale,
    restore_weights,
    snapshot,
    to_trained,
)
from ..io.model_file import load_model, save_model
from .checks import check_finetune, check_flag
from .loop import Plane, PlaneJob, Upscaler

__all__ = ["SavedRun", "ZSSRModel", "load_model", "save_model"]


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
    _trained: Any = field(default=None, repr=False)

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
        n_ft = check_finetune(finetune)
        keep = check_flag(keep, "keep_model")
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

    def keep_from(self, trained: Any, job: PlaneJob, sc: tuple[float, float], seed: int) -> None:
        """Keep ``trained`` (a host copy, now), trained on ``job``'s planes, when asked to."""
        if not self.keep:
            return
        if tuple(trained.scale) != tuple(sc):
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
            noise_std=float(job.config.noise_std),
            version=__version__,
            training={"seed": int(seed), "input_shape": list(job.layout.shape)},
        )

    def upscaler(
        self, job: PlaneJob, sc: tuple[float, float], device: Any, seed: int, rep: Reporter
    ) -> Upscaler:
        """The upscaler that applies the saved network to each plane, fine-tuned on the plane
        first when ``finetune`` > 0 (each plane starting again from the saved weights);
        :meth:`finish` keeps the network afterwards, when asked to."""
        assert self.model is not None
        saved = self.model
        self._trained = to_trained(saved, device=device, config=job.config)
        n_ft = self.finetune
        ft_cfg = job.config.replace(max_iters=n_ft, min_iters=n_ft) if n_ft else None
        out_yx = job.out.shape[-2:]

        def upscale(
            chunk: Sequence[Plane], images: list[np.ndarray], colls: list[dict | None]
        ) -> list[tuple[np.ndarray, int, float | None]]:
            results: list[tuple[np.ndarray, int, float | None]] = []
            for p, plane, coll in zip(chunk, images, colls):
                trained, loss = self._trained, None
                if ft_cfg is not None:
                    if p.number:
                        restore_weights(trained, saved)
                    trained = _engine.fit(
                        [plane], sc, kernel=trained.kernel, config=ft_cfg, model=trained,
                        seed=seed + p.number, reporter=rep,
                    )  # fmt: skip
                    self._trained, loss = trained, trained.final_loss
                hr = _engine.predict(
                    trained, plane, out_shape=out_yx, reporter=rep, vmax=job.info.vmax,
                    collect=coll, noise=job.noise_model(p.idx, plane),
                )  # fmt: skip
                results.append((hr, n_ft if ft_cfg is not None else 0, loss))
            return results

        return upscale

    def finish(self) -> None:
        """After the planes: keep the given network, or its weights after the last plane's
        fine-tuning, when asked to."""
        if self.keep and self.model is not None:
            self.kept = self.model
            if self.finetune:
                self.kept = self.model.replace(weights=snapshot(self._trained).weights)

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
