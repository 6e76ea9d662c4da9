"""The run panel: Run / Stop / Preview, the progress bar, the status line and the loss plot.

The progress is mirrored into napari's activity dock (:class:`napari.utils.progress`), so that
a run stays visible when the dock widget is closed or scrolled away.
"""

from __future__ import annotations

import time
from typing import Any

from magicgui.widgets import Container, Label, ProgressBar, PushButton
from qtpy.QtWidgets import QSizePolicy

from ...core.progress import Progress
from ..choices import RunStatus
from ..qt_parts import LossPlot

__all__ = ["RunPanel", "fmt_seconds"]

STEPS = 1000
"""Resolution of the progress bars."""


def fmt_seconds(seconds: float) -> str:
    """``42 s``, ``3 min 05 s`` or ``1 h 02 min``."""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, sec = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class RunPanel(Container):
    """Buttons, progress (here and in the activity dock), status, device and loss plot."""

    def __init__(self) -> None:
        super().__init__(labels=False)
        self.margins = (0, 0, 0, 0)
        self.run_button = PushButton(text="Run")
        self.stop_button = PushButton(text="Stop", enabled=False)
        self.preview_button = PushButton(
            text="Preview",
            tooltip="Quick run of the fast preset on the region visible in the canvas "
            "(current plane), shown live while it trains; the next preview replaces it.",
        )
        buttons = Container(
            widgets=[self.run_button, self.stop_button, self.preview_button],
            layout="horizontal",
            labels=False,
        )
        buttons.margins = (0, 0, 0, 0)
        self.progress = ProgressBar(value=0, min=0, max=STEPS, label="Progress")
        self.status = Label(value="ready")
        self.status.native.setWordWrap(True)
        self.device_used = Label(value="device: -")
        self.device_used.native.setWordWrap(True)
        for label in (self.status, self.device_used):  # the dock's width, as many lines as needed
            label.native.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Minimum)
        self.loss_plot = LossPlot()
        self.extend([buttons, self.progress, self.status, self.device_used])
        self.native.layout().addWidget(self.loss_plot)
        self._activity: Any = None
        self._what = ""
        self._t0 = 0.0

    # ------------------------------------------------------------------------- lifecycle
    def started(self, what: str) -> None:
        """A run started: reset the display, open a bar in the activity dock."""
        self._t0 = time.monotonic()
        self.loss_plot.clear()
        self.progress.value = 0
        self.status.value = "starting (loading the engine)..."
        self.set_busy(True)
        self.close_activity()
        from napari.utils import progress

        self._what = what
        self._activity = progress(total=STEPS, desc=what)

    def set_busy(self, busy: bool) -> None:
        """Enable Run and Preview, or Stop."""
        self.run_button.enabled = not busy
        self.preview_button.enabled = not busy
        self.stop_button.enabled = busy

    def finished(self, status: str, reason: str = "", note: str = "") -> None:
        """A run ended: ``status`` is "done", "stopped" or "error"; ``note`` says what ran."""
        self.close_activity()
        if status == RunStatus.DONE:
            self.progress.value = STEPS
            done = f"done in {fmt_seconds(time.monotonic() - self._t0)}"
            self.status.value = f"{done} · {note}" if note else done
        elif status == RunStatus.STOPPED:
            self.progress.value = 0
            self.status.value = f"stopped: {reason}" if reason else "stopped"
        else:
            self.progress.value = 0
            self.status.value = "failed (see the notification)"
        self.set_busy(False)

    def close_activity(self) -> None:
        """Close the activity dock's bar."""
        if self._activity is not None:
            self._activity.close()
            self._activity = None

    # ------------------------------------------------------------------------- progress
    def set_fraction(self, overall: float, description: str = "") -> None:
        """Move both bars to ``overall`` in [0, 1].

        Called last by the handlers: napari's activity bar may process pending Qt events
        while it updates, and with them the rest of the run (its end included).
        """
        value = round(STEPS * min(max(overall, 0.0), 1.0))
        self.progress.value = value
        activity = self._activity
        if activity is not None:
            if description:
                activity.set_description(f"{self._what}: {description}")
            activity.update(max(0, value - activity.n))

    def show_progress(self, p: Progress, job: int, n_jobs: int) -> None:
        """Show a report of job ``job`` of ``n_jobs``: bars, status line, loss."""
        if self._activity is None:
            return  # a late report of a run that has ended
        overall = min(1.0, (job + float(p.fraction)) / max(1, n_jobs))
        parts = []
        if n_jobs > 1:
            parts.append(f"layer {job + 1}/{n_jobs}")
        parts.append(p.stage)
        if p.n_planes > 1:
            parts.append(f"plane {p.plane + 1}/{p.n_planes}")
        if p.n_steps > 1:
            parts.append(f"step {p.step + 1}/{p.n_steps}")
        if p.stage == "train" and p.max_iterations:
            parts.append(f"iter {p.iteration}/{p.max_iterations}")
        if p.loss is not None:
            parts.append(f"loss {p.loss:.4g}")
        elapsed = time.monotonic() - self._t0
        if overall > 0.02:
            parts.append(f"ETA {fmt_seconds(elapsed * (1 - overall) / overall)}")
        self.status.value = " · ".join(parts)
        if p.stage == "train":
            self.loss_plot.add(p.loss)
        self.set_fraction(overall, " · ".join(parts[:3]))
