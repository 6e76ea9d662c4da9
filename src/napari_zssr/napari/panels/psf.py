"""The PSF panel: the degradation model, the same choices as the command line, and its kernel.

Reading a PSF file and computing the kernel preview (a model PSF takes a second) happen in
worker threads; the form only checks what it can check at once (a missing pixel size) and
shows "computing..." meanwhile. The preview waits for the settings to stay still for a moment
(``PREVIEW_DELAY_MS``), so that scrolling a spin box does not start a computation per step.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, FileEdit, FloatSpinBox, Label
from napari.layers import Image
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error
from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import QLabel

from ...pipeline import (
    MODALITIES,
    EstimateSpec,
    OpticsSpec,
    PSFArraySpec,
    PSFFileSpec,
    PSFSpec,
)
from ..choices import PSFSource, texts
from ..qt_parts import kernel_pixmap
from ..worker import Outcome, read_psf_file

__all__ = ["PSFPanel", "level_zero"]

BICUBIC_TEXT = "bicubic (MATLAB, antialiased)"
KERNEL_TEXT_WIDTH = 42
"""Characters per line of the kernel summary."""
PREVIEW_DELAY_MS = 150
"""Quiet time before the kernel preview is computed."""


def _spin(label: str, value: float, lo: float, hi: float, step: float, tip: str) -> FloatSpinBox:
    return FloatSpinBox(label=label, value=value, min=lo, max=hi, step=step, tooltip=tip)


class PSFPanel(Container):
    """PSF source (none, layer, file, optics), its sizes and optics, and the kernel preview.

    Parameters
    ----------
    psf_layer_choices : callable
        Returns ``(name, layer)`` pairs of the layers that can hold a PSF.
    """

    def __init__(self, psf_layer_choices: Callable[..., list]) -> None:
        super().__init__(labels=True)
        self.margins = (0, 0, 0, 0)
        self._file_cache: dict[tuple[str, float], tuple[np.ndarray, Any]] = {}
        self._preview_generation = 0
        self._estimates: dict[tuple[int, tuple[float, ...]], tuple[Any, dict[str, Any]]] = {}
        self._pending: Callable[[], Any] | None = None
        self.alive = True
        self.on_file_read: Callable[[], None] = lambda: None
        """Called (main thread) when a PSF file's content has arrived."""
        self._build(psf_layer_choices)
        self.changed_widgets = [
            self.psf_source,
            self.psf_is_kernel,
            self.image_pixel,
            self.psf_pixel,
            self.psf_z,
            self.na,
            self.wavelength,
            self.immersion,
            self.modality,
        ]
        self._timer = QTimer()
        self._timer.setSingleShot(True)
        self._timer.setInterval(PREVIEW_DELAY_MS)
        self._timer.timeout.connect(self._start_preview)
        self.psf_layer.changed.connect(self._on_psf_layer)
        self.psf_file.changed.connect(self._on_psf_file)

    def _build(self, psf_layer_choices: Callable[..., list]) -> None:
        self.psf_source = ComboBox(
            label="PSF",
            choices=texts(PSFSource),
            value=PSFSource.NONE.value,
            tooltip="Degradation model: bicubic, the microscope's PSF as the downscaling "
            "kernel, or a kernel estimated from the image itself when the run starts.",
        )
        self.psf_layer = ComboBox(
            label="PSF layer",
            choices=psf_layer_choices,
            nullable=True,
            tooltip="An image layer holding a PSF: a 2D PSF or a 3D bead stack (Z, Y, X).",
        )
        self.psf_file = FileEdit(
            label="PSF file",
            mode="r",
            filter="PSF (*.tif *.tiff *.npy *.mat)",
            tooltip="A 2D PSF or a 3D bead stack: .tif, .npy or .mat",
        )
        self.psf_is_kernel = CheckBox(
            text="file is the kernel (output grid)",
            value=False,
            tooltip="The file already holds the 2D kernel on the output (upscaled) pixel grid: "
            "used as given, no pixel size needed.",
        )
        self.psf_pixel = _spin(
            "PSF pixel (µm)",
            0.0,
            0.0,
            100.0,
            0.005,
            "Lateral pixel size of the PSF in micrometres.",
        )
        self.psf_z = _spin(
            "PSF z step (µm)",
            0.0,
            0.0,
            100.0,
            0.01,
            "Z step of a bead stack in micrometres (recorded; optional).",
        )
        self._build_optics()
        self._build_kernel_row()
        self.extend(
            [
                self.psf_source,
                self.psf_layer,
                self.psf_file,
                self.psf_is_kernel,
                self.psf_pixel,
                self.psf_z,
                self.na,
                self.wavelength,
                self.immersion,
                self.modality,
                self.image_pixel,
                self.kernel_row,
            ]
        )

    def _build_optics(self) -> None:
        """NA, wavelength, immersion, modality; the image's pixel size."""
        self.na = FloatSpinBox(label="NA", value=1.4, min=0.05, max=1.7, step=0.05)
        self.wavelength = _spin(
            "Emission (µm)", 0.52, 0.2, 2.0, 0.01, "Emission wavelength in micrometres."
        )
        self.immersion = _spin(
            "Immersion index",
            1.515,
            1.0,
            2.0,
            0.005,
            "Refractive index of the immersion medium: oil 1.515, "
            "water 1.33, silicone 1.40, air 1.0.",
        )
        self.modality = ComboBox(
            label="Modality",
            choices=list(MODALITIES),
            value="widefield",
            tooltip="Microscope type of the model PSF.",
        )
        self.image_pixel = _spin(
            "Image pixel (µm)",
            0.0,
            0.0,
            100.0,
            0.005,
            "The layer has no physical scale: enter its pixel size to use a PSF.",
        )
        for w in (self.psf_pixel, self.psf_z, self.image_pixel):
            w.native.setDecimals(4)

    def _build_kernel_row(self) -> None:
        """The kernel's description and thumbnail."""
        self.kernel_label = Label(value=BICUBIC_TEXT)
        self.kernel_thumb = QLabel()
        self.kernel_thumb.setFixedSize(48, 48)
        self.kernel_thumb.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.kernel_thumb.setStyleSheet("background: black;")
        self.kernel_thumb.setVisible(False)
        self.kernel_row = Container(label="Kernel", layout="horizontal", labels=False)
        self.kernel_row.append(self.kernel_label)
        self.kernel_row.native.layout().addWidget(self.kernel_thumb)
        self.kernel_row.margins = (0, 0, 0, 0)

    # ------------------------------------------------------------------------- specs
    @property
    def active(self) -> bool:
        """Whether a PSF (not bicubic) is chosen."""
        return self.psf_source.value != PSFSource.NONE

    @property
    def labels_map(self) -> dict[str, str]:
        """How this panel names the request's parameters in messages."""
        return {
            "pixel_size": "the image pixel size ('Image pixel (µm)')",
            "psf_pixel_size": "'PSF pixel (µm)'",
            "psf_is_kernel": "'file is the kernel'",
            "na": "NA",
            "wavelength": "'Emission (µm)'",
            "immersion_index": "'Immersion index'",
            "modality": "'Modality'",
        }

    def image_pixel_size(self, layer: Image) -> tuple[float | None, float | None]:
        """(y, x) pixel size in um: the layer's scale, else the value entered (None if 0)."""
        scale = np.asarray(layer.scale, dtype=float)
        if not np.allclose(scale[-2:], 1.0):
            return abs(float(scale[-2])), abs(float(scale[-1]))
        value = float(self.image_pixel.value)
        return (value, value) if value > 0 else (None, None)

    def spec(self) -> PSFSpec | None:
        """The PSF specification of the form (None: bicubic); raises ValueError when unusable."""
        source = self.psf_source.value
        if source == PSFSource.NONE:
            return None
        if source == PSFSource.ESTIMATE:
            return EstimateSpec()
        if source == PSFSource.OPTICS:
            return OpticsSpec(
                float(self.na.value),
                float(self.wavelength.value),
                float(self.immersion.value),
                str(self.modality.value),
            )
        px = float(self.psf_pixel.value)
        dz = float(self.psf_z.value) or None
        if source == PSFSource.LAYER:
            layer = self.psf_layer.value
            if layer is None:
                raise ValueError("choose the image layer that holds the PSF")
            if px <= 0:
                raise ValueError("enter the PSF pixel size in micrometres (> 0)")
            return PSFArraySpec(level_zero(layer), (dz, px, px), f"layer '{layer.name}'")
        path = self._file_path()
        if path is None:
            raise ValueError("choose an existing PSF file (.tif, .npy or .mat)")
        if self.psf_is_kernel.value:
            return PSFFileSpec(path, None, True)
        if px <= 0:
            raise ValueError("enter the PSF pixel size in micrometres (> 0)")
        return PSFFileSpec(path, (dz, px, px))

    def cached_file(self) -> tuple[np.ndarray, Any] | None:
        """The chosen PSF file's content if it was read already."""
        key = self._file_key()
        return self._file_cache.get(key) if key is not None else None

    def psf_is_3d(self) -> bool:
        """Whether the chosen PSF is a 3D bead stack."""
        if self.psf_source.value == PSFSource.LAYER:
            layer = self.psf_layer.value
            return layer is not None and layer.ndim == 3
        if self.psf_source.value == PSFSource.FILE:
            cached = self.cached_file()
            return cached is not None and np.ndim(cached[0]) == 3
        return False

    # ------------------------------------------------------------------------- files
    def _file_path(self) -> Path | None:
        value = self.psf_file.value
        if value is None or str(value) in ("", "."):
            return None
        path = Path(value)
        return path if path.is_file() else None

    def _file_key(self) -> tuple[str, float] | None:
        path = self._file_path()
        return (str(path.resolve()), path.stat().st_mtime) if path is not None else None

    def _on_psf_layer(self, layer: Image | None) -> None:
        if layer is not None:
            s = np.asarray(layer.scale, dtype=float)
            if s[-1] != 1.0:
                self.psf_pixel.value = float(s[-1])
            if layer.ndim == 3 and s[0] != 1.0:
                self.psf_z.value = float(s[0])

    def _on_psf_file(self, *_: Any) -> None:
        """Read the file in a worker; its pixel size fills the form when it comes back."""
        key = self._file_key()
        if key is None or key in self._file_cache:
            return
        worker = create_worker(read_psf_file, PSFFileSpec(key[0]), _start_thread=False)
        worker.returned.connect(lambda outcome, k=key: self._file_read(k, outcome))
        worker.start()

    def _file_failed(self, exc: BaseException) -> None:
        """A damaged file can make any reader fail: say so, and go on."""
        if not self.alive:
            return
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        show_error(f"ZSSR: cannot use the PSF file: {reason}")
        self._set_text(f"not ready: {reason}")
        self.kernel_thumb.setVisible(False)

    def _file_read(self, key: tuple[str, float], outcome: Outcome) -> None:
        if not self.alive:
            return
        if outcome.error is not None:
            self._file_failed(outcome.error)
            return
        self._file_cache = {key: outcome.value}  # one file at a time
        array, voxel = outcome.value
        if voxel is not None:
            self.psf_pixel.value = float(voxel[2])
            if np.ndim(array) == 3 and voxel[0] is not None:
                self.psf_z.value = float(voxel[0])
        self.on_file_read()

    # ------------------------------------------------------------------------- preview
    def refresh(self, iso: bool, unit_scale: bool) -> None:
        """Show the options of the chosen PSF source."""
        source = self.psf_source.value
        on = source != PSFSource.NONE and not iso
        self.psf_source.visible = not iso
        self.psf_layer.visible = on and source == PSFSource.LAYER
        self.psf_file.visible = on and source == PSFSource.FILE
        self.psf_is_kernel.visible = on and source == PSFSource.FILE
        sized = (
            on
            and source in (PSFSource.LAYER, PSFSource.FILE)
            and not (source == PSFSource.FILE and self.psf_is_kernel.value)
        )
        self.psf_pixel.visible = sized
        self.psf_z.visible = sized and self.psf_is_3d()
        for w in (self.na, self.wavelength, self.immersion, self.modality):
            w.visible = on and source == PSFSource.OPTICS
        self.image_pixel.visible = on and unit_scale and source != PSFSource.ESTIMATE
        self.kernel_row.visible = not iso

    def preview(self, compute: Callable[[], tuple[Any, ...]] | None, problem: str = "") -> None:
        """Show the kernel that ``compute`` (run in a worker, after a short delay) returns.

        ``compute`` None shows the bicubic model, or ``problem`` when there is one.
        """
        self._preview_generation += 1
        self._timer.stop()
        if problem:
            self._set_text(f"not ready: {problem}")
            self.kernel_thumb.setVisible(False)
            return
        if compute is None:
            self.show_kernel(None, {})
            return
        self._set_text("computing the kernel...")
        self._pending = compute
        self._timer.start()

    def _start_preview(self) -> None:
        compute, generation = self._pending, self._preview_generation
        if compute is None or not self.alive:
            return
        worker = create_worker(compute, _start_thread=False)
        worker.returned.connect(lambda outcome, g=generation: self._preview_done(g, outcome))
        worker.start()

    def _preview_done(self, generation: int, outcome: Outcome) -> None:
        if not self.alive or generation != self._preview_generation:
            return  # the settings changed since: a newer preview is on its way
        if outcome.error is not None:
            self._set_text(f"not ready: {outcome.error}")
            self.kernel_thumb.setVisible(False)
            return
        self.show_kernel(*outcome.value)

    def show_result(
        self, layer: Any, scale: Any, kernel: np.ndarray | None, record: dict[str, Any]
    ) -> None:
        """Show a run's kernel; an estimated one is kept for ``layer`` at ``scale``, so that
        the kernel row goes on showing it (not "when the run starts") until they change."""
        if record.get("source") == "estimate":
            self._estimates = {(id(layer), tuple(float(v) for v in scale)): (kernel, record)}
        self.show_known(kernel, record)

    def known_estimate(self, layer: Any, scale: Any) -> tuple[Any, dict[str, Any]] | None:
        """The kernel the last run estimated for ``layer`` at ``scale``, with its record."""
        return self._estimates.get((id(layer), tuple(float(v) for v in scale)))

    def show_known(self, kernel: np.ndarray | None, record: dict[str, Any]) -> None:
        """Show a kernel known already (a pending preview is dropped)."""
        self._preview_generation += 1
        self._timer.stop()
        self.show_kernel(kernel, record)

    def show_kernel(self, kernel: np.ndarray | None, record: dict[str, Any]) -> None:
        """Show a kernel and its description (None: bicubic)."""
        if kernel is None:  # bicubic; an estimate to come, or one that fell back to bicubic
            estimate = record.get("source") == "estimate"
            self._set_text(str(record.get("description")) if estimate else BICUBIC_TEXT)
            self.kernel_thumb.setVisible(False)
            return
        self._set_text(str(record.get("description", "")))
        self.kernel_thumb.setPixmap(kernel_pixmap(kernel))
        self.kernel_thumb.setToolTip(f"kernel {kernel.shape[0]} x {kernel.shape[1]} (HR grid)")
        self.kernel_thumb.setVisible(True)

    def _set_text(self, text: str) -> None:
        """Show ``text`` in the kernel row, wrapped by hand (the dock keeps its width)."""
        self.kernel_label.value = textwrap.fill(text, KERNEL_TEXT_WIDTH, break_on_hyphens=False)
        self.kernel_label.tooltip = text

    @property
    def kernel_text(self) -> str:
        """The kernel summary shown (without its line breaks)."""
        return self.kernel_label.value.replace("\n", " ")


def level_zero(layer: Image) -> Any:
    """Full-resolution data of a layer (a PSF is read at its finest level)."""
    return layer.data[0] if layer.multiscale else layer.data
