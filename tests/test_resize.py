"""MATLAB-compatible bicubic resize (``napari_zssr.core.resize``)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from napari_zssr.core.resize import cubic, imresize, output_shape, resize_matrix

SET5 = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "Set5"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def set5_dir() -> Path:
    """The Set5 benchmark folder of ``../shared/data``; skips when absent."""
    if not (SET5 / "LR_x2").is_dir():
        pytest.skip(f"Set5 benchmark data not found at {SET5}")
    return SET5


def _read_png(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.float64)


def _psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    mse = float(np.mean((a - b) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(peak**2 / mse)


def _smooth(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth random image (sum of a few low-frequency cosines)."""
    rng = np.random.default_rng(seed)
    y, x = np.indices((h, w), dtype=np.float64)
    img = np.zeros((h, w))
    for _ in range(4):
        fy, fx = rng.uniform(-0.06, 0.06, size=2)
        img += rng.uniform(0.2, 1.0) * np.cos(2 * np.pi * (fy * y + fx * x) + rng.uniform(0, 6))
    return img


# --- the published benchmark LR images -------------------------------------------------------


@pytest.mark.parametrize("factor", [2, 4])
@pytest.mark.parametrize("index", [1, 2, 3, 4, 5])
def test_reproduces_published_set5_lr(set5_dir: Path, factor: int, index: int) -> None:
    hr = _read_png(set5_dir / f"img_00{index}_SRF_4_HR.png")
    lr_ref = _read_png(set5_dir / f"LR_x{factor}" / f"img_00{index}_SRF_{factor}_LR.png")
    x = torch.from_numpy(np.ascontiguousarray(np.moveaxis(hr, -1, 0)))
    lr = imresize(x, 1.0 / factor).numpy()
    lr = np.clip(np.rint(np.moveaxis(lr, 0, -1)), 0, 255)
    assert lr.shape == lr_ref.shape
    assert _psnr(lr, lr_ref) >= 48.0


# --- the 1-D weights -------------------------------------------------------------------------


def test_cubic_is_keys_a_minus_half() -> None:
    x = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 2.5, -0.5, -1.5])
    # Keys (a = -0.5): 1.5|x|^3 - 2.5|x|^2 + 1 on [0, 1]; -0.5|x|^3 + 2.5|x|^2 - 4|x| + 2 on (1, 2]
    expected = np.array([1.0, 0.5625, 0.0, -0.0625, 0.0, 0.0, 0.5625, -0.0625])
    np.testing.assert_allclose(cubic(x), expected, atol=1e-15)


def test_downscale_by_two_uses_matlab_antialias_weights() -> None:
    mat = resize_matrix(32, 16, 0.5)
    # MATLAB's x0.5 antialiased bicubic taps: 0.5 * cubic(0.5 * d), d = +-0.5, 1.5, 2.5, 3.5
    half = np.array([-0.01171875, -0.03515625, 0.11328125, 0.43359375])
    taps = np.concatenate([half, half[::-1]])
    row = mat[8]  # output pixel 8 (0-based) covers input pixels 16 and 17
    np.testing.assert_allclose(row[13:21], taps, atol=1e-12)
    assert np.count_nonzero(row) == 8


def test_upscale_by_two_uses_keys_weights() -> None:
    mat = resize_matrix(16, 32, 2.0)
    # Output pixel 10 (0-based) sits at input coordinate 4.75: distances 1.75, 0.75, 0.25, 1.25
    np.testing.assert_allclose(
        mat[10, 3:7], [-0.0234375, 0.2265625, 0.8671875, -0.0703125], atol=1e-12
    )
    assert np.count_nonzero(mat[10]) == 4


@pytest.mark.parametrize(
    ("n_in", "n_out", "scale"),
    [(20, 40, 2.0), (20, 10, 0.5), (21, 7, 1 / 3), (17, 43, 2.5), (30, 45, 1.5), (9, 4, 0.4)],
)
def test_matrix_rows_sum_to_one_and_mirror_at_borders(n_in: int, n_out: int, scale: float) -> None:
    mat = resize_matrix(n_in, n_out, scale)
    assert mat.shape == (n_out, n_in)
    np.testing.assert_allclose(mat.sum(axis=1), 1.0, atol=1e-12)
    # Symmetric borders: resizing equals the interior formula applied to a mirrored signal.
    signal = np.random.default_rng(1).normal(size=n_in)
    pad = 20
    padded = np.pad(signal, pad, mode="symmetric")  # ... 2 1 | 1 2 ... n | n n-1 ...
    width = 4.0 / scale if scale < 1 else 4.0
    kern = (lambda d: scale * cubic(scale * d)) if scale < 1 else cubic
    out = np.empty(n_out)
    for i in range(n_out):
        u = (i + 1) / scale + 0.5 * (1 - 1 / scale) - 1  # 0-based input coordinate
        idx = np.arange(math.floor(u - width / 2), math.ceil(u + width / 2) + 1)
        w = kern(u - idx)
        out[i] = (w * padded[idx + pad]).sum() / w.sum()
    np.testing.assert_allclose(mat @ signal, out, atol=1e-12)


def test_matrix_is_read_only() -> None:
    mat = resize_matrix(12, 24, 2.0)
    with pytest.raises(ValueError):
        mat[0, 0] = 1.0


# --- imresize --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "scale"),
    [
        ((37, 41), 2.0),
        ((37, 41), 1.5),
        ((37, 41), 2.5),
        ((37, 41), (2.0, 3.0)),
        ((37, 41), (1.5, 2.5)),
        ((37, 41), 0.5),
        ((37, 41), (1 / 3, 0.25)),
        ((30, 30), 0.1),
    ],
)
def test_output_shape_is_ceil(shape: tuple[int, int], scale: float | tuple) -> None:
    pair = scale if isinstance(scale, tuple) else (scale, scale)
    expected = tuple(math.ceil(round(n * s, 9)) for n, s in zip(shape, pair))
    assert output_shape(shape, pair) == expected
    out = imresize(torch.rand(2, *shape, dtype=torch.float64), scale)
    assert tuple(out.shape) == (2, *expected)


def test_output_shape_ignores_float_noise() -> None:
    assert 100 * 1.1 > 110  # 110.00000000000001
    assert output_shape((100,), (1.1,)) == (110,)
    assert output_shape((10, 7), (1.5, 2.5)) == (15, 18)


@pytest.mark.parametrize("scale", [2.0, 3.0, 0.5, 1.5, 2.5, 0.4, (2.0, 3.0), (1.5, 0.75)])
def test_constant_stays_constant(scale: float | tuple) -> None:
    x = torch.full((1, 23, 19), 0.37, dtype=torch.float64)
    out = imresize(x, scale)
    np.testing.assert_allclose(out.numpy(), 0.37, atol=1e-12)


def test_per_axis_factors_are_separable() -> None:
    x = torch.from_numpy(_smooth(26, 31))[None]
    both = imresize(x, (1.5, 2.5))
    assert tuple(both.shape) == (1, 39, 78)
    y_then_x = imresize(imresize(x, (1.5, 1.0)), (1.0, 2.5))
    np.testing.assert_allclose(both.numpy(), y_then_x.numpy(), atol=1e-12)
    # The X factor does not depend on the Y factor (and vice versa).
    x_only = imresize(x, (1.0, 2.5))
    np.testing.assert_allclose(both.numpy(), imresize(x_only, (1.5, 1.0)).numpy(), atol=1e-12)


def test_matches_dense_one_dimensional_matrices() -> None:
    img = np.random.default_rng(2).random((3, 19, 23))
    out = imresize(torch.from_numpy(img), (2.5, 1 / 3)).numpy()
    my = resize_matrix(19, 48, 2.5)
    mx = resize_matrix(23, 8, 1 / 3)
    np.testing.assert_allclose(out, my @ img @ mx.T, atol=1e-12)


def test_out_shape_sets_the_size_and_scale_positions_the_samples() -> None:
    img = torch.from_numpy(_smooth(20, 20))
    a = imresize(img, 2.0, (41, 43))
    assert tuple(a.shape) == (41, 43)
    b = imresize(img, 2.0)
    # The extra rows/columns extend the grid; the common part is identical.
    np.testing.assert_allclose(a[:40, :40].numpy(), b.numpy(), atol=1e-12)
    # Without a scale, the factor is derived from the sizes.
    c = imresize(img, out_shape=(40, 40))
    np.testing.assert_allclose(c.numpy(), b.numpy(), atol=1e-12)


@pytest.mark.parametrize("factor", [2.0, 3.0, 1.5])
def test_up_then_down_is_close_to_identity(factor: float) -> None:
    img = torch.from_numpy(_smooth(48, 48, seed=3))
    back = imresize(imresize(img, factor), 1.0 / factor, img.shape)
    err = (back - img).abs()[4:-4, 4:-4]  # the interior: borders see the mirror
    assert float(err.max()) < 0.02 * float(img.abs().max())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_keeps_dtype_and_device(dtype: torch.dtype) -> None:
    x = torch.rand(2, 1, 12, 14).to(dtype)
    out = imresize(x, (2.0, 1.5))
    assert out.dtype == dtype
    assert out.device == x.device
    assert tuple(out.shape) == (2, 1, 24, 21)
    ref = imresize(x.double(), (2.0, 1.5))
    tol = 1e-5 if dtype in (torch.float32, torch.float64) else 3e-2
    np.testing.assert_allclose(out.double().numpy(), ref.numpy(), atol=tol)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_runs_on_cuda() -> None:  # pragma: no cover - GPU only
    x = torch.rand(1, 20, 20, dtype=torch.float64)
    out = imresize(x.cuda(), 2.5)
    assert out.device.type == "cuda"
    np.testing.assert_allclose(out.cpu().numpy(), imresize(x, 2.5).numpy(), atol=1e-10)


def test_input_tensor_not_modified() -> None:
    x = torch.rand(1, 16, 16, dtype=torch.float64)
    before = x.clone()
    imresize(x, 0.5)
    imresize(x, 2.0)
    assert torch.equal(x, before)


def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match="floating-point"):
        imresize(torch.ones(8, 8, dtype=torch.int64), 2.0)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        imresize(torch.ones(8), 2.0)
    with pytest.raises(ValueError, match="scale or out_shape"):
        imresize(torch.ones(8, 8))
    with pytest.raises(ValueError, match="positive"):
        imresize(torch.ones(8, 8), -2.0)
    with pytest.raises(ValueError, match="positive"):
        imresize(torch.ones(8, 8), (2.0, 2.0, 2.0))
    with pytest.raises(ValueError, match=">= 1"):
        resize_matrix(0, 4, 2.0)


def test_device_cache_drops_the_least_recently_used_entry() -> None:
    from napari_zssr.core.device import DeviceCache

    cache: DeviceCache[int] = DeviceCache(2)
    built: list[str] = []

    def make(key: str) -> int:
        built.append(key)
        return len(built)

    assert cache.get("a", lambda: make("a")) == 1
    assert cache.get("b", lambda: make("b")) == 2
    assert cache.get("a", lambda: make("a")) == 1  # cached; "a" is now the most recent
    cache.get("c", lambda: make("c"))  # evicts "b", not everything
    assert cache.get("a", lambda: make("a")) == 1
    assert cache.get("b", lambda: make("b")) == 4
    assert built == ["a", "b", "c", "b"]
