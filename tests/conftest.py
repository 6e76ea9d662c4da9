"""Fixtures shared by the whole test suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only evaluation data folder ``../shared/data``; skips the test when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"evaluation data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """One torch thread for a module: its networks and tensors are tiny, and a busy machine
    punishes oversubscription. Imports torch only when a module asks for it."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _hand_made_tiff(width: int, height: int, compression: int = 1, data: bytes = b"") -> bytes:
    """A little-endian one-strip 16-bit TIFF whose tags declare ``width`` x ``height``
    whatever ``data`` really holds (for absurd declared sizes)."""
    import struct

    entries = [
        (256, 4, width),  # ImageWidth (LONG)
        (257, 4, height),  # ImageLength
        (258, 3, 16),  # BitsPerSample (SHORT)
        (259, 3, compression),
        (262, 3, 1),  # PhotometricInterpretation: min-is-black
        (273, 4, 8 + 2 + 12 * 9 + 4),  # StripOffsets: right after this IFD
        (277, 3, 1),  # SamplesPerPixel
        (278, 4, height),  # RowsPerStrip
        (279, 4, len(data)),  # StripByteCounts
    ]
    out = bytearray(struct.pack("<2sHI", b"II", 42, 8))
    out += struct.pack("<H", len(entries))
    for tag, kind, value in entries:
        packed = struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
        out += struct.pack("<HHI", tag, kind, 1) + packed
    out += struct.pack("<I", 0)
    return bytes(out) + data


@pytest.fixture(scope="session")
def broken_tiffs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A corpus of malformed TIFF files, each named after its damage (and one good file,
    ``good``, that the damaged ones were cut from)."""
    import struct

    import numpy as np
    import tifffile

    folder = tmp_path_factory.mktemp("broken_tiffs")
    pixels = (np.random.default_rng(0).random((64, 64)) * 60000).astype(np.uint16)
    tifffile.imwrite(folder / "good.tif", pixels, rowsperstrip=16)
    plain = (folder / "good.tif").read_bytes()
    tifffile.imwrite(folder / "deflate.tif", pixels, compression="zlib", rowsperstrip=16)
    zipped = (folder / "deflate.tif").read_bytes()
    with tifffile.TiffFile(folder / "deflate.tif") as tif:
        strips = tif.pages.first.dataoffsets
    noise = np.random.default_rng(1).integers(0, 256, len(zipped) - strips[1], dtype=np.uint8)
    tifffile.imwrite(folder / "stack.tif", np.stack([pixels] * 3), photometric="minisblack")
    stack = bytearray((folder / "stack.tif").read_bytes())
    n_tags = struct.unpack_from("<H", stack, 8)[0]  # the first IFD is at offset 8
    struct.pack_into("<I", stack, 8 + 2 + 12 * n_tags, len(stack) + 500)  # next IFD: nowhere
    blobs = {
        "empty": b"",
        "not_a_tiff": b"plain text, not an image\n" * 4,
        "truncated_in_header": plain[:4],
        "truncated_after_header": plain[:8],
        "truncated_in_ifd": plain[:40],
        "truncated_in_pixels": plain[: len(plain) // 2],
        "truncated_in_last_strip": plain[:-10],
        "ifd_offset_past_end": plain[:4] + struct.pack("<I", len(plain) + 1000) + plain[8:],
        "ifd_offset_into_pixels": plain[:4] + struct.pack("<I", len(plain) - 100) + plain[8:],
        "deflate_truncated": zipped[: strips[2] + 50],
        "deflate_corrupt": zipped[: strips[1]] + noise.tobytes(),
        "absurd_size": _hand_made_tiff(200_000, 200_000, data=b"\0" * 64),
        "absurd_size_deflate": _hand_made_tiff(200_000, 200_000, compression=8, data=b"\0" * 64),
        "strip_past_end": _hand_made_tiff(64, 64, data=b""),
        "page_chain_cut": bytes(stack),  # 3 pages, the link to the second one broken
    }
    paths = {"good": folder / "good.tif"}
    for name, blob in blobs.items():
        path = folder / f"{name}.tif"
        path.write_bytes(blob)
        paths[name] = path
    return paths


BROKEN_TIFF_NAMES = (
    "empty",
    "not_a_tiff",
    "truncated_in_header",
    "truncated_after_header",
    "truncated_in_ifd",
    "truncated_in_pixels",
    "truncated_in_last_strip",
    "ifd_offset_past_end",
    "ifd_offset_into_pixels",
    "deflate_truncated",
    "deflate_corrupt",
    "absurd_size",
    "absurd_size_deflate",
    "strip_past_end",
    "page_chain_cut",
)
"""Keys of the ``broken_tiffs`` fixture that name a damaged file."""


@pytest.fixture(params=BROKEN_TIFF_NAMES)
def broken_tiff(request: pytest.FixtureRequest, broken_tiffs: dict[str, Path]) -> Path:
    """Each damaged file of the ``broken_tiffs`` corpus in turn."""
    return broken_tiffs[request.param]


@pytest.fixture
def unwritable_outputs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every temporary output file (``*.part``) fail to be created, as in a read-only
    folder (which a test run as root would not see: root writes anywhere)."""
    import os

    real_open = os.open

    def denied(path: object, *args: object, **kwargs: object) -> int:
        if str(path).endswith(".part"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", denied)


def texture(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Smooth random structure in uint16, so that training has something to learn (the
    command-line tests' input images)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[-2], : shape[-1]]
    base = np.sin(yy / 2.3) * np.cos(xx / 3.1) + 0.3 * rng.standard_normal(shape[-2:])
    planes = [base + 0.2 * k for k in range(int(np.prod(shape[:-2])))]
    stack = np.stack(planes).reshape(shape)
    stack = (stack - stack.min()) / np.ptp(stack)
    return (200 + 3000 * stack).astype(np.uint16)


def without_module(monkeypatch: pytest.MonkeyPatch, module: str) -> None:
    """Make ``napari_zssr.io.formats`` fail to import ``module``, as on an installation
    without the ``formats`` extra."""
    import importlib

    from napari_zssr.io import formats

    real = importlib.import_module

    def fake(name: str, *args, **kwargs):
        if name == module:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(formats.importlib, "import_module", fake)


def dead_leaves(size: int, seed: int, discs: int = 600) -> np.ndarray:
    """A dead-leaves scene (scale-invariant discs of random grey on 0.5), ``size`` px."""
    import math

    rng = np.random.default_rng(seed)
    img = np.full((size, size), 0.5)
    yy, xx = np.mgrid[:size, :size]
    for _ in range(discs):
        r = min(size / 4, 2.0 / math.sqrt(rng.uniform(1 / 400.0, 1.0)))
        cy, cx = rng.uniform(0, size, 2)
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.uniform(0.1, 0.9)
    return img
