"""Where the wait for the first updated image goes when "follow settings" restarts a preview.

Drives the dock widget in a real napari viewer (run it under Xvfb) on the bundled sample: one
preview first (a short one, ``--max-iters``), then "follow settings" on and the scale changed
``--repeat`` times (2 -> 3 -> 2 ...); the first row is that first preview, timed from the
press (5 s after the dock opened, as ``preview_latency.py`` does). Each restart is stopped
once its first snapshot is on screen. For each, it prints the seconds from the change (or
the press) to each step of the way:

- ``timer``: the follow pause ends (``FOLLOW_DELAY_MS``) and Preview is pressed (none for
  the first row);
- ``run``: the pipeline's ``run`` is entered in the worker thread;
- ``train``: the first training report (request checks, region read, noise estimate, network
  and sampler set-up done);
- ``snap>`` / ``snap<``: the first snapshot's forward pass (and the bicubic upscale of the
  region that comes with it) starts / ends, in the engine thread;
- ``shown``: the main thread has put it into the preview layer (the end of
  ``PreviewController.on_snapshot``).

The timings come from wrapping those functions (nothing in the package changes). Before the
rows it prints the longest pauses of the viewer's event loop (processed every 5 ms) during the
5 s in which the dock loads the engine in the background.

Run from the repository root::

    xvfb-run -a python benchmarks/preview_breakdown.py [--threads 2] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

STEPS = ("timer", "run", "train", "snap>", "snap<", "shown")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--repeat", type=int, default=3, help="changes of the scale (default 3)")
    p.add_argument("--max-iters", type=int, default=60, help="iterations of the previews")
    args = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import napari
    import numpy as np
    from qtpy.QtWidgets import QApplication

    marks = _instrument()
    viewer = napari.Viewer(show=False)
    viewer.open_sample("napari-zssr", "membranes")
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-zssr", "ZSSR super-resolution")
    app = QApplication.instance()

    def pump(until: Any, timeout: float = 120.0) -> None:
        t0 = time.monotonic()
        while not until() and time.monotonic() - t0 < timeout:
            app.processEvents()
            time.sleep(0.005)

    opened = time.monotonic()
    ticks = [opened]

    def settled() -> bool:  # the dock's background warm-up; the event loop's pauses meanwhile
        ticks.append(time.monotonic())
        return ticks[-1] - opened > 5.0

    pump(settled)
    gaps = sorted(np.diff(ticks), reverse=True)[:4]
    print("longest pauses of the event loop while the dock warmed up (s):", end=" ")
    print(", ".join(f"{g:.2f}" for g in gaps), end="\n\n")
    widget.max_iters.value = args.max_iters
    print("| from | " + " | ".join(f"{s} s" for s in STEPS) + " |")
    print("|---" * (len(STEPS) + 1) + "|")
    marks.clear()
    marks["t0"] = time.monotonic()
    widget.preview()  # the session's first press: a new preview layer
    pump(lambda: not widget.busy)
    _row("first press", marks)
    import torch

    torch.set_num_threads(args.threads)
    ctl = widget.preview_ctl
    for k in range(args.repeat):
        ctl.follow.value = True
        marks.clear()
        marks["t0"] = time.monotonic()
        new = 3.0 if k % 2 == 0 else 2.0
        widget.scale.value = new
        pump(lambda: "shown" in marks)
        widget.stop()
        pump(lambda: not widget.busy)
        ctl.follow.value = False
        _row(f"scale -> {new:g}", marks)
    viewer.close()
    return 0


def _row(label: str, marks: dict[str, float]) -> None:
    cells = [f"{marks[s] - marks['t0']:.2f}" if s in marks else "-" for s in STEPS]
    print(f"| {label} | " + " | ".join(cells) + " |", flush=True)


def _instrument() -> dict[str, float]:
    """Wrap the functions on the way to the first image; their times go into the dict."""
    import napari_zssr.napari.worker as worker_mod
    import napari_zssr.pipeline as pipeline
    from napari_zssr.napari.preview import PreviewController

    marks: dict[str, float] = {}

    def first(name: str) -> None:
        marks.setdefault(name, time.monotonic())

    run = pipeline.run

    def timed_run(request: Any, callback: Any = None, **kwargs: Any) -> Any:
        first("run")

        def cb(progress: Any) -> Any:
            if progress.stage == "train":
                first("train")
            return callback(progress) if callback is not None else True

        return run(request, cb, **kwargs)

    pipeline.run = timed_run  # run_jobs imports it from the package at each call
    take = worker_mod._take_snapshot

    def timed_take(*a: Any) -> Any:
        first("snap>")
        out = take(*a)
        first("snap<")
        return out

    worker_mod._take_snapshot = timed_take
    follow_now, on_snapshot = PreviewController._follow_now, PreviewController.on_snapshot

    def timed_follow(self: Any) -> None:
        first("timer")
        follow_now(self)

    def timed_on_snapshot(self: Any, job: Any, msg: Any) -> None:
        on_snapshot(self, job, msg)
        first("shown")

    PreviewController._follow_now = timed_follow  # type: ignore[method-assign]
    PreviewController.on_snapshot = timed_on_snapshot  # type: ignore[method-assign]
    return marks


if __name__ == "__main__":
    sys.exit(main())
