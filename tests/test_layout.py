"""The package's layering: the core reads no files, the PSF package shares the core's cubic."""

from __future__ import annotations

import ast
from pathlib import Path

import napari_zssr

PACKAGE = Path(napari_zssr.__file__).parent


def _imports(path: Path) -> set[str]:
    """Modules imported by a file, relative imports resolved against the package."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(parts[: len(parts) - node.level])
                names.add(".".join([*base, node.module] if node.module else base))
            else:
                names.add(node.module or "")
    return names


def test_core_imports_no_files_front_ends_or_gui():
    banned = ("napari_zssr.io", "napari_zssr.psf", "napari_zssr.cli", "napari", "qtpy", "magicgui")
    for path in sorted((PACKAGE / "core").glob("*.py")):
        if path.name == "psf.py":  # the lazy compatibility alias of napari_zssr.psf
            continue
        found = [
            name
            for name in _imports(path)
            if any(name == b or name.startswith(b + ".") for b in banned)
        ]
        assert not found, f"{path.name} imports {found}"


def test_psf_package_reads_no_files_itself():
    for path in sorted((PACKAGE / "psf").glob("*.py")):
        if path.name == "__init__.py":  # re-exports io.load_psf_file
            continue
        assert not any(n.startswith("napari_zssr.io") for n in _imports(path)), path.name
        assert "tifffile" not in _imports(path), path.name


def test_one_cubic_for_images_and_psfs():
    from napari_zssr.core import resize
    from napari_zssr.psf import geometry

    assert geometry.cubic is resize.cubic


def test_old_psf_path_still_works():
    from napari_zssr.core.psf import kernel_from_optics
    from napari_zssr.psf import kernel_from_optics as new

    assert kernel_from_optics is new


def test_public_entry_points_are_lazy():
    import subprocess
    import sys

    code = (
        "import sys, napari_zssr\n"
        "print('TORCH', 'torch' in sys.modules)\n"
        "from napari_zssr import isotropic_z, super_resolve\n"
        "print(super_resolve.__module__, isotropic_z.__module__)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "TORCH False" in done.stdout
    assert "napari_zssr.arrays.upscale napari_zssr.arrays.isotropic" in done.stdout
