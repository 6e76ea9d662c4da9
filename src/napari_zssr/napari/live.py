"""When a preview takes a snapshot of the network in training (pure Python, no Qt, no torch).

A snapshot is one forward pass over the preview's region: on a 2-core CPU about as long as
twenty training iterations (0.75-0.9 s for a 512 x 512 output). :class:`SnapshotClock` takes
the first one after the first iteration, so that an image appears early, and then one about every
second of wall time, but never so often that the snapshots take more than a tenth of the
preview's time: where a forward pass is cheap (a GPU) the preview refreshes every second, on a
CPU every 8 s or so. A fifth cost the preview 22% of its time on the 2-core CPU (40.9 against
33.4 s, ``benchmarks/preview_latency.py --threads 2``), too much for a feature that should not
slow the result down.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

__all__ = ["Snapshot", "SnapshotClock"]


@dataclass(frozen=True)
class Snapshot:
    """A snapshot taken in the engine thread.

    Attributes
    ----------
    image : numpy.ndarray
        The network's current output, shaped and typed like the run's output.
    bicubic : numpy.ndarray or None
        The bicubic upscale of the same region (with the first snapshot only).
    iteration : int
        Training iteration of the snapshot (within its training step).
    seconds : float
        Wall time the snapshot took (the forward pass and the conversion), in seconds.
    number : int
        1 for the first snapshot of a run, then 2, 3...
    trained : bool
        True for the snapshot of the trained network taken at inference (the self-ensemble's
        identity member, computed anyway: it costs nothing); ``iteration`` is then 1.
    """

    image: object
    bicubic: object
    iteration: int
    seconds: float
    number: int
    trained: bool = False


@dataclass
class SnapshotClock:
    """Decides, at each training report, whether to take a snapshot now.

    Parameters
    ----------
    first_iteration : int
        Iteration of the first snapshot: the first, so that an image comes as soon as the
        network exists (it is then close to the bicubic upscale, and sharpens from there;
        three steps more cost 0.1-0.2 s of the 2 s the first image may take).
    interval_s : float
        Least wall time between two snapshots, in seconds.
    max_share : float
        Largest share of the wall time the snapshots may take: a snapshot that took ``t``
        seconds is followed by the next one at least ``t / max_share`` after its start.
    """

    first_iteration: int = 1
    interval_s: float = 1.0
    max_share: float = 0.1
    taken: int = 0
    spent_s: float = 0.0
    off: bool = False
    """Set when a snapshot failed: no more are taken."""
    _next: float = field(default=0.0, repr=False)

    def due(self, iteration: int, now: float | None = None) -> bool:
        """Whether a report at ``iteration`` should take a snapshot."""
        if self.off:
            return False
        if self.taken == 0:
            return iteration >= self.first_iteration
        return (time.monotonic() if now is None else now) >= self._next

    def record(self, seconds: float, now: float | None = None) -> int:
        """Note a snapshot that took ``seconds`` and ended at ``now``; returns its number."""
        now = time.monotonic() if now is None else now
        self.taken += 1
        self.spent_s += seconds
        self._next = now - seconds + max(self.interval_s, seconds / self.max_share)
        return self.taken
