"""The napari dock widget of napari-zssr: panels, and the run's life from Run to the new layer.

The widget only translates: its form (the panels of :mod:`napari_zssr.napari.panels`) into
:class:`~napari_zssr.pipeline.RunRequest` s (:mod:`~napari_zssr.napari.jobs`), the pipeline's
results into layers (:mod:`~napari_zssr.napari.layers`). The work runs in napari worker threads
(:mod:`~napari_zssr.napari.worker`) that send typed messages back; nothing here imports torch.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import Container
from napari.layers import Image
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QApplication
from superqt import QCollapsible

from ..core.config import ZSSRConfig
from ..pipeline import EstimateSpec, kernel_for
from .choices import JobKind, Mode, RunStatus
from .jobs import build_jobs, request_for
from .layers import image_layers, unwrap
from .maps_layers import add_result_with_maps, maps_checkbox, resolution_note
from .panels.input import InputPanel
from .panels.model import ModelPanel
from .panels.output import OutputPanel
from .panels.psf import PSFPanel
from .panels.run import RunPanel
from .panels.training import TrainingPanel
from .preview import PreviewController
from .qt_parts import VerticalScrollArea
from .worker import (
    AllDone,
    DeviceChosen,
    EngineThreads,
    Job,
    JobFailed,
    JobProgress,
    JobResult,
    JobSnapshot,
    JobStarted,
    JobStopped,
    Message,
    RunStop,
    preview_kernel,
    run_jobs,
    wait_for_workers_at_exit,
    warm_up,
)

if TYPE_CHECKING:
    import napari.viewer

__all__ = ["ZSSRWidget", "describe_error"]

WARM_UP_DELAY_MS = 1000
"""Milliseconds after the dock is built before torch and the engine start loading."""

CLOSE_WAIT_S = 1.0
"""On close, seconds to wait for a run's engine to notice Stop (it does at its next report:
every iteration on the CPU)."""
_OOM_ADVICE = (
    "ZSSR ran out of GPU memory. Lower the crop size or the tile size under Advanced, "
    "process the current plane only, or choose device 'cpu'."
)
_EXPOSED = {
    "inputs": (
        "image",
        "all_selected",
        "level",
        "mode",
        "scale",
        "z_ratio",
        "axial_fwhm",
        "planes",
        "stack_mode",
        "replace",
        "per_axis",
        "scale_y",
        "scale_x",
    ),
    "psf_panel": (
        "psf_source",
        "psf_layer",
        "psf_file",
        "psf_is_kernel",
        "psf_pixel",
        "psf_z",
        "na",
        "wavelength",
        "immersion",
        "modality",
        "image_pixel",
        "kernel_row",
        "kernel_label",
        "kernel_thumb",
    ),
    "training": (
        "preset",
        "noise",
        "noise_auto",
        "noise_hint",
        "noise_model",
        "max_iters",
        "crop_size",
        "gradual",
        "bp_iters",
        "ensemble",
        "tile_size",
        "device",
        "device_info",
        "seed",
    ),
    "run_panel": (
        "run_button",
        "stop_button",
        "preview_button",
        "progress",
        "status",
        "device_used",
        "loss_plot",
    ),
}
"""The panels' controls, also reachable as attributes of the widget."""


def describe_error(exc: BaseException) -> str:
    """A message for users: what failed and, for out-of-memory errors, what to change."""
    first_line = (str(exc).strip().splitlines() or [""])[0]
    if type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc).lower():
        return f"{_OOM_ADVICE} ({type(exc).__name__}: {first_line})"
    from ..io.errors import RunFault

    if isinstance(exc, (ValueError, TypeError, RunFault)):
        return f"ZSSR: {first_line}"
    return f"ZSSR failed: {type(exc).__name__}: {first_line}"


def _level_note(jobs: list[Job]) -> str:
    """Which pyramid level each multiscale source is processed at ("" when none is)."""
    notes = [
        f"pyramid level {job.record['pyramid_level']} "
        f"({' x '.join(map(str, job.record['pyramid_level_shape']))}) of '{job.source_name}'"
        for job in jobs
        if job.record.get("pyramid_level") is not None
    ]
    return "; ".join(notes)


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
        self._threads = EngineThreads()
        self._jobs: list[Job] = []
        self._job_index = 0
        self._stop_reason = ""
        self._level_note = ""
        self._noise_note = ""
        self._maps_note = ""
        self._changed_sources: set[int] = set()
        self._alive = True
        self.last_results: list[Image] = []
        """Layers added by the most recent run (or preview)."""
        self.last_status: str = ""
        """How the most recent run ended: "done", "stopped", "error" (the values of
        :class:`~napari_zssr.napari.choices.RunStatus`), or "" before its end."""
        self._build()
        self._connect()
        self.preview_ctl = PreviewController(self)
        """The live preview: its layer, snapshots, bicubic comparison, follow settings."""
        active = unwrap(viewer.layers.selection.active)
        if isinstance(active, Image) and active in self.image.choices:
            self.image.value = active
        self._on_image(self.image.value)
        # torch and the engine load in the background while the user picks settings, so that
        # the first Preview shows its first image as soon as later ones do; a timer, because
        # building the dock itself must stay quick and torch-free
        QTimer.singleShot(WARM_UP_DELAY_MS, self._warm_up)

    # ------------------------------------------------------------------------- building
    def _build(self) -> None:
        self.inputs = InputPanel(self._image_choices)
        self.psf_panel = PSFPanel(self._psf_layer_choices)
        self.training = TrainingPanel()
        self.run_panel = RunPanel()
        self.model_panel = ModelPanel(self._viewer)  # saved networks: use one, save one
        self.quality_maps = maps_checkbox()
        self.output_panel = OutputPanel()  # large results: OME-Zarr, shown lazily
        for panel, names in _EXPOSED.items():
            for name in names:
                setattr(self, name, getattr(getattr(self, panel), name))
        stack = Container(widgets=[*self.inputs.stack_widgets, self.quality_maps], labels=True)
        advanced = Container(widgets=self.inputs.advanced + self.training.advanced, labels=True)
        self._collapsible = QCollapsible("Advanced")
        self._collapsible.addWidget(advanced.native)
        holder = Container(labels=False)
        holder.native.layout().addWidget(self._collapsible)
        # saved networks and OME-Zarr output: folded away until wanted
        self._files_section = QCollapsible("Saved networks and OME-Zarr output")
        self._files_section.addWidget(self.model_panel.native)
        self._files_section.addWidget(self.output_panel.native)
        files = Container(labels=False)
        files.native.layout().addWidget(self._files_section)
        parts = [self.inputs, self.training, self.psf_panel, stack, holder, files, self.run_panel]
        for part in (stack, holder, files):
            part.margins = (0, 0, 0, 0)
        # Everything scrolls vertically inside the dock (napari docks ``native``).
        body = Container(widgets=parts, labels=False)
        body.native.layout().addStretch(1)
        self._scroll = VerticalScrollArea()
        self._scroll.setWidget(body.native)
        self._body = body
        self.margins = (0, 0, 0, 0)
        self.native.layout().addWidget(self._scroll)

    def _connect(self) -> None:
        self.native.destroyed.connect(self._on_destroyed)
        wait_for_workers_at_exit()
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)
        self.run_button.changed.connect(self.run)
        self.stop_button.changed.connect(self.stop)
        self.preview_button.changed.connect(self.preview)
        changed = self.inputs.changed_widgets + self.psf_panel.changed_widgets
        for w in [*changed, self.training.noise_auto, self.psf_layer, self.psf_file]:
            w.changed.connect(self._refresh)
        self.psf_panel.on_file_read = self._refresh
        self.image.changed.connect(self._on_image)
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
        self.psf_panel.alive = False
        self.training.alive = False
        self.shutdown()

    def shutdown(self) -> None:
        """Stop the run in progress and wait (a while) for the engine to let go."""
        self._stop.set()
        self.run_panel.close_activity()
        self._threads.wait(CLOSE_WAIT_S)

    # ------------------------------------------------------------------------- choices
    def _image_layers(self) -> list[Image]:
        return image_layers(self._viewer)

    def _image_choices(self, *_: Any) -> list[tuple[str, Image]]:
        return [(layer.name, layer) for layer in self._image_layers()]

    def _psf_layer_choices(self, *_: Any) -> list[tuple[str, Image]]:
        layers = self._image_layers()
        return [(x.name, x) for x in layers if not x.rgb and x.ndim in (2, 3)]

    def _reset_layer_choices(self, *_: Any) -> None:
        self.image.reset_choices()
        self.psf_layer.reset_choices()

    def _on_layers_inserted(self, event: Any) -> None:
        event.value.events.name.connect(self._reset_layer_choices)
        self._reset_layer_choices()
        self._refresh()

    def _on_layer_removed(self, event: Any) -> None:
        layer = unwrap(event.value)
        self._reset_layer_choices()
        self.preview_ctl.forget(layer)
        if self.busy and any(layer is job.source for job in self._jobs):
            self._stop_reason = f"source layer '{layer.name}' was removed"
            self.stop()
        self._refresh()

    # ------------------------------------------------------------------------- state
    @property
    def busy(self) -> bool:
        """Whether a run (or preview) is in progress."""
        return self._worker is not None

    @property
    def alive(self) -> bool:
        """Whether the dock is open (False once it is closed: late messages are ignored)."""
        return self._alive

    @property
    def stopping(self) -> bool:
        """Whether the work in progress was asked to stop (Stop, a removed source, closing)."""
        return self._stop.is_set()

    @property
    def worker(self) -> Any:
        """The napari worker of the run in progress, or None."""
        return self._worker

    @property
    def viewer(self) -> Any:
        """The viewer this widget works on."""
        return self._viewer

    @property
    def labels(self) -> dict[str, str]:
        """How the widget names the request's parameters in messages."""
        return {
            "scale": "the scale factor",
            "z_isotropic": "'Z to isotropic'",
            "noise_std": "the noise",
            **self.psf_panel.labels_map,
        }

    @property
    def kernel_text(self) -> str:
        """The kernel summary shown (without its line breaks)."""
        return self.psf_panel.kernel_text

    def layers_to_process(self) -> list[Image]:
        """The chosen layer, or every selected image layer."""
        if self.all_selected.value:
            selected = {id(unwrap(x)) for x in self._viewer.layers.selection}
            layers = [x for x in self._image_layers() if id(x) in selected]
            if not layers:
                raise ValueError(
                    "'all selected layers' is on but no image layer is selected in the layer list"
                )
            return layers
        if self.image.value is None:
            raise ValueError("no image layer: open or select an image first")
        return [self.image.value]

    def iso_offered(self) -> bool:
        """Whether "Z to isotropic" applies to the chosen layer."""
        return not self.all_selected.value and self.inputs.iso_eligible(self.image.value)

    def iso_mode(self) -> bool:
        """Whether the next run is a Z-to-isotropic reconstruction."""
        return self.iso_offered() and self.mode.value == Mode.ISO

    def _on_image(self, layer: Image | None) -> None:
        self.inputs.on_image(layer)
        self._refresh()

    def _refresh(self, *_: Any) -> None:
        """Show the options that apply to the current layer and settings; preview the kernel."""
        iso = self.iso_mode()
        try:
            candidates = self.layers_to_process()
        except ValueError:
            candidates = []
        unit = any(np.allclose(np.asarray(x.scale, dtype=float)[-2:], 1.0) for x in candidates)
        stacked = any(x.ndim > (3 if iso else 2) for x in candidates)
        self.inputs.refresh(self.iso_offered(), iso, stacked)
        self.psf_panel.refresh(iso, unit)
        self.training.refresh(iso, self.psf_panel.active and not iso)
        self.quality_maps.visible = not iso
        self._preview_kernel(None if iso or not candidates else self.image.value)

    # ------------------------------------------------------------------------- kernel
    def kernel_for(self, layer: Image, scale: tuple[float, float]) -> tuple[Any, dict[str, Any]]:
        """The downscaling kernel for ``layer`` at ``scale`` from the PSF settings (computed here).

        Returns
        -------
        kernel : numpy.ndarray or None
            None for the bicubic model.
        record : dict
            Where the PSF came from, its description and the parameters used.
        """
        request = request_for(self, layer).replace(scale=scale)
        shape = tuple(request.source.shape[layer.ndim - 2 : layer.ndim])
        return kernel_for(request, request.validate().scale, shape, self.psf_panel.cached_file())

    def _preview_kernel(self, layer: Image | None) -> None:
        if layer is None or not self.psf_panel.active:
            self.psf_panel.preview(None)
            return
        try:
            request = request_for(self, layer)
            scale = request.validate().scale
        except (ValueError, TypeError) as exc:
            self.psf_panel.preview(None, problem=str(exc))
            return
        known = self.psf_panel.known_estimate(layer, scale)
        if isinstance(request.psf, EstimateSpec) and known is not None:
            self.psf_panel.show_known(*known)  # the last run's estimate for this layer
            return
        shape = tuple(request.source.shape[layer.ndim - 2 : layer.ndim])
        cached = self.psf_panel.cached_file()
        self.psf_panel.preview(lambda: preview_kernel(request, scale, shape, cached))

    def _config(self, preview: bool, scale: tuple[float, float], kernel: Any) -> ZSSRConfig:
        """The configuration a run would use (``kernel``: the kernel, or None)."""
        return self.training.config(preview, kernel)

    def _warm_up(self) -> None:
        if self._alive:
            self._threads.start(warm_up)  # tracked: closing waits for an import in progress

    def _on_advanced_toggled(self, *_: Any) -> None:
        if self._collapsible.isExpanded():
            self.training.probe_device_once()

    # ------------------------------------------------------------------------- running
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
            if not self.preview_ctl.restart(preview):  # a preview gives way at once
                show_info("A ZSSR run is already in progress: stop it first.")
            return
        try:
            jobs = build_jobs(self, preview)
        except Exception as exc:  # a setting the request refuses, a viewer without canvas...
            self.last_status = RunStatus.ERROR.value  # not the previous run's "done"
            self.last_results = []
            show_error(describe_error(exc))
            self.status.value = f"not started: {exc}"
            return
        self._jobs, self._job_index = jobs, 0
        self.preview_ctl.prepare(jobs, preview)
        self._stop = RunStop()
        self._stop_reason = ""
        self.last_results = []
        self.last_status = ""
        self._changed_sources = set()
        for job in jobs:
            job.source.events.data.connect(self._on_source_data)
        what = "ZSSR preview" if preview else f"ZSSR {jobs[0].result_name}"
        self.run_panel.started(what)
        self._level_note = _level_note(jobs)
        self._noise_note = self._maps_note = ""
        if self._level_note:
            show_info(f"ZSSR processes {self._level_note}")
        worker = create_worker(run_jobs, jobs, self._stop, self._threads, _start_thread=False)
        worker.yielded.connect(self._on_message)
        worker.errored.connect(self._on_worker_error)
        worker.finished.connect(self._on_finished)
        self._stop.worker = worker
        self._worker = worker
        worker.start()
        self.preview_ctl.started()

    def _on_source_data(self, event: Any) -> None:
        """A source layer's data was replaced during the run: note it for its result."""
        layer = unwrap(getattr(event, "source", None))
        if layer is not None:
            self._changed_sources.add(id(layer))

    def _release_sources(self) -> None:
        for job in self._jobs:
            job.source.events.data.disconnect(self._on_source_data)

    def _on_message(self, msg: Message) -> None:
        if not self._alive:
            return
        if isinstance(msg, JobStarted):
            self._job_index = msg.index
            self.loss_plot.clear()
        elif isinstance(msg, DeviceChosen):
            self.device_used.value = f"device: {msg.device} ({msg.reason})"
        elif isinstance(msg, JobProgress):
            self.run_panel.show_progress(msg.progress, msg.index, len(self._jobs))
        elif isinstance(msg, JobSnapshot):
            self.preview_ctl.on_snapshot(self._jobs[msg.index], msg)
        elif isinstance(msg, JobResult):
            self._on_result(self._jobs[msg.index], msg)
        elif isinstance(msg, JobFailed):
            self.last_status = RunStatus.ERROR.value
            show_error(describe_error(msg.error))
        elif isinstance(msg, JobStopped):
            self.last_status = RunStatus.STOPPED.value
        elif isinstance(msg, AllDone):
            self.last_status = RunStatus.DONE.value

    def _on_result(self, job: Job, msg: JobResult) -> None:
        if self.stopping or not any(job.source is x for x in self._image_layers()):
            return
        if id(job.source) in self._changed_sources:
            job.record["source_changed_during_run"] = True
            show_warning(
                f"ZSSR: layer '{job.source_name}' changed during the run; the result is "
                + (
                    "from its data when the run started"
                    if job.record.get("input_snapshot")
                    else "from data read while it changed: run again for the current data"
                )
            )
        try:
            new, _maps = add_result_with_maps(self._viewer, job, msg.result, self.preview_ctl.layer)
        except Exception as exc:  # a layer napari refuses: tell, do not crash the run
            show_error(describe_error(exc))
            self.last_status = RunStatus.ERROR.value
            return
        if job.preview:
            self.preview_ctl.on_final(new)
        else:
            self.preview_ctl.on_run_result(job)
        note, warnings = self.training.show_noise(msg.result.info)
        self._noise_note = note
        self._maps_note = resolution_note(job, msg.result) or self._maps_note
        for message in warnings:
            show_warning(f"ZSSR: {message}")
        if job.kind == JobKind.UPSCALE and job.source is self.image.value:
            scale = job.record["scale"]
            self.psf_panel.show_result(job.source, scale, msg.result.kernel, msg.result.psf)
        self.last_results.append(new)
        self.model_panel.on_result(new, job.source_name, msg.result)

    def _on_worker_error(self, exc: BaseException) -> None:
        self.last_status = RunStatus.ERROR.value
        show_error(describe_error(exc))

    def _on_finished(self, *_: Any) -> None:
        self._worker = None
        self._release_sources()
        if not self._alive:
            return
        status = self.last_status or (RunStatus.STOPPED if self.stopping else RunStatus.ERROR).value
        self.last_status = status
        notes = [self._noise_note, self._maps_note, self._level_note, self.output_panel.note]
        notes = [n for n in notes if n]
        self.run_panel.finished(status, self._stop_reason, " · ".join(notes))
        if status == RunStatus.STOPPED and self._stop_reason:
            show_warning(f"ZSSR run stopped: {self._stop_reason}")
        pending = self.preview_ctl.take_pending()
        if pending is not None:  # Run or Preview pressed during a preview
            self._start(preview=pending)
