"""Exchange's documented limits: settings past them are refused at load, and the endpoint refuses them too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from ews_server import EwsServer

from pipeline.cli import main
from pipeline.config import load_settings
from pipeline.errors import ConfigError
from pipeline.home import init_home
from pipeline.mailbox.base import MemoryCursors
from pipeline.mailbox.exchange import ExchangeMailbox, ExchangeSettings

SELLER = "seller@example.com"
PASSWORD_ENV = "MUTUALPLAN_TEST_EWS_PASSWORD"


@pytest.fixture
def ews() -> Iterator[EwsServer]:
    from exchangelib.protocol import close_connections

    server = EwsServer(SELLER).start()
    yield server
    server.stop()
    close_connections()
    assert server.errors == [], "the endpoint met a request it does not speak"


def _client_mail(n: int) -> bytes:
    return (f"From: c@buyer.example\r\nTo: {SELLER}\r\nSubject: hello {n}\r\nMessage-ID: <m{n}@buyer.example>\r\n"
            "Date: Mon, 02 Mar 2026 10:00:00 +0000\r\n\r\nHi.\r\n").encode()


def _mailbox_table(ews: EwsServer, batch_size: int) -> dict[str, object]:
    return {"backend": "exchange", "endpoint": ews.url, "mailbox": SELLER, "auth": "basic", "username": "seller",
            "password_env": PASSWORD_ENV, "impersonate": False, "max_wait": 0.5, "timeout": 5,
            "batch_size": batch_size}


def test_the_endpoint_answers_more_than_512_changes_with_a_schema_fault_as_exchange_does(ews):
    from exchangelib.errors import ErrorSchemaValidation

    box = ExchangeMailbox(ExchangeSettings(endpoint=ews.url, mailbox=SELLER, auth="basic", username="seller",
                                           password="s3cret", max_wait=1, timeout=5), MemoryCursors())
    inbox = box._ews.begin().inbox
    with pytest.raises(ErrorSchemaValidation) as caught:
        list(inbox.sync_items(only_fields=["message_id"], max_changes_returned=513))
    assert "MaxInclusive" in str(caught.value)


def test_512_is_the_largest_batch_and_it_reads_mail(ews):
    ews.deliver(_client_mail(1))
    ews.deliver(_client_mail(2))
    settings = load_settings({"mailbox": _mailbox_table(ews, 512)})
    box = ExchangeMailbox(ExchangeSettings.from_options(settings.mailbox, password="s3cret"), MemoryCursors())
    assert [f.raw for f in box.fetch()] == [_client_mail(1), _client_mail(2)]


@pytest.mark.parametrize("size", [0, 513, 600])
def test_a_batch_size_outside_1_to_512_is_refused_when_the_settings_load(ews, size):
    with pytest.raises(ConfigError) as caught:
        load_settings({"mailbox": _mailbox_table(ews, size)}, "home/mutualplan.toml")
    assert "batch_size" in str(caught.value) and "1 to 512" in str(caught.value)
    assert str(size) in str(caught.value)
    with pytest.raises(ConfigError):
        ExchangeMailbox(ExchangeSettings(endpoint=ews.url, mailbox=SELLER, auth="basic", username="seller",
                                         password="s3cret", batch_size=size), MemoryCursors())


def test_watch_with_a_batch_size_of_600_exits_2_naming_the_range(ews, tmp_path: Path, monkeypatch):
    home = init_home(tmp_path / "home")
    home.settings_path.write_text(f"""
[seller]
name = "Sam Seller"
email = "{SELLER}"

[mailbox]
backend = "exchange"
endpoint = "{ews.url}"
mailbox = "{SELLER}"
auth = "basic"
username = "seller"
password_env = "{PASSWORD_ENV}"
impersonate = false
max_wait = 0.5
timeout = 5
batch_size = 600
""", encoding="utf-8")
    monkeypatch.setenv(PASSWORD_ENV, "s3cret")
    ews.deliver(_client_mail(1))

    result = CliRunner().invoke(main, ["--home", str(home.root), "watch", "--once"])

    assert result.exit_code == 2, result.output
    assert "batch_size" in result.stderr and "1 to 512" in result.stderr
    assert "SyncFolderItems" not in ews.operations()  # refused before the mailbox was asked anything
