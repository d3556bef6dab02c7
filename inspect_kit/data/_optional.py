"""Import helpers for the packages that ship the real demo data (base dependencies, imported lazily)."""

from __future__ import annotations

import importlib
from types import ModuleType


def require(module: str, package: str | None = None) -> ModuleType:
    """Import ``module`` or raise an ImportError that names the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        pkg = package or module.split(".")[0]
        raise ImportError(
            f"this loader needs {pkg!r}, which is not installed; "
            f"it is a dependency of inspect-kit: reinstall with `pip install inspect-kit` "
            f"(or `pip install {pkg}`)"
        ) from err
