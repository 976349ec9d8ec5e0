"""`mutualplan login`: the seller's one device-code sign-in for `auth = "device_code"`, against the local Entra ID."""

# The fixtures come from the Graph mailbox tests, and pytest hands them over by parameter name.
# ruff: noqa: F811

from __future__ import annotations

import json
import re
import stat
import threading
import time
from pathlib import Path

from click.testing import CliRunner

from pipeline.cli import main
from pipeline.home import init_home
from tests.graph_server import GraphServer
from tests.test_mailbox_graph import PUBLIC_ID, SELLER, server, tls  # noqa: F401


def _home(tmp_path: Path, server: GraphServer, mailbox: str) -> tuple[Path, Path]:
    home = init_home(tmp_path / "home")
    cache = tmp_path / "home" / "graph-token.json"
    home.settings_path.write_text(f"""
[seller]
name = "Sam Seller"
email = "{SELLER}"

[mailbox]
{mailbox.format(server=server, cache=cache, public_id=PUBLIC_ID)}
""", encoding="utf-8")
    return home.root, cache


DEVICE_CODE = """backend = "graph"
auth = "device_code"
tenant = "{server.tenant}"
client_id = "{public_id}"
base_url = "{server.base_url}"
authority_url = "{server.url}"
ca_bundle = "{server.tls.ca_path}"
token_cache_path = "{cache}"
"""


def _approve_when_asked(server: GraphServer, entered: list[str]) -> threading.Thread:
    """The seller entering the code shown in a browser, once the code exists; `entered` gets the code."""

    def approve() -> None:
        for _ in range(200):
            with server.lock:
                codes = [c.user_code for c in server.device_codes.values()]
            if codes:
                entered.append(codes[0])
                server.approve(codes[0], SELLER)
                return
            time.sleep(0.05)

    thread = threading.Thread(target=approve, daemon=True)
    thread.start()
    return thread


def test_login_prints_the_code_and_url_signs_in_and_keeps_an_owner_only_cache(server, tmp_path):
    root, cache = _home(tmp_path, server, DEVICE_CODE)
    entered: list[str] = []
    approver = _approve_when_asked(server, entered)

    result = CliRunner().invoke(main, ["--home", str(root), "login"])
    approver.join(5)

    assert result.exit_code == 0, result.output
    [user_code] = entered
    assert user_code in result.output
    assert re.search(r"https://\S*devicelogin", result.output)
    assert SELLER in result.output
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    assert json.loads(cache.read_text())["RefreshToken"]


def test_login_tightens_a_cache_file_others_could_read(server, tmp_path):
    root, cache = _home(tmp_path, server, DEVICE_CODE)
    cache.write_text("{}")
    cache.chmod(0o644)
    approver = _approve_when_asked(server, [])

    result = CliRunner().invoke(main, ["--home", str(root), "login"])
    approver.join(5)

    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600


def test_login_for_a_mailbox_that_needs_no_sign_in_exits_2_saying_so(server, tmp_path):
    root, _ = _home(tmp_path, server, 'backend = "maildir"')

    result = CliRunner().invoke(main, ["--home", str(root), "login"])

    assert result.exit_code == 2
    assert 'auth = "device_code"' in result.stderr
    assert server.device_codes == {}
