"""`mutualplan login`: the seller's one device-code sign-in for a Graph mailbox with `auth = "device_code"`."""

from __future__ import annotations

import click

from pipeline.cli.common import console, err_console, handles_errors, open_home


@click.command()
@click.pass_context
@handles_errors
def login(ctx: click.Context) -> None:
    """Sign the seller in to Microsoft 365 once, for a graph mailbox with auth = "device_code".

    Prints a web address and a code: open the address on any device, enter the code and sign in as the
    seller. The refresh token is kept in the [mailbox] token_cache_path, readable by its owner alone
    (0600); from then on `watch` signs in by itself. Run it again when the sign-in expired or was revoked.
    Any other mailbox needs no sign-in: the command says so and exits 2.

    \b
    Example:
      mutualplan login
    """
    from pipeline.config import load_settings, sign_in_mailbox

    home = open_home(ctx)
    where = str(home.settings_path)
    who, cache = sign_in_mailbox(
        load_settings(home.settings(), where),
        show=lambda message: console.print(message, soft_wrap=True, markup=False),
        warn=lambda message: err_console.print(f"warning: {message}", soft_wrap=True, markup=False),
        where=where,
    )
    console.print(f"Signed in as {who or 'the seller'}; the sign-in is kept in {cache} (0600).",
                  soft_wrap=True, markup=False)


COMMANDS = [login]
