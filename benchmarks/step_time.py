"""Time of one training step and one forward pass of the ZSSR network, per memory format.

Prints a table: the network of the ``paper`` preset (width 64, depth 8, RGB) trained on one
crop (L1 loss, Adam) and run on a whole upscaled image, with its weights in the default
(contiguous) layout and in channels-last, the layout the engine picks on the CPU
(:func:`napari_zssr.core.network.preferred_memory_format`).

Run from the repository root::

    python benchmarks/step_time.py [--device cpu] [--threads 2] [--repeat 30]
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from napari_zssr.core.network import ZSSRNet


def _time_train(net: ZSSRNet, x: torch.Tensor, repeat: int) -> float:
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net.train()
    for i in range(repeat + 2):  # two warm-up steps
        if i == 2:
            _sync(x.device)
            t0 = time.perf_counter()
        loss = (net(x) - x).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    _sync(x.device)
    return (time.perf_counter() - t0) / repeat


def _time_forward(net: ZSSRNet, x: torch.Tensor, repeat: int) -> float:
    net.eval()
    with torch.inference_mode():
        for i in range(repeat + 1):  # one warm-up pass
            if i == 1:
                _sync(x.device)
                t0 = time.perf_counter()
            net(x)
    _sync(x.device)
    return (time.perf_counter() - t0) / repeat


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--repeat", type=int, default=30, help="timed training steps (default 30)")
    p.add_argument("--crop", type=int, default=64, help="training crop side (default 64)")
    p.add_argument("--image", type=int, default=512, help="forward-pass image side (default 512)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    crop = torch.rand(1, 3, args.crop, args.crop, device=dev)
    image = torch.rand(1, 3, args.image, args.image, device=dev)
    print(f"device {dev}; torch {torch.__version__}; CPU threads {torch.get_num_threads()}")
    print(
        f"| weights | train step, {args.crop}x{args.crop} (ms) "
        f"| forward, {args.image}x{args.image} (s) |"
    )
    print("|---|---|---|")
    for name, fmt in (
        ("contiguous", torch.contiguous_format),
        ("channels-last", torch.channels_last),
    ):
        gen = torch.Generator().manual_seed(0)
        net = ZSSRNet(3, 64, 8, generator=gen).to(dev, memory_format=fmt)
        train = _time_train(net, crop, args.repeat)
        fwd = _time_forward(net, image, max(3, args.repeat // 10))
        print(f"| {name} | {1e3 * train:.1f} | {fwd:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
