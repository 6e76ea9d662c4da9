"""Training a network to keep: :func:`train_model`."""

from __future__ import annotations

from typing import Any

from ..core.config import ZSSRConfig, resolve_config
from ..core.model import ZSSRModel
from .upscale import super_resolve

__all__ = ["train_model"]


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
    for name in ("return_info", "keep_model", "model", "finetune", "maps"):
        if name in kwargs:
            raise TypeError(f"train_model() does not take {name!r}")
    cfg = resolve_config(preset, config).replace(gradual_scales=())
    _, info = super_resolve(
        image, scale, preset=preset, config=cfg, return_info=True, keep_model=True, **kwargs
    )
    return info["model"]
