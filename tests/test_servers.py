"""The server fixtures fail loudly when a server cannot start, and skip only when asked to."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from tests import servers


def cannot_start(root: Path) -> object:
    assert root.is_dir()
    raise servers.ServerStartError("Dovecot did not answer\n--- dovecot.log: Fatal: bind() failed")


def test_a_server_that_cannot_start_fails_the_tests_with_its_logs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(servers.SKIP_ENV, raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with (
        pytest.raises(pytest.fail.Exception) as failed,
        servers._started("Dovecot and Postfix", cannot_start, lambda s: None, "mp-check-"),
    ):
        pass
    assert list(tmp_path.iterdir()) == []  # its directory is gone too
    assert str(failed.value).startswith("could not start Dovecot and Postfix: Dovecot did not answer\n")
    assert "Fatal: bind() failed" in str(failed.value)
    assert f"set {servers.SKIP_ENV}=1 to skip" in str(failed.value)


def test_the_servers_are_skipped_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(servers.SKIP_ENV, "1")
    with (
        pytest.raises(pytest.skip.Exception),
        servers._started("PostgreSQL", cannot_start, lambda s: None, "mp-check-"),
    ):
        pass


def test_starting_as_another_user_than_root_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(servers.os, "geteuid", lambda: 1000)
    with pytest.raises(servers.ServerStartError, match="must be started as root; run the tests as root, or set"):
        servers.start_mailserver(Path("/nonexistent"))
    with pytest.raises(servers.ServerStartError, match="must be started as root"):
        servers.start_postgres(Path("/nonexistent"))
