"""Where the shipped templates (letterheads, emails, starter plans) live."""

from __future__ import annotations

import os
from pathlib import Path


def templates_dir() -> Path:
    """The templates folder: MUTUALPLAN_TEMPLATES if set, else the one beside the package."""
    override = os.environ.get("MUTUALPLAN_TEMPLATES")
    return Path(override) if override else Path(__file__).resolve().parent.parent / "templates"
