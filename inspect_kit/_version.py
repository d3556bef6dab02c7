"""The installed version of inspect_kit, read from the package metadata (pyproject.toml)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("inspect-kit")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"
