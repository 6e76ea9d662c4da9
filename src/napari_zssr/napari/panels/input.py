"""The input panel: which layer(s), which mode, what scale, which planes and pyramid level."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, FloatSpinBox
from napari.layers import Image

from ...core.config import MAX_SCALE
from ...pipeline import is_time_label
from ..choices import Mode, Planes, StackAxis, StackMode, texts

__all__ = ["InputPanel", "level_data"]


def level_data(layer: Image, level: int = 0) -> Any:
    """Data of ``layer`` at a pyramid level (the data itself when not multiscale)."""
    if not layer.multiscale:
        return layer.data
    return layer.data[min(max(int(level), 0), len(layer.data) - 1)]


class InputPanel(Container):
    """Image layer(s), mode, scale (per-axis under Advanced), Z ratio, planes, pyramid level.

    Parameters
    ----------
    image_choices : callable
        Returns ``(name, layer)`` pairs of the viewer's image layers.
    """

    def __init__(self, image_choices: Callable[..., list]) -> None:
        super().__init__(labels=True)
        self.margins = (0, 0, 0, 0)
        self.image = ComboBox(label="Image", choices=image_choices, nullable=False)
        self.all_selected = CheckBox(
            text="all selected layers",
            value=False,
            tooltip="Process every selected image layer (e.g. the channels of a channel_axis "
            "split) in one go; each result keeps its layer's colormap.",
        )
        self.level = ComboBox(
            label="Pyramid level",
            choices=[0],
            value=0,
            tooltip="Level of a multiscale layer to process: 0 is the finest (full resolution).",
        )
        self.mode = ComboBox(
            label="Mode",
            choices=texts(Mode),
            value=Mode.XY.value,
            tooltip="Upscale Y/X, or make a Z stack isotropic (the lateral planes teach the "
            "network to upsample the coarse Z axis).",
        )
        self.scale = FloatSpinBox(
            label="Scale factor",
            value=2.0,
            min=1.01,
            max=MAX_SCALE,
            step=0.5,
            tooltip=f"Upscaling factor of Y and X (1.01-{MAX_SCALE:g}; per-axis under Advanced).",
        )
        self.z_ratio = FloatSpinBox(
            label="Z/XY ratio",
            value=2.0,
            min=1.01,
            max=MAX_SCALE,
            step=0.1,
            tooltip="Factor applied to Z: the Z step divided by the Y/X pixel size.",
        )
        self.axial_fwhm = FloatSpinBox(
            label="Axial FWHM (px)",
            value=0.0,
            min=0.0,
            max=64.0,
            step=0.1,
            tooltip="FWHM, in lateral pixels, of the axial blur beyond the lateral one "
            "(about sqrt(fwhm_z**2 - fwhm_xy**2)); 0 = only the integration over one z step.",
        )
        self._build_stack_options()
        self.extend(
            [
                self.image,
                self.all_selected,
                self.level,
                self.mode,
                self.scale,
                self.z_ratio,
                self.axial_fwhm,
            ]
        )
        self.changed_widgets = [
            self.image,
            self.all_selected,
            self.mode,
            self.planes,
            self.per_axis,
            self.scale,
            self.scale_y,
            self.scale_x,
            self.level,
        ]

    def _build_stack_options(self) -> None:
        """Planes, stack training, replace; the per-axis scale (under Advanced)."""
        self.planes = ComboBox(
            label="Planes",
            choices=texts(Planes),
            value=Planes.CURRENT.value,
            tooltip="Process the plane (or, for Z to isotropic, the volume) shown in the "
            "viewer, or every one of the stack.",
        )
        self.stack_axis = ComboBox(
            label="Stack axis",
            choices=texts(StackAxis),
            value=StackAxis.Z.value,
            tooltip="What the stack's first axis holds. T (time): its planes are frames of one "
            "field, and with the noise on auto the differences of consecutive frames also read "
            "the noise (single frames read it low where it is correlated between neighbours or "
            "sits in sparse bright structure). Set from the layer's axis labels (t or time).",
        )
        self.stack_mode = ComboBox(
            label="Stack training",
            choices=texts(StackMode),
            value=StackMode.SHARED.value,
            tooltip="shared: one network trained on the whole stack, fine-tuned briefly on "
            "each plane (much faster); per plane: a network from scratch for every plane.",
        )
        self.replace = CheckBox(
            text="replace previous result",
            value=False,
            tooltip="Replace the earlier result of the same source layer instead of adding "
            "a new layer.",
        )
        self.per_axis = CheckBox(text="per-axis scale", value=False)
        self.scale_y = FloatSpinBox(label="Scale Y", value=2.0, min=1.0, max=MAX_SCALE, step=0.5)
        self.scale_x = FloatSpinBox(label="Scale X", value=2.0, min=1.0, max=MAX_SCALE, step=0.5)
        self.stack_widgets = [self.planes, self.stack_axis, self.stack_mode, self.replace]
        """Shown after the PSF panel (they concern the run as a whole)."""
        self.advanced = [self.per_axis, self.scale_y, self.scale_x]
        """Shown under Advanced."""

    # ------------------------------------------------------------------------- values
    def scale_pair(self) -> tuple[float, float]:
        """(Y, X) factors; the request checks their range."""
        if self.per_axis.value:
            return float(self.scale_y.value), float(self.scale_x.value)
        s = float(self.scale.value)
        return s, s

    def axial_fwhm_px(self) -> float | None:
        """Axial FWHM in lateral pixels, None for 0."""
        value = float(self.axial_fwhm.value)
        return value if value > 0 else None

    def axis_labels(self, layer: Image) -> list[str] | None:
        """The layer's axis labels, the first one as the "Stack axis" box says for a 3-D
        stack (``t`` or ``z``): what the request's axes are made from."""
        labels = [str(v) for v in getattr(layer, "axis_labels", ())] or None
        if layer.ndim != 3:
            return labels
        labels = labels or [""] * 3
        return ["t" if self.stack_axis.value == StackAxis.T else "z", *labels[1:]]

    def chosen_level(self, layer: Image) -> int:
        """The pyramid level to process (0 unless the layer is multiscale)."""
        return int(self.level.value or 0) if layer.multiscale else 0

    @staticmethod
    def iso_eligible(layer: Image | None) -> bool:
        """Whether a layer has a Z axis coarser than its pixels."""
        if layer is None or layer.rgb or layer.ndim < 3:
            return False
        scale = np.asarray(layer.scale, dtype=float)
        return bool(scale[-3] > max(scale[-2], scale[-1]) * 1.0001)

    # ------------------------------------------------------------------------- reactions
    def on_image(self, layer: Image | None) -> None:
        """A new layer: its Z ratio and its pyramid levels."""
        if layer is not None and self.iso_eligible(layer):
            s = np.asarray(layer.scale, dtype=float)
            self.z_ratio.value = float(min(MAX_SCALE, max(1.01, s[-3] / s[-1])))
        if layer is not None and layer.ndim == 3:  # the stack axis as the layer labels it
            timed = is_time_label((getattr(layer, "axis_labels", None) or ("",))[0])
            self.stack_axis.value = (StackAxis.T if timed else StackAxis.Z).value
        levels = list(range(len(layer.data))) if layer is not None and layer.multiscale else [0]
        shapes = [tuple(level_data(layer, k).shape) for k in levels] if layer else [()]
        self.level.choices = [(f"{k}: {'x'.join(map(str, s))}", k) for k, s in zip(levels, shapes)]
        self.level.value = 0  # the finest, unless the user picks another

    def refresh(self, iso_offered: bool, iso: bool, stacked: bool) -> None:
        """Show the options that apply."""
        layer = self.image.value
        self.level.visible = bool(layer is not None and layer.multiscale)
        self.mode.visible = iso_offered
        self.z_ratio.visible = iso
        self.axial_fwhm.visible = iso
        self.scale.visible = not iso
        self.scale.enabled = not self.per_axis.value
        self.scale_y.visible = self.per_axis.value
        self.scale_x.visible = self.per_axis.value
        self.planes.visible = stacked
        whole = stacked and not iso and self.planes.value == Planes.ALL
        self.stack_mode.visible = whole
        # (not read back from stack_mode: a hidden dock reports every widget as invisible)
        self.stack_axis.visible = whole and layer is not None and int(layer.ndim) == 3
