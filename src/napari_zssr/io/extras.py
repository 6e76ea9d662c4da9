"""Optional packages of the ``bigdata`` extra, imported when first needed."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["require"]


def require(module: str, purpose: str) -> Any:
    """Import ``module``, or fail with how to install it.

    Raises
    ------
    ImportError
        Naming ``purpose`` and the ``napari-zssr[bigdata]`` extra.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{purpose} needs the {module.split('.')[0]} package: "
            "pip install 'napari-zssr[bigdata]'"
        ) from exc
