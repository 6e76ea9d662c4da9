"""The training/inference engine: learning-rate policy, fit, predict, tiling, quality."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from napari_zssr import Cancelled, Progress, ZSSRConfig, super_resolve
from napari_zssr.core.engine import (
    Reporter,
    TrainedModel,
    fit,
    normalise_scale,
    predict,
    prepare_run,
)
from napari_zssr.core.inference import back_project, degrade, forward_tiled, median
from napari_zssr.core.kernels import prepare_kernel
from napari_zssr.core.lr_policy import LRPolicy
from napari_zssr.core.network import ZSSRNet
from napari_zssr.core.resize import imresize
from napari_zssr.core.sampling import (
    FatherSampler,
    FatherSource,
    context_margin,
    crop_shape,
    undo_dihedral,
)
from napari_zssr.core.upscale import gradual_stages, upscale_plane

TINY = ZSSRConfig(
    max_iters=20,
    crop_size=16,
    width=8,
    self_ensemble=False,
    back_projection_iters=1,
    eval_every=10,
    report_every=5,
)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def structured(n: int, seed: int = 3) -> np.ndarray:
    """Discs of random size and brightness over two stripe patterns, in [0, 1]."""
    rng = np.random.default_rng(seed)
    y, x = np.indices((n, n), dtype=np.float64)
    img = np.zeros((n, n))
    for _ in range(12):
        cy, cx = rng.uniform(0, n, 2)
        r = rng.uniform(5, 25) * n / 128
        img += rng.uniform(0.3, 1.0) * (((y - cy) ** 2 + (x - cx) ** 2) < r * r)
    for ang in (0.4, 1.9):
        img += 0.5 * ((np.cos(ang) * x + np.sin(ang) * y) % (24 * n / 128) < 12 * n / 128)
    return (img - img.min()) / (img.max() - img.min())


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return 10.0 * math.log10(1.0 / float(np.mean((a - b) ** 2)))


# --- learning-rate policy --------------------------------------------------------------------


def _policy(**kw: float) -> LRPolicy:
    args = {
        "lr": 1e-3,
        "decay": 10.0,
        "min_lr": 9e-6,
        "check_every": 10,
        "slope_window": 20,
        "fit_points": 5,
        "ratio": 1.5,
        "min_iters": 0,
    }
    args.update(kw)
    return LRPolicy(**args)  # type: ignore[arg-type]


def _feed(policy: LRPolicy, errors: Iterator[float], until: int, every: int = 5) -> list[int]:
    """Record an error every ``every`` iterations and step; return the iterations of drops."""
    drops = []
    for it in range(1, until + 1):
        if it % every == 0:
            policy.record(it, next(errors))
        if policy.step(it):
            drops.append(it)
    return drops


def test_policy_drops_the_rate_on_a_flat_loss() -> None:
    rng = np.random.default_rng(0)
    p = _policy()
    drops = _feed(p, (0.1 + 1e-4 * rng.normal() for _ in range(1000)), 49)
    assert drops == [30]  # the first check after the 20-iteration window
    assert p.lr == pytest.approx(1e-4)


def test_policy_keeps_the_rate_on_a_steeply_falling_loss() -> None:
    rng = np.random.default_rng(0)
    p = _policy()
    errs = (1.0 - 0.004 * k + 1e-4 * rng.normal() for k in range(1000))
    assert _feed(p, errs, 200) == []
    assert p.lr == 1e-3
    assert not p.finished


def test_policy_waits_for_the_window_after_a_drop() -> None:
    p = _policy(slope_window=30)
    drops = _feed(p, iter([0.1] * 1000), 200)
    assert np.all(np.diff(drops) > 30)
    assert all(d % 10 == 0 for d in drops)


def test_policy_finishes_after_enough_drops() -> None:
    p = _policy()
    drops = []
    for it in range(1, 1000):
        if it % 5 == 0:
            p.record(it, 0.05)
        if p.step(it):
            drops.append(it)
            if len(drops) < 3:
                assert not p.finished  # 1e-4, 1e-5 are still above 9e-6
        if p.finished:
            break
    assert len(drops) == 3
    assert p.lr == pytest.approx(1e-6)
    assert p.finished


def test_policy_respects_min_iters_and_needs_enough_points() -> None:
    p = _policy(min_iters=100)
    drops = _feed(p, iter([0.2] * 1000), 150)
    assert drops and drops[0] >= 100
    q = _policy(fit_points=50)
    assert _feed(q, iter([0.2] * 1000), 200) == []  # only 40 points recorded


@pytest.mark.parametrize("value", [0.5, 0.0])
def test_fit_stops_early_once_the_rate_is_exhausted(value: float) -> None:
    """Nothing to learn (a constant or an all-zero plane): training ends long before the cap."""
    flat = np.full((1, 24, 24), value, dtype=np.float32)
    cfg = TINY.replace(
        max_iters=400, min_iters=0, eval_every=5, lr_check_every=10, lr_slope_window=10
    )
    model = fit([flat], 2.0, config=cfg, device="cpu")
    assert model.iterations < 200
    assert model.final_loss is not None and model.final_loss < 1e-3


# --- scale factors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scale", "expected"),
    [
        (2, (2.0, 2.0)),
        (2.5, (2.5, 2.5)),
        ((2, 3), (2.0, 3.0)),
        ([1.0, 3.0], (1.0, 3.0)),
        (np.float32(1.5), (1.5, 1.5)),
        (np.array([2, 4]), (2.0, 4.0)),
        (16, (16.0, 16.0)),
    ],
)
def test_normalise_scale_accepts(scale: object, expected: tuple[float, float]) -> None:
    assert normalise_scale(scale) == expected


@pytest.mark.parametrize(
    ("scale", "exc", "match"),
    [
        (1, ValueError, "greater than 1"),
        ((1, 1), ValueError, "greater than 1"),
        (0.5, ValueError, r"\[1, 16\]"),
        (17, ValueError, r"\[1, 16\]"),
        (float("nan"), ValueError, "finite"),
        (float("inf"), ValueError, "finite"),
        ((2, 3, 4), ValueError, "two"),
        ("2", TypeError, "number"),
        ("22", TypeError, "number"),
        (None, TypeError, "number"),
        (True, TypeError, "number"),
        (("a", 2), TypeError, "number"),
    ],
)
def test_normalise_scale_rejects(scale: object, exc: type, match: str) -> None:
    with pytest.raises(exc, match=match):
        normalise_scale(scale)


def test_gradual_stages() -> None:
    assert gradual_stages((4.0, 4.0), (2.0,)) == [(2.0, 2.0), (4.0, 4.0)]
    assert gradual_stages((4.0, 4.0), ()) == [(4.0, 4.0)]
    assert gradual_stages((2.0, 2.0), (2.0, 3.0)) == [(2.0, 2.0)]
    assert gradual_stages((1.0, 4.0), (2.0,)) == [(1.0, 2.0), (1.0, 4.0)]
    # pairs run in order of area whatever their order in the configuration, capped per axis
    assert gradual_stages((2.0, 2.0), ((2.0, 1.5), (1.5, 1.0), (1.0, 1.5), (1.5, 3.0))) == [
        (1.0, 1.5),
        (1.5, 1.0),
        (1.5, 2.0),
        (2.0, 1.5),
        (2.0, 2.0),
    ]
    # no steps at or below ``above`` (the `paper` preset's x2 stays one jump)
    assert gradual_stages((2.0, 2.0), ((1.5, 1.5),), above=2.0) == [(2.0, 2.0)]
    assert gradual_stages((2.0, 2.5), ((1.5, 1.5),), above=2.0) == [(1.5, 1.5), (2.0, 2.5)]
    # a step equal to the final factor, or (1, 1) after capping, is no step
    assert gradual_stages((1.0, 2.0), ((1.5, 1.0), (2.0, 2.0))) == [(1.0, 2.0)]


def test_crop_shape_is_a_multiple_of_the_factor() -> None:
    assert crop_shape(32, (2.0, 2.0), (100, 100)) == (32, 32)
    assert crop_shape(32, (3.0, 3.0), (100, 100)) == (30, 30)
    assert crop_shape(32, (2.5, 2.0), (100, 100)) == (30, 32)  # 2.5 * 12 = 30
    assert crop_shape(128, (2.0, 2.0), (40, 50)) == (40, 50)


# --- inference building blocks ---------------------------------------------------------------


@pytest.mark.parametrize(("channels", "tile", "overlap"), [(1, 16, 0), (3, 20, 4), (2, 32, 16)])
def test_forward_tiled_equals_whole_pass(channels: int, tile: int, overlap: int) -> None:
    net = ZSSRNet(channels, 8, 6, generator=torch.Generator().manual_seed(1))
    x = torch.rand(channels, 48, 53)
    with torch.no_grad():
        whole = net(x[None])[0]
        tiled = forward_tiled(net, x, tile, overlap)
    assert tiled.shape == whole.shape
    assert float((tiled - whole).abs().max()) <= 1e-4
    # The halo matters: without it the tile seams would differ.
    assert net.receptive_radius == 6


def test_median_of_even_and_odd_counts() -> None:
    stack = torch.tensor([[1.0], [5.0], [2.0], [4.0]])
    assert float(median(stack)[0]) == pytest.approx(3.0)
    assert float(median(stack[:3])[0]) == pytest.approx(2.0)
    assert float(median(stack[:1])[0]) == pytest.approx(1.0)


@pytest.mark.parametrize("kernel", [None, np.ones((3, 3))])
def test_back_projection_reduces_the_lr_error(kernel: np.ndarray | None) -> None:
    hr = torch.from_numpy(structured(48)).float()[None]
    dk = None if kernel is None else prepare_kernel(kernel, (3.0, 3.0))
    lr = degrade(hr, (3.0, 3.0), dk)
    sr = imresize(lr, 3.0, hr.shape[-2:])
    before = float((degrade(sr, (3.0, 3.0), dk) - lr).abs().mean())
    after_sr = back_project(sr, lr, (3.0, 3.0), dk, 8, vmax=1.0)
    after = float((degrade(after_sr, (3.0, 3.0), dk) - lr).abs().mean())
    assert after < 0.5 * before
    assert float(after_sr.min()) >= 0.0 and float(after_sr.max()) <= 1.0


# --- fit / predict ---------------------------------------------------------------------------


def test_fit_returns_a_trained_model() -> None:
    img = structured(32)[None].astype(np.float32)
    seen: list[Progress] = []
    model = fit([img], 2.0, config=TINY, device="cpu", callback=seen.append)
    assert isinstance(model, TrainedModel)
    assert model.scale == (2.0, 2.0)
    assert model.iterations == TINY.max_iters
    assert model.device == torch.device("cpu")
    assert len(model.transforms) == 8
    assert model.final_loss is not None and math.isfinite(model.final_loss)
    assert [h[0] for h in model.history] == [5, 10, 15, 20]
    assert [p.iteration for p in seen] == [0, 5, 10, 15, 20]
    assert all(p.stage == "train" and p.max_iterations == 20 for p in seen)


def test_fit_is_deterministic_for_a_seed() -> None:
    img = structured(32)[None].astype(np.float32)
    cfg = TINY.replace(noise_std=0.01, max_iters=10)
    a = fit([img], 2.0, config=cfg, device="cpu", seed=3)
    b = fit([img], 2.0, config=cfg, device="cpu", seed=3)
    c = fit([img], 2.0, config=cfg, device="cpu", seed=4)
    for pa, pb, pc in zip(a.net.parameters(), b.net.parameters(), c.net.parameters()):
        assert torch.equal(pa, pb)
        assert not torch.equal(pa, pc)


@pytest.mark.parametrize(
    ("shape", "scale", "expected"),
    [
        ((1, 24, 24), 2.0, (1, 48, 48)),
        ((3, 20, 17), (1.5, 2.5), (3, 30, 43)),
        ((2, 16, 16), (2.0, 3.0), (2, 32, 48)),
    ],
)
def test_predict_shape(shape: tuple, scale: object, expected: tuple) -> None:
    img = np.random.default_rng(0).random(shape).astype(np.float32)
    model = fit([img], scale, config=TINY.replace(max_iters=5), device="cpu")
    out = predict(model, img)
    assert out.shape == expected
    assert out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_fit_one_axis_scale_with_a_one_row_kernel() -> None:
    img = structured(24)[None].astype(np.float32)
    kernel = np.array([[1.0, 2.0, 3.0, 2.0, 1.0]])
    model = fit([img], (1.0, 3.0), kernel=kernel, config=TINY.replace(max_iters=5), device="cpu")
    assert model.kernel is not None and model.kernel.shape[0] == 1
    assert all(not t for t, _, _ in model.transforms)
    out = predict(model, img)
    assert out.shape == (1, 24, 72)


def test_fit_on_several_fathers_and_bad_fathers() -> None:
    planes = [structured(24, seed=s)[None].astype(np.float32) for s in range(3)]
    model = fit(planes, 2.0, config=TINY.replace(max_iters=5), device="cpu")
    assert predict(model, planes[1]).shape == (1, 48, 48)
    with pytest.raises(ValueError, match="at least one"):
        fit([], 2.0, config=TINY, device="cpu")
    with pytest.raises(ValueError, match="same number of channels"):
        fit([planes[0], np.zeros((2, 24, 24), np.float32)], 2.0, config=TINY, device="cpu")


@pytest.mark.parametrize("ensemble", [False, True])
def test_predict_tiled_equals_untiled(ensemble: bool) -> None:
    img = np.random.default_rng(1).random((1, 48, 48)).astype(np.float32)
    cfg = TINY.replace(max_iters=10, self_ensemble=ensemble, back_projection_iters=2)
    model = fit([img], 2.0, config=cfg, device="cpu")
    whole = predict(dataclasses.replace(model, config=cfg.replace(tile_size=512)), img)
    tiled = predict(dataclasses.replace(model, config=cfg.replace(tile_size=32)), img)
    assert whole.shape == tiled.shape == (1, 96, 96)
    assert float(np.abs(whole - tiled).max()) <= 1e-4


def test_predict_reports_and_can_be_cancelled() -> None:
    img = np.random.default_rng(1).random((1, 24, 24)).astype(np.float32)
    model = fit([img], 2.0, config=TINY.replace(max_iters=5, self_ensemble=True), device="cpu")
    seen: list[Progress] = []
    predict(model, img, callback=seen.append)
    assert [p.stage for p in seen] == ["infer"] * 8
    assert [p.iteration for p in seen] == list(range(8))
    with pytest.raises(Cancelled):
        predict(model, img, callback=lambda p: False)


def test_upscale_plane_gradual_steps() -> None:
    img = structured(24)[None].astype(np.float32)
    seen: list[Progress] = []
    out, model = upscale_plane(
        img,
        4.0,
        config=TINY.replace(max_iters=5, gradual_scales=(2.0,)),
        device="cpu",
        callback=seen.append,
    )
    assert out.shape == (1, 96, 96)
    assert model.scale == (2.0, 2.0)  # the last step is x2 relative to the x2 result
    assert model.iterations == 10
    assert {p.step for p in seen} == {0, 1}
    assert all(p.n_steps == 2 for p in seen)
    fractions = [p.fraction for p in seen]
    assert fractions == sorted(fractions)


@pytest.mark.parametrize(
    ("from_input", "steps", "scale", "fits", "inputs", "outputs"),
    [
        # chained: each step upscales the previous output by what remains
        (
            False,
            ((1.0, 1.5), (1.5, 1.5)),
            2.0,
            [(1.0, 1.5), (1.5, 1.0), (4 / 3, 4 / 3)],
            [(20, 20), (20, 30), (30, 30)],
            [(20, 30), (30, 30), (40, 40)],
        ),
        # the reference's configuration: every step upscales the input itself
        (
            True,
            ((1.0, 1.5), (2.0, 1.5)),
            2.0,
            [(1.0, 1.5), (2.0, 1.5), (2.0, 2.0)],
            [(20, 20), (20, 20), (20, 20)],
            [(20, 30), (40, 30), (40, 40)],
        ),
        # ... except a final factor beyond every step, reached from the largest step
        (
            True,
            ((1.0, 1.5), (1.5, 1.5)),
            3.0,
            [(1.0, 1.5), (1.5, 1.5), (2.0, 2.0)],
            [(20, 20), (20, 20), (30, 30)],
            [(20, 30), (30, 30), (60, 60)],
        ),
    ],
)
def test_gradual_steps_chained_or_from_the_input(
    monkeypatch, from_input, steps, scale, fits, inputs, outputs
) -> None:
    """Which image each gradual step upscales, by which factor, with which back-projection."""
    import napari_zssr.core.engine as engine

    seen_fits: list[tuple[float, float]] = []
    seen_predicts: list[tuple[tuple[int, ...], tuple[int, ...], int]] = []
    pools: list[list[tuple[float, float]]] = []
    real_fit, real_predict = engine.fit, engine.predict

    def spy_fit(fathers, scale, **kw):
        seen_fits.append(tuple(scale))
        pools.append([src.base for src in kw["extra_sources"]])
        return real_fit(fathers, scale, **kw)

    def spy_predict(model, lr, **kw):
        out = real_predict(model, lr, **kw)
        seen_predicts.append(
            (tuple(lr.shape[-2:]), tuple(out.shape[-2:]), model.config.back_projection_iters)
        )
        return out

    monkeypatch.setattr(engine, "fit", spy_fit)
    monkeypatch.setattr(engine, "predict", spy_predict)
    cfg = TINY.replace(
        max_iters=3,
        gradual_scales=steps,
        gradual_back_projection_iters=(2, 3),
        back_projection_iters=4,
        gradual_from_input=from_input,
    )
    img = structured(20)[None].astype(np.float32)
    out, _ = upscale_plane(img, scale, config=cfg, device="cpu")
    assert out.shape == (1, *outputs[-1])
    assert seen_fits == [pytest.approx(f) for f in fits]
    assert [i for i, _, _ in seen_predicts] == inputs
    assert [o for _, o, _ in seen_predicts] == outputs
    assert [bp for _, _, bp in seen_predicts] == [2, 3, 4]
    assert pools == [[], [steps[0]], list(steps)]


def test_fathers_from_anisotropic_outputs_are_isotropic_on_the_input_grid() -> None:
    """An output of a (1.5, 2) step is resized by (f / 1.5, f / 2): every father, whatever
    its source, has one scale f relative to the input, at most the largest step's min."""
    src = FatherSource(torch.rand(1, 40, 40))
    out = FatherSource(torch.rand(1, 60, 80), base=(1.5, 2.0))
    cfg = ZSSRConfig(crop_size=16)
    sampler = FatherSampler(
        [src, out], (16, 16), cfg, [(False, False, False)], np.random.default_rng(1)
    )
    seen = set()
    for _ in range(200):
        chosen, (ry, rx) = sampler._draw()
        fy, fx = ry * chosen.base[0], rx * chosen.base[1]
        assert fy == pytest.approx(fx)
        assert cfg.min_father_scale - 1e-9 <= fy <= 1.5 + 1e-9
        seen.add(chosen is out)
    assert seen == {True, False}
    assert sampler.sample(4).shape == (4, 1, 16, 16)


@pytest.mark.parametrize("shape", [(36, 36), (34, 51), (47, 31)])
def test_every_father_has_the_crop_shape_with_anisotropic_sources(shape) -> None:
    """Outputs of anisotropic steps (1, 1.5), (1.5, 1), ... are resized by f / base per
    axis: the smallest scale f must let the crop fit on both axes, whatever the input's
    aspect ratio (a short father trains on a wrong-sized pair, and breaks the CUDA graph)."""
    h, w = shape
    cfg = ZSSRConfig(crop_size=32)
    sources = [FatherSource(torch.rand(1, h, w))]
    rng = np.random.default_rng(0)
    for base in ((1.0, 1.5), (1.5, 1.0), (1.5, 1.5), (1.5, 2.0), (2.0, 1.5)):
        crop = crop_shape(cfg.crop_size, base, shape)
        sampler = FatherSampler(sources, crop, cfg, [(False, False, False)], rng)
        for _ in range(300):
            assert tuple(sampler._one().shape[-2:]) == crop, (base, crop)
        sources.append(FatherSource(torch.rand(1, round(h * base[0]), round(w * base[1])), base))


def test_gradual_result_is_back_projected_onto_the_input() -> None:
    """After gradual steps the output reproduces the input itself through the whole factor."""
    img = structured(24)[None].astype(np.float32)
    cfg = TINY.replace(max_iters=5, gradual_scales=(2.0,), back_projection_iters=10)
    out, _ = upscale_plane(img, 4.0, config=cfg, device="cpu")
    down = imresize(torch.from_numpy(out), 0.25, img.shape[-2:]).numpy()
    residual = float(np.abs(down - img).mean())
    # 3.0e-3 here; without the final back-projection onto the input 7.2e-3 (the last step
    # only matches the first step's output, errors included)
    assert residual < 5e-3, residual


def test_reporter_fraction_and_cancellation() -> None:
    seen: list[Progress] = []
    rep = Reporter(seen.append, n_planes=4)
    rep.plane, rep.step, rep.n_steps = 2, 1, 2
    rep("train", 0.5, iteration=3)
    assert seen[-1].fraction == pytest.approx((2 + 0.75) / 4)
    assert (seen[-1].plane, seen[-1].n_planes, seen[-1].step, seen[-1].n_steps) == (2, 4, 1, 2)
    rep("train", 7.0)  # clamped to the end of this plane's last step
    assert seen[-1].fraction == pytest.approx(3 / 4)
    rep.plane = 3
    rep("done", 1.0)
    assert seen[-1].fraction == pytest.approx(1.0)
    assert seen[-1].elapsed >= 0.0
    with pytest.raises(Cancelled):
        Reporter(lambda p: False)("train", 0.0)
    Reporter(lambda p: None)("train", 0.0)  # None means go on


# --- quality ---------------------------------------------------------------------------------


def test_tiny_configuration_beats_bicubic() -> None:
    """ZSSR learns the image's own edges: more than 0.3 dB above bicubic in a few seconds.

    Back-projection is off, so the gain is the network's alone (bicubic + back-projection
    already gains over plain bicubic on this image).
    """
    hr = structured(128)
    lr = imresize(torch.from_numpy(hr), 0.5).numpy().clip(0, 1)
    bicubic = imresize(torch.from_numpy(lr), 2.0).numpy().clip(0, 1)
    cfg = ZSSRConfig(
        max_iters=150, crop_size=32, width=32, self_ensemble=False, back_projection_iters=0
    )
    out = super_resolve(lr.astype(np.float32), 2, config=cfg, device="cpu", seed=0)
    assert out.shape == hr.shape
    gain = psnr(out, hr) - psnr(bicubic, hr)
    assert gain > 0.3, f"ZSSR gained only {gain:.2f} dB over bicubic"


def test_native_fathers_are_unresampled_crops_of_the_source() -> None:
    """native_prob=1: every father is a crop of the source's own pixels, dihedrally moved."""
    src = torch.arange(40 * 50, dtype=torch.float32).reshape(1, 40, 50) / 2000.0
    tfs = [(t, fy, fx) for t in (False, True) for fy in (False, True) for fx in (False, True)]
    cfg = ZSSRConfig(native_prob=1.0, crop_size=16)
    sampler = FatherSampler([FatherSource(src)], (16, 16), cfg, tfs, np.random.default_rng(0))
    flat = src.flatten()
    for _ in range(20):
        crop = sampler.sample()[0, 0]
        # undo whichever transform was drawn: one of them gives a block of the source
        found = False
        for tf in tfs:
            block = undo_dihedral(crop[None], tf)[0]
            y0, x0 = divmod(int(torch.argmin((flat - block[0, 0]).abs())), 50)
            if (
                y0 + 16 <= 40
                and x0 + 16 <= 50
                and torch.equal(block, src[0, y0 : y0 + 16, x0 : x0 + 16])
            ):
                found = True
                break
        assert found
    # without it (the default) fathers are resampled: values off the source grid appear
    resampled = FatherSampler(
        [FatherSource(src)], (16, 16), ZSSRConfig(crop_size=16), tfs, np.random.default_rng(0)
    ).sample(8)
    assert not torch.isin(resampled, src).all()


# --- context around the fathers ----------------------------------------------------------------


def _gaussian_kernel(n: int, sigma: float) -> np.ndarray:
    r = np.arange(n) - (n - 1) / 2
    k = np.exp(-(r[:, None] ** 2 + r[None] ** 2) / (2 * sigma**2))
    return k / k.sum()


def test_context_margin_covers_the_reach_in_whole_lr_pixels() -> None:
    # half the kernel (15) + the bicubic upscale's 2 s (4) + 1, a multiple of 2
    assert context_margin((2, 2), (30, 30), (64, 64), (128, 128)) == (20, 20)
    # x1.5: only even LR counts give whole HR pixels (3, 6, 9...); 4.5 + 3 + 1 -> 9
    assert context_margin((1.5, 1.5), (9, 9), (63, 63), (200, 200)) == (9, 9)
    # a small source: what fits, still whole LR pixels, and nothing on a full-size crop
    assert context_margin((2, 2), (30, 30), (64, 64), (96, 96)) == (16, 16)
    assert context_margin((2, 3), (11, 13), (64, 63), (64, 300)) == (0, 15)


def test_a_son_with_context_is_the_degradation_of_real_content() -> None:
    """With kernel_context, the network's input for a father is what degrading the whole
    image would give there; without it, the crop's son is blurred into mirrored content."""
    img = structured(96).astype(np.float32)
    sc = (2.0, 2.0)
    dk = prepare_kernel(_gaussian_kernel(13, 2.0), sc, img.shape)
    cfg = TINY.replace(crop_size=32, kernel_context=True)
    run = prepare_run([img], sc, kernel=dk, config=cfg, device=torch.device("cpu"))
    m = run.margin[0]
    assert run.margin == context_margin(sc, dk.shape, (32, 32), img.shape) and m > dk.shape[0] / 2
    assert run.sampler.crop == (32 + 2 * m, 32 + 2 * m)
    full = torch.from_numpy(img)[None]
    whole = imresize(degrade(full, sc, dk), sc, img.shape)  # every son pixel from real content
    y0, x0 = 20, 30  # even: the cut's son grid is the whole image's
    cut = full[:, y0 : y0 + 32 + 2 * m, x0 : x0 + 32 + 2 * m]
    inp, hr = run.training_pair(cut[None])
    assert inp.shape == hr.shape == (1, 1, 32, 32)  # the network's cost is the crop's
    want = whole[:, y0 + m : y0 + m + 32, x0 + m : x0 + m + 32]
    torch.testing.assert_close(hr[0], full[:, y0 + m : y0 + m + 32, x0 + m : x0 + m + 32])
    torch.testing.assert_close(inp[0], want, atol=1e-5, rtol=0)
    plain = prepare_run(
        [img], sc, kernel=dk, config=cfg.replace(kernel_context=False), device=torch.device("cpu")
    )
    assert plain.margin == (0, 0) and plain.sampler.crop == (32, 32)
    inp0, _ = plain.training_pair(full[None, :, y0 + m : y0 + m + 32, x0 + m : x0 + m + 32])
    assert float((inp0[0] - want).abs().max()) > 0.02


def test_kernel_context_trains_on_crops_of_the_configured_size() -> None:
    img = structured(64).astype(np.float32)
    seen: list[tuple[int, ...]] = []
    cfg = TINY.replace(crop_size=24, kernel_context=True, max_iters=3)
    model = fit([img], 2, kernel=_gaussian_kernel(9, 1.5), config=cfg, device="cpu")
    hook = model.net.register_forward_pre_hook(lambda _m, a: seen.append(tuple(a[0].shape)))
    try:
        fit([img], 2, kernel=_gaussian_kernel(9, 1.5), config=cfg, device="cpu", model=model)
    finally:
        hook.remove()
    train_shapes = {s for s in seen if s[-1] == 24}
    assert train_shapes == {(1, 1, 24, 24)}


def test_with_a_kernel_fathers_can_be_cut_at_the_input_scale_only() -> None:
    """kernel_min_father_scale=1: with a kernel and noise on the sons every father is a crop
    of the input's own pixels (no warp here); the bicubic model, and a clean input (no noise
    on the sons), keep min_father_scale's resized fathers."""
    img = structured(64).astype(np.float32)
    cfg = TINY.replace(crop_size=16, kernel_min_father_scale=1.0, affine_prob=0.0, noise_std=0.02)
    dk = prepare_kernel(_gaussian_kernel(7, 1.0), (2, 2), img.shape)
    src = torch.from_numpy(img)
    cpu = torch.device("cpu")
    native = prepare_run([img], (2, 2), kernel=dk, config=cfg, device=cpu).sampler.sample(16)
    assert torch.isin(native, src).all()
    bicubic = prepare_run([img], (2, 2), kernel=None, config=cfg, device=cpu).sampler.sample(16)
    assert not torch.isin(bicubic, src).all()
    resized = prepare_run(
        [img], (2, 2), kernel=dk, config=cfg.replace(kernel_min_father_scale=None), device=cpu
    ).sampler.sample(16)
    assert not torch.isin(resized, src).all()
    clean = prepare_run(
        [img], (2, 2), kernel=dk, config=cfg.replace(noise_std=0.0), device=cpu
    ).sampler.sample(16)
    assert not torch.isin(clean, src).all()
