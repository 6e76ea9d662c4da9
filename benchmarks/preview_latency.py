"""How soon the widget's Preview shows an image, how often it updates, and what it costs.

Drives the dock widget in a real napari viewer (a display is needed: run it under Xvfb) on the
bundled sample ("membranes", 256 x 256 uint16) and prints a table with, for each preview:
the seconds from pressing Preview to the first image in the preview layer, the number of
updates of the layer (snapshots and the final result), the seconds to the final result, and the
seconds the snapshots took in all. Rows:

- ``live, first press``: the first preview of the session, ``--settle`` seconds after the dock
  opened (the dock loads torch and the engine in the background meanwhile; with
  ``--settle 0`` the press pays for that itself);
- ``live`` and ``no snapshots``: the same preview with and without live snapshots, alternated;
- ``follow: scale 2 -> 3``: with "follow settings" on, the scale is changed after a finished
  preview; the time runs from the change (the restart waits for ``FOLLOW_DELAY_MS`` first).

"Shown" means the layer was added or its data replaced in the viewer; the canvas draws it at the
next pass of the event loop.

Run from the repository root::

    xvfb-run -a python benchmarks/preview_latency.py [--threads 1] [--repeat 2] [--max-iters N]
        [--settle 5]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

TIMEOUT_S = 900.0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--repeat", type=int, default=2, help="previews per mode (default 2)")
    p.add_argument(
        "--max-iters", type=int, default=None, help="cap on training iterations (preset's own)"
    )
    p.add_argument(
        "--settle",
        type=float,
        default=5.0,
        help="seconds between opening the dock and the first press (default 5)",
    )
    return p.parse_args(argv)


def _pump(app: Any, until: Any, timeout: float = TIMEOUT_S) -> None:
    """Process Qt events until ``until()`` is true."""
    t0 = time.monotonic()
    while not until():
        app.processEvents()
        time.sleep(0.005)
        if time.monotonic() - t0 > timeout:
            raise TimeoutError("the preview did not finish in time")


def _one(app: Any, widget: Any, live: bool, label: str) -> dict[str, Any]:
    """Press Preview and wait for the end; the preview's timeline."""
    ctl = widget.preview_ctl
    ctl.live = live
    pressed = time.monotonic()
    widget.preview()
    _pump(app, lambda: not widget.busy)
    if widget.last_status != "done":
        raise RuntimeError(f"preview ended with {widget.last_status!r}: {widget.status.value}")
    return _row(label, ctl, pressed)


def _row(label: str, ctl: Any, pressed: float) -> dict[str, Any]:
    lag = ctl.started_at - pressed  # from the press (or the change) to the start
    meta = ctl.layer.metadata["zssr"]
    return {
        "mode": label,
        "first": lag + ctl.updates[0],
        "updates": len(ctl.updates),
        "total": lag + ctl.updates[-1],
        "snapshots_s": sum(ctl.snapshot_seconds),
        "region": "x".join(str(b - a) for a, b in zip(meta["region"][::2], meta["region"][1::2])),
        "iterations": meta.get("iterations"),
    }


def _follow(app: Any, widget: Any) -> dict[str, Any]:
    """Change the scale with "follow settings" on; the timeline from the change."""
    ctl = widget.preview_ctl
    ctl.live = True
    ctl.follow.value = True
    changed = time.monotonic()
    widget.scale.value = 3.0
    _pump(app, lambda: widget.busy)
    _pump(app, lambda: not widget.busy)
    ctl.follow.value = False
    widget.scale.value = 2.0
    return _row("follow: scale 2 -> 3", ctl, changed)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import napari
    from qtpy.QtWidgets import QApplication

    viewer = napari.Viewer(show=False)
    viewer.open_sample("napari-zssr", "membranes")
    _dock, widget = viewer.window.add_plugin_dock_widget("napari-zssr", "ZSSR super-resolution")
    if args.max_iters is not None:
        widget.max_iters.value = args.max_iters
    app = QApplication.instance()
    print(
        f"{'mode':<22} {'region':>8} {'first image s':>14} {'updates':>8} "
        f"{'final s':>8} {'snapshots s':>12} {'load (1 min)':>13}"
    )
    opened = time.monotonic()
    _pump(app, lambda: time.monotonic() - opened >= args.settle)
    _print(_one(app, widget, True, f"live, first press {args.settle:g} s"))
    import torch  # loaded by the first preview

    torch.set_num_threads(args.threads)
    for _ in range(args.repeat):
        _print(_one(app, widget, True, "live"))
        _print(_one(app, widget, False, "no snapshots"))
    _print(_follow(app, widget))
    print(f"torch threads: {torch.get_num_threads()}, CPUs: {os.cpu_count()}")
    viewer.close()
    return 0


def _print(r: dict[str, Any]) -> None:
    """One row of the table, as soon as it is measured (with the load average then)."""
    try:
        load = f"{os.getloadavg()[0]:.1f}"
    except OSError:
        load = "unknown"
    print(
        f"{r['mode']:<22} {r['region']:>8} {r['first']:>14.2f} {r['updates']:>8d} "
        f"{r['total']:>8.2f} {r['snapshots_s']:>12.2f} {load:>13}",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
