"""``napari-zssr demo``: the bundled sample in napari, or processed and saved without a display."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from importlib.util import find_spec
from pathlib import Path

import numpy as np

from .._version import __version__
from ..file_batch.progress import progress_bar
from ..io import atomic_write, check_writable, write_tiff
from .request_args import CLI_LABELS

__all__ = ["WIDGET_NAME", "demo_command", "has_display"]

WIDGET_NAME = "ZSSR super-resolution"
"""Display name of the plugin's dock widget in the napari manifest."""


def has_display() -> bool:
    """True where a window can open: X11/Wayland session, macOS or Windows."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def demo_command(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    """The ``demo`` subcommand."""
    if not args.headless:
        if find_spec("napari") is None:
            print("note: napari is not installed; running the headless demo", file=sys.stderr)
        elif not has_display():
            print("note: no display found; running the headless demo", file=sys.stderr)
        else:
            _demo_viewer()
            return 0
    return _demo_headless(args)


def _demo_viewer() -> None:
    """Open napari with the sample image and the ZSSR widget docked."""
    import napari

    from .._sample_data import make_sample_data

    viewer = napari.Viewer(title="napari-zssr demo")
    for data, kwargs, _layer_type in make_sample_data():
        viewer.add_image(data, **kwargs)
    viewer.window.add_plugin_dock_widget("napari-zssr", WIDGET_NAME)
    napari.run()


def _demo_headless(args: argparse.Namespace) -> int:
    """Super-resolve the sample x2 and save result, input and a side-by-side PNG."""
    from .._sample_data import load_sample
    from ..pipeline import RunRequest, run

    folder = Path(args.output)
    folder.mkdir(parents=True, exist_ok=True)
    check_writable(folder / "sample_zssr_x2.tif")  # before training
    image, info = load_sample()
    px = info.get("pixel_size")
    scale = 2.0
    overrides = {"max_iters": args.max_iters} if args.max_iters is not None else {}
    request = RunRequest(
        source=image,
        axes="YX",
        pixel_size=(None, px, px),
        scale=scale,
        preset=args.preset,
        overrides=overrides,
        device=args.device,
        seed=args.seed,
        labels=CLI_LABELS,
    )
    update, close = progress_bar(args.quiet, "ZSSR demo")
    try:
        result = run(request, update)
    finally:
        close()
    meta = {"software": "napari-zssr", "version": __version__, "sample": info.get("attribution")}
    input_path = folder / "sample_input.tif"
    result_path = folder / "sample_zssr_x2.tif"
    write_tiff(input_path, image, axes="YX", pixel_size=px, metadata=meta)
    record = {**result.record, "sample": info.get("attribution")}
    write_tiff(result_path, result.output, axes="YX", pixel_size=result.pixel_size, metadata=record)
    print(f"input:  {input_path}")
    print(f"result: {result_path}")
    png = folder / "side_by_side.png"
    credit = str(info.get("attribution", ""))
    if _side_by_side(png, image, result.output, scale, args.preset, credit):
        print(f"figure: {png}")
    seconds = result.record["seconds"]
    print(f"ZSSR x{scale:g} ({args.preset} preset) took {seconds:.1f} s on {result.info['device']}")
    return 0


def _side_by_side(
    path: Path, image: np.ndarray, result: np.ndarray, scale: float, preset: str, credit: str
) -> bool:
    """Save input (nearest) | bicubic | ZSSR, full view and a zoom; False without matplotlib."""
    if find_spec("matplotlib") is None:
        print("note: matplotlib is not installed; skipping the side-by-side PNG", file=sys.stderr)
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from ..core.resize import imresize

    ih, iw = image.shape
    oh, ow = result.shape
    rows = np.minimum((np.arange(oh) / scale).astype(int), ih - 1)
    cols = np.minimum((np.arange(ow) / scale).astype(int), iw - 1)
    nearest = image[np.ix_(rows, cols)]
    bicubic = imresize(torch.from_numpy(image.astype(np.float32)), scale).numpy()
    lo, hi = np.percentile(image, [0.5, 99.8])
    panels = [
        ("input (nearest)", nearest),
        ("bicubic", bicubic),
        (f"ZSSR ({preset})", result.astype(np.float32)),
    ]
    # Zoom: a quarter of the field around the centre of the brightest quadrant.
    zh, zw = oh // 4, ow // 4
    quads = [(r, c) for r in (0, oh // 2) for c in (0, ow // 2)]
    r0, c0 = max(
        quads, key=lambda rc: float(result[rc[0] : rc[0] + oh // 2, rc[1] : rc[1] + ow // 2].mean())
    )
    r0, c0 = r0 + oh // 8, c0 + ow // 8
    fig, axes = plt.subplots(2, 3, figsize=(12, 8.8), dpi=100, layout="constrained")
    for col, (title, img) in enumerate(panels):
        for row, view in enumerate((img, img[r0 : r0 + zh, c0 : c0 + zw])):
            ax = axes[row, col]
            ax.imshow(view, cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(f"{title}, {oh} x {ow}", fontsize=12)
                ax.add_patch(
                    plt.Rectangle((c0 - 0.5, r0 - 0.5), zw, zh, fill=False, ec="yellow", lw=1)
                )
            else:
                ax.set_title(f"{title}, zoom on the yellow box", fontsize=11)
    fig.suptitle(f"x{scale:g} super-resolution of a {ih} x {iw} image", fontsize=13)
    if credit:
        fig.supxlabel(credit, fontsize=7)
    try:
        atomic_write(path, lambda fh: fig.savefig(fh, format="png"))
    finally:
        plt.close(fig)
    return True
