"""Where the shipped templates (letterheads, emails, starter plans) live."""

from __future__ import annotations

from pipeline.render.templates import default_templates as templates_dir

__all__ = ["templates_dir"]
