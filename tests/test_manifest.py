"""The npe2 manifest, its packaging (editable install and wheel) and the shipped sample."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import zipfile
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

npe2 = pytest.importorskip("npe2")

import napari_zssr  # noqa: E402
from napari_zssr import _sample_data  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PACKAGE_MANIFEST = Path(napari_zssr.__file__).parent / "napari.yaml"
WIDGET_NAME = "ZSSR super-resolution"


@pytest.fixture(scope="module")
def manifest():
    return npe2.PluginManifest.from_distribution("napari-zssr")


def test_manifest_found_from_installed_distribution(manifest):
    assert manifest.name == "napari-zssr"
    widgets = manifest.contributions.widgets
    assert [w.display_name for w in widgets] == [WIDGET_NAME]
    commands = {c.id: c for c in manifest.contributions.commands}
    assert commands[widgets[0].command].python_name == "napari_zssr._widget:ZSSRWidget"
    samples = manifest.contributions.sample_data
    assert [s.key for s in samples] == ["membranes"]
    assert commands[samples[0].command].python_name == ("napari_zssr._sample_data:make_sample_data")
    menus = manifest.contributions.menus
    assert [item.command for item in menus["napari/layers/filter"]] == [widgets[0].command]


def test_manifest_python_names_import(manifest):
    manifest.validate_imports()


def test_npe2_validate_command():
    res = subprocess.run(
        [sys.executable, "-m", "npe2", "validate", "napari-zssr", "--imports"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "valid" in res.stdout


def test_manifest_is_inside_the_package():
    # The entry point "napari_zssr:napari.yaml" resolves inside the imported package: this is
    # what an editable install (src/napari_zssr) and a wheel both need.
    assert PACKAGE_MANIFEST.is_file() and not PACKAGE_MANIFEST.is_symlink()
    assert resources.files("napari_zssr").joinpath("napari.yaml").is_file()


@pytest.mark.skipif(not (REPO / "pyproject.toml").is_file(), reason="not a source checkout")
def test_root_manifest_is_a_relative_link_to_the_package_one():
    root = REPO / "napari.yaml"
    assert root.is_symlink()
    assert not os.path.isabs(os.readlink(root))
    assert root.resolve() == (REPO / "src" / "napari_zssr" / "napari.yaml").resolve()


@pytest.mark.skipif(not (REPO / "pyproject.toml").is_file(), reason="not a source checkout")
def test_wheel_contains_manifest_and_sample(tmp_path):
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path)]
    if importlib.util.find_spec("hatchling") is not None:
        cmd.append("--no-build-isolation")  # no network needed
    res = subprocess.run([*cmd, str(REPO)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    (wheel,) = tmp_path.glob("napari_zssr-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        assert "napari_zssr/napari.yaml" in names
        assert zf.read("napari_zssr/napari.yaml") == PACKAGE_MANIFEST.read_bytes()
        assert "napari_zssr/data/membrane_2d.tif" in names
        assert "napari_zssr/data/LICENSE" in names
        assert "napari_zssr/data/zssr_init.safetensors" in names
        assert "napari_zssr/data/zssr_init.md" in names
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        text = zf.read(entry_points).decode()
    assert "[napari.manifest]" in text
    assert "napari-zssr = napari_zssr:napari.yaml" in text


def test_sample_is_small_real_and_attributed():
    assert _sample_data.SAMPLE_PATH.stat().st_size < 1_000_000
    image, info = _sample_data.load_sample()
    assert image.shape == (256, 256)
    assert image.dtype == np.uint16
    assert image.std() > 50  # a real image, not a constant
    assert info["name"] == "membranes"
    assert info["pixel_size"] is None
    assert "CC BY 4.0" in info["attribution"]
    assert "Kuhn" in info["attribution"]
    licence = Path(info["license_file"]).read_text(encoding="utf-8")
    for needle in ("Kuhn", "MPI-CBG", "CC BY 4.0", "creativecommons.org/licenses/by/4.0"):
        assert needle in licence


def test_sample_layer_data():
    ((data, kwargs, layer_type),) = _sample_data.make_sample_data()
    assert layer_type == "image"
    assert data.shape == (256, 256)
    assert kwargs["scale"] == (1.0, 1.0)
    assert kwargs["name"] == "membranes"
    lo, hi = kwargs["contrast_limits"]
    assert data.min() <= lo < hi <= data.max()
    assert "CC BY 4.0" in kwargs["metadata"]["attribution"]


def test_manifest_declares_the_ome_tiff_writer(manifest):
    (writer,) = manifest.contributions.writers
    assert writer.layer_types == ["image"]
    assert ".ome.tif" in writer.filename_extensions and ".tif" in writer.filename_extensions
    commands = {c.id: c for c in manifest.contributions.commands}
    assert commands[writer.command].python_name == "napari_zssr.napari.writer:write_ome_tiff"
