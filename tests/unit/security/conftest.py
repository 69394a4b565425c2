"""A canary module: importing it, or calling its function, leaves a file behind, so a test can
prove that a refused reference was neither imported nor called."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Canary:
    module: str
    imported: Path  # written when the module is imported
    called: Path  # written by ``<module>:touch``

    @property
    def touch(self) -> str:
        return f"{self.module}:touch"

    def untouched(self) -> bool:
        return not self.imported.exists() and not self.called.exists()


@pytest.fixture
def canary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Canary]:
    """A fresh importable module ``canary_<hex>`` with a function ``touch()``."""
    name = f"canary_{uuid.uuid4().hex[:10]}"
    found = Canary(name, tmp_path / "imported", tmp_path / "called")
    folder = tmp_path / "modules"
    folder.mkdir()
    (folder / f"{name}.py").write_text(
        "from pathlib import Path\n"
        f"Path({str(found.imported)!r}).write_text('imported')\n\n"
        "def touch() -> str:\n"
        f"    Path({str(found.called)!r}).write_text('called')\n"
        "    return 'touched'\n")
    monkeypatch.syspath_prepend(str(folder))
    yield found
    sys.modules.pop(name, None)
