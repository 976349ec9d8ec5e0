"""The Exchange mailbox: a seller's Exchange Server (or Exchange Online while EWS lasts) through exchangelib.

Settings (`ExchangeSettings`, filled from the `[mailbox]` table of the config by the config layer):

- `endpoint`: the EWS URL, e.g. ``https://mail.example.com/EWS/Exchange.asmx``; no autodiscover.
- `mailbox`: the seller's primary SMTP address, the mailbox read and sent from.
- `server_version`: pinned, no version guessing: ``Exchange2013``, ``Exchange2013_SP1``, ``Exchange2016``,
  ``Exchange2019``, ``ExchangeOnline`` (or ``Exchange2010_SP2`` for old servers).
- `auth`: ``oauth2-app`` (client credentials, impersonating `mailbox`), ``oauth2-delegated`` (an access token
  for the seller, EWS.AccessAsUser.All), ``ntlm`` or ``basic`` (on-premises username and password).
- `client_id`, `client_secret`, `tenant_id` (oauth2-app); `access_token` (oauth2-delegated: a token or a
  callable returning a fresh one); `username`, `password` (ntlm, basic); `token_url`, `scope` for other clouds.
- `impersonate`: act through EWS impersonation (default: only for oauth2-app).
- `max_wait`: the most seconds of server-requested back-off (ErrorServerBusy) one call sits through before it
  gives up with a transient MailboxError; `timeout`: seconds for one HTTP request.
- `timezone`: IANA name for dates EWS returns without one.
- `processed_folder`, `held_folder`: where ack() files mail (paths under the top of the mailbox, "/"-separated,
  created when missing); `category`: the Outlook category stamped on acknowledged mail ("Mutual Plan").
- `first_sync`: ``unread`` (default: on the very first poll, mail already read in the Inbox is skipped) or ``all``.

docs/exchange.md says how to connect, what Exchange does to our headers, and why.
"""

from pipeline.mailbox.exchange.mailbox import ExchangeMailbox
from pipeline.mailbox.exchange.settings import ExchangeSettings

__all__ = ["ExchangeMailbox", "ExchangeSettings"]
