"""HR fathers: crops of the input (and of earlier outputs) at random scales, augmented.

Every crop is cut, resized and warped on the device the fathers live on; the random
choices are plain Python numbers from a seeded NumPy generator, so sampling causes no
host-device synchronisation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .config import ZSSRConfig
from .resize import imresize

__all__ = [
    "FatherSampler",
    "FatherSource",
    "apply_dihedral",
    "context_margin",
    "crop_shape",
    "trim_margin",
    "undo_dihedral",
]

Transform = tuple[bool, bool, bool]


def apply_dihedral(x: torch.Tensor, tf: Transform) -> torch.Tensor:
    """Apply (transpose, flip_y, flip_x), in that order, to the last two axes."""
    t, fy, fx = tf
    if t:
        x = x.transpose(-2, -1)
    dims = [d for d, f in ((-2, fy), (-1, fx)) if f]
    return torch.flip(x, dims) if dims else x


def undo_dihedral(x: torch.Tensor, tf: Transform) -> torch.Tensor:
    """Inverse of :func:`apply_dihedral`."""
    t, fy, fx = tf
    dims = [d for d, f in ((-2, fy), (-1, fx)) if f]
    if dims:
        x = torch.flip(x, dims)
    return x.transpose(-2, -1) if t else x


@dataclass
class FatherSource:
    """An image that fathers are cut from.

    Attributes
    ----------
    image : torch.Tensor
        ``(C, H, W)`` values in [0, 1] on the training device.
    base : (float, float)
        Its scale relative to the input (1 for the input and for stack planes,
        the stage factor for outputs of gradual SR).
    """

    image: torch.Tensor
    base: tuple[float, float] = (1.0, 1.0)


def crop_shape(crop_size: int, scale: Sequence[float], limit: Sequence[int]) -> tuple[int, int]:
    """Father crop (H, W): at most ``crop_size`` and ``limit``, a multiple of s where possible.

    A father whose side is a whole multiple of the factor gives a son whose pixels
    cover it exactly, as they do at test time.
    """
    out = []
    for s, lim in zip(scale, limit):
        c = max(1, min(int(crop_size), int(lim)))
        # the largest n <= c/s (within 8 steps) whose n * s is a whole number of pixels
        for n in range(math.floor(c / s), max(1, math.floor(c / s) - 8), -1):
            if abs(n * s - round(n * s)) < 1e-6:
                c = round(n * s)
                break
        out.append(int(c))
    return out[0], out[1]


def context_margin(
    scale: Sequence[float],
    kernel_shape: Sequence[int],
    crop: Sequence[int],
    limit: Sequence[int],
) -> tuple[int, int]:
    """HR pixels of real image around a father crop that its son and input depend on.

    A son cut from the crop alone is blurred across the crop's edge into a mirrored copy of
    the crop: with a 30 x 30 PSF kernel on a 64 px crop, about half of the son sees mirrored
    content, a degradation the image itself never had. Cutting the father with this margin,
    degrading and upscaling it whole, then keeping the centre, makes every training pair the
    true degradation of real content; the network still sees the crop's size, so a step costs
    the same.

    Parameters
    ----------
    scale : (float, float)
        The factor ``(s_y, s_x)``.
    kernel_shape : (int, int)
        Shape of the downscaling kernel on the HR grid.
    crop : (int, int)
        The father crop.
    limit : (int, int)
        The smallest source size: crop plus both margins must fit in it.

    Returns
    -------
    (int, int)
        Margin on each side, per axis: the son's reach (half the kernel) plus the bicubic
        upscale's (``2 s``), a whole number of LR pixels where possible, shrunk
        to what ``limit`` allows (0 when nothing fits).
    """
    out = []
    for ax, s in enumerate(scale):
        need = math.ceil(kernel_shape[ax] / 2 + 2 * s) + 1
        room = max((int(limit[ax]) - int(crop[ax])) // 2, 0)
        # whole numbers of LR pixels keep the son's grid aligned with the crop's: the
        # smallest such margin that covers the reach, else the largest that fits
        whole = [
            round(n * s)
            for n in range(1, math.floor(room / s + 1e-9) + 1)
            if abs(n * s - round(n * s)) < 1e-6
        ]
        m = next((c for c in whole if c >= need), whole[-1] if whole else 0)
        out.append(int(m))
    return out[0], out[1]


def trim_margin(x: torch.Tensor, margin: Sequence[int]) -> torch.Tensor:
    """The centre of ``x`` without ``margin`` ``(m_y, m_x)`` pixels on each side."""
    my, mx = (int(m) for m in margin)
    if not (my or mx):
        return x
    h, w = x.shape[-2:]
    return x[..., my : h - my, mx : w - mx]


class FatherSampler:
    """Draw batches of augmented HR-father crops.

    Parameters
    ----------
    sources : sequence of FatherSource
        The input image(s) and, for gradual SR, earlier outputs.
    crop : (int, int)
        Father crop shape.
    config : ZSSRConfig
        Sampling and augmentation parameters.
    transforms : sequence of (bool, bool, bool)
        Dihedral transforms allowed for this kernel and scale.
    rng : numpy.random.Generator
        Source of all random choices.
    """

    def __init__(
        self,
        sources: Sequence[FatherSource],
        crop: tuple[int, int],
        config: ZSSRConfig,
        transforms: Sequence[Transform],
        rng: np.random.Generator,
    ) -> None:
        if not sources:
            raise ValueError("at least one father source is needed")
        self.sources = list(sources)
        self.crop = crop
        self.config = config
        if crop[0] != crop[1]:  # a transposed non-square crop would not stack in a batch
            transforms = [tf for tf in transforms if not tf[0]]
        self.transforms = list(transforms) or [(False, False, False)]
        self.rng = rng
        self.allow_rotation = len(self.transforms) == 8

    def add_source(self, source: FatherSource) -> None:
        """Add an image (e.g. an intermediate output of gradual SR) to the pool."""
        self.sources.append(source)

    # -- random choices -----------------------------------------------------------
    def _min_scale(self, src: FatherSource) -> float:
        h, w = src.image.shape[-2:]
        # The crop must fit at that scale on both axes: the source is resized by f / base per
        # axis, so an anisotropic base (an output of a (1.5, 2) step) bounds f per axis.
        need = max(self.crop[0] * src.base[0] / h, self.crop[1] * src.base[1] / w)
        return min(max(self.config.min_father_scale, need), min(src.base))

    def _draw(self) -> tuple[FatherSource, tuple[float, float]]:
        """Pick a scale relative to the input, then the source that serves it."""
        top = max(min(s.base) for s in self.sources)
        low = min(self._min_scale(s) for s in self.sources)
        u = self.rng.random()
        if self.config.size_proportional_sampling:
            # density proportional to the father's area, i.e. to scale**2
            f = math.sqrt(low**2 + u * (top**2 - low**2))
        else:
            f = low + u * (top - low)
        usable = [s for s in self.sources if min(s.base) >= f - 1e-9 and self._min_scale(s) <= f]
        if not usable:
            usable = [max(self.sources, key=lambda s: min(s.base))]
        smallest = min(min(s.base) for s in usable)
        candidates = [s for s in usable if abs(min(s.base) - smallest) < 1e-9]
        src = candidates[int(self.rng.integers(len(candidates)))]
        f = max(f, self._min_scale(src))
        return src, (f / src.base[0], f / src.base[1])

    # -- one crop -------------------------------------------------------------------
    def _one(self) -> torch.Tensor:
        cfg = self.config
        src, (ry, rx) = self._draw()
        img = src.image
        h, w = img.shape[-2:]
        cy, cx = self.crop
        if cfg.native_prob > 0 and self.rng.random() < cfg.native_prob:
            ry = rx = 1.0  # the source's own pixels: no interpolation, a dihedral transform only
            affine = False
        else:
            affine = cfg.affine_prob > 0 and self.rng.random() < cfg.affine_prob
        # Working size before the (optional) warp: larger so that rotated corners stay inside.
        wy = min(math.ceil(cy * 1.5), math.floor(h * ry)) if affine else cy
        wx = min(math.ceil(cx * 1.5), math.floor(w * rx)) if affine else cx
        wy, wx = max(wy, cy), max(wx, cx)
        resized = abs(ry - 1) > 1e-6 or abs(rx - 1) > 1e-6
        my = math.ceil(2 / ry) + 2 if resized else 0
        mx = math.ceil(2 / rx) + 2 if resized else 0
        ey = min(h, math.ceil(wy / ry) + 2 * my)
        ex = min(w, math.ceil(wx / rx) + 2 * mx)
        y0 = int(self.rng.integers(h - ey + 1))
        x0 = int(self.rng.integers(w - ex + 1))
        patch = img[:, y0 : y0 + ey, x0 : x0 + ex]
        if resized:
            patch = imresize(patch, (ry, rx))
        ph, pw = patch.shape[-2:]
        oy = int(self.rng.integers(ph - wy + 1)) if ph > wy else 0
        ox = int(self.rng.integers(pw - wx + 1)) if pw > wx else 0
        patch = patch[:, oy : oy + wy, ox : ox + wx]
        if affine:
            patch = self._warp(patch, (cy, cx))
        elif patch.shape[-2:] != (cy, cx):
            patch = patch[:, :cy, :cx]
        tf = self.transforms[int(self.rng.integers(len(self.transforms)))]
        patch = apply_dihedral(patch, tf)
        return patch.clamp(min=0.0)

    def _warp(self, patch: torch.Tensor, out: tuple[int, int]) -> torch.Tensor:
        """Random rotation (if allowed), shear and anisotropic scale about the centre."""
        cfg = self.config
        theta = self.rng.uniform(0, 2 * math.pi) if self.allow_rotation else 0.0
        shear = self.rng.normal(0, cfg.shear_std) if cfg.shear_std > 0 else 0.0
        aniso = math.exp(self.rng.normal(0, cfg.affine_scale_std)) if cfg.affine_scale_std else 1.0
        c, s = math.cos(theta), math.sin(theta)
        # output (y, x) offsets -> source offsets: rotation @ shear @ anisotropic scale
        m = np.array([[c, -s], [s, c]]) @ np.array([[1.0, shear], [0.0, 1.0]])
        m = m @ np.diag([math.sqrt(aniso), 1 / math.sqrt(aniso)])
        hy, hx = patch.shape[-2:]
        oy, ox = out
        dev, dt = patch.device, patch.dtype
        ys = torch.arange(oy, device=dev, dtype=dt) - (oy - 1) / 2
        xs = torch.arange(ox, device=dev, dtype=dt) - (ox - 1) / 2
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        sy = m[0, 0] * gy + m[0, 1] * gx + (hy - 1) / 2
        sx = m[1, 0] * gy + m[1, 1] * gx + (hx - 1) / 2
        grid = torch.stack([sx / max(hx - 1, 1) * 2 - 1, sy / max(hy - 1, 1) * 2 - 1], dim=-1)
        warped = F.grid_sample(
            patch[None], grid[None], mode="bicubic", padding_mode="reflection", align_corners=True
        )
        return warped[0]

    def sample(self, batch: int = 1) -> torch.Tensor:
        """A batch ``(B, C, crop_h, crop_w)`` of fathers."""
        return torch.stack([self._one() for _ in range(batch)])
