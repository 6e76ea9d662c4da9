"""Big stacks and many files: peak memory of a lazy run, and Dask throughput.

Two parts:

* ``stack``: a ``(DEPTH, SIZE, SIZE)`` uint16 zarr stack (default 200 x 2048 x 2048,
  synthetic smooth texture, written plane by plane) is super-resolved x2 from the zarr
  array itself (the intensity pass reads every plane, the shared network trains on 16)
  into an OME-Zarr store, with a tiny iteration budget, and stopped once ``--planes``
  planes are written (all of them with ``--planes DEPTH``); reports the peak resident
  memory of the process (``ru_maxrss``), the seconds before the first plane, per plane and
  extrapolated to all ``DEPTH`` planes, and reads the store back as OME-Zarr (shape,
  completion record, pixel size divided by the scale);
* ``dask``: a folder of ``--files`` small TIFFs (``--file-size`` square) is run with
  ``napari-zssr run "folder/*.tif" --workers N`` for each N of ``--workers``: wall seconds
  and files per second.

Run from the repository root (one torch thread per process keeps a shared machine usable)::

    OMP_NUM_THREADS=1 python benchmarks/big_data.py stack --planes 2 --threads 1
    OMP_NUM_THREADS=1 python benchmarks/big_data.py dask --workers 1,2,4
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def _peak_mb() -> float:
    """Peak resident memory of this process so far, MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _texture_plane(k: int, size: int) -> np.ndarray:
    """A smooth uint16 plane with detail at several scales (compressible, unlike noise)."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    v = (
        np.sin(2 * np.pi * (7 * x + 3 * y + 0.05 * k))
        + 0.5 * np.sin(2 * np.pi * (41 * x * y + 0.1 * k))
        + 0.25 * np.cos(2 * np.pi * (97 * y - 13 * x))
    )
    return (1000 + 400 * v).astype(np.uint16)


def make_stack(path: Path, depth: int, size: int) -> Any:
    """Write the input stack plane by plane (reused when it exists with that shape)."""
    import zarr

    if path.exists():
        z = zarr.open_array(str(path), mode="r")
        if z.shape == (depth, size, size):
            return z
    z = zarr.open_array(
        str(path), mode="w", shape=(depth, size, size), dtype="uint16", chunks=(1, size, size)
    )
    for k in range(depth):
        z[k] = _texture_plane(k, size)
    return zarr.open_array(str(path), mode="r")


def stack_part(opts: argparse.Namespace) -> dict[str, Any]:
    import torch
    import zarr

    from napari_zssr import Cancelled, super_resolve
    from napari_zssr.core.config import resolve_config
    from napari_zssr.io.zarr_store import open_ome_zarr

    torch.set_num_threads(opts.threads)
    work = Path(opts.workdir or tempfile.mkdtemp(prefix="zssr-big-"))
    src = make_stack(work / "input.zarr", opts.depth, opts.size)
    after_input = _peak_mb()
    cfg = resolve_config("fast", None).replace(
        max_iters=opts.max_iters,
        min_iters=opts.max_iters,
        self_ensemble=False,
        finetune_iters=opts.finetune,
    )
    out = work / "output.ome.zarr"
    marks: dict[str, float] = {}

    def stop_after(p: Any) -> bool:
        # shared mode: report plane 0 is the stack-wide training, plane k + 1 is plane k
        if p.plane >= 1 and "trained" not in marks:
            marks["trained"] = time.perf_counter()
        return p.plane <= opts.planes

    t0 = time.perf_counter()
    try:  # the whole stack is the input; the run stops once --planes planes are written
        super_resolve(
            src, 2, config=cfg, device="cpu", out=out, noise_std="auto", callback=stop_after
        )
    except Cancelled:
        pass
    end = time.perf_counter()
    arr, meta = open_ome_zarr(out)
    rec = arr.attrs["napari_zssr"]
    done = len(rec["planes_done"])
    group = zarr.open_group(str(out), mode="r")
    scale = group.attrs["ome"]["multiscales"][0]["datasets"][0]["coordinateTransformations"][0]
    train_s = marks.get("trained", end) - t0
    per_plane = (end - marks.get("trained", end)) / max(done, 1)
    return {
        "input": [opts.depth, opts.size, opts.size],
        "planes_written": done,
        "config": {
            "preset": "fast",
            "max_iters": opts.max_iters,
            "self_ensemble": False,
            "finetune_iters": opts.finetune,
        },
        "threads": opts.threads,
        "peak_rss_mb": round(_peak_mb(), 1),
        "peak_rss_mb_after_writing_input": round(after_input, 1),
        "seconds_before_first_plane": round(train_s, 1),
        "seconds_per_plane": round(per_plane, 1),
        "extrapolated_seconds_all_planes": round(train_s + per_plane * opts.depth),
        "output_shape": list(arr.shape),
        "output_complete_flag": bool(rec["complete"]),
        "first_plane_nonzero": bool(np.asarray(arr[0]).any()),
        "output_scale": scale["scale"],
        "output_axes": meta.axes,
        "workdir": str(work),
    }


def dask_part(opts: argparse.Namespace) -> dict[str, Any]:
    from napari_zssr.cli import main
    from napari_zssr.io import write_tiff

    work = Path(opts.workdir or tempfile.mkdtemp(prefix="zssr-dask-"))
    data = work / "data"
    data.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for k in range(opts.files):
        img = _texture_plane(k, opts.file_size) + rng.integers(0, 40, (opts.file_size,) * 2)
        write_tiff(data / f"f{k:03d}.tif", img.astype(np.uint16), axes="YX")
    rows = []
    for n in opts.workers:
        out = work / f"out{n}"
        args = [
            "run",
            str(data / "*.tif"),
            "-o",
            f"{out}/",
            "-s",
            "2",
            "--preset",
            "fast",
            "--max-iters",
            str(opts.max_iters),
            "--device",
            "cpu",
            "-q",
            "--workers",
            str(n),
        ]
        t0 = time.perf_counter()
        rc = main(args)
        seconds = time.perf_counter() - t0
        rows.append(
            {
                "workers": n,
                "rc": rc,
                "seconds": round(seconds, 1),
                "files_per_second": round(opts.files / seconds, 3),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return {
        "files": opts.files,
        "file_size": opts.file_size,
        "max_iters": opts.max_iters,
        "runs": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["stack", "dask"])
    parser.add_argument("--depth", type=int, default=200)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--planes", type=int, default=200, help="planes of the stack to process")
    parser.add_argument("--max-iters", type=int, default=20)
    parser.add_argument("--finetune", type=int, default=5, help="per-plane fine-tune iterations")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--file-size", type=int, default=96)
    parser.add_argument(
        "--workers", type=lambda s: [int(v) for v in s.split(",")], default=[1, 2, 4]
    )
    parser.add_argument("--workdir", help="folder for the data (default: a temporary one)")
    opts = parser.parse_args()
    result = stack_part(opts) if opts.part == "stack" else dask_part(opts)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
