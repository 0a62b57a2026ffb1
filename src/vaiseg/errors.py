"""The project's error types: one message naming the file and the problem."""

from __future__ import annotations

from pathlib import Path


class VaisegError(Exception):
    """Base class of every error this package raises on purpose."""


class DataError(VaisegError):
    """Bad or missing input data. The message names the file and the problem (and the fix)."""

    def __init__(self, path: str | Path | None, problem: str):
        self.path = None if path is None else Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}" if path is not None else problem)


class ConfigError(VaisegError):
    """A configuration value that cannot be used."""
