"""The progress bar of a run on the terminal (tqdm, on stderr)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from ..core.progress import Progress

__all__ = ["progress_bar"]


def progress_bar(quiet: bool, desc: str) -> tuple[Callable[[Progress], None], Callable[[], None]]:
    """A tqdm bar (on stderr) driven by :class:`~napari_zssr.Progress` reports, and its closer."""
    from tqdm import tqdm

    bars: list[Any] = []

    def bar_() -> Any:
        # Opened at the first report, so that errors found before the work starts are not
        # printed behind a progress bar.
        if not bars:
            bars.append(
                tqdm(
                    total=100,
                    desc=desc,
                    disable=quiet,
                    unit="%",
                    bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}{postfix}]",
                    file=sys.stderr,
                )
            )
        return bars[0]

    def update(p: Progress) -> None:
        bar = bar_()
        bar.n = round(100.0 * min(max(p.fraction, 0.0), 1.0), 1)
        where = f"plane {p.plane + 1}/{p.n_planes} " if p.n_planes > 1 else ""
        bar.set_description_str(f"{desc} {where}{p.stage}", refresh=False)
        post = {}
        if p.stage == "train":
            post["it"] = f"{p.iteration}/{p.max_iterations}"
        if p.loss is not None:
            post["loss"] = f"{p.loss:.4g}"
        bar.set_postfix(post, refresh=False)
        bar.refresh()

    def close() -> None:
        if not bars:
            return
        bar = bars[0]
        if bar.n < 100:
            bar.n = 100
            bar.refresh()
        bar.close()

    return update, close
