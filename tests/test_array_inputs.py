"""Arrays the API does not take as they are get one message that says what to pass instead."""

from __future__ import annotations

import numpy as np
import pytest

from napari_zssr import isotropic_z, super_resolve, super_resolve_many


def test_a_torch_tensor_is_refused_with_how_to_pass_it():
    torch = pytest.importorskip("torch")
    with pytest.raises(TypeError, match=r"torch tensor; pass a NumPy array: image\.detach\(\)"):
        super_resolve(torch.zeros(32, 32), 2)
    with pytest.raises(TypeError, match=r"stack is a torch tensor.*stack\.detach\(\)"):
        isotropic_z(torch.zeros(4, 32, 32), 2.0)
    with pytest.raises(TypeError, match=r"torch tensor"):
        super_resolve_many([torch.zeros(32, 32)], 2)


def test_an_xarray_with_named_dimensions_is_refused_with_how_to_pass_it():
    xr = pytest.importorskip("xarray")
    image = xr.DataArray(np.zeros((3, 32, 32), np.float32), dims=("c", "y", "x"))
    with pytest.raises(TypeError) as err:
        super_resolve(image, 2)
    message = str(err.value)
    assert "('c', 'y', 'x')" in message
    assert "image.transpose(..., 'y', 'x').data" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [
        (bool, "boolean images cannot be super-resolved; convert to uint8 first"),
        (complex, "unsupported image dtype complex128; use uint8, uint16"),
        ("U1", "unsupported image dtype <U1; use uint8, uint16"),
    ],
)
def test_a_dask_array_of_an_unsupported_dtype_is_refused_before_any_work(dtype, expected):
    da = pytest.importorskip("dask.array")
    image = da.from_array(np.zeros((32, 32), dtype=dtype))
    with pytest.raises(TypeError, match=expected):
        super_resolve(image, 2, device="cpu")


def test_an_array_like_whose_dtype_numpy_cannot_read_is_refused():
    class Odd:
        shape = (32, 32)
        dtype = "not a dtype"

        def __getitem__(self, key):
            return np.zeros((32, 32))

    with pytest.raises(TypeError, match="dtype 'not a dtype', which NumPy cannot read"):
        super_resolve(Odd(), 2)
