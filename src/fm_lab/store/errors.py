"""Errors of the store."""

from __future__ import annotations


class StoreError(RuntimeError):
    """A problem with the fm_lab store."""


class StoreLockedError(StoreError):
    """Another process (or a read-only store in this one) holds the DuckDB file."""

    def __init__(self, path: str, holder: str) -> None:
        self.path = path
        self.holder = holder
        super().__init__(
            f"the fm_lab store {path} is held by {holder}; it is released when that holder "
            "finishes its current operation. Close its store (fm_lab.connect().close()) or "
            "point FM_LAB_HOME elsewhere."
        )


class StoreVersionError(StoreError):
    """The file was written by a newer fm_lab."""


class RunNotFoundError(StoreError, LookupError):
    """No run with that id."""
