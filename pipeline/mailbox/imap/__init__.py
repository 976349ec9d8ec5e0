"""The IMAP mailbox: imap-tools reads and files mail, smtplib sends it, and a copy goes to Sent by APPEND.

Settings (`ImapSettings`, filled by the config layer; passwords come from the environment, never a file):

- `host`, `port`, `security`: the IMAP server; ``tls`` (implicit, port 993), ``starttls`` (port 143) or
  ``plain`` (no encryption: refused unless the host is this machine).
- `username`, `password`: the IMAP login; `address`: the seller's address, the SMTP envelope sender
  (default: the username when it is an address, else the message's From).
- `smtp_host`, `smtp_port`, `smtp_security`: the SMTP server (default: the IMAP host; ``starttls`` on 587,
  ``tls`` on 465, ``plain`` on 25); `smtp_username`, `smtp_password` (default: the IMAP login; an empty
  username means no SMTP AUTH).
- `folder`: where new mail is read (INBOX); `sent_folder`, `drafts_folder`: found by their special-use flags
  when not given, else "Sent" and "Drafts"; `append_sent`: file a copy of sent mail in Sent (turn off for
  servers that do it themselves, like Gmail and Exchange Online).
- `first_sync`: ``unseen`` (default: the very first poll skips mail already read) or ``all``.
- `cafile`: a CA bundle to trust instead of the system's (a company CA, a test server); `timeout`: seconds.

The key of a fetched message is ``"{UIDVALIDITY}:{UID}"``. The place in the folder (its UIDVALIDITY and the last
UID handed over) is kept in the Cursors, so a poll asks the server only for UIDs above it and costs the same
however much mail the folder holds; when UIDVALIDITY changes, the folder is read again from the start and the
caller deduplicates by Message-ID.
"""

from pipeline.mailbox.imap.mailbox import ImapMailbox
from pipeline.mailbox.imap.settings import ImapSettings

__all__ = ["ImapMailbox", "ImapSettings"]
