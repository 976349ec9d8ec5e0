"""Commands on a plan source: show, check, new."""

from __future__ import annotations

COMMANDS: list = []
