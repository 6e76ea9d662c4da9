"""Make the trust figure: input, result and the three quality maps on the bundled sample.

Run from the repository root (a minute or two on a 2-core CPU)::

    python docs/make_trust_figure.py [docs/images/trust_maps.png]

The sample (256 x 256 uint16 membranes) is super-resolved x2 with the ``fast`` preset and
``maps=True``; the figure shows a 96 x 96 input region (192 x 192 on the output grid) so that
single pixels stay visible, and prints the run's consistency and resolution numbers.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

REGION = (slice(120, 216), slice(40, 136))  # input pixels: membranes and dark background
SCALE = 2


def main(out_path: Path) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from napari_zssr import super_resolve
    from napari_zssr._sample_data import load_sample

    image, meta = load_sample()
    out, info = super_resolve(
        image, SCALE, preset="fast", device="cpu", seed=0, return_info=True, maps=True
    )
    print("consistency:", {k: v for k, v in info["consistency"].items() if k != "unit"})
    print("resolution (input px):", info["resolution"])
    up = tuple(slice(s.start * SCALE, s.stop * SCALE) for s in REGION)
    panels = [
        ("input (nearest)", np.kron(image[REGION], np.ones((SCALE, SCALE))), "gray"),
        ("ZSSR x2", out[up], "gray"),
        ("spread (ensemble MAD)", info["maps"]["spread"][up], "magma"),
        ("consistency (before back-projection)", info["maps"]["consistency"][up], "magma"),
        ("added (vs bicubic)", info["maps"]["added"][up], "magma"),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(15, 3.4), dpi=72)
    for ax, (title, arr, cmap) in zip(axes, panels):
        vmax = float(np.percentile(arr, 99.5)) if cmap != "gray" else None
        im = ax.imshow(arr, cmap=cmap, vmin=0 if vmax else None, vmax=vmax)
        ax.set_title(title, fontsize=10)
        ax.set_axis_off()
        if cmap != "gray":
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
    res = info["resolution"]
    fig.suptitle(
        f"Sample membranes, preset fast: decorrelation resolution input {res['input']:.2f} px, "
        f"bicubic {res['bicubic']:.2f} px, ZSSR {res['output']:.2f} px (input pixels); "
        f"RSP {info['consistency']['rsp']:.3f}",
        fontsize=10,
    )
    fig.text(0.5, 0.01, meta["attribution"], ha="center", fontsize=6)
    fig.tight_layout(rect=(0, 0.03, 1, 0.95))
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=72)
    print(f"written {out_path} ({out_path.stat().st_size / 1024:.0f} KB)")
    return 0


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/images/trust_maps.png")
    raise SystemExit(main(target))
