"""The napari dock widget of napari-zssr.

The widget only gathers parameters, calls the engine (:func:`napari_zssr.super_resolve`), the
PSF helpers (:mod:`napari_zssr.core.psf`) and the isotropic reconstruction
(:mod:`napari_zssr.isotropic`), and places the results. Nothing here imports torch: the engine
is imported inside the worker thread when the first run starts.

Threading: a run is a napari ``thread_worker`` generator. The engine itself runs in an inner
thread and reports through a queue, so the generator can ``yield`` every progress report to
the main thread; the Stop button sets an event that makes the engine's callback return False
(the engine then raises :class:`~napari_zssr.Cancelled`). Layers are read and written only in
the main thread.
"""

from __future__ import annotations

import atexit
import dataclasses
import importlib.util
import math
import queue
import textwrap
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    Label,
    ProgressBar,
    PushButton,
    SpinBox,
)
from napari.layers import Image
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import QEvent, QPointF, QRectF, QSize, Qt
from qtpy.QtGui import QColor, QImage, QPainter, QPen, QPixmap, QPolygonF
from qtpy.QtWidgets import QFrame, QLabel, QScrollArea, QSizePolicy, QWidget
from superqt import QCollapsible

from ._placement import axis_factors, upscaled_placement, visible_data_box
from .core.config import (
    GRADUAL_SCALES,
    MAX_NOISE_STD,
    PRESETS,
    ZSSRConfig,
    default_noise_std,
    resolve_config,
)
from .core.progress import Cancelled, Progress

if TYPE_CHECKING:
    import napari.viewer

__all__ = ["ZSSRWidget"]

PSF_NONE = "none (bicubic)"
PSF_LAYER = "image layer"
PSF_FILE = "file"
PSF_OPTICS = "optics (NA, wavelength)"
PSF_CHOICES = (PSF_NONE, PSF_LAYER, PSF_FILE, PSF_OPTICS)

MODE_XY = "upscale Y/X"
MODE_ISO = "Z to isotropic"

PLANES_CURRENT = "current plane"
PLANES_ALL = "whole stack"

STACK_PER_PLANE = "per plane"
STACK_SHARED = "shared"
_STACK_MODES = {STACK_PER_PLANE: "per_plane", STACK_SHARED: "shared"}

DEVICES = ("auto", "cuda", "mps", "cpu")
#: The presets in order of cost (a test checks that the list is every preset).
PRESET_NAMES = ("fast", "balanced", "paper", "paper-gradual", "real")

KERNEL_TEXT_WIDTH = 42
"""Characters per line of the kernel summary."""
PREVIEW_MAX_SIDE = 256
"""Largest side, in input pixels, of the region a preview processes."""
STOP_GRACE_S = 1.5
"""After Stop, seconds to wait for the engine to notice before leaving it behind."""
REPORT_INTERVAL_S = 0.1
"""Least seconds between two training reports passed on to the GUI."""
CLOSE_WAIT_S = 1.0
"""When the widget is closed, seconds the GUI waits for the worker to leave our code."""

_NOISE_TIP = (
    "Gaussian noise added to the low-resolution training inputs only (fraction of the "
    "intensity range): the network learns to ignore noise that does not recur across scales. "
    "By default it is estimated from the image (the field then shows the estimate after a run "
    "or preview); untick the estimate to type a value, or 0 for a noise-free image. Without "
    "it, a noisy image comes out worse than bicubic, and far worse with a PSF."
)
_OOM_ADVICE = (
    "ZSSR ran out of GPU memory. Lower the crop size or the tile size under Advanced, "
    "process the current plane only, or choose device 'cpu'."
)


def _unwrap(obj: Any) -> Any:
    """The napari object behind the read-only proxy napari hands to plugin widgets."""
    return getattr(obj, "__wrapped__", obj)


def _level0(layer: Image) -> Any:
    """Full-resolution data of an image layer (level 0 of a multiscale pyramid)."""
    return layer.data[0] if layer.multiscale else layer.data


def _fmt_factor(value: float) -> str:
    return f"{value:g}"


def _fmt_seconds(seconds: float) -> str:
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, sec = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _is_oom(exc: BaseException) -> bool:
    name = type(exc).__name__
    text = str(exc).lower()
    return name == "OutOfMemoryError" or "out of memory" in text


def describe_error(exc: BaseException) -> str:
    """A message for users: what failed and, for out-of-memory errors, what to change.

    Parameters
    ----------
    exc : BaseException
        The exception a run raised.

    Returns
    -------
    str
        One or two sentences for a napari notification.
    """
    first_line = (str(exc).strip().splitlines() or [""])[0]
    if _is_oom(exc):
        return f"{_OOM_ADVICE} ({type(exc).__name__}: {first_line})"
    if isinstance(exc, (ValueError, TypeError)):
        return f"ZSSR: {first_line}"
    return f"ZSSR failed: {type(exc).__name__}: {first_line}"


# ---------------------------------------------------------------------------------------------
# Work description and the worker (no Qt, no layers in here)
# ---------------------------------------------------------------------------------------------


@dataclass
class _Job:
    """Everything a worker needs to process one source layer (built in the main thread)."""

    source: Image
    source_name: str
    data: Any
    index: tuple | None
    offset: tuple[float, ...]
    rgb: bool
    kind: str  # "upscale" or "isotropic_z"
    scale: tuple[float, float]
    config: ZSSRConfig
    preset: str
    noise_std: float | str  # a level, or "auto" (estimated from the image)
    device: str
    seed: int
    stack_mode: str
    planes: str
    preview: bool
    replace: bool
    result_name: str
    kernel: np.ndarray | None = None
    psf: dict[str, Any] = field(default_factory=dict)
    z_ratio: float = 1.0
    axial_fwhm: float | None = None
    region: tuple[int, int, int, int] | None = None
    snapshot: np.ndarray | None = None
    """A copy of the input taken in the main thread when the run started (in-memory layers),
    so that edits or a new array during the run cannot leak into the result."""

    def read(self) -> np.ndarray:
        """The input array (the snapshot, else the plane or crop of the layer's lazy data,
        read in the worker)."""
        if self.snapshot is not None:
            return self.snapshot
        arr = self.data[self.index] if self.index is not None else self.data
        return np.asarray(arr)


def _snapshot(data: Any, index: tuple | None) -> np.ndarray | None:
    """A private copy of ``data[index]`` for in-memory (NumPy) data; None for lazy data
    (dask, zarr), which is read in the worker and whose replacement is detected instead."""
    if not isinstance(data, np.ndarray):
        return None
    return np.array(data[index] if index is not None else data, copy=True)


_DONE = object()


class _RunStop(threading.Event):
    """The stop flag of one run: set by Stop, or raised when napari aborts the worker.

    napari aborts the workers of a closing viewer without resuming their generators, so the
    run cannot hear of it through them; the engine's callback reads this flag instead.
    """

    worker: Any = None

    def is_set(self) -> bool:
        aborted = self.worker is not None and bool(getattr(self.worker, "abort_requested", 0))
        return super().is_set() or aborted


_ENGINE_THREADS: list[tuple[threading.Thread, threading.Event]] = []
_BACKGROUND: list[threading.Event] = []
_ENGINE_LOCK = threading.Lock()


def _track_engine_thread(thread: threading.Thread, stop: threading.Event) -> None:
    with _ENGINE_LOCK:
        _ENGINE_THREADS[:] = [(t, e) for t, e in _ENGINE_THREADS if t.is_alive()]
        _ENGINE_THREADS.append((thread, stop))


def _background_task() -> threading.Event:
    """Register work running on a Qt worker thread; set the returned event when it ends."""
    done = threading.Event()
    with _ENGINE_LOCK:
        _BACKGROUND[:] = [e for e in _BACKGROUND if not e.is_set()]
        _BACKGROUND.append(done)
    return done


def _wait_background(timeout: float) -> None:
    """Wait (at most ``timeout`` seconds) for the worker tasks still running to end."""
    with _ENGINE_LOCK:
        tasks = list(_BACKGROUND)
    deadline = time.monotonic() + timeout
    for done in tasks:
        done.wait(max(0.0, deadline - time.monotonic()))


@atexit.register
def _stop_engine_threads(timeout: float = 30.0) -> None:
    """At exit, stop the runs still going and wait for the background work to end.

    A thread killed inside a torch operation (or inside ``import torch``) aborts the
    interpreter, so every run is asked to stop (it does at its next progress report) and
    both the engine threads and the worker tasks are waited for.
    """
    with _ENGINE_LOCK:
        items = list(_ENGINE_THREADS)
        tasks = list(_BACKGROUND)
    for _, stop in items:
        stop.set()
    deadline = time.monotonic() + timeout
    for thread, _ in items:
        thread.join(max(0.0, deadline - time.monotonic()))
    for done in tasks:
        done.wait(max(0.0, deadline - time.monotonic()))


def _pump(
    fn: Callable[[Callable[[Progress], bool]], Any],
    stop: threading.Event,
    grace: float = STOP_GRACE_S,
) -> Generator[tuple, None, tuple[str, Any]]:
    """Run ``fn(callback)`` in an inner thread and yield its progress reports.

    Returns ``("ok", value)``, ``("cancelled", None)`` or ``("error", exception)``. After
    ``stop`` is set, the engine gets ``grace`` seconds to notice; then it is left behind (its
    next callback returns False) so that the caller is free at once.
    """
    reports: queue.SimpleQueue = queue.SimpleQueue()
    box: dict[str, Any] = {}
    last_sent = [-math.inf]

    def callback(progress: Progress) -> bool:
        if stop.is_set():
            return False
        # Training reports come often (each iteration on the CPU, for a prompt stop); the GUI
        # needs a few per second. Other stages are rare and always shown.
        now = time.monotonic()
        if progress.stage != "train" or now - last_sent[0] >= REPORT_INTERVAL_S:
            last_sent[0] = now
            reports.put(progress)
        return True

    def target() -> None:
        try:
            box["value"] = fn(callback)
        except BaseException as exc:  # relayed to the main thread
            box["error"] = exc
        finally:
            reports.put(_DONE)

    thread = threading.Thread(target=target, name="napari-zssr-engine", daemon=True)
    thread.start()
    _track_engine_thread(thread, stop)
    stop_seen: float | None = None
    while True:
        try:
            item = reports.get(timeout=0.05)
        except queue.Empty:
            if stop.is_set():
                stop_seen = stop_seen if stop_seen is not None else time.monotonic()
                if time.monotonic() - stop_seen > grace:
                    return "cancelled", None
            continue
        if item is _DONE:
            break
        if not stop.is_set():
            yield ("progress", item)
    if stop.is_set():
        return "cancelled", None
    if "error" in box:
        if isinstance(box["error"], Cancelled):
            return "cancelled", None
        return "error", box["error"]
    return "ok", box["value"]


def _execute(job: _Job, image: np.ndarray, callback: Callable[[Progress], bool]) -> tuple:
    """Call the engine for one job; returns ``(output, info)``."""
    if job.kind == "isotropic_z":
        from .isotropic import isotropic_z

        lead = image.shape[:-3]
        out, info = isotropic_z(
            image.reshape(image.shape[-3:]),
            job.z_ratio,
            axial_fwhm=job.axial_fwhm,
            preset=job.preset,
            config=job.config,
            device=job.device,
            seed=job.seed,
            callback=callback,
            return_info=True,
        )
        return out.reshape(lead + out.shape), dict(info)
    from .api import super_resolve

    out, info = super_resolve(
        image,
        job.scale,
        kernel=job.kernel,
        noise_std=job.noise_std,
        preset=job.preset,
        config=job.config,
        rgb=job.rgb,
        device=job.device,
        seed=job.seed,
        callback=callback,
        stack_mode=job.stack_mode,
        return_info=True,
    )
    return out, info


def _released(gen: Generator[tuple, None, None], idle: threading.Event) -> Generator:
    """Yield what ``gen`` yields, with ``idle`` set whenever ``gen`` is suspended.

    A worker aborted by napari is never resumed: its generator stays suspended at a
    ``yield`` (no code of ours runs) and its ``finally`` does not run until it is collected.
    Waits for the background work then end at once instead of running out their timeouts.
    """
    try:
        while True:
            idle.clear()
            try:
                message = next(gen)
            except StopIteration:
                return
            idle.set()
            yield message
    finally:
        idle.set()
        gen.close()


def _run_jobs(jobs: list[_Job], stop: threading.Event) -> Generator[tuple, None, None]:
    """Worker generator: process the jobs one after another, yielding messages.

    Messages: ``("start", i)``, ``("device", i, name, reason)``, ``("progress", Progress)``,
    ``("result", i, array, info)``, ``("error", i, exception)``, ``("stopped", i)``,
    ``("done",)``.
    """
    yield from _released(_job_messages(jobs, stop), _background_task())


def _job_messages(jobs: list[_Job], stop: threading.Event) -> Generator[tuple, None, None]:
    """The messages of :func:`_run_jobs`."""
    for i, job in enumerate(jobs):
        if stop.is_set():
            yield ("stopped", i)
            return
        yield ("start", i)
        try:
            image = job.read()
            from .core.device import resolve_device

            dev, reason = resolve_device(job.device)
        except Exception as exc:
            yield ("error", i, exc)
            return
        if dev.type == "cpu":  # a report (a chance to stop) every iteration costs nothing here
            job = dataclasses.replace(job, config=job.config.replace(report_every=1))
        yield ("device", i, str(dev), reason)
        status, value = yield from _pump(lambda cb, j=job, im=image: _execute(j, im, cb), stop)
        if status == "cancelled":
            yield ("stopped", i)
            return
        if status == "error":
            yield ("error", i, value)
            return
        out, info = value
        yield ("result", i, out, info)
    yield ("done",)


def _describe_device(name: str) -> str:
    """Which device ``name`` resolves to and why (imports torch: call it in a worker)."""
    done = _background_task()
    try:
        from .core.device import resolve_device

        try:
            dev, reason = resolve_device(name)
        except (ValueError, TypeError) as exc:
            return f"{name}: unavailable ({exc})"
        return f"{dev} - {reason}"
    finally:
        done.set()


# ---------------------------------------------------------------------------------------------
# Small Qt helpers: loss sparkline and kernel thumbnail
# ---------------------------------------------------------------------------------------------


class LossPlot(QWidget):
    """A tiny sparkline of the training loss (log scale), drawn with QPainter."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._values: list[float] = []
        self.setMinimumHeight(44)
        self.setMaximumHeight(56)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("Training loss (L1, log scale) of the current layer")

    @property
    def values(self) -> list[float]:
        """Losses shown, oldest first."""
        return list(self._values)

    def clear(self) -> None:
        """Forget every value."""
        self._values.clear()
        self.update()

    def add(self, value: float | None) -> None:
        """Append one loss value (ignored unless finite and > 0)."""
        if value is None or not math.isfinite(value) or value <= 0:
            return
        self._values.append(float(value))
        if len(self._values) > 2000:
            self._values = self._values[::2]
        self.update()

    def paintEvent(self, event: Any) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = QRectF(self.rect()).adjusted(1, 1, -1, -1)
        text_color = self.palette().color(self.foregroundRole())
        frame = QColor(text_color)
        frame.setAlpha(60)
        painter.setPen(QPen(frame, 1))
        painter.drawRect(rect)
        if len(self._values) < 2:
            painter.setPen(QPen(text_color))
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, "loss")
            painter.end()
            return
        logs = np.log10(np.asarray(self._values))
        lo, hi = float(logs.min()), float(logs.max())
        span = hi - lo if hi > lo else 1.0
        inner = rect.adjusted(4, 4, -4, -4)
        n = len(logs)
        points = [
            QPointF(
                inner.left() + inner.width() * k / (n - 1),
                inner.bottom() - inner.height() * (v - lo) / span,
            )
            for k, v in enumerate(logs)
        ]
        painter.setPen(QPen(QColor(64, 170, 255), 1.5))
        painter.drawPolyline(QPolygonF(points))
        painter.setPen(QPen(text_color))
        painter.drawText(
            rect.adjusted(4, 2, -4, -2),
            Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop,
            f"loss {self._values[-1]:.3g}",
        )
        painter.end()


class VerticalScrollArea(QScrollArea):
    """Scrolls its content vertically only and is always as wide as the content needs."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

    def _width(self, hint: QSize) -> int:
        bar = self.verticalScrollBar().sizeHint().width()
        return hint.width() + bar + 2 * self.frameWidth()

    def setWidget(self, widget: QWidget) -> None:
        super().setWidget(widget)
        widget.installEventFilter(self)

    def eventFilter(self, obj: Any, event: Any) -> bool:
        if obj is self.widget() and event.type() == QEvent.Type.LayoutRequest:
            self.updateGeometry()
        return super().eventFilter(obj, event)

    def minimumSizeHint(self) -> QSize:
        inner = self.widget()
        base = super().minimumSizeHint()
        if inner is None:
            return base
        return QSize(self._width(inner.minimumSizeHint()), base.height())

    def sizeHint(self) -> QSize:
        inner = self.widget()
        base = super().sizeHint()
        if inner is None:
            return base
        return QSize(self._width(inner.sizeHint()), inner.sizeHint().height())


def kernel_pixmap(kernel: np.ndarray, size: int = 48) -> QPixmap:
    """Grey-level thumbnail of a 2D kernel (normalised to its maximum, nearest upscaling)."""
    k = np.asarray(kernel, dtype=float)
    k = k - min(0.0, float(k.min()))
    peak = float(k.max())
    img8 = np.ascontiguousarray((255 * k / peak if peak > 0 else k).astype(np.uint8))
    h, w = img8.shape
    qimg = QImage(img8.data, w, h, w, QImage.Format.Format_Grayscale8).copy()
    return QPixmap.fromImage(qimg).scaled(
        size,
        size,
        Qt.AspectRatioMode.KeepAspectRatio,
        Qt.TransformationMode.FastTransformation,
    )


def _isotropic_available() -> bool:
    """Whether :mod:`napari_zssr.isotropic` exists (checked without importing it)."""
    return importlib.util.find_spec(f"{__package__}.isotropic") is not None


# ---------------------------------------------------------------------------------------------
# The widget
# ---------------------------------------------------------------------------------------------


class ZSSRWidget(Container):
    """Dock widget: zero-shot super-resolution of napari image layers.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
        The viewer whose layers are listed and receive the results. A
        :class:`napari.components.ViewerModel` works too (no canvas needed).
    """

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(labels=False)
        self._viewer = viewer
        self._worker: Any = None
        self._stop = threading.Event()
        self._jobs: list[_Job] = []
        self._run_t0 = 0.0
        self._run_sources: list[Image] = []
        self._changed_sources: set[int] = set()
        self._job_index = 0
        self._stop_reason = ""
        self._preview_layer: Image | None = None
        self._psf_cache: dict[tuple[str, float], tuple[np.ndarray, Any]] = {}
        self._device_probed = False
        self._device_worker: Any = None
        self._iso_available = _isotropic_available()
        self.last_results: list[Image] = []
        """Layers added by the most recent run (or preview)."""
        self.last_status = ""
        self._noise_note = ""
        """How the most recent run ended: "done", "stopped", "error" or ""."""

        self._alive = True
        self._build()
        self._connect()
        self._apply_preset(self.preset.value)
        active = _unwrap(viewer.layers.selection.active)
        if isinstance(active, Image) and active in self.image.choices:
            self.image.value = active
        self._on_image(self.image.value)

    # ----------------------------------------------------------------------------- building
    def _build(self) -> None:
        fast = PRESETS["fast"]
        self.image = ComboBox(label="Image", choices=self._image_choices, nullable=False)
        self.all_selected = CheckBox(
            text="all selected layers",
            value=False,
            tooltip="Process every selected image layer (e.g. the channels of a channel_axis "
            "split) in one go; each result keeps its layer's colormap.",
        )
        self.mode = ComboBox(
            label="Mode",
            choices=[MODE_XY, MODE_ISO],
            value=MODE_XY,
            tooltip="Upscale Y/X, or make a Z stack isotropic (the lateral planes teach the "
            "network to upsample the coarse Z axis).",
        )
        self.scale = FloatSpinBox(
            label="Scale factor",
            value=2.0,
            min=1.01,
            max=16.0,
            step=0.5,
            tooltip="Upscaling factor of Y and X (1.01-16; per-axis under Advanced).",
        )
        self.z_ratio = FloatSpinBox(
            label="Z/XY ratio",
            value=2.0,
            min=1.01,
            max=16.0,
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
        self.preset = ComboBox(
            label="Preset",
            choices=list(PRESET_NAMES),
            value="balanced",
            tooltip="fast: interactive; balanced: most of the gain; paper: the published "
            "settings; paper-gradual: the reference's gradual x2 configuration (about 6x the "
            "time of paper); real: for noisy real images.",
        )
        self.noise = FloatSpinBox(
            label="Noise on LR sons",
            value=0.0,
            min=0.0,
            max=MAX_NOISE_STD,
            step=0.005,
            tooltip=_NOISE_TIP,
        )
        self.noise_auto = CheckBox(
            text="estimate noise from the image",
            value=True,
            tooltip="Measure the image's own noise level (from its weakly textured patches) "
            "and add that much to the sons: the default. Untick to type a value (0: none). "
            "The paper presets untick it (their published setting is no noise).",
        )
        self.noise_hint = Label(value="estimated by default; 0 only for noise-free images")
        self.noise_hint.tooltip = _NOISE_TIP
        self.psf_source = ComboBox(
            label="PSF",
            choices=list(PSF_CHOICES),
            value=PSF_NONE,
            tooltip="Degradation model: bicubic, or the microscope's PSF as the downscaling "
            "kernel.",
        )
        self.psf_layer = ComboBox(
            label="PSF layer",
            choices=self._psf_layer_choices,
            nullable=True,
            tooltip="An image layer holding a PSF: a 2D PSF or a 3D bead stack (Z, Y, X).",
        )
        self.psf_file = FileEdit(
            label="PSF file",
            mode="r",
            filter="PSF (*.tif *.tiff *.npy *.mat)",
            tooltip="A 2D PSF or a 3D bead stack: .tif, .npy or .mat",
        )
        self.psf_pixel = FloatSpinBox(
            label="PSF pixel (µm)",
            value=0.0,
            min=0.0,
            max=100.0,
            step=0.005,
            tooltip="Lateral pixel size of the PSF in micrometres.",
        )
        self.psf_z = FloatSpinBox(
            label="PSF z step (µm)",
            value=0.0,
            min=0.0,
            max=100.0,
            step=0.01,
            tooltip="Z step of a bead stack in micrometres.",
        )
        self.na = FloatSpinBox(label="NA", value=1.4, min=0.05, max=1.7, step=0.05)
        self.wavelength = FloatSpinBox(
            label="Emission (µm)",
            value=0.52,
            min=0.2,
            max=2.0,
            step=0.01,
            tooltip="Emission wavelength in micrometres.",
        )
        self.image_pixel = FloatSpinBox(
            label="Image pixel (µm)",
            value=0.0,
            min=0.0,
            max=100.0,
            step=0.005,
            tooltip="The layer has no physical scale: enter its pixel size to use a PSF.",
        )
        for w in (self.noise, self.psf_pixel, self.psf_z, self.image_pixel):
            w.native.setDecimals(4)
        self.kernel_label = Label(value="bicubic (MATLAB, antialiased)")
        self._kernel_thumb = QLabel()
        self._kernel_thumb.setFixedSize(48, 48)
        self._kernel_thumb.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._kernel_thumb.setStyleSheet("background: black;")
        self._kernel_thumb.setVisible(False)
        self.kernel_row = Container(label="Kernel", layout="horizontal", labels=False)
        self.kernel_row.append(self.kernel_label)
        self.kernel_row.native.layout().addWidget(self._kernel_thumb)
        self.kernel_row.margins = (0, 0, 0, 0)
        self.planes = ComboBox(
            label="Planes",
            choices=[PLANES_CURRENT, PLANES_ALL],
            value=PLANES_CURRENT,
            tooltip="Process the plane shown in the viewer, or every plane of the stack.",
        )
        self.stack_mode = ComboBox(
            label="Stack training",
            choices=[STACK_SHARED, STACK_PER_PLANE],
            value=STACK_SHARED,
            tooltip="shared: one network trained on the whole stack, fine-tuned briefly on "
            "each plane (much faster); per plane: a network from scratch for every plane.",
        )
        self.replace = CheckBox(
            text="replace previous result",
            value=False,
            tooltip="Replace the earlier result of the same source layer instead of adding "
            "a new layer.",
        )
        form = Container(
            widgets=[
                self.image,
                self.all_selected,
                self.mode,
                self.scale,
                self.z_ratio,
                self.axial_fwhm,
                self.preset,
                self.noise,
                self.noise_auto,
                self.noise_hint,
                self.psf_source,
                self.psf_layer,
                self.psf_file,
                self.psf_pixel,
                self.psf_z,
                self.na,
                self.wavelength,
                self.image_pixel,
                self.kernel_row,
                self.planes,
                self.stack_mode,
                self.replace,
            ],
            labels=True,
        )
        form.margins = (0, 0, 0, 0)

        # Advanced
        self.per_axis = CheckBox(text="per-axis scale", value=False)
        self.scale_y = FloatSpinBox(label="Scale Y", value=2.0, min=1.0, max=16.0, step=0.5)
        self.scale_x = FloatSpinBox(label="Scale X", value=2.0, min=1.0, max=16.0, step=0.5)
        self.max_iters = SpinBox(
            label="Max iterations", value=fast.max_iters, min=1, max=100_000, step=50
        )
        self.crop_size = SpinBox(label="Crop size", value=fast.crop_size, min=8, max=1024, step=8)
        self.gradual = CheckBox(
            text="gradual: intermediate factors first",
            value=bool(fast.gradual_scales),
            tooltip="Large factors are reached in steps, each step's output joining the "
            "training images: x2 then x4 with fast and balanced; with paper, the reference's "
            "gradual x2 steps (x1.5 per axis first) for factors above 2; with paper-gradual, "
            "those steps at any factor. Without a PSF only. One jump when off.",
        )
        self.bp_iters = SpinBox(
            label="Back-projection", value=fast.back_projection_iters, min=0, max=50
        )
        self.ensemble = CheckBox(text="self-ensemble (8 flips/rotations)", value=False)
        self.tile_size = SpinBox(
            label="Tile size",
            value=fast.tile_size,
            min=32,
            max=16384,
            step=32,
            tooltip="Largest side (output pixels) of one network pass; lower it if the GPU "
            "runs out of memory.",
        )
        self.device = ComboBox(label="Device", choices=list(DEVICES), value="auto")
        self.device_info = Label(value="(resolved when a run starts)")
        self.device_info.native.setWordWrap(True)
        self.seed = SpinBox(label="Seed", value=0, min=0, max=2**31 - 1)
        advanced = Container(
            widgets=[
                self.per_axis,
                self.scale_y,
                self.scale_x,
                self.max_iters,
                self.crop_size,
                self.gradual,
                self.bp_iters,
                self.ensemble,
                self.tile_size,
                self.device,
                self.device_info,
                self.seed,
            ],
            labels=True,
        )
        self._collapsible = QCollapsible("Advanced")
        self._collapsible.addWidget(advanced.native)
        self._advanced = advanced
        adv_holder = Container(labels=False)
        adv_holder.margins = (0, 0, 0, 0)
        adv_holder.native.layout().addWidget(self._collapsible)

        # Buttons and status
        self.run_button = PushButton(text="Run")
        self.stop_button = PushButton(text="Stop", enabled=False)
        self.preview_button = PushButton(
            text="Preview",
            tooltip="Quick run of the fast preset on the region visible in the canvas "
            "(current plane); the next preview replaces it.",
        )
        buttons = Container(
            widgets=[self.run_button, self.stop_button, self.preview_button],
            layout="horizontal",
            labels=False,
        )
        buttons.margins = (0, 0, 0, 0)
        self.progress = ProgressBar(value=0, min=0, max=1000, label="Progress")
        self.status = Label(value="ready")
        self.status.native.setWordWrap(True)
        self.device_used = Label(value="device: -")
        self.device_used.native.setWordWrap(True)
        self.loss_plot = LossPlot()
        status = Container(widgets=[self.progress, self.status, self.device_used], labels=False)
        status.margins = (0, 0, 0, 0)
        status.native.layout().addWidget(self.loss_plot)
        # Everything scrolls vertically inside the dock (napari docks ``native``, so the
        # scroll area is built here rather than with magicgui's ``scrollable``).
        body = Container(widgets=[form, adv_holder, buttons, status], labels=False)
        body.native.layout().addStretch(1)
        self._scroll = VerticalScrollArea()
        self._scroll.setWidget(body.native)
        self._body = body
        self.margins = (0, 0, 0, 0)
        self.native.layout().addWidget(self._scroll)

    def _connect(self) -> None:
        self.native.destroyed.connect(self._on_destroyed)
        self.run_button.changed.connect(self.run)
        self.stop_button.changed.connect(self.stop)
        self.preview_button.changed.connect(self.preview)
        self.preset.changed.connect(self._apply_preset)
        for w in (
            self.image,
            self.all_selected,
            self.mode,
            self.psf_source,
            self.planes,
            self.per_axis,
            self.scale,
            self.scale_y,
            self.scale_x,
            self.image_pixel,
            self.psf_pixel,
            self.psf_z,
            self.na,
            self.wavelength,
            self.noise_auto,
        ):
            w.changed.connect(self._refresh)
        self.psf_layer.changed.connect(self._on_psf_layer)
        self.psf_file.changed.connect(self._on_psf_file)
        self.image.changed.connect(self._on_image)
        self.device.changed.connect(self._on_device)
        self._collapsible.toggled.connect(self._on_advanced_toggled)
        layers = self._viewer.layers
        layers.events.inserted.connect(self._on_layers_inserted)
        layers.events.removed.connect(self._on_layer_removed)
        layers.events.moved.connect(self._reset_layer_choices)
        layers.events.reordered.connect(self._reset_layer_choices)
        layers.selection.events.changed.connect(self._refresh)
        for layer in layers:
            layer.events.name.connect(self._reset_layer_choices)

    def _on_destroyed(self, *_: Any) -> None:
        """The dock widget was closed: stop any run and ignore its late messages."""
        self._alive = False
        self._stop.set()
        # Only code of ours that is running now is waited for (a suspended run is not); the
        # engine thread stops at its next progress report.
        _wait_background(timeout=CLOSE_WAIT_S)

    # ----------------------------------------------------------------------------- choices
    def _image_layers(self) -> list[Image]:
        return [_unwrap(x) for x in self._viewer.layers if isinstance(x, Image)]

    def _image_choices(self, *_: Any) -> list[tuple[str, Image]]:
        return [(layer.name, layer) for layer in self._image_layers()]

    def _psf_layer_choices(self, *_: Any) -> list[tuple[str, Image]]:
        return [
            (layer.name, layer)
            for layer in self._image_layers()
            if not layer.rgb and layer.ndim in (2, 3)
        ]

    def _reset_layer_choices(self, *_: Any) -> None:
        self.image.reset_choices()
        self.psf_layer.reset_choices()

    def _on_layers_inserted(self, event: Any) -> None:
        layer = event.value
        layer.events.name.connect(self._reset_layer_choices)
        self._reset_layer_choices()
        self._refresh()

    def _on_layer_removed(self, event: Any) -> None:
        layer = _unwrap(event.value)
        self._reset_layer_choices()
        if layer is self._preview_layer:
            self._preview_layer = None
        if self.busy and any(layer is src for src in self._run_sources):
            self._stop_reason = f"source layer '{layer.name}' was removed"
            self.stop()
        self._refresh()

    # ----------------------------------------------------------------------------- state
    @property
    def busy(self) -> bool:
        """Whether a run (or preview) is in progress."""
        return self._worker is not None

    @property
    def worker(self) -> Any:
        """The napari worker of the run in progress, or None."""
        return self._worker

    @property
    def viewer(self) -> Any:
        """The viewer this widget works on."""
        return self._viewer

    def _layers_to_process(self) -> list[Image]:
        if self.all_selected.value:
            selected = {id(_unwrap(x)) for x in self._viewer.layers.selection}
            layers = [x for x in self._image_layers() if id(x) in selected]
            if not layers:
                raise ValueError(
                    "'all selected layers' is on but no image layer is selected in the layer list"
                )
            return layers
        layer = self.image.value
        if layer is None:
            raise ValueError("no image layer: open or select an image first")
        return [layer]

    def _scale_pair(self) -> tuple[float, float]:
        if self.per_axis.value:
            sy, sx = float(self.scale_y.value), float(self.scale_x.value)
            if sy <= 1.0 and sx <= 1.0:
                raise ValueError("per-axis scale: at least one factor must be > 1 (max 16)")
            return sy, sx
        s = float(self.scale.value)
        return s, s

    def _iso_eligible(self, layer: Image | None) -> bool:
        if layer is None or layer.rgb or layer.ndim < 3:
            return False
        scale = np.asarray(layer.scale, dtype=float)
        return bool(scale[-3] > max(scale[-2], scale[-1]) * 1.0001)

    def _apply_preset(self, name: str) -> None:
        cfg = PRESETS[name]
        self.max_iters.value = cfg.max_iters
        self.crop_size.value = cfg.crop_size
        self.bp_iters.value = cfg.back_projection_iters
        self.ensemble.value = cfg.self_ensemble
        self.tile_size.value = cfg.tile_size
        self.gradual.value = bool(cfg.gradual_scales)
        self.noise_auto.value = default_noise_std(name) == "auto"
        self.noise.value = cfg.noise_std

    def _on_image(self, layer: Image | None) -> None:
        if layer is not None and self._iso_eligible(layer):
            s = np.asarray(layer.scale, dtype=float)
            self.z_ratio.value = float(min(16.0, max(1.01, s[-3] / s[-1])))
        self._refresh()

    def _on_psf_layer(self, layer: Image | None) -> None:
        if layer is not None:
            s = np.asarray(layer.scale, dtype=float)
            if s[-1] != 1.0:
                self.psf_pixel.value = float(s[-1])
            if layer.ndim == 3 and s[0] != 1.0:
                self.psf_z.value = float(s[0])
        self._refresh()

    def _on_psf_file(self, *_: Any) -> None:
        try:
            arr, pixel = self._load_psf_file()
        except Exception as exc:  # a damaged file can make any reader fail: say so, go on
            if self._psf_file_key() is not None:  # a file was chosen: it is unusable
                reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                show_error(f"ZSSR: cannot use the PSF file: {reason}")
            self._refresh()
            return
        if pixel is not None:
            sizes = list(np.ravel(np.asarray(pixel, dtype=object)))
            if sizes and sizes[-1] is not None:
                self.psf_pixel.value = float(sizes[-1])
            if arr.ndim == 3 and len(sizes) == 3 and sizes[0] is not None:
                self.psf_z.value = float(sizes[0])
        self._refresh()

    def _on_device(self, *_: Any) -> None:
        if self._device_probed:
            self._probe_device()

    def _on_advanced_toggled(self, *_: Any) -> None:
        if self._collapsible.isExpanded() and not self._device_probed:
            self._probe_device()

    def _probe_device(self) -> None:
        """Resolve the chosen device in a worker (importing torch there) and show why."""
        self._device_probed = True
        self.device_info.value = "checking..."
        worker = create_worker(_describe_device, str(self.device.value), _start_thread=False)
        worker.returned.connect(self._show_device_info)
        worker.errored.connect(lambda exc: self._show_device_info(f"unknown ({exc})"))
        self._device_worker = worker
        worker.start()

    def _show_device_info(self, text: str) -> None:
        if self._alive:
            self.device_info.value = text

    def _refresh(self, *_: Any) -> None:
        """Show the options that apply to the current layer and settings."""
        layer = self.image.value
        self.mode.visible = self._iso_offered()
        iso = self._iso_mode()
        self.z_ratio.visible = iso
        self.axial_fwhm.visible = iso
        self.scale.visible = not iso
        self.scale.enabled = not self.per_axis.value
        self.scale_y.visible = self.per_axis.value
        self.scale_x.visible = self.per_axis.value
        psf = self.psf_source.value
        psf_on = psf != PSF_NONE and not iso
        self.psf_source.visible = not iso
        self.psf_layer.visible = psf == PSF_LAYER and not iso
        self.psf_file.visible = psf == PSF_FILE and not iso
        psf_3d = self._psf_is_3d()
        self.psf_pixel.visible = psf in (PSF_LAYER, PSF_FILE) and not iso
        self.psf_z.visible = psf in (PSF_LAYER, PSF_FILE) and psf_3d and not iso
        self.na.visible = psf == PSF_OPTICS and not iso
        self.wavelength.visible = psf == PSF_OPTICS and not iso
        candidates = self._candidate_layers()
        self.image_pixel.visible = psf_on and any(self._unit_scale(x) for x in candidates)
        self.kernel_row.visible = not iso
        self.noise_auto.visible = not iso
        self.noise.enabled = iso or not self.noise_auto.value
        self.gradual.enabled = not psf_on
        stacked = any(x.ndim > 2 for x in candidates)
        self.planes.visible = stacked and not iso
        self.stack_mode.visible = stacked and not iso and self.planes.value == PLANES_ALL
        self._update_kernel_preview(layer, psf_on)

    def _iso_offered(self) -> bool:
        """Whether "Z to isotropic" applies to the chosen layer."""
        return (
            self._iso_available
            and not self.all_selected.value
            and self._iso_eligible(self.image.value)
        )

    def _iso_mode(self) -> bool:
        """Whether the next run is a Z-to-isotropic reconstruction."""
        return self._iso_offered() and self.mode.value == MODE_ISO

    def _candidate_layers(self) -> list[Image]:
        try:
            return self._layers_to_process()
        except ValueError:
            return []

    @staticmethod
    def _unit_scale(layer: Image) -> bool:
        return bool(np.allclose(np.asarray(layer.scale, dtype=float)[-2:], 1.0))

    def _psf_is_3d(self) -> bool:
        psf = self.psf_source.value
        if psf == PSF_LAYER:
            layer = self.psf_layer.value
            return layer is not None and layer.ndim == 3
        if psf == PSF_FILE:
            key = self._psf_file_key()
            return key is not None and key in self._psf_cache and self._psf_cache[key][0].ndim == 3
        return False

    # ----------------------------------------------------------------------------- PSF
    def _psf_file_key(self) -> tuple[str, float] | None:
        value = self.psf_file.value
        if value is None or str(value) in ("", "."):
            return None
        path = Path(value)
        if not path.is_file():
            return None
        return str(path.resolve()), path.stat().st_mtime

    def _load_psf_file(self) -> tuple[np.ndarray, Any]:
        key = self._psf_file_key()
        if key is None:
            raise ValueError("choose an existing PSF file (.tif, .npy or .mat)")
        if key not in self._psf_cache:
            from .core import psf as psf_module

            arr, pixel = psf_module.load_psf_file(key[0])
            self._psf_cache = {key: (np.asarray(arr), pixel)}
        return self._psf_cache[key]

    def _psf_array(self) -> tuple[np.ndarray, str]:
        """The PSF array chosen in the widget and a short name of where it came from."""
        if self.psf_source.value == PSF_LAYER:
            layer = self.psf_layer.value
            if layer is None:
                raise ValueError("choose the image layer that holds the PSF")
            if layer.rgb or layer.ndim not in (2, 3):
                raise ValueError(
                    f"PSF layer '{layer.name}' must be a 2D PSF or a 3D bead stack (Z, Y, X), "
                    f"got {layer.ndim} dimensions"
                )
            return np.asarray(_level0(layer)), f"layer '{layer.name}'"
        arr, _ = self._load_psf_file()
        if arr.ndim not in (2, 3):
            raise ValueError(
                f"PSF file must hold a 2D PSF or a 3D bead stack (Z, Y, X), got shape {arr.shape}"
            )
        return arr, f"file {Path(str(self.psf_file.value)).name}"

    def _image_pixel_size(self, layer: Image) -> tuple[float, float]:
        if not self._unit_scale(layer):
            sy, sx = (abs(float(v)) for v in np.asarray(layer.scale, dtype=float)[-2:])
            return sy, sx
        value = float(self.image_pixel.value)
        if value <= 0:
            raise ValueError(
                f"layer '{layer.name}' has no physical pixel size (its scale is 1): enter the "
                "image pixel size in micrometres to use a PSF"
            )
        return value, value

    def kernel_for(
        self, layer: Image, scale: tuple[float, float]
    ) -> tuple[np.ndarray | None, dict[str, Any]]:
        """The downscaling kernel for ``layer`` at ``scale`` from the PSF settings.

        Parameters
        ----------
        layer : napari.layers.Image
            The layer to process (its Y/X scale gives the image pixel size).
        scale : (float, float)
            Upscaling factors (Y, X).

        Returns
        -------
        kernel : numpy.ndarray or None
            None for the bicubic model.
        record : dict
            PSF source and description, for the result's metadata.
        """
        psf = self.psf_source.value
        if psf == PSF_NONE:
            return None, {"source": "none", "description": "MATLAB bicubic (antialiased)"}
        try:
            from .core import psf as psf_module
        except ImportError as exc:  # pragma: no cover - the module ships with the package
            raise ValueError(f"PSF support is not available: {exc}") from exc
        image_px = self._image_pixel_size(layer)
        data = _level0(layer)
        plane_shape = tuple(int(n) for n in data.shape[layer.ndim - 2 : layer.ndim])
        record: dict[str, Any] = {"image_pixel_size_um": list(image_px)}
        if psf == PSF_OPTICS:
            result = psf_module.kernel_from_optics(
                image_pixel_size=image_px,
                scale=scale,
                na=float(self.na.value),
                wavelength=float(self.wavelength.value),
                image_shape=plane_shape,
            )
            record.update(
                source="optics", na=float(self.na.value), wavelength_um=float(self.wavelength.value)
            )
        else:
            arr, origin = self._psf_array()
            px = float(self.psf_pixel.value)
            if px <= 0:
                raise ValueError("enter the PSF pixel size in micrometres (> 0)")
            record.update(source=origin, psf_pixel_size_um=px, psf_shape=list(arr.shape))
            if arr.ndim == 2:
                result = psf_module.kernel_from_psf(
                    arr,
                    psf_pixel_size=px,
                    image_pixel_size=image_px,
                    scale=scale,
                    background="auto",
                    image_shape=plane_shape,
                )
            else:
                dz = float(self.psf_z.value)
                if dz <= 0:
                    raise ValueError("enter the Z step of the bead stack in micrometres (> 0)")
                record["psf_z_step_um"] = dz
                result = psf_module.kernel_from_bead_stack(
                    arr,
                    voxel_size=(dz, px, px),
                    image_pixel_size=image_px,
                    scale=scale,
                    image_shape=plane_shape,
                )
        record["details"] = dict(getattr(result, "source", {}) or {})
        kernel = np.asarray(result.kernel, dtype=np.float64)
        record["description"] = str(result.description)
        record["kernel_shape"] = list(kernel.shape)
        return kernel, record

    def _update_kernel_preview(self, layer: Image | None, psf_on: bool) -> None:
        if not psf_on:
            self._set_kernel_text("bicubic (MATLAB, antialiased)")
            self._kernel_thumb.setVisible(False)
            return
        if layer is None:
            self._set_kernel_text("choose an image layer")
            self._kernel_thumb.setVisible(False)
            return
        try:
            kernel, record = self.kernel_for(layer, self._scale_pair())
        except Exception as exc:
            self._set_kernel_text(f"not ready: {exc}")
            self._kernel_thumb.setVisible(False)
            return
        self._show_kernel(kernel, record)

    def _set_kernel_text(self, text: str) -> None:
        """Show ``text`` in the kernel row, wrapped by hand (the dock keeps its width)."""
        self.kernel_label.value = textwrap.fill(text, KERNEL_TEXT_WIDTH, break_on_hyphens=False)
        self.kernel_label.tooltip = text

    @property
    def kernel_text(self) -> str:
        """The kernel summary shown (without its line breaks)."""
        return self.kernel_label.value.replace("\n", " ")

    def _show_kernel(self, kernel: np.ndarray | None, record: dict[str, Any]) -> None:
        if kernel is None:
            self._set_kernel_text("bicubic (MATLAB, antialiased)")
            self._kernel_thumb.setVisible(False)
            return
        self._set_kernel_text(str(record.get("description", "")))
        self._kernel_thumb.setPixmap(kernel_pixmap(kernel))
        self._kernel_thumb.setToolTip(f"kernel {kernel.shape[0]} x {kernel.shape[1]} (HR grid)")
        self._kernel_thumb.setVisible(True)

    # ----------------------------------------------------------------------------- jobs
    def _config(self, preview: bool, scale: tuple[float, float], kernel: Any) -> ZSSRConfig:
        if preview:
            fast = PRESETS["fast"]
            return resolve_config(
                "fast",
                None,
                max_iters=min(fast.max_iters, int(self.max_iters.value)),
                tile_size=int(self.tile_size.value),
                noise_std=float(self.noise.value),
            )
        name = str(self.preset.value)
        # the preset's own steps (the reference's for paper and paper-gradual), else x2, x4
        steps = PRESETS[name].gradual_scales or GRADUAL_SCALES
        gradual = steps if self.gradual.value and kernel is None else ()
        return resolve_config(
            name,
            None,
            max_iters=int(self.max_iters.value),
            crop_size=int(self.crop_size.value),
            back_projection_iters=int(self.bp_iters.value),
            self_ensemble=bool(self.ensemble.value),
            tile_size=int(self.tile_size.value),
            noise_std=float(self.noise.value),
            gradual_scales=gradual,
        )

    def _data_position(self, layer: Image) -> np.ndarray:
        """Data coordinates of the viewer's current point in ``layer``."""
        return np.asarray(layer.world_to_data(np.asarray(self._viewer.dims.point)), dtype=float)

    def _plane_index(self, layer: Image, n_lead: int) -> list[int]:
        pos = self._data_position(layer)
        shape = _level0(layer).shape
        return [int(np.clip(round(pos[a]), 0, shape[a] - 1)) for a in range(n_lead)]

    def _visible_box(self, layer: Image) -> tuple[int, int, int, int]:
        """Y/X data box of ``layer`` visible in the canvas (capped to a preview size)."""
        viewer = self._viewer
        if viewer.dims.ndisplay != 2:
            raise ValueError("preview works in the 2D view: switch the viewer to 2D")
        displayed = list(viewer.dims.displayed)
        scene = getattr(viewer, "scene", None)
        camera = getattr(scene, "camera", None) or viewer.camera
        canvas = getattr(viewer, "canvas", None)
        size = canvas.size if hasattr(canvas, "size") else viewer._canvas_size
        h, w = (float(v) for v in size)
        zoom = float(camera.zoom)
        cy, cx = (float(v) for v in camera.center[-2:])
        half = np.array([h, w]) / (2.0 * zoom)
        point = np.asarray(viewer.dims.point, dtype=float)
        corners = []
        for dy in (-1, 1):
            for dx in (-1, 1):
                world = point.copy()
                world[displayed[0]] = cy + dy * half[0]
                world[displayed[1]] = cx + dx * half[1]
                data = np.asarray(layer.world_to_data(world), dtype=float)
                corners.append(data[-2:])
        shape = _level0(layer).shape
        ny, nx = (shape[layer.ndim - 2], shape[layer.ndim - 1])
        return visible_data_box(
            np.asarray(corners), (ny, nx), min_size=8, max_size=PREVIEW_MAX_SIDE
        )

    def _result_name(self, layer: Image, kind: str, scale: tuple[float, float], z: float) -> str:
        if kind == "isotropic_z":
            return f"{layer.name} ZSSR isotropic z x{_fmt_factor(z)}"
        if scale[0] == scale[1]:
            return f"{layer.name} ZSSR x{_fmt_factor(scale[0])}"
        return f"{layer.name} ZSSR x{_fmt_factor(scale[0])}×{_fmt_factor(scale[1])}"

    def _build_jobs(self, preview: bool) -> list[_Job]:
        layers = self._layers_to_process()
        if preview:
            layers = layers[:1]
        iso = not preview and self._iso_mode()
        scale = (1.0, 1.0) if iso else self._scale_pair()
        jobs = []
        for layer in layers:
            data = _level0(layer)
            nd = int(layer.ndim)
            n_lead = nd - 3 if iso else nd - 2
            index: list[slice] | None = None
            offset = [0.0] * nd
            region = None
            current = preview or (self.planes.value == PLANES_CURRENT) or iso
            if n_lead > 0 and current:
                lead = self._plane_index(layer, n_lead)
                index = [slice(k, k + 1) for k in lead]
                offset[:n_lead] = [float(k) for k in lead]
            if preview:
                y0, y1, x0, x1 = self._visible_box(layer)
                index = [*(index or []), slice(y0, y1), slice(x0, x1)]
                offset[-2:] = [float(y0), float(x0)]
                region = (y0, y1, x0, x1)
            kernel, psf_record = (None, {}) if iso else self.kernel_for(layer, scale)
            if iso:
                psf_record = {"source": "axial model", "axial_fwhm": self._axial_fwhm()}
            preset = "fast" if preview else str(self.preset.value)
            stack_mode = _STACK_MODES[str(self.stack_mode.value)]
            planes = PLANES_CURRENT if (current and n_lead > 0) else PLANES_ALL
            jobs.append(
                _Job(
                    source=layer,
                    source_name=layer.name,
                    data=data,
                    index=tuple(index) if index is not None else None,
                    offset=tuple(offset),
                    rgb=bool(layer.rgb),
                    kind="isotropic_z" if iso else "upscale",
                    scale=scale,
                    config=self._config(preview, scale, kernel),
                    preset=preset,
                    noise_std=(
                        "auto" if self.noise_auto.value and not iso else float(self.noise.value)
                    ),
                    device=str(self.device.value),
                    seed=int(self.seed.value),
                    stack_mode=stack_mode,
                    planes=planes if nd > 2 else "single plane",
                    preview=preview,
                    replace=bool(self.replace.value),
                    result_name=(
                        f"{layer.name} ZSSR preview"
                        if preview
                        else self._result_name(
                            layer, "isotropic_z" if iso else "upscale", scale, self.z_ratio.value
                        )
                    ),
                    kernel=kernel,
                    psf=psf_record,
                    z_ratio=float(self.z_ratio.value),
                    axial_fwhm=self._axial_fwhm() if iso else None,
                    region=region,
                    snapshot=_snapshot(data, tuple(index) if index is not None else None),
                )
            )
            if kernel is not None and layer is self.image.value:
                self._show_kernel(kernel, psf_record)
        return jobs

    def _axial_fwhm(self) -> float | None:
        value = float(self.axial_fwhm.value)
        return value if value > 0 else None

    # ----------------------------------------------------------------------------- running
    def run(self, *_: Any) -> None:
        """Start a run with the current settings (what the Run button does)."""
        self._start(preview=False)

    def preview(self, *_: Any) -> None:
        """Quick fast-preset run on the visible region of the current plane."""
        self._start(preview=True)

    def stop(self, *_: Any) -> None:
        """Stop the run in progress: no partial layer is added."""
        if not self.busy:
            return
        self._stop.set()
        self.stop_button.enabled = False
        reason = f" ({self._stop_reason})" if self._stop_reason else ""
        self.status.value = f"stopping{reason}..."

    def _start(self, preview: bool) -> None:
        if self.busy:
            show_info("A ZSSR run is already in progress: stop it first.")
            return
        try:
            jobs = self._build_jobs(preview)
        except Exception as exc:
            self.last_status = "error"  # not the previous run's "done"
            self.last_results = []
            show_error(describe_error(exc))
            self.status.value = f"not started: {exc}"
            return
        self._jobs = jobs
        self._run_sources = [job.source for job in jobs]
        self._stop = _RunStop()
        self._stop_reason = ""
        self._changed_sources = set()
        for source in self._run_sources:
            source.events.data.connect(self._on_source_data)
        self._run_t0 = time.monotonic()
        self.last_results = []
        self.last_status = ""
        self._noise_note = ""
        self.loss_plot.clear()
        self.progress.value = 0
        self.status.value = "starting (loading the engine)..."
        worker = create_worker(_run_jobs, jobs, self._stop, _start_thread=False)
        worker.yielded.connect(self._on_message)
        worker.errored.connect(self._on_worker_error)
        worker.finished.connect(self._on_finished)
        self._stop.worker = worker
        self._worker = worker
        self._set_busy(True)
        worker.start()

    def _set_busy(self, busy: bool) -> None:
        self.run_button.enabled = not busy
        self.preview_button.enabled = not busy
        self.stop_button.enabled = busy

    def _on_message(self, msg: tuple) -> None:
        if not self._alive:
            return
        kind = msg[0]
        n_jobs = max(1, len(self._jobs))
        if kind == "start":
            self._job_index = msg[1]
            self.loss_plot.clear()
        elif kind == "device":
            self.device_used.value = f"device: {msg[2]} ({msg[3]})"
        elif kind == "progress":
            self._show_progress(msg[1], n_jobs)
        elif kind == "result":
            _, i, out, info = msg
            if self._stop.is_set():
                return
            try:
                self._add_result(self._jobs[i], out, info)
                self._show_noise(info)
            except Exception as exc:
                show_error(describe_error(exc))
                self.last_status = "error"
        elif kind == "error":
            self.last_status = "error"
            show_error(describe_error(msg[2]))
        elif kind == "stopped":
            self.last_status = "stopped"
        elif kind == "done":
            self.last_status = "done"

    def _show_noise(self, info: dict[str, Any]) -> None:
        """Put the run's noise on the sons into the noise field, the note and warnings."""
        if "noise_std" not in info:  # Z to isotropic: the field's own value
            self._noise_note = ""
            return
        used = float(info["noise_std"])
        if info.get("noise_std_source") == "auto":
            self.noise.value = round(used, 4)
            self._noise_note = (
                f"noise {used:.4f} (estimated)"
                if used > 0
                else f"noise 0 (estimated {float(info['noise_estimate']):.4f}: noise-free)"
            )
        else:
            self._noise_note = (
                f"noise {used:.4g} (image's estimate {float(info['noise_estimate']):.4f})"
            )
        for message in info.get("warnings", []):
            show_warning(f"ZSSR: {message}")

    def _show_progress(self, p: Progress, n_jobs: int) -> None:
        i = self._job_index
        overall = min(1.0, (i + float(p.fraction)) / n_jobs)
        self.progress.value = round(1000 * overall)
        parts = []
        if n_jobs > 1:
            parts.append(f"layer {i + 1}/{n_jobs}")
        parts.append(p.stage)
        if p.n_planes > 1:
            parts.append(f"plane {p.plane + 1}/{p.n_planes}")
        if p.n_steps > 1:
            parts.append(f"step {p.step + 1}/{p.n_steps}")
        if p.stage == "train" and p.max_iterations:
            parts.append(f"iter {p.iteration}/{p.max_iterations}")
        if p.loss is not None:
            parts.append(f"loss {p.loss:.4g}")
        elapsed = time.monotonic() - self._run_t0
        if overall > 0.02:
            parts.append(f"ETA {_fmt_seconds(elapsed * (1 - overall) / overall)}")
        self.status.value = " · ".join(parts)
        if p.stage == "train":
            self.loss_plot.add(p.loss)

    def _on_worker_error(self, exc: BaseException) -> None:
        self.last_status = "error"
        show_error(describe_error(exc))

    def _on_finished(self, *_: Any) -> None:
        self._worker = None
        if not self._alive:
            self._release_sources()
            return
        elapsed = time.monotonic() - self._run_t0
        status = self.last_status or ("stopped" if self._stop.is_set() else "error")
        self.last_status = status
        if status == "done":
            self.progress.value = 1000
            note = f" · {self._noise_note}" if self._noise_note else ""
            self.status.value = f"done in {_fmt_seconds(elapsed)}{note}"
        elif status == "stopped":
            self.progress.value = 0
            reason = f": {self._stop_reason}" if self._stop_reason else ""
            self.status.value = f"stopped{reason}"
            if self._stop_reason:
                show_warning(f"ZSSR run stopped: {self._stop_reason}")
        else:
            self.progress.value = 0
            self.status.value = "failed (see the notification)"
        self._worker = None
        self._release_sources()
        self._set_busy(False)

    def _on_source_data(self, event: Any) -> None:
        """A source layer's data was replaced during the run: note it for its result."""
        layer = _unwrap(getattr(event, "source", None))
        if layer is not None:
            self._changed_sources.add(id(layer))

    def _release_sources(self) -> None:
        for source in self._run_sources:
            source.events.data.disconnect(self._on_source_data)
        self._run_sources = []

    # ----------------------------------------------------------------------------- results
    def _find_previous(self, job: _Job) -> Image | None:
        if job.preview:
            return self._preview_layer if self._preview_layer in self._image_layers() else None
        if not job.replace:
            return None
        for layer in reversed(self._image_layers()):
            meta = layer.metadata.get("zssr") if isinstance(layer.metadata, dict) else None
            if (
                isinstance(meta, dict)
                and not meta.get("preview", False)
                and meta.get("source_layer") == job.source_name
                and meta.get("mode") == job.kind
            ):
                return layer
        return None

    def _add_result(self, job: _Job, out: np.ndarray, info: dict[str, Any]) -> Image | None:
        src = job.source
        if not any(src is x for x in self._image_layers()):
            return None
        nd = int(src.ndim)
        if job.kind == "isotropic_z":
            factors = axis_factors(nd, 1.0, z_factor=job.z_ratio)
        else:
            factors = axis_factors(nd, job.scale)
        placement = upscaled_placement(
            factors,
            scale=src.scale,
            translate=src.translate,
            rotate=src.rotate,
            shear=src.shear,
            affine=src.affine.affine_matrix,
            offset=job.offset,
        )
        record: dict[str, Any] = dict(info)
        record.update(
            source_layer=job.source_name,
            mode=job.kind,
            preview=job.preview,
            preset=job.preset,
            scale=[float(job.scale[0]), float(job.scale[1])],
            noise_std=float(info.get("noise_std", job.noise_std)),
            noise_std_estimated=job.noise_std == "auto",
            seed=int(job.seed),
            device_requested=job.device,
            planes=job.planes,
            stack_mode=job.stack_mode,
            plane_index=[int(v) for v in job.offset[: nd - 2]] if job.index is not None else None,
            region=list(job.region) if job.region is not None else None,
            psf=dict(job.psf),
            config=job.config.to_dict() | dict(info.get("config", {})),
            world_factors=[float(f) for f in factors],
        )
        if job.kind == "isotropic_z":
            record.update(z_ratio=float(job.z_ratio), axial_fwhm=job.axial_fwhm)
        record["input_snapshot"] = job.snapshot is not None
        if id(src) in self._changed_sources:
            record["source_changed_during_run"] = True
            show_warning(
                f"ZSSR: layer '{job.source_name}' changed during the run; the result is "
                + (
                    "from its data when the run started"
                    if job.snapshot is not None
                    else "from data read while it changed: run again for the current data"
                )
            )
        for key in ("device", "seconds", "final_loss"):
            record.setdefault(key, None)
        metadata = {k: v for k, v in dict(src.metadata).items() if k != "zssr"}
        metadata["zssr"] = record
        kwargs: dict[str, Any] = {
            "name": job.result_name,
            "rgb": bool(src.rgb),
            "blending": src.blending,
            "opacity": float(src.opacity),
            "contrast_limits": list(src.contrast_limits),
            "gamma": float(src.gamma),
            "metadata": metadata,
            **placement.layer_kwargs(),
        }
        if not src.rgb:
            kwargs["colormap"] = src.colormap
        for attr in ("units", "axis_labels"):
            if hasattr(src, attr):
                kwargs[attr] = getattr(src, attr)
        new = Image(out, **kwargs)
        previous = self._find_previous(job)
        layers = self._viewer.layers
        if previous is not None:
            index = next(k for k, x in enumerate(layers) if _unwrap(x) is previous)
            layers.remove(previous)
            layers.insert(index, new)
        else:
            layers.append(new)
        if job.preview:
            self._preview_layer = new
        self.last_results.append(new)
        return new
