"""Take the README's screenshot: the sample in napari, the widget docked, after a fast run.

Run from the repository root (under ``xvfb-run -a`` without a display)::

    python docs/make_screenshot.py [docs/images/widget.png]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import napari
from qtpy.QtWidgets import QApplication

from napari_zssr._sample_data import make_sample_data


def main(out: Path) -> int:
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1400, 900)
    data, kwargs, _ = make_sample_data()[0]
    viewer.add_image(data, **kwargs)
    _, widget = viewer.window.add_plugin_dock_widget("napari-zssr", "ZSSR super-resolution")
    widget.preset.value = "fast"
    widget.run()
    deadline = time.monotonic() + 1800  # a fast run takes minutes on a busy CPU
    while widget.busy and time.monotonic() < deadline:
        QApplication.processEvents()
        time.sleep(0.05)
    if widget.last_status != "done":
        print(f"run did not finish: {widget.last_status}", file=sys.stderr)
        return 1
    viewer.grid.shape = (2, 1)  # one layer per row: the result above, the source below
    viewer.grid.enabled = True
    viewer.reset_view()
    for _ in range(20):
        QApplication.processEvents()
    out.parent.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(str(out), canvas_only=False)
    viewer.close()
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/images/widget.png")))
