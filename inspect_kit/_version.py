"""The version of inspect_kit: its one source.

setuptools reads it for the package metadata (``pyproject.toml``'s dynamic version); the
stores, result caches and ``inspect-kit --version`` import it from here.
"""

__version__ = "0.1.0"
