"""What the output claim and the per-plane store checks cost, against a ``fast`` run.

Times (1) taking and releasing the claim of one output (:func:`napari_zssr.io.claim.claim_outputs`),
(2) the check that an OME-Zarr output store still exists, made before each plane is written
and each record update, and (3) one ``napari-zssr run --preset fast`` of a synthetic
3 x 256 x 256 uint16 stack to OME-Zarr, and prints the overhead (1 + 2 x 2 x planes) as a
share of (3).

Usage: ``OMP_NUM_THREADS=1 python benchmarks/fault_checks.py [FOLDER]`` (FOLDER: where the
files go, default a temporary folder).
"""

from __future__ import annotations

import tempfile
import time
import timeit
from pathlib import Path

import numpy as np


def main(folder: Path) -> None:
    import torch
    import zarr

    from napari_zssr.arrays.output import PlaneOutput
    from napari_zssr.arrays.planes import make_layout
    from napari_zssr.cli import main as cli
    from napari_zssr.io import write_tiff
    from napari_zssr.io.claim import claim_outputs

    torch.set_num_threads(1)
    planes = 3
    rng = np.random.default_rng(0)
    image = (rng.random((planes, 256, 256)) * 1000 + 20).astype(np.uint16)
    write_tiff(folder / "in.tif", image, axes="ZYX", pixel_size=(1.0, 0.2, 0.2))

    def claim() -> None:
        with claim_outputs([folder / "out.tif"]):
            pass

    n = 2000
    claim_s = timeit.timeit(claim, number=n) / n
    store = zarr.open_group(str(folder / "probe.zarr"), mode="w")
    arr = store.create_array("0", shape=(planes, 16, 16), dtype="uint16", chunks=(1, 16, 16))
    writer = PlaneOutput(arr, make_layout(arr.shape), fingerprint="0" * 20)
    check_s = timeit.timeit(writer._check_store, number=n) / n

    out = folder / "out.ome.zarr"
    t0 = time.perf_counter()
    argv = ["run", str(folder / "in.tif"), "-o", str(out), "-s", "2", "--preset", "fast"]
    code = cli([*argv, "--device", "cpu", "-q"])
    run_s = time.perf_counter() - t0
    assert code == 0
    overhead = claim_s + 2 * planes * check_s
    print(f"claim taken and released: {claim_s * 1e6:.1f} us")
    print(f"store check: {check_s * 1e6:.1f} us each, {2 * planes} in this run")
    print(f"fast run ({planes} x 256 x 256, x2, cpu, 1 thread): {run_s:.1f} s")
    print(f"overhead: {overhead * 1e6:.1f} us = {100 * overhead / run_s:.5f} % of the run")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "folder", nargs="?", type=Path, help="where the files go (default: a temporary folder)"
    )
    folder = parser.parse_args().folder
    if folder is not None:
        main(folder)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(Path(tmp))
