"""Take the README's screenshot: the sample in napari, the widget docked, after a fast run.

Run from the repository root (under ``xvfb-run -a`` without a display)::

    python docs/make_screenshot.py [docs/images/widget.png]
    python docs/make_screenshot.py --maps docs/images/widget_maps.png

With ``--maps`` the run has the "quality maps" option on, and the maps are shown beside the
source and the result (they come in hidden).
    python docs/make_screenshot.py docs/images/widget-estimate.png --psf estimate

``--psf estimate`` chooses "estimate from the image" as the PSF source (the kernel row then
shows the estimated kernel); ``--max-iters N`` caps the fast preset's iterations.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import napari
from qtpy.QtWidgets import QApplication

from napari_zssr._sample_data import make_sample_data


def main(out: Path, maps: bool = False, psf: str = "none", max_iters: int | None = None) -> int:
    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(1400, 900)
    data, kwargs, _ = make_sample_data()[0]
    viewer.add_image(data, **kwargs)
    _, widget = viewer.window.add_plugin_dock_widget("napari-zssr", "ZSSR super-resolution")
    widget.preset.value = "fast"
    widget.quality_maps.value = maps
    if max_iters is not None:
        widget.max_iters.value = max_iters
    if psf == "estimate":
        from napari_zssr._widget import PSF_ESTIMATE

        widget.psf_source.value = PSF_ESTIMATE
    widget.run()
    deadline = time.monotonic() + 1800  # a fast run takes minutes on a busy CPU
    while widget.busy and time.monotonic() < deadline:
        QApplication.processEvents()
        time.sleep(0.05)
    if widget.last_status != "done":
        print(f"run did not finish: {widget.last_status}", file=sys.stderr)
        return 1
    viewer.grid.shape = (2, 1)  # one layer per row: the result above, the source below
    if maps:  # the source, the result and the three maps: a 3 x 2 grid
        for layer in viewer.layers:
            layer.visible = True
        viewer.grid.shape = (3, 2)
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default="docs/images/widget.png", type=Path)
    parser.add_argument("--maps", action="store_true", help="with the quality maps")
    parser.add_argument("--psf", choices=("none", "estimate"), default="none")
    parser.add_argument("--max-iters", type=int, default=None)
    args = parser.parse_args()
    sys.exit(main(args.out, maps=args.maps, psf=args.psf, max_iters=args.max_iters))
