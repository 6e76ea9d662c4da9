"""Applying a trained network: self-ensemble, back-projection and tiled forward passes."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from .kernels import DownscaleKernel, downscale
from .network import ZSSRNet
from .resize import imresize, output_shape
from .sampling import apply_dihedral, undo_dihedral

__all__ = [
    "back_project",
    "degrade",
    "forward_tiled",
    "median",
    "quick_output",
    "super_resolve_tensor",
]


def degrade(
    hr: torch.Tensor,
    scale: Sequence[float],
    kernel: DownscaleKernel | None,
    out_shape: Sequence[int] | None = None,
    *,
    fft: bool = False,
) -> torch.Tensor:
    """The downscaling model: kernel correlation + subsampling, or MATLAB bicubic; ``fft``
    convolves with the kernel through the FFT (:func:`~napari_zssr.core.kernels.downscale`)."""
    if kernel is None:
        return imresize(hr, (1.0 / scale[0], 1.0 / scale[1]), out_shape)
    return downscale(hr, kernel, out_shape, fft=fft)


def back_project(
    sr: torch.Tensor,
    lr: torch.Tensor,
    scale: Sequence[float],
    kernel: DownscaleKernel | None,
    iters: int,
    vmax: float = 1.0,
) -> torch.Tensor:
    """``sr += upscale_bicubic(lr - degrade(sr))``, ``iters`` times, then clip to [0, vmax]."""
    for _ in range(iters):
        err = lr - degrade(sr, scale, kernel, lr.shape[-2:])
        sr = sr + imresize(err, scale, sr.shape[-2:])
    return sr.clamp(0.0, vmax)


def forward_tiled(
    net: ZSSRNet, x: torch.Tensor, tile: int, overlap: int, autocast: bool = False
) -> torch.Tensor:
    """Run ``net`` on ``x`` ``(C, H, W)`` in tiles with a halo; equals the untiled pass.

    The halo is at least the network's receptive radius, so every output pixel sees the
    same neighbourhood as in a whole-image pass (zero padding only at the image border).
    """
    c, h, w = x.shape
    halo = max(overlap, net.receptive_radius)
    ctx = (
        torch.autocast(device_type=x.device.type, dtype=torch.bfloat16)
        if autocast
        else torch.autocast(device_type=x.device.type, enabled=False)
    )
    with ctx:
        if h <= tile and w <= tile:
            return net(x[None])[0].float()
        out = torch.empty((c, h, w), dtype=torch.float32, device=x.device)
        for y0 in range(0, h, tile):
            y1 = min(y0 + tile, h)
            a0, a1 = max(0, y0 - halo), min(h, y1 + halo)
            for x0 in range(0, w, tile):
                x1 = min(x0 + tile, w)
                b0, b1 = max(0, x0 - halo), min(w, x1 + halo)
                res = net(x[None, :, a0:a1, b0:b1])[0].float()
                out[:, y0:y1, x0:x1] = res[:, y0 - a0 : y1 - a0, x0 - b0 : x1 - b0]
        return out


def median(stack: torch.Tensor) -> torch.Tensor:
    """Median over the first axis; the mean of the two middle values for an even count."""
    n = stack.shape[0]
    if n == 1:
        return stack[0]
    s, _ = torch.sort(stack, dim=0)
    if n % 2:
        return s[n // 2]
    return 0.5 * (s[n // 2 - 1] + s[n // 2])


def super_resolve_tensor(
    net: ZSSRNet,
    lr: torch.Tensor,
    scale: Sequence[float],
    kernel: DownscaleKernel | None,
    *,
    transforms: Sequence[tuple[bool, bool, bool]],
    back_projection_iters: int,
    tile: int,
    overlap: int,
    out_shape: Sequence[int] | None = None,
    vmax: float = 1.0,
    autocast: bool = False,
    on_member: Callable[[int, int], None] | None = None,
    collect: dict[str, torch.Tensor] | None = None,
    on_identity: Callable[[torch.Tensor, torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """Upscale ``lr`` ``(C, H, W)``: ensemble over ``transforms``, back-projection, median.

    Each transformed copy is interpolated, passed through the net, transformed back and
    back-projected; the median of the copies is back-projected once more (the reference's
    final test). With a single identity transform this is one pass plus back-projection.

    When ``collect`` is a dict it receives ``"raw"``, the median of the network's outputs
    before any back-projection, and ``"spread"``, the median absolute deviation of the
    back-projected members around their median (zero for a single member), both
    ``(C, H_out, W_out)`` in the normalised intensity unit. Without it nothing extra is kept.

    ``on_identity(output, bicubic)`` is called once the identity member (if there is one) has
    been through the network, with its output before back-projection and the bicubic upscale
    it started from, both ``(C, H_out, W_out)``: what :func:`quick_output` would give for
    the trained network, at no extra cost (a live preview shows it while the other members
    run). It must not modify them.
    """
    sy, sx = float(scale[0]), float(scale[1])
    shape = tuple(out_shape) if out_shape is not None else output_shape(lr.shape[-2:], (sy, sx))
    outs = []
    raws: list[torch.Tensor] = []
    net.eval()
    with torch.inference_mode():
        for i, tf in enumerate(transforms):
            if on_member is not None:
                on_member(i, len(transforms))
            xt = apply_dihedral(lr, tf)
            st, sh = ((sx, sy), (shape[1], shape[0])) if tf[0] else ((sy, sx), shape)
            up = imresize(xt, st, sh)
            y = undo_dihedral(forward_tiled(net, up, tile, overlap, autocast), tf)
            if on_identity is not None and not any(tf):
                on_identity(y, up)
            if collect is not None:
                raws.append(y)
            outs.append(back_project(y, lr, (sy, sx), kernel, back_projection_iters, vmax))
        members = torch.stack(outs) if len(outs) > 1 else None
        result = median(members) if members is not None else outs[0]
        if collect is not None:
            collect["raw"] = median(torch.stack(raws)) if len(raws) > 1 else raws[0]
            collect["spread"] = (
                median((members - result).abs())
                if members is not None
                else torch.zeros_like(result)
            )
        if members is not None:
            result = back_project(result, lr, (sy, sx), kernel, back_projection_iters, vmax)
    return result


def quick_output(
    net: ZSSRNet,
    lr: torch.Tensor,
    scale: Sequence[float],
    *,
    tile: int,
    overlap: int,
    network: bool = True,
) -> torch.Tensor:
    """One forward pass of ``net`` on ``lr`` ``(C, H, W)``: a snapshot while it trains.

    Returns ``(C, ceil(H*s_y), ceil(W*s_x))`` float32, clipped below at 0 (the caller clips
    above at its own maximum), without self-ensemble or back-projection; with
    ``network=False`` the bicubic upscale the network starts from. The network is put back
    in the mode it was in, and no random number is drawn, so training goes on exactly as
    without the snapshot.
    """
    sy, sx = float(scale[0]), float(scale[1])
    with torch.inference_mode():
        up = imresize(lr, (sy, sx), output_shape(lr.shape[-2:], (sy, sx)))
        if not network:
            return up.float().clamp(min=0.0)
        was_training = net.training
        net.eval()
        try:
            out = forward_tiled(net, up, tile, overlap)
        finally:
            net.train(was_training)
    return out.clamp(min=0.0)
