"""The documentation site builds with warnings as errors (``mkdocs build --strict``): every page
in the navigation, every link and anchor between pages, the figures, and the API reference
generated from the numpydoc docstrings of the public names."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(not (REPO / "mkdocs.yml").is_file(), reason="not a source checkout")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    for module in ("mkdocs", "material", "mkdocstrings_handlers.python"):
        pytest.importorskip(module, reason="the docs extra is not installed")
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    res = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    assert "WARNING" not in res.stderr, res.stderr[-4000:]
    return out


def test_every_page_and_figure_is_built(site):
    for page in (
        "index.html",
        "user-guide/index.html",
        "psf-guide/index.html",
        "trust/index.html",
        "big-data/index.html",
        "benchmarks/index.html",
        "changelog/index.html",
        "api/index.html",
    ):
        assert (site / page).is_file(), page
    for figure in (REPO / "docs" / "images").glob("*.png"):
        assert (site / "images" / figure.name).is_file(), figure.name
    assert not list(site.rglob("*.py"))  # the figure scripts are not published


def test_api_reference_is_generated_from_the_docstrings(site):
    page = (site / "api" / "super-resolution" / "index.html").read_text(encoding="utf-8")
    for name in ("super_resolve", "super_resolve_many", "isotropic_z", "estimate_resolution"):
        assert f'id="napari_zssr.{name}"' in page, name
    assert "Parameters" in page and "Returns" in page  # numpydoc sections parsed
    io_page = (site / "api" / "io" / "index.html").read_text(encoding="utf-8")
    assert "read_image" in io_page and "read_tiff" in io_page
    for html in (site / "api").rglob("*.html"):
        text = html.read_text(encoding="utf-8")
        assert ":func:`" not in text and ":class:`" not in text, html  # roles rewritten


def test_changelog_page_is_the_changelog(site):
    page = (site / "changelog" / "index.html").read_text(encoding="utf-8")
    assert "Unreleased" in page and "0.1.0" in page
