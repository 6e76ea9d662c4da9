"""Check the built sdist and wheel in a folder: ``python .ci/inspect_dist.py dist``.

A release must carry the napari manifest, the bundled sample and its licence (a missing
package-data file would break the plugin only once installed), and the wheel must not carry
the tests or the benchmarks. Exits non-zero with one line per problem.
"""

from __future__ import annotations

import sys
import tarfile
import zipfile
from pathlib import Path

PACKAGE_DATA = (
    "napari_zssr/napari.yaml",
    "napari_zssr/data/membrane_2d.tif",
    "napari_zssr/data/LICENSE",
)
_NOT_IN_WHEEL = ("tests", "benchmarks")
SDIST_TOP = ("pyproject.toml", "README.md", "LICENSE", "CHANGELOG.md")


def _strip_top(name: str) -> str:
    """``name`` without the sdist's top folder (``napari_zssr-1.2.3/``)."""
    return name.split("/", 1)[1] if "/" in name else ""


def problems(folder: Path) -> list[str]:
    """Everything wrong with the one wheel and one sdist in ``folder``."""
    wheels = sorted(folder.glob("napari_zssr-*.whl"))
    sdists = sorted(folder.glob("napari_zssr-*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        return [f"expected one wheel and one sdist in {folder}, found {wheels + sdists}"]
    found: list[str] = []
    with zipfile.ZipFile(wheels[0]) as zf:
        wheel = set(zf.namelist())
        entry_points = next((n for n in wheel if n.endswith(".dist-info/entry_points.txt")), "")
        entries = zf.read(entry_points).decode() if entry_points else ""
    with tarfile.open(sdists[0]) as tf:
        sdist = {_strip_top(n) for n in tf.getnames()}
    found += [f"wheel lacks {name}" for name in PACKAGE_DATA if name not in wheel]
    found += [f"sdist lacks src/{name}" for name in PACKAGE_DATA if f"src/{name}" not in sdist]
    found += [f"sdist lacks {name}" for name in SDIST_TOP if name not in sdist]
    found += [f"wheel holds {n}" for n in sorted(wheel) if n.split("/")[0] in _NOT_IN_WHEEL]
    found += [f"sdist holds {n}" for n in sorted(sdist) if n.split("/")[0] == "benchmarks"]
    if "napari-zssr = napari_zssr:napari.yaml" not in entries:
        found.append("wheel lacks the napari.manifest entry point")
    if "napari-zssr = napari_zssr.cli:main" not in entries:
        found.append("wheel lacks the napari-zssr console script")
    return found


def main(argv: list[str]) -> int:
    folder = Path(argv[0] if argv else "dist")
    found = problems(folder)
    for line in found:
        print(f"dist: {line}", file=sys.stderr)
    if not found:
        names = ", ".join(p.name for p in sorted(folder.glob("napari_zssr-*")))
        print(f"dist contents checked: {names}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
