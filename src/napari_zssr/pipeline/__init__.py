"""The headless layer between the front ends and the engine (no Qt, no argparse).

A front end translates its input into a :class:`RunRequest` (plain data), :func:`run` does the
work, and the front end translates the :class:`RunResult` into a file or a layer::

    from napari_zssr.pipeline import OpticsSpec, RunRequest, run

    result = run(RunRequest(source=image, axes="ZYX", pixel_size=(0.3, 0.1, 0.1), scale=2,
                            psf=OpticsSpec(na=1.4, wavelength=0.52)))
    result.output, result.pixel_size, result.record

Every limit and error message of a run lives in :meth:`RunRequest.validate`; importing this
package does not import torch.
"""

from __future__ import annotations

from .kernel import kernel_for, psf_voxel, read_psf
from .layout import arrange, check_axes, default_axes, is_time_label
from .request import (
    MODALITIES,
    STACK_MODES,
    EstimateSpec,
    KernelSpec,
    OpticsSpec,
    PSFArraySpec,
    PSFFileSpec,
    PSFSpec,
    RequestError,
    RunPlan,
    RunRequest,
)
from .run import RunResult, describe_noise, read_source, run
from .trust import MAP_MEANINGS, describe_resolution, format_length, likely_harm

__all__ = [
    "MAP_MEANINGS",
    "MODALITIES",
    "STACK_MODES",
    "EstimateSpec",
    "KernelSpec",
    "OpticsSpec",
    "PSFArraySpec",
    "PSFFileSpec",
    "PSFSpec",
    "RequestError",
    "RunPlan",
    "RunRequest",
    "RunResult",
    "arrange",
    "check_axes",
    "default_axes",
    "describe_noise",
    "describe_resolution",
    "format_length",
    "is_time_label",
    "kernel_for",
    "likely_harm",
    "psf_voxel",
    "read_psf",
    "read_source",
    "run",
]
