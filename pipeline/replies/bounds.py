"""What reading one received email may cost at most, and the notes of what was cut or could not be read."""

from __future__ import annotations

# Bounds: whatever arrives, reading it costs at most this much.
MAX_RAW_BYTES = 25 * 1024 * 1024
MAX_TEXT_CHARS = 200_000
MAX_HTML_CHARS = 1_000_000
MAX_PARTS = 200
MAX_DEPTH = 20
MAX_KEYS = 50
MAX_HEADER_CHARS = 1_000
MAX_DEFECTS = 20
MAX_RAW_HEADERS = 200
MAX_RAW_HEADER_CHARS = 4_000


class Notes:
    """Defects collected while reading, bounded."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, text: str) -> None:
        """Note a defect once, while there is room."""
        if len(self.items) < MAX_DEFECTS and text not in self.items:
            self.items.append(text[:200])
