"""Frames of the live preview sharpening: docs/images/preview_sequence.png.

Opens the bundled sample in napari, zooms on a region (about 96 pixels across), presses
Preview in the dock widget and keeps the preview layer's image at each of its updates; the
figure puts the first snapshot, one from the middle of the training and the final preview side
by side, with the source's contrast limits (what the canvas shows, without the canvas's own
size and margins).

Run from the repository root (under ``xvfb-run -a`` without a display)::

    python docs/make_preview_sequence.py [docs/images/preview_sequence.png] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import napari
import numpy as np
from qtpy.QtWidgets import QApplication

from napari_zssr._sample_data import make_sample_data


def _settle(n: int = 10) -> None:
    for _ in range(n):
        QApplication.processEvents()
        time.sleep(0.01)


def _frames(widget: Any) -> list[tuple[str, Any]]:
    """Press Preview; the preview layer's image (with a caption) at every update."""
    ctl = widget.preview_ctl
    widget.preview()
    frames: list[tuple[str, Any]] = []
    seen = 0
    deadline = time.monotonic() + 1800  # minutes on a busy CPU
    while (widget.busy or seen < len(ctl.updates)) and time.monotonic() < deadline:
        QApplication.processEvents()
        time.sleep(0.02)
        if len(ctl.updates) > seen:
            seen = len(ctl.updates)
            _settle()
            meta = ctl.layer.metadata["zssr"]
            t = ctl.updates[seen - 1]
            caption = (
                f"snapshot, iteration {meta['iteration']} ({t:.0f} s)"
                if meta.get("live")
                else f"final preview ({t:.0f} s)"
            )
            frames.append((caption, np.array(ctl.layer.data)))
    return frames


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", nargs="?", type=Path, default=Path("docs/images/preview_sequence.png"))
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    args = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1600, 1000)
    data, kwargs, _ = make_sample_data()[0]
    viewer.add_image(data, **kwargs)
    _, widget = viewer.window.add_plugin_dock_widget("napari-zssr", "ZSSR super-resolution")
    _settle()
    camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera
    camera.center = (128.0, 128.0)
    camera.zoom = min(float(v) for v in viewer.canvas.size) / 96.0  # about 96 pixels across
    _settle()
    frames = _frames(widget)
    limits = tuple(viewer.layers[0].contrast_limits)
    if widget.last_status != "done" or len(frames) < 3:
        print(f"preview: {widget.last_status}, {len(frames)} frames", file=sys.stderr)
        return 1
    chosen = [frames[0], frames[(len(frames) - 1) // 2], frames[-1]]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 4.4))
    for ax, (caption, image) in zip(axes, chosen):
        ax.imshow(image, cmap="gray", vmin=limits[0], vmax=limits[1], interpolation="nearest")
        ax.set_title(caption, fontsize=11)
        ax.axis("off")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=72)
    print(f"{len(frames)} updates; wrote {args.out}")
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
