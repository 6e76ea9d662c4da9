"""Progress reports and cancellation shared by the engine and its callers."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Cancelled", "Progress", "ProgressCallback", "relay"]


class Cancelled(Exception):
    """Raised to stop a run; a callback may raise it, or return False to the same effect."""


@dataclass(frozen=True)
class Progress:
    """One progress report of a run.

    Attributes
    ----------
    stage : str
        ``"prepare"``, ``"train"``, ``"infer"`` or ``"done"``.
    iteration : int
        Iteration within the current training step (0 outside training).
    max_iterations : int
        Cap of iterations of the current training step.
    loss : float or None
        Most recent training loss (L1 on the father crop).
    lr : float or None
        Current learning rate.
    elapsed : float
        Seconds since the run started.
    fraction : float
        Estimated completion of the whole run, in [0, 1].
    plane, n_planes : int
        Index of the plane (or stack group) being processed and their number.
    step, n_steps : int
        Scale step (gradual SR) being processed and their number.
    message : str
        Short human-readable description.
    snapshot : callable or None
        On training reports of a single network: ``snapshot(network=True)`` returns the
        current network's output for the image being trained on (one forward pass, no
        self-ensemble, no back-projection); ``network=False`` returns the bicubic upscale the
        network starts from. It is only valid inside the callback (the network changes
        afterwards), leaves the network's mode and every random stream untouched, and costs
        one forward pass only when called. Once more at inference, on the ``"infer"``
        report after the self-ensemble's identity member (when there are several members):
        the trained network's output for the image being upscaled, already computed, so
        free. None where no snapshot is offered.
    """

    stage: str
    iteration: int = 0
    max_iterations: int = 0
    loss: float | None = None
    lr: float | None = None
    elapsed: float = 0.0
    fraction: float = 0.0
    plane: int = 0
    n_planes: int = 1
    step: int = 0
    n_steps: int = 1
    message: str = ""
    snapshot: Callable[..., Any] | None = field(default=None, repr=False, compare=False)


ProgressCallback = Callable[[Progress], "bool | None"]


def relay(
    callback: ProgressCallback | None,
    span: tuple[float, float] = (0.0, 1.0),
    *,
    total: float = 1.0,
    message: Callable[[Progress], str] | None = None,
    change: Callable[[Progress], Progress] | None = None,
) -> ProgressCallback | None:
    """``callback`` receiving the reports of a part of a run: each report's fraction, which
    runs from 0 to ``total`` over the part, mapped onto ``span`` of the whole run (clipped
    to it), its message rewritten by ``message`` and the report changed by ``change`` when
    given. None for no callback; ``callback`` itself when there is nothing to change."""
    if callback is None:
        return None
    lo, hi = span
    if (lo, hi, total) == (0.0, 1.0, 1.0) and message is None and change is None:
        return callback

    def forward(p: Progress) -> bool | None:
        fraction = lo + (hi - lo) * min(max(p.fraction / total, 0.0), 1.0)
        p = dataclasses.replace(p, fraction=fraction)
        if message is not None:
            p = dataclasses.replace(p, message=message(p))
        return callback(change(p) if change is not None else p)

    return forward
