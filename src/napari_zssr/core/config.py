"""One configuration object for every parameter of ZSSR, and the named presets.

This module imports no torch, so the widget and the command line can build a
configuration without paying torch's import time.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import numbers
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "GRADUAL_SCALES",
    "INIT_CHOICES",
    "MAX_FATHER_PLANES",
    "MAX_NOISE_STD",
    "MAX_SCALE",
    "NOISE_FREE_PRESETS",
    "NOISE_MODELS",
    "PRESETS",
    "REFERENCE_GRADUAL_X2",
    "ZSSRConfig",
    "default_noise_std",
    "father_planes",
    "resolve_config",
]

#: Largest Gaussian noise on LR sons (``noise_std``), in units of the normalised [0, 1] range.
MAX_NOISE_STD = 0.5
#: Models of the noise added to the LR sons (``ZSSRConfig.noise_model``).
NOISE_MODELS = ("gaussian", "poisson-gaussian")

#: Starts of a new network's weights (``ZSSRConfig.init``).
INIT_CHOICES = ("scratch", "bundled")

#: Largest scale factor on any axis (upscaling, the PSF kernels, Z to isotropic).
MAX_SCALE = 16.0

#: Intermediate factors of the `fast` and `balanced` presets: a factor above 2 is reached
#: through x2 (and x4) first. Set5 x4 (docs/benchmarks.md): one jump 29.15 dB, through x2
#: 30.70 dB (``paper`` settings, H200); 29.36 vs 30.61 dB (``fast``, 2-core CPU, 27 vs 49 s
#: per image). A factor of 2 or less is one jump, as in the reference.
GRADUAL_SCALES: tuple[float, ...] = (2.0, 4.0)


MAX_FATHER_PLANES = 16
"""Most planes of a stack that one network trains on (spread evenly over the stack)."""


def father_planes(n: int, most: int = MAX_FATHER_PLANES) -> list[int]:
    """Indices of up to ``most`` of ``n`` planes, spread evenly (all of them when ``n <= most``).

    Parameters
    ----------
    n : int
        Number of planes.
    most : int
        Largest number of indices returned.

    Returns
    -------
    list of int
        Sorted, distinct, first and last plane included.
    """
    if n <= most:
        return list(range(n))
    return sorted({round(v) for v in np.linspace(0, n - 1, most)})


@dataclass(frozen=True)
class ZSSRConfig:
    """Every parameter of zero-shot super-resolution.

    The defaults are the reference's "one jump" configuration of the paper
    (Shocher et al., CVPR 2018): the ``paper`` preset.
    """

    # --- network -------------------------------------------------------------
    depth: int = 8
    """Number of 3x3 convolution layers."""
    width: int = 64
    """Feature channels of the hidden layers."""
    init: str = "scratch"
    """Where a new network's weights start: ``"scratch"`` (random, N(0, 0.1 / (9 * c_in)) as
    in the reference) or ``"bundled"`` (the initialisation shipped with the package, learned
    on synthetic microscopy-like scenes: :mod:`napari_zssr.core.init_weights`; it needs the
    bundled network's width and depth). A saved network keeps its own weights either way."""

    # --- optimisation ----------------------------------------------------------
    max_iters: int = 3000
    """Hard cap on training iterations per scale step."""
    min_iters: int = 256
    """No learning-rate drop can happen before this many iterations."""
    crop_size: int = 128
    """Side of the square HR-father crop of each iteration (one crop per batch)."""
    batch_size: int = 1
    """Father crops per iteration."""
    learning_rate: float = 1e-3
    """Initial Adam learning rate."""
    lr_decay: float = 10.0
    """Factor by which the learning rate is divided when the loss stops falling."""
    min_learning_rate: float = 9e-6
    """Training stops once the learning rate falls below this value."""
    eval_every: int = 50
    """Iterations between reconstruction-error measurements on the input itself."""
    lr_check_every: int = 60
    """Iterations between learning-rate policy checks."""
    lr_slope_window: int = 256
    """Iterations that must pass after a learning-rate change before the next one."""
    lr_fit_points: int = 5
    """Number of recent reconstruction errors the policy fits a line to."""
    lr_slope_ratio: float = 1.5
    """Drop the rate when ``-ratio * slope < std_err(slope)`` (loss no longer clearly falling)."""
    kernel_context: bool = False
    """With a kernel (a PSF or an estimate), cut each father with a margin of real image
    around it, degrade and upscale it whole, then train on the centre
    (:func:`~napari_zssr.core.sampling.context_margin`): no son pixel is then blurred across
    the crop's edge into mirrored content. The network sees the same crop size, so a step
    costs the same. No effect on the bicubic model (the reference's sampling is kept)."""
    eval_max_side: int = 256
    """Largest side of the central region used to measure reconstruction error (bounds its cost)."""

    # --- father sampling and augmentation --------------------------------------
    min_father_scale: float = 0.5
    """Smallest downscaling factor applied to the input to make an HR father."""
    kernel_min_father_scale: float | None = None
    """``min_father_scale`` of runs with a kernel (a PSF or an estimate) and noise on the sons
    (``noise_std > 0``: a noisy input); None: the same. Cross-scale recurrence holds for the
    sample, not for the camera: a downscaled father has the input's structures with a
    narrower blur and averaged-down noise, which no part of the input has. 1 cuts every
    father at the input's own scale. Clean inputs keep ``min_father_scale`` (their downscaled
    fathers are valid, and more varied, examples: DIV2KRK lost 0.19 dB without them)."""
    size_proportional_sampling: bool = False
    """Draw father scales with probability proportional to their size (the paper's text)."""
    augment_flips: bool = True
    """Use the dihedral transforms (90-degree rotations and mirrors) on fathers."""
    rotations: bool | None = None
    """Allow 90-degree rotations (and transposed ensemble members). None: only when the kernel
    is symmetric under them and the two scale factors are equal."""
    native_prob: float = 0.0
    """Probability of a father cut at its source's own scale with only a dihedral transform
    (no interpolation), as the reference code does for about half of its fathers; the others
    are resized to a random scale (and warped with probability ``affine_prob``)."""
    affine_prob: float = 0.5
    """Probability of a random affine warp (rotation, shear, anisotropic scale) of a father."""
    shear_std: float = 0.1
    """Standard deviation of the random shear of the affine augmentation."""
    affine_scale_std: float = 0.25
    """Standard deviation of the random log-anisotropy of the affine augmentation."""
    noise_std: float = 0.0
    """Gaussian noise added to LR sons only, in units of the normalised [0, 1] range."""
    noise_model: str = "gaussian"
    """Noise on the sons: ``"gaussian"`` (``noise_std`` everywhere) or ``"poisson-gaussian"``
    (variance ``noise_gain * I + noise_offset`` at the son's clean intensity ``I``, clipped
    at 0; ``noise_std`` is then the model's root-mean-square over the image)."""
    noise_gain: float = 0.0
    """Poisson-Gaussian model: noise variance per unit of normalised intensity."""
    noise_offset: float = 0.0
    """Poisson-Gaussian model: noise variance at zero intensity (normalised units squared)."""

    # --- gradual SR and inference -----------------------------------------------
    gradual_scales: tuple[float | tuple[float, float], ...] = ()
    """Intermediate scale factors (relative to the input, < final) trained and applied first;
    their outputs join the pool of fathers. An entry is one factor for both axes or an
    ``(s_y, s_x)`` pair; each is capped at the final factor per axis, and steps equal to the
    final one are skipped (so ``(2.0, 4.0)`` leaves a x2 run one jump). Steps run in order of
    increasing area. Used with the bicubic model only: a kernel is defined for the final
    factor; stack-wide training goes in one jump too."""
    gradual_from_input: bool = False
    """False: each gradual step upscales the previous step's output by the factor that
    remains. True: every step upscales the input itself by its own total factor, and its
    output only joins the fathers (the reference's gradual x2 configuration); a final factor
    above the largest step on both axes (x4 after steps up to x2) is still reached from that
    step's output."""
    gradual_above: float = 1.0
    """Gradual steps are used only when the final factor exceeds this on some axis; at or
    below it a run is one jump (``paper``: 2, so x2 stays the reference's one jump)."""
    gradual_back_projection_iters: tuple[int, ...] = ()
    """Back-projection iterations of each intermediate step, one per ``gradual_scales``
    entry; empty: ``back_projection_iters`` for every step. Unused without gradual steps."""
    back_projection_iters: int = 10
    """Back-projection iterations applied to each ensemble member and to their median.
    Skipped when ``noise_std > 0``: it would copy the input's noise into the output."""
    consistency_iters: int = 20
    """Most Richardson-Lucy iterations of the noise-aware consistency step that takes
    back-projection's place when ``noise_std > 0``: the output is made to agree with the
    input through the kernel up to the input's own noise, and no further (the count of
    lowest estimated risk; :mod:`napari_zssr.core.consistency`). 0 switches it off. Unused on runs
    without noise on the sons, where back-projection runs."""
    self_ensemble: bool = True
    """Geometric self-ensemble: 8 dihedral transforms (4 when rotations are off), median."""
    tile_size: int = 512
    """Largest side, in output pixels, of one network forward pass; larger planes are tiled."""
    tile_overlap: int = 16
    """Halo in output pixels around each tile (the network's receptive radius is ``depth``)."""
    finetune_iters: int | None = None
    """Stack-wide training (``stack_mode="shared"``): iterations for which each plane
    fine-tunes the shared network on itself before it is upscaled; None means
    ``max_iters // 10``, 0 applies the shared network as it is. (The shared network itself
    trains for ``2 * max_iters`` iterations: it learns from many planes.)"""
    mixed_precision: bool = False
    """Train under bfloat16 autocast on CUDA (inference always runs in float32). Off by
    default: on an H200 without the CUDA graph it was slower and 0.08 dB worse on Set5 x2;
    with the graph an iteration is faster (1.15 vs 1.64 ms) but the quality has not been
    measured (docs/benchmarks.md)."""
    cuda_graphs: bool = True
    """On CUDA, capture the training step in a CUDA graph and replay it at each iteration
    (the step's many small kernels are then launched at once); no effect elsewhere."""
    report_every: int = 10
    """Iterations between progress callbacks (the only host syncs of the training loop)."""

    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """Free-form annotations carried into result metadata."""

    def __post_init__(self) -> None:
        _check_field_types(self)
        checks = [
            (self.depth >= 2, "depth must be >= 2"),
            (self.width >= 1, "width must be >= 1"),
            (self.init in INIT_CHOICES, f"init must be one of {', '.join(INIT_CHOICES)}"),
            (self.max_iters >= 1, "max_iters must be >= 1"),
            (self.min_iters >= 0, "min_iters must be >= 0"),
            (self.crop_size >= 8, "crop_size must be >= 8"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.learning_rate > 0, "learning_rate must be > 0"),
            (self.lr_decay > 1, "lr_decay must be > 1"),
            (self.eval_every >= 1, "eval_every must be >= 1"),
            (self.lr_check_every >= 1, "lr_check_every must be >= 1"),
            (self.lr_fit_points >= 2, "lr_fit_points must be >= 2"),
            (0 < self.min_father_scale <= 1, "min_father_scale must be in (0, 1]"),
            (
                self.kernel_min_father_scale is None or 0 < self.kernel_min_father_scale <= 1,
                "kernel_min_father_scale must be None or in (0, 1]",
            ),
            (0 <= self.affine_prob <= 1, "affine_prob must be in [0, 1]"),
            (0 <= self.native_prob <= 1, "native_prob must be in [0, 1]"),
            (self.noise_std >= 0, "noise_std must be >= 0"),
            (
                self.noise_model in NOISE_MODELS,
                f"noise_model must be one of {', '.join(NOISE_MODELS)}",
            ),
            (self.noise_gain >= 0 and self.noise_offset >= 0, "noise_gain, noise_offset >= 0"),
            (self.back_projection_iters >= 0, "back_projection_iters must be >= 0"),
            (self.consistency_iters >= 0, "consistency_iters must be >= 0"),
            (self.tile_size >= 32, "tile_size must be >= 32"),
            (self.tile_overlap >= 0, "tile_overlap must be >= 0"),
            (self.report_every >= 1, "report_every must be >= 1"),
            (
                self.finetune_iters is None or self.finetune_iters >= 0,
                "finetune_iters must be None or >= 0",
            ),
            (self.gradual_above >= 1, "gradual_above must be >= 1"),
            (
                not self.gradual_back_projection_iters
                or not self.gradual_scales  # one jump: nothing to apply them to
                or len(self.gradual_back_projection_iters) == len(self.gradual_scales),
                "gradual_back_projection_iters must be empty or have one entry per "
                "gradual_scales entry (change both together)",
            ),
            (
                all(n >= 0 for n in self.gradual_back_projection_iters),
                "gradual_back_projection_iters must all be >= 0",
            ),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(f"ZSSRConfig: {msg}")
        # lists (JSON, the command line) become tuples: the config stays hashable
        object.__setattr__(
            self, "gradual_scales", tuple(_gradual_step(g) for g in self.gradual_scales)
        )
        if not self.gradual_from_input:
            pairs = sorted(map(step_pair, self.gradual_scales), key=step_order)
            for a, b in itertools.pairwise(pairs):
                if b[0] < a[0] or b[1] < a[1]:
                    raise ValueError(
                        f"ZSSRConfig: chained gradual steps cannot shrink an axis ({a} then "
                        f"{b}); set gradual_from_input=True to upscale the input at every step"
                    )
        object.__setattr__(
            self,
            "gradual_back_projection_iters",
            tuple(int(n) for n in self.gradual_back_projection_iters),
        )

    def replace(self, **changes: Any) -> ZSSRConfig:
        """Return a copy with some fields changed (unknown names raise TypeError)."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = set(changes) - names
        if unknown:
            raise TypeError(
                f"unknown ZSSRConfig field(s) {sorted(unknown)}; known: {sorted(names)}"
            )
        return dataclasses.replace(self, **changes)

    @property
    def plane_finetune_iters(self) -> int:
        """Fine-tuning iterations per plane in stack-wide training (see ``finetune_iters``)."""
        return self.max_iters // 10 if self.finetune_iters is None else self.finetune_iters

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python dictionary of every field (for metadata and JSON)."""
        d = dataclasses.asdict(self)
        d["gradual_scales"] = [list(g) if isinstance(g, tuple) else g for g in self.gradual_scales]
        d["gradual_back_projection_iters"] = list(self.gradual_back_projection_iters)
        return d


_SCALAR_KINDS = {"bool": "True or False", "int": "a whole number", "float": "a finite number"}


def _type_ok(value: Any, kind: str) -> bool:
    """Whether ``value`` is a ``kind`` ("bool", "int", "float" or "None")."""
    if kind == "None":
        return value is None
    if kind == "bool":
        return isinstance(value, bool) or type(value).__name__ == "bool_"
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return False  # True is an int to Python, never a count or a rate here
    if kind == "int":
        return isinstance(value, numbers.Integral)
    return isinstance(value, numbers.Real) and math.isfinite(float(value))


def _check_field_types(config: ZSSRConfig) -> None:
    """Refuse a value of the wrong type with a message naming the field (``max_iters=2.5``
    or ``"20"`` would otherwise fail later with an anonymous comparison error)."""
    for f in dataclasses.fields(config):
        kinds = [k.strip() for k in str(f.type).split("|")]
        if not set(kinds) <= {*_SCALAR_KINDS, "None"}:
            continue  # tuples, dicts, mixed types: checked elsewhere
        value = getattr(config, f.name)
        if not any(_type_ok(value, k) for k in kinds):
            wanted = " or ".join(_SCALAR_KINDS.get(k, k) for k in kinds)
            raise TypeError(f"ZSSRConfig: {f.name} must be {wanted}, got {value!r}")
        if kinds[0] == "int" and value is not None:
            object.__setattr__(config, f.name, int(value))  # numpy integers become int


def step_pair(step: float | tuple[float, float]) -> tuple[float, float]:
    """A validated ``gradual_scales`` entry as ``(s_y, s_x)``."""
    return (float(step), float(step)) if isinstance(step, (int, float)) else step


def step_order(pair: tuple[float, float]) -> tuple[float, float, float]:
    """Sort key of gradual steps: increasing area, then s_y, then s_x."""
    return pair[0] * pair[1], pair[0], pair[1]


def _gradual_step(step: Any) -> float | tuple[float, float]:
    """Validate one ``gradual_scales`` entry: a factor > 1, or a pair of factors >= 1."""
    msg = (
        f"ZSSRConfig: gradual_scales entries must be factors > 1 or (s_y, s_x) pairs, got {step!r}"
    )
    if isinstance(step, (bool, str, bytes)):
        raise ValueError(msg)
    if isinstance(step, numbers.Real):
        value = float(step)
        if not (math.isfinite(value) and value > 1):
            raise ValueError(msg)
        return value
    try:
        pair = tuple(float(v) for v in step)
    except (TypeError, ValueError) as exc:
        raise ValueError(msg) from exc
    if len(pair) != 2 or not all(math.isfinite(v) and v >= 1 for v in pair) or pair == (1.0, 1.0):
        raise ValueError(msg)
    return pair[0], pair[1]


#: The steps of the reference's gradual x2 configuration (its last step, x2, is the final
#: factor of a x2 run; a larger factor adds its own step after it).
REFERENCE_GRADUAL_X2: tuple[tuple[float, float], ...] = (
    (1.0, 1.5),
    (1.5, 1.0),
    (1.5, 1.5),
    (1.5, 2.0),
    (2.0, 1.5),
    (2.0, 2.0),
)


#: The reference's gradual x2 configuration (its README: about 0.3 dB above one jump for
#: about 6x the time): six steps, each upscaling the input, with 6 to 12 back-projections.
_REFERENCE_GRADUAL = ZSSRConfig(
    gradual_scales=REFERENCE_GRADUAL_X2,
    gradual_from_input=True,
    gradual_back_projection_iters=(6, 6, 8, 10, 10, 12),
)

PRESETS: dict[str, ZSSRConfig] = {
    # The reference's one-jump ("ideal case") defaults: 3000 iterations max, crop 128,
    # self-ensemble and 10 back-projections. A factor above 2 goes through the reference's
    # gradual x2 steps, then on from the x2 output: Set5 x4 31.16 dB (H100), against
    # 30.70 dB through an x2 step only (docs/benchmarks.md).
    "paper": _REFERENCE_GRADUAL.replace(gradual_above=2.0),
    # The reference's gradual x2 configuration at every factor (12 back-projections at the end):
    # Set5 x2 37.42 dB (H100) against 37.13 dB for one jump.
    "paper-gradual": _REFERENCE_GRADUAL.replace(back_projection_iters=12),
    # The reference's real-image configuration.
    "real": ZSSRConfig(
        self_ensemble=False,
        back_projection_iters=0,
        noise_std=0.0125,
        rotations=False,
        shear_std=0.0,
        affine_scale_std=0.0,
        min_father_scale=0.75,
    ),
    # Default: most of the paper's gain at a fraction of its time. With a kernel (a PSF or an
    # estimate) fathers are cut with a margin of real image around them (kernel_context) and,
    # for a noisy input, at the input's own scale (kernel_min_father_scale): the training
    # pairs then have the input's own blur and noise. On the 14 microscopy PSF cases
    # (docs/benchmarks.md, "Fathers at the input's scale") balanced is unchanged within one
    # seed's spread and fast goes from 83% to 91% of balanced's gain, its weakest case from 3%
    # to 66%, at the same time; DIV2KRK with the true kernel (clean: margin only) -0.11 dB.
    "balanced": ZSSRConfig(
        kernel_context=True,
        kernel_min_father_scale=1.0,
        gradual_scales=GRADUAL_SCALES,
        max_iters=1000,
        crop_size=96,
        width=64,
        back_projection_iters=4,
        self_ensemble=True,
    ),
    # Interactive on a 2-core CPU: small crops, 500 iterations, 2 back-projections,
    # self-ensemble kept (it is cheap at this size). Set5 x2 (docs/benchmarks.md): 22 s per
    # image on average, 27 s at 256 x 256; +2.85 dB over bicubic, 83% of the paper preset's gain.
    "fast": ZSSRConfig(
        kernel_context=True,
        kernel_min_father_scale=1.0,
        gradual_scales=GRADUAL_SCALES,
        max_iters=500,
        min_iters=128,
        crop_size=64,
        width=64,
        eval_every=50,
        lr_check_every=60,
        lr_slope_window=128,
        back_projection_iters=2,
        self_ensemble=True,
    ),
}


#: Presets that keep the published configuration's noise-free sons (so that the published
#: numbers stay reproducible); every other preset estimates the noise by default.
NOISE_FREE_PRESETS = ("paper", "paper-gradual")


def default_noise_std(preset: str | None, config: ZSSRConfig | None = None) -> float | str:
    """The noise on the LR sons when the user sets none.

    ``"auto"`` (estimated from the image): fluorescence images are almost never noise-free,
    and without noise on the sons ZSSR learns to sharpen the noise (worse than bicubic on
    the microscopy benchmark, far worse with a PSF kernel). Exceptions: a ``config`` whose
    ``noise_std`` is above 0 (its value), and the ``paper`` and ``paper-gradual`` presets
    (0, the published configuration).

    Parameters
    ----------
    preset : str or None
        The preset's name (None: no preset).
    config : ZSSRConfig, optional
        An explicit configuration.

    Returns
    -------
    float or "auto"
    """
    if config is not None and config.noise_std > 0:
        return float(config.noise_std)
    if preset in NOISE_FREE_PRESETS:
        return 0.0
    return "auto"


def resolve_config(
    preset: str | None = "balanced",
    config: ZSSRConfig | None = None,
    **overrides: Any,
) -> ZSSRConfig:
    """Combine a preset name, an explicit config and field overrides.

    ``config`` wins over ``preset``; ``overrides`` whose value is None are ignored.
    """
    if config is not None:
        if not isinstance(config, ZSSRConfig):
            raise TypeError(f"config must be a ZSSRConfig, got {type(config).__name__}")
        base = config
    else:
        if not isinstance(preset, str) or preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
        base = PRESETS[preset]
    changes = {k: v for k, v in overrides.items() if v is not None}
    return base.replace(**changes) if changes else base
