"""Shared test setup: the real servers on loopback (see servers.py) and their marker."""

from __future__ import annotations

import pytest

from tests.servers import mailserver, postgres_server, postgres_url

__all__ = ["mailserver", "postgres_server", "postgres_url"]

SERVER_FIXTURES = frozenset(__all__)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses a real server, so `-m "not servers"` leaves them out."""
    for item in items:
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.servers)
