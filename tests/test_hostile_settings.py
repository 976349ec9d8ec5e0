"""Settings an attacker or a slip of the keyboard writes: every mistake is exit 2 naming the section and the key,
with a suggestion, never a traceback and never a default used in silence."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline.cli import main

BASE = """\
[seller]
company = "Northwind Analytics"
name = "Jordan Lee"
email = "jordan.lee@northwind.example"

[policy]
changes = "review"
"""


def run_with(tmp_path: Path, text: str | bytes) -> tuple[int, str]:
    root = tmp_path / "home"
    assert CliRunner().invoke(main, ["--home", str(root), "init"]).exit_code == 0
    path = root / "mutualplan.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(main, ["--home", str(root), "status"], env={"COLUMNS": "200"})
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, " ".join(result.output.split())


@pytest.mark.parametrize("section, line, named, suggested", [
    ("policy", 'trusted_authserv_id = ["mx.northwind.example"]', "[policy]", "trusted_authserv_ids"),
    ("policy", "max_mesage_mb = 10", "[policy]", "max_message_mb"),
    ("seller", 'emial = "x@northwind.example"', "[seller]", "email"),
    ("reminders", "days_befor = 2", "[reminders]", "days_before"),
    ("inbound", 'subjet_tag = "[Plan]"', "[inbound]", "subject_tag"),
    ("letter", 'leterhead = "default"', "[letter]", "letterhead"),
])
def test_a_misspelled_key_names_the_section_and_suggests_the_right_one(
        tmp_path: Path, section: str, line: str, named: str, suggested: str) -> None:
    text = BASE + f"\n[{section}]\n{line}\n" if section not in ("policy", "seller") else \
        BASE.replace(f"[{section}]\n", f"[{section}]\n{line}\n")
    code, out = run_with(tmp_path, text)
    assert code == 2, out
    assert named in out and line.split(" =")[0] in out
    assert f"did you mean {suggested}" in out


def test_an_unknown_kind_of_ask_is_named(tmp_path: Path) -> None:
    code, out = run_with(tmp_path, BASE + '\n[policy.asks]\nlatr = "Could we meet?"\n')
    assert code == 2, out
    assert "[policy.asks]" in out and "latr" in out and "did you mean later" in out


@pytest.mark.parametrize("line, key", [
    ("max_message_mb = nan", "max_message_mb"),
    ("max_message_mb = inf", "max_message_mb"),
    ('max_message_mb = "x"', "max_message_mb"),
    ('max_messages_per_sender_per_hour = "x"', "max_messages_per_sender_per_hour"),
    ("max_messages_per_sender_per_hour = nan", "max_messages_per_sender_per_hour"),
    ('trusted_authserv_ids = "mx.northwind.example"', "trusted_authserv_ids"),
    ("trusted_authserv_ids = [1]", "trusted_authserv_ids"),
    ("changes = 3", "changes"),
])
def test_a_wrong_type_in_policy_names_the_key(tmp_path: Path, line: str, key: str) -> None:
    code, out = run_with(tmp_path, BASE.replace('changes = "review"\n', "") + line + "\n")
    assert code == 2, out
    assert f"[policy] {key}" in out


@pytest.mark.parametrize("section, line, key", [
    ("seller", "email = 3", "email"),
    ("seller", 'aliases = "j@northwind.example"', "aliases"),
    ("seller", "name = nan", "name"),
    ("letter", "letterhead = 3", "letterhead"),
    ("inbound", "subject_tag = 3", "subject_tag"),
    ("inbound", "category = true", "category"),
])
def test_a_wrong_type_elsewhere_names_the_section_and_key(tmp_path: Path, section: str, line: str, key: str) -> None:
    base = "".join(ln + "\n" for ln in BASE.splitlines() if not ln.startswith(f"{key} ="))
    text = base.replace("[seller]\n", f"[seller]\n{line}\n") if section == "seller" \
        else base + f"\n[{section}]\n{line}\n"
    code, out = run_with(tmp_path, text)
    assert code == 2, out
    assert f"[{section}] {key}" in out


def test_a_file_that_is_not_utf8_names_the_line(tmp_path: Path) -> None:
    code, out = run_with(tmp_path, BASE.replace("Jordan Lee", "J\xe9r\xf4me").encode("latin-1"))
    assert code == 2, out
    assert "not UTF-8" in out and "line 3" in out
    assert "save it as UTF-8" in out


# A [mailbox] table each backend would take, but for the line under test.
MAILBOXES = {
    "maildir": 'backend = "maildir"\n',
    "imap": 'backend = "imap"\nhost = "imap.northwind.example"\nusername = "jordan"\npassword_env = "MP_PW"\n',
    "exchange": 'backend = "exchange"\nendpoint = "https://mail.northwind.example/EWS/Exchange.asmx"\n'
                'mailbox = "jordan.lee@northwind.example"\n',
    "graph": 'backend = "graph"\ntenant = "northwind.example"\nclient_id = "00000000-0000-0000-0000-000000000000"\n'
             'mailbox = "jordan.lee@northwind.example"\nclient_secret_env = "MP_SECRET"\n',
}


@pytest.mark.parametrize("backend, line, suggested", [
    ("maildir", 'paht = "mail"', "path"),
    ("imap", "timout = 10", "timeout"),
    ("imap", 'password = "in the file"', "password_env"),
    ("imap", 'smtp_pasword_env = "MP_SMTP"', "smtp_password_env"),
    ("exchange", 'procesed_folder = "Done"', "processed_folder"),
    ("exchange", "max_wiat = 10", "max_wait"),
    ("graph", "max_concurency = 2", "max_concurrency"),
    ("graph", 'client_secret = "in the file"', "client_secret_env"),
])
def test_a_misspelled_mailbox_key_of_any_backend_is_named_with_a_suggestion(
        tmp_path: Path, backend: str, line: str, suggested: str) -> None:
    code, out = run_with(tmp_path, BASE + "\n[mailbox]\n" + MAILBOXES[backend] + line + "\n")
    assert code == 2, out
    assert "[mailbox]" in out and line.split(" =")[0] in out
    assert f"did you mean {suggested}" in out


@pytest.mark.parametrize("backend, line, expected", [
    ("maildir", "path = 3", "text in quotes, not 3"),
    ("imap", 'port = "993"', "a whole number, 0 or more, not '993'"),
    ("imap", 'append_sent = "yes"', "true or false, not 'yes'"),
    ("imap", "host = 3", "text in quotes, not 3"),
    ("imap", 'timeout = "x"', "a number of seconds, more than 0, not 'x'"),
    ("imap", "timeout = nan", "a number of seconds, more than 0, not nan"),
    ("imap", "timeout = -5", "a number of seconds, more than 0, not -5"),
    ("exchange", 'timeout = "x"', "a number of seconds, more than 0, not 'x'"),
    ("exchange", "timeout = inf", "a number of seconds, more than 0, not inf"),
    ("exchange", "timeout = -1.5", "a number of seconds, more than 0, not -1.5"),
    ("exchange", "max_wait = nan", "a number of seconds, 0 or more, not nan"),
    ("exchange", 'batch_size = "x"', "a whole number, 0 or more, not 'x'"),
    ("exchange", 'impersonate = "yes"', "true or false, not 'yes'"),
    ("graph", 'max_concurrency = "x"', "a whole number, 0 or more, not 'x'"),
    ("graph", "timeout = nan", "a number of seconds, more than 0, not nan"),
    ("graph", "timeout = -inf", "a number of seconds, more than 0, not -inf"),
    ("graph", "timeout = 0", "a number of seconds, more than 0, not 0"),
    ("graph", "max_retry_after = inf", "a number of seconds, 0 or more, not inf"),
    ("graph", "client_secret_env = 3", "text in quotes, not 3"),
])
def test_a_wrong_type_in_mailbox_names_the_key_the_type_and_the_value(
        tmp_path: Path, backend: str, line: str, expected: str) -> None:
    key = line.split(" =")[0]
    table = "".join(ln + "\n" for ln in MAILBOXES[backend].splitlines() if not ln.startswith(f"{key} ="))
    code, out = run_with(tmp_path, BASE + "\n[mailbox]\n" + table + line + "\n")
    assert code == 2, out
    assert f"[mailbox] {key} must be {expected}" in out


@pytest.mark.parametrize("section, line, message", [
    ("store", 'ulr = "sqlite:///other.db"', "did you mean url"),
    ("archive", 'tsa_ulr = "https://freetsa.org/tsr"', "did you mean tsa_url"),
    ("store", "url = 3", "[store] url must be text in quotes, not 3"),
    ("archive", "tsa_url = 3", "[archive] tsa_url must be the http(s) address of a timestamp authority, not 3"),
])
def test_store_and_archive_name_an_unknown_key_or_a_wrong_type(
        tmp_path: Path, section: str, line: str, message: str) -> None:
    code, out = run_with(tmp_path, BASE + f"\n[{section}]\n{line}\n")
    assert code == 2, out
    assert f"[{section}]" in out and line.split(" =")[0] in out
    assert message in out
