"""`mutualplan login`: the seller's one device-code sign-in for a Graph mailbox with `auth = "device_code"`."""

from __future__ import annotations

import stat
from pathlib import Path

import click

from pipeline.cli.common import console, err_console, handles_errors, open_home
from pipeline.errors import ConfigError

NOT_DEVICE_CODE = 'only a graph mailbox with auth = "device_code" signs in this way'


@click.command()
@click.pass_context
@handles_errors
def login(ctx: click.Context) -> None:
    """Sign the seller in to Microsoft 365 once, for a graph mailbox with auth = "device_code".

    Prints a web address and a code: open the address on any device, enter the code and sign in as the
    seller. The refresh token is kept in the [mailbox] token_cache_path, readable by its owner alone
    (0600); from then on `watch` signs in by itself. Run it again when the sign-in expired or was revoked.

    \b
    Example:
      mutualplan login
    """
    from pipeline.config import load_settings
    from pipeline.mailbox.graph import GraphSettings, sign_in

    home = open_home(ctx)
    options = load_settings(home.settings(), str(home.settings_path)).mailbox
    if options.get("backend") != "graph" or options.get("auth") != "device_code":
        raise ConfigError(f"{home.settings_path}: {NOT_DEVICE_CODE}; this [mailbox] needs no sign-in here",
                          hint="an app (client secret or certificate) signs in by itself; see docs/graph.md")
    settings = GraphSettings.from_options(options)  # checked as it is made
    _drop_exposed_cache(Path(str(settings.token_cache_path)))
    who = sign_in(settings, show=lambda message: console.print(message, soft_wrap=True, markup=False))
    console.print(f"Signed in as {who or 'the seller'}; the sign-in is kept in {settings.token_cache_path} (0600).",
                  soft_wrap=True, markup=False)


def _drop_exposed_cache(path: Path) -> None:
    """Remove a token cache others could read: it is replaced by this sign-in, written owner-only."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        err_console.print(f"warning: {path} could be read by other users (mode {mode:o}); this sign-in replaces "
                          "it. If others may have read it, revoke the seller's sessions in the Entra admin center.",
                          soft_wrap=True, markup=False)
        path.unlink()


COMMANDS = [login]
