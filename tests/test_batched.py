"""Training many networks together gives, per network, what separate runs give."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_zssr.core.batched import (
    BatchedStep,
    FitJob,
    StackedAdam,
    StackedNets,
    fit_many,
)
from napari_zssr.core.config import ZSSRConfig
from napari_zssr.core.engine import fit
from napari_zssr.core.kernels import prepare_kernel
from napari_zssr.core.network import ZSSRNet
from napari_zssr.core.upscale import upscale_plane, upscale_planes

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = ZSSRConfig(
    max_iters=40,
    min_iters=0,
    crop_size=16,
    width=8,
    depth=4,
    self_ensemble=False,
    back_projection_iters=1,
    eval_every=5,
    lr_check_every=10,
    lr_slope_window=10,
    lr_fit_points=2,
    report_every=5,
)


def image(n: int, seed: int) -> np.ndarray:
    """A smooth random image in [0, 1] with some edges."""
    rng = np.random.default_rng(seed)
    img = rng.standard_normal((n, n)).cumsum(0).cumsum(1)
    img += 8 * (np.add.outer(np.arange(n), np.arange(n)) % 9 < 4)
    return ((img - img.min()) / (img.max() - img.min())).astype(np.float32)


def weights(net: ZSSRNet) -> list[torch.Tensor]:
    return [m.weight.detach().clone() for m in net.body if isinstance(m, torch.nn.Conv2d)]


def assert_same_model(together, alone) -> None:
    assert together.iterations == alone.iterations
    assert [i for i, _ in together.history] == [i for i, _ in alone.history]
    np.testing.assert_allclose(
        [v for _, v in together.history], [v for _, v in alone.history], rtol=1e-4, atol=1e-6
    )
    for a, b in zip(weights(together.net), weights(alone.net)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_stacked_forward_equals_each_network() -> None:
    nets = [ZSSRNet(2, 8, 4, generator=torch.Generator().manual_seed(s)) for s in range(3)]
    stack = StackedNets.from_nets(nets)
    x = torch.rand(2, 3, 2, 12, 12)
    out = stack(x.flatten(1, 2)).unflatten(1, (3, 2))
    for k, net in enumerate(nets):
        torch.testing.assert_close(out[:, k], net(x[:, k]), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(stack.forward_one(k, x[:, k]), net(x[:, k]))


def test_stacked_adam_matches_torch_adam_per_network() -> None:
    """Different learning rates per network; each follows torch.optim.Adam."""
    nets = [ZSSRNet(1, 4, 3, generator=torch.Generator().manual_seed(s)) for s in range(2)]
    lrs = [1e-2, 1e-3]
    step = BatchedStep(StackedNets.from_nets(nets), lrs, cuda_graph=False)
    opts = [torch.optim.Adam(n.parameters(), lr=lr) for n, lr in zip(nets, lrs)]
    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        x, y = torch.rand(1, 2, 8, 8, generator=gen), torch.rand(1, 2, 8, 8, generator=gen)
        losses = step(x, y)
        for k, (net, opt) in enumerate(zip(nets, opts)):
            opt.zero_grad()
            loss = (net(x[:, k : k + 1]) - y[:, k : k + 1]).abs().mean()
            loss.backward()
            opt.step()
            torch.testing.assert_close(losses[k], loss.detach(), rtol=1e-5, atol=1e-6)
    for k, net in enumerate(nets):
        for w, ref in zip(step.net.weights, weights(net)):
            torch.testing.assert_close(w[k], ref, rtol=1e-4, atol=1e-6)


def test_stacked_adam_select_keeps_the_state() -> None:
    p = torch.nn.Parameter(torch.rand(3, 2))
    opt = StackedAdam([p], [1.0, 2.0, 3.0])
    p.grad = torch.rand(3, 2)
    opt.step()
    q = torch.nn.Parameter(p.detach()[[0, 2]].clone())
    sub = opt.select([0, 2], [q])
    assert sub.lr.tolist() == [1.0, 3.0]
    torch.testing.assert_close(sub.exp_avg[0], opt.exp_avg[0][[0, 2]])
    torch.testing.assert_close(sub.exp_avg_sq[0], opt.exp_avg_sq[0][[0, 2]])
    assert sub.steps.tolist() == [1.0, 1.0]


@pytest.mark.parametrize(("noise", "context"), [(0.0, False), (0.02, False), (0.02, True)])
def test_networks_trained_together_equal_separate_runs(noise: float, context: bool) -> None:
    """Same loss curves, stopping points and weights as one fit per image (same seeds),
    also with a kernel and a context margin around the fathers."""
    imgs = [image(40, s) for s in range(3)]
    cfg = TINY.replace(noise_std=noise, kernel_context=context)
    kernel = prepare_kernel(np.outer(*[np.array([1.0, 4, 6, 4, 1]) / 16] * 2), (2, 2), (40, 40))
    kernel = kernel if context else None
    seeds = [4, 4, 9]
    jobs = [FitJob([im], cfg, seed) for im, seed in zip(imgs, seeds)]
    together = fit_many(jobs, 2, kernel=kernel, device="cpu")
    for im, seed, model in zip(imgs, seeds, together):
        alone = fit([im], 2, kernel=kernel, config=cfg, device="cpu", seed=seed)
        assert_same_model(model, alone)


def test_a_network_that_stops_early_does_not_disturb_the_others() -> None:
    """One network stops after 10 iterations (its own max_iters), another when its rate is
    exhausted; the third trains on to the end, each as it would alone."""
    imgs = [image(32, s) for s in range(3)]
    cfgs = [
        TINY.replace(max_iters=10),
        TINY.replace(min_learning_rate=5e-4, lr_decay=10.0),  # stops at its first drop
        TINY.replace(max_iters=60, min_iters=60),
    ]
    together = fit_many([FitJob([im], c, 1) for im, c in zip(imgs, cfgs)], 2, device="cpu")
    stops = [m.iterations for m in together]
    assert stops[0] == 10 and stops[1] < 60 and stops[2] == 60
    assert len(set(stops)) == 3
    for im, c, model in zip(imgs, cfgs, together):
        assert_same_model(model, fit([im], 2, config=c, device="cpu", seed=1))


def test_gradual_planes_together_equal_each_plane_alone() -> None:
    cfg = TINY.replace(max_iters=12, gradual_scales=(1.5,), back_projection_iters=2)
    imgs = [image(24, s)[None] for s in range(2)]
    outs, models = upscale_planes(imgs, 2, configs=[cfg, cfg], device="cpu", seed=3)
    for im, out, model in zip(imgs, outs, models):
        ref, ref_model = upscale_plane(im, 2, config=cfg, device="cpu", seed=3)
        assert out.shape == ref.shape == (1, 48, 48)
        np.testing.assert_allclose(out, ref, atol=1e-4)
        assert model.iterations == ref_model.iterations


def test_jobs_that_cannot_share_kernels_are_refused() -> None:
    small, big = image(12, 0), image(32, 1)
    with pytest.raises(ValueError, match="same width"):
        fit_many([FitJob([big], TINY, 0), FitJob([big], TINY.replace(width=4), 0)], 2, device="cpu")
    with pytest.raises(ValueError, match="same father crop"):
        fit_many([FitJob([big], TINY, 0), FitJob([small], TINY, 0)], 2, device="cpu")
    with pytest.raises(ValueError, match="at least one job"):
        fit_many([], 2, device="cpu")


# --- the public API --------------------------------------------------------------------------

API_CFG = TINY.replace(max_iters=12, back_projection_iters=2, self_ensemble=True)


def stack_u16(n: int = 3, side: int = 20) -> np.ndarray:
    return np.stack([(image(side, s) * 4000).astype(np.uint16) for s in range(n)])


@pytest.mark.parametrize(
    ("value", "exc", "match"),
    [
        (0, ValueError, "batch_planes must be"),
        (-2, ValueError, "batch_planes must be"),
        (2.0, TypeError, "batch_planes must be"),
        (True, TypeError, "batch_planes must be"),
        ("4", TypeError, "batch_planes must be"),
    ],
)
def test_batch_planes_is_validated(value: object, exc: type, match: str) -> None:
    from napari_zssr import super_resolve

    with pytest.raises(exc, match=match):
        super_resolve(stack_u16(2), 2, config=API_CFG, stack_mode="per_plane", batch_planes=value)


def test_batch_planes_one_is_plane_after_plane() -> None:
    """batch_planes=1 (the CPU default) runs each plane alone, bit for bit."""
    from napari_zssr import super_resolve

    stack = stack_u16()
    kw = {"config": API_CFG, "stack_mode": "per_plane", "device": "cpu", "seed": 3}
    one, info = super_resolve(stack, 2, batch_planes=1, return_info=True, noise_std=0.01, **kw)
    default = super_resolve(stack, 2, noise_std=0.01, **kw)
    np.testing.assert_array_equal(one, default)
    assert info["batch_planes"] == 1
    alone = super_resolve(stack[2], 2, noise_std=0.01, **kw)
    np.testing.assert_array_equal(one[2], alone)


@pytest.mark.parametrize("batch", [2, 3, 8])
def test_planes_trained_together_equal_plane_after_plane(batch: int) -> None:
    from napari_zssr import super_resolve

    stack = stack_u16()
    kw = {"config": API_CFG, "stack_mode": "per_plane", "device": "cpu", "seed": 3}
    ref = super_resolve(stack, 2, batch_planes=1, noise_std=0.01, **kw)
    out, info = super_resolve(
        stack, 2, batch_planes=batch, return_info=True, noise_std=0.01, maps=True, **kw
    )
    assert out.shape == ref.shape and out.dtype == np.uint16
    # uint16 rounding of float results equal up to float rounding: at most one step apart
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 1
    assert info["batch_planes"] == batch
    assert info["maps"]["spread"].shape == out.shape


def test_super_resolve_many_equals_separate_runs() -> None:
    from napari_zssr import super_resolve
    from napari_zssr.arrays.upscale_many import super_resolve_many

    imgs = [image(20, 0), (image(20, 1) * 255).astype(np.uint8), image(12, 2), image(20, 3)]
    before = [im.copy() for im in imgs]
    outs, infos = super_resolve_many(
        imgs, 2, config=API_CFG, device="cpu", seed=5, batch_size=2, return_info=True
    )
    for im, out, info in zip(imgs, outs, infos):
        ref, ref_info = super_resolve(im, 2, config=API_CFG, device="cpu", seed=5, return_info=True)
        assert out.dtype == im.dtype and out.shape == ref.shape
        step = 1.0 if im.dtype == np.uint8 else 1e-5  # one integer step, or float rounding
        np.testing.assert_allclose(out.astype(float), ref.astype(float), rtol=0, atol=step)
        assert info["noise_std"] == ref_info["noise_std"]
        assert info["noise_estimate"] == ref_info["noise_estimate"]
    # the 12 x 12 image has a smaller crop: it trains in a batch of its own
    assert sorted(infos[0]["batch_sizes"]) == [1, 1, 2]
    assert all(np.array_equal(a, b) for a, b in zip(imgs, before))


def test_super_resolve_many_rejects_bad_input() -> None:
    from napari_zssr.arrays.upscale_many import super_resolve_many

    with pytest.raises(TypeError, match="images must be"):
        super_resolve_many(image(12, 0), 2)
    with pytest.raises(TypeError, match="images must be"):
        super_resolve_many([], 2)
    with pytest.raises(ValueError, match="batch_size must be"):
        super_resolve_many([image(12, 0)], 2, batch_size=0)
    with pytest.raises(ValueError, match="scale"):
        super_resolve_many([image(12, 0)], 0.5)


def test_batched_planes_report_progress_and_can_be_cancelled() -> None:
    from napari_zssr import Cancelled, super_resolve

    seen = []
    kw = {"config": API_CFG, "stack_mode": "per_plane", "device": "cpu", "batch_planes": 2}
    super_resolve(stack_u16(3), 2, callback=lambda p: seen.append(p) and None, **kw)
    fractions = [p.fraction for p in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert {p.plane for p in seen if p.stage == "train"} == {0, 2}  # two batches
    with pytest.raises(Cancelled):
        super_resolve(stack_u16(3), 2, callback=lambda p: p.stage != "train", **kw)
