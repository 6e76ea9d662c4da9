"""Where :func:`~napari_zssr.super_resolve` puts its output planes, and which are finished.

An in-memory NumPy output is filled through its ``(stack..., C, Y, X)`` view. Any other
target (a zarr array, a writable memmap) is written plane by plane; a target with
``attrs`` (zarr) also keeps a record of the run under the key ``"napari_zssr"``: the run's
fingerprint, the planes finished so far (flat stack indices) and, written last, a
``"complete"`` flag. A rerun of the same run (same fingerprint) skips the finished planes;
a different run starts the record afresh. No file is opened here.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

from .planes import write_plane

__all__ = [
    "RECORD_KEY",
    "PlaneOutput",
    "PlaneShard",
    "is_complete",
    "mark_value",
    "planes_finished",
    "prepare_output",
    "record_complete",
    "run_fingerprint",
]

RECORD_KEY = "napari_zssr"


def run_fingerprint(parts: dict[str, Any]) -> str:
    """A short hash of everything that decides a run's output (JSON-able ``parts``)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _record(target: Any) -> dict[str, Any]:
    attrs = getattr(target, "attrs", None)
    if attrs is None:
        return {}
    try:
        rec = attrs.get(RECORD_KEY)
    except Exception:  # a store without readable attributes has no record
        return {}
    return dict(rec) if isinstance(rec, dict) else {}


def is_complete(target: Any, fingerprint: str | None = None) -> bool:
    """Whether ``target`` holds a finished run (of ``fingerprint``, when given)."""
    rec = _record(target)
    if not rec.get("complete"):
        return False
    return fingerprint is None or rec.get("fingerprint") == fingerprint


class PlaneOutput:
    """The output of a run, written one ``(C, Y, X)`` plane at a time.

    Parameters
    ----------
    target : array-like
        A NumPy array, or a writable array-like (zarr array, memmap) of the output's shape
        and dtype.
    layout : napari_zssr.arrays.planes.Layout
        The output's layout (the input's with the output Y/X sizes).
    fingerprint : str, optional
        The run's :func:`run_fingerprint`; with it, a target with ``attrs`` keeps the record.

    Raises
    ------
    PermissionError
        If the target cannot be written (a read-only array or store); raised here, before
        any training.
    """

    def __init__(self, target: Any, layout: Any, fingerprint: str | None = None) -> None:
        self.target = target
        self.layout = layout
        in_memory = isinstance(target, np.ndarray) and not isinstance(target, np.memmap)
        self._canon = layout.canonical(target) if in_memory else None
        self._tracked = not in_memory and fingerprint is not None and hasattr(target, "attrs")
        self.fingerprint = fingerprint
        self._done: set[int] = set()
        self._shard = target if isinstance(target, PlaneShard) else None
        if self._shard is not None and fingerprint is not None:
            self._shard.bind(fingerprint)
        flags = getattr(target, "flags", None)
        if flags is not None and not flags.writeable:
            raise PermissionError("out is read-only; pass a writable array or store")
        if self._tracked:
            self._start()

    @property
    def shape(self) -> tuple[int, ...]:
        """``(stack..., C, Y, X)``."""
        lay = self.layout
        return (*lay.stack_shape, lay.channels, *lay.plane_shape)

    def _flat(self, idx: tuple[int, ...]) -> int:
        stack = self.layout.stack_shape
        return int(np.ravel_multi_index(idx, stack)) if stack else 0

    def _start(self) -> None:
        rec = _record(self.target)
        if rec.get("fingerprint") == self.fingerprint:
            self._done = {int(k) for k in rec.get("planes_done", [])}
        self._save(complete=is_complete(self.target, self.fingerprint))

    def _save(self, complete: bool) -> None:
        try:
            self._check_store()
        except OSError as exc:
            raise _write_failure(self.target, exc) from exc
        n_planes = self.layout.n_planes
        _write_record(self.target, self.fingerprint, sorted(self._done), n_planes, complete)

    def done(self, idx: tuple[int, ...]) -> bool:
        """Whether plane ``idx`` was finished by an earlier run of the same fingerprint (or,
        for a :class:`PlaneShard`, is not one of its planes)."""
        if self._shard is not None:
            return self._shard.done(self._flat(idx))
        return self._flat(idx) in self._done

    @property
    def all_done(self) -> bool:
        """Whether every plane is finished already."""
        if self._shard is not None:
            return self._shard.all_done
        return len(self._done) >= self.layout.n_planes

    def __setitem__(self, idx: tuple[int, ...], plane: np.ndarray) -> None:
        if self._canon is not None:
            self._canon[idx] = plane
            return
        try:
            self._check_store()
            write_plane(self.layout, self.target, idx, plane)
        except OSError as exc:
            raise _write_failure(self.target, exc, idx) from exc
        if self._shard is not None:  # marked after the data, as below
            self._shard.mark(self._flat(idx))
        elif self._tracked:  # recorded after the data: a recorded plane is always written
            self._done.add(self._flat(idx))
            self._save(complete=False)

    def _check_store(self) -> None:
        """Raise FileNotFoundError when the target's store folder was removed during the run
        (a zarr store would otherwise recreate bits of it, without its metadata)."""
        import os

        root = _store_root(self.target)
        marks = ("zarr.json", ".zgroup", ".zarray")
        if root is not None and not any(os.path.isfile(os.path.join(root, m)) for m in marks):
            raise FileNotFoundError(2, "the output store was removed during the run", root)

    #: The store path this run created (``out=`` a path that did not exist), else None.
    created_store: str | None = None

    def settle(self, exc: BaseException) -> None:
        """After a failed run: remove the store this run created if no plane was finished;
        else keep it and, for the package's own errors, say in the message how to resume."""
        if self._tracked and not self._done and self.created_store is not None:
            from ..io.zarr_store import remove_store

            remove_store(self.created_store)
            return
        from ..io.errors import RunFault

        try:
            self._check_store()
        except OSError:
            return  # the store is gone: nothing is kept
        if self._tracked and self._done and isinstance(exc, RunFault):
            exc.set_note(
                f"{len(self._done)} of {self.layout.n_planes} planes are finished and kept in "
                f"{_name(self.target)}; run again with the same out= to resume"
            )

    def finish(self) -> None:
        """Mark the run complete (last, after every plane)."""
        if self._tracked:
            self._save(complete=True)


def _write_record(
    target: Any, fingerprint: str | None, planes_done: list[int], n_planes: int, complete: bool
) -> None:
    rec = {
        "fingerprint": fingerprint,
        "planes_done": planes_done,
        "n_planes": int(n_planes),
        "complete": bool(complete),
    }
    try:
        target.attrs[RECORD_KEY] = rec
    except OSError as exc:  # a full disk, a folder made read-only or removed
        raise _write_failure(target, exc) from exc
    except Exception as exc:  # read-only stores raise various errors: one message
        raise PermissionError(f"cannot write the output store {_name(target)}: {exc}") from exc


def _write_failure(target: Any, exc: OSError, idx: Any = None) -> Exception:
    """One line for an OSError met writing into ``target``: its store, the plane, the cause
    in words and, for a full disk, the output's size."""
    from pathlib import Path

    from ..io.errors import WriteFailure, write_failure

    if isinstance(exc, WriteFailure):
        return exc
    name = _name(target)
    try:
        needed = int(np.prod(target.shape, dtype=np.int64)) * np.dtype(target.dtype).itemsize
    except (AttributeError, TypeError):
        needed = None
    path = Path(name)
    full = getattr(exc, "errno", None) in (28, 122)  # ENOSPC, EDQUOT
    return write_failure(path, exc, needed=needed, plane=idx, what="the output store", full=full)


def planes_finished(target: Any) -> int:
    """How many planes ``target``'s record says are finished (0 without a record)."""
    return len(_record(target).get("planes_done", []))


def record_complete(target: Any, fingerprint: str, n_planes: int) -> None:
    """Write the record of a finished run of ``fingerprint`` into ``target``'s attributes
    (what :meth:`PlaneOutput.finish` writes; for runs whose planes were written by others)."""
    _write_record(target, fingerprint, list(range(n_planes)), n_planes, True)


def mark_value(fingerprint: str) -> int:
    """The nonzero 64-bit number a :class:`PlaneShard` writes for a plane of ``fingerprint``."""
    return int(fingerprint[:16], 16) or 1


class PlaneShard:
    """Some planes of an output array, written by one of several concurrent writers.

    Passed as ``out`` to :func:`~napari_zssr.super_resolve`, it makes the run compute only
    ``planes`` (flat stack indices) and record each finished plane in ``marks``: a 1-D
    uint64 zarr array with one element per plane and one chunk per element, so that
    writers never share a file (the array's attributes are never written here). A plane is
    finished when its element holds :func:`mark_value` of the run's fingerprint; planes an
    earlier single-writer run recorded in the attributes count too.

    Parameters
    ----------
    array : zarr.Array
        The output array (its planes in chunks of their own).
    marks : zarr.Array
        ``(n_planes,)`` uint64, one chunk per element, 0 where nothing is finished.
    planes : iterable of int
        The planes this writer computes.
    """

    def __init__(self, array: Any, marks: Any, planes: Any) -> None:
        self.array, self.marks = array, marks
        self.planes = frozenset(int(p) for p in planes)
        self.shape, self.dtype = tuple(array.shape), array.dtype
        self.n_planes = int(marks.shape[0])
        self.fingerprint: str | None = None
        self._value = 0
        self._done: set[int] = set()

    def __setitem__(self, key: Any, value: Any) -> None:
        self.array[key] = value

    def __getitem__(self, key: Any) -> Any:
        return self.array[key]

    def bind(self, fingerprint: str) -> None:
        """Learn the run's fingerprint: which planes are finished or not ours."""
        self.fingerprint, self._value = fingerprint, mark_value(fingerprint)
        marks = np.asarray(self.marks[:])
        done = {int(i) for i in np.flatnonzero(marks == np.uint64(self._value))}
        rec = _record(self.array)
        if rec.get("fingerprint") == fingerprint:
            done |= {int(k) for k in rec.get("planes_done", [])}
        self._done = done | (set(range(self.n_planes)) - self.planes)

    def done(self, flat: int) -> bool:
        """Whether plane ``flat`` needs no work here."""
        return flat in self._done

    @property
    def all_done(self) -> bool:
        """Whether no plane needs work here."""
        return len(self._done) >= self.n_planes

    def mark(self, flat: int) -> None:
        """Record plane ``flat`` as finished (after its data was written)."""
        self.marks[flat] = np.uint64(self._value)
        self._done.add(flat)


def _store_root(target: Any) -> str | None:
    """The folder of a local zarr store (None for other targets)."""
    target = getattr(target, "array", target)
    root = getattr(getattr(target, "store", None), "root", None)
    return None if root is None else str(root)


def _name(target: Any) -> str:
    target = getattr(target, "array", target)  # a PlaneShard: its array's store
    store = getattr(target, "store", None)
    root = getattr(store, "root", None)
    return str(root) if root is not None else type(target).__name__


def _fingerprint_parts(arr: Any, layout: Any, sc: tuple, parts: tuple) -> dict[str, Any]:
    """What decides the output: the input (shape, dtype, range, first and last planes) and
    every parameter of the run."""
    version, cfg, seed, stack_mode, dk, info, saved = parts
    stack = list(np.ndindex(*layout.stack_shape))
    digest = hashlib.sha256()
    for idx in {stack[0], stack[-1]}:
        digest.update(np.ascontiguousarray(layout.plane(arr, idx)).tobytes())
    network = None  # a saved network applied instead of training: its weights decide too
    if saved is not None and getattr(saved, "model", None) is not None:
        net = hashlib.sha256()
        for name in sorted(saved.model.weights):
            net.update(name.encode() + np.ascontiguousarray(saved.model.weights[name]).tobytes())
        network = [net.hexdigest(), int(saved.finetune)]
    return {
        "version": version,
        "input_shape": list(arr.shape),
        "dtype": str(np.dtype(arr.dtype)),
        "input_digest": digest.hexdigest(),
        "scale": list(sc),
        "config": cfg.to_dict(),
        "seed": int(seed),
        "stack_mode": stack_mode,
        "kernel": None if dk is None else np.asarray(dk.weights).tolist(),
        "intensity": info.to_dict(),
        "saved_network": network,
    }


def _default_axes(layout: Any) -> str:
    """OME-NGFF axis letters for an output laid out as ``layout`` (T, Z, then C, Y, X)."""
    n_stack = len(layout.stack_axes)
    if layout.rgb or n_stack > 2:
        raise ValueError(
            "out: an OME-Zarr store holds at most T, C, Z, Y, X and no RGB last axis; "
            "pass a zarr array of the output's shape instead"
        )
    letters = ["Y", "X"]
    stack_letters = iter("TZ"[2 - n_stack :])
    axes = []
    for a in range(len(layout.shape)):
        if a == layout.channel_axis:
            axes.append("C")
        elif a in layout.stack_axes:
            axes.append(next(stack_letters))
        else:
            axes.append(letters.pop(0))
    return "".join(axes)


def prepare_output(
    out: Any,
    arr: Any,
    layout: Any,
    out_yx: tuple[int, int],
    sc: tuple[float, float],
    maps: bool,
    parts: tuple,
) -> PlaneOutput:
    """The :class:`PlaneOutput` of ``super_resolve(..., out=out)``, checked before training.

    ``parts`` is ``(version, config, seed, stack_mode, kernel, intensity info, saved run)``
    (the last: a :class:`napari_zssr.arrays.networks.SavedRun` or None).

    Raises
    ------
    ValueError
        ``out`` of the wrong shape or dtype, or with ``maps=True``.
    PermissionError
        A target that cannot be written.
    """
    import dataclasses
    import os

    out_layout = dataclasses.replace(layout, shape=layout.output_shape(out_yx))
    shape, dtype = out_layout.shape, np.dtype(arr.dtype)
    if out is None:
        return PlaneOutput(np.empty(shape, dtype=dtype), out_layout)
    if maps:
        raise ValueError("out cannot be combined with maps=True: the maps are kept in memory")
    created = None
    if isinstance(out, (str, os.PathLike)):
        from ..io.zarr_store import output_store

        created = None if os.path.exists(out) else os.fspath(out)
        # sizes in input pixels: the output's pixel is 1 / scale of the input's
        out = output_store(
            out,
            shape=shape,
            dtype=dtype,
            axes=_default_axes(layout),
            pixel_size=(None, 1.0, 1.0),
            scale=sc,
            unit=None,
        )
    if not all(hasattr(out, name) for name in ("shape", "dtype", "__setitem__")):
        raise TypeError(f"out must be a writable array or a path, got {type(out).__name__}")
    if tuple(out.shape) != tuple(shape) or np.dtype(out.dtype) != dtype:
        raise ValueError(
            f"out must have the output's shape {tuple(shape)} and dtype {dtype}, got "
            f"{tuple(out.shape)} {np.dtype(out.dtype)}"
        )
    writer = PlaneOutput(
        out, out_layout, run_fingerprint(_fingerprint_parts(arr, layout, sc, parts))
    )
    writer.created_store = created
    return writer
