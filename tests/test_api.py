"""The public entry point ``napari_zssr.super_resolve``: shapes, dtypes, errors, progress."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
import torch

import napari_zssr
from napari_zssr import PRESETS, Cancelled, Progress, ZSSRConfig, super_resolve

TINY = ZSSRConfig(
    max_iters=10,
    crop_size=16,
    width=8,
    self_ensemble=False,
    back_projection_iters=1,
    eval_every=5,
    report_every=5,
)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def run(image: np.ndarray, scale: object = 2, **kw: object) -> np.ndarray:
    kw.setdefault("config", TINY)
    kw.setdefault("device", "cpu")
    return super_resolve(image, scale, **kw)  # type: ignore[arg-type]


def pattern(
    shape: tuple[int, ...],
    dtype: np.dtype | type = np.float32,
    seed: int = 0,
    lo: float = 0.0,
    hi: float = 1.0,
) -> np.ndarray:
    """Smooth structure plus a little noise, spanning [lo, hi], cast to ``dtype``."""
    rng = np.random.default_rng(seed)
    grids = np.indices(shape, dtype=np.float64)
    img = np.sin(0.7 * grids[-1] + 0.3 * grids[-2]) + 0.3 * rng.random(shape)
    for k, g in enumerate(grids[:-2]):
        img += 0.2 * (k + 1) * g
    img = (img - img.min()) / (img.max() - img.min())
    return (lo + img * (hi - lo)).astype(dtype)


# --- package surface -------------------------------------------------------------------------


def test_import_does_not_import_torch() -> None:
    code = (
        "import sys, napari_zssr\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "napari_zssr.PRESETS['fast']; napari_zssr.ZSSRConfig(); napari_zssr.Progress('train')\n"
        "assert 'torch' not in sys.modules, 'torch imported by the light names'\n"
        "print('ok')\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok"


def test_lazy_attribute() -> None:
    assert napari_zssr.super_resolve is super_resolve
    with pytest.raises(AttributeError, match="no_such_name"):
        napari_zssr.no_such_name  # noqa: B018


def test_presets() -> None:
    assert set(PRESETS) >= {"fast", "balanced", "paper", "real"}
    fast, balanced, paper, real = (PRESETS[k] for k in ("fast", "balanced", "paper", "real"))
    assert fast.max_iters < balanced.max_iters < paper.max_iters
    assert fast.crop_size <= balanced.crop_size <= paper.crop_size
    assert fast.width <= paper.width
    assert paper.self_ensemble and paper.back_projection_iters == 10
    assert real.noise_std == pytest.approx(0.0125)
    assert not real.self_ensemble
    assert fast.back_projection_iters < paper.back_projection_iters
    assert all(p.noise_std == 0.0 for k, p in PRESETS.items() if k != "real")
    # the reference's gradual x2 configuration: six steps from the input, 6 to 12 BP; in
    # `paper` for factors above 2 only, so that x2 stays the reference's one jump
    grad = PRESETS["paper-gradual"]
    assert grad.gradual_from_input and grad.back_projection_iters == 12
    assert grad.gradual_scales == ((1, 1.5), (1.5, 1), (1.5, 1.5), (1.5, 2), (2, 1.5), (2, 2))
    assert grad.gradual_back_projection_iters == (6, 6, 8, 10, 10, 12)
    assert grad == paper.replace(gradual_above=1.0, back_projection_iters=12)
    assert paper.gradual_above == 2.0


@pytest.mark.parametrize(
    ("preset", "scale", "n_steps"), [("paper", 2, 1), ("paper", 2.5, 7), ("paper-gradual", 2, 6)]
)
def test_paper_presets_steps(preset: str, scale: float, n_steps: int) -> None:
    cfg = PRESETS[preset].replace(max_iters=2, width=8, crop_size=16, self_ensemble=False)
    seen: list[Progress] = []
    out = run(pattern((16, 16)), scale, config=cfg, callback=seen.append)
    assert out.shape == (math.ceil(16 * scale),) * 2
    assert {p.n_steps for p in seen} == {n_steps}


def test_paper_gradual_without_steps_is_one_jump() -> None:
    """The CLI's --one-jump, the widget's checkbox and stack-wide training drop the steps."""
    one = PRESETS["paper-gradual"].replace(gradual_scales=())
    out = run(pattern((16, 16)), 2, config=one.replace(max_iters=2, width=8, crop_size=16))
    assert out.shape == (32, 32)


def test_config_gradual_steps_normalised_and_json_round_trip() -> None:
    cfg = ZSSRConfig(
        gradual_scales=[2, [1, 1.5], np.float32(3)], gradual_back_projection_iters=[1, 2, 3]
    )
    assert cfg.gradual_scales == (2.0, (1.0, 1.5), 3.0)
    assert cfg.gradual_back_projection_iters == (1, 2, 3)
    d = json.loads(json.dumps(cfg.to_dict()))
    d.pop("extra")
    assert ZSSRConfig(**d) == cfg
    hash(cfg)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"gradual_scales": (1.0,)}, "gradual_scales entries"),
        ({"gradual_scales": ((1, 1),)}, "gradual_scales entries"),
        ({"gradual_scales": ((1.5,),)}, "gradual_scales entries"),
        ({"gradual_scales": ((2, 0.5),)}, "gradual_scales entries"),
        ({"gradual_scales": (float("nan"),)}, "gradual_scales entries"),
        ({"gradual_scales": ("2",)}, "gradual_scales entries"),
        ({"gradual_scales": ((1, 1.5), (1.5, 1))}, "cannot shrink an axis"),
        ({"gradual_scales": (2.0,), "gradual_back_projection_iters": (1, 2)}, "one entry per"),
        ({"gradual_scales": (2.0,), "gradual_back_projection_iters": (-1,)}, ">= 0"),
    ],
)
def test_config_rejects_bad_gradual_steps(changes: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ZSSRConfig(**changes)


# --- shapes and dtypes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "kw", "scale", "expected"),
    [
        ((16, 20), {}, 2, (32, 40)),
        ((16, 20), {}, 1.5, (24, 30)),
        ((15, 17), {}, 2.5, (38, 43)),
        ((16, 20), {}, (2, 3), (32, 60)),
        ((2, 16, 16), {}, 2, (2, 32, 32)),
        ((2, 2, 12, 10), {}, 2, (2, 2, 24, 20)),
        ((2, 16, 12), {"channel_axis": 0}, 2, (2, 32, 24)),
        ((3, 2, 12, 12), {"channel_axis": 1}, (1.5, 2), (3, 2, 18, 24)),
        ((2, 3, 12, 12), {"channel_axis": -3}, 2, (2, 3, 24, 24)),
        ((16, 12, 3), {"rgb": True}, 2, (32, 24, 3)),
        ((12, 16, 4), {"rgb": True}, 1.5, (18, 24, 4)),
        ((2, 12, 12, 3), {"rgb": True}, 2, (2, 24, 24, 3)),
    ],
)
def test_output_shape(shape: tuple, kw: dict, scale: object, expected: tuple) -> None:
    img = pattern(shape)
    out = run(img, scale, **kw)
    assert out.shape == expected
    assert out.dtype == img.dtype


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.float32, np.float64])
def test_dtypes_and_ranges(dtype: type) -> None:
    if np.dtype(dtype).kind == "f":
        img = pattern((16, 16), dtype, lo=-3.5, hi=120.25)
    elif dtype is np.int16:
        img = pattern((16, 16), dtype, lo=-30000, hi=30000)
    else:
        info = np.iinfo(dtype)
        img = pattern((16, 16), dtype, lo=info.min, hi=info.max)  # the whole range: ringing
    out = run(img, 2, config=TINY.replace(back_projection_iters=3))
    assert out.dtype == img.dtype
    assert out.shape == (32, 32)
    assert out.min() >= img.min() and out.max() <= img.max()
    # The output resembles the input: its mean is close.
    assert abs(float(out.mean()) - float(img.mean())) < 0.05 * (float(img.max()) - float(img.min()))


def test_rgb_uint8_and_float_channels_stay_in_their_own_range() -> None:
    rgb = pattern((16, 16, 3), np.uint8, lo=0, hi=255)
    out = run(rgb, 2, rgb=True)
    assert out.dtype == np.uint8 and out.shape == (32, 32, 3)
    # Two float channels of very different ranges, one with a strong outlier.
    n = 112
    img = np.zeros((2, n, n), np.float32)
    img[0] = np.random.default_rng(0).random((n, n))
    img[0, 5, 5] = 100.0
    y, x = np.indices((n, n))
    img[1] = ((x // 16 + y // 16) % 2).astype(np.float32)  # sharp edges: bicubic overshoots
    out = run(img, 2, channel_axis=0, config=TINY.replace(back_projection_iters=0))
    for c in range(2):
        assert out[c].min() >= img[c].min() and out[c].max() <= img[c].max()


def test_other_dtypes() -> None:
    for dtype in (np.int32, np.uint32, np.float16, np.dtype(">f4")):
        img = pattern((12, 12), dtype, lo=0, hi=1000)
        out = run(img, 2)
        assert out.dtype == np.dtype(dtype) and out.shape == (24, 24)


def test_constant_image_stays_constant() -> None:
    img = np.full((12, 12), 1234, dtype=np.uint16)
    out = run(img, 2)
    assert np.all(out == 1234)


# --- reproducibility and input safety --------------------------------------------------------


def test_same_seed_same_output_different_seed_different() -> None:
    img = pattern((16, 16), np.float32)
    cfg = TINY.replace(noise_std=0.01)
    a = run(img, 2, config=cfg, seed=1)
    b = run(img, 2, config=cfg, seed=1)
    c = run(img, 2, config=cfg, seed=2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize(
    ("shape", "kw"),
    [((16, 16), {}), ((16, 16, 3), {"rgb": True}), ((2, 3, 12, 12), {"channel_axis": 1})],
)
def test_input_is_not_modified(shape: tuple, kw: dict) -> None:
    img = pattern(shape, np.uint16, lo=0, hi=4000)
    copy = img.copy()
    names = ("C_CONTIGUOUS", "F_CONTIGUOUS", "OWNDATA", "WRITEABLE", "ALIGNED")
    flags = {k: img.flags[k] for k in names}
    run(img, 2, **kw)
    np.testing.assert_array_equal(img, copy)
    assert {k: img.flags[k] for k in names} == flags


def test_read_only_and_non_contiguous_inputs() -> None:
    base = pattern((20, 24), np.float32)
    ro = base.copy()
    ro.flags.writeable = False
    expected = run(ro, 2)
    assert not ro.flags.writeable
    np.testing.assert_array_equal(run(base, 2), expected)
    view = np.ascontiguousarray(base.T).T  # Fortran order, same values
    assert not view.flags.c_contiguous
    np.testing.assert_array_equal(run(view, 2), expected)
    strided = np.zeros((20, 48), np.float32)
    strided[:, ::2] = base
    np.testing.assert_array_equal(run(strided[:, ::2], 2), expected)


# --- stacks ----------------------------------------------------------------------------------


def test_stack_modes() -> None:
    stack = pattern((3, 16, 16), np.uint16, lo=100, hi=3000)
    per, info_p = run(stack, 2, stack_mode="per_plane", return_info=True)
    shared, info_s = run(stack, 2, stack_mode="shared", return_info=True)
    assert per.shape == shared.shape == (3, 32, 32)
    assert per.dtype == shared.dtype == np.uint16
    assert info_p["iterations"] == 3 * TINY.max_iters
    # shared: one training, then a short fine-tuning on each plane
    assert TINY.plane_finetune_iters == TINY.max_iters // 10
    assert info_s["iterations"] == 2 * TINY.max_iters + 3 * TINY.plane_finetune_iters
    # Planes differ, so their outputs differ too.
    assert not np.array_equal(shared[0], shared[2])
    with pytest.raises(ValueError, match="stack_mode"):
        run(stack, 2, stack_mode="joint")


def test_shared_mode_with_channels_and_many_planes() -> None:
    rgb = pattern((2, 12, 12, 3), np.uint8, lo=0, hi=255)
    assert run(rgb, 2, rgb=True, stack_mode="shared").shape == (2, 24, 24, 3)
    chans = pattern((2, 3, 12, 12), np.float32)
    out = run(chans, 1.5, channel_axis=0, stack_mode="shared")
    assert out.shape == (2, 3, 18, 18)
    many = pattern((20, 8, 8), np.uint16, lo=0, hi=1000)  # more planes than father planes
    out, info = run(many, 2, stack_mode="shared", return_info=True)
    assert out.shape == (20, 16, 16)
    assert info["n_planes"] == 20
    assert info["iterations"] == 2 * TINY.max_iters + 20 * TINY.plane_finetune_iters
    # A single plane in shared mode is simply processed on its own.
    np.testing.assert_array_equal(run(many[:1], 2, stack_mode="shared"), run(many[:1], 2))


def test_shared_mode_fine_tuning() -> None:
    """finetune_iters sets the per-plane adaptation; 0 applies the shared network as it is."""
    stack = pattern((3, 16, 16), np.uint16, lo=100, hi=3000)
    assert run(stack, 2).shape == (3, 32, 32)  # shared is the default for stacks
    _, info0 = run(stack, 2, config=TINY.replace(finetune_iters=0), return_info=True)
    _, info4 = run(stack, 2, config=TINY.replace(finetune_iters=4), return_info=True)
    assert info0["stack_mode"] == "shared"
    assert info0["iterations"] == 2 * TINY.max_iters  # TINY's min_iters: no early stop
    assert info4["iterations"] == 2 * TINY.max_iters + 3 * 4
    assert TINY.replace(finetune_iters=0).plane_finetune_iters == 0
    with pytest.raises(ValueError, match="finetune_iters"):
        TINY.replace(finetune_iters=-1)
    # the same seed gives the same fine-tuned result
    a = run(stack, 2, config=TINY.replace(finetune_iters=4), seed=3)
    b = run(stack, 2, config=TINY.replace(finetune_iters=4), seed=3)
    np.testing.assert_array_equal(a, b)


def test_planes_are_processed_independently_per_plane() -> None:
    """In per-plane mode each plane's result equals the result of that plane alone."""
    stack = pattern((2, 16, 16), np.uint8, lo=0, hi=255)
    both = run(stack, 2, seed=5, stack_mode="per_plane")
    alone = run(stack[1], 2, seed=5)
    np.testing.assert_array_equal(both[1], alone)


# --- progress and cancellation ---------------------------------------------------------------


@pytest.mark.parametrize("stack_mode", ["per_plane", "shared"])
def test_progress_reports_are_sane(stack_mode: str) -> None:
    seen: list[Progress] = []
    stack = pattern((2, 16, 16))
    run(
        stack,
        2,
        callback=seen.append,
        config=TINY.replace(self_ensemble=True),
        stack_mode=stack_mode,
    )
    assert seen[-1].stage == "done" and seen[-1].fraction == pytest.approx(1.0)
    assert {p.stage for p in seen} <= {"prepare", "train", "infer", "done"}
    assert {"train", "infer"} <= {p.stage for p in seen}
    fractions = [p.fraction for p in seen]
    assert all(0.0 <= f <= 1.0 for f in fractions)
    assert fractions == sorted(fractions)
    elapsed = [p.elapsed for p in seen]
    assert elapsed == sorted(elapsed) and elapsed[0] >= 0.0
    n = 2 if stack_mode == "per_plane" else 3  # shared: training counts as one more step
    assert {p.plane for p in seen} == set(range(n))
    assert all(p.n_planes == n for p in seen)
    for p in seen:
        assert 0 <= p.iteration <= max(p.max_iterations, p.iteration)
        if p.stage == "train":
            allowed = (TINY.max_iters, 2 * TINY.max_iters, max(TINY.plane_finetune_iters, 1))
            assert p.max_iterations in allowed
            assert p.lr is not None and p.lr > 0
            assert p.loss is None or (math.isfinite(p.loss) and p.loss >= 0)
    assert any(p.stage == "train" and p.loss is not None for p in seen)


def test_callback_returning_false_cancels_promptly() -> None:
    calls: list[Progress] = []

    def callback(p: Progress) -> bool:
        calls.append(p)
        return len(calls) < 2  # go on after the first report, stop at the second

    cfg = TINY.replace(max_iters=10_000, report_every=2)
    t0 = time.perf_counter()
    with pytest.raises(Cancelled):
        run(pattern((3, 16, 16)), 2, config=cfg, callback=callback)
    assert time.perf_counter() - t0 < 20.0
    assert len(calls) == 2
    assert calls[-1].stage == "train" and calls[-1].iteration <= 2


def test_callback_raising_cancelled() -> None:
    def callback(p: Progress) -> None:
        if p.iteration >= 5:
            raise Cancelled("stop")

    with pytest.raises(Cancelled, match="stop"):
        run(pattern((16, 16)), 2, config=TINY.replace(max_iters=10_000), callback=callback)


def test_callback_errors_propagate() -> None:
    def callback(p: Progress) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        run(pattern((16, 16)), 2, callback=callback)


# --- metadata --------------------------------------------------------------------------------


def test_return_info() -> None:
    img = pattern((10, 12), np.uint16, lo=10, hi=2000)
    out, info = super_resolve(
        img, (2, 1.5), preset="fast", device="cpu", seed=7, return_info=True, noise_std=0.02
    )
    assert out.shape == (20, 18)
    for key in (
        "config",
        "preset",
        "scale",
        "device",
        "device_reason",
        "seconds",
        "final_loss",
        "iterations",
        "kernel",
        "noise_std",
        "seed",
        "version",
    ):
        assert key in info, key
    json.dumps(info)  # JSON-able
    assert info["preset"] == "fast"
    assert info["scale"] == [2.0, 1.5]
    assert info["device"] == "cpu" and isinstance(info["device_reason"], str)
    assert info["seed"] == 7
    assert info["noise_std"] == pytest.approx(0.02)
    assert info["config"]["noise_std"] == pytest.approx(0.02)
    assert info["config"]["max_iters"] == PRESETS["fast"].max_iters
    assert 0 < info["iterations"] <= PRESETS["fast"].max_iters
    assert info["seconds"] > 0 and math.isfinite(info["final_loss"])
    assert info["version"] == napari_zssr.__version__
    assert info["kernel"] is None and "bicubic" in info["kernel_summary"].lower()


def test_info_with_config_and_kernel() -> None:
    img = pattern((16, 16))
    kernel = np.outer([1, 2, 1], [1, 2, 1]).astype(float)
    out, info = run(img, 2, kernel=kernel, return_info=True)
    assert out.shape == (32, 32)
    assert info["preset"] is None
    assert info["config"]["max_iters"] == TINY.max_iters
    summary = info["kernel_summary"]
    assert re.search(r"\d+x\d+", summary) and "FWHM" in summary
    # the kernel the sons were made with: the given one, normalised and centred for x2
    from napari_zssr.core.kernels import prepare_kernel

    assert info["kernel"].sum() == pytest.approx(1.0)
    np.testing.assert_array_equal(info["kernel"], prepare_kernel(kernel, (2.0, 2.0)).weights)
    # the noise left unset is the image's estimate, also with an explicit config
    assert info["noise_std_source"] == "auto"
    assert info["noise_std"] == info["noise_estimate"] > 0


def test_noise_std_none_keeps_the_configured_value() -> None:
    img = pattern((16, 16))
    real = PRESETS["real"].replace(max_iters=3, width=8, crop_size=16)
    _, info = run(img, 2, config=real, return_info=True)
    assert info["noise_std"] == pytest.approx(0.0125)
    _, info = run(img, 2, config=real, noise_std=0.0, return_info=True)
    assert info["noise_std"] == 0.0
    assert napari_zssr.resolve_config("real").noise_std == pytest.approx(0.0125)


@pytest.mark.parametrize(
    ("kernel", "scale", "expected"),
    [
        (np.ones((3, 3)), 2.5, (40, 40)),
        (np.outer([1, 3, 1], [1, 2, 3, 2, 1]), (2, 3), (32, 48)),
        (np.array([[1.0, 2.0, 3.0, 2.0, 1.0]]), (1, 3), (16, 48)),
        # As large as the plane: centring may enlarge it, which must not be an error.
        (np.ones((15, 15)), 2, (32, 32)),
        (np.ones((16, 16)), 3, (48, 48)),
    ],
)
def test_custom_kernel_scales(kernel: np.ndarray, scale: object, expected: tuple) -> None:
    before = kernel.copy()
    out = run(pattern((16, 16), np.uint16, lo=0, hi=900), scale, kernel=kernel)
    assert out.shape == expected and out.dtype == np.uint16
    np.testing.assert_array_equal(kernel, before)


def test_gradual_scales_per_plane() -> None:
    seen: list[Progress] = []
    out, info = run(
        pattern((16, 16)),
        3,
        config=TINY.replace(gradual_scales=(1.5,)),
        callback=seen.append,
        return_info=True,
    )
    assert out.shape == (48, 48)
    assert info["iterations"] == 2 * TINY.max_iters
    assert {p.step for p in seen if p.stage == "train"} == {0, 1}


def test_gradual_scales_with_kernel_warn() -> None:
    with pytest.warns(UserWarning, match="gradual_scales"):
        out = run(
            pattern((16, 16)), 2, kernel=np.ones((2, 2)), config=TINY.replace(gradual_scales=(1.5,))
        )
    assert out.shape == (32, 32)


def test_preset_gradual_steps_apply_above_x2_only() -> None:
    """The presets reach x4 through x2; x2 stays one jump, and a kernel silently one jump."""
    from napari_zssr import PRESETS

    cfg = PRESETS["fast"].replace(max_iters=4, min_iters=4, crop_size=16, width=8)
    for scale, steps in ((2, {0}), (4, {0, 1})):
        seen: list[Progress] = []
        run(pattern((16, 16)), scale, config=cfg, callback=seen.append)
        assert {p.step for p in seen if p.stage == "train"} == steps
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = run(pattern((24, 24)), 4, kernel=np.ones((4, 4)), preset="fast", config=cfg)
    assert out.shape == (96, 96)


# --- bad input -------------------------------------------------------------------------------

GOOD = pattern((16, 16))


def _with(value: float) -> np.ndarray:
    a = GOOD.copy()
    a[3, 4] = value
    return a


@pytest.mark.parametrize(
    ("image", "scale", "kw", "exc", "match"),
    [
        (_with(np.nan), 2, {}, ValueError, "NaN or Inf"),
        (_with(np.inf), 2, {}, ValueError, "NaN or Inf"),
        (np.zeros((0, 16), np.float32), 2, {}, ValueError, "empty"),
        (np.zeros((16,), np.float32), 2, {}, ValueError, "at least 2 dimensions"),
        (np.zeros((7, 16), np.float32), 2, {}, ValueError, "at least 8 x 8"),
        (np.zeros((2, 16, 5), np.float32), 2, {}, ValueError, "at least 8 x 8"),
        (GOOD, 0.5, {}, ValueError, r"\[1, 16\]"),
        (GOOD, 17, {}, ValueError, r"\[1, 16\]"),
        (GOOD, 1, {}, ValueError, "greater than 1"),
        (GOOD, float("nan"), {}, ValueError, "finite"),
        (GOOD, "2", {}, TypeError, "scale must be a number"),
        (GOOD, (2, 2, 2), {}, ValueError, "scale must be one number or two"),
        (GOOD, None, {}, TypeError, "scale must be a number"),
        (GOOD, 2, {"preset": "ultra", "config": None}, ValueError, "unknown preset"),
        (GOOD, 2, {"preset": None, "config": None}, ValueError, "unknown preset"),
        (GOOD, 2, {"config": {"max_iters": 3}}, TypeError, "ZSSRConfig"),
        (GOOD, 2, {"kernel": np.array([[1.0, np.nan]])}, ValueError, "NaN"),
        (GOOD, 2, {"kernel": np.zeros((3, 3))}, ValueError, "positive sum"),
        (GOOD, 2, {"kernel": -np.ones((3, 3))}, ValueError, "positive sum"),
        (GOOD, 2, {"kernel": np.array([[-1.0, -1.0], [1.5, 1.5]])}, ValueError, "negative"),
        (GOOD, 2, {"kernel": np.ones((17, 3))}, ValueError, "larger than the image"),
        (GOOD, 2, {"kernel": np.ones(5)}, ValueError, "2-D"),
        (GOOD, 2, {"kernel": np.array([["a"]])}, TypeError, "numeric"),
        (GOOD, 2, {"device": "tpu"}, ValueError, "device"),
        (GOOD, 2, {"device": 3}, TypeError, "device"),
        (pattern((2, 16, 16)), 2, {"channel_axis": 5}, ValueError, "out of range"),
        (pattern((2, 16, 16)), 2, {"channel_axis": -4}, ValueError, "out of range"),
        (pattern((2, 16, 16)), 2, {"channel_axis": 1}, ValueError, "spatial axis"),
        (pattern((2, 16, 16)), 2, {"channel_axis": -1}, ValueError, "spatial axis"),
        (pattern((2, 16, 16)), 2, {"channel_axis": 0.0}, TypeError, "channel_axis"),
        (GOOD, 2, {"channel_axis": 0}, ValueError, "spatial axis"),
        (pattern((16, 16, 5)), 2, {"rgb": True}, ValueError, "3 or 4"),
        (pattern((16, 3)), 2, {"rgb": True}, ValueError, "rgb"),
        (pattern((16, 16, 3)), 2, {"rgb": True, "channel_axis": 0}, ValueError, "either rgb"),
        (GOOD > 0.5, 2, {}, TypeError, "boolean"),
        (np.empty((16, 16), dtype=object), 2, {}, TypeError, "object"),
        (GOOD.astype(np.complex64), 2, {}, TypeError, "dtype"),
        (GOOD.tolist(), 2, {}, TypeError, "NumPy array"),
        (GOOD, 2, {"noise_std": -0.1}, ValueError, "noise_std"),
        (GOOD, 2, {"noise_std": float("nan")}, ValueError, "noise_std"),
        (GOOD, 2, {"noise_std": "0.1"}, TypeError, "noise_std"),
        (GOOD, 2, {"seed": 1.5}, TypeError, "seed"),
        (GOOD, 2, {"seed": -1}, ValueError, "seed"),
        (GOOD, 2, {"seed": 2**70}, ValueError, "seed"),
    ],
)
def test_bad_input(image: object, scale: object, kw: dict, exc: type, match: str) -> None:
    calls: list[Progress] = []
    with pytest.raises(exc, match=match):
        run(image, scale, callback=calls.append, **kw)  # type: ignore[arg-type]
    assert calls == []  # rejected before any work


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_unavailable_cuda() -> None:
    with pytest.raises(ValueError, match="CUDA is not available"):
        run(GOOD, 2, device="cuda")
    with pytest.raises(ValueError, match="CUDA is not available"):
        run(GOOD, 2, device="cuda:1")


def test_device_names() -> None:
    _, info = run(GOOD, 2, device="auto", return_info=True, config=TINY.replace(max_iters=1))
    assert info["device_reason"].startswith("auto")
    _, info = run(GOOD, 2, device="CPU", return_info=True, config=TINY.replace(max_iters=1))
    assert info["device"] == "cpu"


# --- intensity ranges: no silent garbage -------------------------------------------------------


def _ramp_detail(shape: tuple[int, int] = (32, 32)) -> np.ndarray:
    """Structure in [0, 1] (float64) with 1024 distinct values."""
    return pattern(shape, np.float64)


def _above(arr: np.ndarray, base: int | float) -> np.ndarray:
    """``arr - base`` in float64, exact for 64-bit integers far from zero."""
    if arr.dtype.kind in "ui":
        return (arr.astype(np.uint64) - np.uint64(int(base) % 2**64)).astype(np.float64)
    return arr.astype(np.float64) - float(base)


RANGE_CASES = {
    "float64 x 1e-300": _ramp_detail() * 1e-300,
    "float64 0..1e300": _ramp_detail() * 1e300,
    "float32 +-3e38": ((_ramp_detail() * 2 - 1) * 3e38).astype(np.float32),
    "float64 offset 1e10": 1e10 + _ramp_detail() * 100,
    "float32 offset 1e4": (1e4 + _ramp_detail() * 100).astype(np.float32),
    "int64 offset 2**62": 2**62 + np.round(_ramp_detail() * 1000).astype(np.int64),
    "int64 at its minimum": -(2**63) + np.round(_ramp_detail() * 1000).astype(np.int64),
    "uint64 near its maximum": np.uint64(2**64 - 1)
    - np.round(_ramp_detail() * 1023).astype(np.uint64),
    "uint32 near its maximum": np.uint32(2**32 - 1)
    - np.round(_ramp_detail() * 1023).astype(np.uint32),
    "int16 negative": (-30000 + np.round(_ramp_detail() * 1000)).astype(np.int16),
    "uint16": np.round(_ramp_detail() * 65535).astype(np.uint16),
    "uint8": np.round(_ramp_detail() * 255).astype(np.uint8),
}


@pytest.mark.parametrize("name", list(RANGE_CASES))
def test_output_stays_in_the_input_range_and_keeps_detail(name: str) -> None:
    image = RANGE_CASES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no overflow, no NaN on the way
        out = run(image, 2)
    assert out.dtype == image.dtype
    if out.dtype.kind == "f":
        assert np.isfinite(out).all()
    assert out.min() >= image.min() and out.max() <= image.max()  # the input's own range
    base = image.min()
    span = float(_above(np.asarray(image.max()), base))
    rel_in, rel_out = _above(image, base) / span, _above(out, base) / span
    assert np.unique(out).size > 200  # detail, not one or two values
    # The result still follows the input (compared on the input's grid).
    assert np.corrcoef(rel_in.ravel(), rel_out[::2, ::2].ravel())[0, 1] > 0.9


@pytest.mark.parametrize(
    ("image", "match"),
    [
        ((_ramp_detail() * 2 - 1) * 1.7e308, "too wide"),
        (np.arange(32 * 32, dtype=np.float64).reshape(32, 32) * 5e-324, "too small"),
    ],
)
def test_unrepresentable_ranges_are_refused(image: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        run(image, 2)


# --- clear messages and strict arguments -------------------------------------------------------


def test_huge_kernel_values_give_the_same_result_as_the_normalised_kernel() -> None:
    big = run(GOOD, 2, kernel=np.full((5, 5), 1e308))
    unit = run(GOOD, 2, kernel=np.ones((5, 5)))
    np.testing.assert_array_equal(big, unit)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"max_iters": 2.5}, "max_iters must be a whole number, got 2.5"),
        ({"max_iters": "20"}, "max_iters must be a whole number, got '20'"),
        ({"learning_rate": "fast"}, "learning_rate must be a finite number"),
        ({"self_ensemble": 1}, "self_ensemble must be True or False"),
        ({"rotations": "no"}, "rotations must be True or False or None"),
        ({"finetune_iters": 1.5}, "finetune_iters must be a whole number or None"),
        ({"depth": True}, "depth must be a whole number"),
    ],
)
def test_config_types_are_named(changes: dict, match: str) -> None:
    with pytest.raises(TypeError, match=re.escape(f"ZSSRConfig: {match}")):
        ZSSRConfig(**changes)
    assert ZSSRConfig(max_iters=np.int64(20)).max_iters == 20  # numpy integers are fine


@pytest.mark.parametrize(
    ("kw", "exc", "match"),
    [
        ({"callback": 5}, TypeError, "callback must be callable"),
        ({"rgb": "no"}, TypeError, "rgb must be True or False"),
        ({"rgb": 1}, TypeError, "rgb must be True or False"),
    ],
)
def test_argument_types_are_named(kw: dict, exc: type, match: str) -> None:
    with pytest.raises(exc, match=match):
        run(GOOD, 2, **kw)


def test_masked_arrays_are_refused_unless_nothing_is_masked() -> None:
    masked = np.ma.masked_array(GOOD, mask=GOOD > 0.9)
    with pytest.raises(ValueError, match="masked array"):
        run(masked, 2)
    unmasked = np.ma.masked_array(GOOD, mask=np.zeros(GOOD.shape, bool))
    np.testing.assert_array_equal(run(unmasked, 2), run(GOOD, 2))
