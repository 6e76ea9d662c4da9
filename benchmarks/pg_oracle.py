"""Poisson-Gaussian sons with the simulation's true noise shape: is the fit what holds them back?

Runs ``benchmarks/microscopy.py`` (same arguments) with one change: for
``noise_model="poisson-gaussian"`` the shape of the noise on the sons, ``a * I + b``, is the
simulation's own instead of the one fitted to the image. In the engine's normalised units
``x = (counts - lo) / span`` the camera (Poisson photons, Gaussian read noise ``r`` electrons,
offset ``o`` counts) gives ``var(x) = x / span + (lo - o + r**2) / span**2``. As in the package,
the shape is then scaled so that its mean over the image is ``noise_std**2`` (only the shape
differs from the Gaussian ``auto``). Each case prints the true and the fitted ``a`` and ``b``.

Run from the repository root, e.g.::

    OMP_NUM_THREADS=1 python benchmarks/pg_oracle.py --methods zssr_psf_pg --section pgo \\
        --threads 1 --images 1,2,3,4 --out /tmp/pgA.md
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import microscopy as mic

import napari_zssr.arrays.degradation as api

_LAST: dict[str, float] = {}
_ADD_NOISE = mic.add_noise
_CAMERA_NOISE = api.camera_noise


def _add_noise(lr: np.ndarray, peak: float, read: float, rng: np.random.Generator) -> np.ndarray:
    _LAST["read"] = read  # the level being simulated, for the true shape below
    return _ADD_NOISE(lr, peak, read, rng)


def _true_camera_noise(profiles: Any, noise_std: float, model: str) -> dict[str, Any]:
    fitted = _CAMERA_NOISE(profiles, noise_std, model)
    arr, info = profiles.arr, profiles.info
    if model != "poisson-gaussian" or noise_std == 0:
        return fitted
    lo, span = float(info.offsets()[0]), float(info.spans()[0])
    a = 1.0 / span
    b = max(0.0, (lo - mic.CAMERA_OFFSET + _LAST["read"] ** 2) / span**2)
    x = (np.asarray(arr, dtype=np.float64) - lo) / span
    factor = noise_std**2 / (a * float(x.mean()) + b)
    print(
        f"    true a {a * factor:.3g} b {b * factor:.3g} | fitted a {fitted['noise_gain']:.3g} "
        f"b {fitted['noise_offset']:.3g}",
        flush=True,
    )
    return {"noise_model": model, "noise_gain": a * factor, "noise_offset": b * factor}


if __name__ == "__main__":
    mic.add_noise = _add_noise
    api.camera_noise = _true_camera_noise
    sys.exit(mic.main(sys.argv[1:]))
