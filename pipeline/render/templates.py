"""Where the templates live: `templates/` beside the package, unless the caller names another folder."""

from __future__ import annotations

from pathlib import Path


def default_templates() -> Path:
    """The `templates/` folder shipped beside the package (letterhead/, letter/, email/)."""
    return Path(__file__).resolve().parents[2] / "templates"
