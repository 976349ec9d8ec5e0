"""Every command is documented: in the README's table, with an example in its --help."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from pipeline.cli import COMMANDS as TABLE
from pipeline.cli import main

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
COMMANDS = main.list_commands(click.Context(main))


def test_there_are_commands() -> None:
    assert {"show", "check", "new", "watch", "send", "status", "demo", "parse-reply"} <= set(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_command_is_in_the_readme(name: str) -> None:
    assert re.search(rf"`mutualplan {re.escape(name)}\b", README), f"README does not document `mutualplan {name}`"


@pytest.mark.parametrize("name", COMMANDS)
def test_help_has_an_example(name: str) -> None:
    result = CliRunner().invoke(main, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output and "mutualplan " in result.output.split("Example", 1)[1]


@pytest.mark.parametrize("name", COMMANDS)
def test_the_lazy_table_says_what_the_command_says(name: str) -> None:
    command = main.get_command(click.Context(main), name)
    assert command is not None and command.name == name
    own = command.get_short_help_str(limit=500)
    assert own.startswith(TABLE[name][1].rstrip(".")), (own, TABLE[name][1])
