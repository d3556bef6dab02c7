"""Shared test configuration. Trained-model fixtures live in fixtures_models.py."""

from pathlib import Path

pytest_plugins = ["tests.fixtures_models"] if (Path(__file__).parent / "fixtures_models.py").exists() else []
