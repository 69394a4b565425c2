"""An audio file as a node output: where it is and what it holds (format, seconds, bytes,
sha256), never its bytes. It is a plain JSON dict for templates and the store, and shows as a
player (``IPython.display.Audio``) in a notebook. A leaf module: the store's codec gives
stored audio outputs back as :class:`Audio`.

>>> clip = Audio(path="hello.wav", format="wav", seconds=1.2)
>>> clip["path"], clip.seconds
('hello.wav', 1.2)
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

TAG_KEY = "__fm_type__"
TAG = "audio"


class Audio(dict[str, Any]):
    """``{"path", "format", "seconds", "bytes", "sha256", ...}``: an audio file written by a
    ``speak`` node or :func:`fm_lab.llm.voice.speak`; the file stays where ``path`` says."""

    def __init__(self, *args: Any, **fields: Any) -> None:
        super().__init__(*args, **fields)
        self[TAG_KEY] = TAG

    @property
    def path(self) -> str:
        """The audio file."""
        return str(self["path"])

    @property
    def seconds(self) -> float | None:
        """How long it plays (None when the format does not say without decoding)."""
        value = self.get("seconds")
        return float(value) if value is not None else None

    def read(self) -> bytes:
        """The file's bytes."""
        return Path(self.path).read_bytes()

    def player(self) -> Any:
        """An ``IPython.display.Audio`` player of the file."""
        from IPython.display import Audio as Player

        return Player(filename=self.path)  # type: ignore[no-untyped-call]

    def _repr_html_(self) -> str:
        if not Path(self.path).is_file():
            return f"<p>audio file missing: {html.escape(self.path)}</p>"
        player: str = self.player()._repr_html_()
        seconds = f", {self.seconds:.2f} s" if self.seconds is not None else ""
        return (f"{player}<div><code>{html.escape(self.path)}</code> "
                f"({html.escape(str(self.get('format')))}{seconds})</div>")

    def __repr__(self) -> str:
        shown = {k: v for k, v in self.items() if k != TAG_KEY}
        return f"Audio({shown!r})"
