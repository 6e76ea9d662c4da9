"""The live preview: its layer, its snapshots, the bicubic comparison and "follow settings".

While a preview trains, the worker sends snapshots of the network (one forward pass over the
visible region, at most once a second and a tenth of the time; :mod:`~napari_zssr.napari.live`).
The first one puts the preview layer on the canvas, exactly over the source region, and the
next ones replace its data; the final result (self-ensemble and back-projection, as in a run)
takes its place at the end.

- There is at most one preview layer, ``"<layer> ZSSR preview"``: a new preview of the same
  layer fills it in place (:func:`~napari_zssr.napari.layers.refill_layer`), a preview of
  another layer replaces it in the layer list (the old image stays until the new preview's
  first snapshot either way).
- "live images" (ticked by default) asks for the snapshots; unticked, the preview shows one
  image, the final one, about a tenth sooner on a CPU.
- "compare with bicubic" adds ``"<layer> ZSSR preview bicubic"``, the bicubic upscale of the
  same region, just above the preview layer; unticking the box removes it. Ticking and unticking
  (or the layer's eye) flips between the two in place.
- "follow settings" restarts the preview, after a pause of :data:`FOLLOW_DELAY_MS`, when the
  scale, the PSF or the noise changes, and when the view moves, zooms or changes plane (on the
  newly visible region).
- A full Run stops a preview in progress and then starts; once the run's result for the
  previewed layer is added, the preview layer (and its bicubic comparison) is removed.

The work stays in the worker: here only layers are made and updated (main thread).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from magicgui.widgets import CheckBox, Container
from qtpy.QtCore import QTimer

from .layers import new_layer, refill_layer, swap_in, unwrap
from .live import SnapshotClock
from .worker import Job, JobSnapshot

if TYPE_CHECKING:
    from .widget import ZSSRWidget

__all__ = ["FOLLOW_DELAY_MS", "PreviewController"]

FOLLOW_DELAY_MS = 300
"""Pause after the last change of a followed setting (or of the view) before restarting: long
enough to let a few clicks on a spin box's arrows or a pan settle, short because it is part of
the wait for the first updated image (target: 2 s after the change)."""


class PreviewController:
    """The preview part of a :class:`~napari_zssr.napari.widget.ZSSRWidget`.

    Parameters
    ----------
    widget : ZSSRWidget
        The widget whose preview this controls (its run panel receives the two check boxes).

    Attributes
    ----------
    live : bool
        Send snapshots while a preview trains (the "live images" box, ticked by default;
        unticked gives the preview of old: one image at the end, about a tenth sooner on a
        CPU).
    interval_s, first_iteration : float, int
        When snapshots are taken (see :class:`~napari_zssr.napari.live.SnapshotClock`).
    layer : napari.layers.Image or None
        The preview layer.
    started_at : float
        ``time.monotonic()`` when the current preview was started.
    updates : list of float
        Seconds from ``started_at`` to each update of the preview layer (snapshots, then the
        final result).
    snapshot_seconds : list of float
        What each snapshot of the current preview cost the training, in seconds.
    """

    def __init__(self, widget: ZSSRWidget) -> None:
        self._w = widget
        self.interval_s = SnapshotClock.interval_s
        self.first_iteration = SnapshotClock.first_iteration
        self.layer: Any = None
        self.bicubic_layer: Any = None
        self._bicubic: Any = None
        self._job: Job | None = None
        self._pending: bool | None = None
        self.started_at = 0.0
        self.updates: list[float] = []
        self.snapshot_seconds: list[float] = []
        self.live_box = CheckBox(
            value=True,
            text="live images",
            tooltip="Show the network's output while the preview trains. Each image costs "
            "one pass of the network: on a CPU the final preview comes about a tenth later "
            "(untick for the fastest final preview).",
        )
        self.follow = CheckBox(
            value=False,
            text="follow settings",
            tooltip="Restart the preview when the scale, the PSF or the noise changes, or when "
            "the view moves (after a pause of 0.3 s).",
        )
        self.compare = CheckBox(
            value=False,
            text="compare with bicubic",
            tooltip="Show the bicubic upscale of the preview's region above the preview; "
            "untick to see the preview again.",
        )
        box = Container(
            widgets=[self.live_box, self.follow, self.compare], layout="horizontal", labels=False
        )
        box.margins = (0, 0, 0, 0)
        widget.run_panel.insert(1, box)
        self._timer = QTimer()
        self._timer.setSingleShot(True)
        self._timer.setInterval(FOLLOW_DELAY_MS)
        self._timer.timeout.connect(self._follow_now)
        self.compare.changed.connect(self._show_bicubic)
        self._connect_follow()

    @property
    def live(self) -> bool:
        """Whether a preview sends snapshots (the "live images" box)."""
        return bool(self.live_box.value)

    @live.setter
    def live(self, value: bool) -> None:
        self.live_box.value = bool(value)

    # ------------------------------------------------------------------------- run life
    @property
    def running(self) -> bool:
        """Whether the work in progress is a preview."""
        return self._w.busy and self._job is not None

    def prepare(self, jobs: list[Job], preview: bool) -> None:
        """A run of ``jobs`` is about to start: ask a preview for snapshots."""
        self._pending = None
        self._job = jobs[0] if preview else None
        if preview:
            jobs[0].snapshots = (
                SnapshotClock(first_iteration=self.first_iteration, interval_s=self.interval_s)
                if self.live
                else None
            )
            self.started_at = time.monotonic()
            self.updates = []
            self.snapshot_seconds = []
            self._bicubic = None

    def started(self) -> None:
        """The run started: during a preview, Run and Preview stay available."""
        if self._job is not None:
            self._w.run_button.enabled = True
            self._w.preview_button.enabled = True

    def restart(self, preview: bool) -> bool:
        """Run or Preview was asked for while busy: stop a preview and queue the new start.

        Returns False when the work in progress is a full run (which is not interrupted).
        """
        if not self.running:
            return False
        self._pending = preview
        self._w.stop()
        return True

    def take_pending(self) -> bool | None:
        """What to start now that the previous work ended (None: nothing)."""
        pending, self._pending = self._pending, None
        self._job = None
        return pending

    # ------------------------------------------------------------------------- layers
    def on_snapshot(self, job: Job, msg: JobSnapshot) -> None:
        """Show a snapshot of the preview's network (main thread)."""
        snap = msg.snapshot
        if self._w.stopping or not self._source_shown(job):
            return
        at = {"trained": True} if snap.trained else {"iteration": snap.iteration}
        record = {**job.record, "live": True, **at}
        layer = self.layer if _present(self._w.viewer, self.layer) else None
        if layer is not None and snap.number > 1:
            layer.data = snap.image
            layer.metadata["zssr"] = record
            layer.contrast_limits = list(job.source.contrast_limits)
        elif layer is None or not refill_layer(layer, job, snap.image, record):
            new = new_layer(job, snap.image, record)
            swap_in(self._w.viewer, new, layer)
            self.layer = new
        self.snapshot_seconds.append(snap.seconds)
        if snap.bicubic is not None:
            self._bicubic = (job, snap.bicubic)
            self._show_bicubic()
        self.updates.append(time.monotonic() - self.started_at)

    def on_final(self, layer: Any) -> None:
        """The final preview result was added (it replaced the live layer)."""
        self.layer = layer
        self.updates.append(time.monotonic() - self.started_at)

    def on_run_result(self, job: Job) -> None:
        """A full run's result was added: it replaces the preview of the same layer."""
        meta = getattr(self.layer, "metadata", {}).get("zssr", {}) if self.layer else {}
        if self.layer is not None and meta.get("source_layer") == job.source_name:
            self._remove(self.layer)
            self.layer = None
            self._bicubic = None
            self._remove(self.bicubic_layer)
            self.bicubic_layer = None

    def forget(self, layer: Any) -> None:
        """``layer`` was removed from the viewer."""
        if layer is self.layer:
            self.layer = None
        if layer is self.bicubic_layer:
            self.bicubic_layer = None

    def _show_bicubic(self, *_: Any) -> None:
        """Add, update or remove the bicubic comparison layer as the check box says."""
        viewer = self._w.viewer
        if not self.compare.value or self._bicubic is None or not _present(viewer, self.layer):
            self._remove(self.bicubic_layer)
            self.bicubic_layer = None
            return
        job, data = self._bicubic
        record = {**job.record, "bicubic": True}
        new = new_layer(job, data, record, name=f"{job.result_name} bicubic")
        old = self.bicubic_layer if _present(viewer, self.bicubic_layer) else None
        if old is not None:
            swap_in(viewer, new, old)
        else:
            index = next(k for k, x in enumerate(viewer.layers) if unwrap(x) is self.layer)
            viewer.layers.insert(index + 1, new)
        self.bicubic_layer = new

    def _remove(self, layer: Any) -> None:
        if _present(self._w.viewer, layer):
            self._w.viewer.layers.remove(layer)

    def _source_shown(self, job: Job) -> bool:
        return any(job.source is unwrap(x) for x in self._w.viewer.layers)

    # ------------------------------------------------------------------------- follow
    def _connect_follow(self) -> None:
        w = self._w
        inputs, training = w.inputs, w.training
        settings = [inputs.scale, inputs.scale_y, inputs.scale_x, inputs.per_axis]
        settings += [*w.psf_panel.changed_widgets, w.psf_layer, w.psf_file, training.noise_auto]
        for control in settings:
            control.changed.connect(self._schedule)
        # with "auto" the field shows the estimate a run made: not a setting that changed
        training.noise.changed.connect(lambda *_: training.noise_auto.value or self._schedule())
        camera = _camera(w.viewer)
        camera.events.center.connect(self._on_view)
        camera.events.zoom.connect(self._on_view)
        w.viewer.dims.events.current_step.connect(self._on_view)
        self._last_view = self._view_key()

    def _view_key(self) -> tuple:
        """Where the view is: the plane shown, the camera's centre and zoom.

        Adding a preview layer changes the dims' steps (and so ``current_step``) but none of
        these: only a real move of the view restarts a preview.
        """
        viewer = self._w.viewer
        shown = set(viewer.dims.displayed)
        plane = tuple(round(float(p), 6) for a, p in enumerate(viewer.dims.point) if a not in shown)
        camera = _camera(viewer)
        center = tuple(round(float(c), 3) for c in camera.center[-2:])
        return plane, center, round(float(camera.zoom), 6)

    def _on_view(self, *_: Any) -> None:
        if not self._w.alive:
            return
        key = self._view_key()
        if key != self._last_view:
            self._last_view = key
            self._schedule()

    def _schedule(self, *_: Any) -> None:
        w = self._w
        if w.alive and self.follow.value and w.image.value is not None:
            self._timer.start()  # restarts the pause on every change

    def _follow_now(self) -> None:
        w = self._w
        if not w.alive or not self.follow.value or (w.busy and not self.running):
            return  # a full run is not interrupted by the preview
        w.preview()


def _camera(viewer: Any) -> Any:
    """The viewer's camera (``viewer.scene.camera`` where napari has a scene)."""
    scene = getattr(viewer, "scene", None)
    return getattr(scene, "camera", None) or viewer.camera


def _present(viewer: Any, layer: Any) -> bool:
    return layer is not None and any(unwrap(x) is layer for x in viewer.layers)
