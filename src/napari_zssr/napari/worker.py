"""Work off the GUI thread: runs, the kernel preview, PSF files and the device probe.

A run is a napari ``thread_worker`` generator (:func:`run_jobs`). The pipeline itself runs in an
inner thread and reports through a queue, so that the generator can ``yield`` each report to the
main thread as a typed message and stay free to notice Stop; the Stop event makes the pipeline's
callback return False (the engine then raises :class:`~napari_zssr.Cancelled`). Layers are never
touched here: a :class:`Job` carries a :class:`~napari_zssr.pipeline.RunRequest` whose source is
read (and only the part it names) inside the pipeline.

The inner threads belong to an :class:`EngineThreads` owned by the widget, which stops and waits
for them when it closes or the application quits; nothing here is module-level state.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import queue
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

from ..core.progress import Cancelled, Progress
from ..pipeline import PSFFileSpec, RunRequest, RunResult, kernel_for, read_psf
from .live import Snapshot, SnapshotClock

__all__ = [
    "AllDone",
    "DeviceChosen",
    "EngineThreads",
    "Job",
    "JobFailed",
    "JobProgress",
    "JobResult",
    "JobSnapshot",
    "JobStarted",
    "JobStopped",
    "Message",
    "Outcome",
    "RunStop",
    "describe_device",
    "preview_kernel",
    "read_psf_file",
    "run_jobs",
    "wait_for_workers_at_exit",
]

STOP_GRACE_S = 1.5
"""After Stop, seconds to wait for the engine to notice before leaving it behind."""
REPORT_INTERVAL_S = 0.1
"""Least seconds between two training reports passed on to the GUI."""


@dataclass
class Job:
    """One source layer to process (built in the main thread; the worker reads ``request``).

    Attributes
    ----------
    request : RunRequest
        What the pipeline runs (its source is the layer's data, read in the worker).
    source : napari.layers.Image
        The source layer (never touched in the worker).
    source_name, result_name : str
        Names of the source layer and of the layer to add.
    kind : {"upscale", "isotropic_z"}
        What the run does (a :class:`~napari_zssr.napari.choices.JobKind` value).
    offset : tuple of float
        Source (level 0) data index of the result's first element, per axis.
    factors : tuple of float
        Per-axis factors relative to the source's level 0 grid.
    preview, replace : bool
        A preview (replaces the previous preview); replace the previous result of the source.
    record : dict
        What the widget adds to the result's ``zssr`` metadata.
    psf_array : tuple, optional
        A PSF file's content already read.
    snapshots : SnapshotClock, optional
        When given, snapshots of the network in training are sent as it says
        (:class:`JobSnapshot`; for previews).
    """

    request: RunRequest
    source: Any
    source_name: str
    result_name: str
    kind: str
    offset: tuple[float, ...]
    factors: tuple[float, ...]
    preview: bool = False
    replace: bool = False
    record: dict[str, Any] = field(default_factory=dict)
    psf_array: tuple[Any, Any] | None = None
    snapshots: SnapshotClock | None = None


# ------------------------------------------------------------------------------ messages


@dataclass(frozen=True)
class JobStarted:
    """Job ``index`` started."""

    index: int


@dataclass(frozen=True)
class DeviceChosen:
    """The device job ``index`` runs on, and why."""

    index: int
    device: str
    reason: str


@dataclass(frozen=True)
class JobProgress:
    """A progress report of job ``index``."""

    index: int
    progress: Progress


@dataclass(frozen=True)
class JobSnapshot:
    """A snapshot of job ``index``'s network in training (see :class:`~.live.Snapshot`)."""

    index: int
    snapshot: Snapshot


@dataclass(frozen=True)
class JobResult:
    """Job ``index`` finished with ``result``."""

    index: int
    result: RunResult


@dataclass(frozen=True)
class JobFailed:
    """Job ``index`` raised ``error``; the remaining jobs are not run."""

    index: int
    error: BaseException


@dataclass(frozen=True)
class JobStopped:
    """The run was stopped during (or before) job ``index``."""

    index: int


@dataclass(frozen=True)
class AllDone:
    """Every job finished."""


Message = (
    JobStarted
    | DeviceChosen
    | JobProgress
    | JobSnapshot
    | JobResult
    | JobFailed
    | JobStopped
    | AllDone
)


# ------------------------------------------------------------------------------ threads


class RunStop(threading.Event):
    """The stop flag of one run: set by Stop, or raised when napari aborts the worker.

    napari aborts the workers of a closing viewer without resuming their generators, so the
    run cannot hear of it through them; the engine's callback reads this flag instead.
    """

    worker: Any = None

    def is_set(self) -> bool:
        aborted = self.worker is not None and bool(getattr(self.worker, "abort_requested", 0))
        return super().is_set() or aborted


class EngineThreads:
    """The inner engine threads of one widget, so that its owner can stop and wait for them.

    A thread killed inside a torch operation (or inside ``import torch``) aborts the
    interpreter, so a closing widget asks its runs to stop (they do at their next progress
    report) and waits for them.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def start(self, target: Callable[[], None]) -> threading.Thread:
        """Start ``target`` in a new daemon thread and keep track of it."""
        thread = threading.Thread(target=target, name="napari-zssr-engine", daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()
        return thread

    def wait(self, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds for every thread; True when none is left."""
        with self._lock:
            threads = list(self._threads)
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in threads)


EXIT_WAIT_S = 10.0
"""At interpreter exit, seconds to wait for the Qt thread pool's workers (see
:func:`wait_for_workers_at_exit`); the device probe's import of torch takes a few."""


@functools.cache
def wait_for_workers_at_exit() -> None:
    """Have the interpreter wait, at exit, for the Qt thread pool's workers (at most
    :data:`EXIT_WAIT_S`); registered once per process.

    The widget's small workers (the device probe, PSF file reads and previews) run in the
    global ``QThreadPool``. A script that closes the viewer while one of them still runs and
    then ends tore the interpreter down under it: the worker's signals were deleted and the
    process aborted (exit status 134). napari's event loop waits for them when its window
    closes; a script that never starts the loop has only this.
    """
    import atexit

    from qtpy.QtCore import QThreadPool

    atexit.register(lambda: QThreadPool.globalInstance().waitForDone(int(EXIT_WAIT_S * 1000)))


_DONE = object()


def _pump(
    fn: Callable[[Callable[[Progress], bool]], Any],
    stop: threading.Event,
    threads: EngineThreads,
    grace: float = STOP_GRACE_S,
    clock: SnapshotClock | None = None,
) -> Generator[Progress | Snapshot, None, tuple[str, Any]]:
    """Run ``fn(callback)`` in an inner thread and yield its progress reports.

    Returns ``("ok", value)``, ``("cancelled", None)`` or ``("error", exception)``. After
    ``stop`` is set, the engine gets ``grace`` seconds to notice; then it is left behind (its
    next callback returns False) so that the caller is free at once. With a ``clock``, the
    snapshots it asks for are taken in the inner thread (the network is only valid there,
    during the callback) and yielded as :class:`~.live.Snapshot` s.
    """
    reports: queue.SimpleQueue = queue.SimpleQueue()
    box: dict[str, Any] = {}
    last_sent = [-math.inf]
    losses: list[float] = []

    def callback(progress: Progress) -> bool:
        if stop.is_set():
            return False
        # Training reports come often (each iteration on the CPU, for a prompt stop); the GUI
        # needs a few per second, with the mean loss since the last one it got (one iteration's
        # loss alone is mostly noise). Other stages are rare and always shown.
        if progress.snapshot is not None:
            # the inference's snapshot (the trained network) is computed anyway: always taken
            if clock is not None and (progress.stage != "train" or clock.due(progress.iteration)):
                try:
                    reports.put(_take_snapshot(progress, clock))
                except Exception:  # e.g. out of memory: the preview goes on without them
                    clock.off = True
            progress = dataclasses.replace(progress, snapshot=None)  # not valid after this
        if progress.stage == "train" and progress.loss is not None:
            losses.append(progress.loss)
        now = time.monotonic()
        if progress.stage != "train" or now - last_sent[0] >= REPORT_INTERVAL_S:
            last_sent[0] = now
            if progress.stage == "train" and losses:
                progress = dataclasses.replace(progress, loss=sum(losses) / len(losses))
                losses.clear()
            reports.put(progress)
        return True

    def target() -> None:
        try:
            box["value"] = fn(callback)
        except BaseException as exc:  # relayed to the main thread
            box["error"] = exc
        finally:
            reports.put(_DONE)

    threads.start(target)
    stop_seen: float | None = None
    while True:
        try:
            item = reports.get(timeout=0.05)
        except queue.Empty:
            if stop.is_set():
                stop_seen = stop_seen if stop_seen is not None else time.monotonic()
                if time.monotonic() - stop_seen > grace:
                    return "cancelled", None
            continue
        if item is _DONE:
            break
        if not stop.is_set():
            yield item
    if stop.is_set() or isinstance(box.get("error"), Cancelled):
        return "cancelled", None
    if "error" in box:
        return "error", box["error"]
    return "ok", box["value"]


def _take_snapshot(progress: Progress, clock: SnapshotClock) -> Snapshot:
    """The snapshot ``progress`` offers (and the bicubic upscale with the first), timed."""
    t0 = time.perf_counter()
    take = progress.snapshot
    assert take is not None
    image = take()
    bicubic = take(network=False) if clock.taken == 0 else None
    seconds = time.perf_counter() - t0
    number = clock.record(seconds)
    return Snapshot(
        image, bicubic, progress.iteration, seconds, number, trained=progress.stage != "train"
    )


def run_jobs(
    jobs: list[Job], stop: threading.Event, threads: EngineThreads
) -> Generator[Message, None, None]:
    """Worker generator: run the jobs one after another through the pipeline."""
    from ..core.device import resolve_device
    from ..pipeline import run

    for i, job in enumerate(jobs):
        if stop.is_set():
            yield JobStopped(i)
            return
        yield JobStarted(i)
        try:
            device, reason = resolve_device(job.request.device)
        except Exception as exc:
            yield JobFailed(i, exc)
            return
        request = job.request
        if device.type == "cpu":  # a report (a chance to stop) every iteration costs nothing here
            request = request.replace(overrides={**request.overrides, "report_every": 1})
        yield DeviceChosen(i, str(device), reason)
        clock = job.snapshots
        work = _pump(
            lambda cb, r=request, a=job.psf_array: run(r, cb, psf_array=a),
            stop,
            threads,
            clock=clock,
        )
        try:
            while True:
                item = next(work)
                yield JobSnapshot(i, item) if isinstance(item, Snapshot) else JobProgress(i, item)
        except StopIteration as end:
            status, value = end.value
        if status == "cancelled":
            yield JobStopped(i)
            return
        if status == "error":
            yield JobFailed(i, value)
            return
        yield JobResult(i, value)
    yield AllDone()


# ------------------------------------------------------------------------------ small tasks


def describe_device(name: str) -> str:
    """Which device ``name`` resolves to and why (imports torch: call it in a worker)."""
    from ..core.device import resolve_device

    try:
        dev, reason = resolve_device(name)
    except (ValueError, TypeError) as exc:
        return f"{name}: unavailable ({exc})"
    return f"{dev} - {reason}"


_warmed = threading.Event()


def warm_up() -> None:
    """Load torch and the engine and run one tiny training step and forward pass on the CPU.

    The dock starts this in a background thread once it is on screen, so that the first
    Preview or Run of a session does not wait for it (importing torch and the engine alone
    takes about 2 s on a 2-core CPU). Once per process; any failure is left to the real run
    to report.
    """
    if _warmed.is_set():
        return
    _warmed.set()
    try:
        import numpy as np
        import torch

        from .. import pipeline  # noqa: F401
        from ..arrays import upscale as api  # noqa: F401  (the engine, resizing, kernels)
        from ..core.network import ZSSRNet, preferred_memory_format
        from ..core.noise import estimate_noise_std

        # the noise estimate every default run makes imports scipy.stats (0.9 s on a 2-core CPU)
        estimate_noise_std(np.random.default_rng(0).random((64, 64)))
        cpu = torch.device("cpu")
        net = ZSSRNet(1, width=8, depth=2).to(memory_format=preferred_memory_format(cpu))
        x = torch.rand(1, 1, 16, 16)
        (net(x) - x).abs().mean().backward()
        torch.optim.Adam(net.parameters()).step()
        with torch.inference_mode():
            net.eval()(x)
    except Exception:  # the run itself reports any real problem
        pass


@dataclass(frozen=True)
class Outcome:
    """What a small task gave: its ``value``, or the ``error`` it raised (an expected answer
    for a damaged file or an unusable setting, so it comes back as a value, not as a worker
    error that napari would report as a crash)."""

    value: Any = None
    error: BaseException | None = None


def _outcome(fn: Callable[..., Any], *args: Any) -> Outcome:
    try:
        return Outcome(value=fn(*args))
    except Exception as exc:  # a reader or a model can fail in many ways: the GUI says which
        return Outcome(error=exc)


def read_psf_file(spec: PSFFileSpec) -> Outcome:
    """A PSF file's array and (z, y, x) pixel size (the file's, or None); call it in a worker."""
    return _outcome(read_psf, PSFFileSpec(spec.path))


def preview_kernel(
    request: RunRequest,
    scale: tuple[float, float],
    plane: tuple[int, int],
    psf_array: tuple[Any, Any] | None,
) -> Outcome:
    """The kernel a run would use (computing a model PSF takes time: call it in a worker)."""
    return _outcome(kernel_for, request, scale, plane, psf_array)
