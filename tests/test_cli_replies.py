"""The parse-reply command: what a reply says, as a table and as JSON, and clear errors."""

from __future__ import annotations

import json

from click.testing import CliRunner
from replies_expect import FIXTURES, REPLIES

from pipeline.cli import main

PLAN = str(FIXTURES / "example-plan.md")


def test_parse_reply_json_is_the_spec_object() -> None:
    result = CliRunner().invoke(main, ["parse-reply", PLAN, str(REPLIES / "06-remove-and-reassign.eml"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {"from", "authorized", "kind", "intent", "confirms", "changes", "unresolved", "text"} <= set(data)
    assert data["from"] == "raj.patel@acme.example"
    assert data["intent"] == "amend"
    assert data["changes"] == [
        {"op": "remove", "milestone": "M4"},
        {"op": "reassign", "milestone": "M5", "owner": "Raj Patel"},
    ]
    assert "From: Jordan Lee" not in data["text"]


def test_parse_reply_table_and_own_message() -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["parse-reply", PLAN, str(REPLIES / "02-outlook-move-pilot.eml")])
    assert result.exit_code == 0, result.output
    assert "amend" in result.output and "M3" in result.output and "2027-03-08" in result.output
    own = runner.invoke(main, ["parse-reply", PLAN, str(REPLIES / "68-own-message.eml"), "--json"])
    assert json.loads(own.output)["kind"] == "own"
    other = runner.invoke(
        main, ["parse-reply", PLAN, str(REPLIES / "68-own-message.eml"), "--json", "--seller-domain", "x.example"]
    )
    assert json.loads(other.output)["kind"] == "human"


def test_parse_reply_errors_say_what_to_do(tmp_path) -> None:
    runner = CliRunner()
    missing = runner.invoke(main, ["parse-reply", str(tmp_path / "none.md"), str(REPLIES / "01-gmail-confirm.eml")])
    assert missing.exit_code == 2 and "no such plan file" in missing.output
    empty = tmp_path / "empty.eml"
    empty.write_bytes(b"")
    result = runner.invoke(main, ["parse-reply", PLAN, str(empty)])
    assert result.exit_code == 2 and "empty" in result.output
    assert "Traceback" not in result.output
