"""Where the templates live: $MUTUALPLAN_TEMPLATES, else the ones shipped with the package."""

from __future__ import annotations

import os
from pathlib import Path

ENV = "MUTUALPLAN_TEMPLATES"
PACKAGE = Path(__file__).resolve().parents[1]
# An installed wheel carries them in pipeline/_data/ (setup.py copies them there); a source tree at its top.
SHIPPED = (PACKAGE / "_data" / "templates", PACKAGE.parent / "templates")


def default_templates() -> Path:
    """The templates folder (letterhead/, letter/, email/, plans/): $MUTUALPLAN_TEMPLATES or the shipped one."""
    override = os.environ.get(ENV)
    if override:
        return Path(override)
    return next((folder for folder in SHIPPED if folder.is_dir()), SHIPPED[-1])
