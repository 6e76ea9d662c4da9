"""Output hashes of a fixed set of small CPU runs: proof that a change is behaviour-preserving.

Every case runs napari-zssr through its public face only (``from napari_zssr import ...`` and
``python -m napari_zssr.cli``), on small synthetic images, with fixed seeds, a few training
iterations, one torch thread and ``device="cpu"``, and records the SHA-256 of each output's
bytes (and of each run-information dictionary and of the CLI's TIFF metadata, as canonical
JSON without the fields that change from one run to the next). The same code gives the same
table; a refactoring that changes any output, map, kernel, recorded parameter or metadata
field changes a hash.

Cases: one 2-D uint16 plane (x2, Gaussian and Poisson-Gaussian noise on the sons), a stack
in shared mode, per-plane mode with ``batch_planes`` 1 and 2, x4 through the ``paper-gradual``
steps and through the ``(2, 4)`` steps, a saved network (train, save, load, apply with
fine-tuning), ``isotropic_z``, ``kernel="estimate"``, ``maps=True``, a zarr array on disk
into an OME-Zarr ``out=`` store, channels and RGB, ``super_resolve_many``, and the command
line (TIFF output: pixels and metadata; ``--psf estimate --maps``; OME-Zarr output; ``train``
then ``run --model --finetune``).

Usage::

    PYTHONPATH=$PWD/src python benchmarks/output_hashes.py --json before.json
    # ... change the code ...
    PYTHONPATH=$PWD/src python benchmarks/output_hashes.py --compare before.json

``--compare OLD.json`` prints every case whose hash, shape or dtype differs from OLD.json
(or that is missing on either side) and exits with status 1 when there is any; ``--json``
and ``--compare`` can be given together. ``--only SUBSTRING`` runs the matching cases only.
40 to 90 s on a 2-core CPU shared with other work (about 30 s of CPU time).

Compare runs made with the same ``--threads``, torch and NumPy versions and CPU kind: float
rounding in the convolutions depends on them, so a different environment can change hashes
without any change of the code. Within one environment every hash is reproducible from one
process to the next (checked by running the script twice).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

#: Keys of run-information dictionaries and metadata records whose values are measured
#: durations (wall-clock seconds of the run, of the kernel estimate, of the quality maps, per
#: image of ``super_resolve_many``, of a saved network's training: the last is also why a
#: ``.zssr`` file is hashed as read back, not byte for byte): they differ at every run (found
#: by running this script twice and comparing ``--dump`` folders), so they are removed before
#: hashing. The only other run-dependent value is the path of the case's temporary folder (a
#: saved network's ``source``), replaced by ``<tmp>``; the command line runs in that folder
#: with relative paths, so its recorded command and file names hold none. Nothing else is
#: removed.
VOLATILE_KEYS = frozenset({"seconds", "maps_seconds", "seconds_per_image"})

#: The temporary folder of the running case (see ``VOLATILE_KEYS``).
_TMP: list[str] = []

Row = dict[str, Any]


# --- hashing ----------------------------------------------------------------------------------


def array_row(name: str, arr: Any) -> Row:
    """A table row for an array: shape, dtype and the SHA-256 of its C-order bytes."""
    a = np.ascontiguousarray(np.asarray(arr))
    return {
        "name": name,
        "shape": list(a.shape),
        "dtype": str(a.dtype),
        "sha256": hashlib.sha256(a.tobytes()).hexdigest(),
    }


def _canonical(obj: Any) -> Any:
    """``obj`` as plain JSON values: arrays by their shape, dtype and hash; volatile keys
    dropped; tuples as lists; numpy scalars as Python numbers."""
    if isinstance(obj, dict):
        return {str(k): _canonical(v) for k, v in obj.items() if k not in VOLATILE_KEYS}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if isinstance(obj, np.ndarray):
        row = array_row("", obj)
        return {"array": row["sha256"], "shape": row["shape"], "dtype": row["dtype"]}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, str):
        for tmp in _TMP:
            obj = obj.replace(tmp, "<tmp>")
        return obj
    if obj is None or isinstance(obj, (bool, int, float)):
        return obj
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"cannot hash a {type(obj).__name__} in run information")


#: With ``--dump DIR``: the folder that receives the canonical JSON of every hashed dictionary.
_DUMP: Path | None = None


def json_row(name: str, obj: Any) -> Row:
    """A table row for a dictionary: the SHA-256 of its canonical JSON (sorted keys)."""
    text = json.dumps(_canonical(obj), sort_keys=True, allow_nan=True)
    if _DUMP is not None:  # to see what differs between two runs
        (_DUMP / f"{name}.json").write_text(json.dumps(json.loads(text), indent=1) + "\n")
    return {
        "name": name,
        "shape": [],
        "dtype": "json",
        "sha256": hashlib.sha256(text.encode()).hexdigest(),
    }


def model_row(name: str, model: Any) -> Row:
    """A table row for a :class:`~napari_zssr.ZSSRModel`: its documented attributes (weights,
    configuration, factor, kernel, intensity handling, noise, version, training facts without
    their duration) and its one-line description, as canonical JSON."""
    names = ("weights", "scale", "kernel", "channels", "intensity", "noise_std", "version")
    doc = {k: getattr(model, k) for k in (*names, "training")}
    doc.update(config=model.config.to_dict(), describe=model.describe())
    return json_row(name, doc)


# --- synthetic images -------------------------------------------------------------------------


def synthetic(shape: tuple[int, ...], seed: int, hi: float = 4000.0) -> np.ndarray:
    """Smooth blobs and stripes plus noise, in [0, hi] (float64): a stand-in for a
    fluorescence image with structure at several scales. Leading axes vary slowly."""
    rng = np.random.default_rng(seed)
    grids = np.indices(shape, dtype=np.float64)
    y, x = grids[-2], grids[-1]
    img = 0.4 * (1 + np.sin(0.45 * x + 0.2 * y + 0.3 * sum(grids[:-2], np.zeros(shape))))
    for _ in range(6):
        cy, cx = rng.uniform(0, shape[-2]), rng.uniform(0, shape[-1])
        r = rng.uniform(2.0, 6.0)
        img += rng.uniform(0.5, 1.5) * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * r * r))
    img += 0.05 * rng.standard_normal(shape)
    img = (img - img.min()) / (img.max() - img.min())
    return img * hi


def blurred_texture(n: int, seed: int, sigma: float = 1.4) -> np.ndarray:
    """A random texture blurred by a Gaussian of ``sigma`` pixels on a ``2n`` grid and
    decimated by 2: an image whose kernel the blind estimate can find. float32 in [0, 1]."""
    rng = np.random.default_rng(seed)
    hr = rng.random((2 * n, 2 * n)) ** 3
    f = np.fft.fftfreq(2 * n)
    transfer = np.exp(-2 * (np.pi * sigma) ** 2 * (f[:, None] ** 2 + f[None, :] ** 2))
    low = np.real(np.fft.ifft2(np.fft.fft2(hr) * transfer))[::2, ::2]
    low = (low - low.min()) / (low.max() - low.min())
    return low.astype(np.float32)


def gaussian_kernel(size: int, sigma: float) -> np.ndarray:
    """A normalised 2-D Gaussian of ``size`` x ``size`` taps."""
    r = np.arange(size) - (size - 1) / 2
    k = np.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma * sigma))
    return k / k.sum()


# --- the cases --------------------------------------------------------------------------------


def small_config() -> Any:
    """A tiny configuration: a few iterations, the learning-rate policy able to act."""
    from napari_zssr import ZSSRConfig

    return ZSSRConfig(
        depth=4,
        width=16,
        max_iters=16,
        min_iters=4,
        crop_size=24,
        eval_every=3,
        lr_check_every=6,
        lr_slope_window=6,
        lr_fit_points=3,
        back_projection_iters=2,
        self_ensemble=True,
        report_every=4,
    )


def sr(image: Any, scale: Any, **kw: Any) -> tuple[Any, dict[str, Any]]:
    """``super_resolve`` on the CPU with the tiny configuration and run information."""
    from napari_zssr import super_resolve

    kw.setdefault("config", small_config())
    kw.setdefault("device", "cpu")
    kw.setdefault("seed", 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the warnings are part of the info: hashed there
        return super_resolve(image, scale, return_info=True, **kw)


def case_plane(_tmp: Path) -> list[Row]:
    img = synthetic((40, 44), seed=1).astype(np.uint16)
    out, info = sr(img, 2)
    rows = [array_row("plane_x2", out), json_row("plane_x2.info", info)]
    out, info = sr(img, 2, noise_model="poisson-gaussian", seed=5)
    return [*rows, array_row("plane_x2_pg", out), json_row("plane_x2_pg.info", info)]


def _stack() -> np.ndarray:
    return synthetic((3, 32, 36), seed=2).astype(np.float32)


def case_shared(_tmp: Path) -> list[Row]:
    cfg = small_config().replace(finetune_iters=3)
    out, info = sr(_stack(), 2, config=cfg, noise_std=0.0, seed=1)
    return [array_row("stack_shared", out), json_row("stack_shared.info", info)]


def case_per_plane(_tmp: Path) -> list[Row]:
    rows = []
    for batch in (1, 2):
        out, info = sr(
            _stack(), 2, stack_mode="per_plane", batch_planes=batch, noise_std=0.02, seed=2
        )
        rows += [array_row(f"per_plane_b{batch}", out), json_row(f"per_plane_b{batch}.info", info)]
    return rows


def case_gradual(_tmp: Path) -> list[Row]:
    from napari_zssr import PRESETS

    img = synthetic((20, 22), seed=3).astype(np.uint16)
    small = {"max_iters": 6, "min_iters": 6, "crop_size": 16, "width": 8, "depth": 4}
    cfg = PRESETS["paper-gradual"].replace(**small)
    out, info = sr(img, 4, preset="paper-gradual", config=cfg)
    rows = [array_row("x4_paper_gradual", out), json_row("x4_paper_gradual.info", info)]
    cfg = small_config().replace(gradual_scales=(2.0, 4.0))
    out, info = sr(img, 4, config=cfg, noise_std=0.0, seed=3)
    return [*rows, array_row("x4_steps_2_4", out), json_row("x4_steps_2_4.info", info)]


def case_saved(tmp: Path) -> list[Row]:
    from napari_zssr import load_model, save_model, train_model

    img = synthetic((36, 36), seed=4).astype(np.uint16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = train_model(
            img, 2, config=small_config(), kernel=gaussian_kernel(7, 1.2), device="cpu", seed=4
        )
    path = save_model(net, tmp / "net.zssr")
    # the network as read back, not the file's bytes: its header records training.seconds
    loaded = load_model(path)
    rows = [model_row("saved.model", loaded)]
    other = synthetic((2, 30, 34), seed=5).astype(np.uint16)
    out, info = sr(other, 2, model=loaded, finetune=4, seed=6)
    rows += [array_row("saved_finetune", out), json_row("saved_finetune.info", info)]
    out, info = sr(other, 2, model=path, seed=6)
    return [*rows, array_row("saved_as_is", out), json_row("saved_as_is.info", info)]


def case_isotropic(_tmp: Path) -> list[Row]:
    from napari_zssr import isotropic_z

    vol = synthetic((6, 28, 30), seed=6).astype(np.uint16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out, info = isotropic_z(
            vol, 2.5, axial_fwhm=1.5, config=small_config(), device="cpu", seed=7, return_info=True
        )
    return [array_row("isotropic_z", out), json_row("isotropic_z.info", info)]


def case_estimate(_tmp: Path) -> list[Row]:
    out, info = sr(blurred_texture(64, seed=7), 2, kernel="estimate", seed=8)
    return [array_row("kernel_estimate", out), json_row("kernel_estimate.info", info)]


def case_maps(_tmp: Path) -> list[Row]:
    img = synthetic((32, 34), seed=8).astype(np.float32)
    out, info = sr(img, 2, maps=True, noise_std=0.01, seed=9)
    rows = [array_row("maps", out)]
    rows += [array_row(f"maps.{k}", v) for k, v in sorted(info["maps"].items())]
    return [*rows, json_row("maps.info", info)]


def case_zarr(tmp: Path) -> list[Row]:
    import zarr

    data = synthetic((3, 30, 32), seed=9).astype(np.uint16)
    src = zarr.open_array(tmp / "in.zarr", mode="w", shape=data.shape, chunks=(1, 30, 32),
                          dtype=data.dtype)  # fmt: skip
    src[...] = data
    lazy = zarr.open_array(tmp / "in.zarr", mode="r")
    target, info = sr(lazy, 2, out=str(tmp / "out.zarr"), stack_mode="per_plane", seed=10)
    rows = [array_row("zarr_out", target[...]), json_row("zarr_out.info", info)]
    group = zarr.open_group(tmp / "out.zarr", mode="r")
    rows.append(json_row("zarr_out.group_attrs", dict(group.attrs)))
    return [*rows, json_row("zarr_out.array_attrs", dict(target.attrs))]


def case_channels(_tmp: Path) -> list[Row]:
    two = synthetic((2, 28, 30), seed=10).astype(np.float32)
    out, info = sr(two, 2, channel_axis=0, seed=11)
    rows = [array_row("channels", out), json_row("channels.info", info)]
    rgb = (synthetic((26, 28, 3), seed=11, hi=255.0)).astype(np.uint8)
    out, info = sr(rgb, 1.5, rgb=True, noise_std=0.0, seed=12)
    return [*rows, array_row("rgb_x1.5", out), json_row("rgb_x1.5.info", info)]


def case_many(_tmp: Path) -> list[Row]:
    from napari_zssr import super_resolve_many

    images = [synthetic((24, 26), seed=12).astype(np.uint16), synthetic((2, 24, 26), seed=13)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        outs, infos = super_resolve_many(
            images, 2, config=small_config(), device="cpu", seed=13, batch_size=2,
            return_info=True,
        )  # fmt: skip
    rows = []
    for i, (out, info) in enumerate(zip(outs, infos)):
        rows += [array_row(f"many[{i}]", out), json_row(f"many[{i}].info", info)]
    return rows


# --- the command line -------------------------------------------------------------------------

#: TIFF tags left out of the metadata hash: the byte offsets and counts of the strips and of
#: the ImageJ metadata block move when the length of the recorded run time changes.
LAYOUT_TAGS = frozenset({"StripOffsets", "TileOffsets", "IJMetadataByteCounts"})


def _decode(value: Any) -> Any:
    """A tag value as JSON: a JSON text parsed (the run record), bytes as hex."""
    if isinstance(value, dict):
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if isinstance(value, str) and value.lstrip().startswith("{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    if hasattr(value, "name") and hasattr(value, "value"):  # enum
        return int(value.value)
    return value


def tiff_rows(name: str, path: Path) -> list[Row]:
    """Rows for a TIFF written by the command line: its pixels, and the tags of its first
    page (run record, ImageJ / OME description, resolution) without the layout tags."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        pixels = tif.asarray()
        tags = {
            t.name: _decode(t.value)
            for t in tif.pages[0].tags.values()
            if t.name not in LAYOUT_TAGS
        }
        tags["n_pages"] = len(tif.pages)
    return [array_row(name, pixels), json_row(f"{name}.tiff_tags", tags)]


def cli(tmp: Path, *args: str) -> None:
    """Run ``python -m napari_zssr.cli`` in ``tmp`` (relative paths: none of the temporary
    folder's absolute path reaches the recorded command line), one thread, this environment."""
    env = dict(os.environ)
    threads = str(_THREADS)
    env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, PYTHONWARNINGS="ignore")
    cmd = [sys.executable, "-m", "napari_zssr.cli", *args, "--device", "cpu", "-q"]
    res = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stderr[-3000:]}")


def _write_stack(path: Path, data: np.ndarray) -> None:
    import tifffile

    meta = {"axes": "ZYX", "spacing": 0.3, "unit": "um"}
    tifffile.imwrite(path, data, imagej=True, resolution=(10.0, 10.0), metadata=meta)


def case_cli_tiff(tmp: Path) -> list[Row]:
    _write_stack(tmp / "in.tif", synthetic((3, 30, 34), seed=14).astype(np.uint16))
    cli(tmp, "run", "in.tif", "-o", "out.tif", "-s", "2", "--preset", "fast",
        "--max-iters", "6", "--seed", "0")  # fmt: skip
    return tiff_rows("cli_tiff", tmp / "out.tif")


def case_cli_maps(tmp: Path) -> list[Row]:
    import tifffile

    tifffile.imwrite(tmp / "in.tif", (blurred_texture(56, seed=15) * 1000).astype(np.uint16))
    cli(tmp, "run", "in.tif", "-o", "out.tif", "-s", "2", "--preset", "fast", "--max-iters",
        "6", "--seed", "1", "--psf", "estimate", "--maps", "--noise-std", "0.01")  # fmt: skip
    rows = tiff_rows("cli_maps", tmp / "out.tif")
    for kind in ("spread", "consistency", "added"):
        rows += tiff_rows(f"cli_maps.{kind}", tmp / f"out_{kind}.tif")
    return rows


def case_cli_zarr(tmp: Path) -> list[Row]:
    import zarr

    _write_stack(tmp / "in.tif", synthetic((3, 26, 28), seed=16).astype(np.uint16))
    cli(tmp, "run", "in.tif", "-o", "out.zarr", "-s", "1.5", "--preset", "fast", "--max-iters",
        "4", "--seed", "2", "--stack-mode", "per_plane", "--batch-planes", "2")  # fmt: skip
    group = zarr.open_group(tmp / "out.zarr", mode="r")
    arrays = sorted(group.array_keys())
    rows = [array_row(f"cli_zarr[{k}]", group[k][...]) for k in arrays]
    rows += [json_row(f"cli_zarr[{k}].attrs", dict(group[k].attrs)) for k in arrays]
    return [*rows, json_row("cli_zarr.group_attrs", dict(group.attrs))]


def case_cli_model(tmp: Path) -> list[Row]:
    from napari_zssr import load_model

    _write_stack(tmp / "a.tif", synthetic((2, 30, 32), seed=17).astype(np.uint16))
    _write_stack(tmp / "b.tif", synthetic((2, 30, 32), seed=18).astype(np.uint16))
    cli(tmp, "train", "a.tif", "-o", "net.zssr", "-s", "2", "--preset", "fast",
        "--max-iters", "4", "--seed", "3")  # fmt: skip
    cli(tmp, "run", "b.tif", "-o", "b_out.tif", "-s", "2", "--model", "net.zssr",
        "--finetune", "2", "--seed", "4")  # fmt: skip
    # not the file's bytes: its header records the training's duration (training.seconds)
    net = model_row("cli_model.net", load_model(tmp / "net.zssr"))
    return [net, *tiff_rows("cli_model", tmp / "b_out.tif")]


CASES: dict[str, Callable[[Path], list[Row]]] = {
    "plane": case_plane,
    "shared": case_shared,
    "per_plane": case_per_plane,
    "gradual": case_gradual,
    "saved": case_saved,
    "isotropic": case_isotropic,
    "estimate": case_estimate,
    "maps": case_maps,
    "zarr": case_zarr,
    "channels": case_channels,
    "many": case_many,
    "cli_tiff": case_cli_tiff,
    "cli_maps": case_cli_maps,
    "cli_zarr": case_cli_zarr,
    "cli_model": case_cli_model,
}

_THREADS = 1


# --- running and comparing --------------------------------------------------------------------


def run_cases(only: str | None) -> tuple[list[Row], dict[str, float]]:
    """Run the cases (those whose name contains ``only``); rows and seconds per case."""
    rows: list[Row] = []
    seconds: dict[str, float] = {}
    for name, case in CASES.items():
        if only and only not in name:
            continue
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="zssr-hash-") as tmp:
            _TMP[:] = sorted({tmp, str(Path(tmp).resolve())}, key=len, reverse=True)
            rows += [{**row, "case": name} for row in case(Path(tmp))]
        seconds[name] = time.perf_counter() - t0
        print(f"  {name}: {seconds[name]:.1f} s", file=sys.stderr, flush=True)
    return rows, seconds


def print_table(rows: list[Row]) -> None:
    width = max(len(r["name"]) for r in rows)
    print(f"{'name':<{width}} | {'shape':<16} | {'dtype':<7} | sha256[:16]")
    print(f"{'-' * width}-+-{'-' * 16}-+-{'-' * 7}-+-{'-' * 16}")
    for r in rows:
        shape = "x".join(map(str, r["shape"])) or "-"
        print(f"{r['name']:<{width}} | {shape:<16} | {r['dtype']:<7} | {r['sha256'][:16]}")


def compare(rows: list[Row], path: Path, only: str | None = None) -> int:
    """Print the rows that differ from the JSON file at ``path`` (those of the cases whose
    name contains ``only``); their number."""
    old = {
        r["name"]: r
        for r in json.loads(path.read_text())["rows"]
        if not only or only in r.get("case", only)
    }
    new = {r["name"]: r for r in rows}
    bad = 0
    for name in sorted(old.keys() | new.keys()):
        a, b = old.get(name), new.get(name)
        if a is None or b is None:
            print(f"DIFF {name}: only in {'this run' if a is None else path}")
            bad += 1
            continue
        diffs = [k for k in ("shape", "dtype", "sha256") if a[k] != b[k]]
        if diffs:
            bad += 1
            what = ", ".join(f"{k} {a[k] if k != 'sha256' else a[k][:16]} -> "
                             f"{b[k] if k != 'sha256' else b[k][:16]}" for k in diffs)  # fmt: skip
            print(f"DIFF {name}: {what}")
    print(f"{len(new)} rows here, {len(old)} in {path}: {bad} differ" if bad else
          f"all {len(new)} rows identical to {path}")  # fmt: skip
    return bad


def main(argv: list[str] | None = None) -> int:
    global _THREADS, _DUMP
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write the rows to this JSON file")
    parser.add_argument("--compare", type=Path, help="JSON of an earlier run to compare with")
    parser.add_argument("--only", help="run only the cases whose name contains this")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument(
        "--dump", type=Path, help="write the canonical JSON of each hashed dictionary here"
    )
    args = parser.parse_args(argv)
    _THREADS, _DUMP = args.threads, args.dump
    if _DUMP is not None:
        _DUMP.mkdir(parents=True, exist_ok=True)
    import torch

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    rows, seconds = run_cases(args.only)
    total = time.perf_counter() - t0
    print_table(rows)
    print(f"{len(rows)} rows, {total:.1f} s ({args.threads} torch thread(s))")
    if args.json is not None:
        doc = {"rows": rows, "seconds": seconds, "total_seconds": total,
               "threads": args.threads, "torch": torch.__version__,
               "numpy": np.__version__, "python": sys.version.split()[0]}  # fmt: skip
        args.json.write_text(json.dumps(doc, indent=1) + "\n")
    if args.compare is not None:
        return 1 if compare(rows, args.compare, args.only) else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
