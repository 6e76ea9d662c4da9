"""Exact placement of upscaled layers (pure numpy; one cross-check against napari's layers)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_zssr.arrays.placement import (
    axis_factors,
    data_to_world_matrix,
    linear_matrix,
    shear_matrix,
    upscaled_placement,
    visible_data_box,
)


def _apply(m: np.ndarray, x) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    return (m @ np.append(x, 1.0))[:-1]


def _rotation_2d(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    return np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])


def _rotation_3d(rng) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    return q * np.sign(np.diag(r))


@pytest.mark.parametrize("f", [2.0, 3.0, 2.5, 1.01, 4.0 / 3.0, 16.0])
@pytest.mark.parametrize(("s", "t"), [(1.0, 0.0), (0.13, 5.0), (2.0, -7.5)])
def test_axis_aligned_formula(f, s, t):
    p = upscaled_placement([f, f], scale=[s, s], translate=[t, t])
    s_new = s / f
    np.testing.assert_allclose(p.scale, [s_new, s_new])
    np.testing.assert_allclose(p.translate, [t + 0.5 * (s_new - s)] * 2)
    np.testing.assert_allclose(p.rotate, np.eye(2))
    np.testing.assert_allclose(p.affine, np.eye(3))


def test_unchanged_axes_keep_scale_and_translate():
    p = upscaled_placement((1.0, 2.0, 2.0), scale=(3.0, 0.5, 0.5), translate=(10.0, 1.0, 2.0))
    np.testing.assert_allclose(p.scale, [3.0, 0.25, 0.25])
    np.testing.assert_allclose(p.translate, [10.0, 1.0 - 0.125, 2.0 - 0.125])


def _edges(n: int, m: int):
    """Outer pixel-edge coordinates of an n x m grid."""
    return [(y, x) for y in (-0.5, n - 0.5) for x in (-0.5, m - 0.5)]


@pytest.mark.parametrize("seed", range(5))
def test_edges_and_centres_coincide_under_rotate_shear_affine(seed):
    rng = np.random.default_rng(seed)
    scale = rng.uniform(0.1, 3.0, size=2)
    translate = rng.normal(scale=10, size=2)
    rotate = _rotation_2d(rng.uniform(-180, 180))
    shear = [rng.normal(scale=0.3)]
    affine = np.eye(3)
    affine[:2, :2] = rng.normal(size=(2, 2)) + 2 * np.eye(2)
    affine[:2, 2] = rng.normal(size=2)
    fy, fx = rng.uniform(1.01, 6.0, size=2)
    ny, nx = 12, 20
    src = data_to_world_matrix(scale, translate, rotate, shear, affine)
    p = upscaled_placement(
        [fy, fx], scale=scale, translate=translate, rotate=rotate, shear=shear, affine=affine
    )
    new = p.data_to_world()
    for (y, x), (yn, xn) in zip(_edges(ny, nx), _edges(ny * fy, nx * fx)):
        np.testing.assert_allclose(_apply(new, (yn, xn)), _apply(src, (y, x)), atol=1e-9)
    # New pixel j's centre lies at source coordinate j/f + (1/f - 1)/2.
    for j in (0, 3, 17):
        old = (j / fy + 0.5 * (1 / fy - 1), j / fx + 0.5 * (1 / fx - 1))
        np.testing.assert_allclose(_apply(new, (j, j)), _apply(src, old), atol=1e-9)


def test_3d_rotation_with_plane_offset_and_crop():
    rng = np.random.default_rng(7)
    scale = np.array([2.0, 0.3, 0.4])
    translate = np.array([1.0, -2.0, 3.0])
    rotate = _rotation_3d(rng)
    shear = [0.1, -0.2, 0.05]
    src = data_to_world_matrix(scale, translate, rotate, shear)
    offset = (4.0, 10.0, 6.0)  # plane 4, crop starting at (10, 6)
    f = (1.0, 3.0, 3.0)
    p = upscaled_placement(
        f, scale=scale, translate=translate, rotate=rotate, shear=shear, offset=offset
    )
    new = p.data_to_world()
    crop = (8, 5)
    for (y, x), (yn, xn) in zip(_edges(*crop), _edges(crop[0] * 3, crop[1] * 3)):
        np.testing.assert_allclose(
            _apply(new, (0.0, yn, xn)),
            _apply(src, (offset[0], offset[1] + y, offset[2] + x)),
            atol=1e-9,
        )


def test_shear_vector_and_matrix_agree():
    vec = [0.1, 0.2, 0.3]
    mat = shear_matrix(vec, 3)
    np.testing.assert_allclose(mat, [[1, 0.1, 0.2], [0, 1, 0.3], [0, 0, 1]])
    np.testing.assert_allclose(shear_matrix(mat, 3), mat)
    np.testing.assert_allclose(linear_matrix([1, 2, 3], None, vec), mat @ np.diag([1, 2, 3]))
    lower = mat.T
    p = upscaled_placement((1, 2, 2), scale=(1, 1, 1), translate=(0, 0, 0), shear=lower)
    np.testing.assert_allclose(p.shear, lower)


def test_matches_napari_layer_transform():
    napari_layers = pytest.importorskip("napari.layers")
    data = np.zeros((10, 14), dtype=np.float32)
    kwargs = {
        "scale": (0.4, 0.7),
        "translate": (3.0, -4.0),
        "rotate": 30,
        "shear": [0.2],
        "affine": np.array([[1.1, 0.2, 1.0], [-0.1, 0.9, 2.0], [0, 0, 1]]),
    }
    src = napari_layers.Image(data, **kwargs)
    m = data_to_world_matrix(
        src.scale, src.translate, src.rotate, src.shear, src.affine.affine_matrix
    )
    for pt in [(0, 0), (9.5, -0.5), (3.2, 7.7)]:
        np.testing.assert_allclose(_apply(m, pt), src.data_to_world(pt), atol=1e-9)
    p = upscaled_placement(
        (2.0, 3.0),
        scale=src.scale,
        translate=src.translate,
        rotate=src.rotate,
        shear=src.shear,
        affine=src.affine.affine_matrix,
    )
    new = napari_layers.Image(np.zeros((20, 42), np.float32), **p.layer_kwargs())
    np.testing.assert_allclose(
        new.data_to_world((-0.5, -0.5)), src.data_to_world((-0.5, -0.5)), atol=1e-9
    )
    np.testing.assert_allclose(
        new.data_to_world((19.5, 41.5)), src.data_to_world((9.5, 13.5)), atol=1e-9
    )


def test_placement_kwargs_are_copies():
    p = upscaled_placement((2, 2), scale=(1, 1), translate=(0, 0))
    kw = p.layer_kwargs()
    kw["scale"][0] = 99
    assert p.scale[0] == 0.5


def test_axis_factors():
    assert axis_factors(2, 2.0) == (2.0, 2.0)
    assert axis_factors(4, (2.0, 3.0)) == (1.0, 1.0, 2.0, 3.0)
    assert axis_factors(3, 1.0, z_factor=2.5) == (2.5, 1.0, 1.0)
    with pytest.raises(ValueError, match="at least 2"):
        axis_factors(1, 2.0)
    with pytest.raises(ValueError, match="Z factor"):
        axis_factors(2, 1.0, z_factor=2.0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"factors": (2, 2, 2)}, "factors must have 2"),
        ({"factors": (0, 2)}, "> 0"),
        ({"factors": (np.inf, 2)}, "finite"),
        ({"translate": (0, 0, 0)}, "translate must have 2"),
        ({"rotate": np.eye(3)}, "rotate must be"),
        ({"shear": [0.1, 0.2]}, "shear must hold"),
        ({"affine": np.eye(2)}, "affine must be"),
        ({"offset": (1,)}, "offset must have 2"),
    ],
)
def test_bad_input_raises(kwargs, match):
    args = {"factors": (2, 2), "scale": (1, 1), "translate": (0, 0)} | kwargs
    factors = args.pop("factors")
    with pytest.raises(ValueError, match=match):
        upscaled_placement(factors, **args)


def test_inputs_not_modified():
    scale = np.array([1.0, 2.0])
    translate = np.array([3.0, 4.0])
    rotate = _rotation_2d(20)
    before = (scale.copy(), translate.copy(), rotate.copy())
    p = upscaled_placement((2, 2), scale=scale, translate=translate, rotate=rotate)
    p.rotate[0, 0] = 5
    for a, b in zip((scale, translate, rotate), before):
        np.testing.assert_array_equal(a, b)


def test_visible_box_inside_image():
    corners = np.array([[9.7, 20.2], [9.7, 40.6], [30.1, 20.2], [30.1, 40.6]])
    assert visible_data_box(corners, (100, 100)) == (10, 31, 20, 42)


def test_visible_box_partial_pixels_count():
    # The edges -0.5 and n - 0.5 bound the image: a view exactly on them is the whole image.
    corners = np.array([[-0.5, -0.5], [63.5, 47.5]])
    assert visible_data_box(corners, (64, 48)) == (0, 64, 0, 48)


def test_visible_box_clipped_and_capped():
    corners = np.array([[-50.0, -10.0], [500.0, 30.0]])
    y0, y1, x0, x1 = visible_data_box(corners, (300, 40), max_size=64)
    assert (x0, x1) == (0, 31)
    assert y1 - y0 == 64 and 0 <= y0 and y1 <= 300
    assert abs((y0 + y1) / 2 - 150) <= 1


def test_visible_box_cap_near_border_stays_inside():
    y0, y1, x0, x1 = visible_data_box(np.array([[0, 0], [9.4, 299]]), (10, 300), max_size=100)
    assert (y0, y1) == (0, 10)
    assert x1 - x0 == 100 and 0 <= x0 and x1 <= 300


def test_visible_box_errors():
    with pytest.raises(ValueError, match="at least 8"):
        visible_data_box(np.array([[200.0, 200.0], [220.0, 220.0]]), (100, 100))
    with pytest.raises(ValueError, match="at least 8"):
        visible_data_box(np.array([[10.0, 10.0], [13.0, 40.0]]), (100, 100))
    with pytest.raises(ValueError, match=r"\(k, 2\)"):
        visible_data_box(np.zeros((4, 3)), (10, 10))
    with pytest.raises(ValueError, match="height, width"):
        visible_data_box(np.zeros((4, 2)), (10, 10, 3))
