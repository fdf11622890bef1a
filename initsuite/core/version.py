"""The package version (read by pyproject and the environment record)."""

__version__ = "0.1.0"
