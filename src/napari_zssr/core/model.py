"""A trained network that outlives its run: :class:`ZSSRModel`, built from and back into the
engine's :class:`~napari_zssr.core.engine.TrainedModel`.

A :class:`ZSSRModel` holds plain host data only (NumPy weights, the configuration, the
factor, the kernel): it does not depend on the device it was trained on, and it is what
:mod:`napari_zssr.io.model_file` writes to and reads from a ``.zssr`` file. Applying it
again (:func:`to_trained`) puts the weights on any device.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .config import ZSSRConfig

if TYPE_CHECKING:  # torch is imported on first use: reading a file's header needs none
    import torch

    from .engine import TrainedModel
    from .kernels import DownscaleKernel

__all__ = [
    "INTENSITY_METHOD",
    "ZSSRModel",
    "check_model_scale",
    "expected_shapes",
    "restore_weights",
    "snapshot",
    "to_trained",
]

INTENSITY_METHOD = (
    "per channel: (value - minimum) / (99.99th percentile - minimum) when a few outliers "
    "stretch the range more than twice, else / (maximum - minimum); uint8: value / 255"
)
"""How every image (the training image and each image a network is applied to) is mapped to
the [0, 1] range the network works in: each image by its own range."""

#: Two scale factors closer than this are the same factor.
SCALE_TOL = 1e-6


@dataclass(frozen=True)
class ZSSRModel:
    """A trained ZSSR network with everything needed to apply it again.

    Attributes
    ----------
    weights : dict of str to ndarray
        The network's parameters (``body.<i>.weight``, float32, ``(out, in, 3, 3)``), on the
        host.
    config : ZSSRConfig
        The configuration it was trained with (its ``width`` and ``depth`` are the network's).
    scale : (float, float)
        The ``(s_y, s_x)`` factor it learned, in one jump.
    kernel : ndarray or None
        The downscaling kernel it learned to invert, on the output (HR) grid, centred and
        normalised (float64); None for MATLAB's bicubic.
    channels : int
        Image channels it takes (1 for grayscale, 3 for RGB, C for multi-channel data).
    intensity : dict
        How the training image was mapped to [0, 1]: ``method`` (:data:`INTENSITY_METHOD`),
        ``dtype``, ``lo`` and ``hi`` per channel (in the training image's unit), ``channels``.
    noise_std : float
        The Gaussian noise added to the LR sons in training (normalised units).
    version : str
        The napari-zssr version that trained it.
    training : dict
        Facts about the training run (iterations, final loss, seconds, input shape, seed).
    """

    weights: dict[str, np.ndarray]
    config: ZSSRConfig
    scale: tuple[float, float]
    kernel: np.ndarray | None
    channels: int
    intensity: dict[str, Any] = field(default_factory=dict)
    noise_std: float = 0.0
    version: str = ""
    training: dict[str, Any] = field(default_factory=dict)

    def replace(self, **changes: Any) -> ZSSRModel:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def describe(self) -> str:
        """One line for a status bar or a summary."""
        sy, sx = self.scale
        factor = f"x{sy:g}" if sy == sx else f"x{sy:g} (Y) x{sx:g} (X)"
        kernel = (
            "bicubic"
            if self.kernel is None
            else f"a {self.kernel.shape[0]}x" + (f"{self.kernel.shape[1]} kernel")
        )
        its = self.training.get("iterations")
        trained = f", {its} iterations" if its else ""
        return (
            f"{factor}, {self.channels} channel(s), {kernel}, depth {self.config.depth} "
            f"width {self.config.width}{trained}"
        )


def expected_shapes(channels: int, width: int, depth: int) -> dict[str, tuple[int, ...]]:
    """The parameter names and shapes of a :class:`~napari_zssr.core.network.ZSSRNet`."""
    sizes = [channels] + [width] * (depth - 1) + [channels]
    # the ReLUs between convolutions take the odd positions of the sequential body
    return {f"body.{2 * i}.weight": (sizes[i + 1], sizes[i], 3, 3) for i in range(depth)}


def snapshot(trained: TrainedModel, **facts: Any) -> ZSSRModel:
    """A host copy of ``trained`` (its weights as they are now), with ``facts`` as fields
    (``intensity``, ``noise_std``, ``version``, ``training``)."""
    state = trained.net.state_dict()
    weights = {k: v.detach().float().cpu().contiguous().numpy().copy() for k, v in state.items()}
    training = {
        "iterations": int(trained.iterations),
        "final_loss": trained.final_loss,
        "seconds": round(float(trained.seconds), 3),
        "device": str(trained.device),
        **facts.pop("training", {}),
    }
    return ZSSRModel(
        weights=weights,
        config=trained.config,
        scale=(float(trained.scale[0]), float(trained.scale[1])),
        kernel=None if trained.kernel is None else np.array(trained.kernel.weights, np.float64),
        channels=int(trained.net.channels),
        training=training,
        **facts,
    )


def check_model_scale(
    learned: tuple[float, float], scale: tuple[float, float], where: str = ""
) -> None:
    """Refuse a run at ``scale`` with a network that learned another factor (``learned``).

    Raises
    ------
    ValueError
        Naming both factors (and ``where`` the network comes from).
    """
    if any(abs(a - b) > SCALE_TOL for a, b in zip(learned, scale)):
        origin = f" ({where})" if where else ""
        raise ValueError(
            f"scale {scale[0]:g}, {scale[1]:g} does not match the saved network{origin}, which "
            f"learned x{learned[0]:g}, {learned[1]:g}: a network learns one factor; "
            "use that scale or train a network for this one"
        )


def _downscale_kernel(model: ZSSRModel) -> DownscaleKernel | None:
    from .kernels import prepare_kernel

    if model.kernel is None:
        return None
    # the stored kernel is already centred for this factor: centring it again moves nothing
    return prepare_kernel(model.kernel, model.scale)


def restore_weights(trained: TrainedModel, model: ZSSRModel) -> None:
    """Put ``model``'s weights into ``trained``'s network (on its device, in its layout)."""
    import torch

    state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in model.weights.items()}
    trained.net.load_state_dict(state)


def to_trained(
    model: ZSSRModel, *, device: torch.device, config: ZSSRConfig | None = None
) -> TrainedModel:
    """An engine model on ``device`` with ``model``'s weights.

    Parameters
    ----------
    model : ZSSRModel
        The saved network.
    device : torch.device
        Where to put it (any device: the weights are on the host).
    config : ZSSRConfig, optional
        The run's configuration (self-ensemble, back-projection, tiling, fine-tuning); the
        network's width and depth are always the model's. None: the model's own.
    """
    from .engine import TrainedModel
    from .kernels import allowed_transforms
    from .network import ZSSRNet, preferred_memory_format

    cfg = (config or model.config).replace(width=model.config.width, depth=model.config.depth)
    net = ZSSRNet(model.channels, cfg.width, cfg.depth).to(
        device, memory_format=preferred_memory_format(device)
    )
    dk = _downscale_kernel(model)
    transforms = allowed_transforms(
        None if dk is None else dk.weights,
        model.scale,
        rotations=cfg.rotations,
        flips=cfg.augment_flips,
    )
    trained = TrainedModel(
        net=net,
        scale=model.scale,
        kernel=dk,
        transforms=transforms,
        config=cfg,
        device=device,
        device_reason="",
    )
    restore_weights(trained, model)
    return trained
