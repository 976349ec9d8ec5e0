"""Where the templates live: $MUTUALPLAN_TEMPLATES, else `templates/` beside the package."""

from __future__ import annotations

import os
from pathlib import Path

ENV = "MUTUALPLAN_TEMPLATES"


def default_templates() -> Path:
    """The templates folder (letterhead/, letter/, email/, plans/): $MUTUALPLAN_TEMPLATES or the shipped one."""
    override = os.environ.get(ENV)
    return Path(override) if override else Path(__file__).resolve().parents[2] / "templates"
